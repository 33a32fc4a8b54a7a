"""What one training step sees: functional pairs, spatial pairs and the points drawn on them."""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from funcorr.images import InputError
from funcorr.train.cache import TrainingCache

MIN_PART_CORRESPONDENCES = 16


def functional_pair_options(cache: TrainingCache) -> list[tuple[str, list[int]]]:
    """Per function, the views whose functional part shows (>= 8 px), for functions seen on at
    least two assets. Computed once per run: it scans every part mask."""
    options = []
    for function, parts in cache.part_masks.items():
        visible = torch.nonzero(parts.flatten(1).sum(1) >= 8).flatten().tolist()
        if len({int(cache.asset_of[v]) for v in visible}) >= 2:
            options.append((function, visible))
    if not options:
        raise InputError("No function has a visible part on two different assets: make more data.")
    return options


def draw_functional_pairs(
    cache: TrainingCache, options: list[tuple[str, list[int]]], n: int, rng: random.Random
) -> list[tuple[str, int, int]]:
    """n (function, view_a, view_b) drawn from ``options`` with views of different assets
    (paper Sec. 4: two objects sharing a function)."""
    out = []
    while len(out) < n:
        function, visible = rng.choice(options)
        a, b = rng.choice(visible), rng.choice(visible)
        if cache.asset_of[a] != cache.asset_of[b]:
            out.append((function, a, b))
    return out


@dataclass(frozen=True)
class SpatialBatch:
    """Multi-view pairs of one step: views_a, views_b (B,), functions (B,) conditioning each
    pair, points (B, N, 2, 2): row n of pair b is one surface point's pixel in view a
    ([..., 0, :]) and in view b ([..., 1, :]); valid (B, N) bool: False on padding rows of
    pairs whose pool holds fewer than N correspondences."""

    views_a: list[int]
    views_b: list[int]
    functions: list[str]
    points: torch.Tensor
    valid: torch.Tensor


def _on_part(corr: torch.Tensor, part: torch.Tensor) -> torch.Tensor:
    """Rows of corr (N, 2, 2) whose view-a pixel lies on ``part`` (H, W) bool."""
    xy = corr[:, 0].round().long()
    h, w = part.shape
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < w) & (xy[:, 1] >= 0) & (xy[:, 1] < h)
    keep = torch.zeros(len(corr), dtype=torch.bool)
    keep[inside] = part[xy[inside, 1], xy[inside, 0]]
    return corr[keep]


def draw_spatial_batch(
    cache: TrainingCache,
    n_pairs: int,
    n_points: int,
    rng: random.Random,
    gen: torch.Generator,
    on_part: bool = False,
) -> SpatialBatch | None:
    """Spatial pairs (two views of one asset) and their points for the multi-view loss (eq. 2).

    Points are drawn WITHOUT replacement from each pair's correspondence pool: every other
    point of the row is a negative, so a duplicate would put the positive among its own
    negatives. All pairs get the same number of points, at most ``n_points`` and at most the
    smallest pool. With ``on_part`` the pool is restricted to the functional part of the
    conditioning function (paper Sec. 8.2), when at least 16 correspondences lie there.
    """
    if not cache.spatial:
        return None
    chosen = [cache.spatial[rng.randrange(len(cache.spatial))] for _ in range(n_pairs)]
    functions, pools = [], []
    for a, _, corr in chosen:
        supported = cache.functions_of_asset[int(cache.asset_of[a])]
        function = rng.choice(supported) if supported else next(iter(cache.part_masks))
        if on_part and function in cache.part_masks:
            part_corr = _on_part(corr, cache.part_masks[function][a])
            corr = part_corr if len(part_corr) >= MIN_PART_CORRESPONDENCES else corr
        functions.append(function)
        pools.append(corr)
    n = min(n_points, max(len(p) for p in pools))
    points = torch.zeros(len(pools), n, 2, 2)
    valid = torch.zeros(len(pools), n, dtype=torch.bool)
    for i, pool in enumerate(pools):
        drawn = pool[torch.randperm(len(pool), generator=gen)[:n]]
        points[i] = drawn[0]
        points[i, : len(drawn)] = drawn
        valid[i, : len(drawn)] = True
    return SpatialBatch(
        [a for a, _, _ in chosen], [b for _, b, _ in chosen], functions, points, valid
    )

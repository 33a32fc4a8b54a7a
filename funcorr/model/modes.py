"""Modes of a similarity map: the strong, separated peaks of one source point's similarity
over the target object, so an ambiguous match (a symmetric rim, two blades) is reported with
every candidate instead of one silently picked.

MODE RULE (:func:`find_modes`). On the similarity heat map of a source point, restricted to the
target object mask, let ``median`` be the map's median over the mask and ``best`` its maximum.
A *mode* is a pixel that

1. is a local maximum: the largest value in the (2r+1) x (2r+1) window around it, r =
   ``min_distance`` network pixels;
2. is strong: ``strength = (similarity - median) / (best - median) >= ratio`` (default 0.8;
   the best pixel has strength 1 and is always mode 1);
3. lies at least ``min_distance`` network pixels (Euclidean, default 20) from every stronger
   mode (greedy non-maximum suppression, best first);

and at most ``max_modes`` (default 3) are kept. A point is *ambiguous* when it has two or more
modes. Distances are in network pixels (the ``--size`` square, 224 by default) because
features live there; the output converts positions to original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from funcorr.images import InputError
from funcorr.model.matching import ImageFeatures, mask_pixels


@dataclass(frozen=True)
class ModeRule:
    """Which peaks of a similarity map count as separate answers (see the module docstring).

    ratio: a mode rises at least ``ratio`` x as far above the map's median (over the target
    mask) as the best pixel does; min_distance: network pixels between modes (also the
    local-maximum window radius); max_modes: how many to keep at most.
    """

    ratio: float = 0.8
    min_distance: float = 20.0
    max_modes: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise InputError(f"The mode ratio must be in (0, 1], got {self.ratio}.")
        if self.min_distance < 1:
            raise InputError(f"The mode distance must be >= 1 pixel, got {self.min_distance}.")
        if self.max_modes < 1:
            raise InputError(f"max_modes must be >= 1, got {self.max_modes}.")


@dataclass(frozen=True)
class Modes:
    """Peaks of one similarity map, best first.

    xy (K, 2) pixel xy; similarity (K,) cosine; strength (K,) height above the median
    relative to the best peak's (1 for the best).
    """

    xy: torch.Tensor
    similarity: torch.Tensor
    strength: torch.Tensor

    @property
    def ambiguous(self) -> bool:
        return self.xy.shape[0] >= 2


def local_maxima(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels equal to the maximum of their (2 radius + 1)^2 window. values (..., H, W) -> bool.

    The square max filter is separable, so it runs as a row pass then a column pass
    (2 (2r+1) comparisons per pixel instead of (2r+1)^2).
    """
    shape = values.shape
    flat = values.reshape(-1, 1, *shape[-2:])
    size = 2 * radius + 1
    rows = F.max_pool2d(flat, (1, size), stride=1, padding=(0, radius))
    window_max = F.max_pool2d(rows, (size, 1), stride=1, padding=(radius, 0))
    return (flat == window_max).reshape(shape)


def find_modes(heatmap: torch.Tensor, mask: torch.Tensor, rule: ModeRule = ModeRule()) -> Modes:
    """Modes of a (H, W) similarity map over the (H, W) bool ``mask`` by ``rule``; best first.

    Heights are measured from the median over the mask because raw cosines of ViT features
    sit high everywhere on an object (0.8-0.9 is common), so a ratio of raw similarities
    would call almost any second peak a mode.
    """
    mask = mask.to(heatmap.device)
    if not mask.any():
        raise ValueError("The target mask is empty: a similarity map there has no mode.")
    values = heatmap.float().masked_fill(~mask, float("-inf"))
    peaks = local_maxima(values, max(1, round(rule.min_distance))) & mask
    xy = mask_pixels(peaks).to(values.device)
    scores = values[peaks]  # row-major, the same order as mask_pixels
    order = torch.sort(scores, descending=True, stable=True).indices
    xy, scores = xy[order], scores[order]
    baseline = values[mask].median()
    height = scores[0] - baseline
    # A flat map has no height to compare against: only peaks tied with the best count then.
    strength = (scores - baseline) / height if height > 1e-6 else (scores >= scores[0]).float()
    kept: list[int] = []
    for i in range(xy.shape[0]):
        if len(kept) == rule.max_modes or strength[i] < rule.ratio:
            break
        if kept and (xy[kept] - xy[i]).norm(dim=-1).min() < rule.min_distance:
            continue
        kept.append(i)
    return Modes(xy[kept], scores[kept], strength[kept])


def densify(features: ImageFeatures) -> ImageFeatures:
    """The same features with every pixel's vector computed once and kept, (H * W, C).

    Sampling whole pixels becomes a table lookup, so each
    :func:`~funcorr.model.matching.similarity_heatmap` over this image costs one matrix product
    instead of sampling (or, with a trained head, running the head on) every pixel again.
    Other points fall back to the original sampler. Memory: H * W * C floats (77 MB at 224 px
    and 384 channels).
    """
    height, width = features.size
    table = features.sample(mask_pixels(torch.ones(height, width, dtype=torch.bool)))

    def sample(points: torch.Tensor) -> torch.Tensor:
        rounded = points.round()
        inside = bool(((rounded >= 0) & (rounded < rounded.new_tensor([width, height]))).all())
        if not (inside and torch.equal(rounded, points)):
            return features.sample(points)
        index = (rounded[:, 1] * width + rounded[:, 0]).long().to(table.device)
        if index.shape[0] == table.shape[0] and torch.equal(
            index, torch.arange(table.shape[0], device=table.device)
        ):
            return table  # every pixel in row-major order, as similarity_heatmap asks: no copy
        return table[index]

    return ImageFeatures(sample, features.size, features.mask)

"""Exact nearest neighbours: the pruned cell search returns exactly what brute force returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from funcorr.backbones import FeatureGrid
from funcorr.model import matching
from funcorr.model.matching import feature_map_features, mask_pixels, transfer_points
from funcorr.model.search import CellIndex, brute_force_nearest, dot_error_bound, resolve


def test_resolve_settles_ties_by_lowest_index_and_near_ties_by_value():
    query = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    keys = F.normalize(torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 1e-3]]), dim=-1)
    rows = torch.tensor([0, 0, 0, 1, 1])
    cols = torch.tensor([3, 2, 1, 0, 3])
    idx, sim = resolve(query, keys, rows, cols)
    assert idx.tolist() == [1, 0]  # key 1 and 2 tie exactly for row 0: the lower index wins
    assert sim[0] == 1.0 and sim[1] == 1.0


def test_brute_force_agrees_with_the_full_product_and_reports_float64_cosines():
    gen = torch.Generator().manual_seed(3)
    query = F.normalize(torch.randn(300, 24, generator=gen), dim=-1)
    keys = F.normalize(torch.randn(500, 24, generator=gen), dim=-1)
    exact = query.double() @ keys.double().T
    idx, sim = brute_force_nearest(query, keys, block_rows=7)
    assert torch.equal(idx, exact.argmax(dim=1))
    assert torch.equal(sim, exact.max(dim=1).values.float())


def test_duplicate_keys_resolve_to_the_first():
    keys = F.normalize(
        torch.randn(10, 8, generator=torch.Generator().manual_seed(0)), dim=-1
    ).repeat(3, 1)
    idx, _ = brute_force_nearest(keys, keys)
    assert torch.equal(idx, torch.arange(30) % 10)


def _scene(cells: np.ndarray, keep: np.ndarray, patch: int, stride: int):
    """Cell map (C, h, w), its image size and a candidate mask keeping pixels where ``keep``."""
    fmap = torch.from_numpy(cells).float()
    _, h, w = fmap.shape
    size = ((h - 1) * stride + patch, (w - 1) * stride + patch)
    mask = torch.from_numpy(np.resize(keep, size[0] * size[1]).reshape(size))
    return fmap, size, mask


@st.composite
def cell_scenes(draw):
    """Small random cell maps: a few channels, 2-5 cells a side, patch/stride like a ViT's,
    values from a small set so that exact ties and repeated cells (constant regions) occur."""
    channels = draw(st.integers(1, 6))
    h, w = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    stride = draw(st.sampled_from([2, 3, 4]))
    patch = stride + draw(st.integers(0, 2))
    values = (
        st.sampled_from([-1.0, -0.5, 0.0, 0.25, 0.5, 1.0, 2.0])
        if draw(st.booleans())
        else st.floats(-2, 2, width=32)
    )
    cells = np.array(
        draw(st.lists(values, min_size=channels * h * w, max_size=channels * h * w)),
        dtype=np.float32,
    )
    keep = np.array(draw(st.lists(st.booleans(), min_size=1, max_size=64)) + [True])
    return cells.reshape(channels, h, w), keep, patch, stride, draw(st.integers(0, 2**31 - 1))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell_scenes())
def test_cell_search_equals_brute_force_on_generated_maps(scene):
    cells, keep, patch, stride, seed = scene
    fmap, size, mask = _scene(cells, keep, patch, stride)
    grid = FeatureGrid(patch, stride)
    target = feature_map_features(fmap, grid, size, mask)
    xy = mask_pixels(mask)
    keys = target.sample(xy)
    # Queries: target pixels themselves (exact self-matches and ties) and random unit vectors.
    gen = torch.Generator().manual_seed(seed)
    query = torch.cat([keys, F.normalize(torch.randn(40, fmap.shape[0], generator=gen), dim=-1)])
    fast = CellIndex.build(fmap, grid, xy, keys).nearest(query, block_rows=17)
    slow = brute_force_nearest(query, keys, block_rows=13)
    assert torch.equal(fast[0], slow[0])
    assert torch.equal(fast[1], slow[1])


def _rendered_features(backbone):
    """Raw features of a rendered kettle and watering can (their object masks), 224 px."""
    from funcorr.data.assets import generate
    from funcorr.data.render import render_views

    images, masks = [], []
    for category, seed in (("kettle", 3), ("watering can", 5)):
        view = render_views(generate(category, seed), 1, (224, 224), seed=seed)[0]
        images.append(torch.from_numpy(view.rgb).permute(2, 0, 1).float() / 255)
        masks.append(torch.from_numpy(view.mask))
    with torch.no_grad():
        blocks = backbone(torch.stack(images))
    src, tgt = (
        feature_map_features(b.mean(0), backbone.grid, (224, 224), m)
        for b, m in zip(blocks, masks, strict=True)
    )
    return src, tgt, masks


def test_cell_search_equals_brute_force_on_real_features(dinov2_s14):
    """Two rendered objects through the real backbone: every pixel of one matched into the other."""
    src, tgt, _ = _rendered_features(dinov2_s14)
    query = src.sample(src.pixels()[::3])  # a third of the source pixels keeps the test short
    xy = tgt.pixels()
    keys = tgt.sample(xy)
    fast = CellIndex.build(tgt.cells.fmap, dinov2_s14.grid, xy, keys).nearest(query)
    slow = brute_force_nearest(query, keys)
    assert query.shape[0] > 500 and keys.shape[0] > 1000
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
    # The float32 product alone picks the same pixel for all but float-noise near-ties.
    plain = (query @ keys.T).argmax(dim=1)
    differing = plain != slow[0]
    gap = (query[differing] * (keys[plain[differing]] - keys[slow[0][differing]])).sum(-1).abs()
    assert bool((gap <= 2 * dot_error_bound(keys.shape[1])).all())


def test_transfer_points_takes_the_pruned_search_and_gives_the_brute_force_answer(monkeypatch):
    gen = torch.Generator().manual_seed(1)
    grid = FeatureGrid(4, 4)
    fmaps = torch.randn(2, 6, 8, 8, generator=gen)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[3:29, 5:30] = True
    src, tgt = (feature_map_features(f, grid, (32, 32), mask) for f in fmaps)
    points = mask_pixels(mask)
    reference = transfer_points(src, tgt, points)  # small: brute force
    calls = []
    original = CellIndex.nearest

    def spy(self, query, block_rows=8192):
        calls.append(query.shape[0])
        return original(self, query, block_rows)

    monkeypatch.setattr(CellIndex, "nearest", spy)
    monkeypatch.setattr(matching, "CELL_SEARCH_MIN_PAIRS", 0)
    monkeypatch.setattr(matching, "CELL_SEARCH_MIN_QUERIES", 1)
    fast = transfer_points(src, tgt, points)
    assert calls == [points.shape[0]]
    assert torch.equal(fast.points, reference.points) and torch.equal(
        fast.similarity, reference.similarity
    )
    # A replaced sampler (the mirrored target of flip-aware matching) is searched by brute force.
    from dataclasses import replace

    replaced = replace(tgt, sample=lambda p: tgt.sample(p))
    assert replaced.cell_map is None
    transfer_points(src, replaced, points)
    assert calls == [points.shape[0]]


@pytest.mark.parametrize("dim", [4, 384])
def test_dot_error_bound_covers_observed_float32_errors(dim):
    gen = torch.Generator().manual_seed(dim)
    a = F.normalize(torch.randn(2000, dim, generator=gen), dim=-1)
    b = F.normalize(torch.randn(2000, dim, generator=gen), dim=-1)
    error = ((a @ b.T).double() - a.double() @ b.double().T).abs().max()
    assert float(error) <= dot_error_bound(dim)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell_scenes(), st.sampled_from([0.0, 0.3, 0.5, 1.0]))
def test_cell_search_equals_brute_force_on_blended_maps(scene, weight):
    """A blend (two channel groups normalised apart, the head on a finer lattice than the raw
    cells) keeps the pruned search, and it still returns exactly the brute-force answer."""
    cells, keep, patch, stride, seed = scene
    fmap, size, mask = _scene(cells, keep, patch, stride)
    gen = torch.Generator().manual_seed(seed)
    coarse = FeatureGrid(patch, 2 * stride)  # the raw cells: every other lattice point
    h, w = coarse.grid_size(*size)
    raw = feature_map_features(torch.randn(3, h, w, generator=gen), coarse, size, mask)
    head = feature_map_features(fmap, FeatureGrid(patch, stride), size, mask)
    blend = matching.blend_features(head, raw, weight)
    assert blend.cell_map is not None
    xy = mask_pixels(mask)
    keys = blend.sample(xy)
    query = torch.cat([keys, F.normalize(torch.randn(30, keys.shape[1], generator=gen), dim=-1)])
    cells_map = blend.cell_map
    groups = [c for c, _ in cells_map.groups]
    fast = CellIndex.build(cells_map.fmap, cells_map.grid, xy, keys, groups).nearest(query)
    slow = brute_force_nearest(query, keys)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_blended_cell_map_samples_what_the_two_parts_blend_to():
    gen = torch.Generator().manual_seed(4)
    size, mask = (30, 30), torch.ones(30, 30, dtype=torch.bool)
    head = feature_map_features(torch.randn(5, 7, 7, generator=gen), FeatureGrid(6, 4), size, mask)
    raw = feature_map_features(torch.randn(3, 4, 4, generator=gen), FeatureGrid(6, 8), size, mask)
    points = torch.rand(200, 2, generator=gen) * 29
    blend = matching.blend_features(head, raw, 0.3)
    expected = torch.cat([0.7**0.5 * head.sample(points), 0.3**0.5 * raw.sample(points)], -1)
    assert torch.allclose(blend.sample(points), expected, atol=1e-5)
    # Raw cells moved onto the finer lattice give the same pixel features (bilinear is exact).
    finer = raw.cells.resampled(FeatureGrid(6, 4), size)
    assert finer.fmap.shape[1:] == (7, 7)
    assert torch.allclose(finer.sample(points), raw.sample(points), atol=1e-5)
    with pytest.raises(ValueError, match="Cannot resample"):
        raw.cells.resampled(FeatureGrid(6, 3), size)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell_scenes(), st.sampled_from([None, 0.0, 0.4, 1.0]))
def test_screened_search_equals_brute_force(scene, weight):
    """Few queries screened on the cells (plain maps and blends with two channel groups, cells
    with exact ties, repeated and opposite cells) return exactly the brute-force answer."""
    from funcorr.model.search import screened_nearest

    cells, keep, patch, stride, seed = scene
    fmap, size, mask = _scene(cells, keep, patch, stride)
    gen = torch.Generator().manual_seed(seed)
    features = feature_map_features(fmap, FeatureGrid(patch, stride), size, mask)
    if weight is not None:
        h, w = fmap.shape[1:]
        raw = feature_map_features(
            torch.randn(4, h, w, generator=gen) * 30, FeatureGrid(patch, stride), size, mask
        )
        features = matching.blend_features(features, raw, weight)
    cells_map = features.cell_map
    xy = mask_pixels(mask)
    keys = features.sample(xy)
    query = torch.cat([keys[:7], F.normalize(torch.randn(9, keys.shape[1], generator=gen), dim=-1)])
    fast = screened_nearest(
        query, cells_map.fmap, cells_map.grid, cells_map.groups, xy, cells_map.sample, block_rows=5
    )
    slow = brute_force_nearest(query, keys)
    assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])


def test_screened_search_equals_brute_force_on_real_features(dinov2_s14):
    """Rendered objects through the real backbone, blended with a head-like lattice map: a few
    points transferred by the screen land where brute force puts them, sampling few pixels."""
    from funcorr.model.search import screened_nearest

    src, tgt, masks = _rendered_features(dinov2_s14)
    gen = torch.Generator().manual_seed(0)
    head = [
        feature_map_features(
            F.normalize(torch.randn(16, 31, 31, generator=gen), dim=0),
            FeatureGrid(14, 7),
            (224, 224),
            m,
        )
        for m in masks
    ]
    sampled = []
    for a, b in (
        (src, tgt),
        (matching.blend_features(head[0], src, 0.5), matching.blend_features(head[1], tgt, 0.5)),
    ):
        query = a.sample(a.pixels()[::97])
        xy = b.pixels()
        cells = b.cell_map

        def counting(points, cells=cells):
            sampled.append(points.shape[0])
            return cells.sample(points)

        fast = screened_nearest(query, cells.fmap, cells.grid, cells.groups, xy, counting)
        slow = brute_force_nearest(query, b.sample(xy))
        assert torch.equal(fast[0], slow[0]) and torch.equal(fast[1], slow[1])
        assert sampled[-1] < xy.shape[0] // 10


def test_screen_is_built_once_per_mask_and_kept(dinov2_s14, monkeypatch):
    """One reference, several searches into it (the cycle check of one demonstration sent to
    many targets): the reference's screen is built once per mask content, and every answer is
    still the brute-force one."""
    from funcorr.model.search import CellScreen

    src, tgt, masks = _rendered_features(dinov2_s14)
    builds = []
    original = CellScreen.build.__func__

    def counting(cls, *args, **kwargs):
        builds.append(args[-1].shape[0])
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(CellScreen, "build", classmethod(counting))
    keys = src.sample(src.pixels())
    for start in range(3):
        query = tgt.sample(tgt.pixels()[start::251])
        idx, sim, _, _ = matching.nearest_pixels(query, src, src.mask)
        slow = brute_force_nearest(query, keys)
        assert torch.equal(idx, slow[0]) and torch.equal(sim, slow[1])
    assert len(builds) == 1
    # Other candidates (a part of the object) get their own screen; the first one is kept.
    part = src.mask.clone()
    part[:, :112] = False
    matching.nearest_pixels(query, src, part)
    matching.nearest_pixels(query, src, src.mask)
    assert len(builds) == 2 and builds[1] == int(part.sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cell_scenes(), st.sampled_from([1.0, 40.0]))
def test_screen_bound_holds_for_every_pixel(scene, magnitude):
    """The screen's promise: each pixel's screened cosine is within its bound of the float64
    cosine of the key sampling returns (raw-like cell magnitudes included)."""
    from funcorr.model.search import CellScreen

    cells, keep, patch, stride, seed = scene
    fmap, size, mask = _scene(cells * magnitude, keep, patch, stride)
    gen = torch.Generator().manual_seed(seed)
    h, w = fmap.shape[1:]
    raw = feature_map_features(
        torch.randn(5, h, w, generator=gen) * magnitude, FeatureGrid(patch, stride), size, mask
    )
    head = feature_map_features(fmap, FeatureGrid(patch, stride), size, mask)
    for features in (head, matching.blend_features(head, raw, 0.3)):
        cells_map = features.cell_map
        xy = mask_pixels(mask)
        keys = features.sample(xy)
        query = torch.cat([keys, F.normalize(torch.randn(6, keys.shape[1], generator=gen), dim=-1)])
        screen = CellScreen.build(cells_map.fmap, cells_map.grid, cells_map.groups, xy)
        gap = (screen.scores(query) - query.double() @ keys.double().T).abs()
        assert bool((gap <= screen.error[None]).all())

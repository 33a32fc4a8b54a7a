"""Matching engine on hand-built features where the right answer is known."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from funcorr.backbones import FeatureGrid
from funcorr.model.matching import (
    ImageFeatures,
    blend_features,
    cycle_error,
    discover,
    feature_map_features,
    mask_pixels,
    minmax,
    mutual_nearest,
    nearest_neighbours,
    similarity_heatmap,
    soft_argmax,
    spread_out,
    transfer_mask,
    transfer_points,
)


def coordinate_features(size: tuple[int, int], transform=lambda xy: xy) -> ImageFeatures:
    """Features that encode (transformed) pixel position, so the true match is known exactly."""
    height, width = size

    def sample(points: torch.Tensor) -> torch.Tensor:
        xy = transform(points.float())
        angle_x, angle_y = xy[:, 0] / width * 3.0, xy[:, 1] / height * 3.0
        return F.normalize(
            torch.stack([angle_x.cos(), angle_x.sin(), angle_y.cos(), angle_y.sin()], -1), dim=-1
        )

    return ImageFeatures(sample, size, torch.ones(size, dtype=torch.bool))


def test_blockwise_nearest_neighbours_equal_full_matrix():
    gen = torch.Generator().manual_seed(0)
    query = F.normalize(torch.randn(300, 16, generator=gen), dim=-1)
    keys = F.normalize(torch.randn(257, 16, generator=gen), dim=-1)
    full_sim, full_idx = (query @ keys.T).max(dim=1)
    for block in (1, 7, 64, 1000):
        idx, sim = nearest_neighbours(query, keys, block_rows=block)
        assert torch.equal(idx, full_idx)
        assert torch.allclose(sim, full_sim)


def test_transfer_under_known_shift():
    shift = torch.tensor([5.0, -3.0])
    src = coordinate_features((32, 40))
    tgt = coordinate_features((32, 40), transform=lambda xy: xy - shift)
    points = torch.tensor([[10.0, 10.0], [20.0, 15.0], [30.0, 25.0]])
    moved = transfer_points(src, tgt, points, block_rows=2)
    assert torch.allclose(moved.points, points + shift)
    assert torch.allclose(moved.similarity, torch.ones(3), atol=1e-6)


def test_transfer_restricted_to_target_mask():
    src, tgt = coordinate_features((20, 20)), coordinate_features((20, 20))
    mask = torch.zeros(20, 20, dtype=torch.bool)
    mask[:, 12:] = True
    moved = transfer_points(src, tgt, torch.tensor([[3.0, 7.0]]), tgt_mask=mask)
    assert moved.points.tolist() == [[12.0, 7.0]]


def test_soft_argmax_recovers_subpixel_position():
    keys_xy = mask_pixels(torch.ones(15, 15, dtype=torch.bool))
    true = torch.tensor([7.3, 6.6])
    # A similarity that falls off symmetrically around a sub-pixel peak.
    sims = torch.exp(-((keys_xy - true) ** 2).sum(-1) / 8.0)
    keys = torch.stack([sims, (1 - sims**2).clamp(min=0).sqrt()], -1)
    query = torch.tensor([[1.0, 0.0]])
    refined = soft_argmax(query, keys, keys_xy, window=5.0, temperature=0.1)
    assert (refined[0] - true).norm() < 0.1
    assert (keys_xy[(query @ keys.T).argmax()] - true).norm() > 0.4  # plain argmax is on the grid


def test_mask_transfer_follows_shift():
    shift = torch.tensor([4.0, 0.0])
    src = coordinate_features((24, 24))
    tgt = coordinate_features((24, 24), transform=lambda xy: xy - shift)
    label = torch.zeros(24, 24, dtype=torch.bool)
    label[5:10, 5:10] = True
    out, sim = transfer_mask(src, tgt, label)
    expected = torch.zeros(24, 24, dtype=torch.bool)
    expected[5:10, 9:14] = True
    assert torch.equal(out, expected)
    assert sim.shape == (24, 24)


def test_cycle_error_and_discovery_ranking():
    """Target features swap two regions' identity: those pixels fail the cycle and rank last."""
    src = coordinate_features((10, 10))
    tgt = coordinate_features((10, 10))
    xy = mask_pixels(torch.ones(10, 10, dtype=torch.bool))
    assert cycle_error(src, tgt, xy, xy).max() == 0

    ranked = discover(src, tgt)
    assert torch.equal(ranked.src_xy, ranked.tgt_xy)  # identity images match themselves
    assert torch.all(ranked.score == 1)
    assert mutual_nearest(src, tgt).src_xy.shape[0] == 100


def test_discovery_score_formula():
    # Many-to-one target: source pixels in the right half all map to a single target column.
    src = coordinate_features((8, 8))
    tgt = coordinate_features(
        (8, 8),
        transform=lambda xy: torch.where(
            xy[:, :1] > 3,
            torch.full_like(xy, 0) + torch.stack([torch.full_like(xy[:, 0], 4.0), xy[:, 1]], -1),
            xy,
        ),
    )
    ranked = discover(src, tgt)
    expected = (1 - minmax(ranked.cycle_error, constant=0.0)) * minmax(ranked.similarity)
    assert torch.allclose(ranked.score, expected)
    assert torch.all(ranked.score[:-1] >= ranked.score[1:])
    assert ranked.cycle_error[0] == 0 and ranked.cycle_error.max() > 0


def test_minmax_and_spread_out():
    assert minmax(torch.tensor([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    assert minmax(torch.tensor([3.0, 3.0])).tolist() == [1.0, 1.0]
    assert minmax(torch.tensor([0.0, 1e-8]), constant=0.0).tolist() == [0.0, 0.0]
    src = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    tgt = torch.tensor([[0.0, 0.0], [30.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    assert spread_out(src, tgt, k=3, min_distance=5).tolist() == [0, 2, 3]


def test_feature_map_and_heatmap():
    grid = FeatureGrid(14, 14)
    fmap = torch.randn(8, 4, 4)
    features = feature_map_features(fmap, grid, (56, 56))
    centre = torch.tensor([[20.5, 6.5]])
    assert torch.allclose(features.sample(centre)[0], F.normalize(fmap[:, 0, 1], dim=0), atol=1e-6)
    heat = similarity_heatmap(features, features, torch.tensor([20.0, 6.0]))
    assert heat.shape == (56, 56) and heat.max() <= 1 + 1e-5
    assert heat[6, 20] > 0.99


def test_candidate_stride_searches_a_coarser_lattice():
    src, tgt = coordinate_features((20, 20)), coordinate_features((20, 20))
    points = torch.tensor([[5.0, 7.0], [12.0, 3.0]])
    coarse = transfer_points(src, tgt, points, candidate_stride=4).points
    assert torch.all(coarse % 4 == 0)
    assert torch.allclose(coarse, torch.tensor([[4.0, 8.0], [12.0, 4.0]]))


def test_part_regions_and_regionwise_discovery():
    from funcorr.model.matching import discover_in_regions, part_regions

    obj = torch.ones(10, 10, dtype=torch.bool)
    part = torch.zeros(10, 10, dtype=torch.bool)
    part[:, :4] = True
    regions = part_regions(obj, obj, part, part, min_pixels=16)
    assert (
        len(regions) == 2 and torch.equal(regions[0][0], part) and torch.equal(regions[1][1], ~part)
    )
    assert len(part_regions(obj, obj, part, None)) == 1
    tiny = torch.zeros_like(part)
    tiny[0, 0] = True
    assert len(part_regions(obj, obj, tiny, part, min_pixels=16)) == 1  # too small: whole objects
    # Features that would send every pixel to column 8 cannot cross from the part to the rest.
    src = coordinate_features((10, 10))
    tgt = coordinate_features(
        (10, 10), transform=lambda xy: torch.stack([xy[:, 0] * 0 + 8, xy[:, 1]], -1)
    )
    ranked = discover_in_regions(src, tgt, regions)
    in_part = ranked.src_xy[:, 0] < 4
    assert in_part[:40].all() and not in_part[40:].any()  # part first, then the rest
    assert (ranked.tgt_xy[in_part][:, 0] < 4).all() and (ranked.tgt_xy[~in_part][:, 0] >= 4).all()


def test_refined_lattice_search_recovers_full_resolution_matches():
    src, tgt = coordinate_features((20, 20)), coordinate_features((20, 20))
    points = torch.tensor([[5.0, 7.0], [13.0, 3.0], [19.0, 19.0]])
    exact = transfer_points(src, tgt, points)
    refined = transfer_points(src, tgt, points, candidate_stride=4, refine=True)
    assert torch.equal(refined.points, exact.points) and torch.equal(
        refined.similarity, exact.similarity
    )
    # Only candidates count: a mask without the true pixel leaves its nearest allowed neighbour.
    mask = torch.ones(20, 20, dtype=torch.bool)
    mask[7, 5] = False
    moved = transfer_points(
        src, tgt, points[:1], tgt_mask=mask, candidate_stride=4, refine=True
    ).points
    assert moved.tolist() in ([[4.0, 7.0]], [[6.0, 7.0]], [[5.0, 6.0]], [[5.0, 8.0]])


def test_blended_similarity_is_the_weighted_sum_of_both():
    torch.manual_seed(0)
    size, mask = (8, 8), torch.ones(8, 8, dtype=torch.bool)

    def unit(dim):
        table = F.normalize(torch.randn(64, dim), dim=-1)
        return ImageFeatures(lambda p: table[(p[:, 1] * 8 + p[:, 0]).long()], size, mask)

    head_a, head_b, raw_a, raw_b = unit(5), unit(5), unit(7), unit(7)
    points = torch.tensor([[0.0, 0.0], [3.0, 2.0], [7.0, 7.0]])
    w = 0.3
    a = blend_features(head_a, raw_a, w).sample(points)
    b = blend_features(head_b, raw_b, w).sample(points)
    expected = (1 - w) * head_a.sample(points) @ head_b.sample(points).T + w * raw_a.sample(
        points
    ) @ raw_b.sample(points).T
    assert torch.allclose(a @ b.T, expected, atol=1e-6)
    assert torch.allclose(a.norm(dim=-1), torch.ones(3), atol=1e-6)
    # w = 0 is the head alone; w = 1 the raw features alone.
    assert torch.allclose(
        blend_features(head_a, raw_a, 0.0).sample(points)[:, :5], head_a.sample(points)
    )

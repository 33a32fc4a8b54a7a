"""A trained head as ImageFeatures: object-pixel features computed once, equal to the head's own."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from funcorr.backbones.base import FeatureGrid
from funcorr.model import head as head_features
from funcorr.model.head import (
    FunctionHead,
    HeadConfig,
    dense_head_outputs,
    head_image_features,
    head_part_mask,
)
from funcorr.model.matching import mask_pixels, transfer_points

GRID = FeatureGrid(patch_size=4, stride=4)
SIZE = (24, 28)  # 6 x 7 cells


def _head_and_inputs(seed: int = 0):
    torch.manual_seed(seed)
    head = FunctionHead(
        HeadConfig(in_dim=12, n_blocks=2, proj_dim=16, text_dim=6, hidden=32, out_dim=8)
    ).eval()
    gen = torch.Generator().manual_seed(seed)
    blocks = torch.randn(2, 12, 6, 7, generator=gen)
    text = F.normalize(torch.randn(6, generator=gen), dim=0)
    mask = torch.zeros(SIZE, dtype=torch.bool)
    mask[2:20, 3:25] = True
    mask[8:12, 10:14] = False
    return head, blocks, text, mask


def _head_outputs(head, blocks, text, points):
    """What the head itself computes at points (N, 2): features (N, C), mask logits (N,)."""
    with torch.no_grad():
        out = head(blocks[None], GRID, points[None], text[None])
    return out.features[0], out.mask_logits[0]


def test_cached_object_features_equal_the_heads_own():
    head, blocks, text, mask = _head_and_inputs()
    features = head_image_features(head, blocks, GRID, text, SIZE, mask)
    pixels = mask_pixels(mask)
    expected, _ = _head_outputs(head, blocks, text, pixels)
    assert torch.allclose(features.sample(pixels), expected, atol=1e-5)
    # Sub-pixel points and background pixels are computed on demand, by the head itself.
    others = torch.tensor(
        [[5.5, 7.25], [0.0, 0.0], [27.0, 23.0], [12.0, 9.0]]
    )  # the last is a hole
    assert torch.equal(features.sample(others), _head_outputs(head, blocks, text, others)[0])
    mixed = torch.cat([others[:2], pixels[:5]])
    assert torch.allclose(
        features.sample(mixed),
        torch.cat([_head_outputs(head, blocks, text, others[:2])[0], expected[:5]]),
        atol=1e-5,
    )


def test_first_layer_on_cells_equals_the_mlp_on_pixels():
    head, blocks, text, _ = _head_and_inputs(seed=1)
    points = torch.rand(50, 2, generator=torch.Generator().manual_seed(0)) * torch.tensor(
        [SIZE[1] - 1.0, SIZE[0] - 1.0]
    )
    projected = head.project_blocks(blocks[None])
    features, logits = dense_head_outputs(head, projected, GRID, text, points, chunk=7)
    expected, expected_logits = _head_outputs(head, blocks, text, points)
    assert torch.allclose(features, expected, atol=1e-5) and torch.allclose(
        logits, expected_logits, atol=1e-5
    )


@pytest.fixture
def head_pixels_computed(monkeypatch) -> list[int]:
    """How many pixels each call of the head's dense pass computed, in order."""
    calls: list[int] = []
    original = head_features.dense_head_outputs

    def counting(*args, **kwargs):
        calls.append(args[4].shape[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(head_features, "dense_head_outputs", counting)
    return calls


def test_object_features_are_computed_once_for_many_transfers(head_pixels_computed):
    head, blocks, text, mask = _head_and_inputs()
    calls = head_pixels_computed
    src = head_image_features(head, blocks, GRID, text, SIZE, mask)
    tgt = head_image_features(head, blocks.flip(-1), GRID, text, SIZE, mask)
    assert calls == []  # nothing is computed before it is needed
    points = mask_pixels(mask)[::9]
    first = transfer_points(src, tgt, points)  # 1/9 of the source's pixels, all of the target's
    assert sum(calls) == points.shape[0] + int(mask.sum())
    second = transfer_points(src, tgt, points)
    back = transfer_points(tgt, src, first.points)  # now the rest of the source
    assert sum(calls) == 2 * int(mask.sum())  # every object pixel of each image computed once
    assert torch.equal(first.points, second.points) and back.points.shape == points.shape


def test_a_lattice_search_computes_only_the_lattice(head_pixels_computed):
    head, blocks, text, mask = _head_and_inputs()
    src = head_image_features(head, blocks, GRID, text, SIZE, mask)
    tgt = head_image_features(head, blocks.flip(-1), GRID, text, SIZE, mask)
    lattice = torch.zeros_like(mask)
    lattice[::3, ::3] = True
    transfer_points(src, tgt, mask_pixels(mask)[:4], candidate_stride=3)
    assert head_pixels_computed == [4, int((mask & lattice).sum())]


def test_part_mask_is_the_mask_heads_sign_on_object_pixels():
    head, blocks, text, mask = _head_and_inputs(seed=2)
    predicted = head_part_mask(head, blocks, GRID, text, mask)
    _, logits = _head_outputs(head, blocks, text, mask_pixels(mask))
    expected = torch.zeros_like(mask)
    expected[mask] = logits > 0
    clear = torch.zeros_like(mask)
    clear[mask] = logits.abs() > 1e-5  # pixels not within float noise of the decision boundary
    assert torch.equal(predicted & clear, expected & clear) and not (predicted & ~mask).any()


def test_uncached_features_run_the_head_on_every_call(monkeypatch):
    head, blocks, text, mask = _head_and_inputs()
    pixels = mask_pixels(mask)
    cached = head_image_features(head, blocks, GRID, text, SIZE, mask)
    uncached = head_image_features(head, blocks, GRID, text, SIZE, mask, cache=False)
    assert torch.equal(uncached.sample(pixels), _head_outputs(head, blocks, text, pixels)[0])
    assert torch.allclose(uncached.sample(pixels), cached.sample(pixels), atol=1e-5)


def test_lattice_head_features_equal_the_head_on_the_lattice_points():
    from funcorr.backbones.base import sample_at_pixels
    from funcorr.model.head import lattice_grid, lattice_head_map

    head, blocks, text, mask = _head_and_inputs()
    fmap, lattice = lattice_head_map(head, blocks, GRID, text, SIZE, stride=2)
    assert lattice == FeatureGrid(4, 2) and fmap.shape == (8, 11, 13)
    centres = lattice.cell_centres(11, 13)
    expected, _ = _head_outputs(head, blocks, text, centres)
    assert torch.allclose(fmap.reshape(8, -1).T, expected, atol=1e-5)
    # The stride-4 lattice is the backbone's cells; the stride-2 one contains them.
    coarse, _ = lattice_head_map(head, blocks, GRID, text, SIZE, stride=4)
    assert torch.allclose(coarse, fmap[:, ::2, ::2], atol=1e-5)
    # Between lattice points the features are interpolated, so they differ from the MLP of the
    # interpolated input (an approximation), yet stay unit vectors close to it.
    between = torch.tensor([[7.0, 9.0], [14.0, 11.0]])
    interpolated = F.normalize(sample_at_pixels(fmap[None], between[None], lattice)[0], dim=-1)
    exact, _ = _head_outputs(head, blocks, text, between)
    assert not torch.allclose(interpolated, exact, atol=1e-4)
    assert bool(((interpolated * exact).sum(-1) > 0.9).all())
    with pytest.raises(ValueError, match="must divide"):
        lattice_grid(GRID, 3)
    # The part mask from lattice features agrees with the per-pixel one on most pixels.
    exact_mask = head_part_mask(head, blocks, GRID, text, mask)
    lattice_mask = head_part_mask(head, blocks, GRID, text, mask, stride=2)
    assert not bool((lattice_mask & ~mask).any())
    assert float((lattice_mask == exact_mask)[mask].float().mean()) > 0.8

"""FunctionHead: shapes, normalisation, where gradients go, and pixel sampling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from funcorr.backbones.base import FeatureGrid
from funcorr.model.head import FunctionHead, HeadConfig

GRID = FeatureGrid(patch_size=14, stride=14)


def make_inputs(batch=2, n_blocks=3, channels=64, cells=(4, 5), n_points=7, text_dim=384, seed=0):
    generator = torch.Generator().manual_seed(seed)
    blocks = torch.randn(batch, n_blocks, channels, *cells, generator=generator)
    height, width = (c * GRID.stride for c in cells)
    points = torch.rand(batch, n_points, 2, generator=generator) * torch.tensor(
        [width - 1.0, height - 1.0]
    )
    text = F.normalize(torch.randn(batch, text_dim, generator=generator), dim=-1)
    return blocks, points, text


@pytest.mark.parametrize("in_dim", [64, 384, 768])
def test_shapes_and_normalisation(in_dim):
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=in_dim))
    blocks, points, text = make_inputs(channels=in_dim)
    features, logits = head(blocks, GRID, points, text)
    assert features.shape == (2, 7, 256) and logits.shape == (2, 7)
    assert torch.allclose(features.norm(dim=-1), torch.ones(2, 7), atol=1e-5)
    projected = head.project_blocks(blocks)
    assert projected.shape == (2, 512, 4, 5)
    assert torch.allclose(projected.norm(dim=1), torch.ones(2, 4, 5), atol=1e-5)


def test_gradients_reach_block_weights_projection_and_mlp():
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=64))
    blocks, points, text = make_inputs()
    features, logits = head(blocks, GRID, points, text)
    (features[:, :, 0].sum() + logits.sum()).backward()
    for name in (
        "block_logits",
        "block_proj.weight",
        "mlp.0.weight",
        "mlp.2.weight",
        "mlp.4.weight",
        "mask_proj.weight",
    ):
        grad = head.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_block_mixing_is_projection_of_each_block_then_softmax_sum():
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=64, normalise_projection=False))
    with torch.no_grad():
        head.block_logits.copy_(torch.tensor([0.0, 1.0, 3.0]))
    blocks, _, _ = make_inputs()
    weights = torch.softmax(torch.tensor([0.0, 1.0, 3.0]), dim=0)
    per_block = torch.stack(
        [head.block_proj(blocks[:, b].permute(0, 2, 3, 1)) for b in range(3)], dim=1
    )
    expected = (per_block * weights[None, :, None, None, None]).sum(1).permute(0, 3, 1, 2)
    assert torch.allclose(head.project_blocks(blocks), expected, atol=1e-5)


def test_point_at_cell_centre_uses_that_cells_feature():
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=64))
    blocks, _, text = make_inputs()
    projected = head.project_blocks(blocks)
    centres = GRID.cell_centres(4, 5)  # (20, 2), row-major
    out = head.embed_points(projected, GRID, centres[None].expand(2, -1, -1), text)
    cells = projected.flatten(2).transpose(1, 2)  # (2, 20, 512), row-major cells
    expected = F.normalize(
        head.mlp(torch.cat([cells, text[:, None].expand(-1, 20, -1)], dim=-1)), dim=-1
    )
    assert torch.allclose(out.features, expected, atol=1e-5)
    # a point between two cells is not either cell's feature
    between = (centres[0] + centres[1]) / 2
    mid = head.embed_points(projected, GRID, between[None, None].expand(2, 1, 2), text).features[
        :, 0
    ]
    assert not torch.allclose(mid, expected[:, 0], atol=1e-3)


def test_text_changes_features():
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=64))
    blocks, points, text = make_inputs()
    other = head(blocks, GRID, points, text.flip(0)).features
    assert not torch.allclose(head(blocks, GRID, points, text).features, other, atol=1e-3)


def test_dense_matches_points_and_is_chunk_independent():
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=64, hidden=128))
    blocks, _, text = make_inputs(cells=(3, 4))
    size = (3 * 14, 4 * 14)
    with torch.no_grad():
        dense = head.dense(blocks, GRID, size, text, chunk_pixels=100)
        whole = head.dense(blocks, GRID, size, text, chunk_pixels=10**6)
        pixels = torch.tensor([[0.0, 0.0], [55.0, 41.0], [20.0, 13.0]])
        points = head(blocks, GRID, pixels[None].expand(2, -1, -1), text)
    assert dense.features.shape == (2, 256, 42, 56) and dense.mask_logits.shape == (2, 42, 56)
    assert torch.allclose(dense.features, whole.features, atol=1e-6)
    for k, (x, y) in enumerate(pixels.long().tolist()):
        assert torch.allclose(dense.features[:, :, y, x], points.features[:, k], atol=1e-5)
        assert torch.allclose(dense.mask_logits[:, y, x], points.mask_logits[:, k], atol=1e-5)


def test_without_mask_head():
    head = FunctionHead(HeadConfig(in_dim=64, mask_head=False, text_dim=512))
    blocks, points, text = make_inputs(text_dim=512)
    assert head(blocks, GRID, points, text).mask_logits is None
    assert head.dense(blocks, GRID, (56, 70), text).mask_logits is None


def test_rejects_mismatched_inputs():
    head = FunctionHead(HeadConfig(in_dim=64))
    blocks, points, text = make_inputs()
    with pytest.raises(ValueError, match="3 blocks of 64 channels"):
        head(blocks[:, :2], GRID, points, text)
    with pytest.raises(ValueError, match="function embeddings"):
        head(blocks, GRID, points, text[:, :100])

"""A trained head's output as queryable image features and predicted part masks."""

from __future__ import annotations

import torch

from funcorr.backbones import FeatureGrid
from funcorr.model.head import FunctionHead
from funcorr.model.matching import ImageFeatures


def head_image_features(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    size: tuple[int, int],
    mask: torch.Tensor,
    chunk: int = 8192,
) -> ImageFeatures:
    """ImageFeatures whose per-pixel features come from the head, computed only at the pixels
    asked for (object pixels, not the whole image). blocks (L, C, h, w); text (D,)."""
    projected = head.project_blocks(blocks[None])

    @torch.no_grad()
    def sample(points: torch.Tensor) -> torch.Tensor:
        points = points.to(projected.device).float()
        out = [head.embed_points(projected, grid, points[None, i : i + chunk], text[None]).features[0] for i in range(0, points.shape[0], chunk)]
        return torch.cat(out) if out else projected.new_zeros(0, head.config.out_dim)

    return ImageFeatures(sample, size, mask.to(projected.device))


@torch.no_grad()
def head_part_mask(head: FunctionHead, blocks: torch.Tensor, grid: FeatureGrid, text: torch.Tensor, object_mask: torch.Tensor) -> torch.Tensor:
    """Functional-part mask predicted by the mask head on the object's pixels. (H, W) bool."""
    if head.mask_proj is None:
        raise ValueError("This head was trained without a mask head.")
    projected = head.project_blocks(blocks[None])
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    points = torch.stack([xs, ys], -1).float().to(projected.device)
    logits = head.embed_points(projected, grid, points[None], text[None]).mask_logits[0]
    out = torch.zeros(object_mask.shape, dtype=torch.bool, device=projected.device)
    out[ys.to(out.device), xs.to(out.device)] = logits > 0
    return out

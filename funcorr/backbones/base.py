"""What every backbone returns, and the one place that maps pixels to feature cells.

A ViT with patch size ``p`` and stride ``s`` produces a feature cell ``(i, j)`` whose
receptive patch covers input pixels ``j*s .. j*s + p - 1`` horizontally, so its centre is
at pixel ``x = j*s + (p - 1) / 2`` (pixel-index coordinates, see :mod:`funcorr.images`).
All sampling of features at pixels goes through :func:`pixel_to_cell`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from funcorr.images import pixel_grid


@dataclass(frozen=True)
class FeatureGrid:
    """Geometry of a dense feature map: patch size and stride in input pixels."""

    patch_size: int
    stride: int

    def grid_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) cells produced for an input of ``height`` x ``width`` pixels."""
        return 1 + (height - self.patch_size) // self.stride, 1 + (
            width - self.patch_size
        ) // self.stride

    def cell_centres(self, h: int, w: int, device: torch.device | None = None) -> torch.Tensor:
        """Pixel xy of every cell centre, row-major. Returns (h*w, 2)."""
        return pixel_grid(h, w, device) * self.stride + (self.patch_size - 1) / 2


def pixel_to_cell(points: torch.Tensor, grid: FeatureGrid) -> torch.Tensor:
    """Continuous cell coordinates (u, v) of pixel xy ``points`` (..., 2); cell centres are integers."""
    return (points - (grid.patch_size - 1) / 2) / grid.stride


def sample_at_pixels(fmap: torch.Tensor, points: torch.Tensor, grid: FeatureGrid) -> torch.Tensor:
    """Bilinearly sample features at pixel coordinates.

    fmap: (B, C, h, w); points: (B, N, 2) pixel xy. Returns (B, N, C). Points outside the
    span of cell centres take the border value.
    """
    _, _, h, w = fmap.shape
    uv = pixel_to_cell(points.to(fmap.dtype), grid)
    norm = torch.stack(
        [uv[..., 0] * 2 / max(w - 1, 1) - 1, uv[..., 1] * 2 / max(h - 1, 1) - 1], dim=-1
    )
    out = F.grid_sample(
        fmap, norm[:, :, None, :], mode="bilinear", padding_mode="border", align_corners=True
    )
    return out[..., 0].transpose(1, 2)


def upsample_to_pixels(
    fmap: torch.Tensor, grid: FeatureGrid, size: tuple[int, int]
) -> torch.Tensor:
    """Dense per-pixel features by bilinear sampling at every pixel.

    fmap: (B, C, h, w); size: (H, W). Returns (B, C, H, W).
    """
    height, width = size
    points = pixel_grid(height, width, fmap.device, fmap.dtype)[None].expand(fmap.shape[0], -1, -1)
    sampled = sample_at_pixels(fmap, points, grid)
    return sampled.transpose(1, 2).reshape(fmap.shape[0], fmap.shape[1], height, width)

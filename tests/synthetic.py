"""Synthetic features shared by the evaluation tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from funcorr.model.matcher import Prepared
from funcorr.model.matching import ImageFeatures


def colour_features(images: list[Prepared], function: str = "") -> list[ImageFeatures]:
    """Per-pixel features from the prepared image's colour (bilinear), unique per world place."""
    out = []
    for prepared in images:
        rgb = prepared.rgb
        height, width = rgb.shape[1:]

        def sample(points: torch.Tensor, rgb=rgb, height=height, width=width) -> torch.Tensor:
            grid = torch.stack(
                [points[:, 0] / (width - 1) * 2 - 1, points[:, 1] / (height - 1) * 2 - 1], -1
            )
            colour = F.grid_sample(rgb[None], grid[None, :, None].float(), align_corners=True)[
                0, :, :, 0
            ].T
            r, g = colour[:, 0] * 3, colour[:, 1] * 3
            return F.normalize(torch.stack([r.cos(), r.sin(), g.cos(), g.sin()], -1), dim=-1)

        out.append(ImageFeatures(sample, (height, width), prepared.mask))
    return out

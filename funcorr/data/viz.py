"""Pictures of correspondence pairs in the style of the paper's Fig. 2.

Each point of image 1 gets a colour from its position inside the bounding box of all
image-1 points (a smooth 2D colour map), and its matched point in image 2 is drawn in
the same colour, so a correct correspondence field shows the same colour layout on
both functional parts.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import Image, ImageDraw

from funcorr.images import save_png_atomic

# Corner colours of the 2D map: top-left, top-right, bottom-left, bottom-right.
CORNERS = np.array([[230, 40, 40], [250, 220, 30], [40, 90, 240], [40, 200, 90]], np.float64)


def position_colors(points: np.ndarray) -> np.ndarray:
    """Colours (N, 3) uint8 for points (N, 2) xy by bilinear blending of :data:`CORNERS` over their bounding box."""
    points = np.asarray(points, np.float64)
    if len(points) == 0:
        return np.zeros((0, 3), np.uint8)
    lo, hi = points.min(0), points.max(0)
    t = (points - lo) / np.maximum(hi - lo, 1e-9)
    tx, ty = t[:, :1], t[:, 1:]
    top = (1 - tx) * CORNERS[0] + tx * CORNERS[1]
    bottom = (1 - tx) * CORNERS[2] + tx * CORNERS[3]
    return np.round((1 - ty) * top + ty * bottom).astype(np.uint8)


def _dim_outside(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Fade pixels outside a mask (H, W) towards white so the functional part stands out."""
    if mask is None:
        return image
    out = image.astype(np.float64)
    out[~mask] = 0.45 * out[~mask] + 0.55 * 255
    return out.astype(np.uint8)


def draw_pair(
    image1: np.ndarray,
    image2: np.ndarray,
    correspondences: np.ndarray,
    part_mask1: np.ndarray | None = None,
    part_mask2: np.ndarray | None = None,
    max_points: int | None = 300,
    radius: float = 2.0,
    gap: int = 8,
    scale: int = 2,
) -> np.ndarray:
    """Side-by-side picture (H * scale, (2 W + gap) * scale, 3) uint8 of colour-coded correspondences.

    image1, image2: (H, W, 3) uint8 (same height); correspondences (N, 2, 2) pixel xy;
    part masks (H, W) bool dim everything else; ``max_points`` subsamples evenly.
    """
    corr = np.asarray(correspondences, np.float64)
    if max_points is not None and len(corr) > max_points:
        corr = corr[np.linspace(0, len(corr) - 1, max_points).round().astype(int)]
    h, w = image1.shape[:2]
    canvas = np.full((h, 2 * w + gap, 3), 255, np.uint8)
    canvas[:, :w] = _dim_outside(image1, part_mask1)
    canvas[:, w + gap : 2 * w + gap] = _dim_outside(image2, part_mask2)
    picture = Image.fromarray(canvas).resize((canvas.shape[1] * scale, h * scale), Image.NEAREST)
    draw = ImageDraw.Draw(picture)
    colors = position_colors(corr[:, 0]) if len(corr) else np.zeros((0, 3), np.uint8)
    for (p1, p2), color in zip(corr, colors, strict=True):
        for x, y in (p1, p2 + [w + gap, 0]):
            cx, cy = (x + 0.5) * scale, (y + 0.5) * scale
            r = radius * scale / 2 + 1
            draw.ellipse(
                [cx - r, cy - r, cx + r, cy + r],
                fill=tuple(int(c) for c in color),
                outline=(20, 20, 20),
            )
    return np.asarray(picture)


def save_pair_picture(path: str | os.PathLike, item: dict, max_points: int | None = 300) -> None:
    """Write the picture of an :class:`~funcorr.data.readers.EvalPairs` item as PNG (atomically)."""

    def to_uint8(image) -> np.ndarray:
        return (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)

    picture = draw_pair(
        to_uint8(item["image1"]),
        to_uint8(item["image2"]),
        item["correspondences"].numpy(),
        item["part_mask1"].numpy(),
        item["part_mask2"].numpy(),
        max_points=max_points,
    )
    save_png_atomic(picture, path)

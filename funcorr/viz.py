"""Pictures of correspondences: side-by-side match lines, label-transfer colourings, heat maps.

Images are (H, W, 3) uint8 arrays; points are (N, 2) xy in those images' pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image, ImageDraw

from funcorr.images import LoadedImage


def to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float [0, 1] tensor or (H, W, 3) array -> (H, W, 3) uint8."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().permute(1, 2, 0).numpy()
    if image.dtype != np.uint8:
        image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return image


def object_picture(image: LoadedImage) -> np.ndarray:
    """(H, W, 3) uint8 picture of an image with the area outside its object mask shown white
    (transparent pixels of an RGBA file often hold black or arbitrary colours)."""
    picture = to_uint8(image.rgb).copy()
    if image.mask is not None:
        picture[~image.mask.numpy()] = 255
    return picture


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 8) -> tuple[np.ndarray, int]:
    """Both images on one white canvas, tops aligned. Returns (canvas, x offset of the right image)."""
    height = max(left.shape[0], right.shape[0])
    canvas = np.full((height, left.shape[1] + gap + right.shape[1], 3), 255, np.uint8)
    canvas[: left.shape[0], : left.shape[1]] = left
    canvas[: right.shape[0], left.shape[1] + gap :] = right
    return canvas, left.shape[1] + gap


def colours(n: int, cmap: str = "jet") -> np.ndarray:
    """n distinct RGB colours along a colormap. (n, 3) uint8."""
    values = np.linspace(0, 1, max(n, 1))[:n]
    return (colormaps[cmap](values)[:, :3] * 255).astype(np.uint8)


def draw_matches(
    left: np.ndarray,
    right: np.ndarray,
    left_xy: np.ndarray,
    right_xy: np.ndarray,
    point_colours: np.ndarray | None = None,
    radius: int = 3,
    line_width: int = 1,
) -> Image.Image:
    """Side-by-side picture with one coloured line and two dots per match."""
    canvas, offset = side_by_side(left, right)
    scale = max(1, round(max(canvas.shape[:2]) / 400))
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    order = np.argsort(np.asarray(left_xy)[:, 1], kind="stable") if len(left_xy) else []
    # Without given colours, colour by vertical order so neighbouring lines are told apart.
    by_rank = point_colours is None
    point_colours = colours(len(left_xy)) if by_rank else point_colours
    for rank, i in enumerate(order):
        (x1, y1), (x2, y2) = left_xy[i], right_xy[i]
        colour = tuple(int(c) for c in point_colours[rank if by_rank else i])
        draw.line([(x1, y1), (x2 + offset, y2)], fill=colour, width=line_width * scale)
        r = radius * scale
        for x, y in ((x1, y1), (x2 + offset, y2)):
            draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline=(255, 255, 255))
    return image


def position_colours(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Colour that encodes a source position (x -> red, y -> green, inverse -> blue). (N, 3) uint8."""
    width, height = size
    u = np.clip(xy[:, 0] / max(width - 1, 1), 0, 1)
    v = np.clip(xy[:, 1] / max(height - 1, 1), 0, 1)
    rgb = np.stack([u, v, 1 - 0.5 * (u + v)], axis=-1)
    return (rgb * 255).astype(np.uint8)


def paint(image: np.ndarray, xy: np.ndarray, rgb: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """Blend per-pixel colours ``rgb`` (N, 3) onto ``image`` at integer pixels ``xy`` (N, 2)."""
    out = image.astype(np.float32).copy()
    xs, ys = xy[:, 0].round().astype(int), xy[:, 1].round().astype(int)
    out[ys, xs] = (1 - alpha) * out[ys, xs] + alpha * rgb
    return out.astype(np.uint8)


def draw_label_transfer(
    left: np.ndarray,
    right: np.ndarray,
    source_xy: np.ndarray,
    target_xy: np.ndarray,
    matched_source_xy: np.ndarray,
) -> Image.Image:
    """Dense label transfer: the source coloured by position, each target pixel by its match's colour.

    source_xy (N, 2) source object pixels; target_xy (M, 2) target pixels; matched_source_xy
    (M, 2) their nearest source pixels.
    """
    size = (left.shape[1], left.shape[0])
    painted_left = paint(left, source_xy, position_colours(source_xy, size))
    painted_right = paint(right, target_xy, position_colours(matched_source_xy, size))
    return Image.fromarray(side_by_side(painted_left, painted_right)[0])


def heatmap_overlay(
    image: np.ndarray, values: np.ndarray, cmap: str = "inferno", alpha: float = 0.6
) -> np.ndarray:
    """Blend a (H, W) map (min-max scaled) onto an (H, W, 3) image."""
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    heat = colormaps[cmap](scaled)[..., :3] * 255
    return ((1 - alpha) * image + alpha * heat).astype(np.uint8)


def mask_overlay(
    image: np.ndarray,
    mask: np.ndarray,
    colour: tuple[int, int, int] = (255, 64, 64),
    alpha: float = 0.55,
) -> np.ndarray:
    """Tint the pixels of a (H, W) bool mask."""
    out = image.astype(np.float32).copy()
    out[mask] = (1 - alpha) * out[mask] + alpha * np.asarray(colour, np.float32)
    return out.astype(np.uint8)

"""Image IO and the resize/pad policy that maps original pixels to network pixels.

Pixel coordinates everywhere in funcorr are ``(x, y)`` = (column, row) in *pixel-index*
units: the centre of the top-left pixel is ``(0, 0)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from funcorr.files import InputError, atomic_path

__all__ = [
    "InputError",
    "LoadedImage",
    "Resize",
    "atomic_path",
    "check_image_size",
    "from_pil",
    "load_image",
    "load_mask",
    "mask_iou",
    "pixel_grid",
    "save_png",
    "save_png_atomic",
]

ResizePolicy = Literal["resize", "pad"]
# Below this on a side an image holds less detail than one ViT patch (14 or 16 px) and no
# object worth matching, whatever the network size (a 1x1 image was once "matched").
MIN_SIDE = 8
# 64 megapixels (a 9248 x 6936 photo): more is refused before decoding, since a small
# compressed file can claim billions of pixels (a decompression bomb).
MAX_PIXELS = 64_000_000


def _too_many_pixels(name: object) -> InputError:
    return InputError(
        f"{name} claims over {MAX_PIXELS / 1e6:.0f} megapixels (a decompression bomb?); downscale it first."
    )


def check_image_size(size: tuple[int, int], name: object = "image") -> None:
    """InputError unless a (W, H) image is at least :data:`MIN_SIDE` px a side and at most
    :data:`MAX_PIXELS` pixels. Called on the header, before any pixel is decoded."""
    width, height = size
    if width * height > MAX_PIXELS:
        raise InputError(
            f"{name} is {width}x{height} = {width * height / 1e6:.0f} megapixels; "
            "funcorr reads at most "
            f"{MAX_PIXELS / 1e6:.0f} (downscale it first)."
        )
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{name} is only {width}x{height} pixels; images need at least {MIN_SIDE} px on each side."
        )


@dataclass(frozen=True)
class LoadedImage:
    """An RGB image in [0, 1] with an optional object mask (from alpha).

    rgb: (3, H, W) float32; mask: (H, W) bool or None.
    """

    rgb: torch.Tensor
    mask: torch.Tensor | None
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(W, H) in pixels."""
        return int(self.rgb.shape[2]), int(self.rgb.shape[1])


def load_image(path: str | os.PathLike) -> LoadedImage:
    """Read RGB, RGBA (alpha > 0 is the object mask), greyscale or palette images."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No image at path {path}.")
    try:
        with Image.open(path) as im:
            check_image_size(im.size, f"Image {path}")
            im.load()
            return from_pil(im, path)
    except Image.DecompressionBombError:
        raise _too_many_pixels(f"Image {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"Could not decode image {path}: {err}") from None


def from_pil(im: Image.Image, path: Path | None = None) -> LoadedImage:
    """Convert a PIL image of any common mode into a :class:`LoadedImage`."""
    check_image_size(im.size, f"Image {path}" if path else "The image")
    mask = None
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA"))
        mask = torch.from_numpy(rgba[..., 3] > 0)
        if not mask.any():
            raise InputError(f"Image {path or ''} has an alpha channel but no opaque pixel.")
        rgb = rgba[..., :3]
    elif im.mode in ("RGB", "L", "P", "I;16", "I", "F", "CMYK", "YCbCr", "1"):
        if im.mode in ("I;16", "I", "F"):
            arr = np.asarray(im, dtype=np.float32)
            arr = (arr - arr.min()) / max(float(arr.max() - arr.min()), 1e-6) * 255.0
            im = Image.fromarray(arr.astype(np.uint8))
        rgb = np.asarray(im.convert("RGB"))
    else:
        raise InputError(f"Unsupported image mode {im.mode!r} in {path or 'image'}.")
    tensor = torch.from_numpy(np.array(rgb, copy=True)).permute(2, 0, 1).float() / 255.0
    return LoadedImage(tensor, mask, path)


def load_mask(path: str | os.PathLike, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read a binary mask image (non-zero = inside; alpha used if present). Returns (H, W) bool."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No mask at path {path}.")
    try:
        with Image.open(path) as im:
            check_image_size(im.size, f"Mask {path}")
            im.load()
            arr = np.asarray(im.convert("RGBA"))
    except Image.DecompressionBombError:
        raise _too_many_pixels(f"Mask {path}") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"Could not decode mask {path}: {err}") from None
    alpha_used = (arr[..., 3] < 255).any()
    mask = arr[..., 3] > 0 if alpha_used else arr[..., :3].max(axis=-1) > 0
    if size is not None and mask.shape[::-1] != tuple(size):
        raise InputError(
            f"Mask {path} is {mask.shape[1]}x{mask.shape[0]} but the image is {size[0]}x{size[1]}."
        )
    if not mask.any():
        raise InputError(f"Mask {path} is empty (no non-zero pixel).")
    return torch.from_numpy(mask)


@dataclass(frozen=True)
class Resize:
    """Affine map from original pixel coordinates to network-input coordinates.

    ``net = orig * scale + offset`` per axis, for pixel-index coordinates (centre convention).
    """

    scale: tuple[float, float]
    offset: tuple[float, float]
    out_size: tuple[int, int]  # (W, H) of the network input
    in_size: tuple[int, int]  # (W, H) of the original image

    def to_net(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) original xy -> (N, 2) network xy."""
        scale = points.new_tensor(self.scale)
        offset = points.new_tensor(self.offset)
        return points * scale + offset

    def to_orig(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) network xy -> (N, 2) original xy."""
        scale = points.new_tensor(self.scale)
        offset = points.new_tensor(self.offset)
        return (points - offset) / scale

    def mask_to_orig(self, net_mask: torch.Tensor) -> torch.Tensor:
        """A square network-size mask (S, S) resampled (nearest) onto the original (H, W) grid."""
        width, height = self.in_size
        net = self.to_net(pixel_grid(height, width)).round().long().clamp(0, net_mask.shape[0] - 1)
        return net_mask[net[:, 1], net[:, 0]].reshape(height, width)


def mask_iou(predicted: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray) -> float:
    """Intersection over union of two (H, W) masks (tensors or arrays, non-zero = inside); 1.0
    when both are empty (they agree)."""
    if isinstance(predicted, torch.Tensor) or isinstance(target, torch.Tensor):
        predicted, target = torch.as_tensor(predicted).bool(), torch.as_tensor(target).bool()
    else:
        predicted, target = np.asarray(predicted, bool), np.asarray(target, bool)
    union = (predicted | target).sum()
    return 1.0 if union == 0 else float((predicted & target).sum() / union)


def pixel_grid(
    height: int, width: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """xy of every pixel of an (H, W) image, row-major: (H * W, 2)."""
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2)


def plan_resize(
    in_size: tuple[int, int], out_size: tuple[int, int], policy: ResizePolicy
) -> Resize:
    """Plan how an image of ``in_size`` (W, H) becomes ``out_size`` (W, H).

    ``resize`` stretches each axis independently (non-uniform when aspect ratios differ);
    ``pad`` keeps the aspect ratio, scales the longer side to fit and pads bottom/right.
    For pixel-index coordinates a stretch by ``s`` maps ``x`` to ``(x + 0.5) * s - 0.5``.
    """
    (w, h), (ow, oh) = in_size, out_size
    if policy == "resize":
        sx, sy = ow / w, oh / h
    elif policy == "pad":
        sx = sy = min(ow / w, oh / h)
    else:
        raise InputError(f"Unknown resize policy {policy!r}; use 'resize' or 'pad'.")
    return Resize((sx, sy), (0.5 * sx - 0.5, 0.5 * sy - 0.5), (ow, oh), (w, h))


def apply_resize(image: torch.Tensor, plan: Resize, mode: str = "bilinear") -> torch.Tensor:
    """Resample (C, H, W) or (H, W) per ``plan``; padding is zeros. Returns the network-size tensor."""
    squeeze = image.dim() == 2
    x = image[None, None].float() if squeeze else image[None].float()
    ow, oh = plan.out_size
    new_w = max(1, round(plan.in_size[0] * plan.scale[0]))
    new_h = max(1, round(plan.in_size[1] * plan.scale[1]))
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    if mode in ("bilinear", "bicubic"):
        kwargs["antialias"] = True
    x = torch.nn.functional.interpolate(x, size=(new_h, new_w), mode=mode, **kwargs)
    out = x.new_zeros(x.shape[0], x.shape[1], oh, ow)
    out[..., : min(oh, new_h), : min(ow, new_w)] = x[..., :oh, :ow]
    out = out[0, 0] if squeeze else out[0]
    return out.clamp(0, 1) if not squeeze else out


def save_png_atomic(
    image: np.ndarray | Image.Image, path: str | os.PathLike, compress_level: int = 6
) -> None:
    """Write a PNG through a temporary file so a crash never leaves half an image.

    compress_level: zlib level 0-9 (6 is PIL's default; 3 encodes noisy photos ~3x faster
    for ~10 % more bytes)."""
    with atomic_path(path) as tmp:
        save_png(image, tmp, compress_level)


def save_png(
    image: np.ndarray | Image.Image, path: str | os.PathLike, compress_level: int = 6
) -> None:
    """Encode ``image`` ((H, W[, C]) uint8 array or PIL image) as PNG at ``path`` (not atomic:
    for a temporary path from :func:`funcorr.files.atomic_paths`)."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(image)
    im.save(path, format="PNG", compress_level=compress_level)

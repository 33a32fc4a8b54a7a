"""Random image backgrounds for renders and for re-compositing cached views.

Photos of tools show them on tables, snow, gravel, hands and printed pages, or on the plain
white of a product shot. :func:`random_background` draws one backdrop of a kind:

- ``colour``: one uniform random colour (the paper's augmentation);
- ``studio``: a product-shot backdrop, near white with a soft gradient and vignette;
- ``gradient``: a linear or radial blend of two random colours;
- ``noise``: smooth coloured fBm value noise (clouds, stains, fabric-like blotches);
- ``photo``: a random crop of a photograph bundled with scikit-image (brick, grass, gravel,
  coffee, a cat, a page of text ...), flipped, tinted and sometimes defocused. Only images
  that scikit-image ships inside its wheel are used, so nothing is downloaded.

Every draw comes from the generator passed in, so a seed gives the same picture.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageFilter
from scipy.ndimage import gaussian_filter

BACKGROUND_KINDS = ("colour", "studio", "gradient", "noise", "photo")

# scikit-image loaders whose files ship inside the package (checked offline by the tests);
# tinted when grey. Natural textures and scenes only: no faces of real persons beyond the
# classic test images, nothing from the evaluation data.
PHOTOS = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "page",
    "rocket",
    "stereo_motorcycle",
    "text",
)


def random_background(
    rng: np.random.Generator, size: tuple[int, int], kinds: Sequence[str] = BACKGROUND_KINDS
) -> np.ndarray:
    """One random backdrop (H, W, 3) uint8 of ``size`` = (H, W), of a kind drawn uniformly
    from ``kinds`` (see the module docstring). ValueError names unknown kinds."""
    unknown = [k for k in kinds if k not in BACKGROUND_KINDS]
    if unknown or not kinds:
        raise ValueError(
            f"Unknown background kinds {unknown}; use some of {', '.join(BACKGROUND_KINDS)}."
        )
    h, w = int(size[0]), int(size[1])
    kind = kinds[int(rng.integers(len(kinds)))] if len(kinds) > 1 else kinds[0]
    image = _MAKERS[kind](rng, h, w)
    return (np.clip(image, 0.0, 255.0) + 0.5).astype(np.uint8)  # rounded (values are >= 0)


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """(3,) float colour in [0, 255], spread over hue, saturation and value like real scenes."""
    import colorsys  # noqa: PLC0415 - tiny stdlib helper

    hue, sat, value = rng.uniform(), rng.uniform(0.0, 0.8) ** 1.5, rng.uniform(0.1, 1.0)
    return 255.0 * np.array(colorsys.hsv_to_rgb(hue, sat, value))


def _coords(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates, (1, W) and (H, 1), normalised to [-1, 1] along the longer side."""
    scale = 2.0 / max(h, w)
    xs = (np.arange(w, dtype=np.float32) - (w - 1) / 2) * scale
    ys = (np.arange(h, dtype=np.float32) - (h - 1) / 2) * scale
    return xs[None, :], ys[:, None]


def _colour(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.broadcast_to(rng.integers(0, 256, 3).astype(np.float32), (h, w, 3))


def _studio(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = (rng.uniform(200, 255) + rng.uniform(-8, 8, 3)).astype(np.float32)
    x, y = _coords(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = x * np.cos(angle) + y * np.sin(angle)
    shade = 1.0 + rng.uniform(0.0, 0.08) * ramp - rng.uniform(0.0, 0.15) * (x**2 + y**2) / 2
    return base[None, None] * shade.astype(np.float32)[..., None]


def _gradient(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    a, b = _random_colour(rng).astype(np.float32), _random_colour(rng).astype(np.float32)
    x, y = _coords(h, w)
    if rng.uniform() < 0.6:
        angle = rng.uniform(0, 2 * np.pi)
        t = 0.5 + 0.5 * (x * np.cos(angle) + y * np.sin(angle)) / np.sqrt(2)
    else:  # radial, from a random centre
        cx, cy = rng.uniform(-0.7, 0.7, 2)
        t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2) / rng.uniform(1.0, 2.5)
    t = np.clip(np.broadcast_to(t, (h, w)), 0.0, 1.0).astype(np.float32)[..., None]
    return a * (1 - t) + b * t


def fbm(
    rng: np.random.Generator,
    h: int,
    w: int,
    octaves: int = 5,
    base_cells: float = 3.0,
    contrast: float = 1.6,
) -> np.ndarray:
    """Smooth fractal value noise (H, W) in [0, 1]: octaves of random lattices upsampled
    bicubically, each twice as fine and half as strong as the last."""
    out = np.zeros((h, w), np.float32)
    total = 0.0
    for octave in range(octaves):
        cells = base_cells * 2**octave
        gh, gw = (
            max(2, int(np.ceil(cells * h / max(h, w))) + 2),
            max(2, int(np.ceil(cells * w / max(h, w))) + 2),
        )
        lattice = Image.fromarray(rng.uniform(0, 1, (gh, gw)).astype(np.float32), mode="F")
        up = np.asarray(lattice.resize((w, h), Image.BICUBIC))
        amplitude = 0.5**octave
        out += amplitude * up
        total += amplitude
    out /= total
    return np.clip((out - out.mean()) * contrast * 2.0 + 0.5, 0.0, 1.0)


def _noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    # A palette around one colour (stone, fabric, wood stain), sometimes with a contrasting third.
    base = _random_colour(rng)
    dark = base * rng.uniform(0.35, 0.85)
    other = (
        0.5 * (base + _random_colour(rng)) if rng.uniform() < 0.5 else base * rng.uniform(1.0, 1.4)
    )
    colours = np.stack([dark, base, np.minimum(other, 255.0)]).astype(np.float32)
    t = fbm(
        rng,
        h,
        w,
        octaves=int(rng.integers(3, 6)),
        base_cells=rng.uniform(1.5, 6.0),
        contrast=rng.uniform(0.6, 1.4),
    )
    t2 = 2.0 * t[..., None]  # piecewise-linear palette through the three colours
    image = np.where(
        t2 < 1,
        colours[0] * (1 - t2) + colours[1] * t2,
        colours[1] * (2 - t2) + colours[2] * (t2 - 1),
    )
    grain = gaussian_filter(rng.standard_normal((h, w), dtype=np.float32), 0.7)
    grain *= np.float32(rng.uniform(0, 10))
    return image + grain[..., None]


@functools.lru_cache(maxsize=len(PHOTOS))
def _photo_pixels(name: str) -> np.ndarray:
    """A scikit-image sample photo as (H, W, 3) uint8 (grey images repeated)."""
    import skimage.data  # noqa: PLC0415 - only for photo backgrounds

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo pairs: the left image
        image = image[0]
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    image = image[..., :3].astype(np.uint8)
    image.setflags(write=False)
    return image


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    source = _photo_pixels(PHOTOS[int(rng.integers(len(PHOTOS)))])
    sh, sw = source.shape[:2]
    # Crop with the output's aspect ratio, between a quarter and all of the shorter side.
    side = rng.uniform(0.25, 1.0) * min(sh, sw * h / w)
    ch, cw = max(2, int(side)), max(2, int(side * w / h))
    top, left = int(rng.integers(0, sh - ch + 1)), int(rng.integers(0, sw - cw + 1))
    crop = Image.fromarray(np.ascontiguousarray(source[top : top + ch, left : left + cw]))
    crop = crop.resize((w, h), Image.BILINEAR)
    if rng.uniform() < 0.4:  # defocused backdrop, as behind a close-up
        crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.5) * max(h, w) / 224))
    image = np.asarray(crop, np.float32)
    if rng.uniform() < 0.5:
        image = image[:, ::-1]
    if rng.uniform() < 0.5:
        image = image[::-1]
    grey = image.mean(axis=2, keepdims=True)
    saturation = np.float32(rng.uniform(0.6, 1.3))
    tint = (1.0 + rng.uniform(-0.25, 0.25, 3)).astype(np.float32)
    contrast, brightness = np.float32(rng.uniform(0.7, 1.15)), np.float32(rng.uniform(-30, 30))
    image = (grey + saturation * (image - grey)) * tint
    return (image - 128.0) * contrast + 128.0 + brightness


_MAKERS = {
    "colour": _colour,
    "studio": _studio,
    "gradient": _gradient,
    "noise": _noise,
    "photo": _photo,
}

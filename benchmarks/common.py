"""What the benchmarks share: rendered objects (funcorr's own data engine, nothing downloaded)
zoomed to a chosen number of pixels, a random-weight head checkpoint, the previous matching
engine as a baseline, and a line describing the (shared) machine."""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

#: Bulky objects of the pour-with family: they can fill 42 % of the frame when zoomed.
CATEGORIES = ("kettle", "watering can", "teapot", "jug", "mug", "bottle")
SIZE = 224


def _zoom(image: torch.Tensor, centre: torch.Tensor, zoom: float, mode: str) -> torch.Tensor:
    """(C, S, S) -> the same frame magnified ``zoom`` times about ``centre`` (x, y) pixels."""
    side = image.shape[-1]
    scale = 1 / zoom
    shift = (centre / (side - 1)) * 2 - 1
    theta = torch.tensor([[scale, 0.0, float(shift[0])], [0.0, scale, float(shift[1])]])[None]
    grid = F.affine_grid(theta, [1, image.shape[0], side, side], align_corners=True)
    return F.grid_sample(image[None], grid, mode=mode, padding_mode="border", align_corners=True)[0]


def rendered_object(category: str, seed: int, pixels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A rendered ``category`` object zoomed to cover about ``pixels`` pixels.

    Returns rgb (3, 224, 224) in [0, 1] and mask (224, 224) bool.
    """
    from funcorr.data.assets import generate
    from funcorr.data.render import render_views

    view = render_views(
        generate(category, seed), 1, (SIZE, SIZE), seed=seed, elevation_range=(10, 30)
    )[0]
    rgb = torch.from_numpy(view.rgb).permute(2, 0, 1).float() / 255
    mask = torch.from_numpy(view.mask)
    ys, xs = torch.nonzero(mask, as_tuple=True)
    centre = torch.tensor([(xs.min() + xs.max()) / 2.0, (ys.min() + ys.max()) / 2.0])
    zoom = 1.0
    for _ in range(3):  # the frame clips large zooms: correct on the measured area
        zoom *= (
            pixels / max(int(_zoom(mask[None].float(), centre, zoom, "nearest")[0].sum()), 1)
        ) ** 0.5
    return _zoom(rgb, centre, zoom, "bilinear").clamp(0, 1), _zoom(
        mask[None].float(), centre, zoom, "nearest"
    )[0] > 0.5


def machine_line() -> str:
    """Threads and load, printed with every measurement: the machine is shared."""
    load = os.getloadavg()
    return f"torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} (1 / 5 min)"


@contextmanager
def previous_engine() -> Iterator[None]:
    """The engine before features were kept and searches pruned: brute-force search only, and
    a trained head re-run over the candidates at every search."""
    from funcorr.model import head as head_features
    from funcorr.model import matcher as matcher_module
    from funcorr.model import matching

    saved = matching.CELL_SEARCH_MIN_PAIRS, matcher_module.head_image_features
    matching.CELL_SEARCH_MIN_PAIRS = math.inf
    matcher_module.head_image_features = functools.partial(
        head_features.head_image_features, cache=False
    )
    try:
        yield
    finally:
        matching.CELL_SEARCH_MIN_PAIRS, matcher_module.head_image_features = saved


def random_head_checkpoint(folder: Path) -> Path:
    """A checkpoint of an untrained head of the default size on dinov2-s14: it times exactly
    like a trained one, so benchmarks run where no checkpoint is at hand."""
    from funcorr.backbones import load_backbone
    from funcorr.model.checkpoint import checkpoint_record, save_checkpoint
    from funcorr.model.head import FunctionHead, HeadConfig
    from funcorr.text import load_function_embedder

    backbone = load_backbone("dinov2-s14")
    torch.manual_seed(0)
    text_dim = load_function_embedder("minilm").dim
    head = FunctionHead(
        HeadConfig(in_dim=backbone.dim, n_blocks=len(backbone.layers), text_dim=text_dim)
    )
    spec = {"name": "dinov2-s14", "layers": list(backbone.layers), "stride": backbone.grid.stride}
    path = Path(folder) / "random-head.safetensors"
    save_checkpoint(path, head, checkpoint_record(head, spec, "minilm"))
    return path

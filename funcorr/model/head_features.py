"""A trained head's output as queryable image features and predicted part masks.

The head is an MLP applied to every pixel (paper Sec. 4), the costly part of matching with
a checkpoint. :func:`head_image_features` therefore computes the feature of an object pixel
the first time it is asked for, in batches, and keeps it (:class:`PixelCache`): a search over
the object costs the head once and then one matrix product, and so does every later search
into the same image; a search over a lattice of the object (``transfer_points`` with
``candidate_stride``) computes only the lattice. Other points (sub-pixel positions,
background pixels) are computed when asked for and not kept.

The object pixels take a shortcut that is exact in real arithmetic: the MLP's first layer
is linear and a pixel's input is a convex (bilinear) mix of the four cells around it, so
the first layer is applied to the h x w cells once and its output interpolated, instead of
being applied to every pixel (40 % of the MLP's work for the default sizes). Results agree
with :meth:`FunctionHead.embed_points` to float rounding.
"""

from __future__ import annotations

import threading

import torch
import torch.nn.functional as F
from torch import nn

from funcorr.backbones import FeatureGrid
from funcorr.backbones.base import sample_at_pixels
from funcorr.model.head import FunctionHead
from funcorr.model.matching import ImageFeatures, mask_pixels


def pixel_rows(index: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Row of each point (N, 2) xy in a table whose (H, W) ``index`` holds each pixel's row
    (-1 for pixels not held); -1 for points that are not a held whole pixel. (N,) long."""
    height, width = index.shape
    rounded = points.round()
    whole = (rounded == points).all(dim=1)
    inside = (
        whole
        & (rounded[:, 0] >= 0)
        & (rounded[:, 0] < width)
        & (rounded[:, 1] >= 0)
        & (rounded[:, 1] < height)
    )
    rows = torch.full((points.shape[0],), -1, dtype=torch.long, device=index.device)
    xy = rounded[inside].long().to(index.device)
    rows[inside.to(rows.device)] = index[xy[:, 1], xy[:, 0]]
    return rows


def _folds_first_layer(head: FunctionHead) -> bool:
    """Whether the head's MLP starts with a Linear layer followed by element-wise layers and
    Linears only (the structure :func:`dense_head_outputs` relies on)."""
    layers = list(head.mlp)
    return (
        bool(layers)
        and isinstance(layers[0], nn.Linear)
        and all(isinstance(m, (nn.Linear, nn.ReLU)) for m in layers)
    )


@torch.no_grad()
def dense_head_outputs(
    head: FunctionHead,
    projected: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    points: torch.Tensor,
    chunk: int = 8192,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Head features (N, out_dim) and mask logits (N,) (None without a mask head) at pixel xy
    points (N, 2). projected: (1, proj_dim, h, w) from ``head.project_blocks``; text: (D,).

    Same values as ``head.embed_points`` up to float rounding; the first layer runs on cells.
    """
    if not _folds_first_layer(head):
        out = [
            head.embed_points(projected, grid, points[None, i : i + chunk], text[None])
            for i in range(0, points.shape[0], chunk)
        ]
        features = torch.cat([o.features[0] for o in out])
        logits = torch.cat([o.mask_logits[0] for o in out]) if head.mask_proj is not None else None
        return features, logits
    first, rest = head.mlp[0], head.mlp[1:]
    proj_dim = projected.shape[1]
    # First layer on the cells: W_p . cell + (W_t . text + b); bilinear weights sum to one,
    # so interpolating this equals applying the layer to the interpolated input.
    cells = torch.einsum("op,phw->ohw", first.weight[:, :proj_dim], projected[0])
    constant = first.weight[:, proj_dim:] @ text.to(projected.dtype)
    if first.bias is not None:
        constant = constant + first.bias
    hidden_cells = (cells + constant[:, None, None])[None]
    features = []
    for start in range(0, points.shape[0], chunk):
        hidden = sample_at_pixels(
            hidden_cells, points[None, start : start + chunk].to(projected), grid
        )[0]
        features.append(F.normalize(rest(hidden), dim=-1))
    features = torch.cat(features) if features else projected.new_zeros(0, head.config.out_dim)
    logits = head.mask_proj(features)[:, 0] if head.mask_proj is not None else None
    return features, logits


class PixelCache:
    """Head features of the object pixels, each computed on first request and kept.

    compute: pixel xy (N, 2) -> (N, C) features; xy: (P, 2) the object pixels, row-major.
    Thread-safe (the viewer serves requests on several threads).
    """

    def __init__(self, compute, xy: torch.Tensor, channels: int):
        self._compute = compute
        self._xy = xy
        self._features = xy.new_empty(xy.shape[0], channels)
        self._done = torch.zeros(xy.shape[0], dtype=torch.bool, device=xy.device)
        self._lock = threading.Lock()

    @property
    def computed(self) -> int:
        """How many object pixels have been computed so far."""
        return int(self._done.sum())

    def get(self, rows: torch.Tensor) -> torch.Tensor:
        """Features of object pixels ``rows`` (N,), computing the missing ones. (N, C)."""
        with self._lock:
            missing = rows[~self._done[rows]].unique()
            if missing.numel():
                self._features[missing] = self._compute(self._xy[missing])
                self._done[missing] = True
            return self._features[rows]


def head_image_features(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    size: tuple[int, int],
    mask: torch.Tensor,
    chunk: int = 8192,
    cache: bool = True,
) -> ImageFeatures:
    """ImageFeatures of a trained head: the feature of an object pixel is computed the first
    time it is asked for and kept; any other point is computed when asked for. blocks (L, C, h, w);
    text (D,); mask (H, W) bool object mask. ``cache=False`` computes every point on every
    call instead (less memory, the head runs again for each search)."""
    projected = head.project_blocks(blocks[None]).detach()
    mask = mask.to(projected.device)
    # Table row of each held pixel; with cache=False no pixel is held.
    index = torch.full(mask.shape, -1, dtype=torch.long, device=projected.device)
    if cache:
        index[mask] = torch.arange(int(mask.sum()), device=projected.device)

    def compute(xy: torch.Tensor) -> torch.Tensor:
        return dense_head_outputs(head, projected, grid, text, xy, chunk)[0]

    cached = PixelCache(compute, mask_pixels(mask).to(projected.device), head.config.out_dim)

    @torch.no_grad()
    def sample(points: torch.Tensor) -> torch.Tensor:
        points = points.to(projected.device).float()
        rows = pixel_rows(index, points)
        found = rows >= 0
        out = torch.empty(
            points.shape[0], head.config.out_dim, dtype=projected.dtype, device=projected.device
        )
        if bool(found.any()):
            out[found] = cached.get(rows[found])
        if not bool(found.all()):
            missing = points[~found]
            out[~found] = torch.cat(
                [
                    head.embed_points(projected, grid, part[None], text[None]).features[0]
                    for part in missing.split(chunk)
                ]
            )
        return out

    return ImageFeatures(sample, size, mask)


@torch.no_grad()
def head_part_mask(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    object_mask: torch.Tensor,
) -> torch.Tensor:
    """Functional-part mask predicted by the mask head on the object's pixels. (H, W) bool."""
    if head.mask_proj is None:
        raise ValueError("This head was trained without a mask head.")
    projected = head.project_blocks(blocks[None])
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    points = torch.stack([xs, ys], -1).float().to(projected.device)
    _, logits = dense_head_outputs(head, projected, grid, text, points)
    out = torch.zeros(object_mask.shape, dtype=torch.bool, device=projected.device)
    out[ys.to(out.device), xs.to(out.device)] = logits > 0
    return out

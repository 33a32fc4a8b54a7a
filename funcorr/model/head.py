"""The function-conditioned head: frozen backbone blocks + a function embedding -> point features.

Pipeline (paper Sec. 4; the reference ``DINO_embedder`` + ``MLPConditioner``):

1. each of the L block maps is projected by one shared bias-free linear layer C -> proj_dim,
   and the blocks are mixed with learned softmax weights, giving a (B, proj_dim, h, w) map
   that is L2-normalised per cell;
2. that map is sampled bilinearly at pixel coordinates through
   :func:`funcorr.backbones.base.sample_at_pixels` (the one pixel <-> cell mapping);
3. the function embedding (B, text_dim) is concatenated to every point;
4. an MLP ``proj+text -> hidden -> hidden -> out_dim`` (last layer bias-free) gives the
   point feature, L2-normalised;
5. optionally a linear mask head turns each point feature into one logit: "is this pixel on
   the functional part of the named function".

Inference over whole images (the second half of this module): the MLP runs on every object
pixel, the costly part of matching with a trained head. :func:`head_image_features`
therefore computes the feature of an object pixel the first time it is asked for, in
batches, and keeps it (:class:`PixelCache`): a search over the object costs the head once and
then one matrix product. The object pixels take a shortcut that is exact in real arithmetic
(:func:`dense_head_outputs`): the MLP's first layer is linear and a pixel's input is a convex
(bilinear) mix of the four cells around it, so the first layer is applied to the h x w cells
once and its output interpolated (40 % of the MLP's work for the default sizes). Results
agree with :meth:`FunctionHead.embed_points` to float rounding. Far cheaper, and the shipped
model's default: :func:`lattice_head_map` runs the MLP only on a lattice nested in the
backbone's cells and lets pixel features be the interpolation of its outputs (an
approximation whose cost the README measures).

The whole path from an image to matches is :class:`funcorr.model.model.Model` (backbone, this
head, the function embedding); checkpoint files are read and written by
:mod:`funcorr.model.checkpoint`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from funcorr.backbones.base import FeatureGrid, sample_at_pixels
from funcorr.images import pixel_grid
from funcorr.model.matching import ImageFeatures, mask_pixels


@dataclass(frozen=True)
class HeadConfig:
    """Sizes of :class:`FunctionHead`.

    in_dim: channels C of the backbone blocks; n_blocks: L blocks mixed; text_dim: size of the
    function embedding (384 for ``minilm``, 512 for CLIP); normalise_projection: L2-normalise
    the mixed block map per cell, as the reference does, so the MLP sees unit-scale inputs
    whatever the backbone's activation scale.
    """

    in_dim: int
    n_blocks: int = 3
    proj_dim: int = 512
    text_dim: int = 384
    hidden: int = 1024
    out_dim: int = 256
    mask_head: bool = True
    normalise_projection: bool = True


class PointOutput(NamedTuple):
    """features: (B, N, out_dim) unit vectors; mask_logits: (B, N), or None without a mask head."""

    features: torch.Tensor
    mask_logits: torch.Tensor | None


class DenseOutput(NamedTuple):
    """features: (B, out_dim, H, W) unit vectors; mask_logits: (B, H, W), or None without a mask head."""

    features: torch.Tensor
    mask_logits: torch.Tensor | None


class FunctionHead(nn.Module):
    """Trainable head over frozen backbone blocks, conditioned on a function embedding."""

    def __init__(self, config: HeadConfig):
        super().__init__()
        self.config = config
        self.block_proj = nn.Linear(config.in_dim, config.proj_dim, bias=False)
        # Zeros = equal block weights at the start, so no block is favoured before training.
        self.block_logits = nn.Parameter(torch.zeros(config.n_blocks))
        self.mlp = nn.Sequential(
            nn.Linear(config.proj_dim + config.text_dim, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.hidden),
            nn.ReLU(),
            nn.Linear(config.hidden, config.out_dim, bias=False),
        )
        self.mask_proj = nn.Linear(config.out_dim, 1) if config.mask_head else None

    def block_weights(self) -> torch.Tensor:
        """Softmax mixing weights of the blocks, (L,)."""
        return self.block_logits.softmax(dim=0)

    def project_blocks(self, blocks: torch.Tensor) -> torch.Tensor:
        """Mix and project block features: (B, L, C, h, w) -> (B, proj_dim, h, w).

        The projection is shared and bias-free, so projecting each block and then mixing equals
        mixing and then projecting once; the latter does L times fewer matmuls.
        """
        self._check_blocks(blocks)
        weights = self.block_weights().to(blocks.dtype)
        mixed = torch.einsum("l,blchw->bhwc", weights, blocks)  # (B, h, w, C)
        projected = self.block_proj(mixed).permute(0, 3, 1, 2)  # (B, proj_dim, h, w)
        return F.normalize(projected, dim=1) if self.config.normalise_projection else projected

    def embed_points(
        self, projected: torch.Tensor, grid: FeatureGrid, points: torch.Tensor, text: torch.Tensor
    ) -> PointOutput:
        """Point features from a projected map.

        projected: (B, proj_dim, h, w) from :meth:`project_blocks`; points: (B, N, 2) pixel xy;
        text: (B, text_dim). Returns features (B, N, out_dim) and mask logits (B, N).
        """
        self._check_text(text, projected.shape[0])
        sampled = sample_at_pixels(projected, points, grid)  # (B, N, proj_dim)
        conditioning = text.to(sampled.dtype)[:, None, :].expand(-1, sampled.shape[1], -1)
        features = F.normalize(self.mlp(torch.cat([sampled, conditioning], dim=-1)), dim=-1)
        mask_logits = self.mask_proj(features)[..., 0] if self.mask_proj is not None else None
        return PointOutput(features, mask_logits)

    def forward(
        self, blocks: torch.Tensor, grid: FeatureGrid, points: torch.Tensor, text: torch.Tensor
    ) -> PointOutput:
        """blocks: (B, L, C, h, w); points: (B, N, 2) pixel xy; text: (B, text_dim).

        Returns features (B, N, out_dim) and mask logits (B, N) (None without a mask head).
        """
        return self.embed_points(self.project_blocks(blocks), grid, points, text)

    def dense(
        self,
        blocks: torch.Tensor,
        grid: FeatureGrid,
        size: tuple[int, int],
        text: torch.Tensor,
        chunk_pixels: int = 8192,
    ) -> DenseOutput:
        """Features at every pixel of an (H, W) image.

        blocks: (B, L, C, h, w); size: (H, W) of the network input; text: (B, text_dim).
        The MLP runs on ``chunk_pixels`` pixels at a time, so its activations stay at
        B x chunk_pixels x hidden whatever the image size. Returns features (B, out_dim, H, W)
        and mask logits (B, H, W). Call under ``torch.no_grad()`` for inference.
        """
        height, width = size
        projected = self.project_blocks(blocks)
        batch = projected.shape[0]
        pixels = pixel_grid(height, width, projected.device, projected.dtype)  # (H*W, 2)
        features, logits = [], []
        for start in range(0, pixels.shape[0], chunk_pixels):
            chunk = pixels[start : start + chunk_pixels][None].expand(batch, -1, -1)
            out = self.embed_points(projected, grid, chunk, text)
            features.append(out.features)
            logits.append(out.mask_logits)
        dense_features = (
            torch.cat(features, dim=1).transpose(1, 2).reshape(batch, -1, height, width)
        )
        dense_logits = (
            torch.cat(logits, dim=1).reshape(batch, height, width)
            if self.mask_proj is not None
            else None
        )
        return DenseOutput(dense_features, dense_logits)

    def _check_blocks(self, blocks: torch.Tensor) -> None:
        if blocks.dim() != 5:
            raise ValueError(
                f"Expected block features (B, L, C, h, w), got shape {tuple(blocks.shape)}."
            )
        _, n_blocks, channels, _, _ = blocks.shape
        if n_blocks != self.config.n_blocks or channels != self.config.in_dim:
            raise ValueError(
                f"Head expects {self.config.n_blocks} blocks of {self.config.in_dim} channels, "
                f"got {n_blocks} blocks of {channels}."
            )

    def _check_text(self, text: torch.Tensor, batch: int) -> None:
        if text.shape != (batch, self.config.text_dim):
            raise ValueError(
                f"Expected function embeddings ({batch}, {self.config.text_dim}), got {tuple(text.shape)}."
            )


# --------------------------------------------------------------------------- whole images


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


def lattice_grid(grid: FeatureGrid, stride: int) -> FeatureGrid:
    """The lattice of ``stride`` px nested in the backbone's ``grid`` (same first centre, so
    every backbone cell centre is a lattice point); ``stride`` must divide the grid's."""
    if stride < 1 or grid.stride % stride:
        raise ValueError(
            f"The head lattice stride must divide the backbone stride {grid.stride}, got {stride}."
        )
    return FeatureGrid(grid.patch_size, stride)


@torch.no_grad()
def lattice_head_map(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    size: tuple[int, int],
    stride: int,
) -> tuple[torch.Tensor, FeatureGrid]:
    """Head features at the points of a ``stride`` px lattice, as a cell map (out_dim, h', w')
    of unit vectors on the returned grid. blocks (L, C, h, w); text (D,); size (H, W).

    An approximation of the per-pixel head (the paper's, :func:`head_image_features`): pixel
    features become the normalised bilinear interpolation of lattice outputs instead of the
    MLP of interpolated inputs. The MLP then runs on h' x w' points (256 for the backbone's
    cells at 224 px) instead of every object pixel, and the features are a cell map, so the
    pruned exact search applies to them. ``benchmarks/bench_transfer.py`` and the README's
    Model card measure what it costs in PCK.
    """
    lattice = lattice_grid(grid, stride)
    h, w = lattice.grid_size(*size)
    projected = head.project_blocks(blocks[None])
    centres = lattice.cell_centres(h, w, projected.device).to(projected.dtype)
    features, _ = dense_head_outputs(head, projected, grid, text, centres)
    return features.T.reshape(-1, h, w).contiguous(), lattice


@torch.no_grad()
def head_part_mask(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    object_mask: torch.Tensor,
    stride: int = 1,
) -> torch.Tensor:
    """Functional-part mask predicted by the mask head on the object's pixels. (H, W) bool.

    ``stride`` > 1: from the head's features on that lattice (:func:`lattice_head_map`)."""
    if head.mask_proj is None:
        raise ValueError("This head was trained without a mask head.")
    projected = head.project_blocks(blocks[None])
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    points = torch.stack([xs, ys], -1).float().to(projected.device)
    if stride > 1:
        fmap, lattice = lattice_head_map(head, blocks, grid, text, object_mask.shape, stride)
        sampled = sample_at_pixels(fmap[None], points[None], lattice)[0]
        logits = head.mask_proj(F.normalize(sampled, dim=-1))[:, 0]
    else:
        _, logits = dense_head_outputs(head, projected, grid, text, points)
    out = torch.zeros(object_mask.shape, dtype=torch.bool, device=projected.device)
    out[ys.to(out.device), xs.to(out.device)] = logits > 0
    return out

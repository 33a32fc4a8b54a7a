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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from funcorr.backbones.base import FeatureGrid, sample_at_pixels
from funcorr.images import pixel_grid


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

    def embed_points(self, projected: torch.Tensor, grid: FeatureGrid, points: torch.Tensor, text: torch.Tensor) -> PointOutput:
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

    def forward(self, blocks: torch.Tensor, grid: FeatureGrid, points: torch.Tensor, text: torch.Tensor) -> PointOutput:
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
        dense_features = torch.cat(features, dim=1).transpose(1, 2).reshape(batch, -1, height, width)
        dense_logits = torch.cat(logits, dim=1).reshape(batch, height, width) if self.mask_proj is not None else None
        return DenseOutput(dense_features, dense_logits)

    def _check_blocks(self, blocks: torch.Tensor) -> None:
        if blocks.dim() != 5:
            raise ValueError(f"Expected block features (B, L, C, h, w), got shape {tuple(blocks.shape)}.")
        _, n_blocks, channels, _, _ = blocks.shape
        if n_blocks != self.config.n_blocks or channels != self.config.in_dim:
            raise ValueError(
                f"Head expects {self.config.n_blocks} blocks of {self.config.in_dim} channels, "
                f"got {n_blocks} blocks of {channels}."
            )

    def _check_text(self, text: torch.Tensor, batch: int) -> None:
        if text.shape != (batch, self.config.text_dim):
            raise ValueError(f"Expected function embeddings ({batch}, {self.config.text_dim}), got {tuple(text.shape)}.")

"""Dense features from Vision Transformers held as Hugging Face modules.

``Dinov2Backbone`` runs the patch embedding itself so that the stride can differ from the
patch size (the paper's half-stride variant) with position embeddings interpolated to the
resulting grid. ``HFVisionBackbone`` reads ``hidden_states`` of any other HF vision tower
(DINOv3, CLIP, SigLIP) at its native stride.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from funcorr.backbones.base import FeatureGrid

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_layers(layers: Sequence[int] | int | None, num_layers: int) -> tuple[int, ...]:
    """Block indices to return. ``None`` = last 3; an int ``n`` = last n; negatives count from the end."""
    if layers is None:
        layers = 3
    if isinstance(layers, int):
        if not 1 <= layers <= num_layers:
            raise ValueError(f"Asked for the last {layers} blocks of a {num_layers}-block model.")
        return tuple(range(num_layers - layers, num_layers))
    resolved = tuple(i + num_layers if i < 0 else i for i in layers)
    bad = [i for i in resolved if not 0 <= i < num_layers]
    if bad or not resolved:
        raise ValueError(
            f"Block indices {list(layers)} out of range for a {num_layers}-block model."
        )
    return resolved


@dataclass(frozen=True)
class Encoding:
    """One backbone pass: ``blocks`` (B, L, C, h, w) of the selected layers, and ``saliency``
    (B, H, W) in [0, 1] from the salient-object decoder (None when not asked or not present)."""

    blocks: torch.Tensor
    saliency: torch.Tensor | None = None


class Backbone(nn.Module):
    """Frozen feature extractor: images (B, 3, H, W) in [0, 1] -> block features (B, L, C, h, w).

    ``decoder`` is a salient-object decoder over the final-norm patch tokens when the weights
    ship one (the offline ``dinov2-s14``), else None.
    """

    grid: FeatureGrid
    dim: int
    layers: tuple[int, ...]
    num_layers: int
    decoder: nn.Module | None

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.decoder = None
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def encode(self, images: torch.Tensor, saliency: bool = False) -> Encoding:
        """Block features and, with ``saliency`` and a decoder, the saliency map of the same pass."""
        if saliency and self.decoder is not None:
            raise NotImplementedError(f"{type(self).__name__} has a decoder but no encode().")
        return Encoding(self(images))

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"Expected images (B, 3, H, W), got {tuple(images.shape)}.")
        p = self.grid.patch_size
        if images.shape[-1] < p or images.shape[-2] < p:
            raise ValueError(
                f"Images must be at least {p}x{p} pixels, got {tuple(images.shape[-2:])}."
            )
        return (images.to(self.mean.dtype) - self.mean) / self.std

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Equal-weight average of the selected blocks, as the paper's raw-DINO baseline. (B, C, h, w)."""
        return self(images).mean(dim=1)


class Dinov2Backbone(Backbone):
    """DINOv2 (with or without registers) from a ``transformers.Dinov2Model``."""

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[int] | int | None = None,
        stride: int | None = None,
        decoder: nn.Module | None = None,
    ):
        super().__init__(IMAGENET_MEAN, IMAGENET_STD)
        self.model = model.requires_grad_(False).eval()
        self.decoder = None if decoder is None else decoder.requires_grad_(False).eval()
        config = model.config
        patch = config.patch_size
        stride = stride or patch
        if patch % stride:
            raise ValueError(f"Stride {stride} must divide the patch size {patch}.")
        self.grid = FeatureGrid(patch, stride)
        self.dim = config.hidden_size
        self.num_layers = config.num_hidden_layers
        self.layers = resolve_layers(layers, self.num_layers)
        self.num_registers = (
            getattr(config, "num_register_tokens", 0)
            if hasattr(model.embeddings, "register_tokens")
            else 0
        )

    def _position_embeddings(self, h: int, w: int) -> torch.Tensor:
        """Patch position embeddings bicubically resized to an (h, w) grid. Returns (1, h*w, C)."""
        pos = self.model.embeddings.position_embeddings[:, 1:]
        side = int(pos.shape[1] ** 0.5)
        if (side, side) == (h, w):
            return pos
        grid = pos.reshape(1, side, side, -1).permute(0, 3, 1, 2).float()
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
        return grid.permute(0, 2, 3, 1).reshape(1, h * w, -1).to(pos.dtype)

    def embed(self, images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        """Patch + position embedding with this backbone's stride. Returns tokens (B, 1+R+h*w, C), h, w."""
        emb = self.model.embeddings
        proj = emb.patch_embeddings.projection
        x = F.conv2d(images.to(proj.weight.dtype), proj.weight, proj.bias, stride=self.grid.stride)
        b, c, h, w = x.shape
        tokens = x.flatten(2).transpose(1, 2) + self._position_embeddings(h, w)
        cls = emb.cls_token.expand(b, -1, -1) + emb.position_embeddings[:, :1]
        parts = [cls]
        if self.num_registers:
            parts.append(emb.register_tokens.expand(b, -1, -1))
        return torch.cat(parts + [tokens], dim=1), h, w

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images).blocks

    def encode(self, images: torch.Tensor, saliency: bool = False) -> Encoding:
        """One pass through the blocks. With ``saliency`` (and a decoder) it continues to the
        last block, applies the final layernorm to the patch tokens and decodes them, so the
        object mask costs the decoder only, never a second backbone pass."""
        decode = saliency and self.decoder is not None
        x, h, w = self.embed(self.normalise(images))
        last = self.num_layers if decode else max(self.layers) + 1
        outputs = []
        for index, layer in enumerate(self.model.encoder.layer[:last]):
            out = layer(x)
            x = out[0] if isinstance(out, tuple) else out
            if index in self.layers:
                outputs.append(x[:, 1 + self.num_registers :])
        stacked = torch.stack(outputs, dim=1)  # (B, L, h*w, C)
        b, n_layers, _, c = stacked.shape
        blocks = stacked.transpose(2, 3).reshape(b, n_layers, c, h, w).float()
        if not decode:
            return Encoding(blocks)
        tokens = self.model.layernorm(x[:, 1 + self.num_registers :]).float()
        tokens = tokens.transpose(1, 2).reshape(b, c, h, w)
        return Encoding(blocks, self.decoder(tokens, tuple(images.shape[-2:])))


class HFVisionBackbone(Backbone):
    """Any HF vision tower exposing ``hidden_states`` (DINOv3, CLIP, SigLIP); native stride only."""

    def __init__(
        self,
        model: nn.Module,
        patch_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        layers: Sequence[int] | int | None = None,
        interpolate_pos_encoding: bool = True,
    ):
        super().__init__(mean, std)
        self.model = model.requires_grad_(False).eval()
        config = getattr(model.config, "vision_config", model.config)
        self.grid = FeatureGrid(patch_size, patch_size)
        self.dim = config.hidden_size
        self.num_layers = config.num_hidden_layers
        self.layers = resolve_layers(layers, self.num_layers)
        self.interpolate = interpolate_pos_encoding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.normalise(images)
        h, w = self.grid.grid_size(x.shape[-2], x.shape[-1])
        kwargs = {"interpolate_pos_encoding": True} if self.interpolate else {}
        hidden = self.model(pixel_values=x, output_hidden_states=True, **kwargs).hidden_states
        # hidden_states[0] is the embedding output; block i's output is hidden_states[i + 1].
        # Prefix tokens (CLS, registers) are whatever precedes the h*w patch tokens.
        outputs = [hidden[i + 1][:, -h * w :] for i in self.layers]
        stacked = torch.stack(outputs, dim=1)
        b, n_layers, _, c = stacked.shape
        return stacked.transpose(2, 3).reshape(b, n_layers, c, h, w).float()

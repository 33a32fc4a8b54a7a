"""From images to :class:`ImageFeatures`: resize policy, batching, backbone, optional head.

This is what the CLI, the benchmarks and the viewer share: a ``Matcher`` turns loaded images
(any size, optional alpha mask) into network-resolution features plus the affine map back to
original pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from funcorr.backbones import DEFAULT_BACKBONE, load_backbone, resolve_device
from funcorr.images import InputError, LoadedImage, Resize, ResizePolicy, apply_resize, plan_resize
from funcorr.model.checkpoint import head_image_features, head_part_mask, load_trained
from funcorr.model.matching import ImageFeatures, feature_map_features


@dataclass
class MatcherConfig:
    """What produces the features. ``checkpoint`` (a trained head) overrides backbone choices."""

    backbone: str = DEFAULT_BACKBONE
    layers: tuple[int, ...] | None = None
    stride: int | None = None
    image_size: int = 224
    resize: ResizePolicy = "pad"
    device: str = "auto"
    weights: str | None = None
    checkpoint: str | None = None
    function: str | None = None
    batch_size: int = 8
    pretrained: bool = True


@dataclass(frozen=True)
class Prepared:
    """An image at network resolution. rgb (3, S, S); mask (S, S) bool (object and not padding)."""

    rgb: torch.Tensor
    mask: torch.Tensor
    plan: Resize
    has_mask: bool


def prepare_image(image: LoadedImage, size: int, policy: ResizePolicy) -> Prepared:
    """Resize/pad ``image`` to ``size`` x ``size``; the mask covers the object (or the whole
    image content when there is no alpha) and never the padding."""
    plan = plan_resize(image.size, (size, size), policy)
    rgb = apply_resize(image.rgb, plan)
    source_mask = image.mask if image.mask is not None else torch.ones(image.rgb.shape[1:], dtype=torch.bool)
    mask = apply_resize(source_mask.float(), plan, mode="nearest") > 0.5
    if not mask.any():
        raise InputError(f"The object mask of {image.path or 'an image'} vanishes at {size}px.")
    return Prepared(rgb, mask, plan, image.mask is not None)


@dataclass
class Matcher:
    """Holds a loaded backbone (and head) and computes features for images."""

    config: MatcherConfig = field(default_factory=MatcherConfig)

    def __post_init__(self) -> None:
        cfg = self.config
        self.device = resolve_device(cfg.device)
        self.head = None
        if cfg.checkpoint is not None:
            self.backbone, self.head, self.text = load_trained(Path(cfg.checkpoint), device=self.device, weights=cfg.weights)
            if cfg.function is None:
                raise InputError("A trained checkpoint needs --function (e.g. pour-with).")
            self.text_embedding = self.text.embed([cfg.function]).to(self.device)
        else:
            self.backbone = load_backbone(
                cfg.backbone, layers=cfg.layers, stride=cfg.stride, weights=cfg.weights, pretrained=cfg.pretrained, device=self.device
            )
        grid = self.backbone.grid
        if (cfg.image_size - grid.patch_size) % grid.stride:
            raise InputError(
                f"--size {cfg.image_size} does not tile with patch {grid.patch_size} / stride {grid.stride}; "
                f"use a size s with (s - {grid.patch_size}) divisible by {grid.stride} (e.g. 224)."
            )

    def use_function(self, function: str) -> None:
        """Condition a trained head on another function (the embedder caches embeddings);
        raw backbone features do not depend on the function, so nothing changes for them."""
        if self.head is not None:
            self.text_embedding = self.text.embed([function]).to(self.device)
        self.config.function = function

    def prepare(self, image: LoadedImage) -> Prepared:
        return prepare_image(image, self.config.image_size, self.config.resize)

    @torch.no_grad()
    def block_features(self, images: list[Prepared]) -> torch.Tensor:
        """Backbone block features of prepared images, batched. (B, L, C, h, w)."""
        out = []
        for start in range(0, len(images), self.config.batch_size):
            batch = torch.stack([p.rgb for p in images[start : start + self.config.batch_size]]).to(self.device)
            out.append(self.backbone(batch))
        return torch.cat(out)

    @torch.no_grad()
    def features(self, images: list[Prepared], blocks: torch.Tensor | None = None) -> list[ImageFeatures]:
        """Queryable per-pixel features for each prepared image (``blocks``: precomputed
        :meth:`block_features`, so callers needing part masks too run the backbone once)."""
        blocks = self.block_features(images) if blocks is None else blocks
        size = (self.config.image_size, self.config.image_size)
        result = []
        for prepared, block in zip(images, blocks):
            if self.head is None:
                result.append(feature_map_features(block.mean(dim=0), self.backbone.grid, size, prepared.mask))
            else:
                result.append(head_image_features(self.head, block, self.backbone.grid, self.text_embedding[0], size, prepared.mask))
        return result

    @torch.no_grad()
    def predicted_part_mask(self, images: list[Prepared], blocks: torch.Tensor | None = None) -> list[torch.Tensor] | None:
        """The head's functional-part mask per image (None without a mask head)."""
        if self.head is None or self.head.mask_proj is None:
            return None
        blocks = self.block_features(images) if blocks is None else blocks
        return [head_part_mask(self.head, block, self.backbone.grid, self.text_embedding[0], p.mask) for p, block in zip(images, blocks)]

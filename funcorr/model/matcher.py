"""From images to :class:`ImageFeatures`: resize policy, batching, backbone, optional head,
and the object mask every match is restricted to.

This is what the CLI, the benchmarks and the viewer share: a ``Matcher`` turns loaded images
(any size, optional alpha mask) into network-resolution features plus the affine map back to
original pixels.

OBJECT MASKS (``MatcherConfig.object_mask``), decided per image:

* ``alpha``: the alpha channel when the image has a non-trivial one (some pixel below 255),
  else the whole image (funcorr's behaviour before saliency masks);
* ``saliency``: the salient-object decoder's map from the same backbone pass, Otsu-thresholded,
  largest connected components kept, holes filled (:mod:`funcorr.backbones.saliency`);
* ``full``: the whole image, alpha ignored;
* ``auto``: alpha when present, else saliency, else full.

None (the default) means ``alpha`` for raw features and, for a trained checkpoint, the policy
its record recommends (the shipped model: ``auto``). Likewise ``raw_weight``: the weight of the
raw backbone similarity blended into a trained head's (:func:`blend_features`); None takes
the checkpoint's recommendation (0 when it has none). And ``head_stride``: 1 runs the head's
MLP on every object pixel (the paper's per-pixel head); a divisor of the backbone stride runs
it on that lattice and interpolates (:func:`funcorr.model.head.lattice_head_map`, far faster,
an approximation measured in the README); None takes the checkpoint's recommendation (1 when
it has none). ``soft_window`` is not a feature setting but how matches are refined (soft-argmax
radius in network pixels, 0 = off); it lives here so that a model's recommendation (7 for
funcorr-s14) reaches every command; None takes it, or off for raw features.

Padding is never part of a mask. A backbone without a decoder, or a saliency map in which no
object stands out, falls back to ``full`` and says so (a warning, and ``Encoded.sources``).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import torch

from funcorr.backbones import DEFAULT_BACKBONE, load_backbone, resolve_device
from funcorr.backbones.precision import Precision, check_precision
from funcorr.images import InputError, LoadedImage, Resize, ResizePolicy, apply_resize, plan_resize
from funcorr.model.checkpoint import read_checkpoint
from funcorr.model.head import (
    head_image_features,
    head_part_mask,
    lattice_grid,
    lattice_head_map,
)
from funcorr.model.matching import ImageFeatures, blend_features, feature_map_features
from funcorr.text import load_function_embedder

ObjectMaskPolicy = Literal["auto", "alpha", "saliency", "full"]
OBJECT_MASK_POLICIES: tuple[str, ...] = get_args(ObjectMaskPolicy)
MaskSource = Literal["alpha", "saliency", "full"]


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
    object_mask: ObjectMaskPolicy | None = None
    raw_weight: float | None = None
    head_stride: int | None = None
    soft_window: float | None = None
    precision: Precision = "fp32"

    def __post_init__(self) -> None:
        check_precision(self.precision)
        if self.soft_window is not None and not self.soft_window >= 0:
            raise InputError(f"The soft-argmax window must be >= 0 px, got {self.soft_window}.")
        if self.head_stride is not None and self.head_stride < 1:
            raise InputError(f"The head stride must be at least 1 px, got {self.head_stride}.")
        if self.raw_weight is not None and not 0.0 <= self.raw_weight <= 1.0:
            raise InputError(f"The raw-feature weight must lie in [0, 1], got {self.raw_weight}.")
        if self.object_mask is not None and self.object_mask not in OBJECT_MASK_POLICIES:
            raise InputError(
                f"Unknown object mask policy {self.object_mask!r}; use one of {', '.join(OBJECT_MASK_POLICIES)}."
            )


def load_trained(
    path: str | Path,
    device: torch.device | str = "cpu",
    weights: str | None = None,
    precision: Precision = "fp32",
):
    """Rebuild (backbone, head, function embedder, checkpoint record) from a checkpoint file,
    on ``device``, the backbone at ``precision`` (the head always runs in fp32)."""
    checkpoint = read_checkpoint(path)
    try:
        spec = checkpoint.record["backbone"]
        name, layers, stride, encoder = (
            spec["name"],
            spec["layers"],
            spec["stride"],
            checkpoint.record["text_encoder"],
        )
    except (KeyError, TypeError) as err:
        raise InputError(f"{path}: the checkpoint record lacks {err}.") from None
    backbone = load_backbone(
        name, layers=layers, stride=stride, weights=weights, device=device, precision=precision
    )
    head = checkpoint.head().to(device)
    return backbone, head, load_function_embedder(encoder), checkpoint.record


@dataclass(frozen=True)
class Prepared:
    """An image at network resolution. rgb (3, S, S); mask (S, S) bool: the alpha mask when the
    image has a non-trivial alpha (``has_mask``), else the image content; never the padding.
    ``content`` (S, S) bool: every non-padding pixel."""

    rgb: torch.Tensor
    mask: torch.Tensor
    plan: Resize
    has_mask: bool
    content: torch.Tensor | None = None

    @property
    def image_area(self) -> torch.Tensor:
        """(S, S) bool: the non-padding pixels."""
        return self.mask if self.content is None else self.content


def has_alpha_mask(image: LoadedImage) -> bool:
    """Whether the image's alpha says anything: many photos are RGBA with alpha 255 everywhere,
    and that is no object mask."""
    return image.mask is not None and not bool(image.mask.all())


def prepare_image(image: LoadedImage, size: int, policy: ResizePolicy) -> Prepared:
    """Resize/pad ``image`` to ``size`` x ``size``; the mask covers the object (or the whole
    image content when there is no alpha) and never the padding."""
    plan = plan_resize(image.size, (size, size), policy)
    rgb = apply_resize(image.rgb, plan)
    content = apply_resize(torch.ones(image.rgb.shape[1:]), plan, mode="nearest") > 0.5
    alpha = has_alpha_mask(image)
    mask = (apply_resize(image.mask.float(), plan, mode="nearest") > 0.5) if alpha else content
    if not mask.any():
        raise InputError(f"The object mask of {image.path or 'an image'} vanishes at {size}px.")
    return Prepared(rgb, mask, plan, alpha, content)


#: Features of prepared images, one per image (e.g. ``Matcher.features``).
FeatureFunction = Callable[[list[Prepared]], list[ImageFeatures]]


@dataclass(frozen=True)
class Encoded:
    """One backbone pass over prepared images.

    blocks: (B, L, C, h, w) backbone block features; masks: per image, the (S, S) bool object
    mask matches are restricted to; sources: where each mask came from; saliency: (B, S, S)
    decoder maps when they were computed, else None.
    """

    blocks: torch.Tensor
    masks: tuple[torch.Tensor, ...]
    sources: tuple[MaskSource, ...]
    saliency: torch.Tensor | None = None


def resolve_object_mask(
    prepared: Prepared, policy: ObjectMaskPolicy, saliency: torch.Tensor | None
) -> tuple[torch.Tensor, MaskSource]:
    """The mask ``policy`` gives for one image (see the module docstring), and its source.
    saliency: (S, S) decoder map, or None when the backbone has no decoder."""
    from funcorr.backbones.saliency import saliency_object_mask

    if policy == "alpha" or (policy == "auto" and prepared.has_mask):
        return prepared.mask, "alpha" if prepared.has_mask else "full"
    if policy in ("saliency", "auto") and saliency is not None:
        mask = saliency_object_mask(saliency, prepared.image_area)
        if mask is not None:
            return mask.to(prepared.mask.device), "saliency"
    return prepared.image_area, "full"


@dataclass
class Matcher:
    """Holds a loaded backbone (and head) and computes features for images."""

    config: MatcherConfig = field(default_factory=MatcherConfig)

    def __post_init__(self) -> None:
        # A copy: the defaults resolved below (object mask, raw weight) stay this matcher's.
        cfg = self.config = dataclasses.replace(self.config)
        self.device = resolve_device(cfg.device)
        self.head = None
        # How the checkpoint is best used beyond features (e.g. ``parts`` for discovery).
        self.inference: dict = {}
        if cfg.checkpoint is not None:
            self.backbone, self.head, self.text, record = load_trained(
                Path(cfg.checkpoint),
                device=self.device,
                weights=cfg.weights,
                precision=cfg.precision,
            )
            # A shipped model records how it is best used (its card says how that was chosen).
            recommended = record.get("inference", {})
            self.inference = dict(recommended)
            if cfg.raw_weight is None:
                cfg.raw_weight = float(recommended.get("raw_weight", 0.0))
            if cfg.object_mask is None:
                cfg.object_mask = recommended.get("object_mask", "alpha")
            if cfg.head_stride is None:
                cfg.head_stride = int(recommended.get("head_stride", 1))
            if cfg.soft_window is None:
                cfg.soft_window = recommended.get("soft_window")
            try:
                lattice_grid(self.backbone.grid, cfg.head_stride)
            except ValueError as error:
                raise InputError(str(error)) from None
            if cfg.function is None:
                raise InputError("A trained checkpoint needs --function (e.g. pour-with).")
            self.text_embedding = self.text.embed([cfg.function]).to(self.device)
        else:
            self.config.raw_weight = 0.0 if cfg.raw_weight is None else cfg.raw_weight
            self.backbone = load_backbone(
                cfg.backbone,
                layers=cfg.layers,
                stride=cfg.stride,
                weights=cfg.weights,
                pretrained=cfg.pretrained,
                device=self.device,
                precision=cfg.precision,
            )
        if cfg.object_mask is None:
            cfg.object_mask = "alpha"
        # 0 switches the refinement off: matching code reads None as off.
        cfg.soft_window = cfg.soft_window or None
        self._warned_no_decoder = False
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

    @property
    def has_decoder(self) -> bool:
        """Whether the backbone carries a salient-object decoder (saliency masks available)."""
        return getattr(self.backbone, "decoder", None) is not None

    def _needs_saliency(self, images: list[Prepared]) -> bool:
        policy = self.config.object_mask
        wanted = policy == "saliency" or (policy == "auto" and not all(p.has_mask for p in images))
        if wanted and not self.has_decoder and not self._warned_no_decoder:
            self._warned_no_decoder = True
            name = "the checkpoint's backbone" if self.head is not None else self.config.backbone
            warnings.warn(
                f"{name} has no salient-object decoder: object masks fall back to the full image.",
                stacklevel=3,
            )
        return wanted and self.has_decoder

    @torch.no_grad()
    def encode(self, images: list[Prepared]) -> Encoded:
        """One batched backbone pass: block features, and the object mask of each image under
        ``config.object_mask`` (the saliency map comes from the same pass)."""
        saliency = self._needs_saliency(images)
        blocks, maps = [], []
        for start in range(0, len(images), self.config.batch_size):
            batch = torch.stack([p.rgb for p in images[start : start + self.config.batch_size]]).to(
                self.device
            )
            encoding = self.backbone.encode(batch, saliency=saliency)
            blocks.append(encoding.blocks)
            if encoding.saliency is not None:
                maps.append(encoding.saliency)
        sal = torch.cat(maps) if maps else None
        resolved = [
            resolve_object_mask(p, self.config.object_mask, None if sal is None else sal[i])
            for i, p in enumerate(images)
        ]
        return Encoded(
            torch.cat(blocks), tuple(m for m, _ in resolved), tuple(s for _, s in resolved), sal
        )

    @torch.no_grad()
    def block_features(self, images: list[Prepared]) -> torch.Tensor:
        """Backbone block features of prepared images, batched. (B, L, C, h, w)."""
        out = []
        for start in range(0, len(images), self.config.batch_size):
            batch = torch.stack([p.rgb for p in images[start : start + self.config.batch_size]]).to(
                self.device
            )
            out.append(self.backbone(batch))
        return torch.cat(out)

    @torch.no_grad()
    def features(
        self, images: list[Prepared], encoded: Encoded | None = None
    ) -> list[ImageFeatures]:
        """Queryable per-pixel features for each prepared image, restricted to its object mask
        (``encoded``: a precomputed :meth:`encode`, so callers needing part masks too run the
        backbone once)."""
        encoded = self.encode(images) if encoded is None else encoded
        size = (self.config.image_size, self.config.image_size)
        result = []
        for block, mask in zip(encoded.blocks, encoded.masks):
            raw = feature_map_features(block.mean(dim=0), self.backbone.grid, size, mask)
            if self.head is None:
                result.append(raw)
                continue
            head = self._head_features(block, mask, size)
            weight = self.config.raw_weight
            result.append(blend_features(head, raw, weight) if weight else head)
        return result

    def _head_features(
        self, block: torch.Tensor, mask: torch.Tensor, size: tuple[int, int]
    ) -> ImageFeatures:
        """The head's features of one image: per pixel (``head_stride`` 1, the paper's), or on
        a lattice and interpolated (:func:`lattice_head_map`). block (L, C, h, w)."""
        text, grid = self.text_embedding[0], self.backbone.grid
        if self.config.head_stride == 1:
            return head_image_features(self.head, block, grid, text, size, mask)
        fmap, lattice = lattice_head_map(
            self.head, block, grid, text, size, self.config.head_stride
        )
        return feature_map_features(fmap, lattice, size, mask)

    @torch.no_grad()
    def predicted_part_mask(
        self, images: list[Prepared], encoded: Encoded | None = None
    ) -> list[torch.Tensor] | None:
        """The head's functional-part mask per image (None without a mask head)."""
        if self.head is None or self.head.mask_proj is None:
            return None
        encoded = self.encode(images) if encoded is None else encoded
        return [
            head_part_mask(
                self.head,
                block,
                self.backbone.grid,
                self.text_embedding[0],
                mask,
                self.config.head_stride,
            )
            for block, mask in zip(encoded.blocks, encoded.masks)
        ]

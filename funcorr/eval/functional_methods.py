"""What a method of the functional benchmark is: the features of each pair's images
(:class:`MatcherFeatures`, shared across pairs), how it matches within one direction
(:class:`NearestNeighbourMatcher`, :class:`ChanceMatcher`) and, optionally, where it finds the
functional parts (:class:`PartPredictor`, implementations in :mod:`funcorr.eval.part_masks`)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import torch

from funcorr.images import ResizePolicy
from funcorr.model.matcher import Prepared
from funcorr.model.matching import (
    DEFAULT_BLOCK_ROWS,
    ImageFeatures,
    discover,
    discover_pair,
    mask_pixels,
    transfer_points,
)

Ranking = tuple[torch.Tensor, torch.Tensor]
"""Source pixels (P, 2) and their matches (P, 2), best first."""


@dataclass(frozen=True)
class PairView:
    """One image of a pair at network resolution.

    object_mask, part_mask: (S, S) bool in network pixels (part_mask None without parts);
    features None for methods that do not look at the image (chance); side = max(W, H) of the
    original image, the unit of the thresholds.
    """

    features: ImageFeatures | None
    object_mask: torch.Tensor
    part_mask: torch.Tensor | None
    prepared: Prepared
    side: int


class DirectionMatcher(Protocol):
    """How a method matches within one direction. All xy are network pixels."""

    def transfer(
        self, src: PairView, tgt: PairView, points: torch.Tensor, tgt_region: torch.Tensor
    ) -> torch.Tensor:
        """(N, 2) source points -> (N, 2) target points inside ``tgt_region``."""

    def rank(
        self, src: PairView, tgt: PairView, src_region: torch.Tensor, tgt_region: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pixel of ``src_region`` with its match in ``tgt_region``, best first: (P, 2), (P, 2)."""


@dataclass(frozen=True)
class NearestNeighbourMatcher:
    """Cosine nearest neighbours on the views' features, ranked by the discovery score."""

    block_rows: int = DEFAULT_BLOCK_ROWS
    soft_window: float | None = None

    def transfer(
        self, src: PairView, tgt: PairView, points: torch.Tensor, tgt_region: torch.Tensor
    ) -> torch.Tensor:
        return transfer_points(
            src.features,
            tgt.features,
            points,
            tgt_mask=tgt_region,
            soft_window=self.soft_window,
            block_rows=self.block_rows,
        ).points.cpu()

    def rank(
        self, src: PairView, tgt: PairView, src_region: torch.Tensor, tgt_region: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # Kept on the features' device: scoring the ranking against the GT runs there too.
        ranked = discover(
            src.features,
            tgt.features,
            src_mask=src_region,
            tgt_mask=tgt_region,
            block_rows=self.block_rows,
        )
        return ranked.src_xy, ranked.tgt_xy

    def rank_pair(
        self,
        first: PairView,
        second: PairView,
        first_region: torch.Tensor,
        second_region: torch.Tensor,
    ) -> tuple[Ranking, Ranking]:
        """:meth:`rank` from first to second and from second to first (regions swapped), from
        two searches instead of four."""
        forward, backward = discover_pair(
            first.features, second.features, first_region, second_region, self.block_rows
        )
        return (forward.src_xy, forward.tgt_xy), (backward.src_xy, backward.tgt_xy)


@dataclass
class ChanceMatcher:
    """The reference chance baseline: uniformly random target pixels inside the region, and a
    random ranking of all source pixels. Deterministic for a given seed and pair order."""

    seed: int = 0
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def _random_pixels(self, region: torch.Tensor, count: int) -> torch.Tensor:
        candidates = mask_pixels(region.cpu())
        if candidates.shape[0] == 0:
            raise ValueError("The target region is empty: there is nowhere to transfer to.")
        return candidates[torch.randint(candidates.shape[0], (count,), generator=self.generator)]

    def transfer(
        self, src: PairView, tgt: PairView, points: torch.Tensor, tgt_region: torch.Tensor
    ) -> torch.Tensor:
        return self._random_pixels(tgt_region, points.shape[0])

    def rank(
        self, src: PairView, tgt: PairView, src_region: torch.Tensor, tgt_region: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        src_xy = mask_pixels(src_region.cpu())
        tgt_xy = self._random_pixels(tgt_region, src_xy.shape[0])
        order = torch.randperm(src_xy.shape[0], generator=self.generator)
        return src_xy[order], tgt_xy[order]


class PartPredictor(Protocol):
    """Pluggable functional-part masks (e.g. a VLM + segmenter, or the ground truth).

    Called with a benchmark item and which image (1 or 2); returns an (H, W) bool mask in that
    image's pixels. ``is_ground_truth`` is False for predictions, whose IoU is then reported.
    """

    is_ground_truth: bool

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor: ...


def image_key(prepared: Prepared) -> str:
    """Content hash of a prepared image and its object mask: equal images share features."""
    digest = hashlib.blake2b(digest_size=16)
    for tensor in (prepared.rgb, prepared.mask):
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


@dataclass
class MatcherFeatures:
    """Features from a :class:`funcorr.model.matcher.Matcher`, switching the function of a trained
    head per pair (raw backbone features ignore the function).

    The features of the last ``cache_size`` distinct images (and their predicted part masks
    when ``with_parts``) are kept, so an image shown by several pairs costs one backbone pass
    and, with a head, one pass of the head over its object pixels.
    """

    matcher: Any
    cache_size: int = 64
    with_parts: bool = False
    computed: int = field(default=0, init=False)
    _cache: OrderedDict = field(default_factory=OrderedDict, init=False, repr=False)

    @property
    def image_size(self) -> int:
        return self.matcher.config.image_size

    @property
    def resize(self) -> ResizePolicy:
        return self.matcher.config.resize

    def use_function(self, function: str) -> None:
        self.matcher.use_function(function)

    def _key(self, prepared: Prepared, function: str) -> tuple[str, str]:
        return image_key(prepared), function if self.matcher.head is not None else ""

    def _fill(self, images: list[Prepared], function: str) -> list[tuple[str, str]]:
        """Compute what the cache lacks for ``images`` in one batched pass; their keys."""
        keys = [self._key(p, function) for p in images]
        todo = {k: p for k, p in zip(keys, images, strict=True) if k not in self._cache}
        if todo:
            self.use_function(function)
            batch = list(todo.values())
            encoded = self.matcher.encode(batch)
            features = self.matcher.features(batch, encoded)
            parts = self.matcher.predicted_part_mask(batch, encoded) if self.with_parts else None
            for i, key in enumerate(todo):
                self._cache[key] = (features[i], None if parts is None else parts[i])
                self.computed += 1
        for key in keys:
            self._cache.move_to_end(key)
        while len(self._cache) > max(self.cache_size, len(keys)):
            self._cache.popitem(last=False)
        return keys

    def __call__(self, images: list[Prepared], function: str) -> list[ImageFeatures]:
        return [self._cache[key][0] for key in self._fill(images, function)]

    def part_mask(self, prepared: Prepared, function: str) -> torch.Tensor | None:
        """The head's predicted part mask of one image (None without a mask head)."""
        return self._cache[self._fill([prepared], function)[0]][1]


# Features of prepared images, conditioned on a function name (ignored by raw backbones).
FeaturesForFunction = Callable[[list[Prepared], str], list[ImageFeatures]]


@dataclass
class FunctionalMethod:
    """A named way to match: features (None for chance), a matcher and optional part masks."""

    name: str
    matcher: DirectionMatcher
    features: FeaturesForFunction | None = None
    parts: PartPredictor | None = None

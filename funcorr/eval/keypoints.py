"""Keypoint benchmarks: a PCK runner with SOCO's tasks over keypoint pairs from any reader
(SPair: :mod:`funcorr.eval.spair`; SOCO: :mod:`funcorr.eval.soco`; records:
:mod:`funcorr.eval.keypoint_pairs`).

One idea at about 480 lines: scoring keypoint pairs (methods, SOCO's three tasks, PCK and its
averages); the readers and records are in their own modules.

Tasks (SOCO's taxonomy):

* ``soc``: the prediction for source keypoint ``s`` must land on *its* target keypoint (the
  same object-relative name). On cross-category pairs this is **Cross-SOC**.
* ``cc``: concept correspondence: any target keypoint of the same concept counts (error = the
  distance to the closest of them).
* ``soc_geo``: the argmax is restricted to the target feature cells that hold a keypoint of the
  same concept; the prediction is the centre of the best such cell, scored as SOC. Source
  keypoints with no same-concept candidate, or whose true target is not a candidate, are
  skipped (OmniProbe's geometric SOCO protocol).

PCK@alpha: an error counts when ``error <= alpha * max(target bbox w, h)`` (``bbox``, the
standard) or ``<= alpha * max(target W, H)`` (``image``); both are reported, as is SOCO's strict
``<`` when ``strict=True``. Averaging: ``per_point`` pools every keypoint, ``per_image`` averages
per-pair PCKs, ``per_category`` averages per-category means (SOCO's "pair, then category").

Protocol pitfalls this module guards against (each has a test):

* **bbox vs image threshold**: the image-size threshold is larger whenever the object does not
  fill the frame, so numbers computed with it are inflated; tables always say which one.
* **non-uniform resize**: with ``resize='resize'`` x and y are stretched by different factors;
  keypoints go through :class:`funcorr.images.Resize` per axis and errors are measured in
  original pixels, so thresholds keep their meaning.
* **patch-centre offset**: feature cell ``j`` covers pixels ``j*s .. j*s + p - 1`` and its centre
  is ``j*s + (p - 1) / 2``; reading it as ``j*s`` (the cell corner) shifts every prediction by
  about half a patch. All pixel<->cell mapping goes through :mod:`funcorr.backbones.base`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from funcorr.backbones.base import FeatureGrid, pixel_to_cell
from funcorr.eval.keypoint_pairs import (
    KeypointPair,
    KeypointView,
    PairType,
    concept_targets,
    read_json,
)
from funcorr.eval.metrics import nanmean, pck_at
from funcorr.eval.spair import SPAIR_SUPER_CATEGORIES
from funcorr.images import InputError, LoadedImage, ResizePolicy
from funcorr.model.flip import choose_orientation, mirrored_prepared, unmirror
from funcorr.model.matcher import FeatureFunction, Prepared, prepare_image
from funcorr.model.matching import DEFAULT_BLOCK_ROWS, ImageFeatures, transfer_points

ThresholdReference = Literal["bbox", "image"]
Task = Literal["soc", "cc", "soc_geo"]
TASKS: tuple[Task, ...] = ("soc", "cc", "soc_geo")
REFERENCES: tuple[ThresholdReference, ...] = ("bbox", "image")


# --------------------------------------------------------------------------- methods


class PairContext(Protocol):
    """Predictions for one opened pair. Points are original pixels."""

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) source points -> (N, 2) predicted target points."""

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        """Like :meth:`transfer`, but point i may only land on a cell holding one of
        ``candidates[i]`` (K_i, 2)."""


class KeypointMethod(Protocol):
    name: str

    def open(self, pair: KeypointPair) -> PairContext: ...


def cell_centres_holding(
    points: torch.Tensor, grid: FeatureGrid, size: tuple[int, int]
) -> torch.Tensor:
    """Pixel centres of the feature cells that hold ``points`` (N, 2) network xy; duplicates
    removed, order kept. Cell ``j`` spans pixels ``j*s .. j*s+p-1``, centre ``j*s + (p-1)/2``."""
    height, width = size
    rows, cols = grid.grid_size(height, width)
    uv = pixel_to_cell(points.float(), grid).round().long()
    uv[:, 0].clamp_(0, cols - 1)
    uv[:, 1].clamp_(0, rows - 1)
    seen: dict[tuple[int, int], None] = dict.fromkeys((int(u), int(v)) for u, v in uv)
    cells = torch.tensor(list(seen), dtype=torch.float32).reshape(-1, 2)
    return cells * grid.stride + (grid.patch_size - 1) / 2


@dataclass
class _FeatureContext:
    src: ImageFeatures
    tgt: ImageFeatures
    src_prepared: Prepared
    tgt_prepared: Prepared
    grid: FeatureGrid
    soft_window: float | None
    block_rows: int

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        net = self.src_prepared.plan.to_net(points.float())
        moved = transfer_points(
            self.src, self.tgt, net, soft_window=self.soft_window, block_rows=self.block_rows
        )
        return self.tgt_prepared.plan.to_orig(moved.points.cpu().float()).double()

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.full((points.shape[0], 2), math.nan, dtype=torch.float64)
        size = self.tgt.size
        queries = self.src.sample(self.src_prepared.plan.to_net(points.float()))
        for i, cand in enumerate(candidates):
            if cand.shape[0] == 0:
                continue
            centres = cell_centres_holding(
                self.tgt_prepared.plan.to_net(cand.float()), self.grid, size
            )
            scores = self.tgt.sample(centres.to(queries.device)) @ queries[i]
            out[i] = self.tgt_prepared.plan.to_orig(centres[int(scores.argmax())][None].float())[
                0
            ].double()
        return out


@dataclass
class FeatureKeypointMethod:
    """Nearest neighbours on dense features (any backbone, or a trained head via a Matcher)."""

    name: str
    features: FeatureFunction
    grid: FeatureGrid
    image_size: int = 224
    resize: ResizePolicy = "pad"
    soft_window: float | None = None
    block_rows: int = DEFAULT_BLOCK_ROWS
    flip: bool = False

    @classmethod
    def from_matcher(
        cls,
        matcher: Any,
        name: str | None = None,
        soft_window: float | None = None,
        flip: bool = False,
    ) -> FeatureKeypointMethod:
        cfg = matcher.config
        label = name or ("checkpoint" if matcher.head is not None else cfg.backbone)
        return cls(
            label,
            matcher.features,
            matcher.backbone.grid,
            cfg.image_size,
            cfg.resize,
            soft_window,
            flip=flip,
        )

    def open(self, pair: KeypointPair) -> PairContext:
        src = prepare_image(_without_alpha(pair.source.load()), self.image_size, self.resize)
        tgt = prepare_image(_without_alpha(pair.target.load()), self.image_size, self.resize)
        if not self.flip:
            src_feat, tgt_feat = self.features([src, tgt])
        else:
            # One batch with the mirrored target; its answers are mapped back (funcorr.model.flip).
            src_feat, tgt_feat, mirrored = self.features([src, tgt, mirrored_prepared(tgt)])
            tgt_feat, _ = choose_orientation(src_feat, tgt_feat, unmirror(mirrored, tgt_feat.mask))
        return _FeatureContext(
            src_feat, tgt_feat, src, tgt, self.grid, self.soft_window, self.block_rows
        )


def _without_alpha(image: LoadedImage) -> LoadedImage:
    # Keypoint benchmarks match over the whole image; an alpha channel is not an object mask here.
    return LoadedImage(image.rgb, None, image.path)


@dataclass
class _ChanceContext:
    region: tuple[float, float, float, float]
    generator: torch.Generator

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        left, top, right, bottom = self.region
        xs = torch.randint(
            math.ceil(left), math.floor(right) + 1, (points.shape[0],), generator=self.generator
        )
        ys = torch.randint(
            math.ceil(top), math.floor(bottom) + 1, (points.shape[0],), generator=self.generator
        )
        return torch.stack([xs, ys], dim=-1).double()

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.full((points.shape[0], 2), math.nan, dtype=torch.float64)
        for i, cand in enumerate(candidates):
            if cand.shape[0]:
                out[i] = cand[
                    int(torch.randint(cand.shape[0], (1,), generator=self.generator))
                ].double()
        return out


@dataclass
class ChanceKeypointMethod:
    """Chance level: a uniformly random target pixel inside the target bbox (the whole image
    when there is none). Average several seeds for a stable number."""

    seed: int = 0
    name: str = "chance"
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def open(self, pair: KeypointPair) -> PairContext:
        region = pair.target.bbox
        if region is None:
            width, height = pair.target.load().size
            region = (0.0, 0.0, width - 1.0, height - 1.0)
        return _ChanceContext(region, self.generator)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class KeypointConfig:
    """Thresholds are fractions alpha of the reference length (see module docstring)."""

    alphas: tuple[float, ...] = (0.05, 0.1, 0.15)
    tasks: tuple[Task, ...] = TASKS
    strict: bool = False
    max_pairs: int | None = None


@dataclass(frozen=True)
class PairScores:
    """Errors (original target pixels) per task, and the reference lengths for the thresholds."""

    pair_id: str
    pair_type: PairType
    category: str
    errors: dict[str, torch.Tensor]
    reference_length: dict[str, float]

    def pck(
        self, task: str, alpha: float, reference: ThresholdReference, strict: bool = False
    ) -> float:
        return pck_at(self.errors[task], alpha * self.reference_length[reference], strict=strict)


def reference_lengths(pair: KeypointPair) -> dict[str, float]:
    """``bbox``: max(w, h) of the target box; ``image``: max(W, H) of the target image."""
    width, height = _image_size(pair.target)
    lengths = {"image": float(max(width, height))}
    if pair.target.bbox is not None:
        left, top, right, bottom = pair.target.bbox
        lengths["bbox"] = float(max(right - left, bottom - top))
    else:
        lengths["bbox"] = lengths["image"]
    return lengths


def _image_size(view: KeypointView) -> tuple[int, int]:
    from PIL import Image

    if view.size is not None:
        return view.size
    with Image.open(view.image_path) as im:
        return im.size


def score_pair(
    pair: KeypointPair, method: KeypointMethod, tasks: Sequence[Task] = TASKS
) -> PairScores:
    """Errors of one pair for each task that the pair's annotations define."""
    context = method.open(pair)
    src_all, tgt_all = pair.source.points(), pair.target.points()
    errors: dict[str, torch.Tensor] = {}
    predicted = context.transfer(src_all) if len(src_all) else src_all
    if "soc" in tasks:
        s_idx = [m.source_indices[0] for m in pair.semantic_matches]
        t_idx = [m.target_indices[0] for m in pair.semantic_matches]
        errors["soc"] = (
            (predicted[s_idx] - tgt_all[t_idx]).norm(dim=-1)
            if s_idx
            else torch.zeros(0, dtype=torch.float64)
        )
    valid = concept_targets(pair)
    if "cc" in tasks and valid:
        errors["cc"] = torch.stack(
            [(tgt_all[list(t)] - predicted[s]).norm(dim=-1).min() for s, t in sorted(valid.items())]
        )
    if "soc_geo" in tasks and valid:
        queries = [
            (m.source_indices[0], m.target_indices[0])
            for m in pair.semantic_matches
            if m.target_indices[0] in valid.get(m.source_indices[0], ())
        ]
        if queries:
            restricted = context.restricted(
                src_all[[s for s, _ in queries]], [tgt_all[list(valid[s])] for s, _ in queries]
            )
            errors["soc_geo"] = (restricted - tgt_all[[t for _, t in queries]]).norm(dim=-1)
    # A pair across categories is Cross-SOC whatever folder it came from.
    pair_type: PairType = (
        "cross"
        if pair.pair_type == "cross" or pair.source.category != pair.target.category
        else "intra"
    )
    return PairScores(pair.pair_id, pair_type, pair.group, errors, reference_lengths(pair))


@dataclass
class KeypointResults:
    """Per-pair scores of one method on one benchmark; :meth:`summary` aggregates."""

    method: str
    dataset: str
    pairs: list[PairScores]
    config: KeypointConfig
    super_categories: Mapping[str, str] = field(default_factory=dict)

    def pck(
        self,
        task: str,
        alpha: float,
        reference: ThresholdReference,
        pair_type: PairType | None = None,
    ) -> dict[str, Any]:
        """Per-point, per-image and per-category PCK (fractions) plus per-(super-)category means."""
        chosen = [
            p
            for p in self.pairs
            if task in p.errors
            and p.errors[task].numel()
            and (pair_type is None or p.pair_type == pair_type)
        ]
        if not chosen:
            return {
                "per_point": math.nan,
                "per_image": math.nan,
                "per_category": math.nan,
                "points": 0,
                "pairs": 0,
                "categories": {},
                "super_categories": {},
            }
        correct = torch.cat(
            [
                p.errors[task] <= alpha * p.reference_length[reference]
                if not self.config.strict
                else p.errors[task] < alpha * p.reference_length[reference]
                for p in chosen
            ]
        )
        per_pair = [p.pck(task, alpha, reference, self.config.strict) for p in chosen]
        by_category: dict[str, list[float]] = defaultdict(list)
        for p, value in zip(chosen, per_pair):
            by_category[p.category].append(value)
        categories = {c: nanmean(v) for c, v in sorted(by_category.items())}
        by_super: dict[str, list[float]] = defaultdict(list)
        for c, value in categories.items():
            by_super[self.super_categories.get(c, "other")].append(value)
        return {
            "per_point": float(correct.double().mean()),
            "per_image": nanmean(per_pair),
            "per_category": nanmean(categories.values()),
            "points": int(correct.numel()),
            "pairs": len(chosen),
            "categories": categories,
            "super_categories": {s: nanmean(v) for s, v in sorted(by_super.items())}
            if self.super_categories
            else {},
        }

    def pair_types(self) -> list[PairType]:
        return sorted({p.pair_type for p in self.pairs})  # type: ignore[return-value]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: every task x pair type x reference x alpha, and per-pair errors."""
        results: dict[str, Any] = {}
        for pair_type in self.pair_types():
            for task in self.config.tasks:
                name = task_label(task, pair_type)
                results[name] = {
                    reference: {
                        f"{alpha:g}": self.pck(task, alpha, reference, pair_type)
                        for alpha in self.config.alphas
                    }
                    for reference in REFERENCES
                }
        return {
            "method": self.method,
            "dataset": self.dataset,
            "results": results,
            "per_pair": [
                {
                    "pair_id": p.pair_id,
                    "pair_type": p.pair_type,
                    "category": p.category,
                    "reference_length": p.reference_length,
                    "errors_px": {t: e.tolist() for t, e in p.errors.items()},
                }
                for p in self.pairs
            ],
        }


def task_label(task: str, pair_type: str) -> str:
    """SOCO's names: SOC on cross-category pairs is Cross-SOC."""
    names = {"soc": "SOC", "cc": "CC", "soc_geo": "SOC-geo"}
    return ("Cross-" if pair_type == "cross" else "") + names.get(task, task)


def evaluate_keypoints(
    pairs: Sequence[KeypointPair],
    method: KeypointMethod,
    config: KeypointConfig = KeypointConfig(),
    dataset: str = "",
    super_categories: Mapping[str, str] | None = None,
    progress: bool = False,
) -> KeypointResults:
    """Score every pair (up to ``config.max_pairs``) and keep the per-pair errors."""
    from tqdm import tqdm

    count = len(pairs) if config.max_pairs is None else min(len(pairs), config.max_pairs)
    if count == 0:
        raise InputError("The keypoint benchmark has no pairs to evaluate.")
    scores = [
        score_pair(pairs[i], method, config.tasks)
        for i in tqdm(
            range(count), desc=f"keypoints {method.name}", unit="pair", disable=not progress
        )
    ]
    return KeypointResults(method.name, dataset, scores, config, dict(super_categories or {}))


def chance_pck(
    pairs: Sequence[KeypointPair],
    alpha: float = 0.1,
    reference: ThresholdReference = "bbox",
    seeds: Sequence[int] = tuple(range(20)),
    task: Task = "soc",
) -> dict[str, float]:
    """Chance level (random pixel in the target bbox), per point and per image, averaged over seeds."""
    per_point, per_image = [], []
    for seed in seeds:
        summary = evaluate_keypoints(
            pairs, ChanceKeypointMethod(seed), KeypointConfig(alphas=(alpha,), tasks=(task,))
        ).pck(task, alpha, reference)
        per_point.append(summary["per_point"])
        per_image.append(summary["per_image"])
    return {
        "per_point": sum(per_point) / len(per_point),
        "per_image": sum(per_image) / len(per_image),
        "seeds": len(seeds),
    }


def load_super_categories(path: str | Path | None, dataset: str) -> dict[str, str]:
    """A JSON ``{category: super_category}`` file, else PASCAL's grouping for SPair, else none."""
    if path is not None:
        mapping = read_json(Path(path))
        if not isinstance(mapping, dict):
            raise InputError(f"{path} must map category names to super-category names.")
        return {str(k): str(v) for k, v in mapping.items()}
    return dict(SPAIR_SUPER_CATEGORIES) if dataset == "spair" else {}

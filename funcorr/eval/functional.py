"""Dense functional correspondence benchmark (Sec. 5.1 of the dense functional correspondence paper).

For every pair and both directions (1->2 and 2->1) one :func:`evaluate_direction` computes

* **label transfer**: each ground-truth source point goes to its nearest neighbour inside the
  target object mask (or the target functional part, see below); the error is its distance to
  the ground-truth target point. Reported: normalised distance (mean error / (side - 1), i.e.
  / 223 at 224 px) and PCK@k px (error <= k).
* **discovery**: every source pixel of the region is matched forward, back again, and ranked by
  ``(1 - minmax cycle error) * minmax similarity``; precision/recall over the top 1..100 % give
  Best F1 and AP at each threshold (see :mod:`funcorr.eval.metrics`).

Averaging convention (the reference ``gather_results.py``): each pair contributes one value per
direction; a split's number is the mean over its pair-directions ("per pair-direction, then
averaged"); ``all`` is the mean over every pair-direction, not the mean of the two split means.

Part masks ("backbone + part masks", the VLM + DINO family): with a part mask on both images,
label transfer searches only the target part, and discovery ranks part->part and
rest->rest separately and concatenates the two rankings (part first), exactly as the reference.
When any of those regions has fewer than ``min_part_pixels`` (16) pixels the whole object is
used instead. Thresholds are given for a 224 px image and scale with ``max(W, H) / 224``.

Speed: an image's features are computed once and shared by every pair that shows it
(:class:`MatcherFeatures` keeps the most recent ones, keyed by image content, and by function
for a trained head); both directions of a pair are ranked from two searches
(:func:`funcorr.model.matching.discover_pair`); ``shard=(i, n)`` evaluates the i-th of n
contiguous slices of the pairs, and :func:`merge_records` joins the shards' records into
the record of the whole run.
"""

from __future__ import annotations

import hashlib
import importlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import torch

from funcorr.eval.metrics import (
    CUTOFF_PERCENTS,
    FUNCTIONAL_THRESHOLDS_PX,
    REFERENCE_SIDE,
    PRCurve,
    discovery_hits_at,
    mask_iou,
    nanmean,
    normalised_distance,
    pck_at,
    point_distances,
    precision_recall,
)
from funcorr.images import (
    InputError,
    LoadedImage,
    ResizePolicy,
    apply_resize,
    load_mask,
)
from funcorr.model.matcher import Prepared, prepare_image
from funcorr.model.matching import (
    DEFAULT_BLOCK_ROWS,
    ImageFeatures,
    discover,
    discover_pair,
    mask_pixels,
    part_regions,
    transfer_points,
)

Direction = Literal["1->2", "2->1"]
Ranking = tuple[torch.Tensor, torch.Tensor]
"""Source pixels (P, 2) and their matches (P, 2), best first."""
Split = Literal["within", "across", "all"]
SPLITS: tuple[Split, ...] = ("within", "across", "all")


@dataclass(frozen=True)
class FunctionalConfig:
    """Protocol settings. Thresholds are pixels at a 224 px image side."""

    thresholds_px: tuple[float, ...] = FUNCTIONAL_THRESHOLDS_PX
    cutoff_percents: tuple[int, ...] = CUTOFF_PERCENTS
    min_part_pixels: int = 16
    image_size: int = 224
    resize: ResizePolicy = "pad"
    seed: int = 0
    block_rows: int = DEFAULT_BLOCK_ROWS
    max_pairs: int | None = None
    discovery: bool = True
    shard: tuple[int, int] | None = None


@dataclass(frozen=True)
class View:
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

    def transfer(self, src: View, tgt: View, points: torch.Tensor, tgt_region: torch.Tensor) -> torch.Tensor:
        """(N, 2) source points -> (N, 2) target points inside ``tgt_region``."""

    def rank(self, src: View, tgt: View, src_region: torch.Tensor, tgt_region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pixel of ``src_region`` with its match in ``tgt_region``, best first: (P, 2), (P, 2)."""


@dataclass(frozen=True)
class NearestNeighbourMatcher:
    """Cosine nearest neighbours on the views' features, ranked by the discovery score."""

    block_rows: int = DEFAULT_BLOCK_ROWS
    soft_window: float | None = None

    def transfer(self, src: View, tgt: View, points: torch.Tensor, tgt_region: torch.Tensor) -> torch.Tensor:
        return transfer_points(src.features, tgt.features, points, tgt_mask=tgt_region, soft_window=self.soft_window, block_rows=self.block_rows).points.cpu()

    def rank(self, src: View, tgt: View, src_region: torch.Tensor, tgt_region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Kept on the features' device: scoring the ranking against the GT runs there too.
        ranked = discover(src.features, tgt.features, src_mask=src_region, tgt_mask=tgt_region, block_rows=self.block_rows)
        return ranked.src_xy, ranked.tgt_xy

    def rank_pair(self, first: View, second: View, first_region: torch.Tensor, second_region: torch.Tensor) -> tuple[Ranking, Ranking]:
        """:meth:`rank` from first to second and from second to first (regions swapped), from
        two searches instead of four."""
        forward, backward = discover_pair(first.features, second.features, first_region, second_region, self.block_rows)
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

    def transfer(self, src: View, tgt: View, points: torch.Tensor, tgt_region: torch.Tensor) -> torch.Tensor:
        return self._random_pixels(tgt_region, points.shape[0])

    def rank(self, src: View, tgt: View, src_region: torch.Tensor, tgt_region: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        src_xy = mask_pixels(src_region.cpu())
        tgt_xy = self._random_pixels(tgt_region, src_xy.shape[0])
        order = torch.randperm(src_xy.shape[0], generator=self.generator)
        return src_xy[order], tgt_xy[order]


# --------------------------------------------------------------------------- part masks


class PartPredictor(Protocol):
    """Pluggable functional-part masks (e.g. a VLM + segmenter, or the ground truth).

    Called with a benchmark item and which image (1 or 2); returns an (H, W) bool mask in that
    image's pixels. ``is_ground_truth`` is False for predictions, whose IoU is then reported.
    """

    is_ground_truth: bool

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor: ...


@dataclass(frozen=True)
class GroundTruthParts:
    """The dataset's own ``part_mask1`` / ``part_mask2`` (an upper bound for part predictors)."""

    is_ground_truth: bool = True

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        return torch.as_tensor(item[f"part_mask{index}"]).bool()


@dataclass(frozen=True)
class MaskFolderParts:
    """Precomputed part masks, ``<folder>/<pair_id>_<1|2>.png`` (non-zero = part): how the output
    of an external VLM pipeline plugs in."""

    folder: Path
    is_ground_truth: bool = False

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        path = Path(self.folder) / f"{item['pair_id']}_{index}.png"
        if not path.is_file():
            raise InputError(f"No predicted part mask at {path} (expected <pair_id>_<1|2>.png).")
        return load_mask(path)


@dataclass
class HeadParts:
    """The part masks a trained head predicts (``Matcher.predicted_part_mask``), computed in
    the same backbone pass as the features and kept with them by :class:`MatcherFeatures`."""

    features: MatcherFeatures
    is_ground_truth: bool = False

    def __post_init__(self) -> None:
        self.features.with_parts = True

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        loaded = _loaded(item, index)
        prepared = prepare_image(loaded, self.features.image_size, self.features.resize)
        mask = self.features.part_mask(prepared, str(item["function"]))
        if mask is None:
            raise InputError("This checkpoint has no mask head; use --parts gt or a predictor.")
        return _mask_to_image(mask.cpu(), prepared, loaded.rgb.shape[1:])


def load_part_predictor(spec: str | None, features: MatcherFeatures | None = None) -> PartPredictor | None:
    """``none`` | ``gt`` | ``head`` | ``folder:DIR`` | ``package.module:factory`` (a callable
    returning a :class:`PartPredictor`)."""
    if spec is None or spec == "none":
        return None
    if spec == "gt":
        return GroundTruthParts()
    if spec == "head":
        if features is None or features.matcher.head is None:
            raise InputError("--parts head needs a trained --checkpoint with a mask head.")
        return HeadParts(features)
    if spec.startswith("folder:"):
        folder = Path(spec.removeprefix("folder:"))
        if not folder.is_dir():
            raise InputError(f"Part-mask folder {folder} does not exist.")
        return MaskFolderParts(folder)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise InputError(f"Cannot load part predictor {spec!r}: {err}") from err
        return factory()
    raise InputError(f"Unknown --parts {spec!r}; use none, gt, head, folder:DIR or module:factory.")


# --------------------------------------------------------------------------- features


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


FeatureFunction = Callable[[list[Prepared], str], list[ImageFeatures]]


@dataclass
class FunctionalMethod:
    """A named way to match: features (None for chance), a matcher and optional part masks."""

    name: str
    matcher: DirectionMatcher
    features: FeatureFunction | None = None
    parts: PartPredictor | None = None


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class DirectionResult:
    """Everything measured in one direction of one pair.

    distances: (N,) label-transfer errors in original pixels; side: max(W, H) of the target;
    curves: threshold (px at 224) -> PR curve of the discovery ranking.
    """

    pair_id: str
    direction: Direction
    function: str
    across_category: bool
    distances: torch.Tensor
    side: int
    curves: dict[float, PRCurve]
    thresholds_px: tuple[float, ...] = FUNCTIONAL_THRESHOLDS_PX

    def pck(self, threshold_px: float) -> float:
        return pck_at(self.distances, threshold_px * self.side / REFERENCE_SIDE)

    def summary(self) -> dict[str, float]:
        out = {"norm_dist": normalised_distance(self.distances, self.side)}
        for k in sorted(set(self.thresholds_px), reverse=True):
            out[f"pck_{_key(k)}"] = self.pck(k)
        for k in sorted(set(self.thresholds_px), reverse=True):
            # NaN (skipped when averaging) without discovery or without ground truth to score it.
            curve = self.curves.get(float(k))
            out[f"best_f1_{_key(k)}"] = curve.best_f1 if curve is not None else math.nan
            out[f"ap_{_key(k)}"] = curve.average_precision if curve is not None else math.nan
        return out


@dataclass(frozen=True)
class PairResult:
    directions: tuple[DirectionResult, DirectionResult]
    part_iou: tuple[float, float] | None = None


@dataclass
class FunctionalResults:
    """All pairs of one method; :meth:`summary` gives the table numbers."""

    method: str
    pairs: list[PairResult]
    config: FunctionalConfig

    def direction_results(self, split: Split = "all", function: str | None = None) -> list[DirectionResult]:
        chosen = []
        for pair in self.pairs:
            for result in pair.directions:
                if split != "all" and result.across_category != (split == "across"):
                    continue
                if function is not None and result.function != function:
                    continue
                chosen.append(result)
        return chosen

    def summary(self, split: Split = "all", function: str | None = None) -> dict[str, float]:
        """Mean of each per-direction number over the split's pair-directions (+ counts, IoU)."""
        return summarise_rows(self.rows(), self.part_ious(), split, function)

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready row per pair-direction: its identity and every per-direction number."""
        return [
            {"pair_id": r.pair_id, "direction": r.direction, "function": r.function, "across_category": r.across_category, **r.summary()}
            for r in self.direction_results()
        ]

    def part_ious(self) -> dict[str, list[float]]:
        return {p.directions[0].pair_id: list(p.part_iou) for p in self.pairs if p.part_iou is not None}

    def curve_sums(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per split and threshold: how many PR curves, and their precision and recall summed per
        cutoff (shards add these up; the mean curve is sum / count)."""
        thresholds = sorted(self.config.thresholds_px, reverse=True) if self.config.discovery else []
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for split in SPLITS:
            out[split] = {}
            for k in thresholds:
                curves = [r.curves[float(k)] for r in self.direction_results(split) if float(k) in r.curves]
                if curves:
                    out[split][_key(k)] = {
                        "count": len(curves),
                        "precision": torch.stack([c.precision for c in curves]).sum(0).tolist(),
                        "recall": torch.stack([c.recall for c in curves]).sum(0).tolist(),
                    }
        return out

    def mean_curve(self, threshold_px: float, split: Split = "all") -> PRCurve | None:
        """Precision and recall averaged per cutoff over the split (for PR plots)."""
        curves = [r.curves[threshold_px] for r in self.direction_results(split) if threshold_px in r.curves]
        if not curves:
            return None
        return PRCurve(torch.stack([c.precision for c in curves]).mean(0), torch.stack([c.recall for c in curves]).mean(0))

    def functions(self) -> list[str]:
        return sorted({r.function for r in self.direction_results()})

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: summaries per split and function, mean PR curves, and every per-direction
        number (:func:`record_from_rows`)."""
        shard = list(self.config.shard) if self.config.shard is not None else None
        return record_from_rows(self.method, self.rows(), self.part_ious(), self.curve_sums(), list(self.config.cutoff_percents), shard)


ROW_IDENTITY = ("pair_id", "direction", "function", "across_category")


def summarise_rows(rows: Sequence[Mapping[str, Any]], part_ious: Mapping[str, Sequence[float]], split: Split = "all", function: str | None = None) -> dict[str, float]:
    """Mean of each per-direction number over the rows of ``split`` (and ``function``), NaN
    skipped; ``pair_directions`` counts them; ``part_iou`` averages both images of their pairs."""
    chosen = [r for r in rows if (split == "all" or r["across_category"] == (split == "across")) and (function is None or r["function"] == function)]
    keys = [k for k in chosen[0] if k not in ROW_IDENTITY] if chosen else []
    out: dict[str, float] = {key: nanmean(_number(row[key]) for row in chosen) for key in keys}
    out["pair_directions"] = len(chosen)
    pairs = {r["pair_id"] for r in chosen}
    ious = [_number(iou) for pair_id, values in part_ious.items() if pair_id in pairs for iou in values]
    if ious:
        out["part_iou"] = nanmean(ious)
    return out


def record_from_rows(
    method: str,
    rows: list[dict[str, Any]],
    part_ious: dict[str, list[float]],
    curve_sums: dict[str, dict[str, dict[str, Any]]],
    cutoff_percents: list[int],
    shard: list[int] | None = None,
) -> dict[str, Any]:
    """The result record of a run (or of merged shards): summaries per split and function, mean
    PR curves, the per-direction rows, part IoUs and the sums behind the curves."""
    functions = sorted({r["function"] for r in rows})
    return {
        "method": method,
        "shard": shard,
        "summary": {split: summarise_rows(rows, part_ious, split) for split in SPLITS},
        "by_function": {fn: summarise_rows(rows, part_ious, "all", fn) for fn in functions},
        "pr_curves": {
            split: {
                k: {"cutoff_percent": cutoff_percents, "precision": [v / c["count"] for v in c["precision"]], "recall": [v / c["count"] for v in c["recall"]]}
                for k, c in by_threshold.items()
            }
            for split, by_threshold in curve_sums.items()
        },
        "per_direction": rows,
        "part_iou_per_pair": part_ious,
        "pr_curve_sums": curve_sums,
    }


def merge_records(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Join the records of shards ``0/n .. n-1/n`` of one run into the record of the whole run
    (rows in shard order; identical summaries, PR curves equal up to float rounding).
    Raises InputError when a shard is missing, repeated, or the methods differ."""
    shards = sorted(records, key=lambda r: tuple(r.get("shard") or (0, 1)))
    counts = {tuple(r.get("shard") or (0, 1))[1] for r in shards}
    methods = {r["method"] for r in shards}
    if len(counts) != 1 or len(methods) != 1:
        raise InputError(f"Cannot merge shards of different runs (methods {sorted(methods)}, shard counts {sorted(counts)}).")
    total = counts.pop()
    found = [tuple(r.get("shard") or (0, 1))[0] for r in shards]
    if found != list(range(total)):
        raise InputError(f"{methods.pop()}: shards {found} of {total} found; every shard 0..{total - 1} is needed once.")
    rows = [row for r in shards for row in r["per_direction"]]
    part_ious = {k: v for r in shards for k, v in (r.get("part_iou_per_pair") or {}).items()}
    sums: dict[str, dict[str, dict[str, Any]]] = {}
    for r in shards:
        if "pr_curve_sums" not in r:
            raise InputError(f"{r['method']}: a shard record lacks pr_curve_sums (made by an older funcorr); rerun it.")
        for split, by_threshold in r["pr_curve_sums"].items():
            for k, c in by_threshold.items():
                into = sums.setdefault(split, {}).setdefault(k, {"count": 0, "precision": [0.0] * len(c["precision"]), "recall": [0.0] * len(c["recall"])})
                into["count"] += c["count"]
                into["precision"] = [a + b for a, b in zip(into["precision"], c["precision"], strict=True)]
                into["recall"] = [a + b for a, b in zip(into["recall"], c["recall"], strict=True)]
    cutoffs = next((c["cutoff_percent"] for r in shards for by_k in r["pr_curves"].values() for c in by_k.values()), list(CUTOFF_PERCENTS))
    return record_from_rows(shards[0]["method"], rows, part_ious, {split: sums.get(split, {}) for split in SPLITS}, cutoffs)


def _number(value: Any) -> float:
    """A JSON number back to float (NaN was written as null)."""
    return math.nan if value is None else float(value)


def _key(threshold: float) -> str:
    """23.0 -> '23', 7.5 -> '7.5' (metric names)."""
    return f"{threshold:g}"


# --------------------------------------------------------------------------- evaluation


def label_transfer_region(src: View, tgt: View, min_pixels: int) -> torch.Tensor:
    """Where label transfer may land: the target part when both parts are usable, else the object."""
    if (
        src.part_mask is not None
        and tgt.part_mask is not None
        and _count(src.part_mask & src.object_mask) >= min_pixels
        and _count(tgt.part_mask & tgt.object_mask) >= min_pixels
    ):
        return tgt.part_mask & tgt.object_mask
    return tgt.object_mask


def discovery_regions(src: View, tgt: View, min_pixels: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(source region, target region) pairs ranked separately then concatenated in this order."""
    return part_regions(src.object_mask, tgt.object_mask, src.part_mask, tgt.part_mask, min_pixels)


def evaluate_direction(
    src: View,
    tgt: View,
    src_points: torch.Tensor,
    tgt_points: torch.Tensor,
    matcher: DirectionMatcher,
    config: FunctionalConfig,
    *,
    pair_id: str = "",
    direction: Direction = "1->2",
    function: str = "",
    across_category: bool = False,
    ranked: list[Ranking] | None = None,
) -> DirectionResult:
    """Label transfer and discovery from ``src`` to ``tgt``.

    src_points, tgt_points: (N, 2) ground-truth correspondences in original pixels (row i of
    each is one pair). ranked: the discovery rankings of :func:`discovery_regions`, when
    already computed (:func:`pair_rankings`); else ``matcher.rank`` computes them.
    """
    src_plan, tgt_plan = src.prepared.plan, tgt.prepared.plan
    region = label_transfer_region(src, tgt, config.min_part_pixels)
    if src_points.shape[0]:
        moved = tgt_plan.to_orig(matcher.transfer(src, tgt, src_plan.to_net(src_points.float()), region).float().cpu())
        distances = point_distances(moved, tgt_points)
    else:  # no ground truth: every metric of this direction is NaN and skipped when averaging
        distances = torch.zeros(0, dtype=torch.float64)
    curves: dict[float, PRCurve] = {}
    if config.discovery and src_points.shape[0]:
        if ranked is None:
            ranked = [matcher.rank(src, tgt, s, t) for s, t in discovery_regions(src, tgt, config.min_part_pixels)]
        found_src = src_plan.to_orig(torch.cat([r[0] for r in ranked]).float())
        found_tgt = tgt_plan.to_orig(torch.cat([r[1] for r in ranked]).float())
        all_hits = discovery_hits_at(
            found_src, found_tgt, src_points, tgt_points, config.thresholds_px, src.side / REFERENCE_SIDE, tgt.side / REFERENCE_SIDE
        )
        for k, hits in zip(config.thresholds_px, all_hits):
            curves[float(k)] = precision_recall(hits, config.cutoff_percents)
    return DirectionResult(pair_id, direction, function, across_category, distances, tgt.side, curves, tuple(float(k) for k in config.thresholds_px))


def make_views(item: Mapping[str, Any], method: FunctionalMethod, config: FunctionalConfig) -> tuple[View, View, tuple[float, float] | None]:
    """Prepare both images of ``item``, compute features and part masks. Returns (view1, view2, part IoU)."""
    loaded = [_loaded(item, 1), _loaded(item, 2)]
    prepared = [prepare_image(image, config.image_size, config.resize) for image in loaded]
    features: list[ImageFeatures | None] = [None, None]
    if method.features is not None:
        features = list(method.features(prepared, str(item.get("function", ""))))
    parts: list[torch.Tensor | None] = [None, None]
    iou = None
    if method.parts is not None:
        in_image = [method.parts(item, 1), method.parts(item, 2)]
        parts = [_to_network(mask, p) for mask, p in zip(in_image, prepared)]
        if not method.parts.is_ground_truth and "part_mask1" in item:
            iou = tuple(mask_iou(mask & _object_mask(item, i), torch.as_tensor(item[f"part_mask{i}"]).bool()) for i, mask in ((1, in_image[0]), (2, in_image[1])))
    views = tuple(
        View(feat, prep.mask.cpu(), part, prep, max(image.size)) for feat, prep, part, image in zip(features, prepared, parts, loaded)
    )
    return views[0], views[1], iou


def pair_rankings(view1: View, view2: View, matcher: DirectionMatcher, config: FunctionalConfig) -> tuple[list[Ranking] | None, list[Ranking] | None]:
    """Discovery rankings of both directions from one call per region pair when the matcher
    offers ``rank_pair`` (the regions of 2->1 are those of 1->2 swapped); (None, None) else."""
    rank_pair = getattr(matcher, "rank_pair", None)
    if rank_pair is None:
        return None, None
    both = [rank_pair(view1, view2, r1, r2) for r1, r2 in discovery_regions(view1, view2, config.min_part_pixels)]
    return [forward for forward, _ in both], [backward for _, backward in both]


def evaluate_pair(item: Mapping[str, Any], method: FunctionalMethod, config: FunctionalConfig) -> PairResult:
    """Both directions of one benchmark item (see :class:`funcorr.data.readers.EvalPairs` for the keys)."""
    view1, view2, iou = make_views(item, method, config)
    corr = torch.as_tensor(item["correspondences"]).float()
    if corr.ndim != 3 or corr.shape[1:] != (2, 2):
        raise InputError(f"Pair {item.get('pair_id')}: correspondences must be (N, 2, 2), got {tuple(corr.shape)}.")
    common = {"pair_id": str(item.get("pair_id", "")), "function": str(item.get("function", "")), "across_category": bool(item.get("across_category", False))}
    ranked = pair_rankings(view1, view2, method.matcher, config) if config.discovery and corr.shape[0] else (None, None)
    forward = evaluate_direction(view1, view2, corr[:, 0], corr[:, 1], method.matcher, config, direction="1->2", ranked=ranked[0], **common)
    backward = evaluate_direction(view2, view1, corr[:, 1], corr[:, 0], method.matcher, config, direction="2->1", ranked=ranked[1], **common)
    return PairResult((forward, backward), iou)


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n), the i-th (from 0) of n shards; InputError otherwise."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/n (e.g. 0/4), got {text!r}.") from None
    if count < 1 or not 0 <= index < count:
        raise InputError(f"Shard {text} does not exist: use i/n with 0 <= i < n.")
    return index, count


def shard_range(total: int, shard: tuple[int, int] | None) -> range:
    """Indices of shard ``(i, n)`` of ``total`` pairs: the i-th of n contiguous, near-equal
    slices (contiguous, so pairs that share images, stored together, share a shard)."""
    if shard is None:
        return range(total)
    index, count = shard
    if not 0 <= index < count:
        raise InputError(f"Shard {index}/{count} does not exist: use i/n with 0 <= i < n.")
    return range(index * total // count, (index + 1) * total // count)


def evaluate_functional(pairs: Iterable[Mapping[str, Any]], method: FunctionalMethod, config: FunctionalConfig = FunctionalConfig(), progress: bool = False) -> FunctionalResults:
    """Run the benchmark over any iterable of pair dicts (an ``EvalPairs`` dataset or a list):
    the first ``config.max_pairs`` pairs, or shard ``config.shard`` of them."""
    from tqdm import tqdm

    if not (hasattr(pairs, "__len__") and hasattr(pairs, "__getitem__")):
        pairs = list(pairs)
    total = len(pairs) if config.max_pairs is None else min(len(pairs), config.max_pairs)
    chosen = shard_range(total, config.shard)
    results = [evaluate_pair(pairs[i], method, config) for i in tqdm(chosen, desc=f"functional {method.name}", unit="pair", disable=not progress)]
    if not results:
        raise InputError("The benchmark has no pairs to evaluate." if total == 0 else f"Shard {config.shard[0]}/{config.shard[1]} of {total} pairs is empty.")
    return FunctionalResults(method.name, results, config)


# --------------------------------------------------------------------------- helpers


def _count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def _object_mask(item: Mapping[str, Any], index: int) -> torch.Tensor:
    mask = item.get(f"mask{index}")
    image = torch.as_tensor(item[f"image{index}"])
    return torch.ones(image.shape[1:], dtype=torch.bool) if mask is None else torch.as_tensor(mask).bool()


def _loaded(item: Mapping[str, Any], index: int) -> LoadedImage:
    image = torch.as_tensor(item[f"image{index}"]).float()
    if image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"image{index} must be (3, H, W), got {tuple(image.shape)}.")
    return LoadedImage(image, _object_mask(item, index))


def _to_network(mask: torch.Tensor, prepared: Prepared) -> torch.Tensor:
    """(H, W) bool in image pixels -> (S, S) bool in network pixels (nearest; never padding)."""
    return (apply_resize(mask.float(), prepared.plan, mode="nearest") > 0.5) & prepared.mask.cpu()


def _mask_to_image(net_mask: torch.Tensor, prepared: Prepared, shape: Sequence[int]) -> torch.Tensor:
    """Nearest-neighbour resample a network mask back onto the image grid (H, W)."""
    height, width = int(shape[0]), int(shape[1])
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij")
    net = prepared.plan.to_net(torch.stack([xs, ys], -1).reshape(-1, 2)).round().long().clamp(0, net_mask.shape[0] - 1)
    return net_mask[net[:, 1], net[:, 0]].reshape(height, width)


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
"""

from __future__ import annotations

import importlib
import math
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
    mask_pixels,
    part_regions,
    transfer_points,
)

Direction = Literal["1->2", "2->1"]
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
    """The part masks a trained head predicts (``Matcher.predicted_part_mask``)."""

    features: MatcherFeatures
    is_ground_truth: bool = False

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        prepared = prepare_image(_loaded(item, index), self.features.image_size, self.features.resize)
        self.features.use_function(str(item["function"]))
        masks = self.features.matcher.predicted_part_mask([prepared])
        if masks is None:
            raise InputError("This checkpoint has no mask head; use --parts gt or a predictor.")
        return _mask_to_image(masks[0].cpu(), prepared, _loaded(item, index).rgb.shape[1:])


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


@dataclass
class MatcherFeatures:
    """Features from a :class:`funcorr.model.matcher.Matcher`, switching the function of a trained
    head per pair (raw backbone features ignore the function)."""

    matcher: Any

    @property
    def image_size(self) -> int:
        return self.matcher.config.image_size

    @property
    def resize(self) -> ResizePolicy:
        return self.matcher.config.resize

    def use_function(self, function: str) -> None:
        self.matcher.use_function(function)

    def __call__(self, images: list[Prepared], function: str) -> list[ImageFeatures]:
        self.use_function(function)
        return self.matcher.features(images)


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
        rows = [r.summary() for r in self.direction_results(split, function)]
        keys = list(rows[0]) if rows else []
        out: dict[str, float] = {key: nanmean(row[key] for row in rows) for key in keys}
        out["pair_directions"] = len(rows)
        ious = [iou for pair in self.pairs if pair.part_iou is not None and _in_split(pair, split, function) for iou in pair.part_iou]
        if ious:
            out["part_iou"] = nanmean(ious)
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
        """JSON-ready: summaries per split and function, mean PR curves, and every per-direction number."""
        thresholds = sorted(self.config.thresholds_px, reverse=True) if self.config.discovery else []
        return {
            "method": self.method,
            "summary": {split: self.summary(split) for split in SPLITS},
            "by_function": {fn: self.summary("all", fn) for fn in self.functions()},
            "pr_curves": {
                split: {
                    _key(k): {"cutoff_percent": list(self.config.cutoff_percents), "precision": c.precision.tolist(), "recall": c.recall.tolist()}
                    for k in thresholds
                    if (c := self.mean_curve(k, split)) is not None
                }
                for split in SPLITS
            },
            "per_direction": [
                {"pair_id": r.pair_id, "direction": r.direction, "function": r.function, "across_category": r.across_category, **r.summary()}
                for r in self.direction_results()
            ],
            "part_iou_per_pair": {p.directions[0].pair_id: list(p.part_iou) for p in self.pairs if p.part_iou is not None},
        }


def _in_split(pair: PairResult, split: Split, function: str | None) -> bool:
    first = pair.directions[0]
    return (split == "all" or first.across_category == (split == "across")) and (function is None or first.function == function)


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
) -> DirectionResult:
    """Label transfer and discovery from ``src`` to ``tgt``.

    src_points, tgt_points: (N, 2) ground-truth correspondences in original pixels (row i of
    each is one pair).
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


def evaluate_pair(item: Mapping[str, Any], method: FunctionalMethod, config: FunctionalConfig) -> PairResult:
    """Both directions of one benchmark item (see :mod:`funcorr.data.dataset` for the keys)."""
    view1, view2, iou = make_views(item, method, config)
    corr = torch.as_tensor(item["correspondences"]).float()
    if corr.ndim != 3 or corr.shape[1:] != (2, 2):
        raise InputError(f"Pair {item.get('pair_id')}: correspondences must be (N, 2, 2), got {tuple(corr.shape)}.")
    common = {"pair_id": str(item.get("pair_id", "")), "function": str(item.get("function", "")), "across_category": bool(item.get("across_category", False))}
    forward = evaluate_direction(view1, view2, corr[:, 0], corr[:, 1], method.matcher, config, direction="1->2", **common)
    backward = evaluate_direction(view2, view1, corr[:, 1], corr[:, 0], method.matcher, config, direction="2->1", **common)
    return PairResult((forward, backward), iou)


def evaluate_functional(pairs: Iterable[Mapping[str, Any]], method: FunctionalMethod, config: FunctionalConfig = FunctionalConfig(), progress: bool = False) -> FunctionalResults:
    """Run the benchmark over any iterable of pair dicts (an ``EvalPairs`` dataset or a list)."""
    from tqdm import tqdm

    results = []
    for index, item in enumerate(tqdm(pairs, desc=f"functional {method.name}", unit="pair", disable=not progress)):
        if config.max_pairs is not None and index >= config.max_pairs:
            break
        results.append(evaluate_pair(item, method, config))
    if not results:
        raise InputError("The benchmark has no pairs to evaluate.")
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


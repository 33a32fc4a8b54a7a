"""Dense functional correspondence benchmark (Sec. 5.1 of the dense functional correspondence paper).

One idea at about 590 lines: the dense functional benchmark's protocol (regions, both
directions, records, averages and shards); methods and part masks are in
:mod:`funcorr.eval.functional_methods` and :mod:`funcorr.eval.part_masks`.

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

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch

from funcorr.eval.functional_methods import DirectionMatcher, FunctionalMethod, PairView, Ranking
from funcorr.eval.metrics import (
    CUTOFF_PERCENTS,
    FUNCTIONAL_THRESHOLDS_PX,
    REFERENCE_SIDE,
    PRCurve,
    discovery_hits_at,
    nanmean,
    normalised_distance,
    pck_at,
    point_distances,
    precision_recall,
)
from funcorr.eval.part_masks import item_image, item_object_mask
from funcorr.images import (
    InputError,
    ResizePolicy,
    apply_resize,
    mask_iou,
)
from funcorr.model.matcher import Prepared, prepare_image
from funcorr.model.matching import (
    DEFAULT_BLOCK_ROWS,
    ImageFeatures,
    part_regions,
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
    shard: tuple[int, int] | None = None


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

    def direction_results(
        self, split: Split = "all", function: str | None = None
    ) -> list[DirectionResult]:
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
            {
                "pair_id": r.pair_id,
                "direction": r.direction,
                "function": r.function,
                "across_category": r.across_category,
                **r.summary(),
            }
            for r in self.direction_results()
        ]

    def part_ious(self) -> dict[str, list[float]]:
        return {
            p.directions[0].pair_id: list(p.part_iou) for p in self.pairs if p.part_iou is not None
        }

    def curve_sums(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per split and threshold: how many PR curves, and their precision and recall summed per
        cutoff (shards add these up; the mean curve is sum / count)."""
        thresholds = (
            sorted(self.config.thresholds_px, reverse=True) if self.config.discovery else []
        )
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for split in SPLITS:
            out[split] = {}
            for k in thresholds:
                curves = [
                    r.curves[float(k)]
                    for r in self.direction_results(split)
                    if float(k) in r.curves
                ]
                if curves:
                    out[split][_key(k)] = {
                        "count": len(curves),
                        "precision": torch.stack([c.precision for c in curves]).sum(0).tolist(),
                        "recall": torch.stack([c.recall for c in curves]).sum(0).tolist(),
                    }
        return out

    def mean_curve(self, threshold_px: float, split: Split = "all") -> PRCurve | None:
        """Precision and recall averaged per cutoff over the split (for PR plots)."""
        curves = [
            r.curves[threshold_px]
            for r in self.direction_results(split)
            if threshold_px in r.curves
        ]
        if not curves:
            return None
        return PRCurve(
            torch.stack([c.precision for c in curves]).mean(0),
            torch.stack([c.recall for c in curves]).mean(0),
        )

    def functions(self) -> list[str]:
        return sorted({r.function for r in self.direction_results()})

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: summaries per split and function, mean PR curves, and every per-direction
        number (:func:`record_from_rows`)."""
        shard = list(self.config.shard) if self.config.shard is not None else None
        return record_from_rows(
            self.method,
            self.rows(),
            self.part_ious(),
            self.curve_sums(),
            list(self.config.cutoff_percents),
            shard,
        )


ROW_IDENTITY = ("pair_id", "direction", "function", "across_category")


def summarise_rows(
    rows: Sequence[Mapping[str, Any]],
    part_ious: Mapping[str, Sequence[float]],
    split: Split = "all",
    function: str | None = None,
) -> dict[str, float]:
    """Mean of each per-direction number over the rows of ``split`` (and ``function``), NaN
    skipped; ``pair_directions`` counts them; ``part_iou`` averages both images of their pairs."""
    chosen = [
        r
        for r in rows
        if (split == "all" or r["across_category"] == (split == "across"))
        and (function is None or r["function"] == function)
    ]
    keys = [k for k in chosen[0] if k not in ROW_IDENTITY] if chosen else []
    out: dict[str, float] = {key: nanmean(_number(row[key]) for row in chosen) for key in keys}
    out["pair_directions"] = len(chosen)
    pairs = {r["pair_id"] for r in chosen}
    ious = [
        _number(iou) for pair_id, values in part_ious.items() if pair_id in pairs for iou in values
    ]
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
                k: {
                    "cutoff_percent": cutoff_percents,
                    "precision": [v / c["count"] for v in c["precision"]],
                    "recall": [v / c["count"] for v in c["recall"]],
                }
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
        raise InputError(
            f"Cannot merge shards of different runs (methods {sorted(methods)}, shard counts {sorted(counts)})."
        )
    total = counts.pop()
    found = [tuple(r.get("shard") or (0, 1))[0] for r in shards]
    if found != list(range(total)):
        raise InputError(
            f"{methods.pop()}: shards {found} of {total} found; every shard 0..{total - 1} is needed once."
        )
    rows = [row for r in shards for row in r["per_direction"]]
    part_ious = {k: v for r in shards for k, v in (r.get("part_iou_per_pair") or {}).items()}
    sums: dict[str, dict[str, dict[str, Any]]] = {}
    for r in shards:
        if "pr_curve_sums" not in r:
            raise InputError(
                f"{r['method']}: a shard record lacks pr_curve_sums (made by an older funcorr); rerun it."
            )
        for split, by_threshold in r["pr_curve_sums"].items():
            for k, c in by_threshold.items():
                into = sums.setdefault(split, {}).setdefault(
                    k,
                    {
                        "count": 0,
                        "precision": [0.0] * len(c["precision"]),
                        "recall": [0.0] * len(c["recall"]),
                    },
                )
                into["count"] += c["count"]
                into["precision"] = [
                    a + b for a, b in zip(into["precision"], c["precision"], strict=True)
                ]
                into["recall"] = [a + b for a, b in zip(into["recall"], c["recall"], strict=True)]
    cutoffs = next(
        (
            c["cutoff_percent"]
            for r in shards
            for by_k in r["pr_curves"].values()
            for c in by_k.values()
        ),
        list(CUTOFF_PERCENTS),
    )
    return record_from_rows(
        shards[0]["method"],
        rows,
        part_ious,
        {split: sums.get(split, {}) for split in SPLITS},
        cutoffs,
    )


def _number(value: Any) -> float:
    """A JSON number back to float (NaN was written as null)."""
    return math.nan if value is None else float(value)


def _key(threshold: float) -> str:
    """23.0 -> '23', 7.5 -> '7.5' (metric names)."""
    return f"{threshold:g}"


# --------------------------------------------------------------------------- evaluation


def label_transfer_region(src: PairView, tgt: PairView, min_pixels: int) -> torch.Tensor:
    """Where label transfer may land: the target part when both parts are usable, else the object."""
    if (
        src.part_mask is not None
        and tgt.part_mask is not None
        and _count(src.part_mask & src.object_mask) >= min_pixels
        and _count(tgt.part_mask & tgt.object_mask) >= min_pixels
    ):
        return tgt.part_mask & tgt.object_mask
    return tgt.object_mask


def discovery_regions(
    src: PairView, tgt: PairView, min_pixels: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(source region, target region) pairs ranked separately then concatenated in this order."""
    return part_regions(src.object_mask, tgt.object_mask, src.part_mask, tgt.part_mask, min_pixels)


def evaluate_direction(
    src: PairView,
    tgt: PairView,
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
        moved = tgt_plan.to_orig(
            matcher.transfer(src, tgt, src_plan.to_net(src_points.float()), region).float().cpu()
        )
        distances = point_distances(moved, tgt_points)
    else:  # no ground truth: every metric of this direction is NaN and skipped when averaging
        distances = torch.zeros(0, dtype=torch.float64)
    curves: dict[float, PRCurve] = {}
    if config.discovery and src_points.shape[0]:
        if ranked is None:
            ranked = [
                matcher.rank(src, tgt, s, t)
                for s, t in discovery_regions(src, tgt, config.min_part_pixels)
            ]
        found_src = src_plan.to_orig(torch.cat([r[0] for r in ranked]).float())
        found_tgt = tgt_plan.to_orig(torch.cat([r[1] for r in ranked]).float())
        all_hits = discovery_hits_at(
            found_src,
            found_tgt,
            src_points,
            tgt_points,
            config.thresholds_px,
            src.side / REFERENCE_SIDE,
            tgt.side / REFERENCE_SIDE,
        )
        for k, hits in zip(config.thresholds_px, all_hits):
            curves[float(k)] = precision_recall(hits, config.cutoff_percents)
    return DirectionResult(
        pair_id,
        direction,
        function,
        across_category,
        distances,
        tgt.side,
        curves,
        tuple(float(k) for k in config.thresholds_px),
    )


def make_views(
    item: Mapping[str, Any], method: FunctionalMethod, config: FunctionalConfig
) -> tuple[PairView, PairView, tuple[float, float] | None]:
    """Prepare both images of ``item``, compute features and part masks. Returns (view1, view2, part IoU)."""
    loaded = [item_image(item, 1), item_image(item, 2)]
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
            iou = tuple(
                mask_iou(
                    mask & item_object_mask(item, i), torch.as_tensor(item[f"part_mask{i}"]).bool()
                )
                for i, mask in ((1, in_image[0]), (2, in_image[1]))
            )
    views = tuple(
        PairView(feat, prep.mask.cpu(), part, prep, max(image.size))
        for feat, prep, part, image in zip(features, prepared, parts, loaded)
    )
    return views[0], views[1], iou


def pair_rankings(
    view1: PairView, view2: PairView, matcher: DirectionMatcher, config: FunctionalConfig
) -> tuple[list[Ranking] | None, list[Ranking] | None]:
    """Discovery rankings of both directions from one call per region pair when the matcher
    offers ``rank_pair`` (the regions of 2->1 are those of 1->2 swapped); (None, None) else."""
    rank_pair = getattr(matcher, "rank_pair", None)
    if rank_pair is None:
        return None, None
    both = [
        rank_pair(view1, view2, r1, r2)
        for r1, r2 in discovery_regions(view1, view2, config.min_part_pixels)
    ]
    return [forward for forward, _ in both], [backward for _, backward in both]


def evaluate_pair(
    item: Mapping[str, Any], method: FunctionalMethod, config: FunctionalConfig
) -> PairResult:
    """Both directions of one benchmark item (see :class:`funcorr.data.readers.EvalPairs` for the keys)."""
    view1, view2, iou = make_views(item, method, config)
    corr = torch.as_tensor(item["correspondences"]).float()
    if corr.ndim != 3 or corr.shape[1:] != (2, 2):
        raise InputError(
            f"Pair {item.get('pair_id')}: correspondences must be (N, 2, 2), got {tuple(corr.shape)}."
        )
    common = {
        "pair_id": str(item.get("pair_id", "")),
        "function": str(item.get("function", "")),
        "across_category": bool(item.get("across_category", False)),
    }
    ranked = (
        pair_rankings(view1, view2, method.matcher, config)
        if config.discovery and corr.shape[0]
        else (None, None)
    )
    forward = evaluate_direction(
        view1,
        view2,
        corr[:, 0],
        corr[:, 1],
        method.matcher,
        config,
        direction="1->2",
        ranked=ranked[0],
        **common,
    )
    backward = evaluate_direction(
        view2,
        view1,
        corr[:, 1],
        corr[:, 0],
        method.matcher,
        config,
        direction="2->1",
        ranked=ranked[1],
        **common,
    )
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


def evaluate_functional(
    pairs: Iterable[Mapping[str, Any]],
    method: FunctionalMethod,
    config: FunctionalConfig = FunctionalConfig(),
    progress: bool = False,
) -> FunctionalResults:
    """Run the benchmark over any iterable of pair dicts (an ``EvalPairs`` dataset or a list):
    the first ``config.max_pairs`` pairs, or shard ``config.shard`` of them."""
    from tqdm import tqdm

    if not (hasattr(pairs, "__len__") and hasattr(pairs, "__getitem__")):
        pairs = list(pairs)
    total = len(pairs) if config.max_pairs is None else min(len(pairs), config.max_pairs)
    chosen = shard_range(total, config.shard)
    results = [
        evaluate_pair(pairs[i], method, config)
        for i in tqdm(chosen, desc=f"functional {method.name}", unit="pair", disable=not progress)
    ]
    if not results:
        raise InputError(
            "The benchmark has no pairs to evaluate."
            if total == 0
            else f"Shard {config.shard[0]}/{config.shard[1]} of {total} pairs is empty."
        )
    return FunctionalResults(method.name, results, config)


# --------------------------------------------------------------------------- helpers


def _count(mask: torch.Tensor) -> int:
    return int(mask.sum())


def _to_network(mask: torch.Tensor, prepared: Prepared) -> torch.Tensor:
    """(H, W) bool in image pixels -> (S, S) bool in network pixels (nearest; never padding)."""
    return (apply_resize(mask.float(), prepared.plan, mode="nearest") > 0.5) & prepared.mask.cpu()

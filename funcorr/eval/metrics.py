"""Correspondence metrics on plain tensors: PCK, normalised distance, discovery PR curves, IoU.

Conventions (they follow the reference code of the two papers; see ``docs`` in each function):

* Distances are Euclidean, in the pixel units of the image the ground truth lives in.
* ``pck_at`` counts ``distance <= threshold`` by default (the dense functional correspondence
  code and SPair practice); SOCO's code counts ``distance < threshold`` (``strict=True``).
* Discovery: predictions are ranked best first. At cutoff ``c`` (1 %, 2 %, ..., 100 %) the top
  ``floor(c * P)`` predictions are kept (at least one). A prediction is *correct* when some
  ground-truth pair ``i`` has both of its ends within ``k`` px of the prediction's ends (same
  ``i`` on both sides); a ground-truth pair is *recovered* when some kept prediction is within
  ``k`` px of both of its ends. Precision = correct kept / kept, recall = recovered / G.
* AP is the area under the precision-recall curve as the reference sums it: starting from
  (recall 0, precision 1), ``sum_c (recall_c - recall_{c-1}) * precision_c`` over the 100
  cutoffs (a right-endpoint step sum, no interpolation).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

#: The paper's discovery cutoffs, as integer percentages 1..100.
CUTOFF_PERCENTS: tuple[int, ...] = tuple(range(1, 101))
#: Pixel thresholds at 224 px reported by the dense functional correspondence paper (Table 1/2);
#: 15 and 5 are computed by its code as well.
FUNCTIONAL_THRESHOLDS_PX: tuple[int, ...] = (23, 15, 10, 5)
REFERENCE_SIDE = 224
DEFAULT_HIT_BLOCK = 4096


def point_distances(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between matching rows. predicted, target: (N, 2) -> (N,)."""
    if predicted.shape != target.shape:
        raise ValueError(f"Shapes differ: {tuple(predicted.shape)} vs {tuple(target.shape)}.")
    return (predicted.double() - target.double()).norm(dim=-1)


def pck_at(distances: torch.Tensor, threshold: float | torch.Tensor, strict: bool = False) -> float:
    """Share of distances within ``threshold`` (a scalar or one per distance). NaN when empty.

    distances: (N,). ``strict`` counts ``d < t`` instead of ``d <= t``.
    """
    if distances.numel() == 0:
        return math.nan
    threshold = torch.as_tensor(threshold, dtype=torch.float64)
    within = distances.double() < threshold if strict else distances.double() <= threshold
    return float(within.double().mean())


def normalised_distance(distances: torch.Tensor, side: int = REFERENCE_SIDE) -> float:
    """Mean distance divided by the largest coordinate span ``side - 1`` (the reference divides
    by 223 at 224 px), so 0 is perfect and 1 spans the image. NaN when empty."""
    if distances.numel() == 0:
        return math.nan
    return float(distances.double().mean() / (side - 1))


def nearest_target_distances(
    predicted: torch.Tensor, targets: Sequence[torch.Tensor]
) -> torch.Tensor:
    """Distance from each prediction to the closest of its valid targets (one-to-many matches,
    SOCO's concept correspondence). predicted: (N, 2); targets[i]: (K_i, 2), K_i >= 1. -> (N,)."""
    if predicted.shape[0] != len(targets):
        raise ValueError("One set of valid targets is needed per prediction.")
    out = torch.empty(predicted.shape[0], dtype=torch.float64)
    for i, valid in enumerate(targets):
        out[i] = (valid.double() - predicted[i].double()).norm(dim=-1).min()
    return out


@dataclass(frozen=True)
class DiscoveryHits:
    """Which ranked predictions are correct, and when each ground-truth pair is first recovered.

    correct: (P,) bool in rank order; first_rank: (G,) long, the rank of the first prediction
    that recovers GT pair i (P when none does).
    """

    correct: torch.Tensor
    first_rank: torch.Tensor


def discovery_hits(
    src_xy: torch.Tensor,
    tgt_xy: torch.Tensor,
    gt_src: torch.Tensor,
    gt_tgt: torch.Tensor,
    threshold: float,
    tgt_threshold: float | None = None,
    block_rows: int = DEFAULT_HIT_BLOCK,
) -> DiscoveryHits:
    """Match ranked predictions (P, 2) + (P, 2) against GT pairs (G, 2) + (G, 2) at ``threshold`` px
    (``tgt_threshold`` on the target side when the images differ in size; default the same)."""
    tgt_threshold = threshold if tgt_threshold is None else tgt_threshold
    return discovery_hits_at(
        src_xy, tgt_xy, gt_src, gt_tgt, (1.0,), threshold, tgt_threshold, block_rows
    )[0]


def discovery_hits_at(
    src_xy: torch.Tensor,
    tgt_xy: torch.Tensor,
    gt_src: torch.Tensor,
    gt_tgt: torch.Tensor,
    thresholds: Sequence[float],
    src_unit: float = 1.0,
    tgt_unit: float = 1.0,
    block_rows: int = DEFAULT_HIT_BLOCK,
) -> list[DiscoveryHits]:
    """:func:`discovery_hits` at several thresholds at once; threshold ``k`` means ``k * src_unit``
    px in the source and ``k * tgt_unit`` px in the target.

    Prediction p is within ``k`` of GT pair i when ``max(d_src / src_unit, d_tgt / tgt_unit) <= k``,
    so one (block_rows, G) matrix of that (squared) normalised distance serves every threshold.
    Runs on the device of ``src_xy``; at most ``block_rows x G`` distances exist at once.
    """
    device = src_xy.device
    n_pred, n_gt = src_xy.shape[0], gt_src.shape[0]
    limits = [float(k) ** 2 for k in thresholds]
    correct = [torch.zeros(n_pred, dtype=torch.bool, device=device) for _ in limits]
    first_rank = [torch.full((n_gt,), n_pred, dtype=torch.long, device=device) for _ in limits]
    if n_pred and n_gt:
        gt_src, gt_tgt = gt_src.to(device, torch.float64), gt_tgt.to(device, torch.float64)
        for start in range(0, n_pred, block_rows):
            stop = min(start + block_rows, n_pred)
            # Squared distances by broadcasting: exact for pixel coordinates, unlike cdist's
            # matrix-product shortcut that can push a point lying on the threshold outside it.
            reach = torch.maximum(
                _squared_distances(src_xy[start:stop].to(torch.float64), gt_src).div_(src_unit**2),
                _squared_distances(tgt_xy[start:stop].to(torch.float64), gt_tgt).div_(tgt_unit**2),
            )  # (b, G)
            nearest = reach.min(dim=1).values
            for j, limit in enumerate(limits):
                correct[j][start:stop] = nearest <= limit
                pending = first_rank[j] == n_pred  # a GT pair found earlier keeps its first rank
                if not pending.any():
                    continue
                hit = reach[:, pending] <= limit
                found = hit.any(dim=0)
                # argmax of a bool column is its first True row.
                rows = hit.to(torch.uint8).argmax(dim=0) + start
                first_rank[j][pending] = torch.where(found, rows, first_rank[j][pending])
    return [DiscoveryHits(c.cpu(), f.cpu()) for c, f in zip(correct, first_rank)]


def _squared_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(n, 2), (m, 2) float64 -> (n, m) squared Euclidean distances, one axis at a time."""
    dx = a[:, 0, None] - b[None, :, 0]
    dy = a[:, 1, None] - b[None, :, 1]
    return dx.mul_(dx).add_(dy.mul_(dy))


def cutoff_sizes(n_predictions: int, percents: Sequence[int] = CUTOFF_PERCENTS) -> torch.Tensor:
    """Number of top predictions kept at each cutoff: ``floor(P * c / 100)``, at least 1. (C,).

    Integer arithmetic, so 29 % of 100 is 29 (``int(100 * 0.29)`` would give 28)."""
    sizes = torch.tensor([n_predictions * p // 100 for p in percents], dtype=torch.long)
    return sizes.clamp(min=1)


@dataclass(frozen=True)
class PRCurve:
    """Precision, recall and F1 at each cutoff. All (C,) float64 in [0, 1]."""

    precision: torch.Tensor
    recall: torch.Tensor

    @property
    def f1(self) -> torch.Tensor:
        return f1_scores(self.precision, self.recall)

    @property
    def best_f1(self) -> float:
        return float(self.f1.max())

    @property
    def average_precision(self) -> float:
        return average_precision(self.precision, self.recall)


def precision_recall(hits: DiscoveryHits, percents: Sequence[int] = CUTOFF_PERCENTS) -> PRCurve:
    """Precision and recall of the top-``floor(c P)`` predictions at every cutoff ``c``."""
    n_pred = hits.correct.shape[0]
    n_gt = hits.first_rank.shape[0]
    if n_pred == 0:
        zeros = torch.zeros(len(percents), dtype=torch.float64)
        return PRCurve(zeros, zeros.clone())
    kept = cutoff_sizes(n_pred, percents)
    correct_so_far = torch.cumsum(hits.correct.double(), dim=0)[kept - 1]
    precision = correct_so_far / kept.double()
    if n_gt == 0:
        recall = torch.zeros_like(precision)
    else:
        # GT pair i is recovered within the top k exactly when its first hit rank is < k.
        recall = (hits.first_rank[None, :] < kept[:, None]).double().mean(dim=1)
    return PRCurve(precision, recall)


def f1_scores(precision: torch.Tensor, recall: torch.Tensor) -> torch.Tensor:
    """Harmonic mean per cutoff; 0 where precision + recall is 0."""
    total = precision + recall
    return torch.where(
        total > 0, 2 * precision * recall / total.clamp(min=1e-300), torch.zeros_like(total)
    )


def average_precision(precision: torch.Tensor, recall: torch.Tensor) -> float:
    """``sum_c (r_c - r_{c-1}) p_c`` with ``(r_0, p_0) = (0, 1)``: the reference's step area."""
    recall = torch.cat([recall.new_zeros(1), recall.double()])
    return float(((recall[1:] - recall[:-1]) * precision.double()).sum())


def nanmean(values: Iterable[float]) -> float:
    """Mean of the non-NaN values; NaN when there are none."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan

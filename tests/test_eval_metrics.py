"""Metrics on hand-computed cases and their invariants (hypothesis)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from funcorr.eval.metrics import (
    CUTOFF_PERCENTS,
    average_precision,
    cutoff_sizes,
    discovery_hits,
    discovery_hits_at,
    f1_scores,
    nanmean,
    nearest_target_distances,
    normalised_distance,
    pck_at,
    point_distances,
    precision_recall,
)
from funcorr.images import mask_iou


def test_pck_counts_threshold_inclusively_unless_strict():
    d = torch.tensor([0.0, 5.0, 10.0, 10.5, 30.0])
    assert pck_at(d, 10) == pytest.approx(3 / 5)
    assert pck_at(d, 10, strict=True) == pytest.approx(2 / 5)
    # One threshold per point (e.g. per-pair bbox sizes).
    assert pck_at(d, torch.tensor([0.0, 1.0, 10.0, 11.0, 29.0])) == pytest.approx(3 / 5)
    assert math.isnan(pck_at(torch.zeros(0), 10))


def test_normalised_distance_divides_by_side_minus_one():
    d = point_distances(
        torch.tensor([[0.0, 0.0], [223.0, 0.0]]), torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    )
    assert normalised_distance(d) == pytest.approx(0.5)  # mean 111.5 / 223


def test_nearest_target_distance_takes_closest_valid_target():
    predicted = torch.tensor([[10.0, 10.0], [0.0, 0.0]])
    targets = [torch.tensor([[50.0, 10.0], [13.0, 14.0]]), torch.tensor([[0.0, 7.0]])]
    assert nearest_target_distances(predicted, targets).tolist() == pytest.approx([5.0, 7.0])


def test_cutoff_sizes_use_exact_integer_floor():
    sizes = cutoff_sizes(100)
    assert sizes[28].item() == 29  # float int(100 * 0.29) would give 28
    assert cutoff_sizes(4).tolist()[:30] == [1] * 30  # never an empty top-k
    assert cutoff_sizes(4)[-1].item() == 4


def test_discovery_with_known_ranking_gives_hand_computed_ap_and_f1():
    # Three GT pairs; four ranked predictions: right (GT0), wrong, right (GT1), right (GT0 again).
    gt_src = torch.tensor([[10.0, 10.0], [50.0, 50.0], [90.0, 90.0]])
    gt_tgt = gt_src + torch.tensor([100.0, 0.0])
    src = torch.tensor([[11.0, 10.0], [50.0, 50.0], [50.0, 52.0], [10.0, 12.0]])
    tgt = torch.tensor(
        [[110.0, 11.0], [0.0, 0.0], [151.0, 50.0], [110.0, 10.0]]
    )  # 2nd: right source, wrong target
    hits = discovery_hits(src, tgt, gt_src, gt_tgt, threshold=3.0)
    assert hits.correct.tolist() == [True, False, True, True]
    assert hits.first_rank.tolist() == [0, 2, 4]  # GT2 never found -> P
    curve = precision_recall(hits)
    # Kept: 1 for cutoffs 1-49 %, 2 for 50-74 %, 3 for 75-99 %, 4 at 100 %.
    assert curve.precision[0].item() == 1.0 and curve.recall[0].item() == pytest.approx(1 / 3)
    assert curve.precision[49].item() == 0.5 and curve.recall[49].item() == pytest.approx(1 / 3)
    assert curve.precision[74].item() == pytest.approx(2 / 3) and curve.recall[
        74
    ].item() == pytest.approx(2 / 3)
    assert curve.precision[99].item() == pytest.approx(3 / 4) and curve.recall[
        99
    ].item() == pytest.approx(2 / 3)
    # AP = 1/3 * 1 (first cutoff) + 1/3 * 2/3 (at 75 %) = 5/9; best F1 at 100 %: 2*(3/4)(2/3)/(3/4+2/3) = 12/17.
    assert curve.average_precision == pytest.approx(5 / 9)
    assert curve.best_f1 == pytest.approx(12 / 17)


def test_perfect_dense_discovery_has_ap_one():
    xy = torch.stack(
        torch.meshgrid(torch.arange(20.0), torch.arange(20.0), indexing="xy"), -1
    ).reshape(-1, 2)
    hits = discovery_hits(xy, xy + 3, xy, xy + 3, threshold=10.0)
    curve = precision_recall(hits)
    assert curve.average_precision == pytest.approx(1.0)
    assert curve.recall[-1].item() == 1.0 and curve.precision.min().item() == 1.0


def test_same_gt_index_is_required_on_both_sides():
    # Source end near GT0, target end near GT1 only: not a correct match.
    gt_src = torch.tensor([[0.0, 0.0], [100.0, 0.0]])
    gt_tgt = torch.tensor([[0.0, 100.0], [100.0, 100.0]])
    hits = discovery_hits(
        torch.tensor([[0.0, 0.0]]), torch.tensor([[100.0, 100.0]]), gt_src, gt_tgt, 5.0
    )
    assert hits.correct.tolist() == [False]


def test_point_on_the_threshold_counts_in_discovery():
    hits = discovery_hits(
        torch.tensor([[3.0, 4.0]]),
        torch.tensor([[0.0, 10.0]]),
        torch.zeros(1, 2),
        torch.tensor([[0.0, 0.0]]),
        5.0,
        tgt_threshold=10.0,
    )
    assert hits.correct.tolist() == [True]


def test_mask_iou():
    a = torch.zeros(4, 4, dtype=torch.bool)
    b = torch.zeros(4, 4, dtype=torch.bool)
    a[:2] = True
    b[1:3] = True
    assert mask_iou(a, b) == pytest.approx(4 / 12)
    assert mask_iou(torch.zeros(3, 3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool)) == 1.0
    assert nanmean([1.0, math.nan, 0.0]) == 0.5


# --------------------------------------------------------------------------- properties

coords = st.floats(min_value=0, max_value=60, allow_nan=False, width=32)
point_lists = st.lists(st.tuples(coords, coords), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(min_value=0, max_value=500, allow_nan=False), min_size=1, max_size=50),
    st.floats(0, 500),
    st.floats(0, 500),
)
def test_pck_is_a_share_and_monotone_in_threshold(distances, k1, k2):
    d = torch.tensor(distances)
    low, high = sorted((k1, k2))
    assert 0.0 <= pck_at(d, low) <= pck_at(d, high) <= 1.0
    assert pck_at(d, low, strict=True) <= pck_at(d, low)


@settings(max_examples=40, deadline=None)
@given(point_lists, point_lists, st.floats(0.5, 30), st.integers(1, 7))
def test_discovery_curves_are_bounded_and_blockwise_exact(predictions, gts, threshold, block):
    pred = torch.tensor(predictions)
    gt = torch.tensor(gts)
    shift = torch.tensor([5.0, -2.0])
    hits = discovery_hits(pred, pred + shift, gt, gt + shift, threshold, block_rows=block)
    # Brute force over the full matrix.
    full = (torch.cdist(pred.double(), gt.double()) <= threshold) & (
        torch.cdist((pred + shift).double(), (gt + shift).double()) <= threshold
    )
    assert torch.equal(hits.correct, full.any(1))
    expected_first = torch.where(full.any(0), full.double().argmax(0), torch.tensor(pred.shape[0]))
    assert torch.equal(hits.first_rank, expected_first)
    # Several thresholds in one pass (with per-image units) equal separate single-threshold passes.
    together = discovery_hits_at(
        pred, pred + shift, gt, gt + shift, (threshold, 2 * threshold), 1.0, 1.0, block_rows=block
    )
    assert torch.equal(together[0].correct, hits.correct) and torch.equal(
        together[0].first_rank, hits.first_rank
    )
    alone = discovery_hits(pred, pred + shift, gt, gt + shift, 2 * threshold)
    assert torch.equal(together[1].correct, alone.correct) and torch.equal(
        together[1].first_rank, alone.first_rank
    )
    curve = precision_recall(hits)
    for values in (curve.precision, curve.recall, curve.f1):
        assert values.min() >= 0 and values.max() <= 1
    assert torch.all(curve.recall[1:] >= curve.recall[:-1])  # more predictions never lose recall
    assert 0.0 <= curve.average_precision <= 1.0 + 1e-12
    assert 0.0 <= curve.best_f1 <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=len(CUTOFF_PERCENTS), max_size=len(CUTOFF_PERCENTS)),
    st.lists(st.floats(0, 1), min_size=len(CUTOFF_PERCENTS), max_size=len(CUTOFF_PERCENTS)),
)
def test_f1_and_ap_bounds(precision, recall):
    p = torch.tensor(precision, dtype=torch.float64)
    r = torch.tensor(sorted(recall), dtype=torch.float64)
    f1 = f1_scores(p, r)
    assert torch.all(
        (f1 >= 0) & (f1 <= torch.minimum(torch.maximum(p, r), torch.ones_like(p)) + 1e-12)
    )
    assert 0.0 <= average_precision(p, r) <= 1.0 + 1e-12

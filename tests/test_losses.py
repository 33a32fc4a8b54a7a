"""Losses on hand-built features: exact values, the direction they push, point sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from funcorr.model.losses import (
    LossWeights,
    combined_loss,
    functional_infonce,
    mask_bce,
    sample_mask_points,
    sample_part_points,
    spatial_infonce,
)

E1, E2 = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])


def unit(*rows: torch.Tensor) -> torch.Tensor:
    """Stack 2-D vectors into a (1, N, 2) batch."""
    return torch.stack(rows)[None]


def test_functional_two_point_case_by_hand():
    # image 1: part point e1, rest e2; image 2: part point e1, rest (e1 + e2)/sqrt 2
    diag = (E1 + E2) / math.sqrt(2)
    pos1, neg1, pos2, neg2 = unit(E1), unit(E2), unit(E1), unit(diag)
    s_pp, s_p1n2, s_p2n1, s_n1n2 = 1.0, 1 / math.sqrt(2), 0.0, 1 / math.sqrt(2)
    tau = 0.1
    expected = -s_pp / tau + math.log(
        sum(math.exp(s / tau) for s in (s_pp, s_p1n2, s_p2n1, s_n1n2))
    )
    assert functional_infonce(pos1, neg1, pos2, neg2, tau).item() == pytest.approx(
        expected, rel=1e-5
    )
    expected_no_negneg = -s_pp / tau + math.log(
        sum(math.exp(s / tau) for s in (s_pp, s_p1n2, s_p2n1))
    )
    assert functional_infonce(pos1, neg1, pos2, neg2, tau, negneg=False).item() == pytest.approx(
        expected_no_negneg, rel=1e-5
    )
    # within-image negatives add s(p1+, p1-) = 0 and s(p2+, p2-) = 1/sqrt 2 to the denominator
    expected_within = -s_pp / tau + math.log(
        sum(math.exp(s / tau) for s in (s_pp, s_p1n2, 0.0, s_p2n1, 1 / math.sqrt(2), s_n1n2))
    )
    assert functional_infonce(
        pos1, neg1, pos2, neg2, tau, within_image=True
    ).item() == pytest.approx(expected_within, rel=1e-5)


def test_functional_matches_explicit_cross_entropy():
    """The logsumexp form equals the reference's materialised logits, row by row (NegNeg
    replaced by the mean background row sum, see the docstring)."""
    torch.manual_seed(0)
    pos1, neg1, pos2, neg2 = (F.normalize(torch.randn(2, n, 8), dim=-1) for n in (3, 4, 5, 6))
    tau = 0.2
    rows = []
    for b in range(2):
        bg = (neg1[b] @ neg2[b].T / tau).exp().sum() / neg1.shape[1]
        for i in range(3):
            for j in range(5):
                pos = (pos1[b, i] @ pos2[b, j] / tau).exp()
                den = (
                    pos
                    + (pos1[b, i] @ neg2[b].T / tau).exp().sum()
                    + (pos2[b, j] @ neg1[b].T / tau).exp().sum()
                    + bg
                )
                rows.append(-(pos / den).log())
    assert functional_infonce(pos1, neg1, pos2, neg2, tau).item() == pytest.approx(
        torch.stack(rows).mean().item(), rel=1e-5
    )


def test_functional_loss_falls_when_parts_align():
    torch.manual_seed(0)
    part = F.normalize(torch.randn(1, 1, 16), dim=-1)

    def noise(n: int) -> torch.Tensor:
        return F.normalize(torch.randn(1, n, 16), dim=-1)

    aligned = functional_infonce(
        F.normalize(part + 0.1 * noise(8), dim=-1),
        noise(8),
        F.normalize(part + 0.1 * noise(8), dim=-1),
        noise(8),
    )
    scattered = functional_infonce(noise(8), noise(8), noise(8), noise(8))
    assert aligned < scattered - 1.0

    # and gradient descent on free features drives it down
    feats = [torch.randn(1, 8, 16, requires_grad=True) for _ in range(4)]
    optimiser = torch.optim.SGD(feats, lr=0.5)
    losses = []
    for _ in range(30):
        loss = functional_infonce(*(F.normalize(f, dim=-1) for f in feats))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_spatial_two_point_case_by_hand():
    view1 = unit(E1, E2)
    view2 = unit(E1, (E1 + E2) / math.sqrt(2))
    tau = 0.1
    c = 1 / math.sqrt(2)
    row1 = -1.0 / tau + math.log(math.exp(1.0 / tau) + math.exp(c / tau))  # e1 vs (e1, diag)
    row2 = -c / tau + math.log(math.exp(0.0 / tau) + math.exp(c / tau))  # e2 vs (e1, diag)
    assert spatial_infonce(view1, view2, tau).item() == pytest.approx((row1 + row2) / 2, rel=1e-5)


def test_spatial_prefers_matching_points():
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(2, 32, 16), dim=-1)
    matched = spatial_infonce(feats, feats)
    shuffled = spatial_infonce(feats, feats[:, torch.randperm(32)])
    assert matched < 0.1 < shuffled


def test_mask_bce_balances_classes():
    pos, neg = torch.tensor([[2.0]]), torch.tensor([[-1.0, -1.0, -1.0]])
    expected = (
        -math.log(torch.sigmoid(torch.tensor(2.0)).item())
        - math.log(1 - torch.sigmoid(torch.tensor(-1.0)).item())
    ) / 2
    assert mask_bce(pos, neg).item() == pytest.approx(expected, rel=1e-6)
    assert mask_bce(torch.full((1, 4), 20.0), torch.full((1, 4), -20.0)).item() < 1e-6


def test_combined_loss_weights():
    functional, spatial, mask = torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0)
    assert combined_loss(functional, spatial, mask).item() == pytest.approx((1 + 10 * 2 + 4) / 12)
    assert combined_loss(functional, mask=mask).item() == pytest.approx((1 + 4) / 2)
    assert combined_loss(spatial=spatial, weights=LossWeights(spatial=3.0)).item() == pytest.approx(
        2.0
    )
    with pytest.raises(ValueError):
        combined_loss()


def test_sample_part_points():
    obj = torch.zeros(2, 20, 30, dtype=torch.bool)
    obj[:, 5:15, 5:25] = True
    part = torch.zeros_like(obj)
    part[0, 5:8, 5:10] = True  # 15 pixels: fewer than n, so pixels repeat evenly
    part[1, 5:15, 5:25] = True  # the whole object: negatives come from the background
    pos, neg = sample_part_points(part, obj, torch.Generator().manual_seed(0), n=128)
    assert pos.shape == neg.shape == (2, 128, 2)
    x, y = pos[..., 0].long(), pos[..., 1].long()
    assert part[torch.arange(2)[:, None], y, x].all()
    x, y = neg[..., 0].long(), neg[..., 1].long()
    assert (obj[0, y[0], x[0]] & ~part[0, y[0], x[0]]).all()
    assert (~obj[1, y[1], x[1]]).all()
    counts = torch.unique(pos[0], dim=0, return_counts=True)[1]
    assert counts.numel() == 15 and counts.max() - counts.min() <= 1
    again = sample_part_points(part, obj, torch.Generator().manual_seed(0), n=128)
    assert torch.equal(again[0], pos) and torch.equal(again[1], neg)


def test_sample_from_empty_mask_fails():
    with pytest.raises(ValueError, match="empty"):
        sample_mask_points(torch.zeros(4, 4, dtype=torch.bool), 8, torch.Generator())

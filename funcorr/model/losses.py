"""Training losses (paper Sec. 4, eqs. 1-2) and the point sampling that feeds them.

Notation: s(u, v) = u . v for L2-normalised point features, tau the temperature.
For a pair of images of two objects that share a function f, P1+ / P2+ are points on each
image's functional part and P1- / P2- points on the rest of each object. For the spatial
loss, (u_n, v_n) are features at the two projections of the same surface point in two views.

All contrastive terms are cross-entropies with the positive logit first, written with
logsumexp so that a term like sum_k exp(s(p1+_i, p2-_k) / tau), shared by every row of anchor
i, is computed once instead of being materialised for every (i, j) pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

POINTS_PER_IMAGE = 128


def functional_infonce(
    pos1: torch.Tensor,
    neg1: torch.Tensor,
    pos2: torch.Tensor,
    neg2: torch.Tensor,
    temperature: float = 0.1,
    negneg: bool = True,
    within_image: bool = False,
) -> torch.Tensor:
    """Functional-part InfoNCE (eq. 1) over every positive pair (i, j) in P1+ x P2+.

    pos1: (B, P, D), neg1: (B, M, D) features of image 1; pos2: (B, Q, D), neg2: (B, K, D) of
    image 2 (unit vectors). Returns the mean over B x P x Q rows of::

        -log  exp(s(p1+_i, p2+_j)/tau) / ( exp(s(p1+_i, p2+_j)/tau)
                                           + sum_k exp(s(p1+_i, p2-_k)/tau)     # P1+ away from P2-
                                           + sum_k exp(s(p2+_j, p1-_k)/tau)     # P2+ away from P1-
                                           + NegNeg )

    Every point of one functional part is a positive for every point of the other (functional
    parts correspond as wholes; no dense match is known across categories), and each is
    pushed away from the other object's non-functional points.

    NegNeg (``negneg=True``, the reference's ``negneg_loss``): the reference appends, to the row
    of pair (i, j), one row of the background-background similarity matrix,
    ``sum_l exp(s(p1-_r, p2-_l)/tau)`` with r = j (which requires M = Q). Which row goes with
    which pair is arbitrary, so here every row gets the mean of those row sums,
    ``(1/M) sum_r sum_l exp(s(p1-_r, p2-_l)/tau)`` -- the same term in expectation over r,
    independent of indexing and defined for any M. It keeps the two objects' non-functional
    regions from collapsing onto one shared "background" feature.

    Deviation from the reference: its first negative block for row (i, j) holds
    s(p1+_j, p2-_k) (an indexing slip: the anchor's partner index j is used for image 1); here
    it is the anchor's own s(p1+_i, p2-_k), as the equation states.

    within_image (off by default, not in the reference): also put s(p1+_i, p1-_k) and
    s(p2+_j, p2-_k) in the denominator, pushing each functional part away from the rest of
    its own object.
    """
    inv_t = 1.0 / temperature
    positives = torch.einsum("bpd,bqd->bpq", pos1, pos2) * inv_t  # (B, P, Q)
    negatives1 = [neg2] + ([neg1] if within_image else [])
    negatives2 = [neg1] + ([neg2] if within_image else [])
    anchor1 = torch.logsumexp(
        torch.einsum("bpd,bkd->bpk", pos1, torch.cat(negatives1, dim=1)) * inv_t, dim=-1
    )  # (B, P)
    anchor2 = torch.logsumexp(
        torch.einsum("bqd,bkd->bqk", pos2, torch.cat(negatives2, dim=1)) * inv_t, dim=-1
    )  # (B, Q)
    terms = [
        positives,
        anchor1[:, :, None].expand_as(positives),
        anchor2[:, None, :].expand_as(positives),
    ]
    if negneg:
        background = torch.einsum("bmd,bkd->bmk", neg1, neg2) * inv_t  # (B, M, K)
        mean_row = torch.logsumexp(background.flatten(1), dim=1) - math.log(neg1.shape[1])  # (B,)
        terms.append(mean_row[:, None, None].expand_as(positives))
    denominator = torch.logsumexp(torch.stack(terms), dim=0)
    return (denominator - positives).mean()


def spatial_infonce(
    feats1: torch.Tensor,
    feats2: torch.Tensor,
    temperature: float = 0.1,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-view spatial InfoNCE (eq. 2).

    feats1, feats2: (B, N, D) unit features where row n of both is the same surface point seen
    in view 1 and view 2. Returns the mean over B x N of::

        -log  exp(s(u_n, v_n)/tau) / sum_m exp(s(u_n, v_m)/tau)

    i.e. every other sampled point of view 2 is a negative for u_n (the reference's
    ``spatial_forward``: one direction, view 1 -> view 2). ``valid`` (B, N) bool marks padding
    rows (False) of pairs with fewer points: they are neither anchors nor negatives.
    """
    logits = torch.einsum("bnd,bmd->bnm", feats1, feats2) / temperature
    targets = torch.arange(logits.shape[1], device=logits.device).expand(logits.shape[0], -1)
    if valid is None:
        return F.cross_entropy(logits.flatten(0, 1), targets.flatten())
    valid = valid.to(logits.device)
    logits = logits.masked_fill(~valid[:, None, :], float("-inf"))
    rows = valid.flatten()
    return F.cross_entropy(logits.flatten(0, 1)[rows], targets.flatten()[rows])


def mask_bce(pos_logits: torch.Tensor, neg_logits: torch.Tensor) -> torch.Tensor:
    """Functional-part mask loss: BCE with target 1 on part points, 0 on the rest of the object.

    pos_logits: (..., P), neg_logits: (..., M). The two groups are averaged separately and
    then together, so the part and non-part classes weigh equally whatever P and M are (the
    reference averages four equally sized groups: part / non-part in each image).
    """
    pos = F.binary_cross_entropy_with_logits(pos_logits, torch.ones_like(pos_logits))
    neg = F.binary_cross_entropy_with_logits(neg_logits, torch.zeros_like(neg_logits))
    return (pos + neg) / 2


@dataclass(frozen=True)
class LossWeights:
    """Weights of the combined loss (paper: functional 1, spatial 10, mask 1)."""

    functional: float = 1.0
    spatial: float = 10.0
    mask: float = 1.0


def combined_loss(
    functional: torch.Tensor | None = None,
    spatial: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    weights: LossWeights = LossWeights(),
) -> torch.Tensor:
    """Weighted mean of the terms that are present::

        L = (w_f L_func + w_s L_spatial + w_m L_mask) / (sum of the weights of present terms)

    Dividing by the weight sum (as the reference's training step does) keeps the loss scale,
    and so the learning rate, the same whether a batch carries all terms or only some.
    """
    weighted = ((functional, weights.functional), (spatial, weights.spatial), (mask, weights.mask))
    present = [(term, weight) for term, weight in weighted if term is not None]
    if not present:
        raise ValueError("combined_loss needs at least one loss term.")
    total_weight = sum(weight for _, weight in present)
    return sum(weight * term for term, weight in present) / total_weight


def sample_mask_points(mask: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` pixel xy drawn from the true pixels of ``mask`` (H, W). Returns (n, 2) float.

    Without replacement when the mask has at least ``n`` pixels; otherwise every pixel is
    used equally often (repeated random permutations), so small parts are not dominated by a
    few duplicated pixels.
    """
    ys, xs = torch.nonzero(mask, as_tuple=True)
    count = ys.numel()
    if count == 0:
        raise ValueError("Cannot sample points from an empty mask.")
    repeats = -(-n // count)
    order = torch.cat([torch.randperm(count, generator=generator) for _ in range(repeats)])[:n]
    return torch.stack([xs[order], ys[order]], dim=-1).float()


def sample_part_points(
    part_masks: torch.Tensor,
    object_masks: torch.Tensor,
    generator: torch.Generator,
    n: int = POINTS_PER_IMAGE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positive and negative points for the functional loss.

    part_masks, object_masks: (B, H, W) bool. Positives come from the part (within the
    object), negatives from the rest of the object; an image whose part covers the whole
    object takes negatives from the background instead (as the reference does).
    ``generator`` makes the draw reproducible. Returns pos, neg: (B, n, 2) pixel xy.
    """
    positives, negatives = [], []
    for part, obj in zip(part_masks.bool(), object_masks.bool()):
        rest = obj & ~part
        positives.append(sample_mask_points(part & obj, n, generator))
        negatives.append(sample_mask_points(rest if rest.any() else ~part, n, generator))
    return torch.stack(positives), torch.stack(negatives)

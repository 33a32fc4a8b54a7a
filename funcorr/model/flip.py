"""Flip-aware matching: also match against the horizontally mirrored target, keep the better pose.

ViT features carry pose: a kettle whose spout points left and one whose spout points right
put "spout" features in different contexts, and the nearest neighbour of a symmetric part (a
rim, one of two blades, SPair's left/right parts) often lands on its mirror partner. GeoAware-SC's
"adaptive pose alignment" computes features of the flipped image too and keeps the orientation
whose features agree better. Here the *target* is mirrored:

1. features of the mirrored target are computed by the same backbone (a second image, not
   a re-indexing: a ViT is not equivariant to flips);
2. :func:`unmirror` re-indexes them to the original target's pixels, so every matching
   function (transfer, discovery, soft-argmax) runs unchanged and its answers are already
   mapped back;
3. :func:`orientation_agreement` scores each orientation by the mean cosine similarity of
   the mutual nearest neighbours between lattice points of the two object masks (a
   cycle-consistency score: matches that come back, weighted by how alike they are);
4. :func:`choose_orientation` keeps the mirrored target only when it scores higher.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from funcorr.model.matcher import FeatureFunction, Prepared
from funcorr.model.matching import ImageFeatures, mask_pixels

#: Lattice step (network pixels) of the points scored for agreement: at 224 px that is up to
#: 784 points per image, ~0.6 M similarities, a few milliseconds.
AGREEMENT_STEP = 8


def mirror_xy(xy: torch.Tensor, width: int) -> torch.Tensor:
    """Pixel xy (N, 2) -> the same pixels in the horizontally mirrored image (x -> W - 1 - x)."""
    out = xy.clone()
    out[:, 0] = (width - 1) - xy[:, 0]
    return out


def mirror_image(image: torch.Tensor) -> torch.Tensor:
    """(..., H, W) -> horizontally mirrored copy."""
    return image.flip(-1)


def unmirror(mirrored: ImageFeatures, mask: torch.Tensor) -> ImageFeatures:
    """Features computed on the mirrored image, queried at the *original* image's pixels.

    mirrored: features of the mirrored image; mask: (H, W) bool object mask of the original
    image (the mirrored image's own mask is not used, so both orientations search the same
    pixels).
    """
    width = mirrored.size[1]

    def sample(points: torch.Tensor) -> torch.Tensor:
        return mirrored.sample(mirror_xy(points, width))

    return replace(mirrored, sample=sample, mask=mask)


def _lattice(mask: torch.Tensor, step: int) -> torch.Tensor:
    grid = torch.zeros_like(mask)
    grid[step // 2 :: step, step // 2 :: step] = True
    points = mask_pixels(mask & grid)
    return points if len(points) else mask_pixels(mask)


def orientation_agreement(
    src: ImageFeatures, tgt: ImageFeatures, step: int = AGREEMENT_STEP
) -> float:
    """Mean cosine of the mutual nearest neighbours between lattice points (every ``step``
    px) of the two object masks; 0 when none is mutual."""
    query = src.sample(_lattice(src.mask, step))
    keys = tgt.sample(_lattice(tgt.mask, step).to(query.device))
    sim = query @ keys.T  # (N, M): a few hundred points each, so held whole.
    best, forward = sim.max(dim=1)
    backward = sim.argmax(dim=0)
    mutual = backward[forward] == torch.arange(len(forward), device=sim.device)
    return float(best[mutual].mean()) if mutual.any() else 0.0


@dataclass(frozen=True)
class Orientation:
    """Which target orientation was kept, and both agreement scores."""

    flipped: bool
    agreement: float
    flipped_agreement: float

    def to_record(self) -> dict:
        return {
            "flipped": self.flipped,
            "agreement": self.agreement,
            "flipped_agreement": self.flipped_agreement,
        }


def choose_orientation(
    src: ImageFeatures,
    tgt: ImageFeatures,
    tgt_unmirrored: ImageFeatures,
    step: int = AGREEMENT_STEP,
) -> tuple[ImageFeatures, Orientation]:
    """The target features to match against (``tgt`` or the mirrored target's features from
    :func:`unmirror`) and the :class:`Orientation` record. Ties keep the original."""
    plain = orientation_agreement(src, tgt, step)
    flipped = orientation_agreement(src, tgt_unmirrored, step)
    choice = Orientation(flipped > plain, plain, flipped)
    return (tgt_unmirrored if choice.flipped else tgt), choice


def mirrored_prepared(prepared: Prepared) -> Prepared:
    """A :class:`~funcorr.model.matcher.Prepared` image mirrored left-right (same resize plan:
    positions are mirrored back in network pixels before the plan maps them to the original)."""
    content = None if prepared.content is None else mirror_image(prepared.content)
    return replace(
        prepared, rgb=mirror_image(prepared.rgb), mask=mirror_image(prepared.mask), content=content
    )


def flip_aware_target(
    features: FeatureFunction, src: ImageFeatures, tgt: ImageFeatures, tgt_prepared: Prepared
) -> tuple[ImageFeatures, Orientation]:
    """Compute the mirrored target's features with ``features`` (list of Prepared -> list of
    ImageFeatures, e.g. ``Matcher.features``) and keep the better-agreeing orientation."""
    mirrored = features([mirrored_prepared(tgt_prepared)])[0]
    return choose_orientation(src, tgt, unmirror(mirrored, tgt.mask))

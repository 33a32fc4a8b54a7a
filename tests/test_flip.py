"""Flip-aware matching: mirrored features re-indexed to the original pixels, orientation choice."""

from __future__ import annotations

from unittest import mock

import numpy as np
import torch
from PIL import Image
from synthetic import colour_features

from funcorr.images import from_pil
from funcorr.model.flip import (
    choose_orientation,
    mirror_xy,
    mirrored_prepared,
    orientation_agreement,
    unmirror,
)
from funcorr.model.matcher import Matcher, MatcherConfig, prepare_image
from funcorr.model.matching import transfer_points


def scene(width: int = 150, height: int = 110) -> np.ndarray:
    """An asymmetric real photo (the astronaut, her flag on the left)."""
    from skimage.data import astronaut

    return np.asarray(Image.fromarray(astronaut()).resize((width, height)))


def test_mirror_round_trip_and_unmirror_reindexes_pixels():
    xy = torch.tensor([[0.0, 3.0], [10.5, 7.0], [111.0, 0.0]])
    assert torch.equal(mirror_xy(mirror_xy(xy, 112), 112), xy)
    assert mirror_xy(xy, 112)[:, 0].tolist() == [111.0, 100.5, 0.0]
    prepared = prepare_image(from_pil(Image.fromarray(scene())), 112, "pad")
    plain, mirrored = colour_features([prepared, mirrored_prepared(prepared)])
    back = unmirror(mirrored, plain.mask)
    # Colour features are flip-equivariant: the mirrored image read at mirrored pixels is the original.
    points = plain.pixels()[::97]
    assert torch.allclose(back.sample(points), plain.sample(points), atol=1e-5)
    assert torch.equal(back.mask, plain.mask)


def test_a_mirrored_target_is_matched_in_the_mirrored_orientation(dinov2_s14):
    with mock.patch("funcorr.model.matcher.load_backbone", return_value=dinov2_s14):
        matcher = Matcher(MatcherConfig(image_size=112))
    photo = scene()
    src = matcher.prepare(from_pil(Image.fromarray(photo)))
    tgt = matcher.prepare(from_pil(Image.fromarray(photo[:, ::-1].copy())))
    fs, ft, fm = matcher.features([src, tgt, mirrored_prepared(tgt)])
    chosen, orientation = choose_orientation(fs, ft, unmirror(fm, ft.mask))
    # The mirrored target is the source again: its features agree almost perfectly.
    assert orientation.flipped and orientation.flipped_agreement > 0.99 > orientation.agreement
    points = torch.tensor([[20.0, 30.0], [75.0, 20.0], [110.0, 60.0], [40.0, 65.0]])
    moved = transfer_points(fs, chosen, points).points.cpu()
    # ... and each point lands on its mirror image in the target (150 px wide -> all 112 network px).
    assert torch.allclose(moved, mirror_xy(points, 112), atol=1.0)
    # The unmirrored pair keeps its orientation.
    _, same = choose_orientation(
        fs, fs, unmirror(matcher.features([mirrored_prepared(src)])[0], fs.mask)
    )
    assert not same.flipped and same.agreement > 0.99
    assert orientation_agreement(fs, fs) > orientation_agreement(fs, ft)

"""`funcorr match` end to end: outputs, coordinates in original pixels, and clean failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from funcorr.cli import main


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An RGBA object image and a larger, shifted RGB copy of the same scene."""
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("pair")
    scene = np.asarray(Image.fromarray(astronaut()).resize((300, 300)))
    source = scene[20:244, 20:244]
    alpha = np.zeros(source.shape[:2], np.uint8)
    alpha[20:200, 30:210] = 255
    Image.fromarray(np.dstack([source, alpha])).save(root / "src.png")
    Image.fromarray(scene[48:272, 48:272]).convert("L").save(root / "tgt_grey.png")
    Image.fromarray(scene[48:272, 48:272]).save(root / "tgt.png")
    mask = np.zeros(source.shape[:2], np.uint8)
    mask[60:120, 60:120] = 255
    Image.fromarray(mask).save(root / "part.png")
    return root


def test_points_transfer_into_original_coordinates(pair, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "match",
            str(pair / "src.png"),
            str(pair / "tgt.png"),
            "--points",
            "120,110",
            "90,150",
            "--function",
            "pour-with",
            "--model",
            "none",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    record = json.loads((out / "matches.json").read_text())
    assert (out / "matches.png").is_file()
    # The target is the scene shifted by 28 px in x and y.
    for match in record["points"]:
        sx, sy = match["source"]
        tx, ty = match["target"]
        assert abs(tx - (sx - 28)) <= 10 and abs(ty - (sy - 28)) <= 10
        assert -1 <= match["similarity"] <= 1
    assert "note" in record  # raw features ignore the function, and say so


def test_dense_discovery_and_picture(pair, tmp_path):
    out = tmp_path / "dense"
    # 112 px keeps dense discovery (every object pixel, both directions) quick on 2 cores.
    assert (
        main(
            [
                "match",
                str(pair / "src.png"),
                str(pair / "tgt_grey.png"),
                "--top",
                "5",
                "--size",
                "112",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    record = json.loads((out / "matches.json").read_text())
    assert len(record["top_matches"]) == 5
    scores = [m["score"] for m in record["top_matches"]]
    assert scores == sorted(scores, reverse=True)
    # Discovered matches start on the source object (its alpha mask).
    for m in record["top_matches"]:
        x, y = m["source"]
        assert 30 - 1 <= x <= 210 and 20 - 1 <= y <= 200
    picture = Image.open(out / "matches.png")
    assert picture.width > 224 and picture.height > 112


def test_mask_transfer_writes_mask(pair, tmp_path):
    out = tmp_path / "mask"
    assert (
        main(
            [
                "match",
                str(pair / "src.png"),
                str(pair / "tgt.png"),
                "--mask",
                str(pair / "part.png"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    mask = np.asarray(Image.open(out / "transferred_mask.png")) > 0
    assert mask.shape == (224, 224)
    ys, xs = np.nonzero(mask)
    # The 60..120 square of the source sits at 32..92 in the target.
    assert abs(xs.mean() - 62) < 12 and abs(ys.mean() - 62) < 12


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.png", "tgt.png"], "No image at path"),
        (["src.png", "tgt.png", "--function", "fly-with"], "Unknown function"),
        (["src.png", "tgt.png", "--points", "1000,5"], "outside"),
        (["src.png", "tgt.png", "--points", "5;5"], "x,y"),
        (["src.png", "tgt.png", "--mask", "empty.png"], "empty"),
        (["src.png", "not_an_image.png"], "Could not decode"),
        (["src.png", "tgt.png", "--checkpoint", "none.pt", "--function", "pour-with"], "none.pt"),
    ],
)
def test_bad_input_fails_cleanly(pair, tmp_path, capsys, args, message):
    Image.fromarray(np.zeros((224, 224), np.uint8)).save(pair / "empty.png")
    (pair / "not_an_image.png").write_bytes(b"definitely not a png")
    out = tmp_path / "bad"
    resolved = [str(pair / a) if a.endswith(".png") or a.endswith(".pt") else a for a in args]
    code = main(["match", *resolved, "--out", str(out)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_unsegmented_photos_are_matched_within_drawn_saliency_masks(tmp_path):
    from skimage.data import coffee

    photo = coffee()
    Image.fromarray(photo[:, :520]).save(tmp_path / "a.jpg")
    Image.fromarray(photo[40:, 60:]).save(tmp_path / "b.jpg")
    out = tmp_path / "out"
    args = [
        "match",
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b.jpg"),
        "--points",
        "280,200",
        "--size",
        "112",
        "--out",
        str(out),
    ]
    assert main([*args, "--object-mask", "saliency"]) == 0
    record = json.loads((out / "matches.json").read_text())
    assert record["object_mask"] == "saliency"
    assert [m["source"] for m in record["object_masks"]] == ["saliency", "saliency"]
    picture = np.asarray(Image.open(out / "matches.png").convert("RGB"))
    outline = (picture == (0, 200, 255)).all(-1)
    half = picture.shape[1] // 2
    # Each image carries its mask's outline; outside it the photo is faded towards white.
    assert outline[:, :half].sum() > 100 and outline[:, half:].sum() > 100
    assert (
        picture[2, 2].min() >= 140
    )  # the dark table at the corner is veiled (55% white): not the cup
    tx, ty = record["points"][0]["target"]
    # The cup's centre in the crop, to well within a patch (14 px at 112 px spans 65 photo px).
    assert abs(tx - (280 - 60)) <= 40 and abs(ty - (200 - 40)) <= 40

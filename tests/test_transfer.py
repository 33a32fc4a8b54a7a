"""Demonstration transfer: mode finding, shifted trajectories, symmetric ambiguity, 3D, CLI."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from browser.engine import matcher_factory
from PIL import Image, ImageDraw

from funcorr.cli import main
from funcorr.demonstration import Camera, backproject_points, load_intrinsics, parse_demonstration
from funcorr.images import InputError, load_image
from funcorr.model.matcher import MatcherConfig
from funcorr.model.matching import mask_pixels
from funcorr.model.modes import ModeRule, densify, find_modes
from funcorr.transfer import TransferRequest, run_transfer, write_transfer_outputs

ROOT = Path(__file__).resolve().parents[1]


def bumps(
    centres: list[tuple[float, float]],
    heights: list[float],
    size: int = 64,
    base: float = 0.5,
    sigma: float = 3.0,
) -> torch.Tensor:
    """A (size, size) map: ``base`` plus Gaussian bumps of the given heights above it."""
    ys, xs = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    out = torch.full((size, size), base)
    for (cx, cy), height in zip(centres, heights):
        out += (height - base) * torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sigma**2))
    return out


def test_mode_rule_strength_distance_mask_and_cap():
    heat = bumps([(10, 10), (50, 12), (30, 50)], [1.0, 0.95, 0.6])
    everywhere = torch.ones(64, 64, dtype=torch.bool)
    modes = find_modes(heat, everywhere, ModeRule(ratio=0.8, min_distance=8))
    # (0.95 - base) / (1 - base) = 0.9 >= 0.8 is a mode; the 0.6 bump (strength 0.2) is not.
    assert modes.xy.tolist() == [[10.0, 10.0], [50.0, 12.0]] and modes.ambiguous
    assert modes.strength[0] == pytest.approx(1.0) and 0.8 < float(modes.strength[1]) < 1.0
    assert find_modes(heat, everywhere, ModeRule(ratio=0.95, min_distance=8)).xy.shape[0] == 1
    assert (
        find_modes(heat, everywhere, ModeRule(ratio=0.1, min_distance=8, max_modes=2)).xy.shape[0]
        == 2
    )
    # Two peaks closer than min_distance are one mode, and a peak outside the mask is never one.
    close = bumps([(20, 20), (26, 20)], [1.0, 0.99], sigma=1.5)
    assert find_modes(close, everywhere, ModeRule(min_distance=10)).xy.shape[0] == 1
    left_only = everywhere.clone()
    left_only[:, 32:] = False
    assert find_modes(heat, left_only, ModeRule(ratio=0.8, min_distance=8)).xy.tolist() == [
        [10.0, 10.0]
    ]
    with pytest.raises(ValueError):
        find_modes(heat, torch.zeros(64, 64, dtype=torch.bool))


def test_demonstration_formats_and_errors():
    plain = parse_demonstration([[1, 2], [3, 4]])
    assert (
        plain.kind == "trajectory"
        and plain.times == (0.0, 1.0)
        and plain.points.tolist() == [[1, 2], [3, 4]]
    )
    named = parse_demonstration({"keypoints": [{"xy": [5, 6], "name": "spout"}, [7, 8]]})
    assert named.kind == "keypoints" and named.names == ("spout", None) and named.times is None
    timed = parse_demonstration(
        {"trajectory": [{"xy": [0, 0], "t": 0.5}, {"xy": [1, 1], "t": 0.75}]}
    )
    assert timed.times == (0.5, 0.75)
    for bad in (
        [],
        [[1]],
        {"trajectory": [[1, 2]], "keypoints": [[1, 2]]},
        [[1, float("nan")]],
        {"trajectory": [{"xy": [0, 0], "t": 2}, {"xy": [1, 1], "t": 1}]},
    ):
        with pytest.raises(InputError):
            parse_demonstration(bad)


def test_intrinsics_and_backprojection(tmp_path):
    K = load_intrinsics("100,200,10,20")
    (tmp_path / "k.json").write_text(json.dumps({"K": K.tolist()}))
    assert np.allclose(load_intrinsics(str(tmp_path / "k.json")), K)
    with pytest.raises(InputError):
        load_intrinsics("1,2,3")
    depth = np.full((40, 30), 2.0)
    depth[5, 7] = 0.0
    xyz = backproject_points(np.array([[10.0, 20.0], [20.0, 30.0], [7.2, 4.9]]), Camera(depth, K))
    assert np.allclose(xyz[0], [0, 0, 2]) and np.allclose(
        xyz[1], [(20 - 10) * 2 / 100, (30 - 20) * 2 / 200, 2]
    )
    assert np.isnan(xyz[2]).all()  # nearest pixel (7, 5) has no depth


@pytest.fixture(scope="module")
def matcher(dinov2_s14):
    return matcher_factory(dinov2_s14)(MatcherConfig())


@pytest.fixture(scope="module")
def shifted_pair(tmp_path_factory) -> Path:
    """A scene crop and the same scene shifted by (-28, -20) px."""
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("shifted")
    scene = np.asarray(Image.fromarray(astronaut()).resize((300, 300)))
    Image.fromarray(scene[20:244, 20:244]).save(root / "source.png")
    Image.fromarray(scene[40:264, 48:272]).save(root / "target.png")
    return root


def test_dense_features_equal_the_sampled_ones(matcher, shifted_pair):
    prepared = matcher.prepare(load_image(shifted_pair / "target.png"))
    features = matcher.features([prepared])[0]
    dense = densify(features)
    everywhere = mask_pixels(torch.ones(224, 224, dtype=torch.bool))
    assert torch.allclose(dense.sample(everywhere), features.sample(everywhere), atol=1e-6)
    some = torch.tensor([[3.0, 200.0], [17.5, 40.25], [223.0, 0.0]])  # whole and sub-pixel points
    assert torch.allclose(dense.sample(some), features.sample(some), atol=1e-6)


def test_trajectory_on_shifted_copy_comes_back_shifted(matcher, shifted_pair, tmp_path):
    # A path over the face and down the suit (original source pixels).
    path = [[95 + 6 * i, 60 + 11 * i] for i in range(10)]
    demo = parse_demonstration(
        {"trajectory": [{"xy": p, "t": 0.1 * i} for i, p in enumerate(path)]}
    )
    record, picture = run_transfer(
        TransferRequest(shifted_pair / "source.png", shifted_pair / "target.png", demo), matcher
    )
    points = record["points"]
    assert [p["t"] for p in points] == pytest.approx([0.1 * i for i in range(10)])
    moved = np.array([p["target"] for p in points]) - np.array(path)
    assert np.abs(moved - [-28, -20]).max() <= 10, moved
    assert sum(p["cycle_consistent"] for p in points) >= 8
    assert all(
        0 < p["similarity"] <= 1.0001 and p["modes"][0]["strength"] == pytest.approx(1.0)
        for p in points
    )
    assert record["summary"]["points"] == 10 and "xyz_frame" not in record
    assert picture.shape[1:] == (2 * 224 + 8, 3) and picture.shape[0] > 224  # images + caption
    written = write_transfer_outputs(record, picture, tmp_path / "out")
    assert (
        json.loads((tmp_path / "out" / "transfer.json").read_text())["kind"] == "trajectory"
        and len(written) == 2
    )


def dumbbell(shift: tuple[int, int] = (0, 0), size: int = 224) -> Image.Image:
    """A mirror-symmetric object (two identical heads on a bar) on a transparent background."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    centre = size / 2
    for x in (45, size - 45):
        for radius, colour in ((32, (40, 70, 200)), (20, (240, 210, 40)), (8, (30, 30, 30))):
            draw.ellipse(
                [x - radius, centre - radius, x + radius, centre + radius], fill=(*colour, 255)
            )
    draw.rectangle([75, centre - 9, size - 75, centre + 9], fill=(150, 150, 150, 255))
    draw.ellipse([centre - 16, centre - 16, centre + 16, centre + 16], fill=(200, 40, 40, 255))
    shifted = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    shifted.paste(image, shift)
    return shifted


def test_symmetric_object_returns_both_modes(matcher, tmp_path):
    dumbbell().save(tmp_path / "source.png")
    dumbbell(shift=(6, 10)).save(tmp_path / "target.png")
    # From the left head along the bar to the hub.
    path = [[45, 112], [45, 100], [70, 112], [90, 112], [112, 112]]
    demo = parse_demonstration({"trajectory": path})
    record, picture = run_transfer(
        TransferRequest(tmp_path / "source.png", tmp_path / "target.png", demo), matcher
    )
    head = record["points"][0]
    assert head["ambiguous"] and len(head["modes"]) >= 2
    found = np.array([m["target"] for m in head["modes"][:2]])
    # One mode on the matching head, one on its mirror image (the other head), either order.
    expected = np.array([[45 + 6, 112 + 10], [224 - 1 - 45 + 6, 112 + 10]])
    assert min(np.abs(found - expected).max(), np.abs(found[::-1] - expected).max()) <= 8, found
    assert all(m["strength"] >= 0.8 for m in head["modes"])

    artifacts = ROOT / "artifacts"
    artifacts.mkdir(exist_ok=True)
    Image.fromarray(picture).save(artifacts / "transfer_example.png")
    docs = ROOT / "docs" / "transfer_example.png"
    if os.environ.get("FUNCORR_UPDATE_DOCS") or not docs.exists():
        docs.parent.mkdir(exist_ok=True)
        shutil.copyfile(artifacts / "transfer_example.png", docs)


def test_cli_with_depth_writes_3d_points(dinov2_s14, shifted_pair, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("funcorr.model.matcher.load_backbone", lambda *args, **kwargs: dinov2_s14)
    depth_mm = np.full((224, 224), 1500, np.uint16)
    depth_mm[:, :20] = 0  # no depth on the left border
    Image.fromarray(depth_mm).save(tmp_path / "source_depth.png")
    np.save(tmp_path / "target_depth.npy", np.full((224, 224), 2.0, np.float32))
    (tmp_path / "K.json").write_text(json.dumps({"fx": 200, "fy": 200, "cx": 111.5, "cy": 111.5}))
    out = tmp_path / "out"
    code = main(
        [
            "transfer",
            str(shifted_pair / "source.png"),
            str(shifted_pair / "target.png"),
            "--points",
            "120,90",
            "10,100",
            "--kind",
            "keypoints",
            "--function",
            "pour-with",
            "--model",
            "none",
            "--out",
            str(out),
            "--source-depth",
            str(tmp_path / "source_depth.png"),
            "--source-intrinsics",
            str(tmp_path / "K.json"),
            "--target-depth",
            str(tmp_path / "target_depth.npy"),
            "--target-intrinsics",
            "200,200,111.5,111.5",
        ]
    )
    assert code == 0 and str(out / "transfer.json") in capsys.readouterr().out
    record = json.loads((out / "transfer.json").read_text())
    first, second = record["points"]
    assert record["kind"] == "keypoints" and "note" in record
    assert first["source_xyz"] == pytest.approx(
        [(120 - 111.5) * 1.5 / 200, (90 - 111.5) * 1.5 / 200, 1.5]
    )
    tx, ty = first["target"]
    assert first["target_xyz"] == pytest.approx(
        [(tx - 111.5) * 2 / 200, (ty - 111.5) * 2 / 200, 2.0], rel=1e-5
    )
    assert second["source_xyz"] is None  # x = 10 lies in the depth hole
    assert (out / "transfer.png").is_file()

    # User errors are one line on stderr and exit code 2, and nothing is written.
    bad = tmp_path / "bad"
    assert (
        main(
            [
                "transfer",
                str(shifted_pair / "source.png"),
                str(shifted_pair / "target.png"),
                "--points",
                "999,1",
                "--out",
                str(bad),
            ]
        )
        == 2
    )
    assert (
        main(
            [
                "transfer",
                str(shifted_pair / "source.png"),
                str(shifted_pair / "target.png"),
                "--points",
                "1,1",
                "--out",
                str(bad),
                "--source-depth",
                str(tmp_path / "source_depth.png"),
            ]
        )
        == 2
    )
    assert "outside" in capsys.readouterr().err and not bad.exists()


def test_option_defaults_quoted_in_the_help_are_the_ones_used():
    """``funcorr transfer`` builds its options without torch, so it quotes the defaults of
    ModeRule and TransferConfig instead of reading them: the quotes must stay true."""
    from funcorr.cli import build_parser
    from funcorr.transfer import TransferConfig

    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    helps = {a.dest: a.help for a in commands.choices["transfer"]._actions}
    rule = ModeRule()
    assert f"(default {rule.ratio:g})" in helps["mode_ratio"]
    assert f"(default {rule.min_distance:g})" in helps["mode_distance"]
    assert f"(default {rule.max_modes})" in helps["max_modes"]
    assert f"(default {TransferConfig.cycle_tolerance:g})" in helps["cycle_tolerance"]


def test_the_command_line_parser_loads_without_torch():
    """``funcorr --help`` and option errors answer at once: building the parser imports no
    torch, transformers or numpy (each command loads them when it runs)."""
    import subprocess
    import sys

    code = (
        "import sys, funcorr.cli as c; c.build_parser(); "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    # The lazily exported names are the modules' own, and a wrong name still fails plainly.
    import funcorr.backbones
    from funcorr.backbones.registry import load_backbone

    assert funcorr.backbones.load_backbone is load_backbone
    with pytest.raises(AttributeError, match="'funcorr.backbones' has no attribute 'nope'"):
        funcorr.backbones.nope  # noqa: B018

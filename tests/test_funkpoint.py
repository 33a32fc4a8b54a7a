"""FunKPoint reader and scoring on a small fixture with hand-computed PCK."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from funcorr.eval.funkpoint import (
    FunKPointConfig,
    PointScore,
    evaluate_funkpoint,
    function_for_action,
    normalised_error,
    read_funkpoint,
    summarise,
)
from funcorr.images import InputError

HEADER = ["action", "object_category", "dataset_image_path", "p1_x", "p1_y", "p2_x", "p2_y"]


def _photo(path: Path, size: tuple[int, int], seed: int) -> None:
    """A textured RGB photo (no alpha), so every pixel has a distinct feature."""
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (w + h)], axis=-1)
    noise = rng.integers(0, 60, size=(h // 8 + 1, w // 8 + 1, 3)).repeat(8, 0).repeat(8, 1)[:h, :w]
    Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8)).save(path)


def _write(
    root: Path, action: str, rows: dict[str, list[tuple[str, list[float]]]], size=(160, 120)
) -> None:
    folder = root / action
    for role, entries in rows.items():
        (folder / role).mkdir(parents=True, exist_ok=True)
        with (folder / f"{role}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            for name, points in entries:
                _photo(folder / role / name, size, seed=len(name))
                writer.writerow([action, "mug", f"{action}/{role}/{name}", *points])


@pytest.fixture()
def fixture_root(tmp_path: Path) -> Path:
    # The test image is a byte-identical copy of the reference: every point must come back
    # to itself. Points are normalised (x = column / W, y = row / H).
    points = [0.25, 0.5, 0.75, 0.25]
    _write(tmp_path, "Pour", {"references": [("a.png", points)], "tests": [("a.png", points)]})
    return tmp_path


def test_reader_points_in_pixels(fixture_root: Path) -> None:
    (action,) = read_funkpoint(fixture_root)
    assert action.name == "Pour" and len(action.references) == len(action.tests) == 1
    # (0.25, 0.5) of a 160 x 120 image is pixel index (0.25 * 160 - 0.5, 0.5 * 120 - 0.5).
    assert torch.allclose(
        action.references[0].pixel_points((160, 120)), torch.tensor([[39.5, 59.5], [119.5, 29.5]])
    )
    assert function_for_action("Pour") == "pour-with"
    assert function_for_action("Brush_Dust") == "brush-with"


def test_reader_refuses_paths_outside_and_bad_points(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "Pour",
        {
            "references": [("a.png", [0.2, 0.2, 0.4, 0.4])],
            "tests": [("b.png", [0.2, 0.2, 0.4, 0.4])],
        },
    )
    csv_path = tmp_path / "Pour" / "tests.csv"
    text = csv_path.read_text()
    csv_path.write_text(text.replace("Pour/tests/b.png", "../../etc/passwd"))
    with pytest.raises(InputError, match="outside"):
        read_funkpoint(tmp_path)
    csv_path.write_text(text.replace("0.4,0.4", "7,0.4"))
    with pytest.raises(InputError, match="not normalised"):
        read_funkpoint(tmp_path)
    with pytest.raises(InputError, match="No action"):
        read_funkpoint(tmp_path, ["Scrape"])


def test_normalised_error_divides_each_axis_by_its_side() -> None:
    # 16 px off in x on a 160-wide image and 9 px off in y on a 120-high one: (0.1, 0.075).
    error = normalised_error(torch.tensor([[16.0, 9.0]]), torch.zeros(1, 2), (160, 120))
    assert error.item() == pytest.approx(0.125)


def test_summarise_hand_computed() -> None:
    def score(action: str, error: float, test: str = "t") -> PointScore:
        return PointScore(action, "r", test, "mug", 0, error)

    # Pour: 0.1 exactly at alpha counts (<=), 0.1001 does not: 2 of 3. Mix: 1 of 1.
    scores = [
        score("Pour", 0.0),
        score("Pour", 0.1),
        score("Pour", 0.1001, "u"),
        score("Mix", 0.05),
    ]
    summary = summarise(scores, alpha=0.1)
    assert summary["overall"] == pytest.approx(3 / 4)
    assert summary["per_action"]["Pour"] == {"pck": pytest.approx(2 / 3), "points": 3, "pairs": 2}
    assert summary["action_mean"] == pytest.approx((2 / 3 + 1) / 2)


def test_identical_photo_transfers_every_point_to_itself(fixture_root: Path) -> None:
    from funcorr.model.matcher import Matcher, MatcherConfig

    actions = read_funkpoint(fixture_root)
    matcher = Matcher(MatcherConfig(backbone="dinov2-s14", device="cpu"))
    scores = evaluate_funkpoint(actions, matcher, FunKPointConfig(alpha=0.1))
    assert len(scores) == 2
    # Within one network pixel (224 px for 160 px, so < 1/160 of the side) of the truth.
    assert max(s.error for s in scores) < 1.5 / 160
    assert summarise(scores)["overall"] == 1.0


def test_cli_writes_overall_and_per_action(fixture_root: Path, tmp_path: Path) -> None:
    from funcorr.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "keypoints",
                "--data",
                str(fixture_root),
                "--method",
                "chance",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    (path,) = out.glob("funkpoint_*.json")
    results = json.loads(path.read_text())["results"]
    assert results["points"] == 2 and set(results["per_action"]) == {"Pour"}
    assert 0.0 <= results["overall"] <= 1.0

"""`funcorr report`: one Markdown page from result JSONs of every benchmark."""

from __future__ import annotations

import json

import pytest
import torch

from funcorr.eval.functional import FunctionalConfig, evaluate_functional
from funcorr.eval.functional_methods import ChanceMatcher, FunctionalMethod
from funcorr.eval.keypoints import ChanceKeypointMethod, KeypointConfig, evaluate_keypoints
from funcorr.eval.lvlm import MCQuestion, RandomAnswerer, evaluate_lvlm
from funcorr.eval.report import (
    load_documents,
    markdown_table,
    result_document,
    write_outputs,
)
from funcorr.eval.spair import SPairPairs


def small_pair(pair_id: str) -> dict:
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[4:28, 4:28] = True
    points = torch.tensor([[8.0, 8.0], [20.0, 12.0], [15.0, 25.0]])
    return {
        "image1": torch.rand(3, 32, 32),
        "image2": torch.rand(3, 32, 32),
        "mask1": mask,
        "mask2": mask,
        "function": "scoop",
        "correspondences": torch.stack([points, points], 1),
        "across_category": False,
        "pair_id": pair_id,
    }


def test_report_renders_every_kind(tmp_path, spair_mini):
    out = tmp_path / "results"
    functional = evaluate_functional(
        [small_pair("a"), small_pair("b")],
        FunctionalMethod("chance", ChanceMatcher(0)),
        FunctionalConfig(image_size=32),
    )
    write_outputs(
        result_document("functional", {"data": "synthetic"}, functional.to_record()),
        out,
        "functional_chance",
    )
    keypoints = evaluate_keypoints(
        SPairPairs(spair_mini),
        ChanceKeypointMethod(0),
        KeypointConfig(alphas=(0.1,), tasks=("soc",)),
        "spair",
        {"dog": "animal"},
    )
    write_outputs(result_document("keypoints", {}, keypoints.to_record()), out, "keypoints_chance")
    image = SPairPairs(spair_mini)[0].target.image_path
    questions = [
        MCQuestion(
            f"q{i}",
            f"q{i}",
            "description",
            image,
            ((1, 1), (2, 2), (3, 3), (4, 4)),
            "A",
            description="the pot",
        )
        for i in range(4)
    ]
    write_outputs(
        result_document("lvlm", {}, evaluate_lvlm(questions, RandomAnswerer(0)).to_record()),
        out,
        "lvlm_random",
    )
    (out / "unrelated.json").write_text("[1, 2]")  # ignored: not a funcorr result

    from funcorr.cli import main

    assert main(["report", str(out), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "report.md").read_text()
    for heading in (
        "## Dense functional correspondence",
        "## Keypoint correspondence",
        "## LVLM multiple choice",
        "Per super-category",
    ):
        assert heading in page
    assert "| chance | within | 2 |" in page and "report_pr_curves.png" in page
    assert (tmp_path / "report" / "report_pr_curves.png").stat().st_size > 1000
    # Result files are strict JSON: the empty 'across' split is null, never NaN.
    raw = (out / "functional_chance.json").read_text()
    assert (
        "NaN" not in raw and json.loads(raw)["results"]["summary"]["across"]["pair_directions"] == 0
    )
    assert len(load_documents([out])) == 3
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r2")]) == 2


def test_markdown_table_shape():
    table = markdown_table(["Method", "PCK"], [["a", "1.0"], ["b", "2.0"]])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[0].count("|") == lines[2].count("|") == 3


@pytest.mark.parametrize("kind", ["functional", "keypoints", "lvlm"])
def test_conventions_are_stated(kind):
    from funcorr.eval.report import conventions

    assert len(conventions(kind)) > 50

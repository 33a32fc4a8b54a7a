"""End to end: make-data --preset tiny -> train on CPU -> the head beats raw features."""

from __future__ import annotations

import json

import pytest
import torch

from funcorr.cli import main
from funcorr.model.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data") / "tiny"
    assert main(["make-data", "--preset", "tiny", "--out", str(root), "--no-progress"]) == 0
    return root


def test_training_beats_raw_features_on_held_out_pairs(tiny_data, tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"data: {tiny_data}\nout: {tmp_path / 'run'}\nsteps: 200\nlr: 0.0003\nval_every: 200\nval_pairs: 10\ncheckpoint_every: 100\n"
    )
    assert main(["train", "--config", str(config)]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    final = history[-1]
    print(f"held-out PCK@23: head {final['pck23_head']:.3f} vs raw {final['pck23_raw']:.3f}")
    assert final["pck23_head"] > final["pck23_raw"] + 0.03
    assert history[-1]["loss"] < 10
    checkpoint = read_checkpoint(tmp_path / "run" / "last.safetensors").record
    assert checkpoint["step"] == 200 and checkpoint["backbone"]["name"] == "dinov2-s14"
    assert checkpoint["label_source"] == "pseudo"
    ious = [iou for per_fn in checkpoint["pseudo_label_iou"].values() for iou in per_fn.values()]
    assert 0.5 < sum(ious) / len(ious) <= 1.0

    # The trained head drives `funcorr match`, with its mask head restricting nothing it can't see.
    from funcorr.data.readers import EvalPairs
    from funcorr.images import save_png_atomic

    pair = EvalPairs(tiny_data, split="test")[0]
    for name, image, mask in (
        ("a.png", pair["image1"], pair["mask1"]),
        ("b.png", pair["image2"], pair["mask2"]),
    ):
        rgba = torch.cat([image, mask[None].float()]).permute(1, 2, 0).numpy()
        save_png_atomic((rgba * 255).round().astype("uint8"), tmp_path / name)
    out = tmp_path / "match"
    code = main(
        [
            "match",
            str(tmp_path / "a.png"),
            str(tmp_path / "b.png"),
            "--checkpoint",
            str(tmp_path / "run" / "last.safetensors"),
            "--function",
            pair["function"],
            "--top",
            "5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    record = json.loads((out / "matches.json").read_text())
    assert record["backbone"] == "checkpoint" and len(record["top_matches"]) == 5
    assert "predicted_part_pixels" in record


def test_resume_continues_from_checkpoint(tiny_data, tmp_path):
    config = tmp_path / "cfg.yaml"
    config.write_text(
        f"data: {tiny_data}\nout: {tmp_path / 'run'}\nsteps: 4\nval_pairs: 0\ncheckpoint_every: 2\nbatch_pairs: 1\n"
    )
    assert main(["train", "--config", str(config)]) == 0
    first = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert main(["train", "--config", str(config), "--steps", "6"]) == 0
    resumed = read_checkpoint(tmp_path / "run" / "last.safetensors")
    assert first.record["step"] == 4 and resumed.record["step"] == 6
    assert not torch.equal(first.state["mlp.0.weight"], resumed.state["mlp.0.weight"])


def test_bad_config_is_a_clear_error(tmp_path, capsys):
    config = tmp_path / "cfg.yaml"
    config.write_text("data: somewhere\nlearning_rate: 1\n")
    assert main(["train", "--config", str(config)]) == 2
    assert "Unknown keys" in capsys.readouterr().err

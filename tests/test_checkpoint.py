"""Checkpoints are safetensors + JSON: round trips, resume state, and no code from files."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch

from funcorr.images import InputError
from funcorr.model.checkpoint import (
    checkpoint_record,
    read_checkpoint,
    read_training_state,
    save_checkpoint,
    save_training_state,
)
from funcorr.model.head import FunctionHead, HeadConfig

SPEC = {"name": "dinov2-s14", "layers": [9, 10, 11], "stride": 14}


def small_head(seed: int = 0, hidden: int = 16) -> FunctionHead:
    torch.manual_seed(seed)
    return FunctionHead(
        HeadConfig(in_dim=8, n_blocks=2, proj_dim=8, text_dim=4, hidden=hidden, out_dim=8)
    )


def test_round_trip_gives_the_same_features(tmp_path):
    head = small_head()
    path = tmp_path / "head.safetensors"
    save_checkpoint(path, head, checkpoint_record(head, SPEC, "minilm", step=7))
    loaded = read_checkpoint(path)
    assert loaded.record["step"] == 7 and loaded.record["backbone"] == SPEC
    blocks, points, text = torch.randn(1, 2, 8, 4, 4), torch.rand(1, 5, 2) * 50, torch.randn(1, 4)
    from funcorr.backbones import FeatureGrid

    grid = FeatureGrid(14, 14)
    expected = head.eval()(blocks, grid, points, text).features
    assert torch.allclose(loaded.head()(blocks, grid, points, text).features, expected)


def test_fp16_halves_the_file(tmp_path):
    head = small_head(hidden=128)  # weights, not the JSON header, dominate the size
    save_checkpoint(tmp_path / "a.safetensors", head, checkpoint_record(head, SPEC, "minilm"))
    save_checkpoint(
        tmp_path / "b.safetensors",
        head,
        checkpoint_record(head, SPEC, "minilm"),
        dtype=torch.float16,
    )
    full, half = (os.path.getsize(tmp_path / n) for n in ("a.safetensors", "b.safetensors"))
    assert half < 0.6 * full
    assert read_checkpoint(tmp_path / "b.safetensors").state["mlp.0.weight"].dtype == torch.float16


class _Touch:
    """A pickle payload that creates a file when unpickled."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_a_malicious_pickle_runs_no_code(tmp_path, suffix):
    marker = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    with evil.open("wb") as handle:
        pickle.dump({"version": 1, "head_state": _Touch(str(marker))}, handle, protocol=2)
    with pytest.raises(InputError):
        read_checkpoint(evil)
    assert not marker.exists()


def test_training_state_resumes_optimizer_and_generators(tmp_path):
    head = small_head()
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    head(
        torch.randn(1, 2, 8, 4, 4),
        __import__("funcorr.backbones", fromlist=["FeatureGrid"]).FeatureGrid(14, 14),
        torch.rand(1, 5, 2) * 50,
        torch.randn(1, 4),
    ).features.sum().backward()
    optimizer.step()
    gen, rng = torch.Generator().manual_seed(3), random.Random(5)
    path = tmp_path / "last.safetensors"
    save_training_state(
        path, head, optimizer, checkpoint_record(head, SPEC, "minilm", step=1), gen, rng.getstate()
    )
    expected_draw, expected_random = torch.rand(3, generator=gen), rng.random()

    other = small_head(seed=1)
    other_opt = torch.optim.Adam(other.parameters(), lr=5.0)
    gen2, rng2 = torch.Generator().manual_seed(99), random.Random(0)
    record = read_training_state(path, other, other_opt, gen2)
    rng2.setstate(record["python_rng"])
    assert record["step"] == 1 and other_opt.param_groups[0]["lr"] == 1e-3
    moments = 0
    for a, b in zip(head.parameters(), other.parameters()):
        assert torch.equal(a, b)
        if a in optimizer.state:  # the mask head got no gradient, so Adam kept no state for it
            assert torch.equal(optimizer.state[a]["exp_avg_sq"], other_opt.state[b]["exp_avg_sq"])
            assert optimizer.state[a]["step"] == other_opt.state[b]["step"]
            moments += 1
    assert moments >= 5
    assert (
        torch.equal(torch.rand(3, generator=gen2), expected_draw)
        and rng2.random() == expected_random
    )


def test_foreign_and_truncated_files_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(InputError, match="not a funcorr checkpoint"):
        read_checkpoint(foreign)
    head = small_head()
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, head, checkpoint_record(head, SPEC, "minilm"))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-100])
    with pytest.raises(InputError, match="Could not read checkpoint"):
        read_checkpoint(truncated)

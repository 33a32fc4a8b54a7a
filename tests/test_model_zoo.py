"""The shipped functional model: found by name, read without pickle, the default with --function."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from funcorr.images import InputError
from funcorr.model import zoo
from funcorr.model.checkpoint import checkpoint_record, read_checkpoint, save_checkpoint
from funcorr.model.head import FunctionHead, HeadConfig


def _refuse_unpickling(monkeypatch) -> None:
    """Any attempt to unpickle (torch.load, pickle.load[s]) fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("a shipped model must load without unpickling")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)


def test_shipped_model_loads_offline_by_name_without_pickle(monkeypatch) -> None:
    from funcorr.model.matcher import Matcher, MatcherConfig

    card = zoo.shipped_models()[zoo.DEFAULT_MODEL]
    raw = card.weights.read_bytes()
    # safetensors: an 8-byte little-endian header length, then a JSON header; never a pickle
    # (protocol byte 0x80) or a zip archive (torch.save's format).
    header_length = int.from_bytes(raw[:8], "little")
    assert raw[8:9] == b"{" and json.loads(raw[8 : 8 + header_length])
    assert not raw.startswith((b"\x80", b"PK"))
    assert len(raw) <= 12 * 2**20
    assert {t.dtype for t in read_checkpoint(card.weights).state.values()} == {torch.float16}
    _refuse_unpickling(monkeypatch)
    path = zoo.resolve_model(zoo.DEFAULT_MODEL, "pour-with", card.backbone)
    matcher = Matcher(MatcherConfig(checkpoint=str(path), function="pour-with", device="cpu"))
    assert matcher.head is not None and card.card["training"]["steps"] > 0
    # The defaults the model records for its use, unless the user overrides them.
    recommended = read_checkpoint(card.weights).record["inference"]
    assert matcher.config.raw_weight == recommended["raw_weight"]
    assert matcher.config.object_mask == recommended["object_mask"]
    override = MatcherConfig(
        checkpoint=str(path), function="pour-with", device="cpu", raw_weight=0.0
    )
    assert Matcher(override).config.raw_weight == 0.0


def test_auto_picks_the_model_only_with_a_function_and_its_backbone() -> None:
    card = zoo.shipped_models()[zoo.DEFAULT_MODEL]
    assert zoo.resolve_model("auto", "pour-with", card.backbone) == card.weights
    assert zoo.resolve_model("auto", None, card.backbone) is None
    assert zoo.resolve_model("auto", "pour-with", "clip-b16") is None
    assert zoo.resolve_model("none", "pour-with", card.backbone) is None
    with pytest.raises(InputError, match="Unknown model"):
        zoo.resolve_model("funcorr-xl", "pour-with", card.backbone)
    with pytest.raises(InputError, match="No checkpoint"):
        zoo.resolve_model("missing.safetensors", "pour-with", card.backbone)


def test_damaged_weights_are_named(monkeypatch, tmp_path: Path) -> None:
    folder = tmp_path / "models"
    shutil.copytree(zoo.models_dir(), folder)
    weights = folder / f"{zoo.DEFAULT_MODEL}.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "models_dir", lambda: folder)
    with pytest.raises(InputError, match="SHA-256"):
        zoo.resolve_model(zoo.DEFAULT_MODEL, "pour-with", "dinov2-s14")


def test_export_writes_fp16_weights_and_a_card(tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = FunctionHead(
        HeadConfig(in_dim=8, n_blocks=2, proj_dim=8, text_dim=4, hidden=16, out_dim=8)
    )
    source = tmp_path / "run.safetensors"
    save_checkpoint(
        source,
        head,
        checkpoint_record(
            head, {"name": "dinov2-s14", "layers": [9, 10, 11], "stride": 14}, "minilm", step=5
        ),
    )
    card = zoo.export_model(
        source, "tiny-model", {"training": {"steps": 5}}, tmp_path / "models", {"raw_weight": 0.4}
    )
    written = json.loads((tmp_path / "models" / "tiny-model.json").read_text())
    assert (
        written["sha256"] == card.sha256
        and written["backbone"] == "dinov2-s14"
        and written["training"]["steps"] == 5
    )
    assert read_checkpoint(card.weights).record["inference"] == {"raw_weight": 0.4}
    state = read_checkpoint(card.weights).state
    assert state["mlp.0.weight"].dtype == torch.float16
    assert torch.allclose(
        state["mlp.0.weight"].float(), head.state_dict()["mlp.0.weight"], atol=1e-3
    )


@pytest.fixture(scope="module")
def rendered_pair(tmp_path_factory) -> tuple[Path, Path]:
    from funcorr.demo import render_demo_images

    return tuple(render_demo_images(tmp_path_factory.mktemp("demo"), size=112))


@pytest.mark.parametrize(
    ("extra", "expects_model"),
    [
        (["--function", "pour-with"], True),
        (["--function", "pour-with", "--model", "none"], False),
        ([], False),
    ],
)
def test_match_uses_the_shipped_model_when_a_function_is_given(
    rendered_pair, tmp_path, extra, expects_model
) -> None:
    from funcorr.cli import main

    source, target = rendered_pair
    out = tmp_path / "out"
    assert (
        main(
            [
                "match",
                str(source),
                str(target),
                "--points",
                "50,50",
                "--size",
                "112",
                "--device",
                "cpu",
                "--out",
                str(out),
                *extra,
            ]
        )
        == 0
    )
    record = json.loads((out / "matches.json").read_text())
    shipped = str(zoo.shipped_models()[zoo.DEFAULT_MODEL].weights)
    assert (record["checkpoint"] == shipped) is expects_model
    assert expects_model or record["checkpoint"] is None
    assert np.isfinite(np.asarray(record["points"][0]["target"], dtype=float)).all()


@pytest.mark.parametrize(("head_stride", "precision"), [(1, "fp32"), (14, "fp32"), (14, "int8")])
def test_demo_spout_goes_to_the_spout_with_the_shipped_model(
    tmp_path: Path, head_stride, precision
) -> None:
    """The demo's kettle spout tip lands on the watering can's spout (pour-with parts from the
    renderer), and most spout pixels do: with the head on every pixel (the paper's), on the
    backbone's cells (interpolated, searched by the pruned exact search), and the latter over
    an int8 backbone."""
    from funcorr.data.assets import generate
    from funcorr.data.render import render_views
    from funcorr.demo import DEMO_OBJECTS, render_demo_images
    from funcorr.images import load_image
    from funcorr.model.matcher import Matcher, MatcherConfig
    from funcorr.model.matching import transfer_points

    spouts = []
    for category, seed, view_index in DEMO_OBJECTS:
        asset = generate(category, seed)
        views = render_views(asset, view_index + 1, (224, 224), seed=seed, elevation_range=(10, 30))
        spouts.append(
            torch.as_tensor(views[view_index].part_ids == asset.functional_part_id("pour-with"))
        )
    paths = render_demo_images(tmp_path)
    path = zoo.resolve_model("auto", "pour-with", "dinov2-s14")
    config = MatcherConfig(
        checkpoint=str(path),
        function="pour-with",
        device="cpu",
        head_stride=head_stride,
        precision=precision,
    )
    matcher = Matcher(config)
    source, target = matcher.features([matcher.prepare(load_image(p)) for p in paths])
    assert (target.cell_map is not None) == (head_stride > 1)
    ys, xs = torch.nonzero(spouts[0], as_tuple=True)
    points = torch.stack([xs, ys], dim=1).float()[::4]
    tip = points[points[:, 0].argmax()][None]  # both spouts point right
    moved = transfer_points(source, target, torch.cat([tip, points])).points.round().long()
    on_spout = spouts[1][moved[:, 1].clamp(0, 223), moved[:, 0].clamp(0, 223)]
    assert bool(on_spout[0])
    assert on_spout[1:].float().mean() > 0.6


def test_a_head_stride_that_does_not_divide_the_backbone_stride_is_refused() -> None:
    from funcorr.images import InputError
    from funcorr.model.matcher import Matcher, MatcherConfig

    path = zoo.resolve_model("funcorr-s14", "pour-with", "dinov2-s14")
    with pytest.raises(InputError, match="must divide the backbone stride 14"):
        Matcher(MatcherConfig(checkpoint=str(path), function="pour-with", head_stride=5))
    with pytest.raises(InputError, match="at least 1"):
        MatcherConfig(head_stride=0)


def test_the_shipped_models_recommendations_are_defaults_and_can_be_overridden() -> None:
    from funcorr.model.matcher import Matcher, MatcherConfig

    path = str(zoo.resolve_model("funcorr-s14", "pour-with", "dinov2-s14"))
    shipped = Matcher(MatcherConfig(checkpoint=path, function="pour-with"))
    assert (shipped.config.raw_weight, shipped.config.object_mask) == (0.5, "auto")
    assert (shipped.config.head_stride, shipped.config.soft_window) == (14, 7.0)
    assert shipped.inference["parts"] == "head"
    explicit = MatcherConfig(
        checkpoint=path, function="pour-with", head_stride=1, soft_window=0, raw_weight=0.0
    )
    chosen = Matcher(explicit).config
    assert (chosen.head_stride, chosen.soft_window, chosen.raw_weight) == (1, None, 0.0)
    raw = Matcher(MatcherConfig()).config  # raw features: no refinement, alpha masks
    assert (raw.soft_window, raw.object_mask, raw.raw_weight) == (None, "alpha", 0.0)

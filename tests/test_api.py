"""The Python API: funcorr.load -> Model.features -> funcorr.match, with raw backbone features
and with a trained head (a small checkpoint built here), in original pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import funcorr
from funcorr.images import InputError, load_image
from funcorr.model.checkpoint import checkpoint_record, save_checkpoint
from funcorr.model.head import FunctionHead, HeadConfig
from funcorr.model.matcher import Matcher, MatcherConfig

SIZE = 112


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """An RGBA crop of a photo and an RGB crop of the same scene shifted by 28 px in x and y."""
    from skimage.data import astronaut

    root = tmp_path_factory.mktemp("api")
    scene = np.asarray(Image.fromarray(astronaut()).resize((300, 300)))
    source = scene[20:244, 20:244]
    alpha = np.zeros(source.shape[:2], np.uint8)
    alpha[20:200, 30:210] = 255
    Image.fromarray(np.dstack([source, alpha])).save(root / "src.png")
    Image.fromarray(scene[48:272, 48:272]).save(root / "tgt.png")
    return root


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small random head over dinov2-s14's last three blocks."""
    torch.manual_seed(0)
    head = FunctionHead(HeadConfig(in_dim=384, n_blocks=3, proj_dim=32, hidden=32, out_dim=16))
    spec = {"name": "dinov2-s14", "layers": [9, 10, 11], "stride": 14}
    path = tmp_path_factory.mktemp("ckpt") / "small.safetensors"
    save_checkpoint(path, head, checkpoint_record(head, spec, "minilm"))
    return path


def test_raw_backbone_matches_a_shifted_copy(pair):
    model = funcorr.load("dinov2-s14", image_size=SIZE)
    assert not model.trained
    src, tgt = model.features([pair / "src.png", pair / "tgt.png"], function="pour-with")
    assert src.function is None and src.mask_source == "alpha" and tgt.mask_source == "full"
    matches = funcorr.match(src, tgt, top=20)
    assert len(matches) == 20
    assert torch.all(matches.score[:-1] >= matches.score[1:])
    # Coordinates are original pixels: the target is the scene moved by (-28, -28), and the
    # best matches start on the source's alpha mask (x in 30..209, y in 20..199).
    assert torch.all((matches.source[:, 0] >= 29) & (matches.source[:, 0] <= 210))
    assert torch.all((matches.source[:, 1] >= 19) & (matches.source[:, 1] <= 200))
    error = (matches.target - (matches.source - 28)).norm(dim=1)
    assert float(error.median()) < 12


def test_checkpoint_needs_a_function_and_equals_the_matcher(pair, checkpoint):
    model = funcorr.load(checkpoint, image_size=SIZE)
    assert model.trained
    with pytest.raises(InputError, match="needs a function"):
        model.features([pair / "src.png"])
    src, tgt = model.features([pair / "src.png", pair / "tgt.png"], function="pour-with")
    assert src.function == "pour-with"
    matcher = Matcher(
        MatcherConfig(checkpoint=str(checkpoint), function="pour-with", image_size=SIZE)
    )
    prepared = [matcher.prepare(load_image(pair / name)) for name in ("src.png", "tgt.png")]
    expected = matcher.features(prepared)
    points = torch.tensor([[40.0, 30.0], [70.5, 60.25]])
    for got, want in zip((src, tgt), expected):
        assert torch.allclose(got.dense.sample(points), want.sample(points), atol=1e-5)
    assert torch.allclose(got.dense.sample(points).norm(dim=1), torch.ones(2), atol=1e-5)
    # Another function changes the conditioned features; the matcher is reused.
    (other,) = model.features([pair / "src.png"], function="cut-with")
    assert not torch.allclose(other.dense.sample(points), src.dense.sample(points), atol=1e-4)
    with pytest.raises(InputError, match="different functions"):
        funcorr.match(other, tgt)
    assert len(funcorr.match(src, tgt, top=5)) == 5


def test_shipped_model_takes_its_recommendations_unless_told_otherwise():
    """As on the command line: funcorr-s14 matches photos within saliency masks by default."""
    default = funcorr.load("funcorr-s14")._matcher_for("pour-with").config
    assert (default.object_mask, default.head_stride, default.precision) == ("auto", 14, "fp32")
    chosen = funcorr.load("funcorr-s14", object_mask="alpha", precision="int8")
    config = chosen._matcher_for("pour-with").config
    assert (config.object_mask, config.precision) == ("alpha", "int8")
    assert (
        funcorr.load("dinov2-s14", image_size=SIZE)._matcher_for(None).config.object_mask == "alpha"
    )


def test_unknown_model_is_one_clear_error():
    with pytest.raises(InputError, match="Unknown model 'nope'"):
        funcorr.load("nope")

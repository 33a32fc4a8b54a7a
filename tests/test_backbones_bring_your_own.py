"""Hub backbones a user brings: every model family of the registry, as a tiny random model
saved with ``save_pretrained``, loaded through ``--weights DIR`` and through a Hugging Face
cache, checked for shapes, grid, block selection and half stride, and run end to end
(``funcorr match``, and a head trained on it).

The models are random (4 blocks of width 32), so the checks are about plumbing, not quality:
the blocks funcorr returns must be exactly the hidden states of the Hugging Face model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers
from PIL import Image

from funcorr.backbones import load_backbone
from funcorr.backbones.registry import BACKBONES
from funcorr.cli import main

WIDTH, DEPTH, SIZE = 32, 4, 112
SMALL = {
    "hidden_size": WIDTH,
    "num_hidden_layers": DEPTH,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}
# One registered name per family (and CLIP at both patch sizes): config class, its options.
FAMILIES = {
    "dinov2-base": ("Dinov2Config", {"patch_size": 14, "image_size": SIZE}),
    "dinov2-base-reg": (
        "Dinov2WithRegistersConfig",
        {"patch_size": 14, "image_size": SIZE, "num_register_tokens": 4},
    ),
    "dinov3-small": ("DINOv3ViTConfig", {"patch_size": 16, "num_register_tokens": 4}),
    "clip-b16": ("CLIPVisionConfig", {"patch_size": 16, "image_size": 224}),
    "clip-l14": ("CLIPVisionConfig", {"patch_size": 14, "image_size": 224}),
    "siglip-b16": ("SiglipVisionConfig", {"patch_size": 16, "image_size": 224}),
}
HALF_STRIDE = {"dinov2-base", "dinov2-base-reg"}


def tiny_model(name: str):
    """A random model of ``name``'s architecture, built by the class the registry loads it with."""
    config_class, options = FAMILIES[name]
    config = getattr(transformers, config_class)(**SMALL, **options)
    loader = BACKBONES[name].loader
    torch.manual_seed(0)
    model_class = transformers.AutoModel if loader == "AutoModel" else getattr(transformers, loader)
    return (
        model_class.from_config(config) if loader == "AutoModel" else model_class(config)
    ).eval()


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> dict[str, Path]:
    """name -> folder written by ``save_pretrained`` (as ``huggingface-cli download
    --local-dir`` leaves one)."""
    root = tmp_path_factory.mktemp("byo")
    folders = {}
    for name in FAMILIES:
        folders[name] = root / name
        tiny_model(name).save_pretrained(folders[name])
    return folders


@pytest.fixture(scope="module")
def views(micro_data, tmp_path_factory) -> tuple[str, str]:
    """Two rendered views as RGBA (alpha = object mask), so matching stays on the object."""
    folder = min((micro_data / "assets").iterdir()) / "views"
    out = tmp_path_factory.mktemp("views")
    paths = []
    for view in ("0000", "0001"):
        rgba = Image.open(folder / f"{view}.png").convert("RGB")
        rgba.putalpha(Image.open(folder / f"{view}.mask.png").convert("L"))
        rgba.save(out / f"{view}.png")
        paths.append(str(out / f"{view}.png"))
    return paths[0], paths[1]


def hidden_blocks(model, backbone, images: torch.Tensor, blocks: tuple[int, ...]) -> torch.Tensor:
    """The Hugging Face model's own hidden states of ``blocks``, patch tokens only.
    Returns (B, L, C, h, w)."""
    h, w = backbone.grid.grid_size(*images.shape[-2:])
    kwargs = (
        {"interpolate_pos_encoding": True}
        if isinstance(model, (transformers.CLIPVisionModel, transformers.SiglipVisionModel))
        else {}
    )
    with torch.no_grad():
        hidden = model(
            pixel_values=backbone.normalise(images), output_hidden_states=True, **kwargs
        ).hidden_states
    tokens = torch.stack([hidden[i + 1][:, -h * w :] for i in blocks], dim=1)
    return tokens.transpose(2, 3).reshape(images.shape[0], len(blocks), WIDTH, h, w)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_weights_folder_gives_the_models_own_blocks_on_the_patch_grid(name, saved):
    backbone = load_backbone(name, weights=saved[name])
    patch = FAMILIES[name][1]["patch_size"]
    assert (backbone.dim, backbone.num_layers, backbone.layers) == (WIDTH, DEPTH, (1, 2, 3))
    assert (backbone.grid.patch_size, backbone.grid.stride) == (patch, patch)
    images = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        blocks = backbone(images)
    assert blocks.shape == (2, 3, WIDTH, SIZE // patch, SIZE // patch)
    # Block selection (negative = from the end), and the tokens are the model's patch tokens:
    # CLS and register tokens removed, row-major on the grid.
    chosen = load_backbone(name, weights=saved[name], layers=[0, -1])
    assert chosen.layers == (0, DEPTH - 1)
    with torch.no_grad():
        got = chosen(images)
    expected = hidden_blocks(
        type(tiny_model(name)).from_pretrained(saved[name]).eval(), chosen, images, (0, DEPTH - 1)
    )
    assert torch.allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("name", list(FAMILIES))
def test_half_stride_where_the_family_supports_it(name, saved):
    if name not in HALF_STRIDE:
        with pytest.raises(ValueError, match="native stride"):
            load_backbone(name, weights=saved[name], stride=7)
        return
    backbone = load_backbone(name, weights=saved[name], stride=7)
    with torch.no_grad():
        blocks = backbone(torch.rand(1, 3, SIZE, SIZE))
    # (112 - 14) / 7 + 1 = 15 cells a side, centres every 7 px.
    assert (backbone.grid.stride, blocks.shape) == (7, (1, 3, WIDTH, 15, 15))


@pytest.mark.parametrize("name", list(FAMILIES))
def test_match_runs_end_to_end_with_weights_folder(name, saved, views, tmp_path, capsys):
    out = tmp_path / "out"
    argv = [
        "match",
        *views,
        "--backbone",
        name,
        "--weights",
        str(saved[name]),
        "--size",
        str(SIZE),
        "--top",
        "3",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    record = json.loads((out / "matches.json").read_text())
    assert record["backbone"] == name and len(record["top_matches"]) == 3
    capsys.readouterr()
    code = main([*argv[:-1], str(tmp_path / "half"), "--stride", "7"])
    if name in HALF_STRIDE:
        assert code == 0
    else:
        assert code == 2 and "native stride" in capsys.readouterr().err


HF_CACHE_RUN = """
import json, sys
from funcorr.backbones import load_backbone, weights_available
from funcorr.cli import main
names, source, target, out = json.loads(sys.argv[1])
for name in names:
    assert weights_available(name), name
    assert load_backbone(name).dim == 32, name
    argv = ["match", source, target, "--backbone", name, "--size", "112", "--top", "2"]
    assert main([*argv, "--out", f"{out}/{name}"]) == 0, name
"""


def test_hugging_face_cache_layout(saved, views, tmp_path):
    """Models in ``$HF_HUB_CACHE/models--org--name/snapshots/<rev>/`` (what ``from_pretrained``
    leaves after a download) load by name alone. A subprocess, since the hub reads its cache
    location when imported."""
    hub = tmp_path / "hub"
    for name, folder in saved.items():
        repo = hub / f"models--{BACKBONES[name].model_id.replace('/', '--')}"
        revision = "0" * 40
        (repo / "refs").mkdir(parents=True)
        (repo / "refs" / "main").write_text(revision)
        (repo / "snapshots" / revision).mkdir(parents=True)
        for file in folder.iterdir():
            (repo / "snapshots" / revision / file.name).symlink_to(file)
    env = {
        **os.environ,
        "HF_HUB_CACHE": str(hub),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    env.pop("HF_HOME", None)
    arguments = json.dumps([list(FAMILIES), *views, str(tmp_path / "out")])
    done = subprocess.run(
        [sys.executable, "-c", HF_CACHE_RUN, arguments],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert all((tmp_path / "out" / name / "matches.json").is_file() for name in FAMILIES)


def test_head_trained_on_a_brought_backbone_matches_end_to_end(saved, views, micro_data, tmp_path):
    from funcorr.model.checkpoint import read_checkpoint
    from funcorr.serve.viewer import find_checkpoints
    from funcorr.train import TrainConfig, train

    data = tmp_path / "data"  # training writes its feature cache into the dataset folder
    shutil.copytree(micro_data, data)
    config = TrainConfig(
        data=str(data),
        out=str(tmp_path / "run"),
        backbone="dinov2-base-reg",
        weights=str(saved["dinov2-base-reg"]),
        steps=2,
        batch_pairs=1,
        points_per_image=8,
        background_variants=1,
        labels="true",
        val_every=2,
        val_pairs=1,
        checkpoint_every=2,
        device="cpu",
    )
    last = train(config)
    record = read_checkpoint(last).record
    assert record["backbone"] == {"name": "dinov2-base-reg", "layers": [1, 2, 3], "stride": 14}
    assert record["head_config"]["in_dim"] == WIDTH
    assert find_checkpoints(tmp_path / "run") == (last,)
    out = tmp_path / "out"
    argv = [
        "match",
        *views,
        "--checkpoint",
        str(last),
        "--weights",
        str(saved["dinov2-base-reg"]),
        "--function",
        "cut-with",
        "--size",
        str(SIZE),
        "--points",
        "30,30",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    record = json.loads((out / "matches.json").read_text())
    assert record["checkpoint"] == str(last) and len(record["points"]) == 1

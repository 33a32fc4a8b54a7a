"""Dataset folders: make-data CLI, format, PyTorch datasets, determinism, resume and failure cleanup."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from funcorr.cli import main
from funcorr.data.assets import generate, save_mesh_asset
from funcorr.data.build import make_dataset
from funcorr.data.format import FORMAT_VERSION, DataConfig
from funcorr.data.groundtruth import GTConfig, transform_points
from funcorr.data.readers import EvalPairs, TrainViews, collate, functional_mask, load_view
from funcorr.images import InputError

MICRO = DataConfig(
    functions=("cut-with",),
    assets_per_category=2,
    train_views=3,
    eval_views=5,
    image_size=64,
    pairs_per_function=3,
    match_neighbours=1,
    match_points=64,
    gt=GTConfig(min_part_pixels=10, min_correspondences=5, max_points=100),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "tiny"
    assert main(["make-data", "--preset", "tiny", "--out", str(root), "--no-progress"]) == 0
    return root


def folder_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_tiny_preset_layout(tiny):
    index = json.loads((tiny / "index.json").read_text())
    assert index["format"] == "funcorr-data" and index["version"] == FORMAT_VERSION
    assert all(index["splits"][s] for s in ("train", "test", "unseen"))
    assert set(index["functions"]) >= {"pour-with", "cut-with"}
    assert index["pairs"]["test"]["count"] > 0
    asset_id = index["splits"]["train"][0]
    folder = tiny / "assets" / asset_id
    record = json.loads((folder / "asset.json").read_text())
    n = record["n_views"]
    for fn in record["functions"]:
        assert (folder / "views" / f"0000.{fn.replace(' ', '_')}.png").is_file()
    parts = np.asarray(Image.open(folder / "views" / "0000.parts.png"))
    mask = np.asarray(Image.open(folder / "views" / "0000.mask.png")) > 0
    assert np.array_equal(parts > 0, mask) and parts.max() <= len(record["part_names"])
    assert len(list((folder / "views").glob("*.npz"))) == n
    assert (folder / "matches.npz").is_file()


def test_train_views_items(tiny):
    data = TrainViews(tiny, split="train")
    item = data[0]
    h = w = 224
    assert item["image"].shape == (3, h, w) and item["image"].dtype == torch.float32
    assert item["image"].min() >= 0.0 and item["image"].max() <= 1.0
    assert item["mask"].dtype == torch.bool and item["part_ids"].shape == (h, w)
    assert torch.equal(item["mask"], item["part_ids"] >= 0)
    assert item["xyz"].shape == (h, w, 3) and torch.isnan(item["xyz"][~item["mask"]]).all()
    info = data.asset_info(item["asset_id"])
    for fn, spec in info["functions"].items():
        expected = item["part_ids"] == info["part_names"].index(spec["part"])
        assert torch.equal(functional_mask(item, fn), expected)
    assert not functional_mask(item, "write-with").any()
    views = data.views_of(item["asset_id"])
    assert len(views) == info["n_views"] and all(
        data[i]["asset_id"] == item["asset_id"] for i in views
    )
    assert item["asset_id"] in data.assets_for(next(iter(info["functions"])))
    batch = collate([data[0], data[1]])
    assert batch["image"].shape == (2, 3, h, w) and isinstance(batch["functional_masks"], list)


def test_stored_multiview_correspondences_agree_in_3d(tiny):
    data = TrainViews(tiny, split="train")
    asset_id = data.asset_ids[0]
    matches = np.load(tiny / "assets" / asset_id / "matches.npz")
    i, j = matches["pairs"][0]
    corr = data.correspondences(asset_id, int(i), int(j))
    assert len(corr) > 0
    a, b = load_view(tiny, asset_id, int(i)), load_view(tiny, asset_id, int(j))
    pa, pb = corr[:, 0].astype(int), np.round(corr[:, 1]).astype(int)
    gap = np.linalg.norm(a.xyz[pa[:, 1], pa[:, 0]] - b.xyz[pb[:, 1], pb[:, 0]], axis=1)
    assert gap.max() < 0.02
    swapped = data.correspondences(asset_id, int(j), int(i))
    assert np.array_equal(swapped[:, 0], corr[:, 1])


def test_eval_pairs_items(tiny):
    pairs = EvalPairs(tiny, split="test")
    assert len(pairs) > 0
    for k in range(len(pairs)):
        item = pairs[k]
        corr = item["correspondences"].numpy()
        assert corr.ndim == 3 and corr.shape[1:] == (2, 2)
        p1, p2 = corr[:, 0].astype(int), corr[:, 1].astype(int)
        assert (
            item["part_mask1"][p1[:, 1], p1[:, 0]].all()
            and item["part_mask2"][p2[:, 1], p2[:, 0]].all()
        )
        assert (item["part_mask1"] <= item["mask1"]).all()
        assert len(np.unique(p1, axis=0)) == len(p1) and len(np.unique(p2, axis=0)) == len(p2)
        assert item["across_category"] == (item["category1"] != item["category2"])
        assert item["image1"].shape == (3, 224, 224)
    # Correspondences respect the stored functional alignment (3D check from the saved depth).
    record = pairs.pairs[0]
    v1 = load_view(tiny, record["asset1"], record["view1"])
    v2 = load_view(tiny, record["asset2"], record["view2"])
    corr = pairs[0]["correspondences"].numpy().astype(int)
    xyz2 = transform_points(
        np.array(record["transform"]), v2.xyz[corr[:, 1, 1], corr[:, 1, 0]].astype(np.float64)
    )
    dist = np.linalg.norm(v1.xyz[corr[:, 0, 1], corr[:, 0, 0]] - xyz2, axis=1)
    assert np.isclose(dist.mean(), record["mean_distance"], atol=1e-4)


def test_show_pair_writes_a_picture(tiny, tmp_path):
    out = tmp_path / "pair.png"
    assert main(["show-pair", str(tiny), "--out", str(out), "--index", "0"]) == 0
    with Image.open(out) as im:
        assert im.size == ((2 * 224 + 8) * 2, 224 * 2)
    assert main(["show-pair", str(tiny), "--out", str(out), "--index", "9999"]) == 2


def test_same_seed_gives_byte_identical_folders_and_resume(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    make_dataset(MICRO, first, progress=False)
    make_dataset(MICRO, second, progress=False)
    digest = folder_digest(first)
    assert DataConfig.from_json(json.loads((first / "config.json").read_text())["config"]) == MICRO
    assert digest == folder_digest(second)
    make_dataset(MICRO, tmp_path / "parallel", progress=False, workers=2)
    assert folder_digest(tmp_path / "parallel") == digest
    # Simulate an interrupted run: one asset, the pairs and the index are missing, a temp folder is left.
    asset = sorted((second / "assets").iterdir())[1]
    shutil.rmtree(asset)
    (second / "index.json").unlink()
    (second / "pairs" / "test.json").unlink()
    (second / "assets" / ".knife-0001.tmp").mkdir()
    report = make_dataset(MICRO, second, progress=False)
    assert (
        report.written == 1
        and report.skipped == len(json.loads((first / "index.json").read_text())["assets"]) - 1
    )
    assert folder_digest(second) == digest
    with pytest.raises(InputError, match="different settings"):
        make_dataset(dataclasses.replace(MICRO, seed=1), second, progress=False)


def test_different_seed_changes_the_data(tmp_path):
    make_dataset(MICRO, tmp_path / "a", progress=False)
    make_dataset(dataclasses.replace(MICRO, seed=7), tmp_path / "b", progress=False)
    a = (tmp_path / "a" / "assets" / "knife-0000" / "views" / "0000.png").read_bytes()
    b = (tmp_path / "b" / "assets" / "knife-0000" / "views" / "0000.png").read_bytes()
    assert a != b


def test_real_meshes_join_the_dataset(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    for seed in (1, 2):
        save_mesh_asset(generate("cleaver", seed), meshes / f"my_cleaver_{seed}.glb")
    config = dataclasses.replace(MICRO, meshes=str(meshes))
    make_dataset(config, tmp_path / "out", progress=False)
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    real = {a: v for a, v in index["assets"].items() if a.startswith("mesh-")}
    assert len(real) == 2 and all(
        v["category"] == "cleaver" and "cut-with" in v["functions"] for v in real.values()
    )


def test_corrupt_or_missing_meshes_leave_nothing_behind(tmp_path, capsys):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    save_mesh_asset(generate("knife", 1), meshes / "good.glb")
    (meshes / "bad.obj").write_text("v 0 0 0\nf 1 2 3\n")
    out = tmp_path / "out"
    args = [
        "make-data",
        "--preset",
        "tiny",
        "--functions",
        "cut-with",
        "--out",
        str(out),
        "--no-progress",
    ]
    assert main([*args, "--meshes", str(meshes)]) == 2
    assert "bad.obj" in capsys.readouterr().err
    assert not out.exists()
    assert main([*args, "--meshes", str(tmp_path / "nowhere")]) == 2
    assert not out.exists()


def test_cli_rejects_unknown_functions_and_presets(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["make-data", "--out", str(out), "--functions", "juggle-with"]) == 2
    assert "juggle-with" in capsys.readouterr().err
    assert main(["make-data", "--out", str(out), "--preset", "huge"]) == 2
    assert main(["make-data", "--out", str(out), "--preset", "tiny", "--background", "plaid"]) == 2
    assert "plaid" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(InputError, match="not a funcorr dataset"):
        TrainViews(tmp_path)
    (tmp_path / "notes.txt").write_text("precious")
    assert main(["make-data", "--preset", "tiny", "--out", str(tmp_path), "--no-progress"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]

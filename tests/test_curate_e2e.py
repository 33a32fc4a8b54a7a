"""End to end: captioned OBJ files -> curate -> make-data --meshes manifest.csv -> train."""

from __future__ import annotations

import csv
import json

from funcorr.cli import main
from funcorr.data.assets import generate, save_mesh_asset
from funcorr.data.manifest import read_manifest

# uid -> (procedural family written as the mesh, caption). The OBJ files carry part labels and
# functions in their .parts.json sidecars, but no category: that must come from the manifest.
MESHES = {
    "0a1": ("mug", "A white ceramic mug with a round handle"),
    "0a2": ("mug", "3D model of a blue coffee mug"),
    "0b1": ("kettle", "A stainless steel kettle with a black handle"),
    "0b2": ("kettle", "A red tea kettle"),
    "0c1": ("knife", "A kitchen knife with a wooden handle"),
    "0c2": ("knife", "a chef knife"),
    "0d1": ("cleaver", "A heavy meat cleaver"),
    "0d2": ("cleaver", "A cleaver with a black handle"),
    "0e1": ("bottle", "A green glass bottle"),  # written without part labels
}
NO_MESH = [
    ("0f1", "A copper kettle"),
    ("0g1", "A wooden chair with four legs"),
    ("0g2", "A cartoon cat"),
]


def test_captioned_meshes_to_a_trained_head(tmp_path, capsys):
    meshes = tmp_path / "objaverse" / "glbs" / "000-000"
    meshes.mkdir(parents=True)
    for i, (uid, (family, _)) in enumerate(MESHES.items()):
        sidecar = save_mesh_asset(generate(family, seed=100 + i), meshes / f"{uid}.obj")
        if family == "bottle":
            sidecar.unlink()
        else:
            labels = json.loads(sidecar.read_text())
            del labels["category"]
            sidecar.write_text(json.dumps(labels))
    captions = tmp_path / "captions.csv"
    with open(captions, "w", newline="") as handle:
        csv.writer(handle).writerows([(uid, text) for uid, (_, text) in MESHES.items()] + NO_MESH)

    curated = tmp_path / "curated"
    assert (
        main(
            [
                "curate",
                "--captions",
                str(captions),
                "--meshes",
                str(tmp_path / "objaverse"),
                "--out",
                str(curated),
                "--no-progress",
            ]
        )
        == 0
    )
    rows = read_manifest(curated / "manifest.csv")
    assert {r.uid: r.category for r in rows} == {uid: family for uid, (family, _) in MESHES.items()}
    assert all(r.path.endswith(f"{r.uid}.obj") for r in rows)
    splits = {r.uid: r.split for r in rows}
    assert sorted(splits.values()).count("test") == 4  # one of each category's two assets
    report = json.loads((curated / "report.json").read_text())
    assert report["totals"]["no_mesh"] == 1 and report["totals"]["below_threshold"] == 2

    data = tmp_path / "data"
    assert (
        main(
            [
                "make-data",
                "--meshes",
                str(curated / "manifest.csv"),
                "--assets-per-category",
                "0",
                "--functions",
                "pour-with,cut-with",
                "--views",
                "3",
                "--eval-views",
                "4",
                "--pairs-per-function",
                "2",
                "--out",
                str(data),
                "--no-progress",
            ]
        )
        == 0
    )
    assert "1 of 9 real meshes have no functional part labels" in capsys.readouterr().out
    index = json.loads((data / "index.json").read_text())
    assets = index["assets"]
    assert {a: info["category"] for a, info in assets.items()} == {
        f"mesh-{u}": f for u, (f, _) in MESHES.items()
    }
    assert {a: info["split"] for a, info in assets.items()} == {
        f"mesh-{u}": s for u, s in splits.items()
    }
    assert assets["mesh-0e1"]["functions"] == {}
    assert assets["mesh-0b1"]["functions"] == {"pour-with": "spout"}
    assert index["pairs"]["test"]["count"] >= 2 and index["pairs"]["test"]["across_category"] >= 2

    config = tmp_path / "train.yaml"
    config.write_text(
        f"data: {data}\nout: {tmp_path / 'run'}\nsteps: 3\nbatch_pairs: 2\nval_every: 3\n"
        "val_pairs: 2\n"
        "checkpoint_every: 3\nspatial_pairs_per_asset: 2\nbackground_variants: 1\n"
    )
    assert main(["train", "--config", str(config)]) == 0
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["step"] == 3

"""SOCO: the on-disk layout reader, and ``--protocol soco`` against hand-computed numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from funcorr.backbones.base import FeatureGrid
from funcorr.cli import main
from funcorr.eval.soco import SOCOPairs, load_filename_mapping, load_keypoint_taxonomy
from funcorr.eval.soco_protocol import SOCOProtocol, soco_input, soco_points
from funcorr.images import InputError


def point(i: int, name: str, pos, concept: str, kind: str = "structural") -> dict:
    return {
        "id": i,
        "name": name,
        "pos": list(pos),
        "concept_id": hash(concept) % 100,
        "concept_name": concept,
        "kind": kind,
        "shared": concept == "wheel",
    }


def write_pair(
    root: Path,
    folder: str,
    number: int,
    src: dict,
    trg: dict,
    semantic,
    concepts,
    group: str,
    categories=("car", "car"),
    bbox=(0, 0, 32, 20),
) -> None:
    payload = {
        "pair_id": number,
        "pair_group": group,
        "category": categories[1],
        "src_category": categories[0],
        "trg_category": categories[1],
        "src_image": "a.png" if categories[0] == "car" else "b.png",
        "trg_image": "b.png",
        "src_imsize": [64, 64],
        "trg_imsize": [64, 64],
        "src_bndbox": [0, 0, 64, 64],
        "trg_bndbox": list(bbox),
        "src_keypoints": [point(i, n, xy, c) for i, (n, (xy, c)) in enumerate(src.items())],
        "trg_keypoints": [point(i, n, xy, c) for i, (n, (xy, c)) in enumerate(trg.items())],
        "semantic_overlap": list(semantic),
        "concept_matches": [
            {"concept_name": c, "src_keypoints": s, "trg_keypoints": t}
            for c, (s, t) in concepts.items()
        ],
    }
    path = root / "PairAnnotations" / folder / f"{number:05d}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


# Source keypoints on a 64 x 64 image and their targets on another. With 16 px patches at a
# 64 px input the grid is 4 x 4; see test_protocol_soco_reproduces_hand_computed_numbers.
SOURCE = {
    "A": ((10.7, 10.2), "corner"),
    "B": ((30, 40), "wheel"),
    "C": ((50, 20), "corner"),
    "D": ((63, 63), "wheel"),
}
TARGET = {
    "A": ((0, 4), "corner"),
    "B": ((24, 32), "wheel"),
    "C": ((32, 16), "corner"),
    "D": ((20, 20), "wheel"),
    "E": ((48, 44), "wheel"),
}


@pytest.fixture
def soco_root(tmp_path) -> Path:
    """A SOCOv1 tree written to SOCO's documented schema, from two images."""
    root = tmp_path / "SOCOv1"
    for category, name in (("car", "a.png"), ("car", "b.png"), ("bus", "b.png")):
        (root / "Images" / category).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 64), "grey").save(root / "Images" / category / name)
    (root / "KeypointAnnotations" / "car").mkdir(parents=True)
    subset = lambda names, table: {n: table[n] for n in names}  # noqa: E731
    wheels = {"wheel": (["B", "D"], ["B", "D", "E"])}
    write_pair(
        root,
        "intra/car",
        1,
        SOURCE,
        TARGET,
        "ABCD",
        {"corner": (["A", "C"], ["A", "C"]), **wheels},
        "car",
    )
    write_pair(root, "intra/car", 2, subset("AC", SOURCE), subset("AC", TARGET), "AC", {}, "car")
    write_pair(
        root, "intra/bus", 1, subset("BD", SOURCE), subset("BDE", TARGET), "BD", wheels, "bus"
    )
    write_pair(
        root,
        "cross/car",
        1,
        subset("BD", SOURCE),
        subset("BDE", TARGET),
        "BD",
        wheels,
        "car",
        categories=("bus", "car"),
    )
    for split in ("train", "test"):
        write_pair(root, f"trainsplits/{split}/car", 1, SOURCE, TARGET, "ABCD", wheels, "car")
    (root / "Metadata").mkdir()
    (root / "Metadata" / "keypoint_taxonomy.json").write_text('{"instances": []}')
    (root / "Metadata" / "filename_mapping.json").write_text('{"car": {"2008_001.jpg": "a.png"}}')
    return root


@pytest.mark.parametrize("split", ["intra", "cross", "train", "test"])
def test_reader_loads_every_pair_set_of_the_layout(soco_root, split):
    pairs = SOCOPairs(soco_root, split)
    pair = pairs[0]
    assert pair.pair_type == ("cross" if split == "cross" else "intra")
    assert pair.target.size == (64, 64) and pair.target.bbox == (0.0, 0.0, 32.0, 20.0)
    assert pair.target.image_path == soco_root / "Images" / "car" / "b.png"
    wheel = next(m for m in pair.concept_matches if m.label == "wheel")
    names = [k.name for k in pair.target.keypoints]
    assert [names[i] for i in wheel.target_indices] == ["B", "D", "E"]
    assert all(k.kind == "structural" for k in pair.source.keypoints)
    assert [k.shared for k in pair.source.keypoints if k.concept_name == "wheel"] == [True, True]


def test_reader_selection_metadata_and_errors(soco_root, tmp_path):
    intra = SOCOPairs(soco_root, "intra")
    assert [p.group for p in intra] == ["bus", "car", "car"]  # sorted groups, sorted files
    assert intra[1].source.keypoints[0].position == (10.7, 10.2)
    assert len(SOCOPairs(soco_root, "intra", max_pairs_per_category=1)) == 2
    assert len(SOCOPairs(soco_root, "intra", max_pairs_per_category=0)) == 3  # 0 = all, as SOCO
    assert len(SOCOPairs(soco_root, "intra", categories=["car"])) == 2
    assert SOCOPairs(soco_root, "cross")[0].source.category == "bus"
    assert load_keypoint_taxonomy(soco_root) == {"instances": []}
    assert load_filename_mapping(soco_root)["car"]["2008_001.jpg"] == "a.png"
    with pytest.raises(InputError, match="Unknown SOCO intra groups: plane"):
        SOCOPairs(soco_root, "intra", categories=["plane"])
    with pytest.raises(InputError, match="Missing SOCO image directory"):
        SOCOPairs(tmp_path, "intra")
    broken = json.loads((soco_root / "PairAnnotations/intra/car/00002.json").read_text())
    broken["semantic_overlap"].append("Z")
    (soco_root / "PairAnnotations/intra/car/00002.json").write_text(json.dumps(broken))
    with pytest.raises(InputError, match="semantic_overlap keypoints Z"):
        SOCOPairs(soco_root, "intra", categories=["car"])[1]


def test_input_is_white_padded_at_the_top_left_and_points_truncated_twice(tmp_path):
    Image.new("RGB", (30, 20), "black").save(tmp_path / "wide.png")
    image = soco_input(tmp_path / "wide.png", 60)
    assert image.shape == (3, 60, 60)
    assert (
        float(image[:, 10, 10].max()) == 0.0 and float(image[:, 52, 30].min()) == 1.0
    )  # 20 rows of 30 -> 40 of 60
    assert SOCOProtocol().effective_size(14) == 798 and SOCOProtocol(64).effective_size(16) == 64
    points = torch.tensor([[10.9, 5.99], [-0.5, 3.2]])
    # int(10.9) = 10 -> int(10 * 798 / 100) = 79; int(5.99) = 5 -> int(39.9) = 39; -0.5 -> 0.
    assert torch.equal(
        soco_points(points, (100, 50), 798), torch.tensor([[79, 39], [0, 23]]) / 798.0
    )


class OneHotCells(torch.nn.Module):
    """A stand-in backbone whose final-block feature of cell (r, c) is the one-hot vector
    r * w + c: a query's similarities are its bilinear weights, so the argmax is the nearest cell."""

    grid = FeatureGrid(16, 16)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, _, height, width = images.shape
        h, w = height // 16, width // 16
        cells = torch.eye(h * w).reshape(h * w, h, w)
        return cells[None, None].expand(b, 1, -1, -1, -1).clone()


def test_protocol_soco_reproduces_hand_computed_numbers(soco_root, tmp_path, monkeypatch, capsys):
    """64 px input, 16 px patches: a 4 x 4 grid. A source point at pixel x is int(x) / 64 of
    the square; grid_sample(align_corners=True) reads cell coordinate 3 * int(x) / 64, the
    argmax is the nearest cell c and the prediction its corner c / 4:

    A (10, 10) -> cell (0, 0) -> (0, 0);      target (0, 4) / 64: error 1/16 < 1/8, hit
    B (30, 40) -> cell (1, 2) -> (.25, .5);   target (24, 32) / 64: error exactly 1/8, MISS under <
    C (50, 20) -> cell (2, 1) -> (.5, .25);   target (32, 16) / 64: error 0, hit
    D (63, 63) -> cell (3, 3) -> (.75, .75);  target (20, 20): miss; concept partner E (48, 44): 1/16, hit

    The radius is alpha * max(bbox w, h) / max(W, H) = 0.25 * 32 / 64 = 1/8.
    SOC per pair: car#1 ABCD 2/4 = 50, car#2 AC 100, bus#1 BD 0 -> categories car 75, bus 0 -> 37.5.
    CC: car#1 A, C, D hit, B miss = 75; car#2 no concept; bus#1 D hit, B miss = 50 -> 62.5.
    """
    monkeypatch.setattr("funcorr.eval.soco_protocol.load_backbone", lambda *a, **k: OneHotCells())
    out = tmp_path / "results"
    code = main(
        [
            "eval",
            "keypoints",
            "--data",
            str(soco_root),
            "--protocol",
            "soco",
            "--pair-type",
            "intra",
            "--soco-size",
            "64",
            "--alpha",
            "0.25",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert (
        "intra SOC PCK@0.25 (SOCO protocol): per_category 37.50, per_image 50.00, per_point 50.00 (3 pairs, 2 categories, 8 points)"
        in printed
    )
    assert (
        "intra CC PCK@0.25 (SOCO protocol): per_category 62.50, per_image 62.50, per_point 66.67 (2 pairs, 2 categories, 6 points)"
        in printed
    )
    record = json.loads(next(out.glob("*.json")).read_text())["results"]
    assert record["results"]["intra"]["SOC"]["categories"] == {"bus": 0.0, "car": 75.0}
    assert [p["radius"] for p in record["per_pair"]] == [0.125] * 3
    assert record["settings"]["effective_image_size"] == 64
    # The protocol fixes features and matching: options that would change them are refused.
    for option in (["--flip"], ["--precision", "int8"]):
        argv = ["eval", "keypoints", "--data", str(soco_root), "--protocol", "soco", *option]
        assert main([*argv, "--out", str(out)]) == 2
        assert f"drop {option[0]}" in capsys.readouterr().err

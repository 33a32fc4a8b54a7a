"""Keypoint benchmarks: readers, SOCO tasks, the protocol pitfalls, and spair-mini with DINOv2."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from synthetic import colour_features

from funcorr.backbones.base import FeatureGrid
from funcorr.eval.keypoint_pairs import KeypointPair
from funcorr.eval.keypoints import (
    ChanceKeypointMethod,
    FeatureKeypointMethod,
    KeypointConfig,
    KeypointResults,
    PairScores,
    cell_centres_holding,
    chance_pck,
    evaluate_keypoints,
    score_pair,
)
from funcorr.eval.soco import SOCOPairs
from funcorr.eval.spair import SPairPairs
from funcorr.images import plan_resize

SHIFT = np.array([6.0, 3.0])  # target pixel = source pixel - SHIFT


def save_world(path: Path, size: tuple[int, int], offset: np.ndarray) -> None:
    """An image whose red/green encode world position (x + offset, y + offset) / 160."""
    width, height = size
    ys, xs = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    rgb = np.stack([(xs + offset[0]) / 160, (ys + offset[1]) / 160, np.full(xs.shape, 0.5)], -1)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)


def colour_method(
    size: int, resize: str = "pad", soft_window: float | None = None
) -> FeatureKeypointMethod:
    return FeatureKeypointMethod(
        "colour", colour_features, FeatureGrid(14, 14), size, resize, soft_window
    )


def keypoint(i: int, name: str, xy, concept: str) -> dict:
    return {
        "id": i,
        "name": name,
        "pos": list(xy),
        "concept_id": {"wheel": 1, "roof": 2, "light": 3}[concept],
        "concept_name": concept,
    }


def make_soco(root: Path, size=(112, 112)) -> Path:
    """A two-pair SOCO tree (intra car->car, cross bus->car); the target is the source moved by SHIFT."""
    save_world(root / "Images/car/car_1.png", size, np.zeros(2))
    save_world(root / "Images/car/car_2.png", size, SHIFT)
    save_world(root / "Images/bus/bus_1.png", size, np.zeros(2))
    src = {"front_wheel": (30, 80), "rear_wheel": (80, 80), "roof": (55, 30), "headlight": (15, 60)}
    concepts = {"front_wheel": "wheel", "rear_wheel": "wheel", "roof": "roof", "headlight": "light"}
    src_kps = [keypoint(i, n, xy, concepts[n]) for i, (n, xy) in enumerate(src.items())]
    trg_kps = [
        keypoint(i, n, tuple(np.array(xy) - SHIFT), concepts[n])
        for i, (n, xy) in enumerate(src.items())
    ]
    for pair_type, src_category in (("intra", "car"), ("cross", "bus")):
        payload = {
            "pair_id": 1,
            "pair_group": "car",
            "category": "car",
            "src_category": src_category,
            "trg_category": "car",
            "src_image": f"{src_category}_1.png",
            "trg_image": "car_2.png",
            "src_imsize": list(size),
            "trg_imsize": list(size),
            "src_bndbox": [5, 20, 100, 95],
            "trg_bndbox": [0, 17, 94, 92],
            "src_keypoints": src_kps,
            "trg_keypoints": trg_kps,
            "semantic_overlap": list(src),
            "concept_matches": [
                {
                    "concept_name": "wheel",
                    "src_keypoints": ["front_wheel", "rear_wheel"],
                    "trg_keypoints": ["front_wheel", "rear_wheel"],
                },
                {"concept_name": "roof", "src_keypoints": ["roof"], "trg_keypoints": ["roof"]},
            ],
        }
        folder = root / "PairAnnotations" / pair_type / "car"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "00001.json").write_text(json.dumps(payload))
    return root


class ConstantContext:
    def __init__(self, xy):
        self.xy = torch.tensor(xy, dtype=torch.float64)

    def transfer(self, points):
        return self.xy.expand(points.shape[0], 2)

    def restricted(self, points, candidates):
        return self.xy.expand(points.shape[0], 2)


class Constant:
    name = "constant"

    def __init__(self, xy):
        self.xy = xy

    def open(self, pair):
        return ConstantContext(self.xy)


def test_soco_reader_and_task_semantics(tmp_path):
    root = make_soco(tmp_path / "SOCOv1")
    intra, cross = SOCOPairs(root, "intra"), SOCOPairs(root, "cross")
    pair = intra[0]
    assert len(intra) == 1 and pair.source.keypoints[0].concept_name == "wheel"
    assert pair.concept_matches[0].target_indices == (0, 1)
    rear = tuple(np.array([80, 80]) - SHIFT)
    scores = score_pair(pair, Constant(rear))
    # Everything predicted on the rear wheel: CC accepts it for both wheels, SOC only for the rear one.
    assert scores.errors["cc"][:2].tolist() == [0.0, 0.0]
    assert (
        scores.errors["soc"][0].item() == pytest.approx(50.0)
        and scores.errors["soc"][1].item() == 0.0
    )
    assert len(scores.errors["cc"]) == 3  # headlight has no concept partner in the target groups
    # SOC-geo only scores points whose true target is a same-concept candidate (wheels, roof).
    assert len(scores.errors["soc_geo"]) == 3
    results = evaluate_keypoints(
        list(intra) + list(cross), Constant(rear), KeypointConfig(alphas=(0.1,)), "soco"
    )
    record = results.to_record()["results"]
    assert {"SOC", "CC", "SOC-geo", "Cross-SOC", "Cross-CC", "Cross-SOC-geo"} <= set(record)
    assert record["CC"]["bbox"]["0.1"]["per_point"] == pytest.approx(2 / 3)
    assert record["SOC"]["bbox"]["0.1"]["per_point"] == pytest.approx(1 / 4)


def test_readers_resolve_prefixed_paths_and_spair71k_layout(tmp_path, spair_mini):
    mini = SPairPairs(spair_mini)
    assert len(mini) == 6 and mini[0].target.bbox == (110.0, 275.0, 227.0, 444.0)
    assert all(p.source.image_path.is_file() for p in mini)
    # A listing whose paths carry a foreign prefix still finds images/<name>.
    root = tmp_path / "spair"
    (root / "images").mkdir(parents=True)
    name = mini[0].source.image_path.name
    shutil.copy(mini[0].source.image_path, root / "images" / name)
    entry = {
        "source_path": f"SPair-71k/JPEGImages/pottedplant/{name}",
        "target_path": name,
        "source_points": [[1, 2]],
        "target_points": [[3, 4]],
        "source_bounding_box": [0, 0, 10, 10],
        "target_bounding_box": [0, 0, 20, 10],
        "category": "pottedplant",
    }
    (root / "pairs.json").write_text(json.dumps([entry]))
    assert SPairPairs(root)[0].source.image_path == root / "images" / name
    # SPair-71k's own layout.
    big = tmp_path / "SPair-71k"
    (big / "JPEGImages/pottedplant").mkdir(parents=True)
    shutil.copy(mini[0].source.image_path, big / "JPEGImages/pottedplant" / name)
    (big / "PairAnnotation/test").mkdir(parents=True)
    annotation = {
        "pair_id": 7,
        "src_imname": name,
        "trg_imname": name,
        "category": "pottedplant",
        "src_kps": [[1, 2], [5, 6]],
        "trg_kps": [[3, 4], [7, 8]],
        "kps_ids": ["3", "9"],
        "src_bndbox": [0, 0, 9, 9],
        "trg_bndbox": [1, 1, 5, 5],
        "mirror": 0,
    }
    (big / "PairAnnotation/test/000007-x:pottedplant.json").write_text(json.dumps(annotation))
    pair = SPairPairs(big)[0]
    assert (
        pair.pair_id == "7"
        and [m.label for m in pair.semantic_matches] == ["3", "9"]
        and pair.concept_matches == ()
    )


class OffsetContext:
    def __init__(self, pair: KeypointPair, offset):
        self.target = pair.target.points() + torch.tensor(offset, dtype=torch.float64)

    def transfer(self, points):
        return self.target

    def restricted(self, points, candidates):
        return self.target


class Offset:
    name = "offset"

    def __init__(self, offset):
        self.offset = offset

    def open(self, pair):
        return OffsetContext(pair, self.offset)


def test_bbox_threshold_is_not_the_image_threshold(tmp_path, spair_mini):
    """Every prediction 20 px off: inside 0.1*image (50 px) but outside 0.1*bbox for the smaller boxes."""
    pairs = SPairPairs(spair_mini)
    results = evaluate_keypoints(
        pairs, Offset((20.0, 0.0)), KeypointConfig(alphas=(0.1,), tasks=("soc",))
    )
    bbox, image = results.pck("soc", 0.1, "bbox"), results.pck("soc", 0.1, "image")
    assert image["per_point"] == 1.0
    expected = [
        float(
            20.0
            <= 0.1 * max(p.target.bbox[2] - p.target.bbox[0], p.target.bbox[3] - p.target.bbox[1])
        )
        for p in pairs
    ]
    assert bbox["per_image"] == pytest.approx(sum(expected) / len(expected))
    assert 0 < bbox["per_image"] < image["per_image"]


def test_per_image_and_per_point_averaging_differ_as_defined():
    pairs = [
        PairScores(
            "a",
            "intra",
            "cat",
            {"soc": torch.tensor([0.0, 0.0, 0.0, 100.0])},
            {"bbox": 100.0, "image": 100.0},
        ),
        PairScores(
            "b", "intra", "dog", {"soc": torch.tensor([100.0])}, {"bbox": 100.0, "image": 100.0}
        ),
    ]
    summary = KeypointResults(
        "m", "x", pairs, KeypointConfig(alphas=(0.1,)), {"cat": "animal", "dog": "animal"}
    ).pck("soc", 0.1, "bbox")
    assert summary["per_point"] == pytest.approx(3 / 5)
    assert summary["per_image"] == pytest.approx((3 / 4 + 0) / 2)
    assert summary["categories"] == {"cat": 0.75, "dog": 0.0} and summary["super_categories"] == {
        "animal": 0.375
    }


@pytest.mark.parametrize("policy", ["resize", "pad"])
def test_non_uniform_resize_maps_points_per_axis(tmp_path, policy):
    """A 128x96 image stretched to 64x64 (x by 1/2, y by 2/3): predictions must come back per axis."""
    root = make_soco(tmp_path / "SOCOv1", size=(128, 96))
    pair = SOCOPairs(root, "intra")[0]
    plan = plan_resize((128, 96), (64, 64), policy)
    if policy == "resize":
        assert plan.scale[0] != plan.scale[1]  # the case is really non-uniform
    scores = score_pair(pair, colour_method(64, policy), ("soc",))
    # One network pixel is 2 original pixels along x, so errors stay within ~2 px (never ~SHIFT or more).
    assert scores.errors["soc"].max().item() < 2.5


def test_soc_geo_predicts_the_centre_of_the_candidate_cell(tmp_path):
    root = make_soco(tmp_path / "SOCOv1")
    pair = SOCOPairs(root, "intra")[0]
    grid = FeatureGrid(14, 14)
    # Cell j spans pixels 14j..14j+13, centre 14j+6.5 -- not the corner 14j.
    assert cell_centres_holding(
        torch.tensor([[20.0, 20.0], [13.0, 0.0], [14.0, 0.0], [20.2, 20.9]]), grid, (112, 112)
    ).tolist() == [[20.5, 20.5], [6.5, 6.5], [20.5, 6.5]]
    scores = score_pair(pair, colour_method(112), ("soc_geo",))
    # Front wheel (24, 77) in the target sits in cell (1, 5), centre (20.5, 76.5): error hypot(3.5, 0.5).
    assert scores.errors["soc_geo"][0].item() == pytest.approx(math.hypot(3.5, 0.5), abs=1e-4)
    # A corner-based reading would predict (14, 70) instead.
    assert math.hypot(24 - 14, 77 - 70) > 3 * scores.errors["soc_geo"][0].item()


def test_soft_argmax_window_refines_within_a_pixel(tmp_path):
    root = make_soco(tmp_path / "SOCOv1")
    pair = SOCOPairs(root, "intra")[0]
    hard = score_pair(pair, colour_method(112), ("soc",)).errors["soc"]
    soft = score_pair(pair, colour_method(112, soft_window=3.0), ("soc",)).errors["soc"]
    assert hard.max().item() <= 1.0 and soft.max().item() <= 1.5
    assert not torch.equal(hard, soft)  # the window did change the predictions


def test_spair_mini_dinov2_pck_above_chance(spair_mini, tmp_path, capsys):
    """The number `funcorr eval keypoints` reports on spair-mini with the default backbone."""
    from funcorr.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "keypoints",
                "--data",
                str(spair_mini),
                "--alpha",
                "0.1",
                "--tasks",
                "soc",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    pck = json.loads((out / "keypoints_spair_dinov2-s14.json").read_text())["results"]["results"][
        "SOC"
    ]["bbox"]["0.1"]
    chance = chance_pck(SPairPairs(spair_mini), alpha=0.1, seeds=range(50))
    with capsys.disabled():
        print(
            f"\nspair-mini dinov2-s14 (224 px, pad) PCK@0.1 bbox: per-image {100 * pck['per_image']:.1f}, per-point {100 * pck['per_point']:.1f} "
            f"({pck['points']} points); chance (random pixel in target bbox, 50 seeds): per-image {100 * chance['per_image']:.1f}, per-point {100 * chance['per_point']:.1f}"
        )
    assert pck["points"] == 43 and pck["pairs"] == 6
    assert pck["per_image"] > chance["per_image"] + 0.1
    assert pck["per_point"] > chance["per_point"] + 0.1


def test_chance_keypoints_stay_in_the_target_box(spair_mini):
    pairs = SPairPairs(spair_mini)
    for pair in pairs:
        context = ChanceKeypointMethod(1).open(pair)
        moved = context.transfer(pair.source.points())
        left, top, right, bottom = pair.target.bbox
        assert (
            (moved[:, 0] >= left)
            & (moved[:, 0] <= right)
            & (moved[:, 1] >= top)
            & (moved[:, 1] <= bottom)
        ).all()

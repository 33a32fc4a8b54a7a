"""Dense functional benchmark runner on synthetic pairs with known correspondences."""

from __future__ import annotations

import json
import sys
import types

import pytest
import torch
import torch.nn.functional as F
from synthetic import colour_features

from funcorr.eval.functional import (
    ChanceMatcher,
    FunctionalConfig,
    FunctionalMethod,
    GroundTruthParts,
    NearestNeighbourMatcher,
    discovery_regions,
    evaluate_direction,
    evaluate_functional,
    label_transfer_region,
    make_views,
)
from funcorr.model.matcher import Prepared
from funcorr.model.matching import ImageFeatures, feature_map_features

SIZE = 40
SHIFT = torch.tensor([4.0, 2.0])  # image2 pixel = image1 pixel - SHIFT


def world_image(offset: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """(3, H, W) whose red/green encode world position (x + offset, y + offset): a "texture"
    with a unique colour per place, so a colour-based matcher is exactly right."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
    return torch.stack([(xs + offset[0]) / 64, (ys + offset[1]) / 64, torch.full_like(xs, 0.5)])




def shifted_pair(pair_id: str = "p0", across: bool = False, function: str = "pour-with", dense: bool = False) -> dict:
    """image2 is image1 moved by SHIFT; square objects; the part is the object's left third.
    Ground truth: a 3 px grid of points, or every object pixel when ``dense``."""
    mask1 = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask1[6:34, 6:34] = True
    mask2 = torch.zeros_like(mask1)
    mask2[4:32, 2:30] = True
    part1 = mask1.clone()
    part1[:, 16:] = False
    part2 = mask2.clone()
    part2[:, 12:] = False
    ys, xs = torch.meshgrid(torch.arange(8.0, 32.0, 3), torch.arange(8.0, 32.0, 3), indexing="ij")
    src = torch.stack([xs, ys], -1).reshape(-1, 2)
    if dense:
        src = torch.nonzero(mask1).flip(-1).float()
    return {
        "image1": world_image(torch.zeros(2)),
        "image2": world_image(SHIFT),
        "mask1": mask1,
        "mask2": mask2,
        "part_mask1": part1,
        "part_mask2": part2,
        "function": function,
        "correspondences": torch.stack([src, src - SHIFT], 1),
        "category1": "mug",
        "category2": "kettle" if across else "mug",
        "across_category": across,
        "pair_id": pair_id,
    }


CONFIG = FunctionalConfig(image_size=SIZE, thresholds_px=(23, 10))


def test_perfect_matcher_scores_pck_one_and_ap_one():
    method = FunctionalMethod("perfect", NearestNeighbourMatcher(), colour_features)
    # Dense ground truth: every discovered match is then near a GT pair, so precision is 1 throughout.
    results = evaluate_functional([shifted_pair("a", dense=True), shifted_pair("b", across=True, dense=True)], method, CONFIG)
    summary = results.summary("all")
    assert summary["pck_10"] == 1.0 and summary["pck_23"] == 1.0
    assert summary["norm_dist"] == pytest.approx(0.0, abs=1e-6)
    assert summary["ap_10"] == pytest.approx(1.0) and summary["best_f1_10"] == pytest.approx(1.0)
    assert results.summary("within")["pair_directions"] == 2 and results.summary("across")["pair_directions"] == 2


class ConstantMatcher:
    """Sends every point to one target pixel."""

    def __init__(self, xy):
        self.xy = torch.tensor(xy, dtype=torch.float32)

    def transfer(self, src, tgt, points, tgt_region):
        return self.xy.expand(points.shape[0], 2)

    def rank(self, src, tgt, src_region, tgt_region):
        xy = torch.nonzero(src_region).flip(-1).float()
        return xy, self.xy.expand(xy.shape[0], 2)


def test_constant_matcher_pck_is_share_of_points_near_that_pixel():
    item = shifted_pair()
    method = FunctionalMethod("constant", ConstantMatcher([10.0, 10.0]))
    view1, view2, _ = make_views(item, method, CONFIG)
    gt_src, gt_tgt = item["correspondences"][:, 0], item["correspondences"][:, 1]
    result = evaluate_direction(view1, view2, gt_src, gt_tgt, method.matcher, CONFIG)
    for k in (10, 23):
        scaled = k * SIZE / 224  # thresholds are given at 224 px
        expected = ((gt_tgt - torch.tensor([10.0, 10.0])).norm(dim=-1) <= scaled).float().mean().item()
        assert result.pck(k) == pytest.approx(expected)
    assert 0 < result.pck(23) < 1  # the case is not degenerate


def test_chance_is_seeded_and_stays_inside_the_region():
    item = shifted_pair()
    method = FunctionalMethod("chance", ChanceMatcher(seed=3))
    view1, view2, _ = make_views(item, method, CONFIG)
    moved = method.matcher.transfer(view1, view2, torch.zeros(500, 2), view2.object_mask)
    assert view2.object_mask[moved[:, 1].long(), moved[:, 0].long()].all()
    again = ChanceMatcher(seed=3).transfer(view1, view2, torch.zeros(500, 2), view2.object_mask)
    assert torch.equal(moved, again)
    src_xy, tgt_xy = method.matcher.rank(view1, view2, view1.object_mask, view2.object_mask)
    assert src_xy.shape[0] == int(view1.object_mask.sum()) == tgt_xy.shape[0]
    first = evaluate_functional([item], FunctionalMethod("chance", ChanceMatcher(seed=3)), CONFIG).summary()
    second = evaluate_functional([item], FunctionalMethod("chance", ChanceMatcher(seed=3)), CONFIG).summary()
    assert first == second and first["pck_23"] < 1


def test_part_masks_restrict_transfer_and_split_discovery():
    item = shifted_pair()
    method = FunctionalMethod("parts", NearestNeighbourMatcher(), colour_features, GroundTruthParts())
    view1, view2, iou = make_views(item, method, CONFIG)
    assert iou is None  # ground truth is not scored against itself
    region = label_transfer_region(view1, view2, 16)
    assert torch.equal(region, item["part_mask2"] & item["mask2"])
    regions = discovery_regions(view1, view2, 16)
    assert len(regions) == 2 and not (regions[0][0] & regions[1][0]).any()
    # Part pixels are ranked before the rest.
    ranked = [method.matcher.rank(view1, view2, s, t) for s, t in regions]
    first_block = ranked[0][0].long()
    assert view1.part_mask[first_block[:, 1], first_block[:, 0]].all()
    # A part smaller than 16 px falls back to the whole object.
    tiny = dict(item, part_mask2=torch.zeros_like(item["part_mask2"]))
    tiny["part_mask2"][10, 5] = True
    t1, t2, _ = make_views(tiny, method, CONFIG)
    assert torch.equal(label_transfer_region(t1, t2, 16), t2.object_mask)
    assert len(discovery_regions(t1, t2, 16)) == 1


class HalfParts:
    """A 'predictor' that marks the top half of the object: its IoU with the GT part is known."""

    is_ground_truth = False

    def __call__(self, item, index):
        mask = item[f"mask{index}"].clone()
        mask[SIZE // 2 :] = False
        return mask


def test_predicted_part_masks_report_iou():
    item = shifted_pair()
    results = evaluate_functional([item], FunctionalMethod("half", NearestNeighbourMatcher(), colour_features, HalfParts()), CONFIG)
    pred1 = HalfParts()(item, 1)
    expected = ((pred1 & item["part_mask1"]).sum() / (pred1 | item["part_mask1"]).sum()).item()
    assert results.pairs[0].part_iou[0] == pytest.approx(expected)
    assert 0 < results.summary()["part_iou"] < 1


def test_real_backbone_on_shifted_texture(dinov2_s14):
    """DINOv2 features on a textured 224 px image and its copy moved by 14 px."""
    gen = torch.Generator().manual_seed(0)
    base = F.interpolate(torch.rand(1, 3, 32, 32, generator=gen), size=(252, 252), mode="bilinear", align_corners=False)[0]
    image1, image2 = base[:, :224, :224], base[:, 14:238, 28:252]  # image2 pixel = image1 pixel - (28, 14)
    mask = torch.zeros(224, 224, dtype=torch.bool)
    mask[60:150, 60:150] = True
    ys, xs = torch.meshgrid(torch.arange(70.0, 140.0, 10), torch.arange(70.0, 140.0, 10), indexing="ij")
    src = torch.stack([xs, ys], -1).reshape(-1, 2)
    shift = torch.tensor([28.0, 14.0])
    item = {
        "image1": image1, "image2": image2, "mask1": mask, "mask2": mask.roll((-14, -28), (0, 1)),
        "function": "cut-with", "correspondences": torch.stack([src, src - shift], 1),
        "across_category": False, "pair_id": "texture",
    }

    def features(images: list[Prepared], function: str) -> list[ImageFeatures]:
        with torch.no_grad():
            blocks = dinov2_s14(torch.stack([p.rgb for p in images]))
        return [feature_map_features(b.mean(0), dinov2_s14.grid, (224, 224), p.mask) for b, p in zip(blocks, images)]

    config = FunctionalConfig(thresholds_px=(23, 10))
    real = evaluate_functional([item], FunctionalMethod("dinov2-s14", NearestNeighbourMatcher(), features), config).summary()
    chance = evaluate_functional([item], FunctionalMethod("chance", ChanceMatcher(0)), config).summary()
    print(f"\nshifted texture: dinov2-s14 PCK@23 {real['pck_23']:.2f} AP@23 {real['ap_23']:.2f}; chance PCK@23 {chance['pck_23']:.2f} AP@23 {chance['ap_23']:.2f}")
    assert real["pck_23"] > 0.8 > chance["pck_23"]
    assert real["ap_23"] > chance["ap_23"] + 0.2


def test_cli_functional_writes_tables_json_and_plots(tmp_path, monkeypatch):
    pairs = [shifted_pair("a"), shifted_pair("b", across=True), shifted_pair("c", function="cut-with")]
    fake = types.ModuleType("funcorr.data.dataset")

    class EvalPairs(list):
        def __init__(self, root, split="test"):
            super().__init__(pairs)

    fake.EvalPairs = EvalPairs
    monkeypatch.setitem(sys.modules, "funcorr.data.dataset", fake)
    from funcorr.cli import main

    data = tmp_path / "bench"
    data.mkdir()
    out = tmp_path / "out"
    assert main(["eval", "functional", "--data", str(data), "--method", "chance", "--parts", "gt", "--size", str(SIZE), "--out", str(out)]) == 0
    document = json.loads((out / "functional_chance+gt-parts.json").read_text())
    assert document["kind"] == "functional"
    assert {"funcorr_version", "torch_version", "created_at"} <= set(document["environment"])
    results = document["results"]
    assert results["summary"]["within"]["pair_directions"] == 4 and results["summary"]["across"]["pair_directions"] == 2
    assert set(results["by_function"]) == {"pour-with", "cut-with"}
    assert len(results["pr_curves"]["all"]["23"]["precision"]) == 100
    assert len(results["per_direction"]) == 6
    assert (out / "functional_chance+gt-parts_pr.png").stat().st_size > 1000
    table = (out / "functional_chance+gt-parts.md").read_text()
    assert "PCK@23" in table and "| chance+gt-parts | across |" in table
    assert (out / "functional_chance+gt-parts.csv").read_text().count("\n") == 4  # header + 3 splits
    # A missing benchmark folder is a user error (exit 2), not a traceback.
    assert main(["eval", "functional", "--data", str(tmp_path / "nope"), "--method", "chance", "--out", str(out)]) == 2


def test_pair_without_ground_truth_is_left_out_of_the_means():
    method = FunctionalMethod("perfect", NearestNeighbourMatcher(), colour_features)
    empty = dict(shifted_pair("empty"), correspondences=torch.zeros(0, 2, 2))
    alone = evaluate_functional([shifted_pair("b")], method, CONFIG).summary()
    mixed = evaluate_functional([empty, shifted_pair("b")], method, CONFIG).summary()
    for key in ("pck_10", "ap_23", "best_f1_10", "norm_dist"):
        assert mixed[key] == pytest.approx(alone[key])  # NaN for the empty pair, not a zero

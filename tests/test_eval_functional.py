"""Dense functional benchmark runner on synthetic pairs with known correspondences."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from synthetic import colour_features

from funcorr.eval.functional import (
    FunctionalConfig,
    discovery_regions,
    evaluate_direction,
    evaluate_functional,
    label_transfer_region,
    make_views,
)
from funcorr.eval.functional_methods import ChanceMatcher, FunctionalMethod, NearestNeighbourMatcher
from funcorr.eval.part_masks import GroundTruthParts
from funcorr.model.matcher import Prepared
from funcorr.model.matching import ImageFeatures, feature_map_features

SIZE = 40
SHIFT = torch.tensor([4.0, 2.0])  # image2 pixel = image1 pixel - SHIFT


def world_image(offset: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """(3, H, W) whose red/green encode world position (x + offset, y + offset): a "texture"
    with a unique colour per place, so a colour-based matcher is exactly right."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([(xs + offset[0]) / 64, (ys + offset[1]) / 64, torch.full_like(xs, 0.5)])


def shifted_pair(
    pair_id: str = "p0", across: bool = False, function: str = "pour-with", dense: bool = False
) -> dict:
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
    results = evaluate_functional(
        [shifted_pair("a", dense=True), shifted_pair("b", across=True, dense=True)], method, CONFIG
    )
    summary = results.summary("all")
    assert summary["pck_10"] == 1.0 and summary["pck_23"] == 1.0
    assert summary["norm_dist"] == pytest.approx(0.0, abs=1e-6)
    assert summary["ap_10"] == pytest.approx(1.0) and summary["best_f1_10"] == pytest.approx(1.0)
    assert (
        results.summary("within")["pair_directions"] == 2
        and results.summary("across")["pair_directions"] == 2
    )


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
        expected = (
            ((gt_tgt - torch.tensor([10.0, 10.0])).norm(dim=-1) <= scaled).float().mean().item()
        )
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
    first = evaluate_functional(
        [item], FunctionalMethod("chance", ChanceMatcher(seed=3)), CONFIG
    ).summary()
    second = evaluate_functional(
        [item], FunctionalMethod("chance", ChanceMatcher(seed=3)), CONFIG
    ).summary()
    assert first == second and first["pck_23"] < 1


def test_part_masks_restrict_transfer_and_split_discovery():
    item = shifted_pair()
    method = FunctionalMethod(
        "parts", NearestNeighbourMatcher(), colour_features, GroundTruthParts()
    )
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
    results = evaluate_functional(
        [item],
        FunctionalMethod("half", NearestNeighbourMatcher(), colour_features, HalfParts()),
        CONFIG,
    )
    pred1 = HalfParts()(item, 1)
    expected = ((pred1 & item["part_mask1"]).sum() / (pred1 | item["part_mask1"]).sum()).item()
    assert results.pairs[0].part_iou[0] == pytest.approx(expected)
    assert 0 < results.summary()["part_iou"] < 1


def test_real_backbone_on_shifted_texture(dinov2_s14):
    """DINOv2 features on a textured 224 px image and its copy moved by 14 px."""
    gen = torch.Generator().manual_seed(0)
    base = F.interpolate(
        torch.rand(1, 3, 32, 32, generator=gen),
        size=(252, 252),
        mode="bilinear",
        align_corners=False,
    )[0]
    image1, image2 = (
        base[:, :224, :224],
        base[:, 14:238, 28:252],
    )  # image2 pixel = image1 pixel - (28, 14)
    mask = torch.zeros(224, 224, dtype=torch.bool)
    mask[60:150, 60:150] = True
    ys, xs = torch.meshgrid(
        torch.arange(70.0, 140.0, 10), torch.arange(70.0, 140.0, 10), indexing="ij"
    )
    src = torch.stack([xs, ys], -1).reshape(-1, 2)
    shift = torch.tensor([28.0, 14.0])
    item = {
        "image1": image1,
        "image2": image2,
        "mask1": mask,
        "mask2": mask.roll((-14, -28), (0, 1)),
        "function": "cut-with",
        "correspondences": torch.stack([src, src - shift], 1),
        "across_category": False,
        "pair_id": "texture",
    }

    def features(images: list[Prepared], function: str) -> list[ImageFeatures]:
        with torch.no_grad():
            blocks = dinov2_s14(torch.stack([p.rgb for p in images]))
        return [
            feature_map_features(b.mean(0), dinov2_s14.grid, (224, 224), p.mask)
            for b, p in zip(blocks, images)
        ]

    config = FunctionalConfig(thresholds_px=(23, 10))
    real = evaluate_functional(
        [item], FunctionalMethod("dinov2-s14", NearestNeighbourMatcher(), features), config
    ).summary()
    chance = evaluate_functional(
        [item], FunctionalMethod("chance", ChanceMatcher(0)), config
    ).summary()
    print(
        f"\nshifted texture: dinov2-s14 PCK@23 {real['pck_23']:.2f} AP@23 {real['ap_23']:.2f}; chance PCK@23 {chance['pck_23']:.2f} AP@23 {chance['ap_23']:.2f}"
    )
    assert real["pck_23"] > 0.8 > chance["pck_23"]
    assert real["ap_23"] > chance["ap_23"] + 0.2


def _patched_benchmark(monkeypatch, tmp_path, pairs):
    """A benchmark folder whose reader (funcorr.data.readers.EvalPairs) serves ``pairs``."""
    from funcorr.data import readers

    class EvalPairs(list):
        def __init__(self, root, split="test"):
            super().__init__(pairs)

    monkeypatch.setattr(readers, "EvalPairs", EvalPairs)
    data = tmp_path / "bench"
    data.mkdir()
    return data


def test_cli_functional_writes_tables_json_and_plots(tmp_path, monkeypatch):
    pairs = [
        shifted_pair("a"),
        shifted_pair("b", across=True),
        shifted_pair("c", function="cut-with"),
    ]
    data = _patched_benchmark(monkeypatch, tmp_path, pairs)
    from funcorr.cli import main

    out = tmp_path / "out"
    assert (
        main(
            [
                "eval",
                "functional",
                "--data",
                str(data),
                "--method",
                "chance",
                "--parts",
                "gt",
                "--size",
                str(SIZE),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    document = json.loads((out / "functional_chance+gt-parts.json").read_text())
    assert document["kind"] == "functional"
    assert {"funcorr_version", "torch_version", "created_at"} <= set(document["environment"])
    results = document["results"]
    assert (
        results["summary"]["within"]["pair_directions"] == 4
        and results["summary"]["across"]["pair_directions"] == 2
    )
    assert set(results["by_function"]) == {"pour-with", "cut-with"}
    assert len(results["pr_curves"]["all"]["23"]["precision"]) == 100
    assert len(results["per_direction"]) == 6
    assert (out / "functional_chance+gt-parts_pr.png").stat().st_size > 1000
    table = (out / "functional_chance+gt-parts.md").read_text()
    assert "PCK@23" in table and "| chance+gt-parts | across |" in table
    assert (out / "functional_chance+gt-parts.csv").read_text().count(
        "\n"
    ) == 4  # header + 3 splits
    # A missing benchmark folder is a user error (exit 2), not a traceback.
    assert (
        main(
            [
                "eval",
                "functional",
                "--data",
                str(tmp_path / "nope"),
                "--method",
                "chance",
                "--out",
                str(out),
            ]
        )
        == 2
    )


def test_pair_without_ground_truth_is_left_out_of_the_means():
    method = FunctionalMethod("perfect", NearestNeighbourMatcher(), colour_features)
    empty = dict(shifted_pair("empty"), correspondences=torch.zeros(0, 2, 2))
    alone = evaluate_functional([shifted_pair("b")], method, CONFIG).summary()
    mixed = evaluate_functional([empty, shifted_pair("b")], method, CONFIG).summary()
    for key in ("pck_10", "ap_23", "best_f1_10", "norm_dist"):
        assert mixed[key] == pytest.approx(alone[key])  # NaN for the empty pair, not a zero


def _varied_pairs() -> list[dict]:
    """Six pairs over two functions and both splits, two of them sharing their images."""
    pairs = [
        shifted_pair(f"p{i}", across=i % 2 == 1, function=("pour-with", "cut-with")[i % 3 == 0])
        for i in range(6)
    ]
    for i, item in enumerate(pairs):  # different texture per pair: different discovery curves
        item["image1"] = item["image1"] * (1 - 0.05 * i)
        item["image2"] = item["image2"] * (1 - 0.05 * i)
    pairs[5]["image1"], pairs[5]["image2"] = pairs[4]["image1"], pairs[4]["image2"]
    return pairs


def test_shards_merge_into_the_record_of_the_whole_run():
    from funcorr.eval.functional import merge_records

    method = FunctionalMethod(
        "parts", NearestNeighbourMatcher(), colour_features, GroundTruthParts()
    )
    pairs = _varied_pairs()
    whole = evaluate_functional(pairs, method, CONFIG).to_record()
    shards = [
        evaluate_functional(
            pairs, method, FunctionalConfig(image_size=SIZE, thresholds_px=(23, 10), shard=(i, 4))
        ).to_record()
        for i in (2, 0, 3, 1)
    ]
    assert [len(s["per_direction"]) for s in shards] == [
        2,
        2,
        4,
        4,
    ]  # 6 pairs in slices of 1, 2, 1, 2
    merged = json.loads(json.dumps(merge_records(shards)))  # through JSON, as the files are
    expected = json.loads(json.dumps(whole))
    for key in ("summary", "by_function", "per_direction", "part_iou_per_pair"):
        assert merged[key] == expected[key], key
    for split, by_threshold in expected["pr_curves"].items():
        for k, curve in by_threshold.items():
            assert merged["pr_curves"][split][k]["precision"] == pytest.approx(
                curve["precision"], abs=1e-12
            )
            assert merged["pr_curves"][split][k]["recall"] == pytest.approx(
                curve["recall"], abs=1e-12
            )
    with pytest.raises(Exception, match="shards"):
        merge_records(shards[:3])


def test_report_merges_shard_files_into_one_run(tmp_path):
    from funcorr.eval.report import render_report, result_document, write_outputs

    method = FunctionalMethod("perfect", NearestNeighbourMatcher(), colour_features)
    pairs = _varied_pairs()
    results = tmp_path / "results"
    for i in range(3):
        config = FunctionalConfig(image_size=SIZE, thresholds_px=(23, 10), shard=(i, 3))
        record = evaluate_functional(pairs, method, config).to_record()
        write_outputs(
            result_document(
                "functional",
                {"data": "synthetic", "shard": f"{i}/3", "protocol": {"shard": [i, 3]}},
                record,
            ),
            results,
            f"functional_perfect_shard-{i}-of-3",
        )
    report = render_report([results], tmp_path / "report")
    text = report.read_text()
    assert text.count("| perfect | all | 6 |") == 1  # one run of 6 pairs, not three partial rows
    merged = json.loads((tmp_path / "report" / "functional_perfect_merged.json").read_text())
    assert (
        len(merged["results"]["per_direction"]) == 12 and len(merged["config"]["merged_from"]) == 3
    )
    # Reporting again over both folders does not count the run twice.
    again = render_report([results, tmp_path / "report"], tmp_path / "report").read_text()
    assert again.count("| perfect | all | 6 |") == 1


def test_shard_option_is_checked():
    from funcorr.eval.functional import parse_shard, shard_range
    from funcorr.images import InputError

    assert parse_shard("1/4") == (1, 4)
    assert [list(shard_range(10, (i, 3))) for i in range(3)] == [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]
    for bad in ("4/4", "-1/2", "a/b", "3"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_paired_rankings_equal_one_direction_at_a_time():
    from funcorr.eval.functional import pair_rankings

    method = FunctionalMethod(
        "parts", NearestNeighbourMatcher(), colour_features, GroundTruthParts()
    )
    view1, view2, _ = make_views(shifted_pair(), method, CONFIG)
    forward, backward = pair_rankings(view1, view2, method.matcher, CONFIG)
    separate = [
        method.matcher.rank(view1, view2, s, t)
        for s, t in discovery_regions(view1, view2, CONFIG.min_part_pixels)
    ]
    reverse = [
        method.matcher.rank(view2, view1, s, t)
        for s, t in discovery_regions(view2, view1, CONFIG.min_part_pixels)
    ]
    assert len(forward) == len(separate) == 2  # part -> part, rest -> rest
    for got, want in zip(forward + backward, separate + reverse, strict=True):
        assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


class CountingMatcher:
    """Stands in for funcorr.model.matcher.Matcher: colour features, counting backbone passes."""

    def __init__(self, head: bool = False):
        from types import SimpleNamespace

        self.config = SimpleNamespace(image_size=SIZE, resize="pad")
        self.head = object() if head else None
        self.encoded: list[int] = []
        self.function = None

    def use_function(self, function):
        self.function = function

    def encode(self, images):
        self.encoded.append(len(images))
        return images

    def features(self, images, encoded=None):
        return colour_features(images)

    def predicted_part_mask(self, images, encoded=None):
        return [p.mask for p in images]


@pytest.mark.parametrize("head", [False, True])
def test_each_image_is_encoded_once_across_pairs(head):
    from funcorr.eval.functional_methods import MatcherFeatures

    pairs = _varied_pairs()  # 12 image uses; pairs 4 and 5 show the same two images
    features = MatcherFeatures(CountingMatcher(head=head))
    results = evaluate_functional(
        pairs, FunctionalMethod("cached", NearestNeighbourMatcher(), features), CONFIG
    )
    fresh = evaluate_functional(
        pairs, FunctionalMethod("fresh", NearestNeighbourMatcher(), colour_features), CONFIG
    )
    assert features.computed == 10 and sum(features.matcher.encoded) == 10
    assert results.to_record()["per_direction"] == fresh.to_record()["per_direction"]
    # A trained head's features depend on the function: the same image under another function is new.
    prepared = make_views(
        pairs[4], FunctionalMethod("x", NearestNeighbourMatcher(), colour_features), CONFIG
    )[0].prepared
    features([prepared], "hang-onto")
    assert features.computed == (11 if head else 10)


def test_the_shipped_model_discovers_within_its_predicted_parts_by_default(tmp_path, monkeypatch):
    """funcorr-s14 records ``parts: head``: eval functional restricts discovery to the parts its
    mask head predicts unless --parts says otherwise; raw features never do. An int8 backbone
    is named in the label."""
    pairs = [shifted_pair("a"), shifted_pair("b", across=True)]
    data = _patched_benchmark(monkeypatch, tmp_path, pairs)
    from funcorr.cli import main

    labels = {}
    options = ([], ["--parts", "none"], ["--model", "none"], ["--precision", "int8"])
    for extra in options:
        out = tmp_path / f"out{len(labels)}"
        command = f"eval functional --data {data} --size 56 --out {out}".split()
        assert main(command + extra) == 0
        (result,) = out.glob("functional_*.json")
        labels[" ".join(extra)] = json.loads(result.read_text())["config"]["method_label"]
    assert labels == {
        "": "model:funcorr-s14+head-parts",
        "--parts none": "model:funcorr-s14",
        "--model none": "dinov2-s14",
        "--precision int8": "model:funcorr-s14+int8+head-parts",  # approximate: named apart
    }

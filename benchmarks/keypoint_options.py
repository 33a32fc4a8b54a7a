"""Keypoint PCK@0.1 on real photos for each matching option, against the default in the same run.

    python benchmarks/keypoint_options.py [--spair tests/data/spair-mini] [--funkpoint ../shared/data/funkpoint-dev]

Options measured (raw ``dinov2-s14`` features, 224 px, pad): the object mask (``alpha``, the
default, which on these unsegmented photos is the whole image; ``saliency``; ``auto``), flip-aware
matching (``--flip``) and the soft-argmax window (``--soft-window`` 7, 14, 28 network px).

* spair-mini: SOC PCK@0.1 of max(target bbox w, h), per image and per point, exactly what
  ``funcorr eval keypoints --data tests/data/spair-mini --alpha 0.1 --tasks soc`` computes;
* funkpoint-dev: every reference's points to every test of its action, PCK@0.1 of the image side,
  pooled over points, what ``funcorr eval keypoints --data ../shared/data/funkpoint-dev`` computes.

The backbone runs once per image (and once per mirrored target for ``--flip``); the saliency
map comes from that same pass, so every variant sees identical features and differences are
the options' alone. Each line ends with the change against the default row.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from funcorr.eval.funkpoint import PointScore, normalised_error, read_funkpoint, summarise
from funcorr.eval.keypoints import FeatureKeypointMethod, KeypointConfig, evaluate_keypoints
from funcorr.eval.spair import SPairPairs
from funcorr.images import load_image
from funcorr.model.flip import choose_orientation, mirrored_prepared, unmirror
from funcorr.model.matcher import Matcher, MatcherConfig, Prepared, resolve_object_mask
from funcorr.model.matching import ImageFeatures, feature_map_features, transfer_points

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    label: str
    object_mask: str = "alpha"
    flip: bool = False
    soft_window: float | None = None


VARIANTS = (
    Variant("default (alpha mask = whole photo)"),
    Variant("--object-mask saliency", object_mask="saliency"),
    Variant("--object-mask auto", object_mask="auto"),
    Variant("--flip", flip=True),
    Variant("--object-mask saliency --flip", object_mask="saliency", flip=True),
    Variant("--soft-window 7", soft_window=7.0),
    Variant("--soft-window 14", soft_window=14.0),
    Variant("--soft-window 28", soft_window=28.0),
    Variant("--object-mask saliency --soft-window 14", object_mask="saliency", soft_window=14.0),
)


class CachedFeatures:
    """Block features and the saliency map of each prepared image, computed once (by content)."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.store: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def _encoded(self, prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = hashlib.sha1(prepared.rgb.numpy().tobytes()).hexdigest()
        if key not in self.store:
            with torch.no_grad():
                encoding = self.matcher.backbone.encode(
                    prepared.rgb[None].to(self.matcher.device), saliency=True
                )
            self.store[key] = (
                encoding.blocks[0].mean(dim=0),
                None if encoding.saliency is None else encoding.saliency[0],
            )
        return self.store[key]

    def function(self, policy: str) -> Callable[[list[Prepared]], list[ImageFeatures]]:
        size = (self.matcher.config.image_size,) * 2

        def features(images: list[Prepared]) -> list[ImageFeatures]:
            out = []
            for prepared in images:
                fmap, saliency = self._encoded(prepared)
                mask, _ = resolve_object_mask(prepared, policy, saliency)  # type: ignore[arg-type]
                out.append(feature_map_features(fmap, self.matcher.backbone.grid, size, mask))
            return out

        return features


def spair_pck(root: Path, cache: CachedFeatures, variant: Variant) -> tuple[float, float]:
    grid = cache.matcher.backbone.grid
    method = FeatureKeypointMethod(
        variant.label,
        cache.function(variant.object_mask),
        grid,
        224,
        "pad",
        variant.soft_window,
        flip=variant.flip,
    )
    results = evaluate_keypoints(
        SPairPairs(root), method, KeypointConfig(alphas=(0.1,), tasks=("soc",))
    )
    pck = results.pck("soc", 0.1, "bbox")
    return pck["per_image"], pck["per_point"]


def funkpoint_pck(root: Path, cache: CachedFeatures, variant: Variant) -> float:
    features = cache.function(variant.object_mask)
    scores: list[PointScore] = []
    for action in read_funkpoint(root):
        images = action.references + action.tests
        loaded = {image: load_image(image.path) for image in images}
        prepared = {image: cache.matcher.prepare(loaded[image]) for image in images}
        feats = dict(zip(images, features([prepared[i] for i in images])))
        mirrored = (
            dict(
                zip(action.tests, features([mirrored_prepared(prepared[t]) for t in action.tests]))
            )
            if variant.flip
            else {}
        )
        for reference in action.references:
            points = prepared[reference].plan.to_net(reference.pixel_points(loaded[reference].size))
            for test in action.tests:
                target = feats[test]
                if variant.flip:
                    target, _ = choose_orientation(
                        feats[reference], target, unmirror(mirrored[test], target.mask)
                    )
                moved = transfer_points(
                    feats[reference], target, points, soft_window=variant.soft_window
                )
                size = loaded[test].size
                errors = normalised_error(
                    prepared[test].plan.to_orig(moved.points.cpu()), test.pixel_points(size), size
                )
                scores += [
                    PointScore(
                        action.name, reference.path.name, test.path.name, test.category, k, float(e)
                    )
                    for k, e in enumerate(errors)
                ]
    return summarise(scores, 0.1)["overall"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spair", type=Path, default=ROOT / "tests" / "data" / "spair-mini")
    parser.add_argument(
        "--funkpoint", type=Path, default=ROOT.parent / "shared" / "data" / "funkpoint-dev"
    )
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    cache = CachedFeatures(Matcher(MatcherConfig(device=args.device)))
    rows = []
    for variant in tqdm(VARIANTS, desc="variants", unit="variant"):
        rows.append(
            (
                variant.label,
                *spair_pck(args.spair, cache, variant),
                funkpoint_pck(args.funkpoint, cache, variant),
            )
        )
    base = rows[0]
    print("| option | spair-mini per image | per point | funkpoint-dev |")
    print("|---|---|---|---|")
    for label, image, point, funk in rows:
        delta = "" if label == base[0] else f" ({100 * (funk - base[3]):+.1f})"
        print(
            f"| {label} | {100 * image:.1f} ({100 * (image - base[1]):+.1f}) | {100 * point:.1f} ({100 * (point - base[2]):+.1f}) | {100 * funk:.1f}{delta} |"
        )


if __name__ == "__main__":
    main()

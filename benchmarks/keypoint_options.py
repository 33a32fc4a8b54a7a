"""Keypoint PCK@0.1 on real photos for each matching option, against the default in the same run.

    python benchmarks/keypoint_options.py [--spair tests/data/spair-mini] [--funkpoint ../shared/data/funkpoint-dev]
    python benchmarks/keypoint_options.py --model funcorr-s14     # the shipped functional model

Options measured (224 px, pad): the object mask (``alpha``, the raw features' default, which on
these unsegmented photos is the whole image; ``saliency``; ``auto``), flip-aware matching
(``--flip``) and the soft-argmax window (``--soft-window`` 7, 14, 28 network px); with
``--model``, also the raw-feature blend (``--raw-weight`` 0 = the head alone, 1 = raw features),
each varied from the model's own recorded defaults (its soft window included: 0 turns it off). A model is conditioned on the function of each
FunKPoint action; SPair has no functions, so its column is left empty for a model.

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

from funcorr.allocator import keep_freed_memory
from funcorr.eval.funkpoint import (
    PointScore,
    function_for_action,
    normalised_error,
    read_funkpoint,
    summarise,
)
from funcorr.eval.keypoints import FeatureKeypointMethod, KeypointConfig, evaluate_keypoints
from funcorr.eval.spair import SPairPairs
from funcorr.images import load_image
from funcorr.model.flip import choose_orientation, mirrored_prepared, unmirror
from funcorr.model.matcher import Encoded, Matcher, MatcherConfig, Prepared, resolve_object_mask
from funcorr.model.matching import ImageFeatures, transfer_points
from funcorr.model.zoo import resolve_model

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Variant:
    label: str
    object_mask: str = "alpha"
    flip: bool = False
    soft_window: float | None = None  # None: the matcher's own (a model's record; raw: off); 0: off
    raw_weight: float | None = None  # None: the model's own


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

MODEL_VARIANTS = (
    Variant(
        "default (auto mask = saliency on photos, the model's raw weight and soft window)",
        object_mask="auto",
    ),
    Variant("--object-mask alpha (whole photo)"),
    Variant("--raw-weight 0 (the head alone)", object_mask="auto", raw_weight=0.0),
    Variant("--raw-weight 0.25", object_mask="auto", raw_weight=0.25),
    Variant("--raw-weight 0.75", object_mask="auto", raw_weight=0.75),
    Variant("--raw-weight 1 (raw features)", object_mask="auto", raw_weight=1.0),
    Variant("--flip", object_mask="auto", flip=True),
    Variant("--soft-window 0 (plain nearest neighbour)", object_mask="auto", soft_window=0.0),
    Variant("--soft-window 14", object_mask="auto", soft_window=14.0),
)


class CachedFeatures:
    """Block features and the saliency map of each prepared image, computed once (by content);
    features for a policy and variant come from the matcher (head and blend included)."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.default_raw_weight = matcher.config.raw_weight
        self.default_soft_window = matcher.config.soft_window
        self.store: dict[str, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def soft_window(self, variant: Variant) -> float | None:
        """The variant's soft-argmax window in px, None when off."""
        chosen = self.default_soft_window if variant.soft_window is None else variant.soft_window
        return chosen or None

    def _encoded(self, prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor | None]:
        key = hashlib.sha1(prepared.rgb.numpy().tobytes()).hexdigest()
        if key not in self.store:
            with torch.no_grad():
                encoding = self.matcher.backbone.encode(
                    prepared.rgb[None].to(self.matcher.device), saliency=True
                )
            self.store[key] = (
                encoding.blocks[0],
                None if encoding.saliency is None else encoding.saliency[0],
            )
        return self.store[key]

    def function(self, variant: Variant) -> Callable[[list[Prepared]], list[ImageFeatures]]:
        def features(images: list[Prepared]) -> list[ImageFeatures]:
            encoded = [self._encoded(prepared) for prepared in images]
            masks = [
                resolve_object_mask(prepared, variant.object_mask, saliency)  # type: ignore[arg-type]
                for prepared, (_, saliency) in zip(images, encoded)
            ]
            blocks = torch.stack([b for b, _ in encoded])
            together = Encoded(blocks, tuple(m for m, _ in masks), tuple(s for _, s in masks))
            weight = self.default_raw_weight if variant.raw_weight is None else variant.raw_weight
            self.matcher.config.raw_weight = weight
            return self.matcher.features(images, together)

        return features


def spair_pck(root: Path, cache: CachedFeatures, variant: Variant) -> tuple[float, float]:
    grid = cache.matcher.backbone.grid
    method = FeatureKeypointMethod(
        variant.label,
        cache.function(variant),
        grid,
        224,
        "pad",
        cache.soft_window(variant),
        flip=variant.flip,
    )
    results = evaluate_keypoints(
        SPairPairs(root), method, KeypointConfig(alphas=(0.1,), tasks=("soc",))
    )
    pck = results.pck("soc", 0.1, "bbox")
    return pck["per_image"], pck["per_point"]


def funkpoint_pck(root: Path, cache: CachedFeatures, variant: Variant) -> float:
    features = cache.function(variant)
    scores: list[PointScore] = []
    for action in read_funkpoint(root):
        cache.matcher.use_function(function_for_action(action.name))
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
                    feats[reference], target, points, soft_window=cache.soft_window(variant)
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
    parser.add_argument(
        "--model", help="a shipped model's name or a checkpoint (default: raw dinov2-s14)"
    )
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    checkpoint = resolve_model(args.model, "pour-with", "dinov2-s14") if args.model else None
    config = MatcherConfig(device=args.device, checkpoint=checkpoint and str(checkpoint))
    config.function = "pour-with" if checkpoint else None  # replaced per action
    cache = CachedFeatures(Matcher(config))
    rows = []
    for variant in tqdm(
        MODEL_VARIANTS if checkpoint else VARIANTS, desc="variants", unit="variant"
    ):
        spair = (float("nan"),) * 2 if checkpoint else spair_pck(args.spair, cache, variant)
        rows.append((variant.label, *spair, funkpoint_pck(args.funkpoint, cache, variant)))
    base = rows[0]
    print("| option | spair-mini per image | per point | funkpoint-dev |")
    print("|---|---|---|---|")
    for label, image, point, funk in rows:
        first = label == base[0]
        cells = [
            "–"
            if value != value
            else f"{100 * value:.1f}" + ("" if first else f" ({100 * (value - ref):+.1f})")
            for value, ref in ((image, base[1]), (point, base[2]), (funk, base[3]))
        ]
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()

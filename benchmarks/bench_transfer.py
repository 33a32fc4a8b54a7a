"""One demonstration to many objects with a trained head: previous vs current engine, one run.

    python benchmarks/bench_transfer.py [--targets 20] [--checkpoint PATH] [--data DIR]

A rendered kettle carries 5 demonstration points on its spout; they are transferred to
``--targets`` other rendered pour-with objects, each transfer with its cycle check (the
moved points sent back into the kettle), as ``funcorr transfer`` does. Each target costs one
backbone pass in every variant; what differs is the head and the search:

* previous: the head re-run over the candidates at every search, brute-force search;
* current, exact: head features of each image computed once and kept (identical answers up
  to float rounding of the head's first layer, reported);
* current, head lattice: the head's MLP on the backbone's 14 px cells only and its features
  interpolated (``head_stride=14``, :func:`funcorr.model.head.lattice_head_map`; the shipped
  model's default), searched exactly by the pruned cell search (an approximation of the
  per-pixel head: printed is how often it returns the per-pixel answer);
* current, head lattice + int8: the same with the backbone's linear layers in int8
  (``--precision int8``, :mod:`funcorr.backbones.precision`), the one lever left once the
  backbone pass is most of a target's cost (printed: how often it returns the fp32 answer).

Two settings: object masks from alpha (the objects cover 5-15 % of the frame) and whole
images (no alpha, as photos come: every pixel is a candidate). With ``--data`` the lattice's
cost is also measured as label-transfer PCK on benchmark pairs (per pixel vs lattice).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import CATEGORIES, machine_line, previous_engine, random_head_checkpoint

from funcorr.allocator import keep_freed_memory
from funcorr.images import plan_resize
from funcorr.model.matcher import Matcher, MatcherConfig, Prepared
from funcorr.model.matching import mask_pixels, transfer_points

HEAD_STRIDE = 14


def scene(seed: int, category: str, whole_image: bool) -> tuple[Prepared, torch.Tensor]:
    """A rendered object at 224 px and its pour-with part mask."""
    from funcorr.data.assets import generate
    from funcorr.data.render import render_views

    asset = generate(category, seed)
    view = render_views(asset, 1, (224, 224), seed=seed, elevation_range=(10, 30))[0]
    rgb = torch.from_numpy(view.rgb).permute(2, 0, 1).float() / 255
    mask = torch.ones(224, 224, dtype=torch.bool) if whole_image else torch.from_numpy(view.mask)
    plan = plan_resize((224, 224), (224, 224), "resize")
    return Prepared(rgb, mask, plan, not whole_image), torch.from_numpy(
        view.part_mask(asset.functions["pour-with"].part)
    )


def demonstration(part: torch.Tensor, n: int = 5) -> torch.Tensor:
    """n part pixels spread along the part (row-major quantiles). (n, 2) xy."""
    xy = mask_pixels(part)
    return xy[torch.linspace(0, xy.shape[0] - 1, n).round().long()]


def transfer_all(
    matcher: Matcher, reference: Prepared, points: torch.Tensor, targets: list[Prepared]
) -> tuple[float, list[torch.Tensor]]:
    """Seconds and moved points (forward, then back into the reference) for every target."""
    start = time.perf_counter()
    src = matcher.features([reference])[0]
    moved = []
    for target in targets:
        tgt = matcher.features([target])[0]
        forward = transfer_points(src, tgt, points)
        back = transfer_points(tgt, src, forward.points)
        moved += [forward.points, back.points]
    return time.perf_counter() - start, moved


def agreement(found: list[torch.Tensor], exact: list[torch.Tensor]) -> str:
    distances = torch.cat([(a - b).norm(dim=1) for a, b in zip(found, exact, strict=True)])
    return f"{100 * float((distances == 0).float().mean()):.0f} % identical, {100 * float((distances <= 3).float().mean()):.0f} % within 3 px"


def label_transfer_cost(matchers: dict[str, Matcher], data: str, n_pairs: int) -> str:
    """PCK@23 / @10 of label transfer (both directions) on benchmark pairs, per matcher."""
    from funcorr.data.readers import EvalPairs
    from funcorr.images import LoadedImage
    from funcorr.model.matcher import prepare_image

    pairs = EvalPairs(data)
    hits = {name: [] for name in matchers}
    for i in range(min(n_pairs, len(pairs))):
        item = pairs[i]
        prepared = [
            prepare_image(LoadedImage(item[f"image{k}"], item[f"mask{k}"]), 224, "pad")
            for k in (1, 2)
        ]
        corr = item["correspondences"].float()
        for name, matcher in matchers.items():
            matcher.use_function(item["function"])
            features = matcher.features(prepared)
            for a, b in ((0, 1), (1, 0)):
                moved = transfer_points(features[a], features[b], corr[:, a]).points.cpu()
                hits[name].append((moved - corr[:, b]).norm(dim=1))
    out = []
    for name, distances in hits.items():
        d = torch.cat(distances)
        out.append(
            f"{name} PCK@23 {100 * float((d <= 23).float().mean()):.1f} PCK@10 {100 * float((d <= 10).float().mean()):.1f}"
        )
    points = sum(map(len, next(iter(hits.values()))))
    return (
        f"label transfer on the first {min(n_pairs, len(pairs))} pairs of {data} ({points} points): "
        + ", ".join(out)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument(
        "--checkpoint", help="trained head (default: random weights of the default size)"
    )
    parser.add_argument(
        "--data", help="benchmark folder: also measure the lattice's label-transfer PCK"
    )
    parser.add_argument("--pairs", type=int, default=20, help="benchmark pairs for --data")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    torch.set_num_threads(args.threads)
    print(machine_line())
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or str(random_head_checkpoint(Path(folder)))
        matcher = Matcher(MatcherConfig(checkpoint=checkpoint, function="pour-with", head_stride=1))
        lattice_matcher = Matcher(
            MatcherConfig(checkpoint=checkpoint, function="pour-with", head_stride=HEAD_STRIDE)
        )
        int8_matcher = Matcher(
            MatcherConfig(
                checkpoint=checkpoint,
                function="pour-with",
                head_stride=HEAD_STRIDE,
                precision="int8",
            )
        )
        print(
            f"head: {Path(checkpoint).name if args.checkpoint else 'random weights, default size'}"
        )
        for whole in (False, True):
            reference, part = scene(0, "kettle", whole)
            points = demonstration(part)
            targets = [
                scene(10 + i, CATEGORIES[i % len(CATEGORIES)], whole)[0]
                for i in range(args.targets)
            ]
            transfer_all(matcher, reference, points, targets[:1])  # warm-up
            transfer_all(lattice_matcher, reference, points, targets[:1])
            transfer_all(int8_matcher, reference, points, targets[:1])
            with previous_engine():
                old, old_moved = transfer_all(matcher, reference, points, targets)
            new, new_moved = transfer_all(matcher, reference, points, targets)
            lattice, lattice_moved = transfer_all(lattice_matcher, reference, points, targets)
            int8, int8_moved = transfer_all(int8_matcher, reference, points, targets)
            pixels = sum(int(t.mask.sum()) for t in targets) // len(targets)
            n = len(targets)
            print(
                f"{'whole images' if whole else 'object masks (alpha)'}, {pixels} candidate pixels per target, 1 reference -> {n} targets, 5 points + cycle check:"
            )
            print(
                f"  previous {old:.2f} s ({old / n:.2f} s/target) | current per pixel {new:.2f} s (ratio {old / new:.1f}x) | current head lattice {lattice:.2f} s ({lattice / n:.2f} s/target, ratio {old / lattice:.1f}x) | head lattice + int8 backbone {int8:.2f} s ({int8 / n:.2f} s/target, ratio {old / int8:.1f}x)"
            )
            print(
                f"  current per pixel vs previous: {agreement(new_moved, old_moved)}; head lattice vs per pixel: {agreement(lattice_moved, new_moved)}; int8 vs fp32 head lattice: {agreement(int8_moved, lattice_moved)}"
            )
        if args.data:
            matchers = {
                "per pixel": matcher,
                f"head lattice {HEAD_STRIDE}": lattice_matcher,
                f"head lattice {HEAD_STRIDE} + int8": int8_matcher,
            }
            print(label_transfer_cost(matchers, args.data, args.pairs))
    print(machine_line())


if __name__ == "__main__":
    main()

"""Throughput of the dense functional benchmark and peak memory of discovery, with baselines
measured in the same run.

    python benchmarks/bench_eval.py [--backbone dinov2-s14] [--pairs 2] [--device auto] [--full-mask] [--random-weights]

* pairs/s of ``evaluate_functional`` (features + label transfer + discovery, both directions) on
  synthetic 224x224 pairs, against two baselines from the same run: the chance method (all the
  bookkeeping, no features) and feature extraction alone.
* peak resident memory that one discovery adds on a 224x224 pair, measured in a fresh child
  process each (``ru_maxrss``) against a child that prepares the same features and stops; it is
  compared with the size of the full N x M similarity matrix (never materialised: discovery works
  in row blocks) and with one row block.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

SIZE = 224


def object_mask(full: bool) -> torch.Tensor:
    """An ellipse over ~40 % of the frame (the whole frame with ``full``)."""
    if full:
        return torch.ones(SIZE, SIZE, dtype=torch.bool)
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    return ((xs - SIZE / 2) / (0.42 * SIZE)) ** 2 + ((ys - SIZE / 2) / (0.32 * SIZE)) ** 2 <= 1


def synthetic_pair(seed: int, mask: torch.Tensor) -> dict:
    """A smooth random texture and its copy moved by (6, 4) px, with GT every 8 px on the object."""
    gen = torch.Generator().manual_seed(seed)
    base = torch.nn.functional.interpolate(torch.rand(1, 3, 40, 40, generator=gen), size=(SIZE + 8, SIZE + 8), mode="bilinear", align_corners=False)[0]
    ys, xs = torch.meshgrid(torch.arange(16.0, SIZE - 16, 8), torch.arange(16.0, SIZE - 16, 8), indexing="ij")
    src = torch.stack([xs, ys], -1).reshape(-1, 2)
    src = src[mask[src[:, 1].long(), src[:, 0].long()]]
    shift = torch.tensor([6.0, 4.0])
    return {
        "image1": base[:, 4 : 4 + SIZE, 6 : 6 + SIZE], "image2": base[:, 8 : 8 + SIZE, 12 : 12 + SIZE],
        "mask1": mask, "mask2": mask, "function": "pour-with", "correspondences": torch.stack([src, src - shift], 1),
        "across_category": bool(seed % 2), "pair_id": f"synthetic-{seed}",
    }


def throughput(args: argparse.Namespace) -> None:
    from funcorr.eval.functional import (
        ChanceMatcher,
        FunctionalConfig,
        FunctionalMethod,
        MatcherFeatures,
        NearestNeighbourMatcher,
        evaluate_functional,
    )
    from funcorr.images import LoadedImage
    from funcorr.model.matcher import Matcher, MatcherConfig, prepare_image

    mask = object_mask(args.full_mask)
    pairs = [synthetic_pair(i, mask) for i in range(args.pairs)]
    config = FunctionalConfig(thresholds_px=(23, 10))
    # Random weights time exactly like the real ones; they let the benchmark run where weights are absent.
    features = MatcherFeatures(Matcher(MatcherConfig(backbone=args.backbone, device=args.device, pretrained=not args.random_weights)))
    method = FunctionalMethod(args.backbone, NearestNeighbourMatcher(), features)
    # Warm-up with the full protocol: first calls pick kernels and allocate caches.
    evaluate_functional(pairs[:1], method, config)
    evaluate_functional(pairs[:1], FunctionalMethod("chance", ChanceMatcher(0)), config)

    start = time.perf_counter()
    evaluate_functional(pairs, method, config)
    full = time.perf_counter() - start
    start = time.perf_counter()
    evaluate_functional(pairs, FunctionalMethod("chance", ChanceMatcher(0)), config)
    chance = time.perf_counter() - start
    prepared = [[prepare_image(LoadedImage(p[f"image{i}"], p[f"mask{i}"]), SIZE, "pad") for i in (1, 2)] for p in pairs]
    start = time.perf_counter()
    for pair in prepared:
        features(pair, "pour-with")
    feature_only = time.perf_counter() - start
    n = len(pairs)
    print(f"device {features.matcher.device}, {torch.get_num_threads()} threads, {args.backbone}, {int(mask.sum())} object pixels per image, {n} pairs")
    print(f"functional benchmark ({args.backbone}, label transfer + discovery, both directions): {n / full:.3f} pairs/s")
    print(f"  baseline chance method:   {n / chance:.3f} pairs/s  (time ratio {args.backbone}/chance {full / chance:.1f}x)")
    print(f"  baseline features only:   {n / feature_only:.3f} pairs/s  (matching+metrics take {100 * (1 - feature_only / full):.0f}% of the time; ratio {full / feature_only:.1f}x)")


def memory_child(stage: str, full: bool, block_rows: int, device: str) -> None:
    """Run in a fresh process: build features (and discover when ``stage == 'discover'``).
    Reports peak RSS (CPU) or peak allocated CUDA memory above the features (GPU)."""
    from funcorr.backbones import FeatureGrid, resolve_device
    from funcorr.model.matching import discover, feature_map_features

    torch.manual_seed(0)
    where = resolve_device(device)
    grid = FeatureGrid(14, 14)
    mask = object_mask(full)
    fmaps = torch.nn.functional.normalize(torch.randn(2, 384, 16, 16), dim=1).to(where)  # DINOv2-S cell maps
    src, tgt = (feature_map_features(f, grid, (SIZE, SIZE), mask) for f in fmaps)
    if where.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated() if where.type == "cuda" else 0
    start = time.perf_counter()
    if stage == "discover":
        ranked = discover(src, tgt, block_rows=block_rows)
        assert ranked.score.shape[0] == int(mask.sum())
    if where.type == "cuda":
        torch.cuda.synchronize()
    report = {"seconds": time.perf_counter() - start, "pixels": int(mask.sum()), "device": where.type}
    if where.type == "cuda":
        report["peak_bytes"] = torch.cuda.max_memory_allocated() - before
    else:
        report["peak_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps(report))


def memory(args: argparse.Namespace) -> None:
    def child(stage: str) -> dict:
        cmd = [sys.executable, __file__, "--memory-child", stage, "--block-rows", str(args.block_rows), "--device", args.device] + (["--full-mask"] if args.full_mask else [])
        # The child must import funcorr from this checkout even when it is not pip-installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"memory child {stage!r} failed:\n{done.stderr[-2000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    baseline, run = child("baseline"), child("discover")
    # CPU: peak RSS of the discovering child minus that of a child that stops before discovery.
    # CUDA: peak allocated memory during discovery above the features, measured in the child.
    extra = run["peak_bytes"] if run["device"] == "cuda" else max(run["peak_bytes"] - baseline["peak_bytes"], 0)
    n = run["pixels"]
    full_matrix = n * n * 4
    block = min(args.block_rows, n) * n * 4
    print(f"discovery on a 224x224 pair ({run['device']}), {n} object pixels per image, block_rows {args.block_rows}: {run['seconds']:.2f} s")
    print(f"  peak memory added by discovery: {extra / 2**20:.1f} MiB (baseline child: {baseline['peak_bytes'] / 2**20:.0f} MiB)")
    print(f"  vs the full {n}x{n} float32 similarity matrix ({full_matrix / 2**20:.0f} MiB): ratio {extra / full_matrix:.3f}")
    print(f"  vs one row block ({block / 2**20:.0f} MiB): ratio {extra / block:.2f}  (per-pixel features and transfer buffers come on top of one block)")
    if extra >= full_matrix:
        print("  WARNING: discovery used as much memory as the full similarity matrix")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="dinov2-s14")
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--full-mask", action="store_true", help="object = the whole 224x224 frame (slow on CPU)")
    parser.add_argument("--block-rows", type=int, default=2048)
    parser.add_argument("--random-weights", action="store_true", help="same architecture, random weights (dinov2-s14 only)")
    parser.add_argument("--memory-child", choices=["baseline", "discover"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.full_mask, args.block_rows, args.device)
        return
    memory(args)
    throughput(args)


if __name__ == "__main__":
    main()

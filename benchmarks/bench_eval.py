"""Throughput of the dense functional benchmark, against the previous pipeline in the same run.

    python benchmarks/bench_eval.py --data DIR [--pairs 40] [--baseline-pairs 8] [--checkpoint PATH]

On the first ``--pairs`` pairs of a benchmark folder (a contiguous slice, as a shard is),
``evaluate_functional`` (label transfer + discovery, both directions) runs

* as now: features once per image (:class:`funcorr.eval.functional_methods.MatcherFeatures`), both
  directions from two searches, the pruned exact search for raw features, head features of
  each image computed once;
* as before (baseline, first ``--baseline-pairs`` pairs): features recomputed for every pair,
  each direction with its own forward and cycle searches, brute-force search, a head re-run
  over the candidates at every search.

for raw ``dinov2-s14`` features and for a trained head (``--checkpoint``; without one, a head
with random weights of the default size, which costs the same), per pixel and on the
``--head-strides`` lattices (:func:`funcorr.model.head.lattice_head_map`, timed only: the
lattice head is an approximation with no previous pipeline to match). It prints pairs/s, the
projected time of the 1,100-pair ``benchmark`` preset, the head's time against the raw
features' and the ratio to the previous pipeline, and asserts that both
pipelines give the same per-direction numbers on the baseline pairs (identical but for
near-ties flipped by float rounding: the backbone's last bits depend on the batch size).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from common import machine_line, previous_engine, random_head_checkpoint

from funcorr.allocator import keep_freed_memory
from funcorr.data.readers import EvalPairs
from funcorr.eval.functional import FunctionalConfig, evaluate_functional
from funcorr.eval.functional_methods import (
    FunctionalMethod,
    MatcherFeatures,
    NearestNeighbourMatcher,
)
from funcorr.model.matcher import Matcher, MatcherConfig

PRESET_PAIRS = 1100


class OneDirectionAtATime(NearestNeighbourMatcher):
    """The previous ranking: each direction searches forward and back on its own."""

    rank_pair = None


def run(pairs, matcher: Matcher, previous: bool) -> tuple[float, dict, int]:
    """(seconds, record, feature passes) of one evaluation."""
    features = MatcherFeatures(matcher, cache_size=0 if previous else 64)
    method = FunctionalMethod(
        "bench", OneDirectionAtATime() if previous else NearestNeighbourMatcher(), features
    )
    start = time.perf_counter()
    with previous_engine() if previous else nullcontext():
        record = evaluate_functional(pairs, method, FunctionalConfig()).to_record()
    return time.perf_counter() - start, record, features.computed


def throughput(name: str, pairs, matcher: Matcher, raw_rate: float | None = None) -> float:
    """Pairs/s of the current pipeline on ``pairs``, printed with the projected preset time
    (and its ratio to the raw features' time when ``raw_rate`` is given)."""
    run(pairs[:1], matcher, previous=False)  # warm-up: kernels, text embeddings
    seconds, _, passes = run(pairs, matcher, previous=False)
    rate = len(pairs) / seconds
    versus = "" if raw_rate is None else f"; {raw_rate / rate:.2f}x the raw features' time"
    print(
        f"{name}: {rate:.2f} pairs/s ({len(pairs)} pairs, {passes} feature passes for {2 * len(pairs)} images)"
        f" -> {PRESET_PAIRS} pairs in {PRESET_PAIRS / rate / 60:.1f} min{versus}"
    )
    return rate


def compare(name: str, pairs, baseline_pairs, config: MatcherConfig, raw_rate=None) -> float:
    """Throughput, then the previous pipeline on ``baseline_pairs`` with the same answers."""
    matcher = Matcher(config)
    rate = throughput(name, pairs, matcher, raw_rate)
    old_seconds, old, _ = run(baseline_pairs, matcher, previous=True)
    _, new, _ = run(baseline_pairs, matcher, previous=False)
    same = sum(a == b for a, b in zip(old["per_direction"], new["per_direction"], strict=True))
    # Rows may differ only through float rounding: the backbone (and a head's first layer) give
    # last-bit differences between batch sizes, which can flip a near-tie of one point.
    gap = max(
        abs(a[k] - b[k])
        for a, b in zip(old["per_direction"], new["per_direction"], strict=True)
        for k in a
        if isinstance(a[k], float) and isinstance(b[k], float) and a[k] == a[k] and b[k] == b[k]
    )
    assert gap < 0.05, (
        f"{name}: the two pipelines disagree beyond float rounding (largest difference {gap})"
    )
    old_rate = len(baseline_pairs) / old_seconds
    print(
        f"  previous pipeline: {old_rate:.3f} pairs/s ({len(baseline_pairs)} pairs) -> {PRESET_PAIRS / old_rate / 60:.1f} min;"
        f" ratio {rate / old_rate:.1f}x"
    )
    print(
        f"  same numbers on the baseline pairs: {same} of {len(new['per_direction'])} pair-directions identical, largest difference {gap:.4f}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="benchmark folder (make-data)")
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--baseline-pairs", type=int, default=8)
    parser.add_argument(
        "--checkpoint", help="trained head (default: a random head of the default size)"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch threads (the target machine has 2 cores)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--head-strides",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[1, 14],
        help="head lattice strides to time, comma-separated (1 = per pixel, the paper's)",
    )
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    torch.set_num_threads(args.threads)
    dataset = EvalPairs(args.data)
    pairs = [dataset[i] for i in range(min(args.pairs, len(dataset)))]
    baseline_pairs = pairs[: args.baseline_pairs]
    print(f"{args.data}: first {len(pairs)} of {len(dataset)} test pairs; {machine_line()}")
    raw = compare("dinov2-s14 raw", pairs, baseline_pairs, MatcherConfig(device=args.device))
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = args.checkpoint or str(random_head_checkpoint(Path(folder)))
        label = f"head {Path(checkpoint).name if args.checkpoint else '(random weights)'}"
        for stride in args.head_strides:
            config = MatcherConfig(
                checkpoint=checkpoint, function="pour-with", device=args.device, head_stride=stride
            )
            name = f"{label}, head stride {stride}"
            if stride == 1:  # per pixel: the previous pipeline gives the same numbers
                compare(name, pairs, baseline_pairs, config, raw)
            else:  # a lattice head is a different (approximate) feature: no baseline to match
                throughput(name, pairs, Matcher(config), raw)
    print(machine_line())


if __name__ == "__main__":
    main()

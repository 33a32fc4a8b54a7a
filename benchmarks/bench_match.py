"""Seconds per 224x224 pair (features + dense transfer of every object pixel) and the speed-up
of batched over one-by-one feature extraction, measured in one run.

    python benchmarks/bench_match.py [--backbone dinov2-s14] [--pairs 5] [--device auto]
"""

from __future__ import annotations

import argparse
import time

import torch

from funcorr.model.matcher import Matcher, MatcherConfig, Prepared
from funcorr.model.matching import mask_pixels, transfer_points


def synthetic_pair(seed: int, size: int = 224, scale: float = 1.0) -> list[Prepared]:
    """Two textured images with an elliptical object mask: ~42% of the frame at ``scale`` 1,
    ~16% (8k pixels, the mean object of the rendered datasets) at ``scale`` 0.62."""
    from funcorr.images import plan_resize

    gen = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    mask = ((xs - size / 2) / (0.42 * scale * size)) ** 2 + ((ys - size / 2) / (0.32 * scale * size)) ** 2 <= 1
    plan = plan_resize((size, size), (size, size), "resize")
    return [Prepared(torch.rand(3, size, size, generator=gen), mask, plan, True) for _ in range(2)]


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="dinov2-s14")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    matcher = Matcher(MatcherConfig(backbone=args.backbone, device=args.device, batch_size=8))
    pairs = [synthetic_pair(i) for i in range(args.pairs)]
    typical = [synthetic_pair(i, scale=0.62) for i in range(args.pairs)]
    images = [image for pair in pairs for image in pair]

    def match_all(candidate_stride: int, which: list[list[Prepared]] = pairs) -> None:
        for pair in which:
            src, tgt = matcher.features(pair)
            transfer_points(src, tgt, mask_pixels(pair[0].mask), candidate_stride=candidate_stride)

    per_pair = timed(lambda: match_all(1), 1) / len(pairs)
    per_pair_coarse = timed(lambda: match_all(2), 1) / len(pairs)
    per_pair_typical = timed(lambda: match_all(1, typical), 1) / len(pairs)
    one_by_one = timed(lambda: [matcher.block_features([image]) for image in images], 1)
    batched = timed(lambda: matcher.block_features(images), 1)
    pixels = int(pairs[0][0].mask.sum())
    print(f"device: {matcher.device}, threads: {torch.get_num_threads()}, backbone: {args.backbone}")
    print(f"seconds per 224x224 pair (features + dense transfer of {pixels} object pixels): {per_pair:.3f}  (target < 1.0 on 2 CPU cores)")
    print(f"  with candidate_stride=2 (every 2nd target pixel): {per_pair_coarse:.3f}, ratio to exact {per_pair_coarse / per_pair:.2f}")
    typical_pixels = int(typical[0][0].mask.sum())
    print(f"  {typical_pixels}-pixel objects (the rendered datasets' mean): {per_pair_typical:.3f}, ratio to the large objects {per_pair_typical / per_pair:.2f}")
    print(f"feature extraction for {len(images)} images: one-by-one {one_by_one:.3f}s, batched {batched:.3f}s, batched/one-by-one time ratio {batched / one_by_one:.2f}")


if __name__ == "__main__":
    main()

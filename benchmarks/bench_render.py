"""Throughput of the data engine: rendered views/s (all buffers) and functional GT pairs/s.

    python benchmarks/bench_render.py [--views 60] [--size 224] [--pairs 20] [--threads 2]

Single process; ``--threads`` caps the BLAS/OpenMP threads numpy and embree may use
(2 matches the shared development machine).
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--views", type=int, default=60, help="views to render (spread over categories)")
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument("--pairs", type=int, default=20, help="asset pairs to compute ground truth for")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np  # noqa: PLC0415 - after the thread caps

    from funcorr.data.assets import CATEGORIES, categories_for, generate  # noqa: PLC0415
    from funcorr.data.groundtruth import GTConfig, functional_pairs, functional_view  # noqa: PLC0415
    from funcorr.data.render import asset_cameras, prepare, render_view  # noqa: PLC0415

    size = (args.size, args.size)
    categories = list(CATEGORIES)
    per_asset = max(1, args.views // len(categories))
    start = time.perf_counter()
    rendered = 0
    for i, category in enumerate(categories):
        asset = generate(category, i)
        scene = prepare(asset)
        for cam in asset_cameras(asset, per_asset, size, seed=i):
            render_view(scene, cam.K, cam.cam_to_world, size)
            rendered += 1
    elapsed = time.perf_counter() - start
    print(
        f"render: {rendered} views at {args.size}x{args.size} in {elapsed:.2f} s -> "
        f"{rendered / elapsed:.1f} views/s ({1000 * elapsed / rendered:.1f} ms/view incl. asset build + BVH)"
    )

    function = "pour-with"
    pool = categories_for(function)
    views = {}
    start = time.perf_counter()
    for i, category in enumerate(pool):
        asset = generate(category, 100 + i)
        part = asset.functions[function]
        scene = prepare(asset)
        cams = asset_cameras(asset, 30, size, seed=i)
        views[category] = (
            part,
            [functional_view(render_view(scene, c.K, c.cam_to_world, size), part.part, k) for k, c in enumerate(cams)],
        )
    prep = time.perf_counter() - start
    rng = np.random.default_rng(0)
    config = GTConfig()
    start = time.perf_counter()
    made = tried = 0
    for k in range(args.pairs):
        a, b = pool[k % len(pool)], pool[(k * 3 + 1) % len(pool)]
        (p1, v1), (p2, v2) = views[a], views[b]
        made += len(functional_pairs(p1, v1, p2, v2, config, rng, n_pairs=1))
        tried += 1
    elapsed = time.perf_counter() - start
    print(
        f"ground truth: {made}/{tried} asset pairs gave a pair ({config.n_trials} view trials max) in "
        f"{elapsed:.2f} s -> {made / elapsed:.1f} GT pairs/s (30 eval views x {len(pool)} assets rendered "
        f"beforehand in {prep:.1f} s)"
    )


if __name__ == "__main__":
    main()

"""Throughput of the data engine: rendered views/s (all buffers), flat vs randomised
appearance in the same run, make-data views/s (rendering + writing files) and functional GT pairs/s.

    python benchmarks/bench_render.py [--views 60] [--per-asset 6] [--size 224] [--pairs 20]
                                      [--threads 2] [--no-dataset]

Single process; ``--threads`` caps the BLAS/OpenMP threads numpy and embree may use
(2 matches the shared development machine). "randomised" is the default
:class:`~funcorr.data.appearance.AppearanceConfig` (solid textures, random lights with
shadow rays, lenses, roll, framing, backdrops, blur and noise); "randomised, no shadows"
isolates the cost of the shadow rays.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

from funcorr.allocator import keep_freed_memory


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--views", type=int, default=60, help="views to render per mode")
    parser.add_argument(
        "--per-asset", type=int, default=6, help="views per asset (categories spread evenly)"
    )
    parser.add_argument("--size", type=int, default=224, help="image side in pixels")
    parser.add_argument(
        "--pairs", type=int, default=20, help="asset pairs to compute ground truth for"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-dataset", action="store_true", help="skip the make-data timing")
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np  # noqa: PLC0415 - after the thread caps

    from funcorr.data.appearance import AppearanceConfig, render_random_views  # noqa: PLC0415
    from funcorr.data.assets import CATEGORIES, categories_for, generate  # noqa: PLC0415
    from funcorr.data.backgrounds import random_background  # noqa: PLC0415
    from funcorr.data.build import make_dataset  # noqa: PLC0415
    from funcorr.data.format import DataConfig  # noqa: PLC0415
    from funcorr.data.groundtruth import GTConfig, functional_pairs, functional_view  # noqa: PLC0415
    from funcorr.data.render import asset_cameras, prepare, render_view  # noqa: PLC0415

    size = (args.size, args.size)
    per_asset = max(1, args.per_asset)
    n_assets = max(1, args.views // per_asset)
    categories = list(CATEGORIES)[:: max(1, len(CATEGORIES) // n_assets)][:n_assets]
    # Load the photo backdrops once, outside the timings.
    random_background(np.random.default_rng(0), (8, 8), kinds=("photo",))

    def flat(asset, seed):
        scene = prepare(asset)
        return [
            render_view(scene, c.K, c.cam_to_world, size)
            for c in asset_cameras(asset, per_asset, size, seed=seed)
        ]

    modes = {
        "flat": flat,
        "randomised": lambda asset, seed: render_random_views(
            asset, per_asset, size, seed, AppearanceConfig()
        ),
        "randomised, no shadows": lambda asset, seed: render_random_views(
            asset, per_asset, size, seed, AppearanceConfig(shadows=False)
        ),
    }
    rates = {}
    for name, render in modes.items():
        start = time.perf_counter()
        rendered = 0
        for i, category in enumerate(categories):
            rendered += len(render(generate(category, i), i))
        elapsed = time.perf_counter() - start
        rates[name] = rendered / elapsed
        print(
            f"render {name:>22}: {rendered} views at {args.size}x{args.size} in {elapsed:.2f} s -> "
            f"{rates[name]:.1f} views/s ({1000 * elapsed / rendered:.1f} ms/view "
            "incl. asset build + BVH)"
        )
    print(f"randomised / flat: {rates['randomised'] / rates['flat']:.2f}x the views/s")

    if not args.no_dataset:
        micro = DataConfig(
            functions=("cut-with", "pound-with"),
            assets_per_category=3,
            train_views=6,
            eval_views=6,
            image_size=args.size,
            pairs_per_function=4,
        )
        for name, config in (
            ("flat", micro),
            ("randomised", dataclasses.replace(micro, appearance=AppearanceConfig())),
        ):
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                make_dataset(config, tmp, progress=False)
                elapsed = time.perf_counter() - start
                views = sum(
                    len(list((p / "views").glob("*.npz"))) for p in Path(tmp, "assets").iterdir()
                )
            print(
                f"make-data {name:>10}: {views} views "
                f"(+ {config.pairs_per_function} pairs x 2 functions x 2 splits) "
                f"in {elapsed:.1f} s -> {views / elapsed:.1f} views/s end to end"
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
            [
                functional_view(render_view(scene, c.K, c.cam_to_world, size), part.part, k)
                for k, c in enumerate(cams)
            ],
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
        f"ground truth: {made}/{tried} asset pairs gave a pair ({config.n_trials} view trials max) "
        f"in {elapsed:.2f} s -> {made / elapsed:.1f} GT pairs/s (30 eval views x {len(pool)} "
        f"assets rendered beforehand in {prep:.1f} s)"
    )


if __name__ == "__main__":
    main()

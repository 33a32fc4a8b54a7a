"""Pseudo-labelling time per asset: every part from scratch vs one shared geometry, one run.

    python benchmarks/bench_pseudolabel.py --data DIR [--assets 8]

For ``--assets`` training assets spread evenly over a dataset folder's asset list (it is
sorted by category: the first few share one category and often one part), the functional
parts of all their functions are pseudo-labelled (paper Sec. 7.4, noisy-oracle boxes as
``funcorr train`` uses them) as before, each part on its own (visibility, kNN graph and
pixel -> point assignment recomputed per part), and with
:func:`funcorr.data.pseudolabel.pseudo_label_parts` (that geometry once per asset). The masks
are asserted identical. Loading the views and sampling the points, common to both, is timed
apart.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import machine_line

from funcorr.allocator import keep_freed_memory
from funcorr.data.part_boxes import NoisyOracleProposer, OracleNoise
from funcorr.data.pseudolabel import pseudo_label_part, pseudo_label_parts
from funcorr.data.readers import TrainViews, load_view
from funcorr.train.config import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--assets", type=int, default=8)
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    cfg = TrainConfig(data=args.data)
    noise = OracleNoise(cfg.oracle_jitter, cfg.oracle_miss_rate, cfg.oracle_false_box_rate)
    dataset = TrainViews(args.data, split="train")
    totals = {"load": 0.0, "alone": 0.0, "shared": 0.0}
    parts_done = 0
    print(machine_line())
    ids = dataset.asset_ids
    n = min(args.assets, len(ids))
    chosen = [ids[i * len(ids) // n] for i in range(n)]
    for seed, asset_id in enumerate(chosen):
        record = dataset.asset_info(asset_id)
        start = time.perf_counter()
        views = [load_view(Path(args.data), asset_id, v, record) for v in range(record["n_views"])]
        points = np.concatenate([v.xyz[v.mask] for v in views])
        points = points[
            np.random.default_rng(seed).choice(
                len(points), min(len(points), 100_000), replace=False
            )
        ]
        totals["load"] += time.perf_counter() - start
        parts = [spec["part"] for spec in record["functions"].values()]
        start = time.perf_counter()
        proposer = NoisyOracleProposer(noise, seed=seed)
        alone = [
            pseudo_label_part(views, points, proposer, record["category"], part) for part in parts
        ]
        totals["alone"] += time.perf_counter() - start
        start = time.perf_counter()
        shared = pseudo_label_parts(
            views, points, NoisyOracleProposer(noise, seed=seed), record["category"], parts
        )
        totals["shared"] += time.perf_counter() - start
        for a, b in zip(alone, shared, strict=True):
            assert all(np.array_equal(m, n) for m, n in zip(a.masks, b.masks, strict=True)), (
                asset_id
            )
        parts_done += len(parts)
        print(f"  {asset_id}: {len(parts)} parts, {len(points)} points, {len(views)} views")
    alone, shared = totals["alone"] / n, totals["shared"] / n
    print(f"{n} assets, {parts_done / n:.1f} parts per asset; seconds per asset:")
    print(
        f"  load views + sample points {totals['load'] / n:.2f} | each part alone {alone:.2f} | shared geometry {shared:.2f} | ratio {alone / shared:.1f}x"
    )
    print("  masks identical: yes (asserted)")
    print(machine_line())


if __name__ == "__main__":
    main()

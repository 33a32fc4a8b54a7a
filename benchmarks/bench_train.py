"""Training steps/s on CPU with cached backbone features vs recomputing them every step,
measured in one run on a tiny generated dataset, and the time to build that feature cache per
training asset (pseudo-labels from the noisy oracle and backbone features of every view and
background variant, as ``funcorr train`` builds it with its default config).

    python benchmarks/bench_train.py [--steps 10]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch
from common import machine_line

from funcorr.allocator import keep_freed_memory
from funcorr.backbones import load_backbone
from funcorr.data.build import make_dataset
from funcorr.data.format import PRESETS
from funcorr.data.readers import TrainViews
from funcorr.model.head import FunctionHead, HeadConfig
from funcorr.text import load_function_embedder
from funcorr.train import TrainConfig, build_cache, functional_pair_options, training_step


def steps_per_second(step, n: int) -> float:
    step()  # warm-up
    start = time.perf_counter()
    for _ in range(n):
        step()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    keep_freed_memory()  # as the funcorr commands do (funcorr.allocator)
    root = Path(tempfile.mkdtemp()) / "tiny"
    make_dataset(PRESETS["tiny"], root, progress=False)
    cfg = TrainConfig(data=str(root))
    device = torch.device("cpu")
    backbone = load_backbone(cfg.backbone, layers=cfg.layers)
    print(machine_line())
    start = time.perf_counter()
    cache = build_cache(cfg, backbone, device)
    cache_seconds = time.perf_counter() - start
    views = TrainViews(root, split="train")
    n_assets = len(views.asset_ids)
    embedder = load_function_embedder(cfg.text_encoder)
    text = dict(zip(cache.part_masks, embedder.embed(list(cache.part_masks))))
    options = functional_pair_options(cache)
    head = FunctionHead(HeadConfig(in_dim=backbone.dim, text_dim=embedder.dim))
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    rng, gen = random.Random(0), torch.Generator().manual_seed(0)

    def cached_step() -> None:
        loss = training_step(head, cache, options, text, cfg, rng, gen, device)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def recomputing_step() -> None:
        # What a step costs without the cache: the backbone runs on the 4 images per pair
        # (2 functional + 2 spatial) before the same head step.
        indices = [rng.randrange(len(views)) for _ in range(4 * cfg.batch_pairs)]
        with torch.no_grad():
            backbone(torch.stack([views[i]["image"] for i in indices]))
        cached_step()

    cached = steps_per_second(cached_step, args.steps)
    recomputed = steps_per_second(recomputing_step, max(2, args.steps // 3))
    print(
        f"threads: {torch.get_num_threads()}, batch_pairs: {cfg.batch_pairs}, points/image: {cfg.points_per_image}"
    )
    print(
        f"steps/s with cached features: {cached:.2f}; recomputing features: {recomputed:.2f}; cached/recomputing speed ratio {cached / recomputed:.1f}x"
    )
    print(
        f"feature cache: {cache_seconds:.1f} s for {n_assets} assets ({len(views)} views x {cfg.background_variants} background variants):"
        f" {cache_seconds / n_assets:.2f} s per asset, {cache_seconds / (len(views) * cfg.background_variants):.3f} s per view variant"
    )
    print(machine_line())


if __name__ == "__main__":
    main()

"""Training steps/s on CPU with cached backbone features vs recomputing them every step,
measured in one run on a tiny generated dataset.

    python benchmarks/bench_train.py [--steps 10]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import torch

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
    root = Path(tempfile.mkdtemp()) / "tiny"
    make_dataset(PRESETS["tiny"], root, progress=False)
    cfg = TrainConfig(data=str(root), labels="true")
    device = torch.device("cpu")
    backbone = load_backbone(cfg.backbone, layers=cfg.layers)
    cache = build_cache(cfg, backbone, device)
    embedder = load_function_embedder(cfg.text_encoder)
    text = dict(zip(cache.part_masks, embedder.embed(list(cache.part_masks))))
    options = functional_pair_options(cache)
    head = FunctionHead(HeadConfig(in_dim=backbone.dim, text_dim=embedder.dim))
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    rng, gen = random.Random(0), torch.Generator().manual_seed(0)
    views = TrainViews(root)

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


if __name__ == "__main__":
    main()

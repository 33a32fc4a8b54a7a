"""The training loop: losses of a step, validation, checkpoints and resume.

Each step draws ``batch_pairs`` functional pairs (two assets sharing a function;
functional-part InfoNCE + mask BCE, paper eqs. 1 and 3) and ``batch_pairs`` spatial pairs
(two views of one asset; multi-view InfoNCE, eq. 2), weighted 1 / 10 / 1 (Sec. 4).
"""

from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from funcorr.backbones import FeatureGrid, load_backbone, resolve_device
from funcorr.data.readers import EvalPairs
from funcorr.files import check_output_folder
from funcorr.images import InputError, atomic_path
from funcorr.model.checkpoint import (
    checkpoint_record,
    read_training_state,
    save_checkpoint,
    save_training_state,
    training_state_path,
)
from funcorr.model.head import FunctionHead, HeadConfig, head_image_features
from funcorr.model.losses import (
    LossWeights,
    combined_loss,
    functional_infonce,
    mask_bce,
    sample_part_points,
    spatial_infonce,
)
from funcorr.model.matching import feature_map_features, transfer_points
from funcorr.text import load_function_embedder
from funcorr.train.batches import draw_functional_pairs, draw_spatial_batch, functional_pair_options
from funcorr.train.cache import TrainingCache, build_cache
from funcorr.train.config import TrainConfig

CHECKPOINT_NAME = "last.safetensors"


def _blocks(
    cache: TrainingCache, views: list[int], rng: random.Random, device: torch.device
) -> torch.Tensor:
    """Cached blocks of ``views``, each with a random background variant. (B, L, C, h, w)."""
    variants = [rng.randrange(cache.features.shape[1]) for _ in views]
    return torch.stack([cache.features[v, k] for v, k in zip(views, variants)]).float().to(device)


def training_step(
    head,
    cache: TrainingCache,
    options: list[tuple[str, list[int]]],
    text: dict[str, torch.Tensor],
    cfg: TrainConfig,
    rng: random.Random,
    gen: torch.Generator,
    device: torch.device,
) -> dict[str, torch.Tensor]:
    """Loss terms of one step (each a scalar tensor) and their weighted total under 'loss'."""
    grid = FeatureGrid(cache.patch_size, cache.stride)
    n = cfg.points_per_image
    pairs = draw_functional_pairs(cache, options, cfg.batch_pairs, rng)
    functions = [f for f, _, _ in pairs]
    text_batch = torch.stack([text[f] for f in functions]).to(device)
    outputs = []
    for views in ([a for _, a, _ in pairs], [b for _, _, b in pairs]):
        parts = torch.stack([cache.part_masks[f][v] for f, v in zip(functions, views)])
        pos, neg = sample_part_points(parts, cache.masks[views], gen, n)
        outputs.append(
            head(
                _blocks(cache, views, rng, device),
                grid,
                torch.cat([pos, neg], dim=1).to(device),
                text_batch,
            )
        )
    (fa, la), (fb, lb) = outputs
    terms = {
        "functional": functional_infonce(
            fa[:, :n],
            fa[:, n:],
            fb[:, :n],
            fb[:, n:],
            cfg.temperature,
            within_image=cfg.push_own_background,
        )
    }
    if la is not None:
        terms["mask"] = (mask_bce(la[:, :n], la[:, n:]) + mask_bce(lb[:, :n], lb[:, n:])) / 2
    spatial = draw_spatial_batch(cache, cfg.batch_pairs, n, rng, gen, on_part=cfg.spatial_on_part)
    if spatial is not None:
        corr = spatial.points.to(device)
        spatial_text = torch.stack([text[f] for f in spatial.functions]).to(device)
        f1 = head(
            _blocks(cache, spatial.views_a, rng, device), grid, corr[:, :, 0], spatial_text
        ).features
        f2 = head(
            _blocks(cache, spatial.views_b, rng, device), grid, corr[:, :, 1], spatial_text
        ).features
        terms["spatial"] = spatial_infonce(f1, f2, cfg.temperature, spatial.valid)
    weights = LossWeights(cfg.weight_functional, cfg.weight_spatial, cfg.weight_mask)
    terms["loss"] = combined_loss(
        terms.get("functional"), terms.get("spatial"), terms.get("mask"), weights
    )
    return terms


@torch.no_grad()
def validation_pck(
    head, backbone, embedder, data: str, n_pairs: int, device: torch.device, threshold: float = 23.0
) -> dict[str, float]:
    """Label-transfer PCK@threshold (224 px) on held-out pairs: the head vs raw block features.

    ``n_pairs`` pairs evenly spaced over the test split (pairs are stored grouped by
    function, so the first n would all share one function). Each GT source point is
    transferred into the target object; a hit lands within ``threshold`` px of its GT
    target. Averaged per pair, then over pairs.
    """
    pairs = EvalPairs(data, split="test")
    scores = {"head": [], "raw": []}
    indices = (
        sorted({int(i) for i in np.linspace(0, len(pairs) - 1, min(n_pairs, len(pairs)))})
        if len(pairs)
        else []
    )
    for i in indices:
        item = pairs[i]
        blocks = backbone(torch.stack([item["image1"], item["image2"]]).to(device))
        size = tuple(item["mask1"].shape)
        corr = torch.as_tensor(item["correspondences"], dtype=torch.float32)
        text = embedder.embed([item["function"]])[0].to(device)
        masks = (item["mask1"], item["mask2"])
        raw = [
            feature_map_features(b.mean(0), backbone.grid, size, m) for b, m in zip(blocks, masks)
        ]
        trained = [
            head_image_features(head, b, backbone.grid, text, size, m)
            for b, m in zip(blocks, masks)
        ]
        for name, (src, tgt) in (("raw", raw), ("head", trained)):
            moved = transfer_points(src, tgt, corr[:, 0]).points.cpu()
            scores[name].append(
                float(((moved - corr[:, 1]).norm(dim=-1) <= threshold).float().mean())
            )
    return {
        f"pck{int(threshold)}_{k}": float(np.mean(v)) if v else math.nan for k, v in scores.items()
    }


def _distributed() -> tuple[int, int]:
    """(rank, world size) under torchrun; (0, 1) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (torch.distributed.get_rank() if world > 1 else 0), world


def _check_resumable(record: dict, cfg: TrainConfig, path: Path) -> None:
    """A resumed run must train the same head on the same features; the optimiser and
    schedule settings may change (lr is applied, see :func:`train`)."""
    saved = record.get("train_config", {})
    fixed = ("data", "backbone", "layers", "stride", "text_encoder", "mask_head", "labels")
    changed = [k for k in fixed if saved.get(k) != json.loads(json.dumps(getattr(cfg, k)))]
    if changed:
        raise InputError(
            f"{path} was trained with different {', '.join(changed)}; use a new `out:` folder or `resume: false`."
        )


def train(cfg: TrainConfig) -> Path:
    """Run training; returns the path of the final checkpoint (``<out>/last.safetensors``)."""
    rank, world = _distributed()
    device = resolve_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(cfg.seed + rank)
    rng = random.Random(cfg.seed + rank)
    gen = torch.Generator().manual_seed(cfg.seed + rank)
    out = check_output_folder(cfg.out, "out:")
    backbone = load_backbone(
        cfg.backbone, layers=cfg.layers, stride=cfg.stride, weights=cfg.weights, device=device
    )
    cache = build_cache(cfg, backbone, device) if rank == 0 else None
    if world > 1:
        torch.distributed.barrier()
        cache = cache or build_cache(cfg, backbone, device)
    embedder = load_function_embedder(cfg.text_encoder)
    text = dict(zip(cache.part_masks, embedder.embed(list(cache.part_masks))))
    options = functional_pair_options(cache)
    head_config = HeadConfig(
        in_dim=backbone.dim,
        n_blocks=len(backbone.layers),
        text_dim=embedder.dim,
        mask_head=cfg.mask_head,
    )
    head = FunctionHead(head_config).to(device)
    optimizer = torch.optim.Adam(head.parameters(), lr=cfg.lr)
    step, history = 0, []
    last = out / CHECKPOINT_NAME
    if cfg.resume and training_state_path(last).is_file():
        record = read_training_state(last, head, optimizer, gen)
        _check_resumable(record, cfg, last)
        step, history = record["step"], record["history"]
        rng.setstate(record["python_rng"])
        saved_lr = record["train_config"]["lr"]
        if saved_lr != cfg.lr:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr
            if rank == 0:
                print(f"resuming at step {step} with the new lr {cfg.lr:g} (was {saved_lr:g})")
    model = torch.nn.parallel.DistributedDataParallel(head) if world > 1 else head
    backbone_spec = {
        "name": cfg.backbone,
        "layers": list(backbone.layers),
        "stride": backbone.grid.stride,
    }

    def checkpoint(path: Path) -> None:
        if rank != 0:
            return
        record = checkpoint_record(
            head,
            backbone_spec,
            cfg.text_encoder,
            train_config=asdict(cfg),
            step=step,
            history=history,
            label_source=cache.label_source,
            pseudo_label_iou=cache.pseudo_label_iou,
        )
        # The training state first: if a crash falls between the two writes, the resumable
        # state is never older than the weights beside it.
        save_training_state(path, head, optimizer, record, gen, rng.getstate())
        save_checkpoint(path, head, record)

    bar = tqdm(
        total=cfg.steps,
        initial=min(step, cfg.steps),
        desc="training",
        unit="step",
        disable=rank != 0,
    )
    while step < cfg.steps:
        model.train()
        terms = training_step(model, cache, options, text, cfg, rng, gen, device)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()
        step += 1
        bar.update(1)
        bar.set_postfix({k: f"{v.item():.3f}" for k, v in terms.items()})
        if step % cfg.val_every == 0 or step == cfg.steps:
            head.eval()
            record = {"step": step, **{k: v.item() for k, v in terms.items()}}
            if rank == 0 and cfg.val_pairs > 0:
                record.update(
                    validation_pck(head, backbone, embedder, cfg.data, cfg.val_pairs, device)
                )
                bar.write(json.dumps(record))
            history.append(record)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            checkpoint(last)
        if rank == 0 and cfg.snapshot_every and step % cfg.snapshot_every == 0:
            save_checkpoint(
                out / f"step-{step:06d}.safetensors",
                head,
                checkpoint_record(
                    head,
                    backbone_spec,
                    cfg.text_encoder,
                    train_config=asdict(cfg),
                    step=step,
                    label_source=cache.label_source,
                ),
            )
    bar.close()
    if rank == 0:
        if not last.is_file():  # resumed past the last step before any checkpoint of this run
            checkpoint(last)
        with atomic_path(out / "history.json") as tmp:
            tmp.write_text(json.dumps(history, indent=2))
    return last


def train_command(args) -> int:
    """``funcorr train``: a run from --config and the overriding options."""
    overrides = {"data": args.data, "out": args.out, "steps": args.steps, "device": args.device}
    if args.config:
        cfg = TrainConfig.from_yaml(args.config, **overrides)
    elif args.data is None:
        raise InputError("Give --config FILE or at least --data DIR.")
    else:
        cfg = TrainConfig(**{k: v for k, v in overrides.items() if v is not None})
    print(train(cfg))
    return 0

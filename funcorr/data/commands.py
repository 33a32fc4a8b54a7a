"""``funcorr make-data`` and ``funcorr show-pair``."""

from __future__ import annotations

import argparse
import dataclasses
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    from funcorr.cli import non_negative_int, positive_int  # noqa: PLC0415

    make = subparsers.add_parser(
        "make-data",
        help="render a functional-correspondence dataset (training views + evaluation pairs)",
        description="Generate procedural assets, render them and compute functional ground truth. "
        "Resumable: finished assets are skipped when run again with the same options.",
    )
    make.add_argument("--out", required=True, help="dataset folder (created; resumed if it exists)")
    make.add_argument(
        "--preset",
        default="default",
        help="tiny | benchmark | default | train (options below override it)",
    )
    make.add_argument(
        "--functions", metavar="LIST", help="comma-separated functions, e.g. pour-with,cut-with"
    )
    make.add_argument("--assets-per-category", type=non_negative_int, metavar="N")
    make.add_argument(
        "--views",
        type=positive_int,
        dest="train_views",
        metavar="V",
        help="views per training asset (paper: 19)",
    )
    make.add_argument(
        "--eval-views", type=positive_int, metavar="V", help="views per test asset (paper: 30)"
    )
    make.add_argument(
        "--image-size", type=positive_int, metavar="PX", help="square image side (224)"
    )
    make.add_argument(
        "--seed", type=int, metavar="S", help="same seed and options => byte-identical files"
    )
    make.add_argument(
        "--pairs-per-function",
        type=positive_int,
        metavar="N",
        help="evaluation pairs per function and split",
    )
    make.add_argument(
        "--unseen",
        dest="unseen_categories",
        metavar="CATS",
        help="comma-separated categories held out as 'unseen'",
    )
    make.add_argument("--background", help="white | black | grey | random (flat appearance)")
    make.add_argument(
        "--appearance",
        choices=("random", "flat"),
        help="random: textures, random lights, shadows, lenses, roll, framing and backdrops per "
        "view; flat: part colours under fixed lights (default: the preset's; only 'train' is random)",
    )
    make.add_argument(
        "--backgrounds",
        metavar="KINDS",
        help="backdrops of random appearance, comma-separated: colour,studio,gradient,noise,photo",
    )
    make.add_argument(
        "--meshes",
        metavar="DIR|CSV",
        help="real meshes to add: a folder (GLB/OBJ/PLY + .parts.json sidecars) or the "
        "manifest.csv of `funcorr curate` (categories and splits from its rows); "
        "--assets-per-category 0 adds no procedural assets",
    )
    make.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="processes for rendering and pairs (same output)",
    )
    make.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    make.set_defaults(func=make_data)

    show = subparsers.add_parser(
        "show-pair", help="draw an evaluation pair with colour-coded ground-truth correspondences"
    )
    show.add_argument("root", help="dataset folder made by make-data")
    show.add_argument("--out", required=True, help="PNG to write")
    show.add_argument("--split", default="test", help="test | unseen")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--pair", help="pair id, e.g. test-000003")
    which.add_argument("--index", type=non_negative_int, default=0, help="pair index (default 0)")
    show.add_argument(
        "--max-points", type=positive_int, default=300, help="points drawn (evenly subsampled)"
    )
    show.set_defaults(func=show_pair, out_is_file=True)


def _csv(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def config_from_args(args: argparse.Namespace):
    """The preset named by ``--preset`` with every option given on the command line applied."""
    from funcorr.data.format import PRESETS  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415

    if args.preset not in PRESETS:
        raise InputError(f"Unknown preset {args.preset!r}; use one of {', '.join(PRESETS)}.")
    if args.functions is not None and not _csv(args.functions):
        raise InputError(
            f"--functions {args.functions!r} names no function; give e.g. pour-with,cut-with."
        )
    overrides = {
        "functions": _csv(args.functions),
        "unseen_categories": _csv(args.unseen_categories),
        **{
            k: getattr(args, k)
            for k in (
                "assets_per_category",
                "train_views",
                "eval_views",
                "image_size",
                "seed",
                "pairs_per_function",
                "background",
                "meshes",
            )
        },
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    config = dataclasses.replace(PRESETS[args.preset], **given)
    backgrounds = _csv(getattr(args, "backgrounds", None))
    return _with_appearance(config, getattr(args, "appearance", None), backgrounds)


def _with_appearance(config, mode: str | None, backgrounds: tuple[str, ...] | None):
    """Apply ``--appearance`` and ``--backgrounds`` to a DataConfig."""
    from funcorr.data.appearance import AppearanceConfig  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415

    if mode == "flat":
        if backgrounds:
            raise InputError(
                "--backgrounds applies to --appearance random; flat renders use --background."
            )
        return dataclasses.replace(config, appearance=None)
    appearance = config.appearance
    if mode == "random" and appearance is None:
        appearance = AppearanceConfig()
    if backgrounds:
        if appearance is None:
            raise InputError("--backgrounds needs random appearance: add --appearance random.")
        appearance = dataclasses.replace(appearance, backgrounds=backgrounds)
    return dataclasses.replace(config, appearance=appearance)


def make_data(args: argparse.Namespace) -> int:
    from funcorr.data.build import make_dataset  # noqa: PLC0415

    config = config_from_args(args)
    start = time.perf_counter()
    report = make_dataset(config, args.out, progress=not args.no_progress, workers=args.workers)
    pairs = ", ".join(f"{n} {split} pairs" for split, n in report.pairs.items())
    print(
        f"{args.out}: {report.written} assets written, {report.skipped} already there, {pairs} "
        f"({time.perf_counter() - start:.1f} s)"
    )
    if config.meshes:
        _note_unlabelled_meshes(args.out)
    return 0


def _note_unlabelled_meshes(root: str) -> None:
    """Say how many real meshes have no functional part (no sidecar ``functions``)."""
    from funcorr.data.readers import read_index  # noqa: PLC0415

    assets = read_index(root)["assets"]
    bare = [a for a, info in assets.items() if a.startswith("mesh-") and not info["functions"]]
    if bare:
        n_meshes = sum(a.startswith("mesh-") for a in assets)
        print(
            f"note: {len(bare)} of {n_meshes} real meshes have no functional part labels "
            "(.parts.json 'functions'); they train the multi-view loss only and are in no "
            "functional or evaluation pair"
        )


def show_pair(args: argparse.Namespace) -> int:
    from funcorr.data.readers import EvalPairs  # noqa: PLC0415
    from funcorr.data.viz import save_pair_picture  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415

    pairs = EvalPairs(args.root, args.split)
    if len(pairs) == 0:
        raise InputError(f"{args.root} has no {args.split} pairs.")
    index = pairs.find(args.pair) if args.pair else args.index
    if not 0 <= index < len(pairs):
        raise InputError(f"--index {index} is out of range: {args.split} has {len(pairs)} pairs.")
    item = pairs[index]
    save_pair_picture(args.out, item, args.max_points)
    print(
        f"{args.out}: {item['pair_id']} {item['function']} {item['category1']} -> {item['category2']}, "
        f"{len(item['correspondences'])} correspondences"
    )
    return 0

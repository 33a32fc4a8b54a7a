"""``funcorr transfer`` on the command line: its options, read without loading torch; the
work is :func:`funcorr.transfer.transfer_command`. Options left unset (None) take the defaults
of :class:`funcorr.model.modes.ModeRule` and :class:`funcorr.transfer.TransferConfig`, which
the help texts quote (``tests/test_transfer.py`` checks they agree)."""

from __future__ import annotations

import argparse


def _transfer(args: argparse.Namespace) -> int:
    from funcorr.transfer import transfer_command

    return transfer_command(args)


def register_transfer(sub) -> None:
    """Add the ``transfer`` sub-command to an argparse sub-parser collection."""
    from funcorr.cli import (
        add_feature_options,
        add_refinement_options,
        non_negative_float,
        positive_float,
        positive_int,
    )

    parser = sub.add_parser(
        "transfer",
        help="transfer demonstration keypoints or a 2D trajectory to another object",
        description="Match each demonstration point into the target; report similarity, cycle "
        "consistency and, for ambiguous points, every strong mode. Writes transfer.json and transfer.png.",
    )
    parser.add_argument("source", help="source image (the demonstration's pixels)")
    parser.add_argument("target", help="target image")
    parser.add_argument(
        "--demo",
        help='demonstration JSON: [[x, y], ...] or {"trajectory"|"keypoints": [{"xy": [x, y], "t": .., "name": ..}]}',
    )
    parser.add_argument(
        "--points",
        nargs="+",
        metavar="X,Y",
        help="demonstration points given inline (instead of --demo)",
    )
    parser.add_argument(
        "--kind",
        choices=["trajectory", "keypoints"],
        default="trajectory",
        help="what --points are (default trajectory)",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--mode-ratio",
        type=positive_float,
        help="a mode rises >= this fraction of the best peak's height above the median similarity "
        "(default 0.8)",
    )
    parser.add_argument(
        "--mode-distance",
        type=non_negative_float,
        help="network pixels between modes (default 20)",
    )
    parser.add_argument("--max-modes", type=positive_int, help="modes kept per point (default 3)")
    parser.add_argument(
        "--cycle-tolerance",
        type=non_negative_float,
        help="network pixels allowed by the cycle check (default 7)",
    )
    add_refinement_options(parser)
    parser.add_argument("--source-depth", help="source depth: .npy (metres) or 16-bit .png (mm)")
    parser.add_argument("--target-depth", help="target depth: .npy (metres) or 16-bit .png (mm)")
    parser.add_argument(
        "--source-intrinsics", help="source K: 'fx,fy,cx,cy' or a .json/.npy/.txt 3x3"
    )
    parser.add_argument(
        "--target-intrinsics", help="target K: 'fx,fy,cx,cy' or a .json/.npy/.txt 3x3"
    )
    parser.add_argument(
        "--depth-scale",
        type=positive_float,
        help="metres per depth unit (default: 0.001 for PNG, 1 for .npy)",
    )
    add_feature_options(parser)
    parser.set_defaults(func=_transfer)

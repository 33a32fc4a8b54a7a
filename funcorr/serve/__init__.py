"""``funcorr serve``: a local web page to look at correspondences before trusting them.

The page (``static/index.html``, plain JavaScript) talks to a FastAPI app (:mod:`.app`) that
wraps a :class:`~funcorr.serve.viewer.Viewer`: the images, features and matchers it keeps in
bounded LRU caches, and the computations behind each click. Registering this module also adds
``funcorr transfer`` (:mod:`funcorr.transfer`), so one import gives the CLI both commands.

Imports of FastAPI, uvicorn and the model stay inside the handler so that ``funcorr --help``
stays fast.
"""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_PORT = 8765
HOST = "127.0.0.1"


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from funcorr.match_command import checkpoint_from_args, matcher_config_from_args
    from funcorr.serve.app import create_app
    from funcorr.serve.viewer import Viewer, ViewerConfig, find_checkpoints

    found = find_checkpoints(Path(args.checkpoint_dir)) if args.checkpoint_dir else ()
    # The page offers the shipped model (or the one named) even when no --function is given
    # at start: a function picked on the page then selects it.
    offered = checkpoint_from_args(args, function_known=True)
    checkpoints = ((Path(offered),) if offered else ()) + tuple(
        p for p in found if str(p) != offered
    )
    viewer = Viewer(
        ViewerConfig(
            defaults=matcher_config_from_args(args),
            checkpoints=checkpoints,
            data=Path(args.data) if args.data else None,
            feature_cache_size=args.cache_size,
        )
    )
    if not args.no_warmup:
        # Load the default backbone before announcing the URL, so the first click is fast.
        print("loading the default matcher ...", flush=True)
        viewer.warm_up()
    print(f"funcorr viewer on http://{HOST}:{args.port}/  (Ctrl-C to stop)", flush=True)
    uvicorn.run(create_app(viewer), host=HOST, port=args.port, log_level="warning")
    return 0


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1-65535."""
    import argparse

    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {text!r}")
    return int(text)


def register(sub) -> None:
    """Add ``serve`` (and ``transfer``) to an argparse sub-parser collection."""
    from funcorr.cli import add_feature_options, positive_int
    from funcorr.transfer_command import register_transfer

    parser = sub.add_parser(
        "serve",
        help="local web viewer: click a source point, see its match and similarity heat map",
        description=f"Serve the correspondence viewer on http://{HOST}:PORT/ (local only). "
        "The feature options set the page's defaults.",
    )
    parser.add_argument(
        "--port",
        type=port_number,
        default=DEFAULT_PORT,
        help=f"port on {HOST} (default {DEFAULT_PORT})",
    )
    parser.add_argument(
        "--data", help="dataset folder (with index.json) whose evaluation pairs the page lists"
    )
    parser.add_argument(
        "--checkpoint-dir",
        help="folder searched for trained heads offered on the page (*.safetensors checkpoints; legacy *.pt read as plain data only)",
    )
    parser.add_argument(
        "--cache-size", type=positive_int, default=32, help="images whose features are kept (LRU)"
    )
    parser.add_argument(
        "--no-warmup", action="store_true", help="do not load the default backbone before serving"
    )
    add_feature_options(parser)
    parser.set_defaults(func=_serve)
    register_transfer(sub)

"""``funcorr demo``: the main job on a built-in default, with nothing to download.

Renders a kettle and a watering can (both ``pour-with``) with the data engine, saves them as
RGBA images (alpha = object mask) and runs ``funcorr match`` on them: top discovered matches
and dense label transfer in ``matches.png``.
"""

from __future__ import annotations

from pathlib import Path

# (category, seed, view): side views where both spouts point right and handles are visible.
DEMO_OBJECTS = (("kettle", 3, 2), ("watering can", 5, 5))


def render_demo_images(out_dir: Path, size: int = 224) -> list[Path]:
    """Render the demo objects as RGBA PNGs into ``out_dir``; returns their paths."""
    import numpy as np

    from funcorr.data.assets import generate
    from funcorr.data.render import render_views
    from funcorr.images import save_png_atomic

    paths = []
    for category, seed, view_index in DEMO_OBJECTS:
        views = render_views(
            generate(category, seed),
            view_index + 1,
            (size, size),
            seed=seed,
            elevation_range=(10, 30),
        )
        view = views[view_index]
        rgba = np.dstack([view.rgb, view.mask.astype(np.uint8) * 255])
        path = out_dir / f"{category.replace(' ', '_')}.png"
        save_png_atomic(rgba, path)
        paths.append(path)
    return paths


def _demo(args) -> int:
    from funcorr.cli import main

    out = Path(args.out)
    source, target = render_demo_images(out)
    extra = ["--checkpoint", args.checkpoint] if args.checkpoint else ["--model", args.model]
    return main(
        [
            "match",
            str(source),
            str(target),
            "--function",
            "pour-with",
            "--top",
            "15",
            "--device",
            args.device,
            "--out",
            str(out),
            *extra,
        ]
    )


def register(sub) -> None:
    parser = sub.add_parser("demo", help="match two built-in rendered objects and write a picture")
    parser.add_argument("--out", default="demo", help="output directory (default: demo)")
    parser.add_argument(
        "--model",
        default="auto",
        help="auto (the shipped funcorr-s14 model; default), none (raw DINOv2 features), or a model name / .safetensors path",
    )
    parser.add_argument("--checkpoint", help="trained head to use instead of the shipped model")
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=_demo)

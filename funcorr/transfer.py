"""``funcorr transfer``: move a demonstration (keypoints or a 2D trajectory) to another object.

One idea at about 470 lines: the ``transfer`` command end to end (transfer with confidence,
its JSON record, its picture and its options); the mode rule and the input formats live in
:mod:`funcorr.model.modes` and :mod:`funcorr.demonstration`.

A demonstration is a list of source-image points, e.g. where a kettle's spout moves while
pouring. Each point is matched into the target image with the matching engine and reported
with its confidence:

* ``similarity``: cosine of the source feature and its nearest target feature;
* ``cycle_error_px``: how far the target match maps back from the source point (forward-
  backward check), in source pixels; ``cycle_consistent`` when that is within
  ``cycle_tolerance`` network pixels;
* ``modes``: the strong peaks of the point's similarity map on the target object. A point with
  two or more modes is ``ambiguous`` (symmetric rims, two blades): the dense functional
  correspondence paper names this as its main failure, so we return every mode with its score
  instead of silently picking one.

The mode rule is :mod:`funcorr.model.modes`; demonstration and camera inputs are
:mod:`funcorr.demonstration`.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from funcorr.demonstration import (
    Camera,
    Demonstration,
    DemonstrationKind,
    backproject_points,
    load_demonstration,
    load_depth,
    load_intrinsics,
    parse_demonstration,
)
from funcorr.files import write_all
from funcorr.images import InputError, LoadedImage, load_image, save_png
from funcorr.model.matching import ImageFeatures, similarity_heatmap, transfer_points
from funcorr.model.modes import ModeRule, Modes, densify, find_modes

if TYPE_CHECKING:
    from funcorr.images import Resize
    from funcorr.model.matcher import Matcher


# --------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferConfig:
    """How points are transferred and judged.

    cycle_tolerance: network pixels a point may land away from itself after target -> source;
    soft_window: soft-argmax refinement radius (network pixels) of the best match, or None;
    flip: also match the mirrored target and keep the better-agreeing orientation
    (:mod:`funcorr.model.flip`).
    """

    modes: ModeRule = field(default_factory=ModeRule)
    cycle_tolerance: float = 7.0
    soft_window: float | None = None
    flip: bool = False


@dataclass(frozen=True)
class PointTransfer:
    """A transferred demonstration, all in original pixels.

    target (N, 2) best match; similarity (N,); cycle_error (N,) source pixels; cycle_consistent
    (N,) bool; modes: one :class:`Modes` per point (target pixels).
    """

    target: torch.Tensor
    similarity: torch.Tensor
    cycle_error: torch.Tensor
    cycle_consistent: torch.Tensor
    modes: list[Modes]

    @property
    def ambiguous(self) -> torch.Tensor:
        """(N,) bool: the point has two or more modes."""
        return torch.tensor([m.ambiguous for m in self.modes], dtype=torch.bool)


def transfer_demonstration(
    src: ImageFeatures,
    tgt: ImageFeatures,
    src_plan: Resize,
    tgt_plan: Resize,
    points: torch.Tensor,
    config: TransferConfig = TransferConfig(),
) -> PointTransfer:
    """Transfer source ``points`` (N, 2, original source pixels) to the target, with confidence."""
    # Every step below looks at all target pixels: compute their features once.
    tgt = densify(tgt)
    net_points = src_plan.to_net(points.float())
    forward = transfer_points(src, tgt, net_points, soft_window=config.soft_window)
    back = transfer_points(tgt, src, forward.points)
    net_error = (back.points.cpu() - net_points).norm(dim=-1)
    # Reported in source pixels (what a user measures on the image); judged in network pixels.
    orig_error = (src_plan.to_orig(back.points.cpu()) - points.float()).norm(dim=-1)
    modes = []
    for point in net_points:
        found = find_modes(similarity_heatmap(src, tgt, point), tgt.mask, config.modes)
        modes.append(
            Modes(tgt_plan.to_orig(found.xy.cpu()), found.similarity.cpu(), found.strength.cpu())
        )
    return PointTransfer(
        tgt_plan.to_orig(forward.points.cpu()),
        forward.similarity.cpu(),
        orig_error,
        net_error <= config.cycle_tolerance,
        modes,
    )


@dataclass
class TransferRequest:
    """Inputs of ``funcorr transfer``. Cameras are optional, per image."""

    source: Path
    target: Path
    demonstration: Demonstration
    source_camera: Camera | None = None
    target_camera: Camera | None = None
    config: TransferConfig = field(default_factory=TransferConfig)


def _check_camera(camera: Camera | None, image: LoadedImage, which: str) -> None:
    if camera is not None and camera.depth.shape[::-1] != image.size:
        width, height = image.size
        raise InputError(
            f"The {which} depth map is {camera.depth.shape[1]}x{camera.depth.shape[0]} but the {which} image is {width}x{height}."
        )


def _inside(mask: torch.Tensor, xy: torch.Tensor) -> torch.Tensor:
    """(N,) bool: pixels ``xy`` (N, 2), rounded, fall inside the (H, W) ``mask``."""
    height, width = mask.shape
    cols = xy[:, 0].round().long().clamp(0, width - 1)
    rows = xy[:, 1].round().long().clamp(0, height - 1)
    return mask[rows, cols]


def _xyz_or_none(point: np.ndarray) -> list[float] | None:
    return None if not np.isfinite(point).all() else [float(v) for v in point]


def run_transfer(request: TransferRequest, matcher: Matcher) -> tuple[dict, np.ndarray]:
    """Transfer ``request.demonstration``. Returns (JSON-ready record, picture (H, W, 3) uint8)."""
    from funcorr.match_command import check_points, encode_pair, object_mask_record, record_header

    src_image, tgt_image = load_image(request.source), load_image(request.target)
    demo = request.demonstration
    points = check_points(demo.points.tolist(), src_image)
    _check_camera(request.source_camera, src_image, "source")
    _check_camera(request.target_camera, tgt_image, "target")
    src, tgt = matcher.prepare(src_image), matcher.prepare(tgt_image)
    encoded, src_feat, tgt_feat, orientation = encode_pair(matcher, src, tgt, request.config.flip)
    moved = transfer_demonstration(src_feat, tgt_feat, src.plan, tgt.plan, points, request.config)

    on_object = _inside(src_feat.mask.cpu(), src.plan.to_net(points))
    src_xyz = (
        backproject_points(points.numpy().astype(np.float64), request.source_camera)
        if request.source_camera
        else None
    )
    tgt_xyz = (
        backproject_points(moved.target.numpy().astype(np.float64), request.target_camera)
        if request.target_camera
        else None
    )
    record = {
        **record_header(request.source, request.target, matcher),
        "kind": demo.kind,
        "mode_rule": {
            **asdict(request.config.modes),
            "units": "network pixels",
            "rule": MODE_RULE_TEXT,
        },
        "cycle_tolerance_network_px": request.config.cycle_tolerance,
        "points": [
            _point_record(demo, i, points[i], moved, bool(on_object[i]), src_xyz, tgt_xyz)
            for i in range(len(points))
        ],
        "summary": {
            "points": len(points),
            "ambiguous": int(moved.ambiguous.sum()),
            "cycle_inconsistent": int((~moved.cycle_consistent).sum()),
            "mean_similarity": float(moved.similarity.mean()),
        },
    }
    record["object_masks"] = object_mask_record(encoded)
    if orientation is not None:
        record["orientation"] = orientation
    if request.source_camera or request.target_camera:
        record["xyz_frame"] = (
            "camera frame of each image (OpenCV: x right, y down, z forward), metres"
        )
    if matcher.head is None and matcher.config.function:
        record["note"] = (
            "Raw backbone features do not depend on the function; use --model auto (the shipped model, with the default backbone) or --checkpoint for function-conditioned matching."
        )
    picture = draw_demonstration(src_image, tgt_image, points.numpy(), moved, demo.kind)
    return record, np.asarray(picture)


def _point_record(
    demo: Demonstration,
    i: int,
    source: torch.Tensor,
    moved: PointTransfer,
    on_object: bool,
    src_xyz: np.ndarray | None,
    tgt_xyz: np.ndarray | None,
) -> dict:
    """The JSON entry of demonstration point ``i``."""
    entry: dict = {"index": i}
    if demo.times is not None:
        entry["t"] = demo.times[i]
    if demo.names is not None and demo.names[i] is not None:
        entry["name"] = demo.names[i]
    modes = moved.modes[i]
    entry.update(
        source=source.tolist(),
        target=moved.target[i].tolist(),
        similarity=float(moved.similarity[i]),
        cycle_error_px=float(moved.cycle_error[i]),
        cycle_consistent=bool(moved.cycle_consistent[i]),
        ambiguous=modes.ambiguous,
        modes=[
            {"target": xy.tolist(), "similarity": float(sim), "strength": float(strength)}
            for xy, sim, strength in zip(modes.xy, modes.similarity, modes.strength)
        ],
    )
    if not on_object:
        entry["warning"] = "the source point lies outside the source object mask"
    if src_xyz is not None:
        entry["source_xyz"] = _xyz_or_none(src_xyz[i])
    if tgt_xyz is not None:
        entry["target_xyz"] = _xyz_or_none(tgt_xyz[i])
    return entry


MODE_RULE_TEXT = (
    "a mode is a local maximum (window radius min_distance) of the similarity map on the target "
    "object whose strength = (similarity - median) / (best - median) >= ratio (median over the "
    "target object), at least min_distance from every stronger mode; at most max_modes; "
    "ambiguous = 2 or more modes"
)


# --------------------------------------------------------------------------------------------
# Picture
# --------------------------------------------------------------------------------------------


def draw_demonstration(
    src_image: LoadedImage,
    tgt_image: LoadedImage,
    src_xy: np.ndarray,
    moved: PointTransfer,
    kind: DemonstrationKind,
) -> Image.Image:
    """Source and target side by side with the demonstration on each, in original pixels.

    Dots are coloured by order (time); a trajectory is joined by a line. On the target, an
    ambiguous point also gets a ring at each further mode; a point failing the cycle check is
    drawn with a black outline. A caption explains the marks.
    """
    from PIL import ImageDraw

    from funcorr.viz import colours, object_picture, side_by_side

    canvas, offset = side_by_side(object_picture(src_image), object_picture(tgt_image))
    scale = max(1, round(max(canvas.shape[:2]) / 400))
    caption = _caption_lines(canvas.shape[1])
    image = Image.new(
        "RGB", (canvas.shape[1], canvas.shape[0] + 12 * len(caption) + 4), (255, 255, 255)
    )
    image.paste(Image.fromarray(canvas))
    draw = ImageDraw.Draw(image)
    tgt_xy = moved.target.numpy() + np.array([offset, 0.0])
    palette = [tuple(int(c) for c in rgb) for rgb in colours(len(src_xy))]
    radius = 3 * scale
    if kind == "trajectory" and len(src_xy) > 1:
        for path in (src_xy, tgt_xy):
            draw.line([tuple(p) for p in path.tolist()], fill=(255, 255, 255), width=3 * scale)
            for i in range(len(path) - 1):
                draw.line([tuple(path[i]), tuple(path[i + 1])], fill=palette[i], width=scale)
    for i, colour in enumerate(palette):
        for mode in moved.modes[i].xy[1:].numpy() + np.array([offset, 0.0]):
            x, y = mode
            draw.ellipse(
                [x - 2 * radius, y - 2 * radius, x + 2 * radius, y + 2 * radius],
                outline=colour,
                width=scale,
            )
        outline = (255, 255, 255) if moved.cycle_consistent[i] else (0, 0, 0)
        for x, y in (src_xy[i], tgt_xy[i]):
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius],
                fill=colour,
                outline=outline,
                width=scale,
            )
    for row, line in enumerate(caption):
        draw.text((4, canvas.shape[0] + 2 + 12 * row), line, fill=(0, 0, 0))
    return image


CAPTION = (
    "left: source, right: target",
    "dots: order (blue first)",
    "rings: other modes (ambiguous)",
    "black outline: fails cycle check",
)


def _caption_lines(width: int, char_width: int = 6) -> list[str]:
    """The caption parts packed into lines that fit ``width`` pixels of PIL's default font."""
    lines: list[str] = []
    for part in CAPTION:
        joined = f"{lines[-1]}   {part}" if lines else part
        if lines and len(joined) * char_width <= width - 8:
            lines[-1] = joined
        else:
            lines.append(part)
    return lines


def write_transfer_outputs(record: dict, picture: np.ndarray, out_dir: Path) -> list[Path]:
    """Write transfer.json and transfer.png, both or neither. Returns the paths written."""
    return write_all(
        out_dir,
        {
            "transfer.png": lambda tmp: save_png(picture, tmp),
            "transfer.json": lambda tmp: tmp.write_text(json.dumps(record, indent=2)),
        },
    )


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _camera_from_args(
    depth: str | None, intrinsics: str | None, scale: float | None, which: str
) -> Camera | None:
    if depth is None and intrinsics is None:
        return None
    if depth is None or intrinsics is None:
        raise InputError(
            f"3D output for the {which} image needs both --{which}-depth and --{which}-intrinsics."
        )
    return Camera(load_depth(depth, scale), load_intrinsics(intrinsics))


def transfer_command(args: argparse.Namespace) -> int:
    """``funcorr transfer`` (options: :mod:`funcorr.transfer_command`; None = the default)."""
    from funcorr.match_command import matcher_config_from_args, parse_point
    from funcorr.model.matcher import Matcher
    from funcorr.text import resolve_function

    if args.function:
        resolve_function(args.function)
    if (args.demo is None) == (args.points is None):
        raise InputError("Give the demonstration as either --demo FILE.json or --points X,Y ...")
    if args.demo is not None:
        demo = load_demonstration(args.demo)
    else:
        demo = parse_demonstration(
            [list(parse_point(p)) for p in args.points], default_kind=args.kind
        )
    matcher = Matcher(matcher_config_from_args(args))
    request = TransferRequest(
        Path(args.source),
        Path(args.target),
        demo,
        _camera_from_args(args.source_depth, args.source_intrinsics, args.depth_scale, "source"),
        _camera_from_args(args.target_depth, args.target_intrinsics, args.depth_scale, "target"),
        TransferConfig(
            ModeRule(
                ModeRule.ratio if args.mode_ratio is None else args.mode_ratio,
                ModeRule.min_distance if args.mode_distance is None else args.mode_distance,
                args.max_modes or ModeRule.max_modes,
            ),
            TransferConfig.cycle_tolerance
            if args.cycle_tolerance is None
            else args.cycle_tolerance,
            matcher.config.soft_window,
            args.flip,
        ),
    )
    record, picture = run_transfer(request, matcher)
    for path in write_transfer_outputs(record, picture, Path(args.out)):
        print(path)
    return 0

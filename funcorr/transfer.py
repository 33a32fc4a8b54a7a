"""``funcorr transfer``: move a demonstration (keypoints or a 2D trajectory) to another object.

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

MODE RULE (:func:`find_modes`). On the similarity heat map of a source point, restricted to the
target object mask, let ``median`` be the map's median over the mask and ``best`` its maximum.
A *mode* is a pixel that

1. is a local maximum: the largest value in the (2r+1) x (2r+1) window around it, r =
   ``min_distance`` network pixels;
2. is strong: ``strength = (similarity - median) / (best - median) >= ratio`` (default 0.8;
   the best pixel has strength 1 and is always mode 1);
3. lies at least ``min_distance`` network pixels (Euclidean, default 20) from every stronger
   mode (greedy non-maximum suppression, best first);

and at most ``max_modes`` (default 3) are kept. A point is *ambiguous* when it has two or more
modes. Distances are in network pixels (the ``--size`` square, 224 by default) because
features live there; the output converts positions to original pixels.

With depth maps and intrinsics K the points are also back-projected to 3D in that image's camera
frame (OpenCV: x right, y down, z forward; metres): ``X = z K^-1 [x, y, 1]^T`` with z the depth at
the nearest pixel; ``null`` where that depth is missing (0 or not finite).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from funcorr.files import read_json, write_all
from funcorr.images import InputError, LoadedImage, check_image_size, load_image, save_png
from funcorr.model.matching import ImageFeatures, mask_pixels, similarity_heatmap, transfer_points

if TYPE_CHECKING:
    from funcorr.images import Resize
    from funcorr.model.matcher import Matcher

DemonstrationKind = Literal["trajectory", "keypoints"]


# --------------------------------------------------------------------------------------------
# Modes of a similarity map
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeRule:
    """Which peaks of a similarity map count as separate answers (see the module docstring).

    ratio: a mode rises at least ``ratio`` x as far above the map's median (over the target
    mask) as the best pixel does; min_distance: network pixels between modes (also the
    local-maximum window radius); max_modes: how many to keep at most.
    """

    ratio: float = 0.8
    min_distance: float = 20.0
    max_modes: int = 3

    def __post_init__(self) -> None:
        if not 0 < self.ratio <= 1:
            raise InputError(f"The mode ratio must be in (0, 1], got {self.ratio}.")
        if self.min_distance < 1:
            raise InputError(f"The mode distance must be >= 1 pixel, got {self.min_distance}.")
        if self.max_modes < 1:
            raise InputError(f"max_modes must be >= 1, got {self.max_modes}.")


@dataclass(frozen=True)
class Modes:
    """Peaks of one similarity map, best first.

    xy (K, 2) pixel xy; similarity (K,) cosine; strength (K,) height above the median
    relative to the best peak's (1 for the best).
    """

    xy: torch.Tensor
    similarity: torch.Tensor
    strength: torch.Tensor

    @property
    def ambiguous(self) -> bool:
        return self.xy.shape[0] >= 2


def local_maxima(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Pixels equal to the maximum of their (2 radius + 1)^2 window. values (..., H, W) -> bool.

    The square max filter is separable, so it runs as a row pass then a column pass
    (2 (2r+1) comparisons per pixel instead of (2r+1)^2).
    """
    shape = values.shape
    flat = values.reshape(-1, 1, *shape[-2:])
    size = 2 * radius + 1
    rows = F.max_pool2d(flat, (1, size), stride=1, padding=(0, radius))
    window_max = F.max_pool2d(rows, (size, 1), stride=1, padding=(radius, 0))
    return (flat == window_max).reshape(shape)


def find_modes(heatmap: torch.Tensor, mask: torch.Tensor, rule: ModeRule = ModeRule()) -> Modes:
    """Modes of a (H, W) similarity map over the (H, W) bool ``mask`` by ``rule``; best first.

    Heights are measured from the median over the mask because raw cosines of ViT features
    sit high everywhere on an object (0.8-0.9 is common), so a ratio of raw similarities
    would call almost any second peak a mode.
    """
    mask = mask.to(heatmap.device)
    if not mask.any():
        raise ValueError("The target mask is empty: a similarity map there has no mode.")
    values = heatmap.float().masked_fill(~mask, float("-inf"))
    peaks = local_maxima(values, max(1, round(rule.min_distance))) & mask
    xy = mask_pixels(peaks).to(values.device)
    scores = values[peaks]  # row-major, the same order as mask_pixels
    order = torch.sort(scores, descending=True, stable=True).indices
    xy, scores = xy[order], scores[order]
    baseline = values[mask].median()
    height = scores[0] - baseline
    # A flat map has no height to compare against: only peaks tied with the best count then.
    strength = (scores - baseline) / height if height > 1e-6 else (scores >= scores[0]).float()
    kept: list[int] = []
    for i in range(xy.shape[0]):
        if len(kept) == rule.max_modes or strength[i] < rule.ratio:
            break
        if kept and (xy[kept] - xy[i]).norm(dim=-1).min() < rule.min_distance:
            continue
        kept.append(i)
    return Modes(xy[kept], scores[kept], strength[kept])


def densify(features: ImageFeatures) -> ImageFeatures:
    """The same features with every pixel's vector computed once and kept, (H * W, C).

    Sampling whole pixels becomes a table lookup, so each
    :func:`~funcorr.model.matching.similarity_heatmap` over this image costs one matrix product
    instead of sampling (or, with a trained head, running the head on) every pixel again.
    Other points fall back to the original sampler. Memory: H * W * C floats (77 MB at 224 px
    and 384 channels).
    """
    height, width = features.size
    table = features.sample(mask_pixels(torch.ones(height, width, dtype=torch.bool)))

    def sample(points: torch.Tensor) -> torch.Tensor:
        rounded = points.round()
        inside = bool(((rounded >= 0) & (rounded < rounded.new_tensor([width, height]))).all())
        if not (inside and torch.equal(rounded, points)):
            return features.sample(points)
        index = (rounded[:, 1] * width + rounded[:, 0]).long().to(table.device)
        if index.shape[0] == table.shape[0] and torch.equal(index, torch.arange(table.shape[0], device=table.device)):
            return table  # every pixel in row-major order, as similarity_heatmap asks: no copy
        return table[index]

    return ImageFeatures(sample, features.size, features.mask)


# --------------------------------------------------------------------------------------------
# Demonstrations and cameras
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Demonstration:
    """Source-image points to transfer. points (N, 2) xy in original source pixels.

    kind: a ``trajectory`` is ordered in time (``times``, default 0..N-1) and drawn as a path;
    ``keypoints`` are independent (optional ``names``).
    """

    kind: DemonstrationKind
    points: torch.Tensor
    times: tuple[float, ...] | None = None
    names: tuple[str | None, ...] | None = None


def _point_entry(entry: object, where: str) -> tuple[tuple[float, float], float | None, str | None]:
    """One point as ``[x, y]`` or ``{"xy": [x, y], "t": ..., "name": ...}`` -> (xy, t, name)."""
    xy, t, name = entry, None, None
    if isinstance(entry, dict):
        xy, t, name = entry.get("xy"), entry.get("t"), entry.get("name")
    if not (isinstance(xy, (list, tuple)) and len(xy) == 2 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in xy)):
        raise InputError(f"{where}: a point must be [x, y] or {{\"xy\": [x, y]}} with finite numbers, got {entry!r}.")
    if t is not None and not isinstance(t, (int, float)):
        raise InputError(f"{where}: 't' must be a number, got {t!r}.")
    return (float(xy[0]), float(xy[1])), None if t is None else float(t), None if name is None else str(name)


def parse_demonstration(data: object, default_kind: DemonstrationKind = "trajectory") -> Demonstration:
    """A demonstration from decoded JSON.

    Accepted: a list of points (a trajectory unless ``default_kind`` says otherwise), or
    ``{"trajectory": [...]}`` / ``{"keypoints": [...]}``; each point ``[x, y]`` or
    ``{"xy": [x, y], "t": seconds, "name": "spout"}``.
    """
    kind: DemonstrationKind = default_kind
    entries = data
    if isinstance(data, dict):
        present = [key for key in ("trajectory", "keypoints") if key in data]
        if len(present) != 1:
            raise InputError("A demonstration object needs exactly one of the keys 'trajectory' or 'keypoints'.")
        kind, entries = present[0], data[present[0]]  # type: ignore[assignment]
    if not isinstance(entries, list) or not entries:
        raise InputError("A demonstration needs a non-empty list of points.")
    parsed = [_point_entry(entry, f"point {i}") for i, entry in enumerate(entries)]
    times = [t for _, t, _ in parsed]
    names = [n for _, _, n in parsed]
    if kind == "trajectory":
        times = [float(i) if t is None else t for i, t in enumerate(times)]
        if any(b < a for a, b in itertools.pairwise(times)):
            raise InputError("Trajectory times 't' must not decrease.")
    return Demonstration(
        kind,
        torch.tensor([xy for xy, _, _ in parsed], dtype=torch.float32),
        times=tuple(times) if kind == "trajectory" else None,
        names=tuple(names) if any(n is not None for n in names) else None,
    )


def load_demonstration(path: str | Path) -> Demonstration:
    """Read a demonstration JSON file (see :func:`parse_demonstration`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No demonstration file at {path}.")
    return parse_demonstration(read_json(path, "demonstration"))


@dataclass(frozen=True)
class Camera:
    """Depth and intrinsics of one image. depth (H, W) float64 metres (0 = missing); K (3, 3)."""

    depth: np.ndarray
    K: np.ndarray


def load_depth(path: str | Path, scale: float | None = None) -> np.ndarray:
    """Depth map in metres, (H, W) float64.

    ``.npy``: values times ``scale`` (default 1: already metres). ``.png``: 16-bit values
    times ``scale`` (default 0.001: millimetres, the common sensor format).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No depth map at {path}.")
    try:
        if path.suffix.lower() == ".npy":
            depth = np.load(path, allow_pickle=False).astype(np.float64)
            default_scale = 1.0
        elif path.suffix.lower() == ".png":
            with Image.open(path) as im:
                if im.mode not in ("I;16", "I;16B", "I", "I;16L"):
                    raise InputError(f"Depth PNG {path} is mode {im.mode!r}; it must be 16-bit (values in mm).")
                check_image_size(im.size, f"Depth map {path}")
                depth = np.asarray(im, dtype=np.float64)
            default_scale = 0.001
        else:
            raise InputError(f"Depth map {path} must be .npy (metres) or a 16-bit .png (millimetres).")
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(f"Could not read the depth map {path}: {' '.join(str(err).split())}") from None
    depth = np.squeeze(depth)
    if depth.ndim != 2:
        raise InputError(f"Depth map {path} must be 2D, got shape {depth.shape}.")
    return depth * (default_scale if scale is None else scale)


def load_intrinsics(spec: str) -> np.ndarray:
    """K (3, 3) from ``"fx,fy,cx,cy"``, or a file: .npy / .txt 3x3, or .json holding a 3x3 list,
    ``{"K": 3x3}`` or ``{"fx", "fy", "cx", "cy"}``. Pixel-index convention (centre of the
    top-left pixel at (0, 0))."""
    path = Path(spec)
    try:
        if path.suffix.lower() == ".json" and path.is_file():
            data = read_json(path, "intrinsics file")
            data = data.get("K", data) if isinstance(data, dict) else data
            K = _k_from_values(data) if isinstance(data, dict) else np.asarray(data, dtype=np.float64)
        elif path.suffix.lower() == ".npy" and path.is_file():
            K = np.load(path, allow_pickle=False).astype(np.float64)
        elif path.suffix.lower() == ".txt" and path.is_file():
            K = np.loadtxt(path, dtype=np.float64)
        else:
            fx, fy, cx, cy = (float(v) for v in spec.split(","))
            K = _k_from_values({"fx": fx, "fy": fy, "cx": cx, "cy": cy})
    except (ValueError, KeyError, json.JSONDecodeError) as err:
        raise InputError(f"Intrinsics {spec!r}: give 'fx,fy,cx,cy' or a .json/.npy/.txt file with a 3x3 K ({err}).") from err
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(f"Intrinsics {spec!r} must be a finite 3x3 matrix with positive fx and fy.")
    return K


def _k_from_values(values: dict) -> np.ndarray:
    return np.array([[values["fx"], 0, values["cx"]], [0, values["fy"], values["cy"]], [0, 0, 1]], dtype=np.float64)


def backproject_points(xy: np.ndarray, camera: Camera) -> np.ndarray:
    """Camera-frame 3D points (N, 3) of pixels ``xy`` (N, 2); NaN rows where depth is missing.

    Depth is read at the nearest pixel: interpolating across an object's silhouette would
    invent a depth between the object and the background.
    """
    height, width = camera.depth.shape
    cols = np.clip(np.rint(xy[:, 0]).astype(int), 0, width - 1)
    rows = np.clip(np.rint(xy[:, 1]).astype(int), 0, height - 1)
    z = camera.depth[rows, cols]
    rays = np.concatenate([xy, np.ones((xy.shape[0], 1))], axis=1) @ np.linalg.inv(camera.K).T
    points = rays / rays[:, 2:3] * z[:, None]
    points[~(np.isfinite(z) & (z > 0))] = np.nan
    return points


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
        modes.append(Modes(tgt_plan.to_orig(found.xy.cpu()), found.similarity.cpu(), found.strength.cpu()))
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
        raise InputError(f"The {which} depth map is {camera.depth.shape[1]}x{camera.depth.shape[0]} but the {which} image is {width}x{height}.")


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
    from funcorr.match import check_points, encode_pair, object_mask_record, record_header

    src_image, tgt_image = load_image(request.source), load_image(request.target)
    demo = request.demonstration
    points = check_points(demo.points.tolist(), src_image)
    _check_camera(request.source_camera, src_image, "source")
    _check_camera(request.target_camera, tgt_image, "target")
    src, tgt = matcher.prepare(src_image), matcher.prepare(tgt_image)
    encoded, src_feat, tgt_feat, orientation = encode_pair(matcher, src, tgt, request.config.flip)
    moved = transfer_demonstration(src_feat, tgt_feat, src.plan, tgt.plan, points, request.config)

    on_object = _inside(src_feat.mask.cpu(), src.plan.to_net(points))
    src_xyz = backproject_points(points.numpy().astype(np.float64), request.source_camera) if request.source_camera else None
    tgt_xyz = backproject_points(moved.target.numpy().astype(np.float64), request.target_camera) if request.target_camera else None
    record = {
        **record_header(request.source, request.target, matcher),
        "kind": demo.kind,
        "mode_rule": {**asdict(request.config.modes), "units": "network pixels", "rule": MODE_RULE_TEXT},
        "cycle_tolerance_network_px": request.config.cycle_tolerance,
        "points": [_point_record(demo, i, points[i], moved, bool(on_object[i]), src_xyz, tgt_xyz) for i in range(len(points))],
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
        record["xyz_frame"] = "camera frame of each image (OpenCV: x right, y down, z forward), metres"
    if matcher.head is None and matcher.config.function:
        record["note"] = "Raw backbone features do not depend on the function; use --model auto (the shipped model, with the default backbone) or --checkpoint for function-conditioned matching."
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


def object_picture(image: LoadedImage) -> np.ndarray:
    """(H, W, 3) uint8 picture of an image with the area outside its object mask shown white
    (transparent pixels of an RGBA file often hold black or arbitrary colours)."""
    from funcorr.viz import to_uint8

    picture = to_uint8(image.rgb).copy()
    if image.mask is not None:
        picture[~image.mask.numpy()] = 255
    return picture


def draw_demonstration(src_image: LoadedImage, tgt_image: LoadedImage, src_xy: np.ndarray, moved: PointTransfer, kind: DemonstrationKind) -> Image.Image:
    """Source and target side by side with the demonstration on each, in original pixels.

    Dots are coloured by order (time); a trajectory is joined by a line. On the target, an
    ambiguous point also gets a ring at each further mode; a point failing the cycle check is
    drawn with a black outline. A caption explains the marks.
    """
    from PIL import ImageDraw

    from funcorr.viz import colours, side_by_side

    canvas, offset = side_by_side(object_picture(src_image), object_picture(tgt_image))
    scale = max(1, round(max(canvas.shape[:2]) / 400))
    caption = _caption_lines(canvas.shape[1])
    image = Image.new("RGB", (canvas.shape[1], canvas.shape[0] + 12 * len(caption) + 4), (255, 255, 255))
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
            draw.ellipse([x - 2 * radius, y - 2 * radius, x + 2 * radius, y + 2 * radius], outline=colour, width=scale)
        outline = (255, 255, 255) if moved.cycle_consistent[i] else (0, 0, 0)
        for x, y in (src_xy[i], tgt_xy[i]):
            draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=colour, outline=outline, width=scale)
    for row, line in enumerate(caption):
        draw.text((4, canvas.shape[0] + 2 + 12 * row), line, fill=(0, 0, 0))
    return image


CAPTION = ("left: source, right: target", "dots: order (blue first)", "rings: other modes (ambiguous)", "black outline: fails cycle check")


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
    return write_all(out_dir, {
        "transfer.png": lambda tmp: save_png(picture, tmp),
        "transfer.json": lambda tmp: tmp.write_text(json.dumps(record, indent=2)),
    })


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _camera_from_args(depth: str | None, intrinsics: str | None, scale: float | None, which: str) -> Camera | None:
    if depth is None and intrinsics is None:
        return None
    if depth is None or intrinsics is None:
        raise InputError(f"3D output for the {which} image needs both --{which}-depth and --{which}-intrinsics.")
    return Camera(load_depth(depth, scale), load_intrinsics(intrinsics))


def _transfer(args: argparse.Namespace) -> int:
    from funcorr.match import matcher_config_from_args, parse_point
    from funcorr.model.matcher import Matcher
    from funcorr.text import resolve_function

    if args.function:
        resolve_function(args.function)
    if (args.demo is None) == (args.points is None):
        raise InputError("Give the demonstration as either --demo FILE.json or --points X,Y ...")
    if args.demo is not None:
        demo = load_demonstration(args.demo)
    else:
        demo = parse_demonstration([list(parse_point(p)) for p in args.points], default_kind=args.kind)
    request = TransferRequest(
        Path(args.source),
        Path(args.target),
        demo,
        _camera_from_args(args.source_depth, args.source_intrinsics, args.depth_scale, "source"),
        _camera_from_args(args.target_depth, args.target_intrinsics, args.depth_scale, "target"),
        TransferConfig(ModeRule(args.mode_ratio, args.mode_distance, args.max_modes), args.cycle_tolerance, args.soft_window, args.flip),
    )
    record, picture = run_transfer(request, Matcher(matcher_config_from_args(args)))
    for path in write_transfer_outputs(record, picture, Path(args.out)):
        print(path)
    return 0


def register_transfer(sub) -> None:
    """Add the ``transfer`` sub-command to an argparse sub-parser collection."""
    from funcorr.cli import add_feature_options, non_negative_float, positive_float, positive_int

    parser = sub.add_parser(
        "transfer",
        help="transfer demonstration keypoints or a 2D trajectory to another object",
        description="Match each demonstration point into the target; report similarity, cycle "
        "consistency and, for ambiguous points, every strong mode. Writes transfer.json and transfer.png.",
    )
    parser.add_argument("source", help="source image (the demonstration's pixels)")
    parser.add_argument("target", help="target image")
    parser.add_argument("--demo", help="demonstration JSON: [[x, y], ...] or {\"trajectory\"|\"keypoints\": [{\"xy\": [x, y], \"t\": .., \"name\": ..}]}")
    parser.add_argument("--points", nargs="+", metavar="X,Y", help="demonstration points given inline (instead of --demo)")
    parser.add_argument("--kind", choices=["trajectory", "keypoints"], default="trajectory", help="what --points are (default trajectory)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--mode-ratio", type=positive_float, default=ModeRule.ratio, help="a mode rises >= this fraction of the best peak's height above the median similarity")
    parser.add_argument("--mode-distance", type=non_negative_float, default=ModeRule.min_distance, help="network pixels between modes")
    parser.add_argument("--max-modes", type=positive_int, default=ModeRule.max_modes, help="modes kept per point")
    parser.add_argument("--cycle-tolerance", type=non_negative_float, default=TransferConfig.cycle_tolerance, help="network pixels allowed by the cycle check")
    parser.add_argument("--soft-window", type=positive_float, help="soft-argmax refinement radius in network pixels")
    parser.add_argument("--flip", action="store_true", help="also match the mirrored target; keep the orientation whose mutual nearest neighbours agree better")
    parser.add_argument("--source-depth", help="source depth: .npy (metres) or 16-bit .png (mm)")
    parser.add_argument("--target-depth", help="target depth: .npy (metres) or 16-bit .png (mm)")
    parser.add_argument("--source-intrinsics", help="source K: 'fx,fy,cx,cy' or a .json/.npy/.txt 3x3")
    parser.add_argument("--target-intrinsics", help="target K: 'fx,fy,cx,cy' or a .json/.npy/.txt 3x3")
    parser.add_argument("--depth-scale", type=positive_float, help="metres per depth unit (default: 0.001 for PNG, 1 for .npy)")
    add_feature_options(parser)
    parser.set_defaults(func=_transfer)

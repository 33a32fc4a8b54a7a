"""Demonstration inputs of ``funcorr transfer``: points or a 2D trajectory in JSON, and
per-image cameras (depth map + intrinsics) to lift points to 3D.

With depth maps and intrinsics K the points are also back-projected to 3D in that image's camera
frame (OpenCV: x right, y down, z forward; metres): ``X = z K^-1 [x, y, 1]^T`` with z the depth at
the nearest pixel; ``null`` where that depth is missing (0 or not finite).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from PIL import Image

from funcorr.files import read_json
from funcorr.images import InputError, check_image_size

DemonstrationKind = Literal["trajectory", "keypoints"]


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
    if not (
        isinstance(xy, (list, tuple))
        and len(xy) == 2
        and all(isinstance(v, (int, float)) and math.isfinite(v) for v in xy)
    ):
        raise InputError(
            f'{where}: a point must be [x, y] or {{"xy": [x, y]}} with finite numbers, got {entry!r}.'
        )
    if t is not None and not isinstance(t, (int, float)):
        raise InputError(f"{where}: 't' must be a number, got {t!r}.")
    return (
        (float(xy[0]), float(xy[1])),
        None if t is None else float(t),
        None if name is None else str(name),
    )


def parse_demonstration(
    data: object, default_kind: DemonstrationKind = "trajectory"
) -> Demonstration:
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
            raise InputError(
                "A demonstration object needs exactly one of the keys 'trajectory' or 'keypoints'."
            )
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
                    raise InputError(
                        f"Depth PNG {path} is mode {im.mode!r}; it must be 16-bit (values in mm)."
                    )
                check_image_size(im.size, f"Depth map {path}")
                depth = np.asarray(im, dtype=np.float64)
            default_scale = 0.001
        else:
            raise InputError(
                f"Depth map {path} must be .npy (metres) or a 16-bit .png (millimetres)."
            )
    except (OSError, ValueError, EOFError, Image.DecompressionBombError) as err:
        if isinstance(err, InputError):
            raise
        raise InputError(
            f"Could not read the depth map {path}: {' '.join(str(err).split())}"
        ) from None
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
            K = (
                _k_from_values(data)
                if isinstance(data, dict)
                else np.asarray(data, dtype=np.float64)
            )
        elif path.suffix.lower() == ".npy" and path.is_file():
            K = np.load(path, allow_pickle=False).astype(np.float64)
        elif path.suffix.lower() == ".txt" and path.is_file():
            K = np.loadtxt(path, dtype=np.float64)
        else:
            fx, fy, cx, cy = (float(v) for v in spec.split(","))
            K = _k_from_values({"fx": fx, "fy": fy, "cx": cx, "cy": cy})
    except (ValueError, KeyError, json.JSONDecodeError) as err:
        raise InputError(
            f"Intrinsics {spec!r}: give 'fx,fy,cx,cy' or a .json/.npy/.txt file with a 3x3 K ({err})."
        ) from err
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise InputError(
            f"Intrinsics {spec!r} must be a finite 3x3 matrix with positive fx and fy."
        )
    return K


def _k_from_values(values: dict) -> np.ndarray:
    return np.array(
        [[values["fx"], 0, values["cx"]], [0, values["fy"], values["cy"]], [0, 0, 1]],
        dtype=np.float64,
    )


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

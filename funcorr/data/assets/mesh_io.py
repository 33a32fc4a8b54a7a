"""Real meshes as assets: GLB/GLTF/OBJ/PLY through trimesh, with optional part labels from a sidecar JSON.

Sidecar format (``<mesh file>.parts.json`` next to the mesh, or any path passed as
``parts``), all keys optional::

    {
      "category": "kettle",
      "part_names": ["body", "spout", "handle"],
      "face_parts": [0, 0, 1, ...],          # one part index per face, in the face order
                                             # of trimesh.load(path, force="mesh", process=False)
      "functions": {
        "pour-with": {"part": "spout",
                      "frame": [[...], [...], [...], [...]],   # 4x4 pose in the file's coordinates
                      "symmetry": 1}                            # 1 none, k k-fold, 0 continuous
      }
    }

Without ``face_parts`` every face is part ``"object"``. A function without ``frame`` gets
a heuristic one from the principal axes of its part (origin at the part centroid,
z = longest axis oriented away from the object centre) — fine for plumbing tests,
annotate frames for a real benchmark. Meshes are normalised like procedural assets
(longest bounding-box side 1, centred).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import trimesh

from funcorr.data.assets.base import Asset, FunctionalPart, Material, frame_from, part_size
from funcorr.images import InputError, atomic_path

MESH_SUFFIXES = (".glb", ".gltf", ".obj", ".ply", ".stl", ".off")


def sidecar_path(mesh_path: str | os.PathLike) -> Path:
    """Default sidecar location: ``kettle.glb`` -> ``kettle.glb.parts.json``."""
    path = Path(mesh_path)
    return path.with_name(path.name + ".parts.json")


def read_mesh(path: str | os.PathLike) -> trimesh.Trimesh:
    """Load a mesh file as one triangle mesh (scene geometry concatenated, face order kept).

    Raises InputError with the file name for missing, unreadable or empty meshes.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No mesh file at {path}.")
    if path.suffix.lower() not in MESH_SUFFIXES:
        raise InputError(
            f"Unsupported mesh format {path.suffix!r} for {path}; use one of {', '.join(MESH_SUFFIXES)}."
        )
    try:
        mesh = trimesh.load(path, force="mesh", process=False)
    except Exception as err:  # trimesh raises many exception types for corrupt files
        raise InputError(f"Could not read mesh {path}: {type(err).__name__}: {err}") from err
    if not isinstance(mesh, trimesh.Trimesh) or len(mesh.faces) == 0:
        raise InputError(f"Mesh {path} contains no triangles.")
    if not np.isfinite(mesh.vertices).all():
        raise InputError(f"Mesh {path} has non-finite vertex coordinates.")
    return mesh


def _read_sidecar(path: Path, n_faces: int) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"Could not read part labels {path}: {err}") from err
    if "face_parts" in data:
        labels = np.asarray(data["face_parts"])
        if labels.shape != (n_faces,):
            raise InputError(
                f"{path}: face_parts has {labels.size} entries but the mesh has {n_faces} faces."
            )
        if labels.min() < 0 or labels.max() >= len(data.get("part_names", [])):
            raise InputError(f"{path}: face_parts indices must be in [0, len(part_names)).")
    return data


def _face_colors(mesh: trimesh.Trimesh) -> np.ndarray | None:
    """(F, 3) uint8 colours from the mesh's visuals (textures sampled at vertices), or None."""
    try:
        visual = mesh.visual
        if visual.kind is None:
            return None
        colors = visual.to_color().face_colors if visual.kind == "texture" else visual.face_colors
        colors = np.asarray(colors)[:, :3].astype(np.uint8)
    except Exception:  # visuals are best-effort: fall back to part materials
        return None
    return colors if len(colors) == len(mesh.faces) else None


def _heuristic_frame(vertices: np.ndarray, object_centre: np.ndarray) -> np.ndarray:
    centroid = vertices.mean(0)
    _, _, axes = np.linalg.svd(vertices - centroid, full_matrices=False)
    z = axes[0] if np.dot(axes[0], centroid - object_centre) >= 0 else -axes[0]
    return frame_from(centroid, z, axes[1])


def load_mesh_asset(
    path: str | os.PathLike,
    category: str | None = None,
    parts: str | os.PathLike | None = None,
    asset_id: str | None = None,
) -> Asset:
    """Load a real mesh (and its part sidecar when present) as a normalised :class:`Asset`.

    category defaults to the sidecar's, then to the file stem. Raises InputError for
    unreadable meshes or inconsistent sidecars.
    """
    path = Path(path)
    mesh = read_mesh(path)
    sidecar = Path(parts) if parts is not None else sidecar_path(path)
    if parts is not None and not sidecar.is_file():
        raise InputError(f"No part-label file at {sidecar}.")
    data = _read_sidecar(sidecar, len(mesh.faces)) if sidecar.is_file() else {}
    part_names = [str(n) for n in data.get("part_names", ["object"])]
    face_parts = np.asarray(data.get("face_parts", np.zeros(len(mesh.faces))), np.int16)
    colors = _face_colors(mesh)

    lo, hi = mesh.bounds
    centre, scale = (lo + hi) / 2, 1.0 / float(np.max(hi - lo))
    to_object = np.diag([scale, scale, scale, 1.0])
    to_object[:3, 3] = -centre * scale
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    mesh.apply_transform(to_object)

    functions = {}
    for name, spec in data.get("functions", {}).items():
        part = str(spec["part"])
        if part not in part_names:
            raise InputError(
                f"{sidecar}: function {name!r} uses unknown part {part!r}; parts: {part_names}."
            )
        verts = mesh.vertices[np.unique(mesh.faces[face_parts == part_names.index(part)])]
        if len(verts) == 0:
            raise InputError(f"{sidecar}: part {part!r} of function {name!r} has no faces.")
        if "frame" in spec:
            frame = to_object @ np.asarray(spec["frame"], np.float64)
            frame[:3, :3] /= scale  # keep the frame rigid: only its origin moves with the scaling
        else:
            frame = _heuristic_frame(verts, np.zeros(3))
        functions[name] = FunctionalPart(
            part, frame, part_size(verts, frame), int(spec.get("symmetry", 1))
        )
    grey = [Material((170, 170, 170), 0.2, 20.0) for _ in part_names]
    return Asset(
        mesh=mesh,
        face_parts=face_parts,
        part_names=part_names,
        category=str(category or data.get("category") or path.stem),
        functions=functions,
        materials=grey,
        asset_id=asset_id or path.stem,
        seed=None,
        params={},
        face_colors=colors,
    )


def save_mesh_asset(asset: Asset, path: str | os.PathLike) -> Path:
    """Write an asset as a mesh file (format from the suffix) plus its ``.parts.json`` sidecar.

    Colours are written per face; frames are in the (normalised) object frame, so
    :func:`load_mesh_asset` gives back the same asset. Returns the sidecar path.
    """
    path = Path(path)
    colors = asset.face_colors
    if colors is None:
        palette = np.array([m.color for m in asset.materials], np.uint8)
        colors = palette[asset.face_parts]
    mesh = trimesh.Trimesh(asset.mesh.vertices, asset.mesh.faces, face_colors=colors, process=False)
    with atomic_path(path) as tmp:
        mesh.export(tmp, file_type=path.suffix.lstrip(".").lower())
    sidecar = sidecar_path(path)
    data = {
        "category": asset.category,
        "part_names": asset.part_names,
        "face_parts": asset.face_parts.tolist(),
        "functions": {name: fp.to_json() for name, fp in asset.functions.items()},
    }
    with atomic_path(sidecar) as tmp:
        tmp.write_text(json.dumps(data))
    return sidecar

"""Core asset types: part-labelled meshes with functional frames.

Object frame convention (procedural and loaded assets alike): the mesh is scaled so
that the longest side of its axis-aligned bounding box is 1 and translated so the box
is centred on the origin. Containers stand upright (+z up, opening up, handle towards
-x); hand tools lie along x with the working end at +x and their flat side facing +z.

A *functional frame* is a right-handed pose (4, 4) on the functional part; aligning two
assets for a function maps one frame onto the other (see
:func:`funcorr.data.groundtruth.functional_alignment`). Conventions per function are in
:data:`FRAME_CONVENTIONS`; +z is always the direction in which the part acts.
"""

from __future__ import annotations

import colorsys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import trimesh

FRAME_CONVENTIONS: Mapping[str, str] = MappingProxyType(
    {
        "pour-with": "origin at the pouring point (spout tip, mouth or rim centre); z = outflow direction; "
        "x = body 'up' for spouts, away from the handle for round mouths.",
        "cut-with": "origin at the middle of the cutting edge; z = edge normal in the blade plane (cutting "
        "direction); x = along the edge towards the tip.",
        "scrape-with": "origin at the middle of the working edge; z = pushing direction in the blade plane; "
        "x = along the edge.",
        "lift-with": "as scrape-with: origin at the front edge, z = sliding direction, x = along the edge.",
        "spread-with": "as scrape-with.",
        "scoop-with": "origin at the centre of the opening of the bowl; z = opening normal (out of the "
        "concave side); x = towards the tip / away from the handle.",
        "pound-with": "origin at the centre of the striking face; z = outward face normal; "
        "x = towards the handle (for faces on the tool's axis, which are round or square: "
        "along the face).",
        "hang-onto": "origin at the support point (where a hung object rests); z = inner surface normal "
        "there; x = normal of the loop plane.",
        "pierce-with": "origin at the point; z = pointing direction; x = across the tip's width.",
        "poke-with": "as pierce-with.",
        "dig-with": "as pierce-with (origin at the digging tip).",
        "roll-onto": "origin at the centre of the rolling body; z = roll axis.",
        "press-with": "as pound-with: origin at the centre of the pressing face; z = outward face "
        "normal.",
        "brush-with": "origin at the centre of the bristle tips; z = direction the bristles point "
        "(out of their tips); x = along the longer side of the bristle field.",
        "sweep-with": "as scrape-with: origin at the middle of the working edge (bristle tips, "
        "blade or tine ends); z = direction the edge faces out of the tool (along the bristles or "
        "tines, in the blade plane); x = along the edge.",
        "mix-with": "origin at the centre of the part that moves through the mixture (whisk "
        "wires, bowl, tines, blade); z = along the tool axis away from the handle; x = normal of "
        "the part's flat face (out of the concave side of bowls).",
        "pry-with": "as scrape-with: origin at the middle of the thin end that is slid under the "
        "load; z = direction it is inserted (out of the end); x = along the end's edge.",
        "wedge-with": "as pry-with; y (= z cross x) is the sloped face of one-sided wedges.",
        "peel-with": "as cut-with: origin at the middle of the peeling edge; z = edge normal in "
        "the blade plane; x = along the edge.",
        "write-with": "as pierce-with (origin at the writing point, z = pointing direction).",
        "pick up-with": "origin midway between the two gripping tips; z = direction the tips "
        "point (away from the pivot or handle); x = closing direction, from one jaw towards the "
        "other.",
        "sift-with": "origin at the lowest point of the perforated surface; z = direction the "
        "fines fall through (out of the convex side, opposite to scoop-with's opening normal); x "
        "= away from the handle.",
        "apply torque-with": "origin on the turning axis at the middle of the gripping part (jaw "
        "opening, socket, key tip); z = that axis, towards the work (out of a socket or key tip; "
        "the upper face for flat jaws); x = towards the handle (the lever arm).",
        "pull-with": "as hang-onto: origin where the pulled object is caught (inside of a hook, "
        "root of a claw); z = direction the caught object is pulled (inner surface normal there); "
        "x = normal of the hook plane.",
    }
)


@dataclass(frozen=True)
class FunctionalPart:
    """The part that performs a function and its canonical frame.

    part: part name (index into ``Asset.part_names``); frame: (4, 4) object-frame pose
    of the functional frame (columns: x, y, z axes and origin); size: characteristic
    length of the part (its bounding-box diagonal in the frame), used to scale one
    part onto another; symmetry: rotational symmetry of the part about the frame z axis
    — 1 none, k >= 2 k-fold, 0 continuous.
    """

    part: str
    frame: np.ndarray
    size: float
    symmetry: int = 1

    def to_json(self) -> dict:
        return {
            "part": self.part,
            "frame": self.frame.tolist(),
            "size": self.size,
            "symmetry": self.symmetry,
        }

    @staticmethod
    def from_json(data: dict) -> FunctionalPart:
        return FunctionalPart(
            str(data["part"]),
            np.asarray(data["frame"], np.float64),
            float(data["size"]),
            int(data.get("symmetry", 1)),
        )


MATERIAL_KINDS = ("metal", "plastic", "wood", "ceramic", "rubber", "glass")


@dataclass(frozen=True)
class Material:
    """Phong-style appearance of one part: base colour (3,) uint8, specular weight, shininess,
    and the material kind (one of :data:`MATERIAL_KINDS`), which picks the solid texture and
    the specular range of randomised renders (:mod:`funcorr.data.appearance`)."""

    color: tuple[int, int, int]
    specular: float = 0.2
    shininess: float = 20.0
    kind: str = "plastic"


@dataclass(frozen=True, eq=False)
class Asset:
    """A part-labelled mesh in the normalised object frame.

    mesh: trimesh with F faces; face_parts: (F,) int16 part index per face;
    part_names: (P,) names; materials: (P,) appearance per part; face_colors: optional
    (F, 3) uint8 colours that override the part materials (textured real meshes).
    """

    mesh: trimesh.Trimesh
    face_parts: np.ndarray
    part_names: list[str]
    category: str
    functions: dict[str, FunctionalPart]
    materials: list[Material]
    asset_id: str
    seed: int | None = None
    params: dict[str, float] = field(default_factory=dict)
    face_colors: np.ndarray | None = None

    def part_id(self, name: str) -> int:
        """Index of a part name; KeyError names the parts that exist."""
        try:
            return self.part_names.index(name)
        except ValueError:
            raise KeyError(
                f"{self.asset_id} has no part {name!r}; parts: {self.part_names}"
            ) from None

    def functional_part_id(self, function: str) -> int:
        """Part index of the functional part for ``function``."""
        if function not in self.functions:
            raise KeyError(
                f"{self.asset_id} ({self.category}) does not support {function!r}; it supports {sorted(self.functions)}"
            )
        return self.part_id(self.functions[function].part)


def surface_points(asset: Asset, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform surface samples: points (n, 3) float64 and their part ids (n,) int16."""
    points, faces = trimesh.sample.sample_surface(asset.mesh, n, seed=np.random.default_rng(seed))
    return np.asarray(points), asset.face_parts[faces]


def frame_from(origin: Sequence[float], z: Sequence[float], x_hint: Sequence[float]) -> np.ndarray:
    """Right-handed pose (4, 4) with origin, z axis along ``z`` and x as close as possible to ``x_hint``."""
    z_axis = np.asarray(z, np.float64) / np.linalg.norm(z)
    x_axis = np.asarray(x_hint, np.float64) - np.dot(x_hint, z_axis) * z_axis
    if np.linalg.norm(x_axis) < 1e-8:
        raise ValueError("frame x hint is parallel to z")
    x_axis /= np.linalg.norm(x_axis)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = (
        x_axis,
        np.cross(z_axis, x_axis),
        z_axis,
        origin,
    )
    return pose


def part_size(vertices: np.ndarray, frame: np.ndarray) -> float:
    """Bounding-box diagonal of part vertices (N, 3) expressed in ``frame``."""
    local = (vertices - frame[:3, 3]) @ frame[:3, :3]
    return float(np.linalg.norm(local.max(0) - local.min(0)))


@dataclass(frozen=True)
class FunctionSpec:
    """A function declared by a generator before normalisation (frames in generator units)."""

    part: str
    origin: Sequence[float]
    z: Sequence[float]
    x_hint: Sequence[float]
    symmetry: int = 1


class Draft:
    """Collects labelled pieces of an asset in generator units, then normalises them into an :class:`Asset`."""

    def __init__(self) -> None:
        self.meshes: list[trimesh.Trimesh] = []
        self.labels: list[list[str]] = []
        self.materials: dict[str, Material] = {}
        self.functions: dict[str, FunctionSpec] = {}

    def add(self, part: str, piece: tuple[trimesh.Trimesh, np.ndarray] | trimesh.Trimesh) -> None:
        """Add a whole piece as one part."""
        mesh = piece[0] if isinstance(piece, tuple) else piece
        self.meshes.append(mesh)
        self.labels.append([part] * len(mesh.faces))

    def add_by_segment(
        self, piece: tuple[trimesh.Trimesh, np.ndarray], parts: Sequence[tuple[int, str]]
    ) -> None:
        """Add a piece whose faces are labelled by segment: ``parts`` = [(first_segment, name), ...] ascending."""
        mesh, segment = piece
        starts = np.array([s for s, _ in parts])
        names = [n for _, n in parts]
        which = np.searchsorted(starts, segment, side="right") - 1
        self.meshes.append(mesh)
        self.labels.append([names[max(i, 0)] for i in which])

    def build(
        self, category: str, asset_id: str, seed: int | None, params: dict[str, float]
    ) -> Asset:
        """Concatenate, normalise (unit longest side, centred) and compute functional frames."""
        mesh = trimesh.util.concatenate(self.meshes)
        flat = [name for labels in self.labels for name in labels]
        part_names = list(dict.fromkeys(flat))
        face_parts = np.array([part_names.index(n) for n in flat], np.int16)
        lo, hi = mesh.bounds
        center, scale = (lo + hi) / 2, 1.0 / float(np.max(hi - lo))
        mesh.apply_translation(-center)
        mesh.apply_scale(scale)
        functions = {}
        for name, spec in self.functions.items():
            frame = frame_from((np.asarray(spec.origin) - center) * scale, spec.z, spec.x_hint)
            part_faces = face_parts == part_names.index(spec.part)
            verts = mesh.vertices[np.unique(mesh.faces[part_faces])]
            functions[name] = FunctionalPart(
                spec.part, frame, part_size(verts, frame), spec.symmetry
            )
        materials = [self.materials.get(n, Material((180, 180, 180))) for n in part_names]
        return Asset(
            mesh, face_parts, part_names, category, functions, materials, asset_id, seed, params
        )


def random_material(rng: np.random.Generator, kind: str) -> Material:
    """Per-instance appearance for a material kind: metal, plastic, wood, ceramic, rubber, glass."""
    hue = rng.uniform()
    if kind == "metal":
        value, sat, hue = rng.uniform(0.55, 0.85), rng.uniform(0.0, 0.12), rng.uniform(0.5, 0.7)
        specular, shininess = 0.7, 40.0
    elif kind == "wood":
        hue, sat, value = rng.uniform(0.05, 0.1), rng.uniform(0.4, 0.75), rng.uniform(0.3, 0.7)
        specular, shininess = 0.05, 8.0
    elif kind == "ceramic":
        sat, value = rng.uniform(0.0, 0.55), rng.uniform(0.7, 0.98)
        specular, shininess = 0.45, 60.0
    elif kind == "rubber":
        sat, value = rng.uniform(0.0, 0.6), rng.uniform(0.08, 0.3)
        specular, shininess = 0.1, 6.0
    elif kind == "glass":
        hue, sat, value = rng.uniform(0.2, 0.55), rng.uniform(0.2, 0.7), rng.uniform(0.35, 0.8)
        specular, shininess = 0.8, 80.0
    else:  # plastic
        sat, value = rng.uniform(0.45, 0.9), rng.uniform(0.45, 0.95)
        specular, shininess = 0.3, 20.0
    rgb = colorsys.hsv_to_rgb(hue, sat, value)
    # The kind is recorded without drawing from ``rng``, so shapes and colours stay as they were.
    known = kind if kind in MATERIAL_KINDS else "plastic"
    return Material(tuple(int(round(c * 255)) for c in rgb), specular, shininess, known)

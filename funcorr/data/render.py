"""CPU ray-cast renderer (trimesh + embree) with exact geometry buffers.

One idea at about 600 lines: the ray caster and the exact geometry buffers it returns
(cameras, hits, normals, shading, multi-view correspondences from the same geometry).

One primary ray per pixel centre: pixel (r, c) has its ray through image point
``(x, y) = (c, r)`` (pixel-index convention, centre of the top-left pixel at (0, 0)).
Cameras are OpenCV-style (x right, y down, z forward); ``cam_to_world`` maps camera
coordinates to the object frame ("world"). Hit points are recomputed in float64 as the
exact ray/triangle-plane intersection, so ``xyz`` lies on the mesh to ~1e-7 of the
object size and ``depth`` is the camera z of that point.

Normals are crease-aware interpolated (shading) normals in the object frame, flipped
to face the camera so open or thin surfaces shade from both sides. RGB is Lambert +
Blinn-Phong with two camera-fixed lights; by default every view is lit the same way on a
uniform background. :class:`Lighting` can also tint the lights, cast shadow rays towards
the key light and add mirror reflections of a sky/ground environment, and a scene can carry
a per-point albedo function (solid textures); :mod:`funcorr.data.appearance` draws all of
these at random per instance and per view.

``render_cycles`` renders the same camera with Blender Cycles when ``bpy`` is
installed (optional, for higher-quality RGB).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import trimesh
from trimesh.ray.ray_pyembree import RayMeshIntersector

from funcorr.data.assets.base import Asset, Material

Size = tuple[int, int]  # (W, H)
Background = str | tuple[int, int, int] | np.ndarray  # name, colour or an (H, W, 3) uint8 image
# Per-point albedo: (points (N, 3), faces (N,)) -> (N, 3) in [0, 1].
Albedo = Callable[[np.ndarray, np.ndarray], np.ndarray]
DEFAULT_SIZE: Size = (224, 224)
DEFAULT_FOV_DEG = 40.0
# Views from 50 deg below to 75 deg above the object's horizon.
DEFAULT_ELEVATIONS = (-50.0, 75.0)


@dataclass
class RenderedView:
    """All buffers of one rendered view (H, W = image size).

    rgb (H, W, 3) uint8; depth (H, W) float32 camera z, 0 on background; xyz (H, W, 3)
    float32 object-frame hit points, NaN on background; normals (H, W, 3) float32
    object-frame unit normals facing the camera (0 on background); mask (H, W) bool;
    part_ids (H, W) int16, -1 on background, indexing ``part_names``; K (3, 3) float64;
    cam_to_world (4, 4) float64 OpenCV camera -> object frame.
    """

    rgb: np.ndarray
    depth: np.ndarray
    xyz: np.ndarray
    normals: np.ndarray
    mask: np.ndarray
    part_ids: np.ndarray
    part_names: list[str]
    K: np.ndarray
    cam_to_world: np.ndarray

    @property
    def size(self) -> Size:
        """(W, H) in pixels."""
        return int(self.mask.shape[1]), int(self.mask.shape[0])

    def part_mask(self, part: str) -> np.ndarray:
        """(H, W) bool pixels of a named part (all False when the part is absent)."""
        if part not in self.part_names:
            return np.zeros_like(self.mask)
        return self.part_ids == self.part_names.index(part)


@dataclass(frozen=True)
class Camera:
    """Pinhole camera: K (3, 3), cam_to_world (4, 4) OpenCV, image size (W, H)."""

    K: np.ndarray
    cam_to_world: np.ndarray
    size: Size = DEFAULT_SIZE

    @property
    def center(self) -> np.ndarray:
        """(3,) camera position in the object frame."""
        return self.cam_to_world[:3, 3]


RGB = tuple[float, float, float]
WHITE: RGB = (1.0, 1.0, 1.0)


@dataclass(frozen=True)
class Lighting:
    """Camera-fixed directional lights; directions point from the surface towards the light, in
    camera coordinates. Colours are linear RGB multipliers (white = (1, 1, 1)).

    shadows: how dark the key light's shadows are (0 = no shadow rays, 1 = black), cast with
    embree shadow rays; sky / ground: environment colours seen in mirror reflections of
    surfaces with reflectivity > 0, blended by the reflected ray's elevation above the
    horizon whose 'up' is ``env_up`` (camera frame); env_bands: strength of bright and dark
    bands across that environment (like softboxes and walls seen in polished metal).
    The defaults are the fixed look of flat renders.
    """

    ambient: float = 0.32
    key_direction: tuple[float, float, float] = (-0.45, -0.6, -0.65)
    key: float = 0.65
    fill_direction: tuple[float, float, float] = (0.7, 0.1, -0.7)
    fill: float = 0.25
    ambient_color: RGB = WHITE
    key_color: RGB = WHITE
    fill_color: RGB = WHITE
    shadows: float = 0.0
    sky: RGB = WHITE
    ground: RGB = (0.3, 0.3, 0.3)
    env_up: tuple[float, float, float] = (0.0, -1.0, 0.0)
    env_bands: float = 0.0


@dataclass
class RayScene:
    """A mesh prepared for repeated rendering: BVH, per-corner shading normals and per-face appearance.

    corner_normals (F, 3, 3); face_colors (F, 3) float in [0, 1]; face_specular (F,);
    face_shininess (F,); face_parts (F,) int16; face_reflect (F,) mirror reflectivity
    (None = 0); albedo: optional per-point albedo (solid texture) replacing face_colors.
    """

    mesh: trimesh.Trimesh
    intersector: RayMeshIntersector
    corner_normals: np.ndarray
    face_colors: np.ndarray
    face_specular: np.ndarray
    face_shininess: np.ndarray
    face_parts: np.ndarray
    part_names: list[str] = field(default_factory=list)
    face_reflect: np.ndarray | None = None
    albedo: Albedo | None = None


def _corner_normals(mesh: trimesh.Trimesh, crease_deg: float = 35.0) -> np.ndarray:
    """Per face corner, the area-weighted mean normal of incident faces within the crease angle: (F, 3, 3)."""
    face_normals = mesh.face_normals
    weights = mesh.area_faces
    vertex_faces = mesh.vertex_faces  # (V, max_degree) padded with -1
    cos_crease = np.cos(np.radians(crease_deg))
    out = np.zeros((len(mesh.faces), 3, 3))
    for corner in range(3):
        neighbours = vertex_faces[mesh.faces[:, corner]]  # (F, D)
        acc = np.zeros((len(mesh.faces), 3))
        for col in range(neighbours.shape[1]):
            nb = neighbours[:, col]
            valid = nb >= 0
            nb_normals = face_normals[np.where(valid, nb, 0)]
            same_side = np.einsum("ij,ij->i", nb_normals, face_normals) > cos_crease
            acc += (
                (valid & same_side)[:, None] * weights[np.where(valid, nb, 0)][:, None] * nb_normals
            )
        norm = np.linalg.norm(acc, axis=1, keepdims=True)
        out[:, corner] = np.where(norm > 1e-12, acc / np.maximum(norm, 1e-12), face_normals)
    return out


def prepare(source: Asset | trimesh.Trimesh | RayScene) -> RayScene:
    """Build (or pass through) the ray-casting scene for an asset or a bare mesh (grey, one part)."""
    if isinstance(source, RayScene):
        return source
    if isinstance(source, Asset):
        mesh, face_parts, names, materials = (
            source.mesh,
            source.face_parts,
            source.part_names,
            source.materials,
        )
        colors = source.face_colors
    else:
        mesh, face_parts, names = source, np.zeros(len(source.faces), np.int16), ["object"]
        materials, colors = [Material((180, 180, 180))], None
    if colors is None:
        colors = np.array([m.color for m in materials], np.float64)[face_parts]
    spec = np.array([m.specular for m in materials])[face_parts]
    shine = np.array([m.shininess for m in materials])[face_parts]
    return RayScene(
        mesh=mesh,
        intersector=RayMeshIntersector(mesh),
        corner_normals=_corner_normals(mesh),
        face_colors=np.asarray(colors, np.float64) / 255.0,
        face_specular=spec,
        face_shininess=shine,
        face_parts=np.asarray(face_parts, np.int16),
        part_names=list(names),
    )


def intrinsics(size: Size = DEFAULT_SIZE, fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """(3, 3) K with the given horizontal field of view and the principal point at the image centre."""
    w, h = size
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0.0, (w - 1) / 2], [0.0, f, (h - 1) / 2], [0.0, 0.0, 1.0]])


def look_at(
    eye: Sequence[float], target: Sequence[float] = (0, 0, 0), up: Sequence[float] = (0, 0, 1)
) -> np.ndarray:
    """OpenCV cam_to_world (4, 4) at ``eye`` looking at ``target``; image 'up' follows ``up``."""
    eye, target = np.asarray(eye, np.float64), np.asarray(target, np.float64)
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-8:  # looking straight along ``up``: any right vector works
        right = np.cross(forward, (0.0, 1.0, 0.0))
    right /= np.linalg.norm(right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = (
        right,
        np.cross(forward, right),
        forward,
        eye,
    )
    return pose


def framing_distance(
    radius: float, fov_deg: float = DEFAULT_FOV_DEG, margin: float = 1.08
) -> float:
    """Camera distance at which a sphere of ``radius`` fits the field of view with a margin."""
    return margin * radius / np.sin(np.radians(fov_deg) / 2)


def sphere_directions(
    n_views: int,
    elevation_range: tuple[float, float] = DEFAULT_ELEVATIONS,
    azimuth_offset: float = 0.0,
) -> np.ndarray:
    """(n, 3) unit directions on a Fibonacci spiral, uniform in area between two elevations (degrees).

    The first views are the highest and the last the lowest, so any n >= 2 sees the object from above and below.
    """
    lo, hi = np.sin(np.radians(elevation_range[0])), np.sin(np.radians(elevation_range[1]))
    z = hi - (np.arange(n_views) + 0.5) / n_views * (hi - lo)
    azimuth = azimuth_offset + np.arange(n_views) * np.pi * (3.0 - np.sqrt(5.0))
    ring = np.sqrt(1 - z**2)
    return np.stack([ring * np.cos(azimuth), ring * np.sin(azimuth), z], 1)


def sphere_cameras(
    n_views: int,
    distance: float = 2.5,
    size: Size = DEFAULT_SIZE,
    fov_deg: float = DEFAULT_FOV_DEG,
    elevation_range: tuple[float, float] = DEFAULT_ELEVATIONS,
    seed: int | None = None,
) -> list[Camera]:
    """``n_views`` cameras on a sphere around the origin looking at it; ``seed`` rotates the spiral."""
    offset = 0.0 if seed is None else float(np.random.default_rng(seed).uniform(0, 2 * np.pi))
    K = intrinsics(size, fov_deg)
    dirs = sphere_directions(n_views, elevation_range, offset)
    return [Camera(K, look_at(distance * d), size) for d in dirs]


def asset_cameras(
    source: Asset | trimesh.Trimesh,
    n_views: int,
    size: Size = DEFAULT_SIZE,
    seed: int | None = None,
    fov_deg: float = DEFAULT_FOV_DEG,
    elevation_range: tuple[float, float] = DEFAULT_ELEVATIONS,
) -> list[Camera]:
    """Sphere cameras around the object-frame origin at a distance that frames the whole object."""
    mesh = source.mesh if isinstance(source, Asset) else source
    radius = float(np.linalg.norm(mesh.vertices, axis=1).max())
    return sphere_cameras(
        n_views, framing_distance(radius, fov_deg), size, fov_deg, elevation_range, seed
    )


def pixel_rays(
    K: np.ndarray, cam_to_world: np.ndarray, size: Size
) -> tuple[np.ndarray, np.ndarray]:
    """Origin (3,) and per-pixel directions (H*W, 3) in the object frame, scaled to unit camera z.

    With unit camera-z directions the ray parameter of a hit equals its depth.
    """
    w, h = size
    cols, rows = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pix = np.stack([cols.ravel(), rows.ravel(), np.ones(w * h)], 1)
    cam_dirs = pix @ np.linalg.inv(K).T
    cam_dirs /= cam_dirs[:, 2:3]
    return cam_to_world[:3, 3].copy(), cam_dirs @ cam_to_world[:3, :3].T


NAMED_BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}


def background_color(background: Background, seed: int) -> np.ndarray:
    """(3,) float colour of a background spec: a name, "random" (drawn from ``seed``) or an (r, g, b) tuple."""
    if isinstance(background, str):
        if background == "random":
            return np.random.default_rng(seed).integers(0, 256, 3).astype(np.float64)
        if background not in NAMED_BACKGROUNDS:
            names = ", ".join([*NAMED_BACKGROUNDS, "random"])
            raise ValueError(
                f"Unknown background {background!r}: use {names} or an (r, g, b) tuple."
            )
        return np.array(NAMED_BACKGROUNDS[background], np.float64)
    return np.asarray(background, np.float64)


# Shadow rays start this far (object units; objects are unit-sized) off the surface so
# they do not hit their own triangle (embree intersects in float32).
SHADOW_OFFSET = 2e-3


def _shadow_factor(
    scene: RayScene, points: np.ndarray, normals: np.ndarray, to_light: np.ndarray, darkness: float
) -> np.ndarray:
    """(N,) light reaching each point (N, 3): 1, or 1 - darkness where the mesh blocks the ray
    towards the (directional) light."""
    factor = np.ones(len(points))
    lit = np.flatnonzero(normals @ to_light > 0)  # the others get no direct light anyway
    if len(lit):
        origins = points[lit] + SHADOW_OFFSET * normals[lit]
        directions = np.broadcast_to(to_light, origins.shape).copy()
        blocked = scene.intersector.intersects_any(origins, directions)
        factor[lit[blocked]] = 1.0 - darkness
    return factor


def _environment(directions: np.ndarray, light: Lighting) -> np.ndarray:
    """(N, 3) environment colour seen along camera-frame directions (N, 3): ground below the
    horizon, sky above, with a smooth horizon and optional bands."""
    elevation = directions @ (np.asarray(light.env_up) / np.linalg.norm(light.env_up))
    t = np.clip(0.5 + 2.0 * elevation, 0.0, 1.0)
    t = t * t * (3.0 - 2.0 * t)
    t = t[:, None]
    env = np.asarray(light.ground)[None] * (1.0 - t) + np.asarray(light.sky)[None] * t
    if light.env_bands:
        env = env * (1.0 + light.env_bands * np.cos(7.0 * elevation))[:, None]
    return env


def _shade(
    scene: RayScene,
    faces: np.ndarray,
    points: np.ndarray,
    normals: np.ndarray,
    view_dirs: np.ndarray,
    rot: np.ndarray,
    light: Lighting,
) -> np.ndarray:
    """Blinn-Phong colours (N, 3) in [0, 255] for hits at points (N, 3) with unit normals (N, 3)
    and unit view rays (N, 3), all in the object frame; ``rot`` turns camera into object axes."""
    albedo = scene.face_colors[faces] if scene.albedo is None else scene.albedo(points, faces)
    to_eye = -view_dirs
    colour = np.full((len(faces), 1), light.ambient) * np.asarray(light.ambient_color) * albedo
    specular = np.zeros((len(faces), 3))
    lights = (
        (light.key_direction, light.key, light.key_color, light.shadows),
        (light.fill_direction, light.fill, light.fill_color, 0.0),
    )
    for direction, strength, tint, darkness in lights:
        to_light = rot @ (np.asarray(direction) / np.linalg.norm(direction))
        lambert = np.clip(normals @ to_light, 0.0, None)
        half = to_light[None] + to_eye
        half /= np.linalg.norm(half, axis=1, keepdims=True)
        cos_h = np.clip(np.einsum("ij,ij->i", normals, half), 0.0, None)
        highlight = strength * scene.face_specular[faces] * cos_h ** scene.face_shininess[faces]
        if darkness > 0:
            reach = _shadow_factor(scene, points, normals, to_light, darkness)
            lambert, highlight = lambert * reach, highlight * reach
        colour += strength * lambert[:, None] * albedo * np.asarray(tint)
        specular += highlight[:, None] * np.asarray(tint)
    if scene.face_reflect is not None and scene.face_reflect[faces].any():
        # Metals mirror their surroundings, tinted by their own colour.
        reflect = scene.face_reflect[faces][:, None]
        mirrored = view_dirs - 2.0 * np.einsum("ij,ij->i", view_dirs, normals)[:, None] * normals
        colour = (1.0 - reflect) * colour + reflect * albedo * _environment(mirrored @ rot, light)
    return np.clip(255.0 * (colour + specular), 0, 255)


def render_view(
    mesh_or_asset: Asset | trimesh.Trimesh | RayScene,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    size: Size = DEFAULT_SIZE,
    background: Background = "white",
    seed: int = 0,
    lighting: Lighting = Lighting(),
) -> RenderedView:
    """Ray-cast one view with all buffers; ``seed`` only drives random backgrounds.

    ``background`` is a name, an (r, g, b) colour or an (H, W, 3) uint8 image. Pass a
    prepared :class:`RayScene` (see :func:`prepare`) to render many views of one mesh
    without rebuilding its BVH.
    """
    scene = prepare(mesh_or_asset)
    w, h = size
    origin, dirs = pixel_rays(np.asarray(K, np.float64), np.asarray(cam_to_world, np.float64), size)
    origins = np.broadcast_to(origin, dirs.shape)
    faces = scene.intersector.intersects_first(origins, dirs)
    hit = faces >= 0
    f = faces[hit]
    d = dirs[hit]
    # Exact intersection with the hit triangle's plane (embree works in float32).
    tri = scene.mesh.triangles[f]
    plane_n = scene.mesh.face_normals[f]
    t = np.einsum("ij,ij->i", plane_n, tri[:, 0] - origin) / np.einsum("ij,ij->i", plane_n, d)
    points = origin + t[:, None] * d
    bary = trimesh.triangles.points_to_barycentric(tri, points)
    normals = np.einsum("ik,ikj->ij", bary, scene.corner_normals[f])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    unit_dirs = d / np.linalg.norm(d, axis=1, keepdims=True)
    facing = np.sign(-np.einsum("ij,ij->i", normals, unit_dirs))
    normals *= np.where(facing == 0, 1.0, facing)[:, None]

    rgb = np.empty((h * w, 3))
    if isinstance(background, np.ndarray) and background.ndim == 3:
        if background.shape != (h, w, 3):
            raise ValueError(
                f"Background image of shape {background.shape} does not match the view ({h}, {w}, 3)."
            )
        rgb[:] = background.reshape(-1, 3)
    else:
        rgb[:] = background_color(background, seed)
    rot = np.asarray(cam_to_world)[:3, :3]
    rgb[hit] = _shade(scene, f, points, normals, unit_dirs, rot, lighting)
    depth = np.zeros(h * w, np.float32)
    depth[hit] = t
    xyz = np.full((h * w, 3), np.nan, np.float32)
    xyz[hit] = points
    normal_img = np.zeros((h * w, 3), np.float32)
    normal_img[hit] = normals
    part_ids = np.full(h * w, -1, np.int16)
    part_ids[hit] = scene.face_parts[f]
    return RenderedView(
        rgb=np.round(rgb).astype(np.uint8).reshape(h, w, 3),
        depth=depth.reshape(h, w),
        xyz=xyz.reshape(h, w, 3),
        normals=normal_img.reshape(h, w, 3),
        mask=hit.reshape(h, w),
        part_ids=part_ids.reshape(h, w),
        part_names=list(scene.part_names),
        K=np.asarray(K, np.float64).copy(),
        cam_to_world=np.asarray(cam_to_world, np.float64).copy(),
    )


def render_views(
    asset: Asset,
    n_views: int,
    size: Size = DEFAULT_SIZE,
    seed: int = 0,
    background: Background = "white",
    elevation_range: tuple[float, float] = DEFAULT_ELEVATIONS,
) -> list[RenderedView]:
    """Render ``n_views`` sphere views of an asset (the BVH is built once); view i uses seed + i for its background."""
    scene = prepare(asset)
    cameras = asset_cameras(asset, n_views, size, seed=seed, elevation_range=elevation_range)
    return [
        render_view(scene, c.K, c.cam_to_world, size, background, seed + i)
        for i, c in enumerate(cameras)
    ]


def backproject(depth: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """Object-frame points (H, W, 3) float32 of a depth map (H, W); NaN where depth is 0."""
    h, w = depth.shape
    origin, dirs = pixel_rays(K, cam_to_world, (w, h))
    d = depth.reshape(-1).astype(np.float64)
    xyz = (origin + d[:, None] * dirs).astype(np.float32)
    xyz[d <= 0] = np.nan
    return xyz.reshape(h, w, 3)


def project(
    points: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame points (N, 3) -> pixel xy (N, 2) float64 and camera depth (N,)."""
    world_to_cam = np.linalg.inv(cam_to_world)
    cam = np.asarray(points, np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    uv = cam @ np.asarray(K).T
    with np.errstate(divide="ignore", invalid="ignore"):
        xy = uv[:, :2] / z[:, None]
    return xy, z


def multiview_correspondences(
    view_a: RenderedView,
    view_b: RenderedView,
    max_points: int = 1000,
    tol: float = 0.01,
    seed: int = 0,
) -> np.ndarray:
    """Pixel pairs (N, 2, 2) float32 of surface points visible in both views of the same asset.

    [:, 0] = integer pixel (x, y) in view_a, [:, 1] = sub-pixel projection (x, y) of its
    3D point into view_b. A pair is kept when the projection falls on the object in
    view_b and the depth there agrees with the projected depth within ``tol`` (object
    units; objects are unit-sized), i.e. the point is not occluded. At most
    ``max_points`` pairs, sampled without replacement with ``seed``, in row-major order of view_a.
    """
    rows, cols = np.nonzero(view_a.mask)
    xy, z = project(view_a.xyz[rows, cols], view_b.K, view_b.cam_to_world)
    w, h = view_b.size
    near = np.round(xy).astype(np.int64)
    inside = (z > 0) & (near[:, 0] >= 0) & (near[:, 0] < w) & (near[:, 1] >= 0) & (near[:, 1] < h)
    near = np.where(inside[:, None], near, 0)
    depth_b = view_b.depth[near[:, 1], near[:, 0]]
    valid = inside & view_b.mask[near[:, 1], near[:, 0]] & (np.abs(depth_b - z) < tol)
    idx = np.flatnonzero(valid)
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
    pa = np.stack([cols[idx], rows[idx]], 1).astype(np.float64)
    return np.stack([pa, xy[idx]], 1).astype(np.float32)


def render_cycles(
    asset: Asset,
    K: np.ndarray,
    cam_to_world: np.ndarray,
    size: Size = DEFAULT_SIZE,
    samples: int = 64,
    background: tuple[int, int, int] = (255, 255, 255),
) -> np.ndarray:
    """High-quality RGB (H, W, 3) uint8 of the same camera through Blender Cycles (needs ``bpy``).

    The mesh goes through a temporary PLY with per-face colours; the Blender camera is
    built from K (focal length, principal point shift) and the OpenCV pose.
    """
    try:
        import bpy  # noqa: PLC0415 - optional heavy dependency
    except ImportError as err:
        raise RuntimeError(
            "render_cycles needs Blender's Python module: `pip install bpy` (matching Python version); "
            "the ray-cast renderer (render_view) needs nothing extra."
        ) from err
    from PIL import Image  # noqa: PLC0415

    w, h = size
    with tempfile.TemporaryDirectory() as tmp:
        ply = Path(tmp) / "asset.ply"
        colors = (
            asset.face_colors
            if asset.face_colors is not None
            else np.array([m.color for m in asset.materials], np.uint8)[asset.face_parts]
        )
        trimesh.Trimesh(
            asset.mesh.vertices, asset.mesh.faces, face_colors=colors, process=False
        ).export(ply)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.wm.ply_import(filepath=str(ply))
        obj = bpy.context.selected_objects[0]
        material = bpy.data.materials.new("vertex_colour")
        material.use_nodes = True
        attr = material.node_tree.nodes.new("ShaderNodeVertexColor")
        bsdf = material.node_tree.nodes["Principled BSDF"]
        material.node_tree.links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
        obj.data.materials.append(material)

        scene = bpy.context.scene
        scene.render.engine = "CYCLES"
        scene.cycles.samples = samples
        scene.render.resolution_x, scene.render.resolution_y = w, h
        scene.render.film_transparent = False
        world = bpy.data.worlds.new("bg")
        world.color = tuple(c / 255 for c in background)
        scene.world = world
        cam_data = bpy.data.cameras.new("cam")
        cam_data.sensor_fit = "HORIZONTAL"
        cam_data.sensor_width = 36.0
        cam_data.lens = K[0, 0] * 36.0 / w
        # Blender's shift is in units of the larger image side; pixel centres are at +0.5.
        cam_data.shift_x = -((K[0, 2] + 0.5) - w / 2) / max(w, h)
        cam_data.shift_y = ((K[1, 2] + 0.5) - h / 2) / max(w, h)
        camera = bpy.data.objects.new("cam", cam_data)
        scene.collection.objects.link(camera)
        blender_pose = np.asarray(cam_to_world) @ np.diag(
            [1.0, -1.0, -1.0, 1.0]
        )  # OpenCV -> Blender camera axes
        camera.matrix_world = [list(row) for row in blender_pose]
        scene.camera = camera
        light_data = bpy.data.lights.new("sun", type="SUN")
        light = bpy.data.objects.new("sun", light_data)
        light.matrix_world = camera.matrix_world
        scene.collection.objects.link(light)
        out = Path(tmp) / "rgb.png"
        scene.render.filepath = str(out)
        bpy.ops.render.render(write_still=True)
        with Image.open(out) as im:
            return np.asarray(im.convert("RGB")).copy()

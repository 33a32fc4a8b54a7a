"""Randomised appearance of rendered views (domain randomisation towards real photos).

Flat renders (one colour per part, fixed lights, white background, 40 deg lens) are far from
the photos a trained head must work on. With an :class:`AppearanceConfig`, every asset gets
solid textures and a surface finish per material kind (:mod:`funcorr.data.textures`) and
every view gets its own

- camera: field of view, elevation (from below to straight above), in-plane roll and
  framing (the object spans a random fraction of the frame, shifted off-centre, and stays
  fully inside it);
- lights: key / fill directions, colour temperatures and intensities, ambient level, shadow
  rays from the key light, an environment mirrored by metals and glazes;
- backdrop (:func:`funcorr.data.backgrounds.random_background`), a soft drop shadow on it,
  lens blur and sensor noise.

Geometry buffers (depth, xyz, normals, part labels) are exact as before, and K / pose are
those of the view, so multi-view and functional ground truth work unchanged. Every draw
comes from generators derived from the asset seed, a stream id and the view index: same
seed, same pictures, and e.g. changing the backdrop kinds leaves the cameras as they were.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from funcorr.data.assets.base import Asset
from funcorr.data.backgrounds import BACKGROUND_KINDS, random_background
from funcorr.data.render import (
    Camera,
    Lighting,
    RayScene,
    RenderedView,
    Size,
    intrinsics,
    look_at,
    prepare,
    render_view,
)
from funcorr.data.render import sphere_directions as _spiral
from funcorr.data.textures import asset_textures
from funcorr.images import InputError

Range = tuple[float, float]

# Generator streams: each aspect draws from its own generator.
_TEXTURE, _CAMERA, _LIGHT, _BACKGROUND, _POST = 1, 2, 3, 4, 5


@dataclass(frozen=True)
class AppearanceConfig:
    """Ranges of the randomised appearance (each view draws uniformly inside every range).

    textures: solid textures per part (False: flat part colours, finish still varies);
    key_light, fill_light, ambient: intensities; colour_temperature: kelvin range of the
    lights; shadows: cast shadow rays from the key light, shadow_darkness: how dark they are;
    fov_deg: horizontal field of view; elevation_deg: camera elevation above the object's
    horizon (views are spread over it on a spiral); roll_deg: in-plane rotation up to
    +- this; framing: fraction of the image side spanned by the object's longer projected
    side; shift: fraction of the remaining free space used to move it off-centre;
    backgrounds: kinds of :func:`random_background`; blur: lens blur sigma (pixels at 224 px);
    noise: sensor noise std (8-bit levels); drop_shadow: chance of a soft shadow on the backdrop.
    """

    textures: bool = True
    key_light: Range = (0.55, 1.05)
    fill_light: Range = (0.0, 0.35)
    ambient: Range = (0.15, 0.45)
    colour_temperature: Range = (3200.0, 8000.0)
    shadows: bool = True
    shadow_darkness: Range = (0.45, 0.85)
    fov_deg: Range = (25.0, 60.0)
    elevation_deg: Range = (-75.0, 88.0)
    roll_deg: float = 180.0
    framing: Range = (0.55, 1.0)
    shift: float = 1.0
    backgrounds: tuple[str, ...] = BACKGROUND_KINDS
    blur: Range = (0.0, 0.7)
    noise: Range = (0.0, 3.0)
    drop_shadow: float = 0.4

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @staticmethod
    def from_json(data: dict) -> AppearanceConfig:
        """Inverse of :meth:`to_json` (lists back to tuples); unknown keys raise InputError."""
        names = {f.name for f in dataclasses.fields(AppearanceConfig)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(
                f"Unknown appearance settings {unknown}; known: {', '.join(sorted(names))}."
            )
        return AppearanceConfig(
            **{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        )

    def validate(self) -> None:
        """Raise InputError for empty ranges, unknown backdrops or a frame the object cannot fit."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.type == "Range" and not (len(value) == 2 and value[0] <= value[1]):
                raise InputError(
                    f"appearance.{f.name} must be a (low, high) range with low <= high; "
                    f"got {value}."
                )
        bad = [k for k in self.backgrounds if k not in BACKGROUND_KINDS]
        if bad or not self.backgrounds:
            raise InputError(
                f"appearance.backgrounds must be some of {', '.join(BACKGROUND_KINDS)}; got {bad}."
            )
        if not (0 < self.framing[0] and self.framing[1] <= 1.0):
            raise InputError(
                "appearance.framing must lie in (0, 1] so the object stays in the frame."
            )
        if not (1.0 <= self.fov_deg[0] and self.fov_deg[1] < 170.0):
            raise InputError("appearance.fov_deg must lie in [1, 170) degrees.")
        if not (-90.0 <= self.elevation_deg[0] and self.elevation_deg[1] <= 90.0):
            raise InputError("appearance.elevation_deg must lie in [-90, 90] degrees.")


def _rng(seed: int, stream: int, view: int = 0) -> np.random.Generator:
    return np.random.default_rng([int(seed), stream, view])


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


# ---------------------------------------------------------------------------------------
# Cameras


def _roll(pose: np.ndarray, degrees: float) -> np.ndarray:
    """The same camera turned by ``degrees`` about its optical axis."""
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a), 0.0], [np.sin(a), np.cos(a), 0.0], [0.0, 0.0, 1.0]])
    out = pose.copy()
    out[:3, :3] = pose[:3, :3] @ rot
    return out


def framed_camera(
    points: np.ndarray,
    direction: np.ndarray,
    size: Size,
    fov_deg: float,
    roll_deg: float,
    framing: float,
    offset: tuple[float, float],
) -> Camera:
    """A camera at ``direction`` (unit, object frame) looking at the origin, turned by
    ``roll_deg`` about its axis, at the distance where the projection of object points
    (N, 3) spans ``framing`` of the image along its longer side. The principal point then
    places the projected box off-centre by ``offset`` (each in [-1, 1]: the fraction of the
    free space on that side), as when a photo is cropped off-centre; every point stays in
    the frame."""
    w, h = size
    K = intrinsics(size, fov_deg)
    f = K[0, 0]
    rot = _roll(look_at(direction), roll_deg)[:3, :3]
    local = points @ rot  # camera-axis coordinates, camera at -distance along the optical axis

    def project_at(distance: float) -> tuple[np.ndarray, np.ndarray]:
        z = local[:, 2] + distance
        return f * local[:, 0] / z, f * local[:, 1] / z

    def span(distance: float) -> float:
        uv = local[:, :2] * (f / (local[:, 2] + distance))[:, None]
        return float(np.ptp(uv, axis=0).max())

    # Bisection on the distance: the projection shrinks monotonically as the camera backs off.
    target = framing * min(w, h)
    lo = -local[:, 2].min() + 1e-3
    step = 1.0
    while span(lo + step) > target:
        step *= 2.0
    hi = lo + step
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if span(mid) > target else (lo, mid)
    u, v = project_at(hi)
    span = np.array([np.ptp(u), np.ptp(v)])
    box_centre = np.array([u.min() + u.max(), v.min() + v.max()]) / 2
    room = np.maximum(np.array([w, h]) - span, 0.0) / 2
    principal = np.array([(w - 1) / 2, (h - 1) / 2]) + np.asarray(offset) * room - box_centre
    K[0, 2], K[1, 2] = principal
    pose = np.eye(4)
    pose[:3, :3] = rot
    pose[:3, 3] = -hi * rot[:, 2]
    return Camera(K, pose, size)


def random_cameras(
    asset: Asset, n_views: int, size: Size, seed: int, config: AppearanceConfig
) -> list[Camera]:
    """``n_views`` cameras on a spiral over the elevation range (random start), each with its
    own lens, roll and framing of the object's convex hull."""
    mesh = asset.mesh
    try:
        points = np.asarray(mesh.convex_hull.vertices)
    except Exception:  # noqa: BLE001 - degenerate (flat) meshes have no 3D hull
        points = np.asarray(mesh.vertices)
    offset = float(_rng(seed, _CAMERA).uniform(0, 2 * np.pi))
    directions = _spiral(n_views, config.elevation_deg, offset)
    cameras = []
    for i, d in enumerate(directions):
        rng = _rng(seed, _CAMERA, i + 1)
        cameras.append(
            framed_camera(
                points,
                d,
                size,
                _uniform(rng, config.fov_deg),
                _uniform(rng, (-config.roll_deg, config.roll_deg)),
                _uniform(rng, config.framing),
                tuple(rng.uniform(-config.shift, config.shift, 2)),
            )
        )
    return cameras


# ---------------------------------------------------------------------------------------
# Lights


def kelvin_rgb(kelvin: float) -> np.ndarray:
    """(3,) linear RGB of a black-body light colour, scaled to unit luminance.

    Tanner Helland's fit of the black-body locus, good to a few percent for 1,000-40,000 K.
    """
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = (
        99.4708025861 * np.log(t) - 161.1195681661
        if t <= 66
        else 288.1221695283 * (t - 60) ** -0.0755148492
    )
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else 138.5177312231 * np.log(t - 10) - 305.0447927307)
    rgb = np.clip(np.array([r, g, b]), 0, 255) / 255.0
    return rgb / (0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2])


def _direction(rng: np.random.Generator, max_angle: float) -> tuple[float, float, float]:
    """Unit camera-frame direction towards a light within ``max_angle`` degrees of the camera."""
    theta = np.radians(rng.uniform(0.0, max_angle))
    phi = rng.uniform(0, 2 * np.pi)
    return (
        float(np.sin(theta) * np.cos(phi)),
        float(np.sin(theta) * np.sin(phi)),
        float(-np.cos(theta)),
    )


def random_lighting(
    rng: np.random.Generator, config: AppearanceConfig, backdrop: np.ndarray
) -> Lighting:
    """Lights of one view; metals mirror a sky lit like the key light over the backdrop's colour."""
    key_colour = kelvin_rgb(_uniform(rng, config.colour_temperature))
    fill_colour = kelvin_rgb(_uniform(rng, config.colour_temperature))
    # Mostly front and side light, sometimes from behind (rim light).
    key_direction = _direction(rng, 125.0 if rng.uniform() < 0.15 else 75.0)
    key = _uniform(rng, config.key_light)
    ground = backdrop.reshape(-1, 3).mean(axis=0) / 255.0 * rng.uniform(0.4, 0.9)
    return Lighting(
        ambient=_uniform(rng, config.ambient),
        key_direction=key_direction,
        key=key,
        fill_direction=_direction(rng, 80.0),
        fill=_uniform(rng, config.fill_light),
        ambient_color=tuple(0.5 * (key_colour + fill_colour)),
        key_color=tuple(key_colour),
        fill_color=tuple(fill_colour),
        shadows=_uniform(rng, config.shadow_darkness) if config.shadows else 0.0,
        sky=tuple(key_colour * rng.uniform(0.7, 1.3)),
        ground=tuple(ground),
        env_up=tuple(rng.normal(0.0, 0.4, 3) + np.array([0.0, -1.0, 0.0])),
        env_bands=float(rng.uniform(0.0, 0.6)),
    )


# ---------------------------------------------------------------------------------------
# Views


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of an (H, W) or (H, W, 3) uint8 image (PIL is ~10x faster than scipy here)."""
    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma)))


def _finish_photo(
    view: RenderedView, light: Lighting, rng: np.random.Generator, config: AppearanceConfig
) -> np.ndarray:
    """Drop shadow on the backdrop, lens blur and sensor noise: (H, W, 3) uint8."""
    h, w = view.mask.shape
    scale = max(h, w) / 224.0
    image = view.rgb
    if rng.uniform() < config.drop_shadow:
        away = -np.asarray(light.key_direction[:2])
        away = away / max(np.linalg.norm(away), 1e-6) * rng.uniform(3.0, 14.0) * scale
        dy, dx = int(round(away[1])), int(round(away[0]))
        cast = np.zeros((h, w), np.uint8)
        cast[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = (
            view.mask[max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)] * 255
        )
        strength = np.float32(rng.uniform(0.2, 0.55) / 255.0)
        factor = 1.0 - _blur(cast, rng.uniform(2.0, 7.0) * scale).astype(np.float32) * strength
        factor[view.mask] = 1.0  # the object itself is not under its own drop shadow
        image = (image * factor[..., None] + 0.5).astype(np.uint8)
    sigma = _uniform(rng, config.blur) * scale
    if sigma > 0.05:
        image = _blur(image, sigma)
    std = _uniform(rng, config.noise)
    if std > 0:
        noisy = image + rng.standard_normal(image.shape, dtype=np.float32) * np.float32(std)
        image = (np.clip(noisy, 0.0, 255.0) + 0.5).astype(np.uint8)
    return image


def textured_scene(asset: Asset, seed: int, config: AppearanceConfig) -> RayScene:
    """The asset's ray-casting scene with its random textures and surface finish per part."""
    scene = prepare(asset)
    look = asset_textures(asset, _rng(seed, _TEXTURE), textured=config.textures)
    return dataclasses.replace(
        scene,
        face_specular=look.specular[scene.face_parts],
        face_shininess=look.shininess[scene.face_parts],
        face_reflect=look.reflect[scene.face_parts],
        albedo=look.albedo,
    )


def render_random_views(
    asset: Asset, n_views: int, size: Size, seed: int, config: AppearanceConfig
) -> list[RenderedView]:
    """Render ``n_views`` randomised views of an asset (see the module docstring)."""
    scene = textured_scene(asset, seed, config)
    w, h = size
    views = []
    for i, cam in enumerate(random_cameras(asset, n_views, size, seed, config)):
        backdrop = random_background(_rng(seed, _BACKGROUND, i), (h, w), config.backgrounds)
        light = random_lighting(_rng(seed, _LIGHT, i), config, backdrop)
        view = render_view(
            scene, cam.K, cam.cam_to_world, size, background=backdrop, lighting=light
        )
        view.rgb = _finish_photo(view, light, _rng(seed, _POST, i), config)
        views.append(view)
    return views

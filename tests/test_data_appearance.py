"""Randomised appearance: solid textures, shadows, cameras, backdrops, config, determinism."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from argparse import Namespace
from pathlib import Path

import numpy as np
import pytest
import trimesh

from funcorr.data.appearance import (
    AppearanceConfig,
    framed_camera,
    kelvin_rgb,
    random_cameras,
    render_random_views,
)
from funcorr.data.assets import generate
from funcorr.data.assets.base import Material, random_material
from funcorr.data.backgrounds import BACKGROUND_KINDS, PHOTOS, _photo_pixels, random_background
from funcorr.data.build import make_dataset
from funcorr.data.commands import config_from_args
from funcorr.data.format import PRESETS, DataConfig
from funcorr.data.groundtruth import GTConfig
from funcorr.data.render import (
    Lighting,
    intrinsics,
    look_at,
    multiview_correspondences,
    prepare,
    project,
    render_view,
)
from funcorr.data.textures import asset_textures
from funcorr.images import InputError

SMALL = (64, 64)
ALBEDO_ONLY = Lighting(ambient=1.0, key=0.0, fill=0.0)  # rgb = 255 x albedo


def test_material_kind_draws_nothing_extra():
    for kind, draws in (("metal", 4), ("wood", 4), ("plastic", 3), ("ceramic", 3)):
        rng, reference = np.random.default_rng(5), np.random.default_rng(5)
        material = random_material(rng, kind)
        reference.uniform(size=draws)
        assert material.kind == kind and rng.uniform() == reference.uniform()
    assert random_material(np.random.default_rng(0), "carbon fibre").kind == "plastic"
    kinds = {m.kind for m in generate("hammer", 4).materials}
    assert "metal" in kinds and kinds <= {"metal", "wood", "rubber", "plastic"}


def test_solid_texture_gives_a_surface_point_the_same_albedo_in_every_view():
    mug = generate("mug", 2)
    # A glazed mug with print on every part (generator 4 puts a label with text on the body).
    asset = dataclasses.replace(
        mug, materials=[Material((170, 120, 70), kind="ceramic") for _ in mug.materials]
    )
    look = asset_textures(asset, np.random.default_rng(4), decal_chance=1.0)
    scene = dataclasses.replace(prepare(asset), albedo=look.albedo)
    size = (96, 96)
    K = intrinsics(size, 40.0)
    a = render_view(scene, K, look_at((2.2, -1.0, 1.2)), size, lighting=ALBEDO_ONLY)
    b = render_view(scene, K, look_at((1.2, -2.2, 0.4)), size, lighting=ALBEDO_ONLY)
    corr = multiview_correspondences(a, b, max_points=2000, seed=0)
    assert len(corr) > 200
    pa = corr[:, 0].astype(int)
    pb = np.round(corr[:, 1]).astype(int)
    rgb_a = a.rgb[pa[:, 1], pa[:, 0]].astype(float)
    rgb_b = b.rgb[pb[:, 1], pb[:, 0]].astype(float)
    same = np.abs(rgb_a - rgb_b).mean(axis=1)
    shuffled = np.abs(rgb_a - rgb_b[np.random.default_rng(0).permutation(len(rgb_b))]).mean(axis=1)
    # Textured (colours vary over the surface), yet matched points agree up to the pixel footprint.
    assert rgb_a.std(axis=0).max() > 30
    assert np.median(same) <= 1 and same.mean() < 0.2 * shuffled.mean()


def test_shadow_rays_darken_the_plate_under_a_box():
    plate = trimesh.creation.box((2.0, 2.0, 0.05))
    block = trimesh.creation.box((0.5, 0.5, 0.5))
    block.apply_translation((0, 0, 0.5))  # floats 0.25 above the plate, so the camera sees under it
    mesh = trimesh.util.concatenate([plate, block])
    pose = look_at((0.0, -2.5, 1.2))
    size = (96, 96)
    K = intrinsics(size, 50.0)
    overhead = tuple(
        pose[:3, :3].T @ np.array([0.0, 0.0, 1.0])
    )  # light straight above, camera frame
    lit = render_view(mesh, K, pose, size, lighting=Lighting(key_direction=overhead, fill=0.0))
    dark = render_view(
        mesh, K, pose, size, lighting=Lighting(key_direction=overhead, fill=0.0, shadows=0.8)
    )
    top = lit.mask & (np.abs(lit.xyz[..., 2] - 0.025) < 1e-3)
    under = top & (np.abs(lit.xyz[..., 0]) < 0.2) & (np.abs(lit.xyz[..., 1]) < 0.2)
    open_plate = top & (np.abs(lit.xyz[..., 0]) > 0.5)
    assert under.sum() > 20 and open_plate.sum() > 20
    brightness = lambda view, where: view.rgb[where].astype(float).mean(axis=1)  # noqa: E731
    assert np.all(brightness(dark, under) < brightness(lit, under) - 20)
    assert np.array_equal(dark.rgb[open_plate], lit.rgb[open_plate])


def test_random_views_are_deterministic_per_seed():
    asset = generate("kettle", 1)
    config = AppearanceConfig()
    one = render_random_views(asset, 3, SMALL, 9, config)
    two = render_random_views(asset, 3, SMALL, 9, config)
    other = render_random_views(asset, 3, SMALL, 10, config)
    for a, b in zip(one, two, strict=True):
        assert a.rgb.tobytes() == b.rgb.tobytes() and a.depth.tobytes() == b.depth.tobytes()
        assert np.array_equal(a.K, b.K) and np.array_equal(a.cam_to_world, b.cam_to_world)
    assert one[0].rgb.tobytes() != other[0].rgb.tobytes()
    # Streams are independent: other backdrops leave cameras and geometry as they were.
    plain = render_random_views(
        asset, 3, SMALL, 9, dataclasses.replace(config, backgrounds=("colour",))
    )
    assert all(np.array_equal(a.depth, b.depth) for a, b in zip(one, plain, strict=True))


def test_random_cameras_keep_the_object_in_frame_with_varied_lenses():
    asset = generate("coat hanger", 3)
    config = AppearanceConfig()
    cameras = random_cameras(asset, 12, (80, 80), 4, config)
    fovs, spans, elevations = [], [], []
    for cam in cameras:
        xy, z = project(asset.mesh.vertices, cam.K, cam.cam_to_world)
        assert (z > 0).all() and xy.min() >= -0.5 - 1e-6 and xy.max() <= 79.5 + 1e-6
        spans.append(np.ptp(xy, axis=0).max() / 80)
        fovs.append(np.degrees(2 * np.arctan(40 / cam.K[0, 0])))
        elevations.append(np.degrees(np.arcsin(cam.center[2] / np.linalg.norm(cam.center))))
    assert min(spans) >= config.framing[0] - 0.01 and max(spans) <= 1.0 + 1e-6
    assert np.ptp(fovs) > 10 and min(fovs) >= 25 - 1e-6 and max(fovs) <= 60 + 1e-6
    assert max(elevations) > 60 and min(elevations) < -45
    # Off-centre framing moves the principal point; the optical axis still passes the origin.
    assert np.abs(np.array([c.K[0, 2] for c in cameras]) - 39.5).max() > 3
    for cam in cameras:
        axis = cam.cam_to_world[:3, 2]
        assert np.linalg.norm(np.cross(axis, -cam.center / np.linalg.norm(cam.center))) < 1e-9


def test_framed_camera_fills_the_requested_fraction():
    points = generate("knife", 2).mesh.vertices
    cam = framed_camera(
        points,
        np.array([0.3, -0.8, 0.52]) / np.linalg.norm([0.3, -0.8, 0.52]),
        (100, 100),
        35.0,
        30.0,
        0.8,
        (1.0, -1.0),
    )
    xy, _ = project(points, cam.K, cam.cam_to_world)
    assert np.isclose(np.ptp(xy, axis=0).max(), 80.0, atol=0.05)
    # offset (1, -1): pushed against the right edge and the top edge
    assert np.isclose(xy[:, 0].max(), 99.5, atol=1e-6) or np.isclose(
        xy[:, 1].min(), -0.5, atol=1e-6
    )


def test_randomised_cameras_give_valid_multiview_correspondences():
    asset = generate("mug", 5)
    views = render_random_views(asset, 4, (96, 96), 3, AppearanceConfig())
    checked = 0
    for a, b in ((views[0], views[1]), (views[1], views[2]), (views[2], views[3])):
        corr = multiview_correspondences(a, b, max_points=500, seed=0)
        if len(corr) == 0:
            continue
        pa = corr[:, 0].astype(int)
        pb = np.round(corr[:, 1]).astype(int)
        gap = np.linalg.norm(a.xyz[pa[:, 1], pa[:, 0]] - b.xyz[pb[:, 1], pb[:, 0]], axis=1)
        assert np.percentile(gap, 95) < 0.03
        checked += len(corr)
    assert checked > 100


@pytest.mark.parametrize("kind", BACKGROUND_KINDS)
def test_backgrounds_are_deterministic_and_fill_the_frame(kind):
    one = random_background(np.random.default_rng(3), (40, 56), kinds=(kind,))
    two = random_background(np.random.default_rng(3), (40, 56), kinds=(kind,))
    other = random_background(np.random.default_rng(4), (40, 56), kinds=(kind,))
    assert one.shape == (40, 56, 3) and one.dtype == np.uint8
    assert np.array_equal(one, two) and not np.array_equal(one, other)
    if kind not in ("colour", "studio"):
        assert one.reshape(-1, 3).std(axis=0).max() > 2  # a pattern, not a flat fill


def test_photo_backgrounds_load_offline():
    for name in PHOTOS:
        image = _photo_pixels(name)
        assert image.ndim == 3 and image.shape[2] == 3 and min(image.shape[:2]) >= 100
    with pytest.raises(ValueError, match="plaid"):
        random_background(np.random.default_rng(0), (8, 8), kinds=("plaid",))


def test_kelvin_colours_run_from_warm_to_cool():
    warm, white, cool = kelvin_rgb(3000), kelvin_rgb(6500), kelvin_rgb(9000)
    assert warm[0] > warm[2] and cool[2] > cool[0] and np.allclose(white, 1.0, atol=0.08)


def test_config_round_trip_and_validation():
    config = dataclasses.replace(
        PRESETS["tiny"],
        appearance=AppearanceConfig(fov_deg=(30.0, 50.0), backgrounds=("photo", "noise")),
    )
    stored = json.loads(json.dumps(config.to_json()))
    assert DataConfig.from_json(stored) == config
    assert "appearance" not in PRESETS["tiny"].to_json()  # flat configs keep their old config.json
    assert DataConfig.from_json(PRESETS["train"].to_json()) == PRESETS["train"]
    assert PRESETS["train"].appearance is not None and PRESETS["benchmark"].appearance is None
    with pytest.raises(InputError, match="fov_deg"):
        AppearanceConfig(fov_deg=(50.0, 30.0)).validate()
    with pytest.raises(InputError, match="backgrounds"):
        AppearanceConfig(backgrounds=("plaid",)).validate()
    with pytest.raises(InputError, match="Unknown appearance"):
        AppearanceConfig.from_json({"sparkle": 1})


def test_cli_appearance_options():
    base = dict(
        preset="tiny",
        functions=None,
        unseen_categories=None,
        assets_per_category=None,
        train_views=None,
        eval_views=None,
        image_size=None,
        seed=None,
        pairs_per_function=None,
        background=None,
        meshes=None,
    )
    assert config_from_args(Namespace(**base, appearance=None, backgrounds=None)).appearance is None
    rand = config_from_args(Namespace(**base, appearance="random", backgrounds="photo,noise"))
    assert rand.appearance == AppearanceConfig(backgrounds=("photo", "noise"))
    flat = config_from_args(
        Namespace(**{**base, "preset": "train"}, appearance="flat", backgrounds=None)
    )
    assert flat.appearance is None
    with pytest.raises(InputError, match="--appearance random"):
        config_from_args(Namespace(**base, appearance=None, backgrounds="photo"))


MICRO_RANDOM = DataConfig(
    functions=("cut-with",),
    assets_per_category=2,
    train_views=3,
    eval_views=5,
    image_size=48,
    pairs_per_function=2,
    match_neighbours=1,
    match_points=32,
    gt=GTConfig(min_part_pixels=8, min_correspondences=5, max_points=60),
    appearance=AppearanceConfig(),
)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_random_datasets_are_byte_identical_and_resume(tmp_path):
    make_dataset(MICRO_RANDOM, tmp_path / "a", progress=False)
    make_dataset(MICRO_RANDOM, tmp_path / "b", progress=False)
    digest = _digest(tmp_path / "a")
    assert digest == _digest(tmp_path / "b")
    shutil.rmtree(tmp_path / "b" / "assets" / "knife-0001")
    (tmp_path / "b" / "index.json").unlink()
    report = make_dataset(MICRO_RANDOM, tmp_path / "b", progress=False)
    assert report.written == 1 and _digest(tmp_path / "b") == digest
    stored = json.loads((tmp_path / "a" / "config.json").read_text())["config"]
    assert DataConfig.from_json(stored) == MICRO_RANDOM


def test_render_view_takes_a_background_image():
    asset = generate("bottle", 1)
    cam = random_cameras(asset, 1, SMALL, 0, AppearanceConfig())[0]
    backdrop = random_background(np.random.default_rng(1), SMALL, kinds=("noise",))
    view = render_view(asset, cam.K, cam.cam_to_world, SMALL, background=backdrop)
    assert np.array_equal(view.rgb[~view.mask], backdrop[~view.mask]) and view.mask.sum() > 100
    with pytest.raises(ValueError, match="does not match"):
        render_view(asset, cam.K, cam.cam_to_world, SMALL, background=backdrop[:10])

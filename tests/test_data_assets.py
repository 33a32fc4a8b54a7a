"""Procedural asset families, real-mesh loading and the BOP reader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from PIL import Image

from funcorr.data.assets import (
    CATEGORIES,
    categories_for,
    generate,
    supported_functions,
    surface_points,
)
from funcorr.data.assets.bop import bop_view, load_bop_model, read_bop_scene
from funcorr.data.assets.geometry import surface_distance
from funcorr.data.assets.mesh_io import load_mesh_asset, save_mesh_asset
from funcorr.data.render import intrinsics, look_at, render_view
from funcorr.data.taxonomy import taxonomy
from funcorr.images import InputError


def test_registry_covers_required_families():
    assert len(CATEGORIES) >= 12
    functions = supported_functions()
    assert len(functions) >= 8
    assert set(functions) <= set(taxonomy().functions)
    assert set(categories_for("pour-with")) >= {
        "kettle",
        "teapot",
        "bottle",
        "mug",
        "jug",
        "watering can",
    }


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_generator_contract(category):
    asset = generate(category, seed=11)
    mesh = asset.mesh
    # Normalised object frame: longest side 1, bounding box centred on the origin.
    assert np.isclose(mesh.extents.max(), 1.0)
    assert np.allclose(mesh.bounds.mean(0), 0.0, atol=1e-9)
    assert asset.face_parts.shape == (len(mesh.faces),)
    assert set(np.unique(asset.face_parts)) == set(range(len(asset.part_names)))
    assert len(asset.materials) == len(asset.part_names)
    assert tuple(asset.functions) == CATEGORIES[category].functions
    tax = taxonomy()
    for name, fp in asset.functions.items():
        # Declared functions and parts agree with the shipped taxonomy whenever it knows the category.
        assert category in tax.objects_for(name) or name in {
            f for fs in tax.part2function[category].values() for f in fs
        }
        if category in tax.part2function:
            assert fp.part in tax.functional_parts(category, name)
        rot = fp.frame[:3, :3]
        assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9) and np.isclose(
            np.linalg.det(rot), 1.0
        )
        part_vertices = mesh.vertices[
            np.unique(mesh.faces[asset.face_parts == asset.part_id(fp.part)])
        ]
        lo, hi = part_vertices.min(0) - 0.05, part_vertices.max(0) + 0.05
        assert np.all((fp.frame[:3, 3] >= lo) & (fp.frame[:3, 3] <= hi)), (
            "frame origin is not on its part"
        )
        assert 0.02 < fp.size < 2.0
        assert fp.symmetry >= 0


def test_seed_determines_instance():
    a, b, c = generate("teapot", 5), generate("teapot", 5), generate("teapot", 6)
    assert a.mesh.vertices.tobytes() == b.mesh.vertices.tobytes()
    assert a.materials == b.materials and a.params == b.params
    assert a.params != c.params
    assert not np.array_equal(a.mesh.vertices, c.mesh.vertices)


def test_hundreds_of_distinct_instances_per_category():
    family = CATEGORIES["knife"]
    params = {tuple(family.sample_params(np.random.default_rng(s)).values()) for s in range(300)}
    assert len(params) == 300


def test_parameter_overrides_and_errors():
    assert generate("kettle", 3, spout_length=1.1).params["spout_length"] == 1.1
    with pytest.raises(KeyError, match="spout_length"):
        generate("kettle", 3, spout_lenght=1.1)
    with pytest.raises(KeyError, match="Unknown category"):
        generate("toaster", 3)


def test_surface_points_carry_part_labels():
    asset = generate("hammer", 2)
    points, parts = surface_points(asset, 400, seed=0)
    assert points.shape == (400, 3) and parts.shape == (400,)
    distance, triangles = surface_distance(asset.mesh, points)
    assert distance.max() < 1e-9
    # Points on part seams may snap to the neighbouring part's triangle.
    assert np.mean(asset.face_parts[triangles] == parts) > 0.98
    again, _ = surface_points(asset, 400, seed=0)
    assert np.array_equal(points, again)


@pytest.mark.parametrize("suffix", [".glb", ".obj", ".ply"])
def test_mesh_roundtrip_keeps_parts_and_frames(tmp_path, suffix):
    asset = generate("mug", 4)
    save_mesh_asset(asset, tmp_path / f"mug{suffix}")
    loaded = load_mesh_asset(tmp_path / f"mug{suffix}")
    assert loaded.category == "mug"
    assert np.array_equal(loaded.face_parts, asset.face_parts)
    assert np.allclose(
        loaded.mesh.vertices[loaded.mesh.faces], asset.mesh.vertices[asset.mesh.faces], atol=1e-5
    )
    for name, fp in asset.functions.items():
        assert np.allclose(loaded.functions[name].frame, fp.frame, atol=1e-5)
        assert np.isclose(loaded.functions[name].size, fp.size, atol=1e-5)
    assert loaded.face_colors is not None and loaded.face_colors.shape == (len(asset.mesh.faces), 3)


def test_mesh_without_sidecar_and_heuristic_frames(tmp_path):
    box = trimesh.creation.box((2.0, 1.0, 0.5))
    box.export(tmp_path / "brick.obj")
    plain = load_mesh_asset(tmp_path / "brick.obj")
    assert plain.part_names == ["object"] and plain.functions == {} and plain.category == "brick"
    sidecar = {
        "part_names": ["object"],
        "face_parts": [0] * len(box.faces),
        "functions": {"pound-with": {"part": "object"}},
    }
    (tmp_path / "brick.obj.parts.json").write_text(json.dumps(sidecar))
    frame = load_mesh_asset(tmp_path / "brick.obj", category="brick").functions["pound-with"].frame
    assert np.isclose(abs(frame[0, 2]), 1.0)  # z follows the longest principal axis (x)


def test_bad_mesh_files_raise_clear_errors(tmp_path):
    with pytest.raises(InputError, match="No mesh file"):
        load_mesh_asset(tmp_path / "missing.glb")
    bad = tmp_path / "broken.glb"
    bad.write_bytes(b"glTF\x02\x00\x00\x00garbage")
    with pytest.raises(InputError, match="broken.glb"):
        load_mesh_asset(bad)
    generate("spoon", 1).mesh.export(tmp_path / "spoon.ply")
    (tmp_path / "spoon.ply.parts.json").write_text(
        json.dumps({"part_names": ["bowl"], "face_parts": [0, 0]})
    )
    with pytest.raises(InputError, match="face_parts has 2 entries"):
        load_mesh_asset(tmp_path / "spoon.ply")


def _write_bop_scene(root, mesh_mm: trimesh.Trimesh, size=(80, 60)):
    """A one-image BOP scene rendered with our renderer; returns the original view."""
    (root / "models").mkdir(parents=True)
    mesh_mm.export(root / "models" / "obj_000001.ply")
    scene = root / "test" / "000001"
    for sub in ("rgb", "mask_visib"):
        (scene / sub).mkdir(parents=True)
    K = intrinsics(size, 50.0)
    pose = look_at((300.0, -200.0, 250.0))
    view = render_view(mesh_mm, K, pose, size)
    Image.fromarray(view.rgb).save(scene / "rgb" / "000000.png")
    visible = view.mask.copy()
    visible[:, : size[0] // 2] = False  # an occluder hides the left half
    Image.fromarray(visible.astype(np.uint8) * 255).save(scene / "mask_visib" / "000000_000000.png")
    m2c = np.linalg.inv(pose)
    (scene / "scene_camera.json").write_text(
        json.dumps({"0": {"cam_K": K.ravel().tolist(), "depth_scale": 1.0}})
    )
    (scene / "scene_gt.json").write_text(
        json.dumps(
            {
                "0": [
                    {
                        "obj_id": 1,
                        "cam_R_m2c": m2c[:3, :3].ravel().tolist(),
                        "cam_t_m2c": m2c[:3, 3].tolist(),
                    }
                ]
            }
        )
    )
    return scene, view, visible


def test_bop_scene_reader(tmp_path):
    mesh = generate("kettle", 1).mesh.copy()
    mesh.apply_scale(200.0)  # BOP models are in millimetres
    scene, original, visible = _write_bop_scene(tmp_path, mesh)
    frames = read_bop_scene(scene)
    assert len(frames) == 1 and len(frames[0].objects) == 1
    obj = frames[0].objects[0]
    model = load_bop_model(tmp_path / "models", obj.obj_id)
    view = bop_view(frames[0], obj, model)
    assert np.array_equal(view.mask, original.mask & visible)
    assert np.array_equal(view.rgb, original.rgb)
    assert np.allclose(view.xyz[view.mask], original.xyz[view.mask], atol=1e-3)
    assert np.isnan(view.xyz[~view.mask]).all()
    (scene / "scene_gt.json").unlink()
    with pytest.raises(InputError, match="scene_gt.json"):
        read_bop_scene(scene)

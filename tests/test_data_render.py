"""Ray-cast renderer: exact geometry buffers, pixel convention, cameras, multi-view correspondences."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from funcorr.data.assets import generate
from funcorr.data.assets.geometry import surface_distance
from funcorr.data.render import (
    RenderedView,
    asset_cameras,
    backproject,
    intrinsics,
    look_at,
    multiview_correspondences,
    project,
    render_cycles,
    render_view,
    render_views,
    sphere_cameras,
)

SMALL = (64, 64)


@pytest.fixture(scope="module")
def mug_views() -> tuple:
    asset = generate("mug", 3)
    return asset, render_views(asset, 6, SMALL, seed=1)


@pytest.mark.parametrize("category", ["mug", "fork"])
def test_every_pixel_xyz_lies_on_the_mesh(category):
    asset = generate(category, 8)
    for view in render_views(asset, 3, SMALL, seed=0):
        points = view.xyz[view.mask]
        assert len(points) > 10
        distance, triangles = surface_distance(asset.mesh, points)
        assert distance.max() <= 1e-4 * asset.mesh.extents.max()
        # Part labels are those of the triangles the points lie on (seams may tie).
        assert np.mean(asset.face_parts[triangles] == view.part_ids[view.mask]) > 0.97
        assert np.allclose(
            backproject(view.depth, view.K, view.cam_to_world)[view.mask], points, atol=1e-5
        )


def test_buffers_are_consistent(mug_views):
    asset, views = mug_views
    view = views[0]
    assert isinstance(view, RenderedView)
    assert view.rgb.shape == (64, 64, 3) and view.rgb.dtype == np.uint8
    assert (
        view.depth.dtype == np.float32
        and view.xyz.dtype == np.float32
        and view.part_ids.dtype == np.int16
    )
    assert np.array_equal(view.mask, view.depth > 0)
    assert np.array_equal(view.mask, view.part_ids >= 0)
    assert np.isnan(view.xyz[~view.mask]).all() and not np.isnan(view.xyz[view.mask]).any()
    assert np.allclose(np.linalg.norm(view.normals[view.mask], axis=1), 1.0, atol=1e-5)
    # Normals face the camera.
    to_camera = view.cam_to_world[:3, 3] - view.xyz[view.mask]
    assert np.all(np.einsum("ij,ij->i", view.normals[view.mask], to_camera) > 0)
    assert (view.rgb[~view.mask] == 255).all()  # white background
    assert view.part_names == asset.part_names


def test_pixel_convention_on_a_known_plane():
    """A plane at z = 2 in front of an identity camera: depth and xyz follow K^-1 [c, r, 1] exactly."""
    plane = trimesh.Trimesh(
        [[-10, -10, 2], [10, -10, 2], [10, 10, 2], [-10, 10, 2]], [[0, 1, 2], [0, 2, 3]]
    )
    size = (8, 6)
    K = intrinsics(size, 60.0)
    view = render_view(plane, K, np.eye(4), size)
    assert np.allclose(view.depth, 2.0)
    cols, rows = np.meshgrid(np.arange(8), np.arange(6))
    assert np.allclose(view.xyz[..., 0], (cols - K[0, 2]) / K[0, 0] * 2.0, atol=1e-6)
    assert np.allclose(view.xyz[..., 1], (rows - K[1, 2]) / K[1, 1] * 2.0, atol=1e-6)
    assert K[0, 2] == 3.5 and K[1, 2] == 2.5  # centre of the top-left pixel is (0, 0)


def test_image_orientation_right_and_down():
    """A box at +x appears in the right columns, a box at +y (camera down) in the bottom rows."""
    right = trimesh.creation.box((0.3, 0.3, 0.3))
    right.apply_translation((0.6, 0, 3))
    below = trimesh.creation.box((0.3, 0.3, 0.3))
    below.apply_translation((0, 0.6, 3))
    size = (41, 41)
    K = intrinsics(size, 40.0)
    view = render_view(trimesh.util.concatenate([right, below]), K, np.eye(4), size)
    rows, cols = np.nonzero(view.mask)
    right_px = cols > 25
    assert right_px.any() and np.all(np.abs(rows[right_px] - 20) < 6)
    below_px = rows > 25
    assert below_px.any() and np.all(np.abs(cols[below_px] - 20) < 6)


def test_project_inverts_rendering(mug_views):
    _, views = mug_views
    view = views[2]
    rows, cols = np.nonzero(view.mask)
    xy, z = project(view.xyz[rows, cols], view.K, view.cam_to_world)
    assert np.allclose(xy, np.stack([cols, rows], 1), atol=1e-3)
    assert np.allclose(z, view.depth[rows, cols], atol=1e-5)


def test_sphere_cameras_see_from_above_and_below():
    cameras = sphere_cameras(19, distance=3.0)
    centres = np.array([c.center for c in cameras])
    assert np.allclose(np.linalg.norm(centres, axis=1), 3.0)
    assert centres[:, 2].max() > 2.0 and centres[:, 2].min() < -1.5
    for cam in cameras:
        rot = cam.cam_to_world[:3, :3]
        assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9) and np.isclose(
            np.linalg.det(rot), 1.0
        )
        assert np.allclose(rot[:, 2], -cam.center / 3.0)  # optical axis through the origin
        assert rot[2, 1] <= 1e-9  # image 'down' never points up in the object frame
    assert len({tuple(np.round(c, 6)) for c in centres}) == 19


def test_whole_object_is_framed():
    asset = generate("coat hanger", 2)
    for cam in asset_cameras(asset, 8, SMALL, seed=3):
        xy, z = project(asset.mesh.vertices, cam.K, cam.cam_to_world)
        assert (z > 0).all() and (xy >= -0.5).all() and (xy <= 63.5).all()


def test_multiview_correspondences_see_the_same_points(mug_views):
    _, views = mug_views
    a, b = views[0], views[1]
    corr = multiview_correspondences(a, b, max_points=300, tol=0.01, seed=0)
    assert corr.dtype == np.float32 and corr.shape[1:] == (2, 2) and 50 <= len(corr) <= 300
    pa = corr[:, 0].astype(int)
    nearest_b = np.round(corr[:, 1]).astype(int)
    xyz_a = a.xyz[pa[:, 1], pa[:, 0]]
    xyz_b = b.xyz[nearest_b[:, 1], nearest_b[:, 0]]
    # Within a pixel footprint (~0.03 object units at 64 px) of each other.
    assert np.linalg.norm(xyz_a - xyz_b, axis=1).max() < 0.03
    assert len(np.unique(pa, axis=0)) == len(pa)


def test_multiview_correspondences_identity_for_identical_views(mug_views):
    _, views = mug_views
    corr = multiview_correspondences(views[3], views[3], max_points=10_000)
    assert len(corr) == views[3].mask.sum()
    assert np.allclose(corr[:, 0], corr[:, 1], atol=1e-3)


def test_occluded_points_are_not_matched():
    """The back of a box seen from the front has no correspondence in a front view."""
    box = trimesh.creation.box((1.0, 1.0, 1.0))
    K = intrinsics(SMALL, 40.0)
    front = render_view(box, K, look_at((0, -4, 0)), SMALL)
    back = render_view(box, K, look_at((0, 4, 0)), SMALL)
    assert len(multiview_correspondences(front, back, max_points=10_000)) == 0


def test_rendering_is_deterministic_and_backgrounds_vary():
    asset = generate("kettle", 2)
    cam = asset_cameras(asset, 1, SMALL)[0]
    one = render_view(asset, cam.K, cam.cam_to_world, SMALL, background="random", seed=4)
    two = render_view(asset, cam.K, cam.cam_to_world, SMALL, background="random", seed=4)
    other = render_view(asset, cam.K, cam.cam_to_world, SMALL, background="random", seed=5)
    assert one.rgb.tobytes() == two.rgb.tobytes() and one.xyz.tobytes() == two.xyz.tobytes()
    assert not np.array_equal(one.rgb[~one.mask], other.rgb[~other.mask])
    with pytest.raises(ValueError, match="background"):
        render_view(asset, cam.K, cam.cam_to_world, SMALL, background="plaid")


def test_cycles_needs_bpy():
    try:
        import bpy  # noqa: F401
    except ImportError:
        asset = generate("mug", 1)
        with pytest.raises(RuntimeError, match="bpy"):
            render_cycles(asset, intrinsics(SMALL), look_at((2, 0, 0)), SMALL)
    else:
        pytest.skip("bpy is installed; the Cycles path is exercised manually")

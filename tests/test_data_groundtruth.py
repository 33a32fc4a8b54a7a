"""Functional ground truth: alignment, view choice, symmetry handling and one-to-one matching.

Stated bound: after functional alignment, kept correspondences are at most
``GTConfig.max_distance`` (0.15) x the functional-part size apart and 0.1 x on average.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import trimesh

from funcorr.data.assets import Asset, FunctionalPart, generate
from funcorr.data.groundtruth import (
    GTConfig,
    functional_alignment,
    functional_pairs,
    functional_view,
    furthest_point_sampling,
    match_functional_pixels,
    symmetry_angle,
    transform_points,
)
from funcorr.data.render import asset_cameras, look_at, render_view, render_views

SIZE = (96, 96)
ALL_POINTS = GTConfig(max_points=100_000)  # no subsampling: every visible pixel takes part


def similarity(rotation: np.ndarray, scale: float, translation) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = scale * rotation, translation
    return out


def transformed_asset(asset: Asset, transform: np.ndarray, move_frames: bool = True) -> Asset:
    """A copy of ``asset`` moved by a similarity; functional frames follow unless ``move_frames`` is False."""
    mesh = asset.mesh.copy()
    mesh.apply_transform(transform)
    scale = np.cbrt(np.linalg.det(transform[:3, :3]))
    functions = {}
    for name, fp in asset.functions.items():
        frame = fp.frame.copy()
        if move_frames:
            frame = transform @ fp.frame
            frame[:3, :3] /= scale
        functions[name] = dataclasses.replace(
            fp, frame=frame, size=fp.size * scale if move_frames else fp.size
        )
    return dataclasses.replace(asset, mesh=mesh, functions=functions)


def moved_camera(cam_to_world: np.ndarray, transform: np.ndarray) -> np.ndarray:
    """The camera that sees a similarity-moved scene exactly as ``cam_to_world`` saw the original."""
    scale = np.cbrt(np.linalg.det(transform[:3, :3]))
    pose = transform @ cam_to_world
    pose[:3, :3] /= scale
    return pose


def best_view(asset: Asset, part: str, n: int = 8):
    views = render_views(asset, n, SIZE, seed=2)
    return max(views, key=lambda v: v.part_mask(part).sum())


def test_self_alignment_is_identity_and_matches_every_pixel():
    kettle = generate("kettle", 4)
    fp = kettle.functions["pour-with"]
    view = best_view(kettle, fp.part)
    fv = functional_view(view, fp.part, 0)
    assert np.allclose(functional_alignment(fp, fp), np.eye(4))
    corr, dist = match_functional_pixels(
        fv, fv, np.eye(4), fp.size, ALL_POINTS, np.random.default_rng(0)
    )
    assert len(corr) == fv.count
    assert np.array_equal(corr[:, 0], corr[:, 1]) and np.allclose(dist, 0.0)


def test_similarity_copy_gives_known_correspondences():
    """Asset B = S(A) seen by S(camera): the image is identical, so GT must be the identity pixel map."""
    knife = generate("knife", 6)
    fp = knife.functions["cut-with"]
    rotation = trimesh.transformations.rotation_matrix(0.7, [1, 2, 3])[:3, :3]
    S = similarity(rotation, 0.5, [0.3, -1.0, 2.0])
    copy = transformed_asset(knife, S)
    cam = max(
        asset_cameras(knife, 8, SIZE, seed=1),
        key=lambda c: render_view(knife, c.K, c.cam_to_world, SIZE).part_mask(fp.part).sum(),
    )
    view_a = render_view(knife, cam.K, cam.cam_to_world, SIZE)
    view_b = render_view(copy, cam.K, moved_camera(cam.cam_to_world, S), SIZE)
    T = functional_alignment(fp, copy.functions["cut-with"])
    assert np.allclose(T, np.linalg.inv(S), atol=1e-9)
    fa, fb = functional_view(view_a, fp.part, 0), functional_view(view_b, fp.part, 1)
    corr, dist = match_functional_pixels(fa, fb, T, fp.size, ALL_POINTS, np.random.default_rng(0))
    assert len(corr) >= 0.99 * min(fa.count, fb.count)
    assert np.mean(np.all(corr[:, 0] == corr[:, 1], axis=1)) > 0.99
    assert dist.max() < 1e-3 * fp.size


def test_pair_respects_alignment_and_is_one_to_one():
    bottle, mug = generate("bottle", 1), generate("mug", 2)
    function = "pour-with"
    views1 = render_views(bottle, 10, SIZE, seed=0)
    views2 = render_views(mug, 10, SIZE, seed=5)
    p1, p2 = bottle.functions[function], mug.functions[function]
    fv1 = [functional_view(v, p1.part, i) for i, v in enumerate(views1)]
    fv2 = [functional_view(v, p2.part, i) for i, v in enumerate(views2)]
    config = GTConfig(max_points=150)
    pairs = functional_pairs(p1, fv1, p2, fv2, config, np.random.default_rng(0), n_pairs=3)
    assert len(pairs) >= 2
    assert len({(p.view1, p.view2) for p in pairs}) == len(pairs)
    top = set(np.argsort([-f.count for f in fv1], kind="stable")[: config.top_k])
    for gt in pairs:
        corr = gt.correspondences.astype(int)
        assert config.min_correspondences <= len(corr) <= config.max_points
        assert len(np.unique(corr[:, 0], axis=0)) == len(corr) and len(
            np.unique(corr[:, 1], axis=0)
        ) == len(corr)
        v1, v2 = views1[gt.view1], views2[gt.view2]
        assert v1.part_mask(p1.part)[corr[:, 0, 1], corr[:, 0, 0]].all()
        assert v2.part_mask(p2.part)[corr[:, 1, 1], corr[:, 1, 0]].all()
        xyz1 = v1.xyz[corr[:, 0, 1], corr[:, 0, 0]]
        xyz2 = transform_points(
            gt.transform, v2.xyz[corr[:, 1, 1], corr[:, 1, 0]].astype(np.float64)
        )
        dist = np.linalg.norm(xyz1 - xyz2, axis=1)
        assert np.allclose(dist, gt.distances, atol=1e-5)
        assert dist.max() <= config.max_distance * p1.size + 1e-6
        assert dist.mean() <= 0.1 * p1.size
        assert gt.view1 in top


def test_rotational_symmetry_is_resolved_by_2d_orientation():
    """A mug turned 90 deg about its rim axis, with the rim frame left unturned (equally valid for a
    round rim): only the symmetry-aware alignment recovers the identity pixel map of identical images."""
    mug = generate("mug", 3)
    fp = mug.functions["pour-with"]
    assert fp.symmetry == 0
    turn = (
        fp.frame
        @ trimesh.transformations.rotation_matrix(np.pi / 2, [0, 0, 1])
        @ np.linalg.inv(fp.frame)
    )
    turned = transformed_asset(mug, turn, move_frames=False)
    cam = look_at((1.5, -1.8, 1.6))
    K = asset_cameras(mug, 1, SIZE)[0].K
    view_a = render_view(mug, K, cam, SIZE)
    view_b = render_view(turned, K, moved_camera(cam, turn), SIZE)
    fa, fb = functional_view(view_a, fp.part, 0), functional_view(view_b, fp.part, 1)
    part_b = turned.functions["pour-with"]
    theta = symmetry_angle(fp, part_b, cam[:3, 3], moved_camera(cam, turn)[:3, 3])
    assert np.isclose(theta, -np.pi / 2)
    rng = np.random.default_rng(0)
    corr, dist = match_functional_pixels(
        fa, fb, functional_alignment(fp, part_b, theta), fp.size, ALL_POINTS, rng
    )
    assert np.mean(np.all(corr[:, 0] == corr[:, 1], axis=1)) > 0.99 and dist.max() < 1e-3
    naive, _ = match_functional_pixels(
        fa, fb, functional_alignment(fp, part_b, 0.0), fp.size, ALL_POINTS, rng
    )
    assert np.mean(np.all(naive[:, 0] == naive[:, 1], axis=1)) < 0.5


@pytest.mark.parametrize(
    ("symmetry", "expected"),
    [(1, 0.0), (2, np.pi), (0, 2.5)],
)
def test_symmetry_angle_respects_the_order(symmetry, expected):
    frame = np.eye(4)
    part = FunctionalPart("tip", frame, 1.0, symmetry)
    cam1 = np.array([np.cos(0.5), np.sin(0.5), 1.0])
    cam2 = np.array([np.cos(-2.0), np.sin(-2.0), 1.0])  # azimuth differs by 2.5 rad
    assert np.isclose(symmetry_angle(part, part, cam1, cam2), expected)


def test_furthest_point_sampling_spreads_points():
    grid = np.stack(np.meshgrid(np.arange(30), np.arange(30)), -1).reshape(-1, 2)
    rng = np.random.default_rng(0)
    fps = furthest_point_sampling(grid, 25, rng)
    rand = rng.choice(len(grid), 25, replace=False)

    def coverage(idx):
        return np.min(np.linalg.norm(grid[:, None] - grid[idx][None], axis=2), axis=1).max()

    assert len(set(fps.tolist())) == 25
    assert coverage(fps) < coverage(rand)
    assert np.array_equal(furthest_point_sampling(grid[:5], 10, rng), np.arange(5))

"""Functional ground-truth correspondences between two assets (paper Sec. 3.2 / 8.1).

For a function both assets support:

1. **Align** asset 2 onto asset 1 by their functional frames: ``T = F1 Rz(theta) S F2^-1``
   with ``S`` scaling part 2's size onto part 1's (:func:`functional_alignment`).
2. **Choose views** (:func:`select_view_pair`): the source view is drawn from the
   ``top_k`` of all views by visible functional-part pixels; the target view from the
   ``top_k`` by 0.5 * pose agreement + 0.5 * relative part visibility, where pose
   agreement compares the directions from which the two cameras see the aligned
   functional frames. Several trials draw distinct view pairs.
3. **Match** (:func:`match_functional_pixels`): the visible functional-part pixels of each
   view, back-projected to 3D and mapped into asset 1's frame, are furthest-point
   sampled (in pixel space) down to the smaller set (at most ``max_points``), matched
   one-to-one with the Hungarian algorithm on 3D distance, and pairs farther apart than
   ``max_distance`` x part-1 size are dropped.

Rotational symmetry: a functional part symmetric about its frame z axis (a mug rim,
a mallet face, a flat screwdriver tip) has several equally valid alignments. As in the
paper, the ambiguity is resolved by 2D orientation: among the symmetric alignments we
use the rotation ``theta`` under which the two cameras look at the part from the most
similar direction (azimuth about z in the functional frame), so the correspondences
agree with how the parts appear in the two images rather than with an arbitrary seam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from funcorr.data.assets.base import FunctionalPart
from funcorr.data.render import RenderedView, multiview_correspondences  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class GTConfig:
    """Settings of the ground-truth pipeline.

    max_distance is relative to the functional part size of asset 1 (object units
    after alignment); n_trials is the number of view pairs tried per asset pair.
    """

    top_k: int = 5
    n_trials: int = 6
    max_points: int = 400
    max_distance: float = 0.15
    min_correspondences: int = 20
    min_part_pixels: int = 40


@dataclass(frozen=True)
class FunctionalView:
    """The visible functional-part pixels of one view.

    pixels (M, 2) int64 (x, y); xyz (M, 3) float64 object-frame points;
    cam_to_world (4, 4).
    """

    view_id: int
    pixels: np.ndarray
    xyz: np.ndarray
    cam_to_world: np.ndarray

    @property
    def count(self) -> int:
        return len(self.pixels)


@dataclass(frozen=True)
class PairGT:
    """Ground truth of one view pair: correspondences (N, 2, 2) float32 pixel xy
    ([:, 0] in view 1, [:, 1] in view 2), their 3D distances (N,) after alignment, and
    the alignment transform (4, 4) mapping asset-2 object coordinates to asset 1's."""

    view1: int
    view2: int
    correspondences: np.ndarray
    distances: np.ndarray
    transform: np.ndarray


def masked_view(
    mask: np.ndarray, xyz: np.ndarray, view_id: int, cam_to_world: np.ndarray
) -> FunctionalView:
    """The pixels of a functional-part mask (H, W) with their object-frame points from xyz (H, W, 3)."""
    rows, cols = np.nonzero(mask)
    return FunctionalView(
        view_id,
        np.stack([cols, rows], 1).astype(np.int64),
        xyz[rows, cols].astype(np.float64),
        cam_to_world,
    )


def functional_view(view: RenderedView, part: str, view_id: int) -> FunctionalView:
    """The visible pixels of ``part`` in a rendered view."""
    return masked_view(view.part_mask(part) & view.mask, view.xyz, view_id, view.cam_to_world)


def rotation_z(theta: float) -> np.ndarray:
    """(4, 4) rotation by ``theta`` radians about z."""
    c, s = np.cos(theta), np.sin(theta)
    rot = np.eye(4)
    rot[:2, :2] = [[c, -s], [s, c]]
    return rot


def functional_alignment(
    part1: FunctionalPart, part2: FunctionalPart, theta: float = 0.0
) -> np.ndarray:
    """Similarity (4, 4) mapping asset-2 object coordinates onto asset 1 so the functional frames coincide.

    theta rotates about the shared frame z axis (used for symmetric parts).
    """
    scale = np.diag([part1.size / part2.size] * 3 + [1.0])
    return part1.frame @ rotation_z(theta) @ scale @ np.linalg.inv(part2.frame)


def _azimuth_in_frame(frame: np.ndarray, point: np.ndarray) -> float:
    local = np.linalg.inv(frame) @ np.append(point, 1.0)
    return float(np.arctan2(local[1], local[0]))


def symmetry_angle(
    part1: FunctionalPart, part2: FunctionalPart, camera1: np.ndarray, camera2: np.ndarray
) -> float:
    """Rotation about z (radians) allowed by the parts' symmetry that best aligns the two cameras' azimuths.

    Continuous symmetry (0) aligns them exactly; k-fold picks the nearest multiple of
    2 pi / k; a part is only as symmetric as the less symmetric of the two.
    """
    orders = [part1.symmetry, part2.symmetry]
    if 1 in orders:
        return 0.0
    wanted = _azimuth_in_frame(part1.frame, camera1) - _azimuth_in_frame(part2.frame, camera2)
    if orders == [0, 0]:
        return float(np.angle(np.exp(1j * wanted)))
    k = max(orders) if 0 in orders else int(np.gcd(*orders))
    if k == 1:
        return 0.0
    step = 2 * np.pi / k
    return float(np.round(wanted / step) * step)


def aligned_transform(
    part1: FunctionalPart, part2: FunctionalPart, camera1: np.ndarray, camera2: np.ndarray
) -> np.ndarray:
    """:func:`functional_alignment` with the symmetry angle chosen for this camera pair."""
    return functional_alignment(part1, part2, symmetry_angle(part1, part2, camera1, camera2))


def pose_agreement(
    transform: np.ndarray, part1: FunctionalPart, camera1: np.ndarray, camera2: np.ndarray
) -> float:
    """Cosine (in [-1, 1]) between the directions of the two cameras seen from the aligned functional origin."""
    origin = part1.frame[:3, 3]
    cam2_aligned = (transform @ np.append(camera2, 1.0))[:3]
    a, b = camera1 - origin, cam2_aligned - origin
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def furthest_point_sampling(points: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices (n,) of a furthest-point subset of points (M, D), starting from a random point."""
    if n >= len(points):
        return np.arange(len(points))
    points = np.asarray(points, np.float64)
    chosen = np.empty(n, np.int64)
    chosen[0] = rng.integers(len(points))
    nearest = np.full(len(points), np.inf)
    for i in range(1, n):
        nearest = np.minimum(nearest, np.sum((points - points[chosen[i - 1]]) ** 2, axis=1))
        chosen[i] = int(np.argmax(nearest))
    return chosen


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (4, 4) transform to points (N, 3)."""
    return points @ transform[:3, :3].T + transform[:3, 3]


def match_functional_pixels(
    view1: FunctionalView,
    view2: FunctionalView,
    transform: np.ndarray,
    part_size: float,
    config: GTConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one functional correspondences between two views: (N, 2, 2) float32 pixels and (N,) distances."""
    n = min(view1.count, view2.count, config.max_points)
    if n == 0:
        return np.zeros((0, 2, 2), np.float32), np.zeros(0, np.float32)
    idx1 = furthest_point_sampling(view1.pixels, n, rng)
    idx2 = furthest_point_sampling(view2.pixels, n, rng)
    xyz2 = transform_points(transform, view2.xyz[idx2])
    cost = cdist(view1.xyz[idx1], xyz2)
    rows, cols = linear_sum_assignment(cost)
    dist = cost[rows, cols]
    keep = dist <= config.max_distance * part_size
    rows, cols = rows[keep], cols[keep]
    corr = np.stack([view1.pixels[idx1[rows]], view2.pixels[idx2[cols]]], 1).astype(np.float32)
    return corr, dist[keep].astype(np.float32)


def select_view_pair(
    part1: FunctionalPart,
    views1: list[FunctionalView],
    part2: FunctionalPart,
    views2: list[FunctionalView],
    config: GTConfig,
    rng: np.random.Generator,
    exclude: set[tuple[int, int]] = frozenset(),
) -> tuple[FunctionalView, FunctionalView, np.ndarray] | None:
    """Draw a (source, target) view pair and its alignment, or None when no new pair is visible enough."""
    sources = [v for v in views1 if v.count >= config.min_part_pixels]
    targets = [v for v in views2 if v.count >= config.min_part_pixels]
    if not sources or not targets:
        return None
    order = np.argsort([-v.count for v in sources], kind="stable")[: config.top_k]
    source = sources[int(rng.choice(order))]
    cam1 = source.cam_to_world[:3, 3]
    most = max(v.count for v in targets)
    scored = []
    for target in targets:
        if (source.view_id, target.view_id) in exclude:
            continue
        transform = aligned_transform(part1, part2, cam1, target.cam_to_world[:3, 3])
        agreement = 0.5 * (1 + pose_agreement(transform, part1, cam1, target.cam_to_world[:3, 3]))
        scored.append((0.5 * agreement + 0.5 * target.count / most, target, transform))
    if not scored:
        return None
    best = np.argsort([-s for s, _, _ in scored], kind="stable")[: config.top_k]
    _, target, transform = scored[int(rng.choice(best))]
    return source, target, transform


def functional_pairs(
    part1: FunctionalPart,
    views1: list[FunctionalView],
    part2: FunctionalPart,
    views2: list[FunctionalView],
    config: GTConfig,
    rng: np.random.Generator,
    n_pairs: int = 1,
) -> list[PairGT]:
    """Up to ``n_pairs`` ground-truth view pairs for two assets, trying ``config.n_trials`` distinct view pairs."""
    seen: set[tuple[int, int]] = set()
    found: list[PairGT] = []
    for _ in range(config.n_trials):
        picked = select_view_pair(part1, views1, part2, views2, config, rng, seen)
        if picked is None:
            break
        source, target, transform = picked
        seen.add((source.view_id, target.view_id))
        corr, dist = match_functional_pixels(source, target, transform, part1.size, config, rng)
        if len(corr) >= config.min_correspondences:
            found.append(PairGT(source.view_id, target.view_id, corr, dist, transform))
            if len(found) == n_pairs:
                break
    return found

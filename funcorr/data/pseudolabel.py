"""Functional-part pseudo-labels from part boxes voted onto a surface point cloud (paper Sec. 7.4).

Pipeline, for one object, one part and a set of rendered views:

1. a :class:`~funcorr.data.part_boxes.PartBoxProposer` proposes boxes around the part in every view, ``n_trials``
   times (a VLM samples differently each time; :class:`VLMBoxProposer` asks an OpenAI-style
   chat endpoint, :class:`NoisyOracleProposer` perturbs boxes of the true part masks);
2. every surface point (object frame, (P, 3), typically 100k points sampled on the mesh)
   visible in a view gets that view's vote: the fraction of trials whose boxes contain its
   projection. Visibility compares the point's depth with the view's depth map;
3. votes are divided by the number of views in which the point is visible, giving a score
   in [0, 1] (NaN for points no view sees);
4. Otsu's threshold splits the scores into part / not part;
5. a morphological closing on the point cloud (kNN dilation, then erosion) fills holes;
6. labels go back to every view: each object pixel takes the label of the surface point
   nearest to its xyz.

Steps 2, 5 and 6 depend on the object and its views but not on the part: their geometry
(point visibility and projections, the kNN graph, each pixel's nearest point) is computed
once per object (:func:`surface_geometry`) and shared by all its parts
(:func:`pseudo_label_parts`), which gives the same masks as labelling each part alone.

Views follow the renderer's contract (duck-typed by :class:`~funcorr.data.part_boxes.View`): ``rgb (H, W, 3) uint8``,
``depth (H, W) float32`` (camera z, 0 = background), ``xyz (H, W, 3)`` object-frame points
(NaN on background), ``mask (H, W) bool``, ``part_ids (H, W) int16`` (-1 = background),
``K (3, 3)`` and ``cam_to_world (4, 4)`` (OpenCV camera: x right, y down, z forward; world =
the object frame of ``xyz``). Pixel xy = (column, row) with the top-left pixel centre at (0, 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu

from funcorr.data.part_boxes import Box, PartBoxProposer, View

# --- geometry and voting -----------------------------------------------------------------------


@dataclass(frozen=True)
class VisibilityConfig:
    """When a surface point counts as visible in a view.

    depth_slack_pixels: a point is visible when its camera z is within this many pixel
    footprints (depth / focal length) of the depth map at its pixel -- the depth map is only
    known per pixel, so a sloped surface varies by about a footprint across one.
    """

    depth_slack_pixels: float = 1.5


def project_points(points: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame points (P, 3) -> pixel xy (P, 2) and camera z (P,) in ``view``'s camera.

    (Same maths as ``funcorr.data.render.project``; kept here so that pseudo-labelling does
    not import the renderer's trimesh/embree stack.)
    """
    world_to_cam = np.linalg.inv(np.asarray(view.cam_to_world, dtype=np.float64))
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = cam @ np.asarray(view.K, dtype=np.float64).T
        xy = uvw[:, :2] / z[:, None]
    return xy, z


def visible_points(
    points: np.ndarray, view: View, config: VisibilityConfig = VisibilityConfig()
) -> tuple[np.ndarray, np.ndarray]:
    """Which points (P, 3) the view sees, and where. Returns visible (P,) bool and xy (P, 2)."""
    xy, depth = project_points(points, view)
    surface_depth = np.asarray(view.depth)
    height, width = surface_depth.shape
    cols, rows = np.rint(np.nan_to_num(xy, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(np.int64).T
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height) & (depth > 0)
    surface = np.where(
        inside, surface_depth[rows.clip(0, height - 1), cols.clip(0, width - 1)], 0.0
    )
    focal = float(np.mean(np.diag(np.asarray(view.K))[:2]))
    tolerance = config.depth_slack_pixels * surface / focal
    return inside & (surface > 0) & (np.abs(depth - surface) <= tolerance), xy


def boxes_contain(xy: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """(P,) bool: the point xy (P, 2) lies inside at least one box."""
    inside = np.zeros(xy.shape[0], dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return inside


@dataclass(frozen=True)
class SurfaceGeometry:
    """The part-independent geometry of points (P, 3) seen in V views.

    visible (V, P) bool and xy (V, P, 2): :func:`visible_points` per view; neighbours (P, k):
    each point's k nearest points (itself included), for :func:`close_point_labels`;
    pixels[v] (H, W) bool: the object pixels of view v with a finite xyz; nearest[v]: for
    those pixels (row-major), the index of the nearest point (:func:`labels_to_masks`).
    """

    visible: np.ndarray
    xy: np.ndarray
    neighbours: np.ndarray
    pixels: list[np.ndarray]
    nearest: list[np.ndarray]


def knn_graph(points: np.ndarray, k: int, tree: cKDTree | None = None) -> np.ndarray:
    """Indices (P, min(k, P)) of each point's k nearest points, itself included."""
    tree = cKDTree(points) if tree is None else tree
    # workers=-1 queries on every core; the answer does not depend on it.
    return tree.query(points, k=min(k, points.shape[0]), workers=-1)[1].reshape(points.shape[0], -1)


def pixel_points(views: Sequence[View], tree: cKDTree) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per view, its object pixels with a finite xyz ((H, W) bool) and, row-major, the index of
    the point of ``tree`` nearest to each one's xyz."""
    pixels, nearest = [], []
    for view in views:
        xyz = np.asarray(view.xyz, dtype=np.float64)
        held = np.asarray(view.mask, bool) & np.isfinite(xyz).all(axis=-1)
        pixels.append(held)
        nearest.append(
            tree.query(xyz[held], workers=-1)[1] if held.any() else np.zeros(0, dtype=np.int64)
        )
    return pixels, nearest


def surface_geometry(
    points: np.ndarray,
    views: Sequence[View],
    visibility: VisibilityConfig = VisibilityConfig(),
    k: int = 16,
) -> SurfaceGeometry:
    """Compute the :class:`SurfaceGeometry` of ``points`` (P, 3) in ``views`` once."""
    points = np.asarray(points, dtype=np.float64)
    seen = [visible_points(points, view, visibility) for view in views]
    tree = cKDTree(points)
    pixels, nearest = pixel_points(views, tree)
    visible = np.stack([v for v, _ in seen]) if seen else np.zeros((0, points.shape[0]), bool)
    xy = np.stack([xy for _, xy in seen]) if seen else np.zeros((0, points.shape[0], 2))
    return SurfaceGeometry(visible, xy, knn_graph(points, k, tree), pixels, nearest)


def collect_proposals(
    views: Sequence[View], proposer: PartBoxProposer, category: str, part: str, n_trials: int
) -> list[list[list[Box]]]:
    """Boxes per view, per trial: ``result[v][t]`` is the list returned by trial t on view v."""
    return [[proposer.propose(view, category, part) for _ in range(n_trials)] for view in views]


@dataclass(frozen=True)
class VoteField:
    """scores: (P,) in [0, 1], NaN where no view sees the point; seen: (P,) number of views that do."""

    scores: np.ndarray
    seen: np.ndarray


def vote_scores(
    points: np.ndarray,
    views: Sequence[View],
    proposals: Sequence[Sequence[Sequence[Box]]],
    visibility: VisibilityConfig = VisibilityConfig(),
    geometry: SurfaceGeometry | None = None,
) -> VoteField:
    """Per-point part score: mean over the views that see it of the fraction of trials whose
    boxes contain it. Dividing by visible views, not all views, keeps parts that few views
    see (a kettle's base) from scoring low just for being hidden. ``geometry``: visibility
    already computed (:func:`surface_geometry`)."""
    votes = np.zeros(points.shape[0])
    seen = np.zeros(points.shape[0], dtype=np.int64)
    for index, (view, trials) in enumerate(zip(views, proposals, strict=True)):
        if geometry is None:
            visible, xy = visible_points(points, view, visibility)
        else:
            visible, xy = geometry.visible[index], geometry.xy[index]
        if trials:
            votes += visible * np.mean([boxes_contain(xy, boxes) for boxes in trials], axis=0)
        seen += visible
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(seen > 0, votes / np.maximum(seen, 1), np.nan)
    return VoteField(scores, seen)


def otsu_threshold(scores: np.ndarray) -> float:
    """Otsu's threshold over the finite scores; points strictly above it are the part."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        raise ValueError("No finite scores to threshold (no point is visible in any view).")
    if finite.min() == finite.max():
        return float(finite.min())
    return float(threshold_otsu(finite))


def _neighbour_fraction(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Fraction of each point's k neighbours (itself included) that are labelled, (P,)."""
    return labels[neighbours].mean(axis=1)


def close_point_labels(
    points: np.ndarray,
    labels: np.ndarray,
    k: int = 16,
    dilate_fraction: float = 0.25,
    erode_fraction: float = 0.75,
    iterations: int = 1,
    neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """Morphological closing of point labels (P,) bool on the kNN graph of points (P, 3)
    (``neighbours`` (P, k): that graph, when already computed by :func:`knn_graph`).

    Dilation adds points with at least ``dilate_fraction`` labelled neighbours; erosion then
    keeps labelled points with at least ``erode_fraction`` labelled neighbours. Fractions
    rather than the classic any/all rules make both steps majority votes, so one stray label
    neither spreads nor punches holes (kNN neighbourhoods are not symmetric, and point
    density varies over a sampled mesh).
    """
    if neighbours is None:
        neighbours = knn_graph(points, k)
    closed = labels.astype(bool)
    for _ in range(iterations):
        closed = closed | (_neighbour_fraction(closed, neighbours) >= dilate_fraction)
    for _ in range(iterations):
        closed = closed & (_neighbour_fraction(closed, neighbours) >= erode_fraction)
    return closed


def labels_to_masks(
    points: np.ndarray,
    labels: np.ndarray,
    views: Sequence[View],
    geometry: SurfaceGeometry | None = None,
) -> list[np.ndarray]:
    """2D part masks (H, W) bool per view: each object pixel takes the label of the surface
    point nearest to its xyz (``geometry``: those nearest points already found)."""
    if geometry is None:
        pixels, nearest_points = pixel_points(views, cKDTree(points))
    else:
        pixels, nearest_points = geometry.pixels, geometry.nearest
    masks = []
    for held, nearest in zip(pixels, nearest_points, strict=True):
        mask = np.zeros(held.shape, dtype=bool)
        if held.any():
            mask[held] = labels[nearest]
        masks.append(mask)
    return masks


# --- the whole pipeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudoLabelConfig:
    """n_trials: proposer calls per view (the reference asks CogVLM 4 times); the closing
    parameters are those of :func:`close_point_labels`."""

    n_trials: int = 4
    visibility: VisibilityConfig = VisibilityConfig()
    closing_k: int = 16
    dilate_fraction: float = 0.25
    erode_fraction: float = 0.75
    closing_iterations: int = 1


@dataclass
class PseudoLabelResult:
    """Everything the pipeline computed for one part.

    scores (P,), seen (P,): see :class:`VoteField`; threshold: Otsu's; voted (P,) bool:
    scores above the threshold; labels (P,) bool: after closing; masks: (H, W) bool per view;
    proposals: boxes per view per trial.
    """

    scores: np.ndarray
    seen: np.ndarray
    threshold: float
    voted: np.ndarray
    labels: np.ndarray
    masks: list[np.ndarray]
    proposals: list[list[list[Box]]] = field(repr=False)


def pseudo_label_part(
    views: Sequence[View],
    points: np.ndarray,
    proposer: PartBoxProposer,
    category: str,
    part: str,
    config: PseudoLabelConfig = PseudoLabelConfig(),
    geometry: SurfaceGeometry | None = None,
) -> PseudoLabelResult:
    """Run the Sec. 7.4 pipeline for ``part`` of one object seen in ``views``.

    points: (P, 3) surface points in the object frame (the paper samples 100k on the mesh);
    geometry: their :func:`surface_geometry` in ``views`` (computed here when None).
    """
    points = np.asarray(points, dtype=np.float64)
    if geometry is None:
        geometry = surface_geometry(points, views, config.visibility, config.closing_k)
    proposals = collect_proposals(views, proposer, category, part, config.n_trials)
    votes = vote_scores(points, views, proposals, config.visibility, geometry)
    threshold = otsu_threshold(votes.scores)
    voted = np.nan_to_num(votes.scores, nan=0.0) > threshold
    labels = close_point_labels(
        points,
        voted,
        config.closing_k,
        config.dilate_fraction,
        config.erode_fraction,
        config.closing_iterations,
        geometry.neighbours,
    )
    return PseudoLabelResult(
        votes.scores,
        votes.seen,
        threshold,
        voted,
        labels,
        labels_to_masks(points, labels, views, geometry),
        proposals,
    )


def pseudo_label_parts(
    views: Sequence[View],
    points: np.ndarray,
    proposer: PartBoxProposer,
    category: str,
    parts: Sequence[str],
    config: PseudoLabelConfig = PseudoLabelConfig(),
) -> list[PseudoLabelResult]:
    """:func:`pseudo_label_part` for each of ``parts`` in turn (the proposer is asked in that
    order), sharing one :func:`surface_geometry`: the same results, the geometry once."""
    points = np.asarray(points, dtype=np.float64)
    geometry = surface_geometry(points, views, config.visibility, config.closing_k)
    return [
        pseudo_label_part(views, points, proposer, category, part, config, geometry)
        for part in parts
    ]

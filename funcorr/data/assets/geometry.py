"""Mesh primitives for the procedural asset families.

Every builder returns ``(mesh, face_segment)``: a closed, outward-oriented
``trimesh.Trimesh`` and, per face, the index of the input segment (profile segment,
path segment or grid row) it came from, so callers can label sub-ranges as parts
(e.g. the rim band of a mug versus its body). Meshes are built with ``process=False``
so face order is exactly the construction order, which keeps labels aligned.
"""

from __future__ import annotations

import numpy as np
import trimesh

Piece = tuple[trimesh.Trimesh, np.ndarray]


def _mesh(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(
        vertices=np.asarray(vertices, np.float64), faces=np.asarray(faces, np.int64), process=False
    )


def _orient_outward(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """Flip all faces when the signed volume is negative (builders agree on one winding)."""
    if mesh.volume < 0:
        mesh.invert()
    return mesh


def _ring_faces(ring_a: np.ndarray, ring_b: np.ndarray) -> np.ndarray:
    """Triangles joining two closed vertex rings (S,) of equal length; (2S, 3)."""
    a, b = ring_a, np.roll(ring_a, -1)
    c, d = ring_b, np.roll(ring_b, -1)
    return np.concatenate([np.stack([a, b, c], 1), np.stack([b, d, c], 1)])


def lathe(profile: np.ndarray, segments: int = 48) -> Piece:
    """Surface of revolution about +z of a closed (r, z) profile.

    profile: (N, 2) points ``(radius, z)`` running counter-clockwise in the (r, z)
    half-plane (e.g. bottom centre -> outer wall upwards -> top centre). Points with
    radius 0 become single pole vertices, so a profile that starts and ends on the axis
    gives a watertight solid; thin walls (mugs, bowls) are profiles that go up the
    outside and back down the inside. face_segment[f] = i for faces between profile
    points i and i + 1.
    """
    profile = np.asarray(profile, np.float64)
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    cos, sin = np.cos(theta), np.sin(theta)
    vertices: list[np.ndarray] = []
    rings: list[np.ndarray] = []
    count = 0
    for r, z in profile:
        if r <= 1e-12:
            vertices.append(np.array([[0.0, 0.0, z]]))
            rings.append(np.full(segments, count))
            count += 1
        else:
            vertices.append(np.stack([r * cos, r * sin, np.full(segments, z)], 1))
            rings.append(np.arange(count, count + segments))
            count += segments
    faces, seg = [], []
    for i in range(len(profile) - 1):
        tri = _ring_faces(rings[i], rings[i + 1])
        tri = tri[(tri[:, 0] != tri[:, 1]) & (tri[:, 1] != tri[:, 2]) & (tri[:, 0] != tri[:, 2])]
        faces.append(tri)
        seg.append(np.full(len(tri), i))
    mesh = _orient_outward(_mesh(np.concatenate(vertices), np.concatenate(faces)))
    return mesh, np.concatenate(seg)


def _transport_frames(path: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tangents and parallel-transported normals/binormals along a polyline (N, 3); each (N, 3)."""
    tangents = np.gradient(path, axis=0)
    tangents /= np.linalg.norm(tangents, axis=1, keepdims=True)
    # Start from the world axis least aligned with the first tangent so the frame is well defined.
    ref = np.eye(3)[np.argmin(np.abs(tangents[0]))]
    normal = np.cross(tangents[0], ref)
    normal /= np.linalg.norm(normal)
    normals = [normal]
    for i in range(1, len(path)):
        n = normals[-1] - np.dot(normals[-1], tangents[i]) * tangents[i]
        normals.append(n / np.linalg.norm(n))
    normals_arr = np.array(normals)
    return tangents, normals_arr, np.cross(tangents, normals_arr)


def tube(
    path: np.ndarray,
    radius: float | np.ndarray,
    segments: int = 20,
    aspect: float | np.ndarray = 1.0,
    up: np.ndarray | None = None,
) -> Piece:
    """Closed tube swept along a polyline, with flat caps.

    path: (N, 3) centre line; radius: scalar or (N,) half-width; aspect: scalar or (N,)
    ratio of the second half-axis to the first (elliptic, e.g. flat handles). ``up``
    fixes the direction of the first cross-section axis (projected off the tangent) so
    flat sections lie in a chosen plane; otherwise it is parallel-transported.
    face_segment[f] = i for side faces between nodes i and i + 1; caps belong to the
    first/last segment.
    """
    path = np.asarray(path, np.float64)
    n = len(path)
    radius = np.broadcast_to(np.asarray(radius, np.float64), (n,))
    aspect = np.broadcast_to(np.asarray(aspect, np.float64), (n,))
    tangents, normals, binormals = _transport_frames(path)
    if up is not None:
        normals = (
            np.asarray(up, np.float64)[None]
            - (tangents @ np.asarray(up, np.float64))[:, None] * tangents
        )
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        binormals = np.cross(tangents, normals)
    theta = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    # First axis (normal) carries radius * aspect so that aspect < 1 flattens along ``up``.
    offsets = (radius * aspect)[:, None, None] * np.cos(theta)[None, :, None] * normals[
        :, None
    ] + radius[:, None, None] * np.sin(theta)[None, :, None] * binormals[:, None]
    rings = path[:, None] + offsets
    vertices = np.concatenate([rings.reshape(-1, 3), path[[0, -1]]])
    idx = np.arange(n * segments).reshape(n, segments)
    faces, seg = [], []
    for i in range(n - 1):
        tri = _ring_faces(idx[i], idx[i + 1])
        faces.append(tri)
        seg.append(np.full(len(tri), i))
    start, end = n * segments, n * segments + 1
    faces.append(np.stack([np.full(segments, start), np.roll(idx[0], -1), idx[0]], 1))
    seg.append(np.zeros(segments, int))
    faces.append(np.stack([np.full(segments, end), idx[-1], np.roll(idx[-1], -1)], 1))
    seg.append(np.full(segments, n - 2))
    mesh = _orient_outward(_mesh(vertices, np.concatenate(faces)))
    return mesh, np.concatenate(seg)


def thick_sheet(grid: np.ndarray, thickness: float | np.ndarray) -> Piece:
    """Solid plate around a parametric surface grid (U, V, 3), offset +-thickness/2 along its normal.

    thickness: scalar or (U, V) (taper to ~0 for sharp blade edges). face_segment[f] = u
    row of the grid cell (border strips included), so bands along u can be labelled.
    """
    grid = np.asarray(grid, np.float64)
    u_n, v_n = grid.shape[:2]
    du = np.gradient(grid, axis=0)
    dv = np.gradient(grid, axis=1)
    normal = np.cross(du, dv)
    normal /= np.maximum(np.linalg.norm(normal, axis=-1, keepdims=True), 1e-12)
    half = 0.5 * np.broadcast_to(np.asarray(thickness, np.float64), (u_n, v_n))[..., None]
    top, bottom = grid + normal * half, grid - normal * half
    vertices = np.concatenate([top.reshape(-1, 3), bottom.reshape(-1, 3)])
    t_idx = np.arange(u_n * v_n).reshape(u_n, v_n)
    b_idx = t_idx + u_n * v_n
    faces, seg = [], []

    def quads(a: np.ndarray, b: np.ndarray, rows: np.ndarray) -> None:
        """Two triangles per cell of the index grids a (rows) x b (next rows)."""
        p00, p01, p10, p11 = a[:, :-1], a[:, 1:], b[:, :-1], b[:, 1:]
        tri = np.concatenate([np.stack([p00, p10, p01], -1), np.stack([p01, p10, p11], -1)], axis=1)
        faces.append(tri.reshape(-1, 3))
        seg.append(np.repeat(rows, tri.shape[1]))

    rows = np.arange(u_n - 1)
    quads(t_idx[:-1], t_idx[1:], rows)
    quads(b_idx[:-1][:, ::-1], b_idx[1:][:, ::-1], rows)
    # Border strips close the plate: first/last u row, then first/last v column; the
    # vertex order of each strip is chosen so its normal points away from the sheet.
    strips = [
        (t_idx[0], b_idx[0], 0),
        (b_idx[-1], t_idx[-1], u_n - 2),
    ]
    for a, b, row in strips:
        p0, p1, q0, q1 = a[:-1], a[1:], b[:-1], b[1:]
        faces.append(np.concatenate([np.stack([p0, p1, q0], 1), np.stack([p1, q1, q0], 1)]))
        seg.append(np.full(2 * len(p0), row))
    for col, flip in ((0, False), (v_n - 1, True)):
        a, b = t_idx[:, col], b_idx[:, col]
        if flip:
            a, b = b, a
        p0, p1, q0, q1 = a[:-1], a[1:], b[:-1], b[1:]
        faces.append(np.concatenate([np.stack([p0, q0, p1], 1), np.stack([p1, q0, q1], 1)]))
        seg.append(np.concatenate([rows, rows]))
    mesh = _orient_outward(_mesh(vertices, np.concatenate(faces)))
    return mesh, np.concatenate(seg)


def box(
    extents: tuple[float, float, float], center: tuple[float, float, float] = (0, 0, 0)
) -> Piece:
    """Axis-aligned box; one segment."""
    mesh = trimesh.creation.box(extents=extents)
    mesh.apply_translation(center)
    return mesh, np.zeros(len(mesh.faces), int)


def square_to_disk(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Elliptical grid mapping of the square [-1, 1]^2 onto the unit disk (no pole, unlike polar grids)."""
    return u * np.sqrt(1 - 0.5 * v**2), v * np.sqrt(1 - 0.5 * u**2)


def bezier(points: np.ndarray, n: int) -> np.ndarray:
    """(n, 3) samples of the Bezier curve with control points (K, 3) (de Casteljau)."""
    pts = np.asarray(points, np.float64)
    t = np.linspace(0.0, 1.0, n)[:, None, None]
    layer = np.broadcast_to(pts[None], (n, *pts.shape)).copy()
    while layer.shape[1] > 1:
        layer = (1 - t) * layer[:, :-1] + t * layer[:, 1:]
    return layer[:, 0]


def arc(
    center: np.ndarray,
    radius: float,
    start: float,
    stop: float,
    n: int,
    plane: tuple[int, int] = (0, 2),
) -> np.ndarray:
    """(n, 3) points on a circular arc in the plane of two axes, angles in radians."""
    angles = np.linspace(start, stop, n)
    pts = np.tile(np.asarray(center, np.float64), (n, 1))
    pts[:, plane[0]] += radius * np.cos(angles)
    pts[:, plane[1]] += radius * np.sin(angles)
    return pts


def rounded_profile(points: list[tuple[float, float]], samples: int = 1) -> np.ndarray:
    """Densify an (r, z) polyline by linear subdivision: (K, 2) -> ((K - 1) * samples + 1, 2)."""
    pts = np.asarray(points, np.float64)
    if samples <= 1:
        return pts
    t = np.linspace(0, 1, samples, endpoint=False)[:, None]
    dense = [(1 - t) * a + t * b for a, b in zip(pts[:-1], pts[1:], strict=True)]
    return np.concatenate([*dense, pts[-1:]])


def surface_distance(
    mesh: trimesh.Trimesh, points: np.ndarray, candidates: int = 16
) -> tuple[np.ndarray, np.ndarray]:
    """Exact distance from points (N, 3) to a mesh and the closest triangle, without trimesh's rtree dependency.

    Triangles are ranked by a lower bound on their distance (centroid distance minus
    circumradius); exact distances are computed for the best ``candidates`` and the set
    doubles until no unexamined triangle's lower bound beats the best distance found.
    Returns (distance (N,), triangle index (N,)).
    """
    points = np.asarray(points, np.float64)
    triangles = mesh.triangles
    centroids = triangles.mean(1)
    reach = np.linalg.norm(triangles - centroids[:, None], axis=2).max(1)
    best_d, best_t = np.empty(len(points)), np.empty(len(points), np.int64)
    for start in range(0, len(points), 256):  # chunks bound the (chunk, F) lower-bound matrix
        chunk = points[start : start + 256]
        lower = np.linalg.norm(chunk[:, None] - centroids[None], axis=2) - reach[None]
        order = np.argsort(lower, axis=1)
        k = min(candidates, len(triangles))
        while True:
            idx = order[:, :k]
            repeated = np.repeat(chunk, k, axis=0)
            closest = trimesh.triangles.closest_point(triangles[idx.ravel()], repeated)
            dist = np.linalg.norm(closest - repeated, axis=1).reshape(len(chunk), k)
            pick = np.argmin(dist, axis=1)
            found = dist[np.arange(len(chunk)), pick]
            next_bound = (
                np.take_along_axis(lower, order[:, k : k + 1], 1)[:, 0]
                if k < len(triangles)
                else np.inf
            )
            if k == len(triangles) or np.all(next_bound >= found):
                break
            k = min(2 * k, len(triangles))
        best_d[start : start + 256] = found
        best_t[start : start + 256] = idx[np.arange(len(chunk)), pick]
    return best_d, best_t


def rounded_rect(half_a: float, half_b: float, corner: float, per_corner: int = 3) -> np.ndarray:
    """Convex rounded rectangle (S, 2), counter-clockwise, half-sides along the two section axes.

    ``corner`` is the corner radius (clipped to the shorter half-side); flat bars, strips
    and handles are swept with it.
    """
    corner = min(corner, 0.999 * min(half_a, half_b))
    centres = [(half_a - corner, half_b - corner), (-half_a + corner, half_b - corner)]
    centres += [(-half_a + corner, -half_b + corner), (half_a - corner, -half_b + corner)]
    points = []
    for k, (ca, cb) in enumerate(centres):
        angles = np.linspace(k * np.pi / 2, (k + 1) * np.pi / 2, per_corner + 1)
        points.append(np.stack([ca + corner * np.cos(angles), cb + corner * np.sin(angles)], 1))
    return np.concatenate(points)


def sweep(
    path: np.ndarray,
    section: np.ndarray,
    scale: float | np.ndarray = 1.0,
    up: np.ndarray | None = None,
) -> Piece:
    """Closed solid swept along a polyline with a convex cross-section, like :func:`tube`.

    path: (N, 3) centre line; section: (S, 2) convex polygon around (0, 0) in the
    (first axis, second axis) plane of the section (first axis along ``up`` when given);
    scale: scalar, (N,) or (N, 2) per-node factors on the two section axes (tapers).
    Caps are fans from the centre line. face_segment as in :func:`tube`.
    """
    path = np.asarray(path, np.float64)
    section = np.asarray(section, np.float64)
    a, b = section[:, 0], section[:, 1]
    if np.sum(a * np.roll(b, -1) - np.roll(a, -1) * b) < 0:  # keep the winding of tube()
        section = section[::-1]
    n, s = len(path), len(section)
    factors = np.asarray(scale, np.float64)
    factors = np.broadcast_to(factors[:, None] if factors.ndim == 1 else factors, (n, 2))
    tangents, normals, binormals = _transport_frames(path)
    if up is not None:
        up = np.asarray(up, np.float64)
        normals = up[None] - (tangents @ up)[:, None] * tangents
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        binormals = np.cross(tangents, normals)
    offsets = (factors[:, None, 0:1] * section[None, :, 0:1]) * normals[:, None] + (
        factors[:, None, 1:2] * section[None, :, 1:2]
    ) * binormals[:, None]
    vertices = np.concatenate([(path[:, None] + offsets).reshape(-1, 3), path[[0, -1]]])
    idx = np.arange(n * s).reshape(n, s)
    faces, seg = [], []
    for i in range(n - 1):
        faces.append(_ring_faces(idx[i], idx[i + 1]))
        seg.append(np.full(2 * s, i))
    start, end = n * s, n * s + 1
    faces.append(np.stack([np.full(s, start), np.roll(idx[0], -1), idx[0]], 1))
    seg.append(np.zeros(s, int))
    faces.append(np.stack([np.full(s, end), idx[-1], np.roll(idx[-1], -1)], 1))
    seg.append(np.full(s, n - 2))
    mesh = _orient_outward(_mesh(vertices, np.concatenate(faces)))
    return mesh, np.concatenate(seg)


def prism(profile: np.ndarray, width: float, center_y: float = 0.0) -> Piece:
    """Convex polygon (K, 2) in the xz plane extruded along y over ``width``; one segment."""
    profile = np.asarray(profile, np.float64)
    centre = profile.mean(0)
    ends = np.array([center_y - width / 2, center_y + width / 2])
    path = np.stack([np.full(2, centre[0]), ends, np.full(2, centre[1])], 1)
    # With up = +x the section's second axis is y x x = -z.
    section = np.stack([profile[:, 0] - centre[0], centre[1] - profile[:, 1]], 1)
    mesh, _ = sweep(path, section, up=(1.0, 0.0, 0.0))
    return mesh, np.zeros(len(mesh.faces), int)


def ring_lathe(profile: np.ndarray, segments: int = 48) -> Piece:
    """:func:`lathe` of a closed (r, z) loop that stays off the axis (a rim, a band, a cup wall).

    The loop is closed by repeating its first point and the seam is welded, so the ring is
    watertight; face order and face_segment are those of :func:`lathe`.
    """
    profile = np.asarray(profile, np.float64)
    mesh, seg = lathe(np.concatenate([profile, profile[:1]]), segments)
    mesh.merge_vertices()
    return _orient_outward(mesh), seg

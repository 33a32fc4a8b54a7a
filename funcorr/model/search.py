"""Exact cosine nearest neighbours: brute force, and a pruned search for raw backbone features.

THE ANSWER, DEFINED ONCE. The nearest neighbour of a query among keys is the key of largest
cosine, where the cosine is the float64 dot product of the float32 vectors, and keys whose
cosine is within :data:`TIE_TOLERANCE` of the largest tie, the lowest index winning. A float32
matrix product alone cannot define it: its rounding depends on the shapes multiplied
(measured here: the same dot product differs by up to 1e-7 between two calls), so two
correct searches would disagree on near-ties. Both searches below screen in float32 with a
proven error bound, keep every key that may be within the tie tolerance of the best, and
settle those few in float64 (:func:`resolve`), so they return identical indices and
similarities.

PRUNED SEARCH (:class:`CellIndex`). Raw backbone features of a pixel are the bilinear
interpolation of the four cells around it, normalised (:func:`funcorr.backbones.base
.sample_at_pixels`). So every pixel feature of a *quad* (the square between four cell
centres) lies in the span of those four cells: with U an orthonormal basis of that span,
``q . k = (U^T q) . (U^T k)`` and ``max_k q . k <= |U^T q|``. One matrix product ``q @ U`` for
all quads gives every query a 4-number summary per quad and a bound on the best cosine in
it; a quad is searched (a 4-dimensional dot product per pixel) only if its bound reaches
the best cosine found so far. On DINOv2 features of rendered objects 5-30 % of the pixel
pairs are evaluated, each at 4 instead of C multiply-adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from funcorr.backbones.base import FeatureGrid, pixel_to_cell

#: Keys whose float64 cosines differ by less than this count as tied (lowest index wins).
TIE_TOLERANCE = 1e-12
DEFAULT_BLOCK_ROWS = 2048
#: Float64 dot products are taken this many candidate pairs at a time (bounded memory).
RESOLVE_CHUNK = 16384
#: Queries per block of the pruned search: each block loops over every quad in Python, so
#: fewer, larger blocks are faster (a 21k-pixel object: 0.32 s at 16384 rows, 0.40 s at 8192);
#: a block holds rows x quads x 4 G floats (about 120 MB for 225 quads of two channel groups).
CELL_BLOCK_ROWS = 16384


def dot_error_bound(dim: int) -> float:
    """Largest error of a float32 dot product of two vectors of norm at most 1 (+1e-6) with
    ``dim`` entries, whatever the summation order: Higham's gamma_dim = dim u / (1 - dim u),
    u = 2^-24 (the float32 unit roundoff), times 1.01 for the norms."""
    unit = dim * 2.0**-24
    return 1.01 * unit / (1 - unit)


def resolve(
    query: torch.Tensor, keys: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Settle candidate pairs exactly: for each query row, the candidate key of largest float64
    cosine, ties within :data:`TIE_TOLERANCE` to the lowest key index.

    query (N, C), keys (M, C); rows, cols (P,) candidate (query, key) pairs, every query row
    present at least once. Returns idx (N,) long and sim (N,) in the query's dtype.
    """
    n = query.shape[0]
    cosine = torch.empty(rows.shape[0], dtype=torch.float64, device=query.device)
    for start in range(0, rows.shape[0], RESOLVE_CHUNK):
        part = slice(start, start + RESOLVE_CHUNK)
        # Elementwise product then a row sum: per row the same arithmetic whatever the chunk.
        cosine[part] = (query[rows[part]].double() * keys[cols[part]].double()).sum(-1)
    best = torch.full((n,), -math.inf, dtype=torch.float64, device=query.device).scatter_reduce(
        0, rows, cosine, "amax"
    )
    tied = cosine >= best[rows] - TIE_TOLERANCE
    idx = torch.full((n,), keys.shape[0], dtype=torch.long, device=query.device)
    idx = idx.scatter_reduce(0, rows[tied], cols[tied], "amin")
    if bool((idx == keys.shape[0]).any()):
        raise RuntimeError("A query row had no candidate key; the search pruned too much.")
    return idx, best.to(query.dtype)


def brute_force_nearest(
    query: torch.Tensor, keys: torch.Tensor, block_rows: int = DEFAULT_BLOCK_ROWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """The exact nearest neighbour of every query among all keys (see the module docstring).

    query (N, C), keys (M, C), both L2-normalised. Works in blocks of ``block_rows`` queries,
    so memory holds at most ``block_rows x M`` similarities. Returns idx (N,), sim (N,).
    """
    if keys.shape[0] == 0:
        raise ValueError("No candidate pixels to match against (empty target mask).")
    margin = 2 * dot_error_bound(query.shape[1]) + TIE_TOLERANCE
    idx = torch.empty(query.shape[0], dtype=torch.long, device=query.device)
    sim = torch.empty(query.shape[0], dtype=query.dtype, device=query.device)
    for start in range(0, query.shape[0], block_rows):
        block = query[start : start + block_rows]
        scores = block @ keys.T
        near = torch.nonzero(scores >= (scores.amax(dim=1) - margin)[:, None])
        idx[start : start + block.shape[0]], sim[start : start + block.shape[0]] = resolve(
            block, keys, near[:, 0], near[:, 1]
        )
    return idx, sim


def quads_of(xy: torch.Tensor, grid: FeatureGrid, cells_hw: tuple[int, int]) -> torch.Tensor:
    """Quad of each pixel xy (M, 2): ``row * (w - 1) + col`` of the square of cell centres
    whose four cells its bilinear interpolation mixes (border pixels, which take the border
    value, go to the border quad). Needs h, w >= 2. (M,) long."""
    h, w = cells_hw
    uv = pixel_to_cell(xy.float(), grid)
    col = uv[:, 0].clamp(0, w - 1).floor().clamp(max=w - 2).long()
    row = uv[:, 1].clamp(0, h - 1).floor().clamp(max=h - 2).long()
    return row * (w - 1) + col


@dataclass(frozen=True)
class CellIndex:
    """Candidate pixels of one image grouped by quad, for :meth:`nearest`.

    keys (M, C): the normalised pixel features (what brute force would search);
    bases (C, r Q): an orthonormal basis (r = min(C, 4 G) vectors, G channel groups) of each quad's cells,
    quad after quad; coords[q] (M_q, r): the pixels of quad q in its basis; members[q] (M_q,):
    their indices
    into keys; reach (Q,): the largest coordinate norm in each quad; error: bound on
    |computed 4-d product - float64 cosine| for any query.
    """

    keys: torch.Tensor
    bases: torch.Tensor
    coords: list[torch.Tensor]
    members: list[torch.Tensor]
    reach: torch.Tensor
    error: float

    @classmethod
    def build(
        cls,
        fmap: torch.Tensor,
        grid: FeatureGrid,
        xy: torch.Tensor,
        keys: torch.Tensor,
        groups: list[int] | None = None,
    ) -> CellIndex:
        """fmap (C, h, w) cells with h, w >= 2; xy (M, 2) candidate pixels; keys (M, C) their
        normalised features, sampled from fmap. ``groups`` (channel counts summing to C):
        channel parts normalised separately (:class:`funcorr.model.matching.CellMap`); each
        part of a key is then in the span of its own four cells, so the quad's span takes the
        four corners of every part apart (4 per part) and the bound holds unchanged."""
        channels, h, w = fmap.shape
        quad = quads_of(xy.to(fmap.device), grid, (h, w))
        order = torch.argsort(quad, stable=True)
        used, counts = torch.unique_consecutive(quad[order], return_counts=True)
        row, col = used // (w - 1), used % (w - 1)
        corners = torch.stack(
            [row * w + col, row * w + col + 1, (row + 1) * w + col, (row + 1) * w + col + 1], -1
        )
        cells = fmap.reshape(channels, -1).T
        # Householder QR gives orthonormal columns containing the span even when the cells
        # are (nearly) dependent, so |U^T q| stays an upper bound.
        spans = cells[corners].double().transpose(1, 2)  # (Q, C, 4)
        if groups and len(groups) > 1:
            parts = torch.repeat_interleave(
                torch.arange(len(groups), device=fmap.device),
                torch.tensor(groups, device=fmap.device),
            )
            # (Q, C, 4 * G): part g's corners, zero outside its channels.
            spans = torch.cat([spans * (parts == g)[None, :, None] for g in range(len(groups))], 2)
        bases = torch.linalg.qr(spans).Q.to(keys.dtype)  # (Q, C, r)
        members = list(torch.split(order, counts.tolist()))
        coords, reach, residual = [], [], 0.0
        for basis, pixels in zip(bases.double(), members, strict=True):
            # In float64 against the float32 basis, so only z = U^T q carries float32 error.
            k = keys[pixels].double()
            c = k @ basis  # (M_q, r)
            coords.append(c.to(keys.dtype))
            reach.append(c.norm(dim=1).max())
            residual = max(residual, float((k - c @ basis.T).norm(dim=1).max()))
        # |z.c - q.k| for z = U^T q and c = U^T k as computed: z has r <= 4 entries off by at
        # most gamma_C each (|z - z*| <= 2 gamma_C), c only by float32 rounding; the float32
        # key may stick out of the span by ``residual``; 2e-6 covers c's rounding, the
        # r-term product and the float32 norms.
        error = 2 * dot_error_bound(channels) + residual + 2e-6
        flat = bases.permute(1, 0, 2).reshape(channels, -1).contiguous()  # (C, r Q)
        return cls(keys, flat, coords, members, torch.stack(reach).to(keys.dtype), error)

    def nearest(
        self, query: torch.Tensor, block_rows: int = CELL_BLOCK_ROWS
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Same answer as :func:`brute_force_nearest` over ``keys``. query (N, C) normalised."""
        idx = torch.empty(query.shape[0], dtype=torch.long, device=query.device)
        sim = torch.empty(query.shape[0], dtype=query.dtype, device=query.device)
        for start in range(0, query.shape[0], block_rows):
            block = query[start : start + block_rows]
            rows, cols = self._candidates(block)
            idx[start : start + block.shape[0]], sim[start : start + block.shape[0]] = resolve(
                block, self.keys, rows, cols
            )
        return idx, sim

    def _candidates(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(query row, key index) pairs that may be the nearest neighbour: every key whose
        computed cosine is within 2 * error + tie tolerance of the best computed one."""
        n, n_quads = query.shape[0], len(self.members)
        summary = (query @ self.bases).view(n, n_quads, -1)  # (N, Q, r)
        # (Q, N): per quad, the queries are contiguous for the scans below.
        bound = (summary.norm(dim=2) * self.reach * (1 + 1e-6) + 1e-6).T.contiguous()
        margin = 2 * self.error + TIE_TOLERANCE
        best = torch.full((n,), -math.inf, dtype=query.dtype, device=query.device)
        found: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
        # First each query's most promising quad (a good lower bound), then every quad whose
        # bound still reaches it.
        first = torch.zeros(n_quads, n, dtype=torch.bool, device=query.device)
        first[bound.argmax(dim=0), torch.arange(n, device=query.device)] = True
        self._scan(summary, first, best, found, margin)
        self._scan(summary, (bound >= (best - margin)[None, :]) & ~first, best, found, margin)
        rows = torch.cat([r for r, _, _ in found])
        cols = torch.cat([c for _, c, _ in found])
        values = torch.cat([v for _, _, v in found])
        keep = values >= best[rows] - margin  # the best only grew after early candidates were kept
        return rows[keep], cols[keep]

    def _scan(
        self,
        summary: torch.Tensor,
        chosen: torch.Tensor,
        best: torch.Tensor,
        found: list,
        margin: float,
    ) -> None:
        """Evaluate quad q for the queries ``chosen[q]`` (Q, N) bool, raising ``best`` and
        keeping every pixel within ``margin`` of it."""
        for quad in torch.nonzero(chosen.any(dim=1)).flatten().tolist():
            rows = torch.nonzero(chosen[quad]).flatten()
            values = (
                self.coords[quad] @ summary[rows, quad].T
            )  # (M_q, n): tall-skinny is the fast layout
            top = torch.maximum(best[rows], values.amax(dim=0))
            best[rows] = top
            near = torch.nonzero(values >= (top - margin)[None, :])
            found.append(
                (rows[near[:, 1]], self.members[quad][near[:, 0]], values[near[:, 0], near[:, 1]])
            )


def _corners(xy: torch.Tensor, grid: FeatureGrid, cells_hw: tuple[int, int]):
    """Flat indices (M, 4) of the cells a, b, c, d (top-left, top-right, bottom-left,
    bottom-right) of each pixel's quad and their bilinear weights (M, 4), float64, as
    :func:`funcorr.backbones.base.sample_at_pixels` mixes them (border pixels clamped)."""
    h, w = cells_hw
    uv = pixel_to_cell(xy.double(), grid)
    u, v = uv[:, 0].clamp(0, w - 1), uv[:, 1].clamp(0, h - 1)
    col, row = u.floor().clamp(max=w - 2), v.floor().clamp(max=h - 2)
    fu, fv = u - col, v - row
    top_left = row.long() * w + col.long()
    index = torch.stack([top_left, top_left + 1, top_left + w, top_left + w + 1], dim=1)
    weights = torch.stack([(1 - fu) * (1 - fv), fu * (1 - fv), (1 - fu) * fv, fu * fv], dim=1)
    return index, weights


def _interpolated_norms(cells: torch.Tensor, index: torch.Tensor, weights: torch.Tensor):
    """|sum_i w_i c_i| for every pixel from the cells' Gram entries, without forming the
    interpolated vectors. cells (C, h, w) float64; index, weights (M, 4). Returns (M,)."""
    w = cells.shape[2]
    gram = {
        "aa": (cells * cells).sum(0),
        "ab": (cells[:, :, :-1] * cells[:, :, 1:]).sum(0),  # right neighbour
        "ac": (cells[:, :-1, :] * cells[:, 1:, :]).sum(0),  # neighbour below
        "ad": (cells[:, :-1, :-1] * cells[:, 1:, 1:]).sum(0),
        "bc": (cells[:, :-1, 1:] * cells[:, 1:, :-1]).sum(0),
    }
    a = index[:, 0]
    row, col = a // w, a % w
    self_dots = gram["aa"].reshape(-1)[index]  # (M, 4)
    total = (weights**2 * self_dots).sum(1)
    pairs = (
        (0, 1, gram["ab"][row, col]),
        (2, 3, gram["ab"][row + 1, col]),
        (0, 2, gram["ac"][row, col]),
        (1, 3, gram["ac"][row, col + 1]),
        (0, 3, gram["ad"][row, col]),
        (1, 2, gram["bc"][row, col]),
    )
    for i, j, dots in pairs:
        total = total + 2 * weights[:, i] * weights[:, j] * dots
    return total.clamp_min(0).sqrt()


@dataclass(frozen=True)
class CellScreen:
    """The float64 screen of :func:`screened_nearest` for one cell map and candidate set:
    :meth:`scores` gives, for queries (n, C), each pixel's screened cosine (n, M) and ``error``
    (M,) bounds its distance to the float64 cosine of the float32 key that sampling returns
    (infinite for pixels whose mix nearly cancels)."""

    index: torch.Tensor
    weights: torch.Tensor
    groups: list[tuple[int, int, float, torch.Tensor, torch.Tensor]]
    error: torch.Tensor
    unsure: torch.Tensor

    @classmethod
    def build(cls, fmap: torch.Tensor, grid: FeatureGrid, groups, xy: torch.Tensor) -> CellScreen:
        channels, h, w = fmap.shape
        groups = list(groups) or [(channels, 1.0)]
        index, weights = _corners(xy.to(fmap.device), grid, (h, w))
        unit = 2.0**-24
        # grid_sample's weights: the pixel -> cell -> [-1, 1] -> cell conversions in float32
        # move the sampling point by a few ulps of the grid size.
        weight_error = 16 * unit * (max(h, w) + 1)
        parts, errors, start = [], [], 0
        unsure = torch.zeros(xy.shape[0], dtype=torch.bool, device=fmap.device)
        cells64 = fmap.double()
        for size, scale in groups:
            cells = cells64[start : start + size]
            norms = _interpolated_norms(cells, index, weights)  # (M,)
            cell_norms = cells.norm(dim=0).reshape(-1)
            spread = (weights * cell_norms[index]).sum(1)  # sum_i w_i |c_i|
            largest = float(cell_norms.max())
            reliable = norms > 1e-3 * largest
            safe = norms.clamp_min(1e-300)
            # A moved sampling point changes the mix by at most its shift times the largest
            # cell difference (8 |c| covers a quad and the one it may spill into); the mix,
            # norm and scaling add a few roundings each (Higham's gamma for the norm's sum).
            mix = (weight_error * 8 * largest + 5 * unit * spread) / safe
            error = scale * 1.01 * (2 * mix + dot_error_bound(size) + 4 * unit) + 1e-9
            errors.append(torch.where(reliable, error, torch.full_like(error, math.inf)))
            unsure |= ~reliable
            parts.append((start, size, scale, cells.reshape(size, -1), safe))
            start += size
        return cls(index, weights, parts, torch.stack(errors).sum(0), unsure)

    def scores(self, query: torch.Tensor) -> torch.Tensor:
        """Screened cosines (n, M) float64 of queries (n, C)."""
        score = query.new_zeros(query.shape[0], self.index.shape[0], dtype=torch.float64)
        for first, size, scale, cells, norms in self.groups:
            products = query[:, first : first + size].double() @ cells  # (n, h w)
            mixed = (products[:, self.index] * self.weights[None]).sum(-1)  # (n, M)
            score += scale * mixed / norms[None]
        return score


def screened_nearest(
    query: torch.Tensor,
    fmap: torch.Tensor,
    grid: FeatureGrid,
    groups: list[tuple[int, float]],
    xy: torch.Tensor,
    sample,
    block_rows: int = 64,
    screen: CellScreen | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Same answer as :func:`brute_force_nearest` over ``sample(xy)``, for a few queries,
    without sampling every candidate's feature.

    The keys are cell-map features (:class:`funcorr.model.matching.CellMap`): per channel group
    g, ``scale_g * x / |x|`` with x the bilinear mix of a quad's four cells. So q . k is, per
    group, the bilinear mix of the four cell products q . c_i (one N x h w product for all
    pixels) over |x|, which follows from the quad's 4 x 4 Gram matrix of cells. This screen,
    in float64, differs from the float64 cosine of the float32 key by at most the key's own
    float32 error (bounded below from the interpolation weights' rounding, the mix, the norm
    and the scaling); every pixel within twice that bound of the best is then sampled and
    settled by :func:`resolve`, as brute force would. Pixels whose mix nearly cancels (|x|
    below 1e-3 of the largest cell) are always settled exactly.

    query (N, C) normalised; fmap (C, h, w) with h, w >= 2; groups ((channels, scale), ...)
    or empty (one group of scale 1); xy (M, 2) candidate pixels; sample: xy -> keys;
    screen: this map's :class:`CellScreen` of ``xy`` when the caller keeps one.
    Returns idx (N,) into xy, sim (N,).
    """
    screen = CellScreen.build(fmap, grid, groups, xy) if screen is None else screen
    error, unsure = screen.error, screen.unsure
    idx = torch.empty(query.shape[0], dtype=torch.long, device=query.device)
    sim = torch.empty(query.shape[0], dtype=query.dtype, device=query.device)
    for begin in range(0, query.shape[0], block_rows):
        block = query[begin : begin + block_rows].to(fmap.device)
        score = screen.scores(block)
        low = torch.where(unsure[None], -math.inf, score - error[None]).amax(dim=1)
        kept = torch.nonzero((score + error[None] >= (low - TIE_TOLERANCE)[:, None]) | unsure)
        cols, local = torch.unique(kept[:, 1], return_inverse=True)
        keys = sample(xy[cols.to(xy.device)]).to(query)
        found, value = resolve(
            block.to(query), keys, kept[:, 0].to(keys.device), local.to(keys.device)
        )
        idx[begin : begin + block.shape[0]] = cols.to(idx.device)[found.to(cols.device)]
        sim[begin : begin + block.shape[0]] = value
    return idx, sim

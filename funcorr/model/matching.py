"""Dense matching on per-pixel features: nearest neighbours, label transfer, cycles, discovery.

One idea at about 470 lines: every question asked of two images' features (transfer, heat map,
cycle, discovery, regions) over one :class:`ImageFeatures` type and one nearest-neighbour
definition; splitting it would separate functions that call each other.

Every function works on :class:`ImageFeatures`, which answers "the L2-normalised feature at
these pixels" whatever produced it (raw backbone cells sampled bilinearly, or a trained head
whose object-pixel features are computed once, see :mod:`funcorr.model.head`).
Similarities are cosine. Nearest neighbours are exact and defined once, in
:mod:`funcorr.model.search`: raw backbone features use its pruned search, anything else brute
force over row blocks of ``block_rows`` queries (never the full N x M matrix); both give the
same answer. Discovery of a pair matches every pixel of each region once in each direction
(:func:`discover_pair`), so the two directions and their cycle checks share two searches.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from funcorr.backbones.base import FeatureGrid, sample_at_pixels
from funcorr.model.search import (
    CELL_BLOCK_ROWS,
    DEFAULT_BLOCK_ROWS,
    CellIndex,
    CellScreen,
    brute_force_nearest,
    resolve,
    screened_nearest,
)

#: The pruned search pays off once a search has this many query x key pairs (and enough
#: queries to amortise building its index); below, brute force is as fast. Both are exact.
CELL_SEARCH_MIN_PAIRS = 1 << 22
CELL_SEARCH_MIN_QUERIES = 256
#: Cell indexes, screens and candidate features kept per image, of each kind (M x C floats).
CELL_INDEXES_KEPT = 2


@dataclass(frozen=True, eq=False)
class CellMap:
    """Cells (C, h, w) on ``grid`` whose normalised bilinear interpolation gives the pixel
    features (:meth:`sample`): raw backbone cells, or a head evaluated on a lattice
    (:func:`funcorr.model.head.lattice_head_map`). ``groups`` ((channels, scale), ...) splits
    the channels into parts normalised separately and scaled (a blend of two feature kinds,
    :func:`blend_features`); empty = one part of scale 1. Keeps the last few
    :class:`CellIndex` built on it."""

    fmap: torch.Tensor
    grid: FeatureGrid
    groups: tuple[tuple[int, float], ...] = ()
    _indexes: dict = field(default_factory=dict, compare=False, repr=False)
    # The viewer searches from several threads; one build at a time keeps the cache whole.
    _lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    def sample(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) pixel xy -> (N, C) normalised features."""
        # Contiguous (N, C) rows first: normalising the transposed view grid_sample returns is
        # several times slower, and the groups are then scaled in place (no concatenation).
        mixed = sample_at_pixels(self.fmap[None], points[None].to(self.fmap.device), self.grid)
        mixed = mixed[0].contiguous()
        if not self.groups:
            return F.normalize(mixed, dim=-1)
        start = 0
        for channels, scale in self.groups:
            part = mixed[:, start : start + channels]
            part.mul_(scale / part.norm(dim=1, keepdim=True).clamp_min(1e-12))
            start += channels
        return mixed

    def resampled(self, grid: FeatureGrid, size: tuple[int, int]) -> CellMap:
        """The same pixel features on a finer ``grid`` whose centres include this grid's
        (its stride divides this one's): bilinear interpolation reproduces a bilinear function
        exactly on any sub-rectangle, so only float rounding changes. (C, h', w') cells."""
        if self.grid.patch_size != grid.patch_size or self.grid.stride % grid.stride:
            raise ValueError(f"Cannot resample cells of {self.grid} onto {grid}.")
        h, w = grid.grid_size(*size)
        centres = grid.cell_centres(h, w, self.fmap.device).to(self.fmap.dtype)
        fine = sample_at_pixels(self.fmap[None], centres[None], self.grid)[0]
        return CellMap(fine.T.reshape(-1, h, w), grid, self.groups)

    def keys(self, candidates: torch.Tensor) -> torch.Tensor:
        """Features (M, C) of the candidate pixels (H, W) bool, row-major; sampled once per mask
        content (the last few are kept), so a second search into the same pixels (the cycle
        check back into a reference, one demonstration to many objects) skips it."""
        return self._kept(
            "keys", candidates, lambda: self.sample(mask_pixels(candidates).to(self.fmap.device))
        )

    def index(self, candidates: torch.Tensor) -> CellIndex:
        """The :class:`CellIndex` of the candidate pixels (H, W) bool; built once per mask
        content (the last few are kept)."""

        def build() -> CellIndex:
            xy = mask_pixels(candidates).to(self.fmap.device)
            groups = [channels for channels, _ in self.groups]
            return CellIndex.build(self.fmap, self.grid, xy, self.keys(candidates), groups)

        return self._kept("index", candidates, build)

    def screen(self, candidates: torch.Tensor) -> CellScreen:
        """The :class:`CellScreen` of the candidate pixels (H, W) bool for few-query searches;
        built once per mask content, so the cycle check back into one reference, repeated for
        every target, screens the reference once."""

        def build() -> CellScreen:
            xy = mask_pixels(candidates).to(self.fmap.device)
            return CellScreen.build(self.fmap, self.grid, self.groups, xy)

        return self._kept("screen", candidates, build)

    def _kept(self, kind: str, candidates: torch.Tensor, make: Callable[[], object]):
        key = (
            kind,
            tuple(candidates.shape),
            hashlib.blake2b(candidates.cpu().numpy().tobytes(), digest_size=16).hexdigest(),
        )
        with self._lock:
            found = self._indexes.pop(key, None)
            if found is None:
                found = make()
            self._indexes[key] = found  # most recent last
            while len(self._indexes) > 3 * CELL_INDEXES_KEPT:
                self._indexes.pop(next(iter(self._indexes)))
            return found


@dataclass(frozen=True)
class ImageFeatures:
    """Features of one image, queryable at pixel coordinates.

    sample: (N, 2) pixel xy -> (N, C) L2-normalised features; size: (H, W); mask: (H, W) bool
    object mask (all True when the image has none); cells: the raw cell map when ``sample``
    is its bilinear interpolation (enables the pruned exact search; ignored when ``sample``
    is replaced, e.g. by ``dataclasses.replace``).
    """

    sample: Callable[[torch.Tensor], torch.Tensor]
    size: tuple[int, int]
    mask: torch.Tensor
    cells: CellMap | None = None

    def pixels(self, mask: torch.Tensor | None = None) -> torch.Tensor:
        """xy of the pixels inside ``mask`` (default: the object mask), row-major. (N, 2)."""
        return mask_pixels(self.mask if mask is None else mask)

    @property
    def cell_map(self) -> CellMap | None:
        """``cells`` when ``sample`` still is its interpolation, else None."""
        return self.cells if self.cells is not None and self.sample == self.cells.sample else None


def feature_map_features(
    fmap: torch.Tensor, grid: FeatureGrid, size: tuple[int, int], mask: torch.Tensor | None = None
) -> ImageFeatures:
    """ImageFeatures from a cell map (C, h, w): per-pixel features are bilinear interpolations
    of cells."""
    mask = (
        torch.ones(size, dtype=torch.bool, device=fmap.device)
        if mask is None
        else mask.to(fmap.device)
    )
    cells = CellMap(fmap, grid)
    return ImageFeatures(cells.sample, size, mask, cells)


def blend_features(head: ImageFeatures, raw: ImageFeatures, raw_weight: float) -> ImageFeatures:
    """Features whose cosine similarity is ``(1 - w) * head + w * raw`` for ``w = raw_weight``:
    the two unit vectors concatenated, scaled by sqrt(1 - w) and sqrt(w), so the result stays
    unit length and every search (brute force, lattice) works unchanged. (N, C_head + C_raw).

    Not in the paper, whose head replaces the backbone's features: on real photos the head
    trained on renders alone loses fine detail that raw DINOv2 keeps, and the blend beats
    either alone on FunKPoint-dev (README, Model card)."""
    a, b = math.sqrt(1.0 - raw_weight), math.sqrt(raw_weight)
    cells = _blended_cells(head.cell_map, raw.cell_map, head.size, (a, b))
    if cells is not None:
        return ImageFeatures(cells.sample, head.size, head.mask, cells)

    def sample(points: torch.Tensor) -> torch.Tensor:
        first = head.sample(points)
        return torch.cat([a * first, b * raw.sample(points).to(first)], dim=-1)

    return ImageFeatures(sample, head.size, head.mask)


def _blended_cells(
    head: CellMap | None, raw: CellMap | None, size: tuple[int, int], scales: tuple[float, float]
) -> CellMap | None:
    """One :class:`CellMap` for a blend of two cell maps (the raw one moved onto the head's
    finer lattice), so the blend keeps the pruned exact search; None when either side is not
    a plain cell map or the grids do not nest."""
    if head is None or raw is None or head.groups or raw.groups:
        return None
    if head.grid != raw.grid:
        if head.grid.patch_size != raw.grid.patch_size or raw.grid.stride % head.grid.stride:
            return None
        raw = raw.resampled(head.grid, size)
    fmap = torch.cat([head.fmap, raw.fmap.to(head.fmap)], dim=0)
    groups = ((head.fmap.shape[0], scales[0]), (raw.fmap.shape[0], scales[1]))
    return CellMap(fmap, head.grid, groups)


def mask_pixels(mask: torch.Tensor) -> torch.Tensor:
    """(H, W) bool -> (N, 2) float xy of its true pixels, row-major order."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return torch.stack([xs, ys], dim=-1).float()


def similarity_blocks(
    query: torch.Tensor, keys: torch.Tensor, block_rows: int = DEFAULT_BLOCK_ROWS
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield ``(rows, sim)`` with sim = query[rows] @ keys.T, shape (<= block_rows, M)."""
    for start in range(0, query.shape[0], block_rows):
        rows = slice(start, min(start + block_rows, query.shape[0]))
        yield rows, query[rows] @ keys.T


def nearest_neighbours(
    query: torch.Tensor, keys: torch.Tensor, block_rows: int = DEFAULT_BLOCK_ROWS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Index and cosine of each query's nearest key. query (N, C), keys (M, C), normalised.

    Exact, near-ties settled in float64 (:func:`funcorr.model.search.brute_force_nearest`).
    Returns idx (N,) long, sim (N,).
    """
    return brute_force_nearest(query, keys, block_rows)


def nearest_pixels(
    query: torch.Tensor,
    tgt: ImageFeatures,
    candidates: torch.Tensor,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest target pixel inside ``candidates`` (H, W) bool for each normalised query (N, C).

    Returns idx (N,) into the candidates' pixels, sim (N,), and those pixels' xy (M, 2) and
    features (M, C), or None when the search did not need them all. Cell-map features take
    the pruned search (CPU, large searches) or the screened one (few queries); the answer is
    the brute-force one either way.
    """
    xy = mask_pixels(candidates)
    if xy.shape[0] == 0:
        raise ValueError("No candidate pixels to match against (empty target mask).")
    cells = tgt.cell_map
    large = (
        query.shape[0] >= CELL_SEARCH_MIN_QUERIES
        and query.shape[0] * xy.shape[0] >= CELL_SEARCH_MIN_PAIRS
    )
    if (
        cells is not None
        and large
        and query.device.type == "cpu"
        and min(cells.fmap.shape[1:]) >= 2
    ):
        index = cells.index(candidates)
        idx, sim = index.nearest(query, block_rows=max(block_rows, CELL_BLOCK_ROWS))
        keys = index.keys
    elif cells is not None and min(cells.fmap.shape[1:]) >= 2:
        # Few queries: screened on the cells, so only pixels near the best are sampled.
        idx, sim = screened_nearest(
            query,
            cells.fmap,
            cells.grid,
            cells.groups,
            xy,
            cells.sample,
            screen=cells.screen(candidates),
        )
        keys = None
    else:
        keys = tgt.sample(xy)
        idx, sim = brute_force_nearest(query, keys, block_rows)
    return idx, sim, xy.to(query.device), keys


def soft_argmax(
    query: torch.Tensor,
    keys: torch.Tensor,
    key_xy: torch.Tensor,
    window: float,
    temperature: float = 0.02,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> torch.Tensor:
    """Refine each nearest neighbour to the softmax-weighted mean xy of keys within ``window``
    pixels of it (weights exp(sim / temperature)). Returns (N, 2) xy."""
    out = torch.empty(query.shape[0], 2, dtype=key_xy.dtype, device=key_xy.device)
    for rows, block in similarity_blocks(query, keys, block_rows):
        best = key_xy[block.argmax(dim=1)]  # (n, 2)
        near = torch.cdist(best, key_xy) <= window  # (n, M)
        weights = torch.softmax((block / temperature).masked_fill(~near, float("-inf")), dim=1)
        out[rows] = weights @ key_xy
    return out


@dataclass(frozen=True)
class Transfer:
    """Points moved from a source to a target image. points (N, 2) xy, similarity (N,)."""

    points: torch.Tensor
    similarity: torch.Tensor


def transfer_points(
    src: ImageFeatures,
    tgt: ImageFeatures,
    points: torch.Tensor,
    tgt_mask: torch.Tensor | None = None,
    soft_window: float | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
    candidate_stride: int = 1,
    refine: bool = False,
) -> Transfer:
    """Nearest-neighbour transfer of source pixels ``points`` (N, 2) to the target.

    Candidates are the target pixels inside ``tgt_mask`` (default: its object mask).
    ``soft_window`` enables soft-argmax refinement within that many pixels;
    ``candidate_stride`` > 1 searches only every that-many-th target pixel (faster, coarser);
    with ``refine`` each lattice match is then improved by an exact search of the candidates
    within ``candidate_stride - 1`` px of it (``refine_matches``): full-resolution answers for
    the price of the lattice, except where the true best pixel lies farther from the
    lattice's best (an approximation; ``benchmarks/bench_transfer.py`` measures it).
    """
    full = tgt.mask if tgt_mask is None else tgt_mask
    candidates = full
    if candidate_stride > 1:
        # Every candidate_stride-th pixel in x and y: M / stride^2 candidates, so proportionally
        # faster, with matches on a coarser lattice (unless refined).
        lattice = torch.zeros_like(candidates)
        lattice[::candidate_stride, ::candidate_stride] = True
        candidates = candidates & lattice
    if not candidates.any():
        raise ValueError("The target mask is empty: there is nowhere to transfer to.")
    query = src.sample(points.float())
    idx, sim, cand_xy, keys = nearest_pixels(query, tgt, candidates, block_rows)
    if refine and candidate_stride > 1:
        return refine_matches(query, tgt, full, cand_xy[idx], candidate_stride - 1)
    if soft_window is None:
        moved = cand_xy[idx]
    else:
        keys = tgt.sample(cand_xy) if keys is None else keys
        moved = soft_argmax(query, keys, cand_xy, soft_window, block_rows=block_rows)
    return Transfer(moved, sim)


def refine_matches(
    query: torch.Tensor,
    tgt: ImageFeatures,
    candidates: torch.Tensor,
    centres: torch.Tensor,
    radius: int,
) -> Transfer:
    """Exact nearest neighbour of each query (N, C) among the ``candidates`` (H, W) bool within
    ``radius`` px (Chebyshev) of its centre (N, 2) pixel xy, which must be a candidate."""
    height, width = candidates.shape
    steps = torch.arange(-radius, radius + 1, device=centres.device, dtype=centres.dtype)
    dy, dx = torch.meshgrid(steps, steps, indexing="ij")  # row-major: ties go to the first pixel
    window = centres[:, None, :] + torch.stack([dx, dy], -1).reshape(1, -1, 2)  # (N, W, 2)
    x, y = window[..., 0].long(), window[..., 1].long()
    inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
    allowed = candidates.to(centres.device)
    inside[inside.clone()] = allowed[y[inside], x[inside]]
    rows, slots = torch.nonzero(inside, as_tuple=True)
    xy = window[rows, slots]
    keys = tgt.sample(xy)
    idx, sim = resolve(
        query, keys, rows.to(keys.device), torch.arange(xy.shape[0], device=keys.device)
    )
    return Transfer(xy.to(keys.device)[idx], sim)


def transfer_mask(
    src: ImageFeatures,
    tgt: ImageFeatures,
    src_label: torch.Tensor,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Label transfer of a source mask: every target object pixel takes the label of its nearest
    source object pixel. src_label (H1, W1) bool. Returns (mask (H2, W2) bool, similarity
    (H2, W2))."""
    if not (src_label & src.mask.to(src_label.device)).any():
        raise ValueError("The source mask has no pixel on the source object.")
    tgt_xy = tgt.pixels()
    back = transfer_points(tgt, src, tgt_xy, block_rows=block_rows)
    bx, by = back.points.long().unbind(-1)
    labels = src_label.to(bx.device)[by, bx]
    tx, ty = tgt_xy.long().unbind(-1)
    out = torch.zeros(tgt.size, dtype=torch.bool, device=bx.device)
    sim = torch.zeros(tgt.size, dtype=back.similarity.dtype, device=bx.device)
    out[ty, tx], sim[ty, tx] = labels, back.similarity
    return out, sim


def cycle_error(
    src: ImageFeatures,
    tgt: ImageFeatures,
    src_xy: torch.Tensor,
    tgt_xy: torch.Tensor,
    src_mask: torch.Tensor | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> torch.Tensor:
    """Forward-backward error: pixel distance between ``src_xy`` and where ``tgt_xy`` (its forward
    match) lands back in the source (within ``src_mask``). (N,) float."""
    back = transfer_points(tgt, src, tgt_xy, tgt_mask=src_mask, block_rows=block_rows)
    return (back.points - src_xy.to(back.points.device)).norm(dim=-1)


def minmax(values: torch.Tensor, constant: float = 1.0) -> torch.Tensor:
    """Scale to [0, 1] over the set. A set whose spread is float noise (< 1e-6) has no order,
    so every value maps to ``constant``."""
    low, high = values.min(), values.max()
    if high - low <= 1e-6:
        return torch.full_like(values, constant)
    return (values - low) / (high - low)


@dataclass(frozen=True)
class Discovery:
    """Candidate correspondences ranked best first: xy (N, 2) each, scores (N,)."""

    src_xy: torch.Tensor
    tgt_xy: torch.Tensor
    score: torch.Tensor
    similarity: torch.Tensor
    cycle_error: torch.Tensor

    def _fields(self) -> tuple[torch.Tensor, ...]:
        return self.src_xy, self.tgt_xy, self.score, self.similarity, self.cycle_error

    def select(self, index: torch.Tensor | slice) -> Discovery:
        """The candidates ``index`` picks (an order, a bool mask or a slice), in that order."""
        return Discovery(*(t[index] for t in self._fields()))

    def top(self, k: int) -> Discovery:
        return self.select(slice(None, k))

    @staticmethod
    def concat(parts: Sequence[Discovery]) -> Discovery:
        """Rankings one after the other (e.g. part -> part, then rest -> rest)."""
        return Discovery(
            *(torch.cat(list(f)) for f in zip(*(d._fields() for d in parts), strict=True))
        )


@dataclass(frozen=True)
class DenseMatches:
    """Every pixel of a region matched into a region of the other image.

    xy (N, 2): the region's pixels, row-major; match (N,): index of each one's nearest
    neighbour among the other region's pixels (row-major); similarity (N,).
    """

    xy: torch.Tensor
    match: torch.Tensor
    similarity: torch.Tensor


def dense_matches(
    src: ImageFeatures,
    tgt: ImageFeatures,
    src_mask: torch.Tensor,
    tgt_mask: torch.Tensor,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> DenseMatches:
    """Nearest neighbour in ``tgt_mask`` of every pixel of ``src_mask`` (both (H, W) bool)."""
    if not tgt_mask.any():
        raise ValueError("The target mask is empty: there is nowhere to transfer to.")
    xy = mask_pixels(src_mask)
    idx, sim, _, _ = nearest_pixels(src.sample(xy), tgt, tgt_mask, block_rows)
    return DenseMatches(xy.to(idx.device), idx, sim)


def rank_matches(forward: DenseMatches, backward: DenseMatches) -> Discovery:
    """Rank ``forward`` (source region -> target region) by score = (1 - cycle error) *
    similarity, each min-max normalised over the pair (dense functional correspondence paper,
    Sec. 5.1); ``backward`` matches the target region back into the source region."""
    tgt_xy = backward.xy[forward.match]
    cycle = (forward.xy[backward.match[forward.match]] - forward.xy).norm(dim=-1)
    score = (1 - minmax(cycle, constant=0.0)) * minmax(forward.similarity)
    # Stable sort keeps row-major order among ties, so rankings are deterministic.
    order = torch.sort(score, descending=True, stable=True).indices
    return Discovery(forward.xy, tgt_xy, score, forward.similarity, cycle).select(order)


def discover(
    src: ImageFeatures,
    tgt: ImageFeatures,
    src_mask: torch.Tensor | None = None,
    tgt_mask: torch.Tensor | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Discovery:
    """Rank every source pixel's forward match by score = (1 - cycle error) * similarity, each
    min-max normalised over the pair, as the dense functional correspondence paper (Sec. 5.1).
    """
    return discover_pair(src, tgt, src_mask, tgt_mask, block_rows)[0]


def discover_pair(
    first: ImageFeatures,
    second: ImageFeatures,
    first_mask: torch.Tensor | None = None,
    second_mask: torch.Tensor | None = None,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> tuple[Discovery, Discovery]:
    """:func:`discover` from ``first`` to ``second`` and from ``second`` to ``first`` (regions
    swapped), from two searches: each direction's cycle check is the other's forward match
    (the backward match of a forward match is the forward match of that target pixel)."""
    first_mask = first.mask if first_mask is None else first_mask
    second_mask = second.mask if second_mask is None else second_mask
    forward = dense_matches(first, second, first_mask, second_mask, block_rows)
    backward = dense_matches(second, first, second_mask, first_mask, block_rows)
    return rank_matches(forward, backward), rank_matches(backward, forward)


def part_regions(
    src_object: torch.Tensor,
    tgt_object: torch.Tensor,
    src_part: torch.Tensor | None,
    tgt_part: torch.Tensor | None,
    min_pixels: int = 16,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(source region, target region) pairs to match within, as the paper does with part masks
    (Sec. 8.2): part to part, then the rest of each object to the rest. Falls back to the whole
    objects when a part mask is missing or a region has fewer than ``min_pixels`` pixels.
    All masks (H, W) bool."""
    if src_part is not None and tgt_part is not None:
        regions = [
            (src_part & src_object, tgt_part & tgt_object),
            (~src_part & src_object, ~tgt_part & tgt_object),
        ]
        if all(int(mask.sum()) >= min_pixels for pair in regions for mask in pair):
            return regions
    return [(src_object, tgt_object)]


def discover_in_regions(
    src: ImageFeatures,
    tgt: ImageFeatures,
    regions: list[tuple[torch.Tensor, torch.Tensor]],
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Discovery:
    """:func:`discover` within each region pair, rankings concatenated in region order."""
    return Discovery.concat(
        [discover(src, tgt, src_mask=s, tgt_mask=t, block_rows=block_rows) for s, t in regions]
    )


def mutual_nearest(
    src: ImageFeatures,
    tgt: ImageFeatures,
    tolerance: float = 0.5,
    block_rows: int = DEFAULT_BLOCK_ROWS,
) -> Discovery:
    """Matches whose backward nearest neighbour returns to (within ``tolerance`` px of) the
    start."""
    ranked = discover(src, tgt, block_rows=block_rows)
    return ranked.select(ranked.cycle_error <= tolerance)


def spread_out(
    src_xy: torch.Tensor, tgt_xy: torch.Tensor, k: int, min_distance: float = 5.0
) -> torch.Tensor:
    """Indices of the first ``k`` ranked matches whose ends are each at least ``min_distance``
    px from every earlier pick on both images (so a picture shows k distinct matches)."""
    picked: list[int] = []
    for i in range(src_xy.shape[0]):
        if len(picked) == k:
            break
        if picked:
            chosen = torch.tensor(picked)
            if (src_xy[chosen] - src_xy[i]).norm(dim=-1).min() < min_distance or (
                tgt_xy[chosen] - tgt_xy[i]
            ).norm(dim=-1).min() < min_distance:
                continue
        picked.append(i)
    return torch.tensor(picked, dtype=torch.long)


def similarity_heatmap(src: ImageFeatures, tgt: ImageFeatures, point: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of the source feature at ``point`` (2,) with every target pixel. (H, W)."""
    height, width = tgt.size
    everywhere = mask_pixels(torch.ones(height, width, dtype=torch.bool))
    sims = tgt.sample(everywhere) @ src.sample(point.float().reshape(1, 2))[0]
    return sims.reshape(height, width)

"""Keypoint benchmarks: SPair-71k-style and SOCO pair readers, and a PCK runner with SOCO's tasks.

Tasks (SOCO's taxonomy):

* ``soc``: the prediction for source keypoint ``s`` must land on *its* target keypoint (the
  same object-relative name). On cross-category pairs this is **Cross-SOC**.
* ``cc``: concept correspondence: any target keypoint of the same concept counts (error = the
  distance to the closest of them).
* ``soc_geo``: the argmax is restricted to the target feature cells that hold a keypoint of the
  same concept; the prediction is the centre of the best such cell, scored as SOC. Source
  keypoints with no same-concept candidate, or whose true target is not a candidate, are
  skipped (OmniProbe's geometric SOCO protocol).

PCK@alpha: an error counts when ``error <= alpha * max(target bbox w, h)`` (``bbox``, the
standard) or ``<= alpha * max(target W, H)`` (``image``); both are reported, as is SOCO's strict
``<`` when ``strict=True``. Averaging: ``per_point`` pools every keypoint, ``per_image`` averages
per-pair PCKs, ``per_category`` averages per-category means (SOCO's "pair, then category").

Protocol pitfalls this module guards against (each has a test):

* **bbox vs image threshold**: the image-size threshold is larger whenever the object does not
  fill the frame, so numbers computed with it are inflated; tables always say which one.
* **non-uniform resize**: with ``resize='resize'`` x and y are stretched by different factors;
  keypoints go through :class:`funcorr.images.Resize` per axis and errors are measured in
  original pixels, so thresholds keep their meaning.
* **patch-centre offset**: feature cell ``j`` covers pixels ``j*s .. j*s + p - 1`` and its centre
  is ``j*s + (p - 1) / 2``; reading it as ``j*s`` (the cell corner) shifts every prediction by
  about half a patch. All pixel<->cell mapping goes through :mod:`funcorr.backbones.base`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, overload

import torch

from funcorr.backbones.base import FeatureGrid, pixel_to_cell
from funcorr.eval.metrics import nanmean, pck_at
from funcorr.files import confined
from funcorr.images import InputError, LoadedImage, ResizePolicy, load_image
from funcorr.model.flip import choose_orientation, mirrored_prepared, unmirror
from funcorr.model.matcher import Prepared, prepare_image
from funcorr.model.matching import DEFAULT_BLOCK_ROWS, ImageFeatures, transfer_points

PairType = Literal["intra", "cross"]
ThresholdReference = Literal["bbox", "image"]
Task = Literal["soc", "cc", "soc_geo"]
TASKS: tuple[Task, ...] = ("soc", "cc", "soc_geo")
REFERENCES: tuple[ThresholdReference, ...] = ("bbox", "image")

#: PASCAL VOC super-categories, which SPair-71k's 18 categories inherit.
SPAIR_SUPER_CATEGORIES: dict[str, str] = {
    **{c: "vehicle" for c in ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train")},
    **{c: "animal" for c in ("bird", "cat", "cow", "dog", "horse", "sheep")},
    **{c: "indoor" for c in ("bottle", "chair", "pottedplant", "tvmonitor")},
    "person": "person",
}


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Keypoint:
    """A named keypoint; SOCO adds its concept, ``kind`` (structural or functional) and
    whether it is ``shared`` across categories."""

    id: int
    name: str
    position: tuple[float, float]
    concept_id: int | None = None
    concept_name: str | None = None
    kind: str | None = None
    shared: bool | None = None


@dataclass(frozen=True)
class Match:
    """A named source-to-target match; several target indices make a one-to-many (CC) match."""

    label: str
    source_indices: tuple[int, ...]
    target_indices: tuple[int, ...]


@dataclass(frozen=True)
class KeypointView:
    """One image of a pair. bbox = (left, top, right, bottom) in original pixels; size = (W, H)
    when the annotation states it (else read from the image)."""

    category: str
    image_path: Path
    bbox: tuple[float, float, float, float] | None
    keypoints: tuple[Keypoint, ...]
    size: tuple[int, int] | None = None

    def load(self) -> LoadedImage:
        return load_image(self.image_path)

    def points(self) -> torch.Tensor:
        """(K, 2) xy of the keypoints."""
        return torch.tensor([k.position for k in self.keypoints], dtype=torch.float64).reshape(-1, 2)


@dataclass(frozen=True)
class KeypointPair:
    """A source/target pair with its semantic (SOC) and concept (CC) matches."""

    pair_id: str
    pair_type: PairType
    group: str
    source: KeypointView
    target: KeypointView
    semantic_matches: tuple[Match, ...]
    concept_matches: tuple[Match, ...] = ()
    mirror: bool = False
    annotation_path: Path | None = None


# --------------------------------------------------------------------------- readers


def read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as err:
        raise InputError(f"{path} is not valid JSON: {err}") from err


def parse_bbox(value: Sequence[float] | None) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    if len(value) != 4:
        raise InputError(f"A bounding box must be [left, top, right, bottom], got {value!r}.")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _resolve_image(root: Path, name: str, category: str, allow_abs: bool = False) -> Path:
    """Find an image given as a path relative to ``root``, under ``images/``, SPair's
    ``JPEGImages/<category>/``, or with any leading prefix (``SPair-71k/JPEGImages/...``).

    Names never lead out of ``root`` with ``..``; an absolute name is used as it is only with
    ``allow_abs`` (the user's ``--allow-abs``), else it is looked up inside ``root`` like a
    relative one, so a downloaded pairs file cannot make funcorr read any file it names."""
    path = Path(name)
    if path.is_absolute() and allow_abs:
        if path.is_file():
            return path
        raise InputError(f"Image {name!r} (an absolute path, allowed by --allow-abs) does not exist.")
    parts = path.parts[1:] if path.is_absolute() else path.parts
    confined(root, Path(*parts) if parts else "", "image path", follow_links=False)
    confined(root, category or ".", "category", follow_links=False)
    tried = []
    for start in range(len(parts)):
        rest = Path(*parts[start:])
        for base in (root, root / "images", root / "JPEGImages" / category, root / "Images" / category):
            candidate = base / rest
            tried.append(candidate)
            if candidate.is_file():
                return candidate
    hint = " It is an absolute path, looked up inside the dataset folder: pass --allow-abs to read it where it is." if path.is_absolute() else ""
    raise InputError(f"Image {name!r} not found under {root} (tried {', '.join(map(str, tried[:4]))}, ...).{hint}")


def _aligned_matches(count: int, names: Sequence[str] | None = None) -> tuple[Match, ...]:
    """SPair lists keypoints in corresponding order: source i matches target i."""
    return tuple(Match(str(names[i]) if names else str(i), (i,), (i,)) for i in range(count))


def _plain_keypoints(points: Sequence[Sequence[float]], names: Sequence[Any] | None = None) -> tuple[Keypoint, ...]:
    return tuple(Keypoint(i, str(names[i]) if names else str(i), (float(p[0]), float(p[1]))) for i, p in enumerate(points))


class LazyPairs(Sequence[KeypointPair]):
    """A pair list that parses one pair per access; subclasses define ``__len__`` and ``_pair``
    (SPair here, SOCO in :mod:`funcorr.eval.soco`)."""

    def _pair(self, index: int) -> KeypointPair:
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> KeypointPair: ...
    @overload
    def __getitem__(self, index: slice) -> list[KeypointPair]: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self._pair(index % len(self))

    def __iter__(self) -> Iterator[KeypointPair]:
        for index in range(len(self)):
            yield self[index]


class SPairPairs(LazyPairs):
    """SPair-71k pairs, lazily: either a ``pairs.json`` list (spair-mini style: ``source_path``,
    ``source_points``, ``source_bounding_box``, ...) or SPair-71k's ``PairAnnotation/<split>/*.json``
    (``src_imname``, ``src_kps``, ``src_bndbox``, ...). SPair has no concept labels, so only SOC
    is defined (``concept_matches`` is empty)."""

    def __init__(self, root: str | Path, split: str = "test", pairs_file: str | Path | None = None, categories: Sequence[str] | None = None, max_pairs: int | None = None, allow_abs: bool = False) -> None:
        self.root = Path(root).expanduser()
        self.allow_abs = allow_abs
        listing = Path(pairs_file) if pairs_file is not None else self.root / "pairs.json"
        self._entries: list[Mapping[str, Any]] | None = None
        self._paths: tuple[Path, ...] = ()
        if listing.is_file():
            entries = read_json(listing)
            if not isinstance(entries, list):
                raise InputError(f"{listing} must hold a JSON list of pairs.")
            self._entries = [e for e in entries if categories is None or e.get("category") in categories]
        elif (self.root / "PairAnnotation" / split).is_dir():
            paths = sorted((self.root / "PairAnnotation" / split).glob("*.json"))
            self._paths = tuple(p for p in paths if categories is None or p.stem.split(":")[-1] in categories)
        else:
            raise InputError(f"No SPair pairs under {self.root}: expected pairs.json or PairAnnotation/{split}/.")
        self._limit = max_pairs
        if self._entries is not None:
            # Resolve the listed images now: a pairs file naming a missing image, or one outside
            # the folder, is one error before evaluation starts rather than a failure midway.
            for index, entry in enumerate(self._entries[: len(self)]):
                for key in ("source_path", "target_path"):
                    if key not in entry:
                        raise InputError(f"{listing}: pair {index} has no {key!r}.")
                    _resolve_image(self.root, str(entry[key]), str(entry.get("category", "")), allow_abs)

    def __len__(self) -> int:
        count = len(self._entries) if self._entries is not None else len(self._paths)
        return count if self._limit is None else min(count, self._limit)

    def _pair(self, index: int) -> KeypointPair:
        if self._entries is not None:
            return self._parse_listed(self._entries[index], index)
        path = self._paths[index]
        return self._parse_spair71k(read_json(path), path)

    def _parse_listed(self, entry: Mapping[str, Any], index: int) -> KeypointPair:
        category = str(entry.get("category", ""))
        src_points, tgt_points = entry["source_points"], entry["target_points"]
        if len(src_points) != len(tgt_points):
            raise InputError(f"Pair {index}: {len(src_points)} source but {len(tgt_points)} target points.")
        source = KeypointView(category, _resolve_image(self.root, str(entry["source_path"]), category, self.allow_abs), parse_bbox(entry.get("source_bounding_box")), _plain_keypoints(src_points))
        target = KeypointView(category, _resolve_image(self.root, str(entry["target_path"]), category, self.allow_abs), parse_bbox(entry.get("target_bounding_box")), _plain_keypoints(tgt_points))
        return KeypointPair(str(entry.get("pair_id", index)), "intra", category, source, target, _aligned_matches(len(src_points)), (), bool(entry.get("mirror", 0)))

    def _parse_spair71k(self, data: Mapping[str, Any], path: Path) -> KeypointPair:
        category = str(data["category"])
        names = [str(k) for k in data.get("kps_ids", range(len(data["src_kps"])))]
        source = KeypointView(category, _resolve_image(self.root, str(data["src_imname"]), category, self.allow_abs), parse_bbox(data.get("src_bndbox")), _plain_keypoints(data["src_kps"], names))
        target = KeypointView(category, _resolve_image(self.root, str(data["trg_imname"]), category, self.allow_abs), parse_bbox(data.get("trg_bndbox")), _plain_keypoints(data["trg_kps"], names))
        return KeypointPair(str(data.get("pair_id", path.stem)), "intra", category, source, target, _aligned_matches(len(names), names), (), bool(data.get("mirror", 0)), path)


def concept_targets(pair: KeypointPair) -> dict[int, tuple[int, ...]]:
    """Source keypoint index -> every valid CC target index (merged over concept groups)."""
    merged: dict[int, set[int]] = defaultdict(set)
    for match in pair.concept_matches:
        for s in match.source_indices:
            merged[s].update(match.target_indices)
    return {s: tuple(sorted(t)) for s, t in merged.items() if t}


# --------------------------------------------------------------------------- methods


class PairContext(Protocol):
    """Predictions for one opened pair. Points are original pixels."""

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        """(N, 2) source points -> (N, 2) predicted target points."""

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        """Like :meth:`transfer`, but point i may only land on a cell holding one of
        ``candidates[i]`` (K_i, 2)."""


class KeypointMethod(Protocol):
    name: str

    def open(self, pair: KeypointPair) -> PairContext: ...


FeatureFunction = Callable[[list[Prepared]], list[ImageFeatures]]


def cell_centres_holding(points: torch.Tensor, grid: FeatureGrid, size: tuple[int, int]) -> torch.Tensor:
    """Pixel centres of the feature cells that hold ``points`` (N, 2) network xy; duplicates
    removed, order kept. Cell ``j`` spans pixels ``j*s .. j*s+p-1``, centre ``j*s + (p-1)/2``."""
    height, width = size
    rows, cols = grid.grid_size(height, width)
    uv = pixel_to_cell(points.float(), grid).round().long()
    uv[:, 0].clamp_(0, cols - 1)
    uv[:, 1].clamp_(0, rows - 1)
    seen: dict[tuple[int, int], None] = dict.fromkeys((int(u), int(v)) for u, v in uv)
    cells = torch.tensor(list(seen), dtype=torch.float32).reshape(-1, 2)
    return cells * grid.stride + (grid.patch_size - 1) / 2


@dataclass
class _FeatureContext:
    src: ImageFeatures
    tgt: ImageFeatures
    src_prepared: Prepared
    tgt_prepared: Prepared
    grid: FeatureGrid
    soft_window: float | None
    block_rows: int

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        net = self.src_prepared.plan.to_net(points.float())
        moved = transfer_points(self.src, self.tgt, net, soft_window=self.soft_window, block_rows=self.block_rows)
        return self.tgt_prepared.plan.to_orig(moved.points.cpu().float()).double()

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.full((points.shape[0], 2), math.nan, dtype=torch.float64)
        size = self.tgt.size
        queries = self.src.sample(self.src_prepared.plan.to_net(points.float()))
        for i, cand in enumerate(candidates):
            if cand.shape[0] == 0:
                continue
            centres = cell_centres_holding(self.tgt_prepared.plan.to_net(cand.float()), self.grid, size)
            scores = self.tgt.sample(centres.to(queries.device)) @ queries[i]
            out[i] = self.tgt_prepared.plan.to_orig(centres[int(scores.argmax())][None].float())[0].double()
        return out


@dataclass
class FeatureKeypointMethod:
    """Nearest neighbours on dense features (any backbone, or a trained head via a Matcher)."""

    name: str
    features: FeatureFunction
    grid: FeatureGrid
    image_size: int = 224
    resize: ResizePolicy = "pad"
    soft_window: float | None = None
    block_rows: int = DEFAULT_BLOCK_ROWS
    flip: bool = False

    @classmethod
    def from_matcher(cls, matcher: Any, name: str | None = None, soft_window: float | None = None, flip: bool = False) -> FeatureKeypointMethod:
        cfg = matcher.config
        label = name or ("checkpoint" if matcher.head is not None else cfg.backbone)
        return cls(label, matcher.features, matcher.backbone.grid, cfg.image_size, cfg.resize, soft_window, flip=flip)

    def open(self, pair: KeypointPair) -> PairContext:
        src = prepare_image(_without_alpha(pair.source.load()), self.image_size, self.resize)
        tgt = prepare_image(_without_alpha(pair.target.load()), self.image_size, self.resize)
        if not self.flip:
            src_feat, tgt_feat = self.features([src, tgt])
        else:
            # One batch with the mirrored target; its answers are mapped back (funcorr.model.flip).
            src_feat, tgt_feat, mirrored = self.features([src, tgt, mirrored_prepared(tgt)])
            tgt_feat, _ = choose_orientation(src_feat, tgt_feat, unmirror(mirrored, tgt_feat.mask))
        return _FeatureContext(src_feat, tgt_feat, src, tgt, self.grid, self.soft_window, self.block_rows)


def _without_alpha(image: LoadedImage) -> LoadedImage:
    # Keypoint benchmarks match over the whole image; an alpha channel is not an object mask here.
    return LoadedImage(image.rgb, None, image.path)


@dataclass
class _ChanceContext:
    region: tuple[float, float, float, float]
    generator: torch.Generator

    def transfer(self, points: torch.Tensor) -> torch.Tensor:
        left, top, right, bottom = self.region
        xs = torch.randint(math.ceil(left), math.floor(right) + 1, (points.shape[0],), generator=self.generator)
        ys = torch.randint(math.ceil(top), math.floor(bottom) + 1, (points.shape[0],), generator=self.generator)
        return torch.stack([xs, ys], dim=-1).double()

    def restricted(self, points: torch.Tensor, candidates: Sequence[torch.Tensor]) -> torch.Tensor:
        out = torch.full((points.shape[0], 2), math.nan, dtype=torch.float64)
        for i, cand in enumerate(candidates):
            if cand.shape[0]:
                out[i] = cand[int(torch.randint(cand.shape[0], (1,), generator=self.generator))].double()
        return out


@dataclass
class ChanceKeypointMethod:
    """Chance level: a uniformly random target pixel inside the target bbox (the whole image
    when there is none). Average several seeds for a stable number."""

    seed: int = 0
    name: str = "chance"
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def open(self, pair: KeypointPair) -> PairContext:
        region = pair.target.bbox
        if region is None:
            width, height = pair.target.load().size
            region = (0.0, 0.0, width - 1.0, height - 1.0)
        return _ChanceContext(region, self.generator)


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class KeypointConfig:
    """Thresholds are fractions alpha of the reference length (see module docstring)."""

    alphas: tuple[float, ...] = (0.05, 0.1, 0.15)
    tasks: tuple[Task, ...] = TASKS
    strict: bool = False
    max_pairs: int | None = None


@dataclass(frozen=True)
class PairScores:
    """Errors (original target pixels) per task, and the reference lengths for the thresholds."""

    pair_id: str
    pair_type: PairType
    category: str
    errors: dict[str, torch.Tensor]
    reference_length: dict[str, float]

    def pck(self, task: str, alpha: float, reference: ThresholdReference, strict: bool = False) -> float:
        return pck_at(self.errors[task], alpha * self.reference_length[reference], strict=strict)


def reference_lengths(pair: KeypointPair) -> dict[str, float]:
    """``bbox``: max(w, h) of the target box; ``image``: max(W, H) of the target image."""
    width, height = _image_size(pair.target)
    lengths = {"image": float(max(width, height))}
    if pair.target.bbox is not None:
        left, top, right, bottom = pair.target.bbox
        lengths["bbox"] = float(max(right - left, bottom - top))
    else:
        lengths["bbox"] = lengths["image"]
    return lengths


def _image_size(view: KeypointView) -> tuple[int, int]:
    from PIL import Image

    if view.size is not None:
        return view.size
    with Image.open(view.image_path) as im:
        return im.size


def score_pair(pair: KeypointPair, method: KeypointMethod, tasks: Sequence[Task] = TASKS) -> PairScores:
    """Errors of one pair for each task that the pair's annotations define."""
    context = method.open(pair)
    src_all, tgt_all = pair.source.points(), pair.target.points()
    errors: dict[str, torch.Tensor] = {}
    predicted = context.transfer(src_all) if len(src_all) else src_all
    if "soc" in tasks:
        s_idx = [m.source_indices[0] for m in pair.semantic_matches]
        t_idx = [m.target_indices[0] for m in pair.semantic_matches]
        errors["soc"] = (predicted[s_idx] - tgt_all[t_idx]).norm(dim=-1) if s_idx else torch.zeros(0, dtype=torch.float64)
    valid = concept_targets(pair)
    if "cc" in tasks and valid:
        errors["cc"] = torch.stack([(tgt_all[list(t)] - predicted[s]).norm(dim=-1).min() for s, t in sorted(valid.items())])
    if "soc_geo" in tasks and valid:
        queries = [(m.source_indices[0], m.target_indices[0]) for m in pair.semantic_matches if m.target_indices[0] in valid.get(m.source_indices[0], ())]
        if queries:
            restricted = context.restricted(src_all[[s for s, _ in queries]], [tgt_all[list(valid[s])] for s, _ in queries])
            errors["soc_geo"] = (restricted - tgt_all[[t for _, t in queries]]).norm(dim=-1)
    # A pair across categories is Cross-SOC whatever folder it came from.
    pair_type: PairType = "cross" if pair.pair_type == "cross" or pair.source.category != pair.target.category else "intra"
    return PairScores(pair.pair_id, pair_type, pair.group, errors, reference_lengths(pair))


@dataclass
class KeypointResults:
    """Per-pair scores of one method on one benchmark; :meth:`summary` aggregates."""

    method: str
    dataset: str
    pairs: list[PairScores]
    config: KeypointConfig
    super_categories: Mapping[str, str] = field(default_factory=dict)

    def pck(self, task: str, alpha: float, reference: ThresholdReference, pair_type: PairType | None = None) -> dict[str, Any]:
        """Per-point, per-image and per-category PCK (fractions) plus per-(super-)category means."""
        chosen = [p for p in self.pairs if task in p.errors and p.errors[task].numel() and (pair_type is None or p.pair_type == pair_type)]
        if not chosen:
            return {"per_point": math.nan, "per_image": math.nan, "per_category": math.nan, "points": 0, "pairs": 0, "categories": {}, "super_categories": {}}
        correct = torch.cat([p.errors[task] <= alpha * p.reference_length[reference] if not self.config.strict else p.errors[task] < alpha * p.reference_length[reference] for p in chosen])
        per_pair = [p.pck(task, alpha, reference, self.config.strict) for p in chosen]
        by_category: dict[str, list[float]] = defaultdict(list)
        for p, value in zip(chosen, per_pair):
            by_category[p.category].append(value)
        categories = {c: nanmean(v) for c, v in sorted(by_category.items())}
        by_super: dict[str, list[float]] = defaultdict(list)
        for c, value in categories.items():
            by_super[self.super_categories.get(c, "other")].append(value)
        return {
            "per_point": float(correct.double().mean()),
            "per_image": nanmean(per_pair),
            "per_category": nanmean(categories.values()),
            "points": int(correct.numel()),
            "pairs": len(chosen),
            "categories": categories,
            "super_categories": {s: nanmean(v) for s, v in sorted(by_super.items())} if self.super_categories else {},
        }

    def pair_types(self) -> list[PairType]:
        return sorted({p.pair_type for p in self.pairs})  # type: ignore[return-value]

    def to_record(self) -> dict[str, Any]:
        """JSON-ready: every task x pair type x reference x alpha, and per-pair errors."""
        results: dict[str, Any] = {}
        for pair_type in self.pair_types():
            for task in self.config.tasks:
                name = task_label(task, pair_type)
                results[name] = {
                    reference: {f"{alpha:g}": self.pck(task, alpha, reference, pair_type) for alpha in self.config.alphas} for reference in REFERENCES
                }
        return {
            "method": self.method,
            "dataset": self.dataset,
            "results": results,
            "per_pair": [
                {"pair_id": p.pair_id, "pair_type": p.pair_type, "category": p.category, "reference_length": p.reference_length, "errors_px": {t: e.tolist() for t, e in p.errors.items()}}
                for p in self.pairs
            ],
        }


def task_label(task: str, pair_type: str) -> str:
    """SOCO's names: SOC on cross-category pairs is Cross-SOC."""
    names = {"soc": "SOC", "cc": "CC", "soc_geo": "SOC-geo"}
    return ("Cross-" if pair_type == "cross" else "") + names.get(task, task)


def evaluate_keypoints(pairs: Sequence[KeypointPair], method: KeypointMethod, config: KeypointConfig = KeypointConfig(), dataset: str = "", super_categories: Mapping[str, str] | None = None, progress: bool = False) -> KeypointResults:
    """Score every pair (up to ``config.max_pairs``) and keep the per-pair errors."""
    from tqdm import tqdm

    count = len(pairs) if config.max_pairs is None else min(len(pairs), config.max_pairs)
    if count == 0:
        raise InputError("The keypoint benchmark has no pairs to evaluate.")
    scores = [score_pair(pairs[i], method, config.tasks) for i in tqdm(range(count), desc=f"keypoints {method.name}", unit="pair", disable=not progress)]
    return KeypointResults(method.name, dataset, scores, config, dict(super_categories or {}))


def chance_pck(pairs: Sequence[KeypointPair], alpha: float = 0.1, reference: ThresholdReference = "bbox", seeds: Sequence[int] = tuple(range(20)), task: Task = "soc") -> dict[str, float]:
    """Chance level (random pixel in the target bbox), per point and per image, averaged over seeds."""
    per_point, per_image = [], []
    for seed in seeds:
        summary = evaluate_keypoints(pairs, ChanceKeypointMethod(seed), KeypointConfig(alphas=(alpha,), tasks=(task,))).pck(task, alpha, reference)
        per_point.append(summary["per_point"])
        per_image.append(summary["per_image"])
    return {"per_point": sum(per_point) / len(per_point), "per_image": sum(per_image) / len(per_image), "seeds": len(seeds)}


def load_super_categories(path: str | Path | None, dataset: str) -> dict[str, str]:
    """A JSON ``{category: super_category}`` file, else PASCAL's grouping for SPair, else none."""
    if path is not None:
        mapping = read_json(Path(path))
        if not isinstance(mapping, dict):
            raise InputError(f"{path} must map category names to super-category names.")
        return {str(k): str(v) for k, v in mapping.items()}
    return dict(SPAIR_SUPER_CATEGORIES) if dataset == "spair" else {}


def __getattr__(name: str) -> Any:
    # The SOCO reader lives in funcorr.eval.soco (it imports the records above); these names
    # stay importable from here.
    if name in ("SOCOPairs", "parse_soco_pair"):
        from funcorr.eval import soco

        return getattr(soco, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

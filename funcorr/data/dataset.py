"""On-disk datasets of rendered assets: training views and functional evaluation pairs.

FORMAT (``format: "funcorr-data"``, ``version: 1``)
====================================================

::

    ROOT/
      config.json                  the DataConfig that made the folder (resume checks it)
      index.json                   written last: its presence means the dataset is complete
      assets/<asset_id>/           one folder per asset, written to a hidden temp folder
                                   and renamed into place, so it is either whole or absent
        asset.json                 category, split, seed, shape params, part_names,
                                   functions {name: {part, frame 4x4, size, symmetry}},
                                   n_views, image_size, part_pixels[view][part]
        mesh.npz                   vertices (V, 3) float64, faces (F, 3) int32, face_parts (F,) int16
        views/NNNN.png             RGB, 8-bit
        views/NNNN.mask.png        object mask (L: 0 / 255)
        views/NNNN.parts.png       true part labels (part index + 1, 0 = background; 8-bit,
                                   16-bit for meshes with more than 254 parts)
        views/NNNN.<function>.png  functional-part mask per supported function (L: 0 / 255),
                                   function names with spaces written with "_"
        views/NNNN.npz             depth (H, W) float32 (0 = background; object-frame xyz
                                   is recovered exactly with render.backproject), normals
                                   (H, W, 3) float16, part_ids (H, W) int16, K (3, 3),
                                   cam_to_world (4, 4) OpenCV camera -> object frame
        matches.npz                training assets only: same-asset multi-view
                                   correspondences; pairs (M, 2) int16 view ids,
                                   offsets (M + 1,) int64, points (P, 2, 2) float32 pixel xy
                                   ([:, 0] in the first view, [:, 1] in the second)
      pairs/<split>.json           evaluation pairs of split "test" / "unseen": records with
                                   pair_id, function, asset1, view1, asset2, view2,
                                   category1, category2, across_category, offset, count,
                                   transform (4x4 asset 2 -> asset 1), mean_distance
      pairs/<split>.npz            correspondences (P, 2, 2) float32 pixel xy; a pair's rows
                                   are [offset, offset + count)

Splits are by asset: categories listed in ``unseen_categories`` go entirely to
``unseen``; of the other categories, the first ``round(test_fraction * n)`` instances
(at least one when n >= 2) go to ``test`` and the rest to ``train``; real meshes from a
curation manifest keep the split of their row. Training views come from ``train``
assets (``train_views`` each); ``test`` and ``unseen`` assets get ``eval_views``. Test
pairs take both assets from ``test``; unseen pairs take asset 1 from ``unseen`` and asset 2
from ``unseen`` or ``test``. Pixel coordinates are (x, y) with the centre of the top-left
pixel at (0, 0). Every file is a deterministic function of config.json (same config =>
byte-identical folder).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import zipfile
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import MappingProxyType

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from funcorr.data.appearance import AppearanceConfig, render_random_views
from funcorr.data.assets import (
    CATEGORIES,
    Asset,
    FunctionalPart,
    asset_seed,
    categories_for,
    generate,
    load_mesh_asset,
    slug,
    supported_functions,
)
from funcorr.data.assets.mesh_io import MESH_SUFFIXES
from funcorr.data.groundtruth import FunctionalView, GTConfig, PairGT, functional_pairs, masked_view
from funcorr.data.manifest import read_manifest
from funcorr.data.render import (
    RenderedView,
    asset_cameras,
    background_color,
    backproject,
    multiview_correspondences,
    prepare,
    render_view,
)
from funcorr.files import confined, make_temp_dir, read_json
from funcorr.images import InputError, atomic_path, load_image, save_png_atomic

FORMAT_NAME = "funcorr-data"
FORMAT_VERSION = 1
SPLITS = ("train", "test", "unseen")
EVAL_SPLITS = ("test", "unseen")


@dataclass(frozen=True)
class DataConfig:
    """Everything that determines a dataset folder.

    functions: functions to cover (all procedural categories supporting any of them are
    generated); meshes: optional folder of real meshes (+ ``.parts.json`` sidecars), or a
    ``funcorr curate`` manifest.csv (categories and splits from its rows), added
    as extra assets; pairs_per_function: evaluation pairs per function and split (fewer
    when the pool cannot provide them); match_neighbours: for each training view, the
    number of nearest views (by camera direction) with stored multi-view correspondences;
    appearance: randomised textures, lights, cameras and backdrops
    (:mod:`funcorr.data.appearance`; ``background`` is then unused), None for the flat look
    (part colours, fixed lights and lens, ``background``).
    """

    functions: tuple[str, ...] = ("pour-with", "cut-with")
    assets_per_category: int = 8
    train_views: int = 19
    eval_views: int = 30
    image_size: int = 224
    seed: int = 0
    unseen_categories: tuple[str, ...] = ()
    test_fraction: float = 0.25
    pairs_per_function: int = 50
    across_fraction: float = 0.8
    pairs_per_asset_pair: int = 1
    background: str = "white"
    match_points: int = 256
    match_neighbours: int = 4
    meshes: str | None = None
    gt: GTConfig = field(default_factory=GTConfig)
    appearance: AppearanceConfig | None = None

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        if self.appearance is None:  # flat datasets keep the config.json they always had
            del data["appearance"]
        return data

    @staticmethod
    def from_json(data: dict) -> DataConfig:
        data = dict(data)
        data["gt"] = GTConfig(**data.get("gt", {}))
        for key in ("functions", "unseen_categories"):
            data[key] = tuple(data.get(key, ()))
        if data.get("appearance") is not None:
            data["appearance"] = AppearanceConfig.from_json(data["appearance"])
        return DataConfig(**data)


BENCHMARK_UNSEEN = ("watering can", "scoop", "awl", "coat hanger")

PRESETS: Mapping[str, DataConfig] = MappingProxyType(
    {
        # Seconds on 2 cores: README demo and tests.
        "tiny": DataConfig(
            functions=("pour-with", "cut-with"),
            assets_per_category=2,
            train_views=4,
            eval_views=10,
            unseen_categories=("watering can",),
            pairs_per_function=6,
            pairs_per_asset_pair=2,
            match_neighbours=2,
            match_points=128,
        ),
        # The paper-like benchmark: >= 1,000 test pairs, >= 80 % across categories (10 functions
        # x 110 pairs, 85 % across quota; 6 test instances per seen category).
        "benchmark": DataConfig(
            functions=(
                "pour-with",
                "cut-with",
                "scoop-with",
                "pound-with",
                "pierce-with",
                "poke-with",
                "scrape-with",
                "lift-with",
                "hang-onto",
                "spread-with",
            ),
            assets_per_category=16,
            test_fraction=0.375,
            train_views=19,
            eval_views=30,
            unseen_categories=BENCHMARK_UNSEEN,
            pairs_per_function=110,
            across_fraction=0.85,
            pairs_per_asset_pair=2,
        ),
        "default": DataConfig(),
        # The release training set: every function some procedural family supports (the list
        # grows with the families), randomised appearance, a held-out test split for pairs.
        # Seed 1, so no instance repeats one of the benchmark's (seed 0), and the benchmark's
        # unseen categories stay unseen: they go to this set's "unseen" split, never to "train".
        "train": DataConfig(
            functions=tuple(supported_functions()),
            seed=1,
            unseen_categories=BENCHMARK_UNSEEN,
            assets_per_category=8,
            train_views=12,
            eval_views=16,
            test_fraction=0.25,
            pairs_per_function=40,
            appearance=AppearanceConfig(),
        ),
    }
)


@dataclass(frozen=True)
class AssetPlan:
    """One asset to produce: procedural (category + seed) or a real mesh file."""

    asset_id: str
    category: str
    split: str
    seed: int
    n_views: int
    mesh_path: str | None = None

    def build(self) -> Asset:
        if self.mesh_path is not None:
            return load_mesh_asset(self.mesh_path, category=self.category, asset_id=self.asset_id)
        return generate(self.category, self.seed, asset_id=self.asset_id)


@dataclass(frozen=True)
class RealMesh:
    """A real mesh to add: its file, category, the functions its part labels declare, and the
    split a curation manifest assigned (None: split like procedural assets)."""

    path: str
    category: str
    functions: tuple[str, ...] = ()
    split: str | None = None


# ---------------------------------------------------------------------------------------
# Planning


def _split_for(index: int, count: int, category: str, config: DataConfig) -> str:
    if category in config.unseen_categories:
        return "unseen"
    n_test = max(1, round(config.test_fraction * count)) if count >= 2 else 0
    return "test" if index < n_test else "train"


def _mesh_files(folder: str) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"--meshes folder {root} does not exist.")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in MESH_SUFFIXES)
    if not files:
        raise InputError(f"No mesh files ({', '.join(MESH_SUFFIXES)}) in {root}.")
    return files


def plan_assets(config: DataConfig, meshes: Sequence[RealMesh] = ()) -> list[AssetPlan]:
    """All assets of a config, in a fixed order (procedural categories in registry order, then meshes).

    meshes: real meshes (from :func:`load_real_meshes`); a mesh keeps the split its manifest
    row gave it unless its category is listed in ``unseen_categories``.
    """
    wanted = [c for c in CATEGORIES if any(c in categories_for(f) for f in config.functions)]
    plans = []
    for category in wanted:
        for i in range(config.assets_per_category):
            split = _split_for(i, config.assets_per_category, category, config)
            n_views = config.train_views if split == "train" else config.eval_views
            plans.append(
                AssetPlan(f"{slug(category)}-{i:04d}", category, split, asset_seed(config.seed, category, i), n_views)
            )
    by_category: dict[str, list[RealMesh]] = {}
    for mesh in meshes:
        by_category.setdefault(mesh.category, []).append(mesh)
    for category, group in sorted(by_category.items()):
        for i, mesh in enumerate(sorted(group, key=lambda m: m.path)):
            split = _split_for(i, len(group), category, config)
            if mesh.split and category not in config.unseen_categories:
                split = mesh.split
            n_views = config.train_views if split == "train" else config.eval_views
            asset_id = f"mesh-{slug(Path(mesh.path).stem)}"
            seed = asset_seed(config.seed, category, i)
            plans.append(AssetPlan(asset_id, category, split, seed, n_views, mesh.path))
    ids = [p.asset_id for p in plans]
    if len(set(ids)) != len(ids):
        raise InputError("Two meshes share a file stem; rename them so asset ids are unique.")
    return plans


def load_real_meshes(source: str) -> list[RealMesh]:
    """Validate every real mesh up front (so a bad file fails before anything is written).

    source: a folder of meshes (category from each ``.parts.json`` sidecar, else the file
    stem) or a ``manifest.csv`` written by ``funcorr curate`` (category and split from its
    rows; a sidecar next to a mesh still supplies part labels and functions). A mesh without
    part labels is one part, "object", with no function: it is rendered and trains the
    multi-view loss, but has no functional part, so it is in no functional pair and no
    evaluation pair. Raises InputError naming the first unreadable file.
    """
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".csv":
        rows = read_manifest(path)
        missing = [row.uid for row in rows if not row.path]
        if missing:
            raise InputError(
                f"{path}: {len(missing)} row(s) have no mesh path (first: uid {missing[0]}); "
                "run `funcorr curate` with --meshes so the manifest names the files."
            )
        if not rows:
            raise InputError(f"{path} lists no assets.")
        entries = [(row.path, row.category, row.split) for row in rows]
    else:
        entries = [(str(file), None, None) for file in _mesh_files(source)]
    meshes = []
    for file, category, split in entries:
        asset = load_mesh_asset(file, category=category)
        meshes.append(RealMesh(file, asset.category, tuple(sorted(asset.functions)), split))
    return meshes


def _check_functions(config: DataConfig, meshes: Sequence[RealMesh]) -> None:
    """Every function must be supported by a procedural family or by a real mesh's labels,
    and every unseen category must exist among either."""
    supported = set(supported_functions()) | {f for mesh in meshes for f in mesh.functions}
    unknown = [f for f in config.functions if f not in supported]
    if unknown:
        raise InputError(
            f"No asset family or mesh supports {', '.join(unknown)}; "
            f"supported: {', '.join(sorted(supported))}."
        )
    known = set(CATEGORIES) | {mesh.category for mesh in meshes}
    bad = [c for c in config.unseen_categories if c not in known]
    if bad:
        raise InputError(f"Unknown unseen categories {bad}; known: {', '.join(sorted(known))}.")


# ---------------------------------------------------------------------------------------
# Writing one asset


def _fn_slug(function: str) -> str:
    return function.replace(" ", "_")


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def _save_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))


def _view_stem(view_id: int) -> str:
    return f"{view_id:04d}"


def _write_view(
    folder: Path,
    view_id: int,
    view: RenderedView,
    functions: dict[str, FunctionalPart],
    rgb_compression: int = 6,
) -> None:
    stem = folder / _view_stem(view_id)
    save_png_atomic(view.rgb, f"{stem}.png", rgb_compression)
    save_png_atomic((view.mask * 255).astype(np.uint8), f"{stem}.mask.png")
    # 8-bit labels unless a (real) mesh has more parts than that.
    label_type = np.uint8 if len(view.part_names) < 255 else np.uint16
    save_png_atomic((view.part_ids + 1).astype(label_type), f"{stem}.parts.png")
    for name, fp in functions.items():
        save_png_atomic((view.part_mask(fp.part) * 255).astype(np.uint8), f"{stem}.{_fn_slug(name)}.png")
    _save_npz(
        Path(f"{stem}.npz"),
        depth=view.depth,
        normals=view.normals.astype(np.float16),
        part_ids=view.part_ids,
        K=view.K,
        cam_to_world=view.cam_to_world,
    )


def _neighbour_pairs(views: list[RenderedView], k: int) -> list[tuple[int, int]]:
    """Unordered view pairs (i < j) linking each view to its k nearest views by camera direction."""
    dirs = np.array([v.cam_to_world[:3, 3] / np.linalg.norm(v.cam_to_world[:3, 3]) for v in views])
    similarity = dirs @ dirs.T
    pairs = set()
    for i in range(len(views)):
        order = [j for j in np.argsort(-similarity[i], kind="stable") if j != i][:k]
        pairs.update((min(i, j), max(i, j)) for j in order)
    return sorted(pairs)


def _matches(views: list[RenderedView], config: DataConfig, seed: int) -> dict[str, np.ndarray]:
    pairs, chunks = [], []
    for n, (i, j) in enumerate(_neighbour_pairs(views, config.match_neighbours)):
        corr = multiview_correspondences(views[i], views[j], config.match_points, seed=seed + n)
        if len(corr):
            pairs.append((i, j))
            chunks.append(corr)
    counts = [len(c) for c in chunks]
    return {
        "pairs": np.array(pairs, np.int16).reshape(-1, 2),
        "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
        "points": np.concatenate(chunks) if chunks else np.zeros((0, 2, 2), np.float32),
    }


def _asset_record(asset: Asset, plan: AssetPlan, views: list[RenderedView], size: int) -> dict:
    part_pixels = [np.bincount(v.part_ids[v.mask], minlength=len(asset.part_names)).tolist() for v in views]
    return {
        "asset_id": asset.asset_id,
        "category": asset.category,
        "split": plan.split,
        "seed": plan.seed,
        "source": Path(plan.mesh_path).name if plan.mesh_path else "procedural",
        "params": asset.params,
        "part_names": asset.part_names,
        "functions": {name: fp.to_json() for name, fp in asset.functions.items()},
        "n_views": len(views),
        "image_size": [size, size],
        "part_pixels": part_pixels,
    }


def write_asset(root: Path, plan: AssetPlan, config: DataConfig) -> None:
    """Build, render and write one asset folder atomically (temp folder + rename)."""
    asset = plan.build()
    size = (config.image_size, config.image_size)
    if config.appearance is not None:
        views = render_random_views(asset, plan.n_views, size, plan.seed, config.appearance)
    else:
        scene = prepare(asset)
        cameras = asset_cameras(asset, plan.n_views, size, seed=plan.seed)
        views = [
            render_view(scene, c.K, c.cam_to_world, size, config.background, plan.seed + i)
            for i, c in enumerate(cameras)
        ]
    final = root / "assets" / plan.asset_id
    tmp = make_temp_dir(root / "assets", prefix=f".{plan.asset_id}.")
    try:
        (tmp / "views").mkdir()
        # Randomised photos (textures, sensor noise) compress poorly: a faster zlib level.
        rgb_compression = 6 if config.appearance is None else 3
        for i, view in enumerate(views):
            _write_view(tmp / "views", i, view, asset.functions, rgb_compression)
        _save_npz(
            tmp / "mesh.npz",
            vertices=asset.mesh.vertices,
            faces=asset.mesh.faces.astype(np.int32),
            face_parts=asset.face_parts,
        )
        if plan.split == "train":
            _save_npz(tmp / "matches.npz", **_matches(views, config, plan.seed))
        _save_json(tmp / "asset.json", _asset_record(asset, plan, views, config.image_size))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------------------
# Reading stored views


def read_asset_record(root: Path, asset_id: str) -> dict:
    return read_json(confined(root / "assets", asset_id, "asset id") / "asset.json", "asset record")


def load_view(root: Path, asset_id: str, view_id: int, record: dict | None = None) -> RenderedView:
    """Rebuild a :class:`RenderedView` from disk (xyz back-projected from the stored depth)."""
    record = record or read_asset_record(root, asset_id)
    stem = root / "assets" / asset_id / "views" / _view_stem(view_id)
    with np.load(f"{stem}.npz") as data:
        depth, normals, part_ids = data["depth"], data["normals"].astype(np.float32), data["part_ids"]
        K, pose = data["K"], data["cam_to_world"]
    with Image.open(f"{stem}.png") as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    mask = depth > 0
    return RenderedView(
        rgb, depth, backproject(depth, K, pose), normals, mask, part_ids, list(record["part_names"]), K, pose
    )


def functional_views(root: Path, asset_id: str, function: str) -> tuple[FunctionalPart, list[FunctionalView]]:
    """The functional part of an asset and its visible pixels in every stored view."""
    record = read_asset_record(root, asset_id)
    part = FunctionalPart.from_json(record["functions"][function])
    part_id = record["part_names"].index(part.part)
    out = []
    for view_id in range(record["n_views"]):
        stem = root / "assets" / asset_id / "views" / _view_stem(view_id)
        with np.load(f"{stem}.npz") as data:
            depth, part_ids, K, pose = data["depth"], data["part_ids"], data["K"], data["cam_to_world"]
        out.append(masked_view(part_ids == part_id, backproject(depth, K, pose), view_id, pose))
    return part, out


# ---------------------------------------------------------------------------------------
# Evaluation pairs


def _pair_rng(config: DataConfig, split: str, function: str) -> np.random.Generator:
    return np.random.default_rng([config.seed, EVAL_SPLITS.index(split), zlib.crc32(function.encode())])


def _candidate_pairs(split: str, function: str, records: dict[str, dict]) -> tuple[list, list]:
    """(across, within) ordered asset-id pairs for a split and function."""
    supports = {a: r for a, r in records.items() if function in r["functions"]}
    first = [a for a, r in supports.items() if r["split"] == split]
    second_splits = ("unseen", "test") if split == "unseen" else ("test",)
    second = [a for a, r in supports.items() if r["split"] in second_splits]
    across = [(a, b) for a in first for b in second if supports[a]["category"] != supports[b]["category"]]
    within = [(a, b) for a in first for b in second if a != b and supports[a]["category"] == supports[b]["category"]]
    return across, within


def pairs_for_function(
    root: Path, split: str, records: dict[str, dict], config: DataConfig, function: str
) -> list[tuple[str, str, PairGT]]:
    """Evaluation pairs (asset1, asset2, ground truth) of one function and split, filling the
    across-/within-category quotas from randomly ordered candidate asset pairs."""
    rng = _pair_rng(config, split, function)
    cache: dict[str, tuple[FunctionalPart, list[FunctionalView]]] = {}
    across, within = _candidate_pairs(split, function, records)
    n_across = math.ceil(config.across_fraction * config.pairs_per_function)
    quotas = {"within": config.pairs_per_function - n_across if within else 0}
    quotas["across"] = config.pairs_per_function - quotas["within"]
    found = []
    for kind, candidates in (("across", across), ("within", within)):
        order = rng.permutation(len(candidates))
        taken = 0
        for k in order:
            if taken >= quotas[kind]:
                break
            a, b = candidates[k]
            for asset_id in (a, b):
                if asset_id not in cache:
                    cache[asset_id] = functional_views(root, asset_id, function)
            (p1, v1), (p2, v2) = cache[a], cache[b]
            wanted = min(config.pairs_per_asset_pair, quotas[kind] - taken)
            for gt in functional_pairs(p1, v1, p2, v2, config.gt, rng, n_pairs=wanted):
                found.append((a, b, gt))
                taken += 1
    return found


def write_pairs(
    root: Path,
    split: str,
    config: DataConfig,
    records: dict[str, dict],
    map_fn: Callable = map,
    progress: Callable[[Iterable], Iterable] = lambda x: x,
) -> int:
    """Compute and atomically write ``pairs/<split>.json`` + ``.npz``; returns the number of pairs.

    ``map_fn`` may be a process pool's map: functions are independent and their results
    are assembled in sorted order, so the files do not depend on it.
    """
    functions = sorted(config.functions)
    job = partial(pairs_for_function, root, split, records, config)
    entries, chunks, offset = [], [], 0
    for function, found in zip(functions, progress(map_fn(job, functions)), strict=True):
        for a, b, gt in found:
            n = len(gt.correspondences)
            entries.append(
                {
                    "pair_id": f"{split}-{len(entries):06d}",
                    "function": function,
                    "asset1": a,
                    "view1": gt.view1,
                    "category1": records[a]["category"],
                    "asset2": b,
                    "view2": gt.view2,
                    "category2": records[b]["category"],
                    "across_category": records[a]["category"] != records[b]["category"],
                    "offset": offset,
                    "count": n,
                    "transform": np.round(gt.transform, 10).tolist(),
                    "mean_distance": round(float(gt.distances.mean()), 8),
                }
            )
            chunks.append(gt.correspondences)
            offset += n
    corr = np.concatenate(chunks) if chunks else np.zeros((0, 2, 2), np.float32)
    _save_npz(root / "pairs" / f"{split}.npz", correspondences=corr)
    _save_json(root / "pairs" / f"{split}.json", {"format": FORMAT_NAME, "version": FORMAT_VERSION, "pairs": entries})
    return len(entries)


# ---------------------------------------------------------------------------------------
# Whole dataset


@dataclass(frozen=True)
class BuildReport:
    """What :func:`make_dataset` did: assets written / skipped (already there) and pairs per split."""

    written: int
    skipped: int
    pairs: dict[str, int]


def _check_config(root: Path, config: DataConfig) -> None:
    """Allow a new folder, an empty one, or a resume with identical settings."""
    path = root / "config.json"
    if not path.exists():
        if root.exists() and any(root.iterdir()):
            raise InputError(f"{root} exists and is not a funcorr dataset folder; choose an empty or new --out.")
        return
    stored = read_json(path, "dataset config")
    stored = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(stored, dict):
        raise InputError(f"{path} holds no dataset config; remove the folder or choose a new --out.")
    wanted = json.loads(json.dumps(config.to_json()))  # tuples -> lists, as stored
    if stored != wanted:
        changed = sorted(k for k, v in wanted.items() if stored.get(k) != v)
        raise InputError(
            f"{root} holds a dataset made with different settings ({', '.join(changed)}); "
            "use a new --out folder or the same options to resume."
        )


def _validate(config: DataConfig) -> None:
    if not config.meshes:  # with real meshes, checked once they are loaded
        _check_functions(config, ())
    try:
        background_color(config.background, 0)
    except ValueError as err:
        raise InputError(str(err)) from err
    if config.assets_per_category < (0 if config.meshes else 1):
        raise InputError("assets per category must be >= 1 (0 is allowed with real meshes only).")
    if config.train_views < 1 or config.eval_views < 1 or config.image_size < 8:
        raise InputError("view counts must be >= 1, image size >= 8.")
    if config.appearance is not None:
        config.appearance.validate()


def make_dataset(
    config: DataConfig,
    out: str | os.PathLike,
    progress: bool = True,
    workers: int = 1,
) -> BuildReport:
    """Create (or resume) a dataset folder; see the module docstring for the layout.

    Inputs are validated (real meshes included) before anything is written, so a bad
    input leaves no folder behind. Finished asset folders are skipped on resume;
    ``index.json`` is written last. ``workers`` > 1 renders assets and computes pairs
    in a process pool; the output is the same as with one worker.
    """
    from tqdm import tqdm  # noqa: PLC0415

    _validate(config)
    root = Path(out)
    _check_config(root, config)
    meshes = load_real_meshes(config.meshes) if config.meshes else []
    _check_functions(config, meshes)
    plans = plan_assets(config, meshes)

    (root / "assets").mkdir(parents=True, exist_ok=True)
    for stale in (root / "assets").glob(".*"):  # temp folders of an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    _save_json(root / "config.json", {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": config.to_json()})

    todo = [p for p in plans if not (root / "assets" / p.asset_id / "asset.json").exists()]
    with _pool(workers) as map_fn:
        jobs = map_fn(partial(write_asset, root, config=config), todo)
        for _ in tqdm(jobs, total=len(todo), desc="assets", unit="asset", disable=not progress):
            pass
        records = {p.asset_id: read_asset_record(root, p.asset_id) for p in plans}
        pair_counts = {}
        for split in EVAL_SPLITS:
            path = root / "pairs" / f"{split}.json"
            if path.exists():
                pair_counts[split] = len(json.loads(path.read_text())["pairs"])
                continue
            bar = partial(
                tqdm, total=len(config.functions), desc=f"{split} pairs", unit="function", disable=not progress
            )
            pair_counts[split] = write_pairs(root, split, config, records, map_fn, bar)
    _save_json(root / "index.json", _index(config, plans, records, root))
    return BuildReport(len(todo), len(plans) - len(todo), pair_counts)


@contextmanager
def _pool(workers: int) -> Iterator[Callable]:
    """A ``map`` running in ``workers`` processes (the built-in map for one worker)."""
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers) as executor:
        yield executor.map


def _index(config: DataConfig, plans: list[AssetPlan], records: dict[str, dict], root: Path) -> dict:
    pairs = {}
    for split in EVAL_SPLITS:
        entries = json.loads((root / "pairs" / f"{split}.json").read_text())["pairs"]
        pairs[split] = {
            "file": f"pairs/{split}.json",
            "count": len(entries),
            "across_category": sum(e["across_category"] for e in entries),
            "per_function": {f: sum(e["function"] == f for e in entries) for f in sorted(config.functions)},
        }
    functions = sorted({f for r in records.values() for f in r["functions"]})
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "image_size": [config.image_size, config.image_size],
        "functions": {f: sorted({r["category"] for r in records.values() if f in r["functions"]}) for f in functions},
        "splits": {s: [p.asset_id for p in plans if p.split == s] for s in SPLITS},
        "assets": {
            p.asset_id: {
                "category": p.category,
                "split": p.split,
                "n_views": records[p.asset_id]["n_views"],
                "functions": {f: v["part"] for f, v in records[p.asset_id]["functions"].items()},
                "path": f"assets/{p.asset_id}",
            }
            for p in plans
        },
        "pairs": pairs,
    }


# ---------------------------------------------------------------------------------------
# PyTorch datasets


def read_index(root: str | os.PathLike) -> dict:
    """index.json of a complete dataset; InputError explains missing, unfinished or newer folders."""
    root = Path(root)
    path = root / "index.json"
    if not path.exists():
        hint = (
            " (unfinished: run make-data again with the same options to complete it)"
            if (root / "config.json").exists()
            else ""
        )
        raise InputError(f"{root} is not a funcorr dataset: no index.json{hint}.")
    index = read_json(path, "dataset index")
    if not isinstance(index, dict) or index.get("format") != FORMAT_NAME:
        raise InputError(f"{path} is not a funcorr dataset index (no format {FORMAT_NAME!r}).")
    if not isinstance(index.get("version"), int) or index["version"] > FORMAT_VERSION:
        raise InputError(f"{path}: unsupported dataset format version {index.get('version')!r}.")
    _check_index(root, index, path)
    return index


def _check_index(root: Path, index: dict, path: Path) -> None:
    """Asset ids name folders under ``assets/``: each must stay inside it, and every split
    lists known assets only, so readers may join ids onto the root without further checks."""
    assets, splits = index.get("assets"), index.get("splits")
    if not isinstance(assets, dict) or not isinstance(splits, dict):
        raise InputError(f"{path} lacks its 'assets' or 'splits' table.")
    for asset_id, info in assets.items():
        confined(root / "assets", asset_id, "asset id")
        if not isinstance(info, dict) or not _count(info.get("n_views")):
            raise InputError(f"{path}: asset {asset_id!r} has no valid n_views.")
    for split, members in splits.items():
        unknown = [a for a in members if a not in assets] if isinstance(members, list) else [members]
        if unknown:
            raise InputError(f"{path}: split {split!r} lists unknown assets {unknown[:3]}.")


def _count(value: object) -> bool:
    """A JSON integer >= 1 (not a bool, not a float such as 1e9)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _read_eval_pairs(root: Path, split: str, index: dict) -> tuple[list[dict], np.ndarray]:
    """Pair records and correspondence rows of a split, each record checked against the index
    and the rows, so a hand-edited record can neither read outside the dataset nor claim
    rows or views that do not exist."""
    path = root / "pairs" / f"{split}.json"
    document = read_json(path, "pair list")
    pairs = document.get("pairs") if isinstance(document, dict) else None
    if not isinstance(pairs, list):
        raise InputError(f"{path} has no 'pairs' list.")
    npz = root / "pairs" / f"{split}.npz"
    try:
        with np.load(npz, allow_pickle=False) as data:
            corr = data["correspondences"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise InputError(f"Cannot read the correspondences {npz} ({type(err).__name__}: {err}); the file is damaged.") from None
    assets = index["assets"]
    for number, pair in enumerate(pairs):
        where = f"{path}, pair {number}"
        if not isinstance(pair, dict):
            raise InputError(f"{where} is not a record.")
        for asset_key, view_key in (("asset1", "view1"), ("asset2", "view2")):
            asset, view = pair.get(asset_key), pair.get(view_key)
            if not isinstance(asset, str) or asset not in assets:
                raise InputError(f"{where}: {asset_key} {asset!r} is not an asset of this dataset.")
            if not (isinstance(view, int) and not isinstance(view, bool) and 0 <= view < assets[asset]["n_views"]):
                raise InputError(f"{where}: {view_key} {view!r} is not a view of {asset}.")
        offset, count = pair.get("offset"), pair.get("count")
        if not (_count(count) and isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0):
            raise InputError(f"{where}: offset {offset!r} and count {count!r} must be integers (count >= 1).")
        if offset + count > len(corr):
            raise InputError(f"{where} claims rows {offset}..{offset + count} but {npz} holds {len(corr)}.")
        if not isinstance(pair.get("function"), str):
            raise InputError(f"{where} names no function.")
    return pairs, corr


def _read_mask(path: Path) -> torch.Tensor:
    with Image.open(path) as im:
        return torch.from_numpy(np.asarray(im) > 0)


def functional_mask(item: dict, function: str) -> torch.Tensor:
    """(H, W) bool pixels of the part performing ``function`` in a TrainViews item (all False if unsupported)."""
    masks = item["functional_masks"]
    return masks[function] if function in masks else torch.zeros_like(item["mask"])


class TrainViews(Dataset):
    """Rendered views of one split's assets (default: training assets).

    Item: image (3, H, W) float [0, 1], mask (H, W) bool, part_ids (H, W) int64 (-1
    background), xyz (H, W, 3) float32 object frame (NaN background), asset_id,
    category, view_id, functional_masks {function: (H, W) bool} for the functions the
    asset supports. Items differ in their mask dicts, so batch with :func:`collate`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train"):
        if split not in SPLITS:
            raise InputError(f"Unknown split {split!r}; use one of {SPLITS}.")
        self.root = Path(root)
        self.index = read_index(self.root)
        self.split = split
        self.asset_ids = list(self.index["splits"][split])
        self.items = [(a, v) for a in self.asset_ids for v in range(self.index["assets"][a]["n_views"])]
        self._records = {a: read_asset_record(self.root, a) for a in self.asset_ids}

    def __len__(self) -> int:
        return len(self.items)

    def asset_info(self, asset_id: str) -> dict:
        """The asset.json record (part_names, functions with frames, params, ...)."""
        return self._records[asset_id]

    def views_of(self, asset_id: str) -> list[int]:
        """Dataset indices of all views of one asset (for same-asset pairs)."""
        return [i for i, (a, _) in enumerate(self.items) if a == asset_id]

    def assets_for(self, function: str) -> list[str]:
        """Asset ids of this split supporting ``function`` (for same-function pairs)."""
        return [a for a in self.asset_ids if function in self._records[a]["functions"]]

    def correspondences(
        self, asset_id: str, view_a: int, view_b: int, max_points: int = 256, seed: int = 0
    ) -> np.ndarray:
        """Multi-view correspondences (N, 2, 2) between two views of an asset: stored ones when
        available (swapped to the requested order), otherwise computed from the stored depth."""
        path = self.root / "assets" / asset_id / "matches.npz"
        if path.exists():
            with np.load(path) as data:
                pairs, offsets = data["pairs"], data["offsets"]
                for k, (i, j) in enumerate(pairs.tolist()):
                    if {i, j} == {view_a, view_b}:
                        points = data["points"][offsets[k] : offsets[k + 1]]
                        return points if i == view_a else points[:, ::-1].copy()
        record = self._records[asset_id]
        a = load_view(self.root, asset_id, view_a, record)
        b = load_view(self.root, asset_id, view_b, record)
        return multiview_correspondences(a, b, max_points, seed=seed)

    def __getitem__(self, index: int) -> dict:
        asset_id, view_id = self.items[index]
        record = self._records[asset_id]
        stem = self.root / "assets" / asset_id / "views" / _view_stem(view_id)
        with np.load(f"{stem}.npz") as data:
            depth, part_ids, K, pose = data["depth"], data["part_ids"], data["K"], data["cam_to_world"]
        return {
            "image": load_image(f"{stem}.png").rgb,
            "mask": torch.from_numpy(depth > 0),
            "part_ids": torch.from_numpy(part_ids.astype(np.int64)),
            "xyz": torch.from_numpy(backproject(depth, K, pose)),
            "asset_id": asset_id,
            "category": record["category"],
            "view_id": view_id,
            "functional_masks": {f: _read_mask(Path(f"{stem}.{_fn_slug(f)}.png")) for f in record["functions"]},
        }


class EvalPairs(Dataset):
    """Functional evaluation pairs of split ``test`` or ``unseen``.

    Item: image1, image2 (3, H, W) float [0, 1]; mask1, mask2 (H, W) bool object masks;
    part_mask1, part_mask2 (H, W) bool functional-part masks; function; correspondences
    (N, 2, 2) float32 pixel xy ([:, 0] image 1, [:, 1] image 2); category1, category2;
    across_category; pair_id. N varies: batch with :func:`collate`.
    """

    def __init__(self, root: str | os.PathLike, split: str = "test"):
        if split not in EVAL_SPLITS:
            raise InputError(f"Unknown evaluation split {split!r}; use one of {EVAL_SPLITS}.")
        self.root = Path(root)
        self.index = read_index(self.root)
        self.pairs, self._corr = _read_eval_pairs(self.root, split, self.index)

    def __len__(self) -> int:
        return len(self.pairs)

    def find(self, pair_id: str) -> int:
        """Index of a pair id; InputError when absent."""
        for i, p in enumerate(self.pairs):
            if p["pair_id"] == pair_id:
                return i
        raise InputError(f"No pair {pair_id!r} in {self.root}.")

    def _view(self, asset_id: str, view_id: int, function: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stem = self.root / "assets" / asset_id / "views" / _view_stem(view_id)
        image = load_image(f"{stem}.png").rgb
        return image, _read_mask(Path(f"{stem}.mask.png")), _read_mask(Path(f"{stem}.{_fn_slug(function)}.png"))

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        image1, mask1, part1 = self._view(pair["asset1"], pair["view1"], pair["function"])
        image2, mask2, part2 = self._view(pair["asset2"], pair["view2"], pair["function"])
        corr = self._corr[pair["offset"] : pair["offset"] + pair["count"]]
        return {
            "image1": image1,
            "image2": image2,
            "mask1": mask1,
            "mask2": mask2,
            "part_mask1": part1,
            "part_mask2": part2,
            "function": pair["function"],
            "correspondences": torch.from_numpy(np.ascontiguousarray(corr)),
            "category1": pair["category1"],
            "category2": pair["category2"],
            "across_category": bool(pair["across_category"]),
            "pair_id": pair["pair_id"],
        }


def collate(batch: list[dict]) -> dict:
    """Batch items: tensors of equal shape are stacked, everything else becomes a list."""
    out = {}
    for key in batch[0]:
        values = [item[key] for item in batch]
        if isinstance(values[0], torch.Tensor) and all(v.shape == values[0].shape for v in values):
            out[key] = torch.stack(values)
        else:
            out[key] = values
    return out

"""Building a dataset folder: plan the assets, render and write each one atomically, compute
the evaluation pairs (:mod:`funcorr.data.pairs`), write the index last.

One idea at about 450 lines: producing a dataset folder, from the asset plan through the atomic
asset writes to the index; the pieces only make sense in this order and share the resume checks.

The layout is documented in :mod:`funcorr.data.format`. Every file is a deterministic
function of the config (same config => byte-identical folder), with one worker or many.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from funcorr.data.appearance import render_random_views
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
from funcorr.data.format import (
    EVAL_SPLITS,
    FORMAT_NAME,
    FORMAT_VERSION,
    SPLITS,
    DataConfig,
    function_slug,
    save_json,
    save_npz,
    view_stem,
)
from funcorr.data.manifest import read_manifest
from funcorr.data.pairs import write_pairs
from funcorr.data.readers import read_asset_record
from funcorr.data.render import (
    RenderedView,
    asset_cameras,
    background_color,
    multiview_correspondences,
    prepare,
    render_view,
)
from funcorr.files import make_temp_dir, read_json
from funcorr.images import InputError, save_png_atomic


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
                AssetPlan(
                    f"{slug(category)}-{i:04d}",
                    category,
                    split,
                    asset_seed(config.seed, category, i),
                    n_views,
                )
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


def _write_view(
    folder: Path,
    view_id: int,
    view: RenderedView,
    functions: dict[str, FunctionalPart],
    rgb_compression: int = 6,
) -> None:
    stem = folder / view_stem(view_id)
    save_png_atomic(view.rgb, f"{stem}.png", rgb_compression)
    save_png_atomic((view.mask * 255).astype(np.uint8), f"{stem}.mask.png")
    # 8-bit labels unless a (real) mesh has more parts than that.
    label_type = np.uint8 if len(view.part_names) < 255 else np.uint16
    save_png_atomic((view.part_ids + 1).astype(label_type), f"{stem}.parts.png")
    for name, fp in functions.items():
        save_png_atomic(
            (view.part_mask(fp.part) * 255).astype(np.uint8), f"{stem}.{function_slug(name)}.png"
        )
    save_npz(
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
    part_pixels = [
        np.bincount(v.part_ids[v.mask], minlength=len(asset.part_names)).tolist() for v in views
    ]
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
        save_npz(
            tmp / "mesh.npz",
            vertices=asset.mesh.vertices,
            faces=asset.mesh.faces.astype(np.int32),
            face_parts=asset.face_parts,
        )
        if plan.split == "train":
            save_npz(tmp / "matches.npz", **_matches(views, config, plan.seed))
        save_json(tmp / "asset.json", _asset_record(asset, plan, views, config.image_size))
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


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
            raise InputError(
                f"{root} exists and is not a funcorr dataset folder; choose an empty or new --out."
            )
        return
    stored = read_json(path, "dataset config")
    stored = stored.get("config") if isinstance(stored, dict) else None
    if not isinstance(stored, dict):
        raise InputError(
            f"{path} holds no dataset config; remove the folder or choose a new --out."
        )
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
    save_json(
        root / "config.json",
        {"format": FORMAT_NAME, "version": FORMAT_VERSION, "config": config.to_json()},
    )

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
                tqdm,
                total=len(config.functions),
                desc=f"{split} pairs",
                unit="function",
                disable=not progress,
            )
            pair_counts[split] = write_pairs(root, split, config, records, map_fn, bar)
    save_json(root / "index.json", _index(config, plans, records, root))
    return BuildReport(len(todo), len(plans) - len(todo), pair_counts)


@contextmanager
def _pool(workers: int) -> Iterator[Callable]:
    """A ``map`` running in ``workers`` processes (the built-in map for one worker)."""
    if workers <= 1:
        yield map
        return
    with ProcessPoolExecutor(workers) as executor:
        yield executor.map


def _index(
    config: DataConfig, plans: list[AssetPlan], records: dict[str, dict], root: Path
) -> dict:
    pairs = {}
    for split in EVAL_SPLITS:
        entries = json.loads((root / "pairs" / f"{split}.json").read_text())["pairs"]
        pairs[split] = {
            "file": f"pairs/{split}.json",
            "count": len(entries),
            "across_category": sum(e["across_category"] for e in entries),
            "per_function": {
                f: sum(e["function"] == f for e in entries) for f in sorted(config.functions)
            },
        }
    functions = sorted({f for r in records.values() for f in r["functions"]})
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "image_size": [config.image_size, config.image_size],
        "functions": {
            f: sorted({r["category"] for r in records.values() if f in r["functions"]})
            for f in functions
        },
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

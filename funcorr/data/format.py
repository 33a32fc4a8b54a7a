"""The dataset folder format: its layout, the config that determines it, and the presets.

Writing lives in :mod:`funcorr.data.build` (assets) and :mod:`funcorr.data.pairs`
(evaluation pairs); reading in :mod:`funcorr.data.readers`.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from funcorr.data.appearance import AppearanceConfig
from funcorr.data.assets import supported_functions
from funcorr.data.groundtruth import GTConfig
from funcorr.images import atomic_path

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


def function_slug(function: str) -> str:
    """A function name as it appears in file names ("hang onto" -> "hang_onto")."""
    return function.replace(" ", "_")


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Compressed arrays, written atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def save_json(path: Path, data: dict) -> None:
    """Sorted-key JSON, written atomically (byte-identical for equal data)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))


def view_stem(view_id: int) -> str:
    """File stem of a stored view: ``views/<stem>.png`` and its siblings."""
    return f"{view_id:04d}"

"""Functional evaluation pairs of a dataset folder: pick asset pairs per function and split
(across/within-category quotas, seeded), compute their ground truth
(:func:`funcorr.data.groundtruth.functional_pairs`), write ``pairs/<split>.json`` + ``.npz``."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np

from funcorr.data.assets import FunctionalPart
from funcorr.data.format import (
    EVAL_SPLITS,
    FORMAT_NAME,
    FORMAT_VERSION,
    DataConfig,
    save_json,
    save_npz,
)
from funcorr.data.groundtruth import FunctionalView, PairGT, functional_pairs, masked_view
from funcorr.data.readers import read_asset_record, view_geometry
from funcorr.data.render import backproject


def functional_views(
    root: Path, asset_id: str, function: str
) -> tuple[FunctionalPart, list[FunctionalView]]:
    """The functional part of an asset and its visible pixels in every stored view."""
    record = read_asset_record(root, asset_id)
    part = FunctionalPart.from_json(record["functions"][function])
    part_id = record["part_names"].index(part.part)
    out = []
    for view_id in range(record["n_views"]):
        depth, part_ids, K, pose = view_geometry(root, asset_id, view_id)
        out.append(masked_view(part_ids == part_id, backproject(depth, K, pose), view_id, pose))
    return part, out


def _pair_rng(config: DataConfig, split: str, function: str) -> np.random.Generator:
    return np.random.default_rng(
        [config.seed, EVAL_SPLITS.index(split), zlib.crc32(function.encode())]
    )


def _candidate_pairs(split: str, function: str, records: dict[str, dict]) -> tuple[list, list]:
    """(across, within) ordered asset-id pairs for a split and function."""
    supports = {a: r for a, r in records.items() if function in r["functions"]}
    first = [a for a, r in supports.items() if r["split"] == split]
    second_splits = ("unseen", "test") if split == "unseen" else ("test",)
    second = [a for a, r in supports.items() if r["split"] in second_splits]
    across = [
        (a, b) for a in first for b in second if supports[a]["category"] != supports[b]["category"]
    ]
    within = [
        (a, b)
        for a in first
        for b in second
        if a != b and supports[a]["category"] == supports[b]["category"]
    ]
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
    save_npz(root / "pairs" / f"{split}.npz", correspondences=corr)
    save_json(
        root / "pairs" / f"{split}.json",
        {"format": FORMAT_NAME, "version": FORMAT_VERSION, "pairs": entries},
    )
    return len(entries)

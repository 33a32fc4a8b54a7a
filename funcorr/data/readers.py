"""Reading a dataset folder: its index, asset records and stored views, and the PyTorch
datasets :class:`TrainViews` (training views) and :class:`EvalPairs` (evaluation pairs).

Every id read from a file is checked to stay inside the dataset before it is joined onto a
path (layout: :mod:`funcorr.data.format`)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from funcorr.data.format import (
    EVAL_SPLITS,
    FORMAT_NAME,
    FORMAT_VERSION,
    SPLITS,
    function_slug,
    view_stem,
)
from funcorr.data.render import RenderedView, backproject, multiview_correspondences
from funcorr.files import confined, read_json
from funcorr.images import InputError, load_image


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
        unknown = (
            [a for a in members if a not in assets] if isinstance(members, list) else [members]
        )
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
        raise InputError(
            f"Cannot read the correspondences {npz} ({type(err).__name__}: {err}); the file is damaged."
        ) from None
    assets = index["assets"]
    for number, pair in enumerate(pairs):
        where = f"{path}, pair {number}"
        if not isinstance(pair, dict):
            raise InputError(f"{where} is not a record.")
        for asset_key, view_key in (("asset1", "view1"), ("asset2", "view2")):
            asset, view = pair.get(asset_key), pair.get(view_key)
            if not isinstance(asset, str) or asset not in assets:
                raise InputError(f"{where}: {asset_key} {asset!r} is not an asset of this dataset.")
            if not (
                isinstance(view, int)
                and not isinstance(view, bool)
                and 0 <= view < assets[asset]["n_views"]
            ):
                raise InputError(f"{where}: {view_key} {view!r} is not a view of {asset}.")
        offset, count = pair.get("offset"), pair.get("count")
        if not (
            _count(count)
            and isinstance(offset, int)
            and not isinstance(offset, bool)
            and offset >= 0
        ):
            raise InputError(
                f"{where}: offset {offset!r} and count {count!r} must be integers (count >= 1)."
            )
        if offset + count > len(corr):
            raise InputError(
                f"{where} claims rows {offset}..{offset + count} but {npz} holds {len(corr)}."
            )
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
        self.items = [
            (a, v) for a in self.asset_ids for v in range(self.index["assets"][a]["n_views"])
        ]
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
        stem = self.root / "assets" / asset_id / "views" / view_stem(view_id)
        depth, part_ids, K, pose = view_geometry(self.root, asset_id, view_id)
        return {
            "image": load_image(f"{stem}.png").rgb,
            "mask": torch.from_numpy(depth > 0),
            "part_ids": torch.from_numpy(part_ids.astype(np.int64)),
            "xyz": torch.from_numpy(backproject(depth, K, pose)),
            "asset_id": asset_id,
            "category": record["category"],
            "view_id": view_id,
            "functional_masks": {
                f: _read_mask(Path(f"{stem}.{function_slug(f)}.png")) for f in record["functions"]
            },
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

    def _view(
        self, asset_id: str, view_id: int, function: str
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        stem = self.root / "assets" / asset_id / "views" / view_stem(view_id)
        image = load_image(f"{stem}.png").rgb
        return (
            image,
            _read_mask(Path(f"{stem}.mask.png")),
            _read_mask(Path(f"{stem}.{function_slug(function)}.png")),
        )

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


def read_asset_record(root: Path, asset_id: str) -> dict:
    return read_json(confined(root / "assets", asset_id, "asset id") / "asset.json", "asset record")


def view_geometry(
    root: Path, asset_id: str, view_id: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """depth (H, W), part_ids (H, W), K (3, 3) and cam_to_world (4, 4) of a stored view."""
    stem = root / "assets" / asset_id / "views" / view_stem(view_id)
    with np.load(f"{stem}.npz") as data:
        return data["depth"], data["part_ids"], data["K"], data["cam_to_world"]


def load_view(root: Path, asset_id: str, view_id: int, record: dict | None = None) -> RenderedView:
    """Rebuild a :class:`RenderedView` from disk (xyz back-projected from the stored depth)."""
    record = record or read_asset_record(root, asset_id)
    stem = root / "assets" / asset_id / "views" / view_stem(view_id)
    with np.load(f"{stem}.npz") as data:
        depth, normals, part_ids = (
            data["depth"],
            data["normals"].astype(np.float32),
            data["part_ids"],
        )
        K, pose = data["K"], data["cam_to_world"]
    with Image.open(f"{stem}.png") as im:
        rgb = np.asarray(im.convert("RGB")).copy()
    mask = depth > 0
    return RenderedView(
        rgb,
        depth,
        backproject(depth, K, pose),
        normals,
        mask,
        part_ids,
        list(record["part_names"]),
        K,
        pose,
    )

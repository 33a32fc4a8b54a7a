"""SOCO's on-disk layout (GenIntel/SOCO ``docs/dataset_structure.md``, ``soco/data.py``).

After extraction a SOCOv1 root holds::

    Images/<category>/*.JPEG
    KeypointAnnotations/<category>/*.json
    PairAnnotations/intra/<category>/*.json            within-category pairs (SOC, CC)
    PairAnnotations/cross/<pair-group>/*.json          across categories (Cross-SOC)
    PairAnnotations/trainsplits/{train,test}/<category>/*.json   subsets of intra, for probes
    Metadata/keypoint_taxonomy.json, Metadata/filename_mapping.json

Each pair JSON is self-contained: ``pair_id``, ``pair_group`` (the aggregation group),
``src_category``/``trg_category`` (else ``category``), ``src_image``/``trg_image`` (names under
``Images/<category>/``), ``src_imsize``/``trg_imsize`` ([width, height]),
``src_bndbox``/``trg_bndbox`` ([left, top, right, bottom]), ``src_keypoints``/``trg_keypoints``
(visible points: ``id``, unique ``name``, ``pos`` [x, y] in original unpadded pixels,
``concept_id``, ``concept_name``, and optionally ``kind`` and ``shared``), ``semantic_overlap``
(names with the same object-relative identity in both views: SOC) and ``concept_matches``
(groups of source and target names for one local concept: CC, one-to-many).

:class:`SOCOPairs` reads any of the four pair sets lazily, in a deterministic (sorted) order,
into funcorr's :class:`~funcorr.eval.keypoint_pairs.KeypointPair` records, which every keypoint
evaluation (funcorr's and SOCO's protocol) consumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from funcorr.eval.keypoint_pairs import (
    Keypoint,
    KeypointPair,
    KeypointView,
    LazyPairs,
    Match,
    PairType,
    parse_bbox,
    read_json,
)
from funcorr.files import confined
from funcorr.images import InputError

SOCOSplit = Literal["intra", "cross", "train", "test"]

PAIR_DIRS: dict[str, Path] = {
    "intra": Path("PairAnnotations/intra"),
    "cross": Path("PairAnnotations/cross"),
    "train": Path("PairAnnotations/trainsplits/train"),
    "test": Path("PairAnnotations/trainsplits/test"),
}


class SOCOPairs(LazyPairs):
    """The pairs of one SOCO pair set, parsed on access.

    pair_type: ``intra``, ``cross`` or the probe splits ``train`` / ``test`` (intra-category
    subsets); categories: pair groups to keep (default all, sorted); max_pairs_per_category:
    the first that many pairs of each group (None or 0: all, as SOCO's loader).
    """

    def __init__(
        self,
        root: str | Path,
        pair_type: SOCOSplit = "intra",
        categories: Sequence[str] | None = None,
        max_pairs_per_category: int | None = None,
    ) -> None:
        self.root = Path(root).expanduser()
        if pair_type not in PAIR_DIRS:
            raise InputError(f"pair_type must be one of {', '.join(PAIR_DIRS)}, got {pair_type!r}.")
        if max_pairs_per_category is not None and max_pairs_per_category < 0:
            raise InputError("max_pairs_per_category must be 0 (all) or positive.")
        self.split: SOCOSplit = pair_type
        # The probe splits are subsets of the within-category pairs.
        self.pair_type: PairType = "cross" if pair_type == "cross" else "intra"
        self.image_root = self.root / "Images"
        self.pair_root = self.root / PAIR_DIRS[pair_type]
        if not self.image_root.is_dir():
            raise InputError(f"Missing SOCO image directory {self.image_root}.")
        if not self.pair_root.is_dir():
            raise InputError(f"Missing SOCO pair directory {self.pair_root}.")
        available = sorted(p.name for p in self.pair_root.iterdir() if p.is_dir())
        self.categories = tuple(categories) if categories else tuple(available)
        unknown = sorted(set(self.categories) - set(available))
        if unknown:
            raise InputError(
                f"Unknown SOCO {pair_type} groups: {', '.join(unknown)} (found {', '.join(available)})."
            )
        limit = max_pairs_per_category or None
        paths: list[Path] = []
        for group in self.categories:
            files = sorted((self.pair_root / group).glob("*.json"))
            paths.extend(files[:limit])
        self.annotation_paths = tuple(paths)

    def __len__(self) -> int:
        return len(self.annotation_paths)

    def _pair(self, index: int) -> KeypointPair:
        path = self.annotation_paths[index]
        return parse_soco_pair(read_json(path), self.root, self.pair_type, path)


def _keypoints(items: Sequence[Mapping[str, Any]], where: str) -> tuple[Keypoint, ...]:
    points = []
    for item in items:
        try:
            x, y = (float(v) for v in item["pos"])
            points.append(
                Keypoint(
                    int(item["id"]),
                    str(item["name"]),
                    (x, y),
                    int(item["concept_id"]) if item.get("concept_id") is not None else None,
                    item.get("concept_name"),
                    item.get("kind"),
                    bool(item["shared"]) if item.get("shared") is not None else None,
                )
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InputError(
                f"{where}: a keypoint needs id, name and pos [x, y] ({err!r} in {dict(item)!r})."
            ) from err
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise InputError(f"{where}: keypoint names must be unique within a view.")
    return tuple(points)


def _indices(
    names: Sequence[Any], index: Mapping[str, int], where: str, role: str
) -> tuple[int, ...]:
    missing = [str(n) for n in names if str(n) not in index]
    if missing:
        raise InputError(
            f"{where}: {role} keypoints {', '.join(missing)} are not among the visible keypoints."
        )
    return tuple(index[str(n)] for n in names)


def _size(value: Sequence[float] | None) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))


def _view(
    root: Path, data: Mapping[str, Any], side: str, category: str, points: tuple[Keypoint, ...]
) -> KeypointView:
    """One side (``src`` / ``trg``) of a SOCO pair. Names from the annotation stay inside
    Images/ (no absolute paths, no ..)."""
    image = Path(category, str(data[f"{side}_image"]))
    return KeypointView(
        category,
        confined(root / "Images", image, "image path", follow_links=False),
        parse_bbox(data.get(f"{side}_bndbox")),
        points,
        _size(data.get(f"{side}_imsize")),
    )


def parse_soco_pair(
    data: Mapping[str, Any], root: Path, pair_type: PairType, path: Path | None = None
) -> KeypointPair:
    """One SOCO pair JSON -> :class:`KeypointPair` (keypoint names resolved to indices)."""
    where = str(path) if path is not None else "SOCO pair"
    default = data.get("category")
    src_category = str(data.get("src_category") or default)
    trg_category = str(data.get("trg_category") or default)
    src_points = _keypoints(data["src_keypoints"], where)
    trg_points = _keypoints(data["trg_keypoints"], where)
    src_index = {k.name: i for i, k in enumerate(src_points)}
    trg_index = {k.name: i for i, k in enumerate(trg_points)}
    semantic = tuple(
        Match(
            str(name),
            _indices([name], src_index, where, "semantic_overlap"),
            _indices([name], trg_index, where, "semantic_overlap"),
        )
        for name in data.get("semantic_overlap", ())
    )
    concept = tuple(
        Match(
            str(group.get("concept_name", "")),
            _indices(group.get("src_keypoints", ()), src_index, where, "concept source"),
            _indices(group.get("trg_keypoints", ()), trg_index, where, "concept target"),
        )
        for group in data.get("concept_matches", ())
    )
    source = _view(root, data, "src", src_category, src_points)
    target = _view(root, data, "trg", trg_category, trg_points)
    group = str(data.get("pair_group") or default or trg_category)
    pair_id = str(data.get("pair_id", path.stem if path else ""))
    concept = tuple(m for m in concept if m.source_indices and m.target_indices)
    return KeypointPair(pair_id, pair_type, group, source, target, semantic, concept, False, path)


def load_keypoint_taxonomy(root: str | Path) -> Mapping[str, Any]:
    """``Metadata/keypoint_taxonomy.json``: categories, concepts, keypoints, inheritance, templates."""
    return read_json(Path(root).expanduser() / "Metadata" / "keypoint_taxonomy.json")


def load_filename_mapping(root: str | Path) -> Mapping[str, Any]:
    """``Metadata/filename_mapping.json``: source dataset file names -> SOCO's normalised names."""
    return read_json(Path(root).expanduser() / "Metadata" / "filename_mapping.json")

"""SPair-71k keypoint pairs, read lazily: a ``pairs.json`` list (spair-mini) or SPair-71k's
``PairAnnotation/<split>/*.json``, into :class:`~funcorr.eval.keypoint_pairs.KeypointPair`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from funcorr.eval.keypoint_pairs import (
    Keypoint,
    KeypointPair,
    KeypointView,
    LazyPairs,
    Match,
    parse_bbox,
    read_json,
    resolve_image,
)
from funcorr.images import InputError

#: PASCAL VOC super-categories, which SPair-71k's 18 categories inherit.
SPAIR_SUPER_CATEGORIES: dict[str, str] = {
    **{c: "vehicle" for c in ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train")},
    **{c: "animal" for c in ("bird", "cat", "cow", "dog", "horse", "sheep")},
    **{c: "indoor" for c in ("bottle", "chair", "pottedplant", "tvmonitor")},
    "person": "person",
}


def _aligned_matches(count: int, names: Sequence[str] | None = None) -> tuple[Match, ...]:
    """SPair lists keypoints in corresponding order: source i matches target i."""
    return tuple(Match(str(names[i]) if names else str(i), (i,), (i,)) for i in range(count))


def _plain_keypoints(
    points: Sequence[Sequence[float]], names: Sequence[Any] | None = None
) -> tuple[Keypoint, ...]:
    return tuple(
        Keypoint(i, str(names[i]) if names else str(i), (float(p[0]), float(p[1])))
        for i, p in enumerate(points)
    )


class SPairPairs(LazyPairs):
    """SPair-71k pairs, lazily: either a ``pairs.json`` list (spair-mini style: ``source_path``,
    ``source_points``, ``source_bounding_box``, ...) or SPair-71k's ``PairAnnotation/<split>/*.json``
    (``src_imname``, ``src_kps``, ``src_bndbox``, ...). SPair has no concept labels, so only SOC
    is defined (``concept_matches`` is empty)."""

    def __init__(
        self,
        root: str | Path,
        split: str = "test",
        pairs_file: str | Path | None = None,
        categories: Sequence[str] | None = None,
        max_pairs: int | None = None,
        allow_abs: bool = False,
    ) -> None:
        self.root = Path(root).expanduser()
        self.allow_abs = allow_abs
        listing = Path(pairs_file) if pairs_file is not None else self.root / "pairs.json"
        self._entries: list[Mapping[str, Any]] | None = None
        self._paths: tuple[Path, ...] = ()
        if listing.is_file():
            entries = read_json(listing)
            if not isinstance(entries, list):
                raise InputError(f"{listing} must hold a JSON list of pairs.")
            self._entries = [
                e for e in entries if categories is None or e.get("category") in categories
            ]
        elif (self.root / "PairAnnotation" / split).is_dir():
            paths = sorted((self.root / "PairAnnotation" / split).glob("*.json"))
            self._paths = tuple(
                p for p in paths if categories is None or p.stem.split(":")[-1] in categories
            )
        else:
            raise InputError(
                f"No SPair pairs under {self.root}: expected pairs.json or PairAnnotation/{split}/."
            )
        self._limit = max_pairs
        if self._entries is not None:
            # Resolve the listed images now: a pairs file naming a missing image, or one outside
            # the folder, is one error before evaluation starts rather than a failure midway.
            for index, entry in enumerate(self._entries[: len(self)]):
                for key in ("source_path", "target_path"):
                    if key not in entry:
                        raise InputError(f"{listing}: pair {index} has no {key!r}.")
                    resolve_image(
                        self.root, str(entry[key]), str(entry.get("category", "")), allow_abs
                    )

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
            raise InputError(
                f"Pair {index}: {len(src_points)} source but {len(tgt_points)} target points."
            )
        source = KeypointView(
            category,
            resolve_image(self.root, str(entry["source_path"]), category, self.allow_abs),
            parse_bbox(entry.get("source_bounding_box")),
            _plain_keypoints(src_points),
        )
        target = KeypointView(
            category,
            resolve_image(self.root, str(entry["target_path"]), category, self.allow_abs),
            parse_bbox(entry.get("target_bounding_box")),
            _plain_keypoints(tgt_points),
        )
        return KeypointPair(
            str(entry.get("pair_id", index)),
            "intra",
            category,
            source,
            target,
            _aligned_matches(len(src_points)),
            (),
            bool(entry.get("mirror", 0)),
        )

    def _parse_spair71k(self, data: Mapping[str, Any], path: Path) -> KeypointPair:
        category = str(data["category"])
        names = [str(k) for k in data.get("kps_ids", range(len(data["src_kps"])))]
        source = KeypointView(
            category,
            resolve_image(self.root, str(data["src_imname"]), category, self.allow_abs),
            parse_bbox(data.get("src_bndbox")),
            _plain_keypoints(data["src_kps"], names),
        )
        target = KeypointView(
            category,
            resolve_image(self.root, str(data["trg_imname"]), category, self.allow_abs),
            parse_bbox(data.get("trg_bndbox")),
            _plain_keypoints(data["trg_kps"], names),
        )
        return KeypointPair(
            str(data.get("pair_id", path.stem)),
            "intra",
            category,
            source,
            target,
            _aligned_matches(len(names), names),
            (),
            bool(data.get("mirror", 0)),
            path,
        )

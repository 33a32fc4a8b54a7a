"""Keypoint pair records shared by every keypoint benchmark reader (SPair in
:mod:`funcorr.eval.spair`, SOCO in :mod:`funcorr.eval.soco`) and scorer: frozen
dataclasses, a lazy pair sequence, and the JSON / bbox / image-path helpers readers share."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import torch

from funcorr.files import confined
from funcorr.images import InputError, LoadedImage, load_image

PairType = Literal["intra", "cross"]


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
        return torch.tensor([k.position for k in self.keypoints], dtype=torch.float64).reshape(
            -1, 2
        )


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


def resolve_image(root: Path, name: str, category: str, allow_abs: bool = False) -> Path:
    """Find an image given as a path relative to ``root``, under ``images/``, SPair's
    ``JPEGImages/<category>/``, or with any leading prefix (``SPair-71k/JPEGImages/...``).

    Names never lead out of ``root`` with ``..``; an absolute name is used as it is only with
    ``allow_abs`` (the user's ``--allow-abs``), else it is looked up inside ``root`` like a
    relative one, so a downloaded pairs file cannot make funcorr read any file it names."""
    path = Path(name)
    if path.is_absolute() and allow_abs:
        if path.is_file():
            return path
        raise InputError(
            f"Image {name!r} (an absolute path, allowed by --allow-abs) does not exist."
        )
    parts = path.parts[1:] if path.is_absolute() else path.parts
    confined(root, Path(*parts) if parts else "", "image path", follow_links=False)
    confined(root, category or ".", "category", follow_links=False)
    tried = []
    for start in range(len(parts)):
        rest = Path(*parts[start:])
        for base in (
            root,
            root / "images",
            root / "JPEGImages" / category,
            root / "Images" / category,
        ):
            candidate = base / rest
            tried.append(candidate)
            if candidate.is_file():
                return candidate
    hint = (
        " It is an absolute path, looked up inside the dataset folder: pass --allow-abs to read it where it is."
        if path.is_absolute()
        else ""
    )
    raise InputError(
        f"Image {name!r} not found under {root} (tried {', '.join(map(str, tried[:4]))}, ...).{hint}"
    )


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


def concept_targets(pair: KeypointPair) -> dict[int, tuple[int, ...]]:
    """Source keypoint index -> every valid CC target index (merged over concept groups)."""
    merged: dict[int, set[int]] = defaultdict(set)
    for match in pair.concept_matches:
        for s in match.source_indices:
            merged[s].update(match.target_indices)
    return {s: tuple(sorted(t)) for s, t in merged.items() if t}

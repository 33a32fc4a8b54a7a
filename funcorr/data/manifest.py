"""The curated-asset manifest: ``manifest.csv`` with columns ``uid, path, category, split``.

``funcorr curate`` writes it (kept assets only); ``funcorr make-data --meshes manifest.csv``
reads it, taking each mesh's category and split from its row rather than from a sidecar.
``path`` is empty when curation ran without meshes; relative paths are read relative to the
manifest's folder.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from funcorr.images import InputError, atomic_path

MANIFEST_COLUMNS = ("uid", "path", "category", "split")
MANIFEST_SPLITS = ("train", "test", "unseen")


@dataclass(frozen=True)
class ManifestRow:
    """One kept asset: its id, mesh file ("" when unknown), taxonomy category and split."""

    uid: str
    path: str
    category: str
    split: str


def write_manifest(rows: Iterable[ManifestRow], path: str | os.PathLike) -> Path:
    """Write rows (in the given order) atomically as a CSV with a header line."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_COLUMNS)
        for row in rows:
            writer.writerow((row.uid, row.path, row.category, row.split))
    return path


def read_manifest(path: str | os.PathLike) -> list[ManifestRow]:
    """Rows of a manifest, with relative mesh paths made absolute against its folder.

    Raises InputError for a missing file, a header without the four columns, an empty
    category or an unknown split, naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"No manifest at {path}.")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in MANIFEST_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise InputError(
                f"{path} is not a curation manifest: no column(s) {', '.join(missing)}."
            )
        rows = []
        for line, record in enumerate(reader, start=2):
            uid, mesh, category, split = (str(record[c] or "").strip() for c in MANIFEST_COLUMNS)
            if not uid or not category:
                raise InputError(f"{path} line {line}: uid and category must not be empty.")
            if split not in MANIFEST_SPLITS:
                raise InputError(
                    f"{path} line {line}: split {split!r} is not one of "
                    f"{', '.join(MANIFEST_SPLITS)}."
                )
            if mesh and not Path(mesh).is_absolute():
                mesh = str((path.parent / mesh).resolve())
            rows.append(ManifestRow(uid, mesh, category, split))
    return rows

"""The function / object / part taxonomy shipped in ``funcorr/resources/taxonomy``.

Files (from the paper's release): ``action2objects.json`` (24 functions -> object
categories), ``Objaverse_objaverse_action2objects.json`` (the Objaverse subset),
``Objaverse_obj2part2function.json`` (category -> part -> functions),
``Objaverse_obj2part_descriptions.json`` / ``HANDAL_obj2part_descriptions.json``
(category -> part -> text description) and ``HANDAL_HANDAL_action2objects.json``.
A folder with files of the same names (e.g. written by ``funcorr taxonomy``) is read by
:func:`load_taxonomy` and used wherever a command takes ``--taxonomy``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from funcorr.images import InputError

# Table name -> file name, shared by the shipped taxonomy and folders given with --taxonomy.
TAXONOMY_FILES: Mapping[str, str] = MappingProxyType(
    {
        "action2objects": "action2objects.json",
        "objaverse_action2objects": "Objaverse_objaverse_action2objects.json",
        "handal_action2objects": "HANDAL_HANDAL_action2objects.json",
        "part2function": "Objaverse_obj2part2function.json",
        "part_descriptions": "Objaverse_obj2part_descriptions.json",
        "handal_part_descriptions": "HANDAL_obj2part_descriptions.json",
    }
)


def _freeze(value):
    """Read-only view of nested JSON: dicts -> MappingProxyType, lists -> tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def load_json(name: str) -> Mapping:
    """One taxonomy file as a read-only mapping (KeyError-free listing: see ``resources/taxonomy``)."""
    text = (resources.files("funcorr") / "resources" / "taxonomy" / name).read_text(
        encoding="utf-8"
    )
    return _freeze(json.loads(text))


@dataclass(frozen=True)
class Taxonomy:
    """All taxonomy tables; build with :func:`taxonomy` (cached, read-only)."""

    action2objects: Mapping[str, tuple[str, ...]]
    objaverse_action2objects: Mapping[str, tuple[str, ...]]
    handal_action2objects: Mapping[str, tuple[str, ...]]
    part2function: Mapping[str, Mapping[str, tuple[str, ...]]]
    part_descriptions: Mapping[str, Mapping[str, str]]
    handal_part_descriptions: Mapping[str, Mapping[str, str]]

    @property
    def functions(self) -> list[str]:
        """The 24 functions, in file order."""
        return list(self.action2objects)

    @property
    def categories(self) -> list[str]:
        """Every object category that performs at least one function, sorted."""
        return sorted({name for objects in self.action2objects.values() for name in objects})

    def functions_of(self, category: str) -> list[str]:
        """Functions that ``category`` can perform, in file order (empty when unknown)."""
        return [fn for fn, objects in self.action2objects.items() if category in objects]

    def objects_for(self, function: str) -> tuple[str, ...]:
        """Object categories that can perform ``function``; KeyError lists the known functions."""
        if function not in self.action2objects:
            raise KeyError(
                f"Unknown function {function!r}; known: {', '.join(self.action2objects)}"
            )
        return self.action2objects[function]

    def functional_parts(self, category: str, function: str) -> list[str]:
        """Parts of an Objaverse category annotated with ``function`` (empty when unknown)."""
        parts = self.part2function.get(category, {})
        return [part for part, fns in parts.items() if function in fns]

    def describe(self, category: str, part: str) -> str | None:
        """Text description of a part (Objaverse first, then HANDAL), or None."""
        for table in (self.part_descriptions, self.handal_part_descriptions):
            if part in table.get(category, {}):
                return table[category][part]
        return None


def _build(read: Callable[[str], Mapping | None]) -> Taxonomy:
    """A Taxonomy from a reader of file names (None for a file that is absent)."""
    tables = {name: read(file) for name, file in TAXONOMY_FILES.items()}
    if tables["action2objects"] is None:
        raise InputError(
            f"A taxonomy needs {TAXONOMY_FILES['action2objects']} (function -> object categories)."
        )
    if tables["objaverse_action2objects"] is None:
        tables["objaverse_action2objects"] = tables["action2objects"]
    empty = MappingProxyType({})
    return Taxonomy(**{name: empty if table is None else table for name, table in tables.items()})


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """Load the shipped taxonomy once (the files are read-only package data)."""
    return _build(load_json)


def _read_folder_file(folder: Path, name: str) -> Mapping | None:
    path = folder / name
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"Could not read taxonomy file {path}: {err}") from None
    if not isinstance(data, dict):
        raise InputError(
            f"Taxonomy file {path} must hold a JSON object, got {type(data).__name__}."
        )
    return _freeze(data)


def load_taxonomy(path: str | os.PathLike | None = None) -> Taxonomy:
    """The taxonomy in folder ``path`` (same file names as the shipped one), or the shipped one.

    Only ``action2objects.json`` is required: a missing Objaverse subset defaults to the full
    list, missing part and HANDAL tables to empty ones, so the folder written by
    ``funcorr taxonomy objects`` already works before ``funcorr taxonomy parts`` fills it.
    """
    if path is None:
        return taxonomy()
    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"--taxonomy {folder} is not a folder of taxonomy JSON files.")
    return _build(lambda name: _read_folder_file(folder, name))

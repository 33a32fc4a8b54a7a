"""The function / object / part taxonomy shipped in ``funcorr/resources/taxonomy``.

Files (from the paper's release): ``action2objects.json`` (24 functions -> object
categories), ``Objaverse_objaverse_action2objects.json`` (the Objaverse subset),
``Objaverse_obj2part2function.json`` (category -> part -> functions),
``Objaverse_obj2part_descriptions.json`` / ``HANDAL_obj2part_descriptions.json``
(category -> part -> text description) and ``HANDAL_HANDAL_action2objects.json``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from types import MappingProxyType


def _freeze(value):
    """Read-only view of nested JSON: dicts -> MappingProxyType, lists -> tuples."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def load_json(name: str) -> Mapping:
    """One taxonomy file as a read-only mapping (KeyError-free listing: see ``resources/taxonomy``)."""
    text = (resources.files("funcorr") / "resources" / "taxonomy" / name).read_text(encoding="utf-8")
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

    def objects_for(self, function: str) -> tuple[str, ...]:
        """Object categories that can perform ``function``; KeyError lists the known functions."""
        if function not in self.action2objects:
            raise KeyError(f"Unknown function {function!r}; known: {', '.join(self.action2objects)}")
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


@lru_cache(maxsize=1)
def taxonomy() -> Taxonomy:
    """Load the shipped taxonomy once (the files are read-only package data)."""
    return Taxonomy(
        action2objects=load_json("action2objects.json"),
        objaverse_action2objects=load_json("Objaverse_objaverse_action2objects.json"),
        handal_action2objects=load_json("HANDAL_HANDAL_action2objects.json"),
        part2function=load_json("Objaverse_obj2part2function.json"),
        part_descriptions=load_json("Objaverse_obj2part_descriptions.json"),
        handal_part_descriptions=load_json("HANDAL_obj2part_descriptions.json"),
    )

"""Part-labelled 3D assets with functional frames: procedural families and real-mesh loaders.

>>> from funcorr.data.assets import generate, CATEGORIES
>>> kettle = generate("kettle", seed=3)            # parameters sampled from the seed
>>> short = generate("kettle", seed=3, spout_length=0.7)   # or overridden by name
>>> kettle.functions["pour-with"].part
'spout'

``CATEGORIES`` maps category name -> :class:`Family` (parameter ranges + builder);
:func:`categories_for` lists the categories supporting a function. Real meshes load
with :func:`load_mesh_asset` (GLB/OBJ/PLY + optional part sidecar JSON) and BOP scenes
(HANDAL layout) with :mod:`funcorr.data.assets.bop`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from funcorr.data.assets import (
    blades,
    brushes,
    containers,
    garden,
    grippers,
    hooks,
    kitchen,
    levers,
    scoops,
    sieves,
    tools,
    wrenches,
    writers,
)
from funcorr.data.assets.base import (
    FRAME_CONVENTIONS,
    Asset,
    FunctionalPart,
    Material,
    frame_from,
    surface_points,
)
from funcorr.data.assets.family import Family, Range
from funcorr.data.assets.mesh_io import load_mesh_asset, save_mesh_asset

# Registry order fixes dataset plans; new modules go last so older datasets keep their order.
MODULES = (containers, blades, scoops, tools, hooks)
MODULES += (brushes, kitchen, sieves, levers, wrenches, grippers, writers, garden)
CATEGORIES: Mapping[str, Family] = MappingProxyType(
    {f.category: f for module in MODULES for f in module.FAMILIES}
)

__all__ = [
    "Asset",
    "CATEGORIES",
    "FRAME_CONVENTIONS",
    "Family",
    "FunctionalPart",
    "Material",
    "Range",
    "asset_seed",
    "categories_for",
    "frame_from",
    "generate",
    "load_mesh_asset",
    "save_mesh_asset",
    "slug",
    "supported_functions",
    "surface_points",
]


def slug(category: str) -> str:
    """File-name-safe category name ('watering can' -> 'watering_can')."""
    return category.replace(" ", "_")


def asset_seed(seed: int, category: str, index: int) -> int:
    """Stable per-instance seed derived from a dataset seed (independent of Python's hash salt)."""
    state = np.random.SeedSequence([seed, zlib.crc32(category.encode()), index]).generate_state(1)
    return int(state[0])


def generate(category: str, seed: int, asset_id: str | None = None, **params: float) -> Asset:
    """Build one instance of ``category``; unspecified shape parameters are sampled from ``seed``.

    Raises KeyError for unknown categories or parameter names (the message lists the valid ones).
    """
    if category not in CATEGORIES:
        raise KeyError(f"Unknown category {category!r}; known: {sorted(CATEGORIES)}")
    family = CATEGORIES[category]
    unknown = set(params) - set(family.params)
    if unknown:
        raise KeyError(
            f"{category} has no parameters {sorted(unknown)}; parameters: {sorted(family.params)}"
        )
    rng = np.random.default_rng(seed)
    values = {**family.sample_params(rng), **{k: float(v) for k, v in params.items()}}
    draft = family.build(values, rng)
    return draft.build(category, asset_id or f"{slug(category)}-{seed}", seed, values)


def categories_for(function: str) -> list[str]:
    """Procedural categories supporting ``function``, in registry order."""
    return [name for name, family in CATEGORIES.items() if function in family.functions]


def supported_functions() -> list[str]:
    """Functions supported by at least one procedural category, sorted."""
    return sorted({fn for family in CATEGORIES.values() for fn in family.functions})

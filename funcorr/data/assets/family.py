"""The generator interface shared by all procedural families."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import trimesh

from funcorr.data.assets.base import Draft, Material, random_material

Params = dict[str, float]


@dataclass(frozen=True)
class Range:
    """Uniform range of one shape parameter; integer ranges include both ends."""

    low: float
    high: float
    integer: bool = False

    def sample(self, rng: np.random.Generator) -> float:
        if self.integer:
            return float(rng.integers(int(self.low), int(self.high) + 1))
        return float(rng.uniform(self.low, self.high))


@dataclass(frozen=True)
class Family:
    """A procedural category: shape parameter ranges and a builder.

    ``build(params, rng)`` returns a :class:`Draft` in generator units; ``rng`` is the
    same generator that sampled the parameters, used for appearance. ``functions``
    lists the functions every instance supports (checked by the tests).
    """

    category: str
    params: Mapping[str, Range]
    build: Callable[[Params, np.random.Generator], Draft]
    functions: tuple[str, ...]

    def sample_params(self, rng: np.random.Generator) -> Params:
        # Sorted order makes sampling independent of dict declaration order.
        return {name: self.params[name].sample(rng) for name in sorted(self.params)}


def pick_material(rng: np.random.Generator, kinds: tuple[str, ...]) -> Material:
    """Random material among ``kinds``."""
    return random_material(rng, kinds[int(rng.integers(len(kinds)))])


def along_x(
    piece: tuple[trimesh.Trimesh, np.ndarray], shift: float = 0.0
) -> tuple[trimesh.Trimesh, np.ndarray]:
    """Turn a piece built about +z (lathes) to lie along +x, then shift it along x."""
    mesh, seg = piece
    rot = trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0])
    rot[0, 3] = shift
    mesh.apply_transform(rot)
    return mesh, seg

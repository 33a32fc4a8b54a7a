"""Handles shared by the hand-tool families: turned (round) handles and flat grips along x.

Both run from ``x_end - length`` to ``x_end`` and take a radius or width profile as a few
control values from the back end to the front end, so families vary handle shapes
with one or two parameters instead of re-implementing them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from funcorr.data.assets.base import Draft
from funcorr.data.assets.family import along_x
from funcorr.data.assets.geometry import lathe, rounded_rect, sweep


def _profile(values: Sequence[float], n: int) -> np.ndarray:
    """(n,) smooth interpolation of control values spread evenly from back (0) to front (1)."""
    t = np.linspace(0, 1, n)
    return np.interp(t, np.linspace(0, 1, len(values)), values)


def turned_handle(
    draft: Draft,
    length: float,
    radius: float,
    x_end: float = 0.0,
    shape: Sequence[float] = (0.8, 1.0, 0.95, 0.8),
    part: str = "handle",
) -> None:
    """Round handle (a lathe about x) with rounded ends; radius profile = radius * shape."""
    cap = min(0.3 * radius, 0.1 * length)
    z = np.linspace(cap, length - cap, 14)
    r = radius * _profile(shape, len(z))
    ends = [[(0, 0), (0.75 * r[0], 0.0)], [(0.75 * r[-1], length), (0, length)]]
    profile = np.concatenate([ends[0], np.stack([r, z], 1), ends[1]])
    draft.add(part, along_x(lathe(profile, 24), x_end - length))


def flat_grip(
    draft: Draft,
    length: float,
    width: float,
    thickness: float,
    x_end: float = 0.0,
    shape: Sequence[float] = (0.85, 1.0, 0.9, 0.7),
    z: float = 0.0,
    part: str = "handle",
) -> None:
    """Flat handle along x with a rounded-rectangle section (thickness along z); width profile = width * shape."""
    u = np.linspace(0, 1, 14)
    path = np.stack([x_end - length + u * length, 0 * u, np.full_like(u, z)], 1)
    scale = np.stack([np.ones_like(u), _profile(shape, len(u))], 1)
    section = rounded_rect(thickness / 2, width / 2, 0.45 * thickness)
    draft.add(part, sweep(path, section, scale, up=(0.0, 0.0, 1.0)))

"""Perforated vessels (sift-with, mix-with): strainer, tea strainer, colander, slotted spoon, sifter.

Bowls open towards +z with their lowest point on the z axis; handles point to -x. Holes
are modelled where they show at render resolution (colander slots, spoon slots); fine
wire mesh is a thin solid shell.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import (
    arc,
    bezier,
    lathe,
    ring_lathe,
    rounded_rect,
    square_to_disk,
    sweep,
    thick_sheet,
    tube,
)
from funcorr.data.assets.scoops import bowl_dims

UP = (0.0, 0.0, 1.0)
DOWN = (0.0, 0.0, -1.0)
AWAY_FROM_HANDLE = (1.0, 0.0, 0.0)


def _shell_profile(radius: float, depth: float, wall: float, flat: float = 0.0) -> np.ndarray:
    """Closed (r, z) profile of a thin bowl opening at z = 0: outside down to -depth, inside back up."""
    angles = np.linspace(-np.pi / 2, 0, 14)
    outer = [(flat + (radius - flat) * np.cos(a), depth * np.sin(a)) for a in angles]
    inner = [
        (flat + (radius - flat - wall) * np.cos(a), (depth - wall) * np.sin(a))
        for a in angles[::-1]
    ]
    return np.array([(0, -depth)] + outer + inner + [(0, -(depth - wall))])


def build_strainer(p: Params, rng: np.random.Generator) -> Draft:
    """Mesh strainer: a bowl in a wire rim, a handle at -x and optionally a resting ear or a second handle."""
    d = Draft()
    r, depth, wire = p["bowl_radius"], p["bowl_depth"], p["rim_radius"]
    d.add("mesh", lathe(_shell_profile(r, depth, 0.02, p["flat_bottom"] * r), 48))
    d.add("rim", tube(arc((0, 0, 0), r, 0, 2 * np.pi, 49, plane=(0, 1)), wire, segments=10))
    length, rise = p["handle_length"], p["handle_rise"]
    shank = bezier(
        np.array(
            [
                [-r + wire, 0, 0],
                [-r - 0.3 * length, 0, 0.2 * rise],
                [-r - 0.5 * length, 0, 0.6 * rise],
            ]
        ),
        12,
    )
    d.add("handle", tube(shank, 1.2 * wire, segments=10))
    direction = shank[-1] - shank[-2]
    grip = shank[-1] + np.linspace(0, 0.55 * length, 10)[:, None] * direction / np.linalg.norm(
        direction
    )
    half = (
        0.5
        * p["grip_width"]
        * np.interp(np.linspace(0, 1, 10), [0, 0.3, 0.85, 1], [0.5, 0.9, 1.0, 0.8])
    )
    section = rounded_rect(0.25 * p["grip_width"], 1.0, 0.1 * p["grip_width"])
    d.add("handle", sweep(grip, section, np.stack([np.ones(10), half], 1), up=UP))
    if p["ears"] >= 1:  # a hooked ear that rests the strainer on a pot rim
        ear = arc((r + 0.12, 0, 0.02), 0.1, np.pi, 0.15 * np.pi, 14, plane=(0, 2))
        d.add("handle", tube(np.concatenate([[[r - wire, 0, 0]], ear]), wire, segments=8))
    d.functions["sift-with"] = FunctionSpec(
        "mesh", (0, 0, -depth), DOWN, AWAY_FROM_HANDLE, symmetry=0
    )
    metal = pick_material(rng, ("metal",))
    d.materials.update(
        mesh=pick_material(rng, ("metal", "plastic")),
        rim=metal,
        handle=pick_material(rng, ("metal", "plastic", "rubber")),
    )
    return d


def _band_sectors(
    radius_at, z0: float, z1: float, wall: float, sectors: int, open_fraction: float, phase: float
):
    """Thin patches of a surface of revolution between heights z0 and z1, separated by slots."""
    width = 2 * np.pi / sectors
    for k in range(sectors):
        start = phase + k * width + 0.5 * open_fraction * width
        phi = np.linspace(start, start + (1 - open_fraction) * width, 3)
        z = np.linspace(z0, z1, 3)
        zz, pp = np.meshgrid(z, phi, indexing="ij")
        rr = radius_at(zz) - wall / 2
        yield thick_sheet(np.stack([rr * np.cos(pp), rr * np.sin(pp), zz], -1), wall)


def build_colander(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    rb, rt, h, wall = p["bottom_radius"], p["top_radius"], p["height"], 0.03
    belly = p["belly"]

    def radius_at(z):
        t = np.asarray(z) / h
        return rb + (rt - rb) * t + belly * np.sin(np.pi * t) * (rt - rb)

    lo, hi = p["slots_from"] * h, 0.82 * h
    z_bottom = np.linspace(0, lo, 5)
    bottom = [(0, 0)] + [(radius_at(z), z) for z in z_bottom] + [(radius_at(lo) - wall, lo)]
    bottom += [(radius_at(z) - wall, z) for z in z_bottom[::-1][1:-1]] + [
        (rb - wall, wall),
        (0, wall),
    ]
    d.add("mesh", lathe(np.array(bottom), 48))
    z_top = np.linspace(hi, h, 4)
    lip = radius_at(h) + 0.03
    top = [(radius_at(z), z) for z in z_top] + [
        (lip, h),
        (lip, h + 0.02),
        (radius_at(h) - wall, h + 0.02),
    ]
    top += [(radius_at(z) - wall, z) for z in z_top[::-1]]
    d.add("mesh", ring_lathe(np.array(top), 48))
    rows = int(p["rows"])
    band = (hi - lo) / rows
    for i in range(rows):
        z0, z1 = lo + i * band - 0.005, lo + (i + 1) * band + 0.005
        for piece in _band_sectors(
            radius_at,
            z0,
            z1,
            wall,
            int(p["sectors"]),
            p["open"],
            0.5 * i * 2 * np.pi / p["sectors"],
        ):
            d.add("mesh", piece)
    if p["foot"] == 1:
        foot = np.array(
            [(0.5 * rb, 0.02), (0.6 * rb, -0.12), (0.55 * rb, -0.12), (0.45 * rb, 0.02)]
        )
        d.add("base", lathe(np.array([(0, 0.02), *foot, (0, 0.0)]), 40))
    for sign in (-1, 1):  # two loop handles under the rim
        loop = arc(
            (sign * (radius_at(0.88 * h) + 0.02), 0, 0.88 * h),
            0.12,
            -np.pi / 2,
            np.pi / 2,
            12,
            plane=(1, 0),
        )
        loop[:, 0] = sign * (
            radius_at(0.88 * h)
            + 0.02
            + 0.12 * np.abs(np.cos(np.linspace(-np.pi / 2, np.pi / 2, 12)))
        )
        loop[:, 1] = np.linspace(-0.15, 0.15, 12)
        d.add("handle", tube(loop, 0.03, segments=10))
    d.functions["sift-with"] = FunctionSpec("mesh", (0, 0, 0), DOWN, AWAY_FROM_HANDLE, symmetry=0)
    body = pick_material(rng, ("metal", "plastic", "plastic"))
    d.materials.update(mesh=body, base=body, handle=body)
    return d


def _slotted_bowl(grid: np.ndarray, slots: int, thickness: float):
    """Thin plates covering a (U, V, 3) bowl grid except ``slots`` slots running along u in its middle."""
    u_n, v_n = grid.shape[:2]
    ua, ub = int(0.25 * u_n), int(0.8 * u_n)
    columns = np.zeros(v_n - 1, bool)  # True = cell column holds a slot
    columns[np.round(np.linspace(0.3, 0.7, slots) * (v_n - 1)).astype(int)] = True
    start = 0
    for j in range(1, v_n):
        if j == v_n - 1 or columns[j] != columns[start]:
            block = grid[:, start : j + 1]
            if columns[start]:
                yield thick_sheet(block[: ua + 1], thickness)
                yield thick_sheet(block[ub:], thickness)
            else:
                yield thick_sheet(block, thickness)
            start = j


def build_slotted_spoon(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    front, back, half_w, depth = bowl_dims(p)
    u, v = np.meshgrid(np.linspace(-1, 1, 24), np.linspace(-1, 1, 23), indexing="ij")
    x, y = square_to_disk(u, v)
    grid = np.stack(
        [back + np.where(x > 0, front, back) * x, half_w * y, -depth * (1 - x**2 - y**2)], -1
    )
    for piece in _slotted_bowl(grid, int(p["slots"]), 0.025):
        d.add("bowl", piece)
    length = p["handle_length"]
    path = bezier(
        np.array(
            [
                [-length, 0, p["handle_rise"]],
                [-0.4 * length, 0, 0.2 * p["handle_rise"]],
                [0.05, 0, 0.0],
                [0.2 * back, 0, -0.03],
            ]
        ),
        24,
    )
    d.add(
        "handle",
        tube(path, np.linspace(p["handle_width"], 0.06, len(path)), segments=14, aspect=0.3, up=UP),
    )
    d.functions["sift-with"] = FunctionSpec("bowl", (back, 0, -depth), DOWN, AWAY_FROM_HANDLE)
    d.functions["mix-with"] = FunctionSpec("bowl", (back, 0, -depth / 2), AWAY_FROM_HANDLE, UP)
    body = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(
        bowl=body, handle=body if rng.uniform() < 0.6 else pick_material(rng, ("plastic", "wood"))
    )
    return d


def build_sifter(p: Params, rng: np.random.Generator) -> Draft:
    """Flour sifter: an open cup with a mesh disc near its bottom, a side handle and a crank."""
    d = Draft()
    r, h, wall = p["radius"], p["height"], 0.025
    top_r = r * p["flare"]
    profile = [(r, 0), (top_r, h), (top_r + 0.03, h + 0.01), (top_r - wall, h), (r - wall, 0.01)]
    d.add("cup", ring_lathe(np.array([*profile, (r - wall, 0.0)]), 48))
    z_mesh = p["mesh_height"] * h
    d.add(
        "mesh",
        lathe(
            np.array(
                [
                    (0, z_mesh - 0.01),
                    (r - wall / 2, z_mesh - 0.01),
                    (r - wall / 2, z_mesh + 0.01),
                    (0, z_mesh + 0.01),
                ]
            ),
            48,
        ),
    )

    def rim(z: float) -> float:
        """Outer wall radius at height z."""
        return r + (top_r - r) * z / h

    handle = bezier(
        np.array(
            [[-rim(0.75 * h) + 0.02, 0, 0.75 * h], [-rim(0.75 * h) - p["handle_reach"], 0, 0.8 * h]]
            + [
                [-rim(0.2 * h) - p["handle_reach"], 0, 0.1 * h],
                [-rim(0.25 * h) + 0.02, 0, 0.25 * h],
            ]
        ),
        20,
    )
    d.add("handle", tube(handle, 0.045, segments=12, aspect=0.6, up=(0, 1, 0)))
    crank = np.array(
        [
            [rim(0.6 * h) - 0.02, 0, 0.6 * h],
            [rim(0.6 * h) + 0.08, 0, 0.6 * h],
            [rim(0.6 * h) + 0.08, 0, 0.6 * h + 0.25],
        ]
    )
    d.add("crank", tube(crank, 0.02, segments=8))
    knob = np.array([crank[-1], crank[-1] + [0.12, 0, 0]])
    d.add("crank", tube(knob, 0.04, segments=12))
    d.functions["sift-with"] = FunctionSpec(
        "mesh", (0, 0, z_mesh - 0.01), DOWN, AWAY_FROM_HANDLE, symmetry=0
    )
    metal = pick_material(rng, ("metal",))
    d.materials.update(
        cup=pick_material(rng, ("metal", "plastic")),
        mesh=metal,
        handle=pick_material(rng, ("wood", "plastic", "metal")),
    )
    d.materials["crank"] = pick_material(rng, ("wood", "plastic", "metal"))
    return d


FAMILIES = (
    Family(
        "strainer",
        {
            "bowl_radius": Range(0.35, 0.6),
            "bowl_depth": Range(0.25, 0.5),
            "flat_bottom": Range(0.0, 0.3),
            "rim_radius": Range(0.02, 0.035),
            "handle_length": Range(1.0, 1.5),
            "handle_rise": Range(0.0, 0.3),
            "grip_width": Range(0.1, 0.16),
            "ears": Range(0, 1, integer=True),
        },
        build_strainer,
        ("sift-with",),
    ),
    Family(
        "tea strainer",
        {
            "bowl_radius": Range(0.35, 0.5),
            "bowl_depth": Range(0.3, 0.45),
            "flat_bottom": Range(0.0, 0.4),
            "rim_radius": Range(0.025, 0.04),
            "handle_length": Range(0.6, 0.9),
            "handle_rise": Range(0.0, 0.15),
            "grip_width": Range(0.12, 0.2),
            "ears": Range(1, 1, integer=True),
        },
        build_strainer,
        ("sift-with",),
    ),
    Family(
        "colander",
        {
            "bottom_radius": Range(0.45, 0.65),
            "top_radius": Range(0.8, 1.0),
            "height": Range(0.5, 0.8),
            "belly": Range(0.0, 0.35),
            "slots_from": Range(0.15, 0.3),
            "rows": Range(2, 4, integer=True),
            "sectors": Range(14, 24, integer=True),
            "open": Range(0.25, 0.45),
            "foot": Range(0, 1, integer=True),
        },
        build_colander,
        ("sift-with",),
    ),
    Family(
        "slotted spoon",
        {
            "bowl_front": Range(0.3, 0.45),
            "bowl_back": Range(0.22, 0.32),
            "bowl_width": Range(0.32, 0.45),
            "bowl_depth": Range(0.05, 0.12),
            "slots": Range(3, 5, integer=True),
            "handle_length": Range(1.4, 2.0),
            "handle_width": Range(0.07, 0.12),
            "handle_rise": Range(0.0, 0.25),
        },
        build_slotted_spoon,
        ("sift-with", "mix-with"),
    ),
    Family(
        "sifter",
        {
            "radius": Range(0.35, 0.5),
            "height": Range(0.6, 0.9),
            "flare": Range(1.0, 1.15),
            "mesh_height": Range(0.05, 0.2),
            "handle_reach": Range(0.2, 0.3),
        },
        build_sifter,
        ("sift-with",),
    ),
)

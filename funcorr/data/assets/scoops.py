"""Bowl-ended tools (scoop-with, pour-with, dig-with, mix-with): spoon, ladle, trowel, scoop.

Tools lie along +x with the bowl at +x opening towards +z.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import bezier, lathe, square_to_disk, thick_sheet, tube

UP = (0.0, 0.0, 1.0)
FORWARD = (1.0, 0.0, 0.0)


def bowl_dims(p: Params) -> tuple[float, float, float, float]:
    """A spoon bowl's (front length, back length, half width, depth)."""
    return p["bowl_front"], p["bowl_back"], p["bowl_width"] / 2, p["bowl_depth"]


def build_spoon(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    front, back, half_w, depth = bowl_dims(p)
    u, v = np.meshgrid(np.linspace(-1, 1, 22), np.linspace(-1, 1, 18), indexing="ij")
    x, y = square_to_disk(u, v)
    # Egg-shaped outline: the tip half is longer than the back half.
    centre = back
    gx = centre + np.where(x > 0, front, back) * x
    grid = np.stack([gx, half_w * y, -depth * (1 - x**2 - y**2)], -1)
    d.add("bowl", thick_sheet(grid, 0.025))
    path = bezier(
        np.array(
            [
                [-p["handle_length"], 0, p["handle_rise"]],
                [-0.4 * p["handle_length"], 0, p["handle_rise"] * 0.2],
                [0.05, 0, 0.0],
                [0.2 * back, 0, -0.03],
            ]
        ),
        24,
    )
    width = np.linspace(p["handle_width"], 0.05, len(path))
    d.add("handle", tube(path, width, segments=14, aspect=0.25, up=UP))
    d.functions["scoop-with"] = FunctionSpec("bowl", (centre, 0, 0), UP, FORWARD)
    d.functions["mix-with"] = FunctionSpec("bowl", (centre, 0, -depth / 2), FORWARD, UP)
    metal = pick_material(rng, ("metal", "metal", "plastic", "wood"))
    d.materials.update(bowl=metal, handle=metal)
    return d


def build_ladle(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, depth, wall = p["bowl_radius"], p["bowl_depth"], 0.03
    angles = np.linspace(-np.pi / 2, 0, 12)
    outer = [(r * np.cos(a), depth * np.sin(a)) for a in angles]
    inner = [((r - wall) * np.cos(a), (depth - wall) * np.sin(a)) for a in angles[::-1]]
    profile = np.array(
        [(0, -depth)] + outer[1:] + [(r - wall / 2, wall / 2)] + inner[:-1] + [(0, -(depth - wall))]
    )
    bowl, seg = lathe(profile, 48)
    bowl.apply_translation((r, 0, 0))
    d.add("bowl", (bowl, seg))
    length, rise = p["handle_length"], p["handle_rise"]
    path = bezier(
        np.array(
            [
                [0.15 * r, 0, -0.1 * depth],
                [-0.1 * r, 0, 0.3 * rise],
                [-0.5 * length, 0, rise],
                [-length, 0, rise * 1.1],
            ]
        ),
        32,
    )
    d.add("handle", tube(path, 0.05, segments=14, aspect=0.45, up=UP))
    hook = bezier(
        np.array(
            [
                path[-1],
                path[-1] + [-0.3, 0, 0.05],
                path[-1] + [-0.3, 0, -0.25],
                path[-1] + [-0.1, 0, -0.25],
            ]
        ),
        12,
    )
    d.add("handle", tube(hook, 0.045, segments=12))
    rim = FunctionSpec("bowl", (r, 0, 0), UP, FORWARD, symmetry=0)
    d.functions.update({"scoop-with": rim, "pour-with": rim})
    metal = pick_material(rng, ("metal", "plastic"))
    d.materials.update(bowl=metal, handle=metal)
    return d


def build_trowel(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, half_w, dish = p["blade_length"], p["blade_width"] / 2, p["dish"]
    u = np.linspace(0, 1, 28)[:, None]
    v = np.linspace(-1, 1, 14)[None]
    # Pointed outline: full width at the back, tapering to a rounded point.
    half = half_w * np.sqrt(np.clip(1 - u ** p["pointiness"], 0.0, 1.0)) + 1e-3
    x = np.broadcast_to(u * length, half.shape[:1] + v.shape[1:])
    y = half * v
    z = dish * (y / half_w) ** 2
    grid = np.stack([x, y, z], -1)
    d.add("blade", thick_sheet(grid, 0.025))
    shank = bezier(
        np.array(
            [
                [0.25 * length, 0, 0.0],
                [0.0, 0, 0.05],
                [-0.15, 0, p["shank_rise"]],
                [-0.3, 0, p["shank_rise"]],
            ]
        ),
        14,
    )
    d.add("shank", tube(shank, 0.04, segments=12))
    handle = np.stack(
        [
            np.linspace(-0.3, -0.3 - p["handle_length"], 14),
            np.zeros(14),
            np.full(14, p["shank_rise"]),
        ],
        1,
    )
    d.add(
        "handle",
        tube(
            handle, p["handle_radius"] * (1 + 0.15 * np.sin(np.linspace(0, np.pi, 14))), segments=18
        ),
    )
    d.functions["scoop-with"] = FunctionSpec("blade", (0.4 * length, 0, dish * 0.8), UP, FORWARD)
    d.functions["dig-with"] = FunctionSpec("blade", (length, 0, 0), FORWARD, (0, 1, 0))
    blade = pick_material(rng, ("metal", "plastic"))
    d.materials.update(
        blade=blade, shank=blade, handle=pick_material(rng, ("wood", "plastic", "rubber"))
    )
    return d


def build_scoop(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r = p["length"], p["radius"]
    u = np.linspace(0, 1, 20)[:, None]
    phi = np.linspace(0, np.pi, 20)[None]
    # Trough: half cylinder open at the top and the front; the front lip is cut at a slant.
    x = np.broadcast_to(u * length, (20, 20)) * (1 - p["slant"] * np.sin(phi))
    trough = np.stack(
        [x, r * np.cos(phi) * np.ones_like(x), -r * np.sin(phi) * np.ones_like(x)], -1
    )
    d.add("bowl", thick_sheet(trough, 0.025))
    rho = np.linspace(0.02, 1, 10)[:, None]
    back = np.stack([np.zeros((10, 20)), r * rho * np.cos(phi), -r * rho * np.sin(phi)], -1)
    d.add("bowl", thick_sheet(back, 0.025))
    handle = np.stack(
        [
            np.linspace(0.02, -p["handle_length"], 14),
            np.zeros(14),
            np.linspace(-0.5 * r, -0.3 * r, 14),
        ],
        1,
    )
    d.add("handle", tube(handle, p["handle_radius"], segments=16))
    d.functions["scoop-with"] = FunctionSpec("bowl", (0.5 * length, 0, 0), UP, FORWARD)
    body = pick_material(rng, ("metal", "plastic"))
    d.materials.update(bowl=body, handle=pick_material(rng, ("plastic", "wood", "metal")))
    return d


FAMILIES = (
    Family(
        "spoon",
        {
            "bowl_front": Range(0.3, 0.45),
            "bowl_back": Range(0.2, 0.3),
            "bowl_width": Range(0.3, 0.45),
            "bowl_depth": Range(0.04, 0.12),
            "handle_length": Range(1.2, 1.8),
            "handle_width": Range(0.06, 0.12),
            "handle_rise": Range(0.0, 0.25),
        },
        build_spoon,
        ("scoop-with", "mix-with"),
    ),
    Family(
        "ladle",
        {
            "bowl_radius": Range(0.35, 0.55),
            "bowl_depth": Range(0.25, 0.5),
            "handle_length": Range(1.4, 2.2),
            "handle_rise": Range(0.5, 1.0),
        },
        build_ladle,
        ("scoop-with", "pour-with"),
    ),
    Family(
        "trowel",
        {
            "blade_length": Range(0.9, 1.4),
            "blade_width": Range(0.4, 0.7),
            "dish": Range(0.05, 0.18),
            "pointiness": Range(1.5, 4.0),
            "shank_rise": Range(0.1, 0.25),
            "handle_length": Range(0.7, 1.0),
            "handle_radius": Range(0.08, 0.12),
        },
        build_trowel,
        ("scoop-with", "dig-with"),
    ),
    Family(
        "scoop",
        {
            "length": Range(0.6, 1.0),
            "radius": Range(0.25, 0.4),
            "slant": Range(0.0, 0.35),
            "handle_length": Range(0.5, 0.9),
            "handle_radius": Range(0.06, 0.1),
        },
        build_scoop,
        ("scoop-with",),
    ),
)

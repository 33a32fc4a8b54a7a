"""Flat-bladed tools (cut-with, pierce-with, scrape-with, lift-with, spread-with, mix-with,
press-with, peel-with, pry-with): knife, cleaver, spatula, scraper.

Tools lie along +x (handle at x < 0, working end at +x) with the blade in the z = 0
plane; knife edges face -y.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import thick_sheet, tube

HANDLE_KINDS = ("wood", "plastic", "rubber")
GRID_U, GRID_V = 32, 8


def _handle(
    draft: Draft, length: float, radius: float, x_end: float = 0.05, flat: float = 0.6
) -> None:
    """Rounded handle along x from -length to x_end, flattened along z."""
    x = np.linspace(-length, x_end, 16)
    swell = 1.0 + 0.12 * np.sin(np.linspace(0, np.pi, len(x)))
    path = np.stack([x, np.zeros_like(x), np.zeros_like(x)], 1)
    draft.add("handle", tube(path, radius * swell, segments=18, aspect=flat, up=(0, 0, 1)))


def _blade_grid(length: float, spine: np.ndarray, edge: np.ndarray, x0: float = 0.0) -> np.ndarray:
    """Planar blade grid (U, V, 3) between a spine curve and an edge curve, both (U,) y values."""
    u = np.linspace(0, 1, len(spine))
    v = np.linspace(0, 1, GRID_V)
    x = np.broadcast_to((x0 + u * length)[:, None], (len(u), GRID_V))
    y = spine[:, None] * (1 - v[None]) + edge[:, None] * v[None]
    return np.stack([x, y, np.zeros_like(x)], -1)


def _edge_spec(grid: np.ndarray, at: float) -> FunctionSpec:
    """cut-with frame on the edge row of a blade grid (last v column) at fraction ``at`` of its length."""
    edge = grid[:, -1]
    i = int(round(at * (len(edge) - 1)))
    tangent = edge[i + 1] - edge[i - 1]
    outward = np.array([tangent[1], -tangent[0], 0.0])
    return FunctionSpec("blade", edge[i], outward, tangent)


def build_knife(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, width = p["blade_length"], p["blade_width"]
    u = np.linspace(0, 1, GRID_U)
    tip_y = p["tip_height"] * width
    # Spine stays straight, then drops to the tip; the edge has a belly rising to the tip.
    drop = np.clip((u - p["spine_straight"]) / (1 - p["spine_straight"]), 0, 1)
    spine = width + (tip_y - width) * drop**1.6
    edge = tip_y * u ** (1 + 6 * p["belly"])
    # The handle axis (y = 0) sits towards the spine, as on real knives.
    grid = _blade_grid(length, spine - p["heel_drop"] * width, edge - p["heel_drop"] * width)
    thickness = np.linspace(p["thickness"], 0.004, GRID_V)[None].repeat(GRID_U, 0)
    tip_row = int(0.8 * (GRID_U - 1))
    d.add_by_segment(thick_sheet(grid, thickness), [(0, "blade"), (tip_row, "tip")])
    _handle(d, p["handle_length"], p["handle_radius"])
    d.functions["cut-with"] = _edge_spec(grid, 0.45)
    point = grid[-1, 0]
    d.functions["pierce-with"] = FunctionSpec("tip", point, point - grid[-4].mean(0), (0, -1, 0))
    d.materials.update(
        blade=pick_material(rng, ("metal",)), handle=pick_material(rng, HANDLE_KINDS)
    )
    d.materials["tip"] = d.materials["blade"]
    return d


def build_cleaver(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, height = p["blade_length"], p["blade_height"]
    u = np.linspace(0, 1, GRID_U)
    spine = np.full(GRID_U, height)
    edge = p["edge_curve"] * height * (2 * u - 1) ** 2 - p["edge_curve"] * height
    spine[-1] = (
        edge[-1] + 1e-3 * height
    )  # squared-off nose: collapse the last row onto the edge corner
    grid = _blade_grid(length, spine - 0.9 * height, edge - 0.9 * height)
    # Cleavers are thick at the spine; keep the front row thin so the nose is a flat face.
    thickness = np.linspace(p["thickness"], 0.006, GRID_V)[None].repeat(GRID_U, 0)
    d.add("blade", thick_sheet(grid, thickness))
    _handle(d, p["handle_length"], p["handle_radius"], x_end=0.05)
    d.functions["cut-with"] = _edge_spec(grid, 0.5)
    d.materials.update(
        blade=pick_material(rng, ("metal",)), handle=pick_material(rng, HANDLE_KINDS)
    )
    return d


def _flat_head(
    length: float, back_width: float, front_width: float, x0: float, z: float, curl: float
) -> np.ndarray:
    """Trapezoidal plate grid (U, V, 3) from x0 to x0 + length, slightly curled up at the sides."""
    u = np.linspace(0, 1, 20)[:, None]
    v = np.linspace(-1, 1, 12)[None]
    half = 0.5 * (back_width + (front_width - back_width) * u)
    x = np.broadcast_to(x0 + u * length, (20, 12))
    y = half * v
    return np.stack([x, y, z + curl * v**2 * np.ones_like(x)], -1)


def _front_edge_spec(grid: np.ndarray, part: str) -> FunctionSpec:
    front = grid[-1]
    along = front[-1] - front[0]
    push = grid[-1].mean(0) - grid[-3].mean(0)
    return FunctionSpec(part, front.mean(0), push, along, symmetry=2)


def build_spatula(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _handle(d, p["handle_length"], p["handle_radius"], x_end=0.0)
    neck_len, drop = p["neck_length"], p["drop"]
    neck = np.stack(
        [np.linspace(-0.1, neck_len + 0.05, 12), np.zeros(12), -drop * np.linspace(0, 1, 12) ** 2],
        1,
    )
    d.add("neck", tube(neck, 0.05, segments=12, aspect=0.4, up=(0, 0, 1)))
    grid = _flat_head(
        p["blade_length"], p["back_width"], p["front_width"], neck_len, -drop, p["curl"]
    )
    d.add("blade", thick_sheet(grid, 0.02))
    spec = _front_edge_spec(grid, "blade")
    d.functions.update({"lift-with": spec, "scrape-with": spec, "spread-with": spec})
    centre = grid.mean((0, 1))
    d.functions["mix-with"] = FunctionSpec("blade", centre, spec.z, (0, 0, 1), symmetry=2)
    d.functions["press-with"] = FunctionSpec("blade", centre - (0, 0, 0.01), (0, 0, -1), (-1, 0, 0))
    blade = pick_material(rng, ("metal", "plastic", "rubber"))
    d.materials.update(blade=blade, neck=blade, handle=pick_material(rng, HANDLE_KINDS))
    return d


def build_scraper(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _handle(d, p["handle_length"], p["handle_radius"], x_end=0.1, flat=0.7)
    d.add(
        "ferrule",
        tube(
            np.array([[0.0, 0, 0], [0.2, 0, 0]]),
            p["handle_radius"] * 0.8,
            segments=18,
            aspect=0.5,
            up=(0, 0, 1),
        ),
    )
    grid = _flat_head(p["blade_length"], p["back_width"], p["front_width"], 0.15, 0.0, 0.0)
    d.add("blade", thick_sheet(grid, np.linspace(0.025, 0.006, 20)[:, None].repeat(12, 1)))
    spec = _front_edge_spec(grid, "blade")
    d.functions.update({"scrape-with": spec, "spread-with": spec})
    d.functions.update({"peel-with": spec, "pry-with": spec})
    d.materials.update(
        blade=pick_material(rng, ("metal",)),
        ferrule=pick_material(rng, ("metal",)),
        handle=pick_material(rng, HANDLE_KINDS),
    )
    return d


FAMILIES = (
    Family(
        "knife",
        {
            "blade_length": Range(1.6, 2.8),
            "blade_width": Range(0.25, 0.55),
            "tip_height": Range(0.3, 0.8),
            "spine_straight": Range(0.4, 0.8),
            "belly": Range(0.0, 0.5),
            "thickness": Range(0.02, 0.04),
            "heel_drop": Range(0.5, 0.85),
            "handle_length": Range(0.9, 1.4),
            "handle_radius": Range(0.09, 0.14),
        },
        build_knife,
        ("cut-with", "pierce-with"),
    ),
    Family(
        "cleaver",
        {
            "blade_length": Range(1.4, 2.0),
            "blade_height": Range(0.8, 1.2),
            "edge_curve": Range(0.0, 0.1),
            "thickness": Range(0.03, 0.06),
            "handle_length": Range(0.9, 1.3),
            "handle_radius": Range(0.1, 0.15),
        },
        build_cleaver,
        ("cut-with",),
    ),
    Family(
        "spatula",
        {
            "handle_length": Range(1.2, 1.8),
            "handle_radius": Range(0.07, 0.11),
            "neck_length": Range(0.3, 0.7),
            "drop": Range(0.0, 0.25),
            "blade_length": Range(0.6, 1.0),
            "back_width": Range(0.35, 0.6),
            "front_width": Range(0.5, 0.9),
            "curl": Range(0.0, 0.06),
        },
        build_spatula,
        ("lift-with", "scrape-with", "spread-with", "mix-with", "press-with"),
    ),
    Family(
        "scraper",
        {
            "handle_length": Range(0.8, 1.2),
            "handle_radius": Range(0.12, 0.18),
            "blade_length": Range(0.4, 0.8),
            "back_width": Range(0.3, 0.5),
            "front_width": Range(0.6, 1.2),
        },
        build_scraper,
        ("scrape-with", "spread-with", "peel-with", "pry-with"),
    ),
)

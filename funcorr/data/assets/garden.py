"""Long-handled floor and garden tools (dig-with, scoop-with, lift-with, sweep-with, scrape-with,
pull-with): shovel, rake, hoe, squeegee, dustpan.

Handles run along -x from the head at the origin; blades and pans face +z, rake tines
and the hoe's edge point to -z.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import bezier, box, rounded_rect, sweep, thick_sheet, tube
from funcorr.data.assets.parts import turned_handle

ALONG = (1.0, 0.0, 0.0)
ACROSS = (0.0, 1.0, 0.0)
UP = (0.0, 0.0, 1.0)
DOWN = (0.0, 0.0, -1.0)
HANDLE_KINDS = ("wood", "wood", "plastic", "metal")


def _pole(draft: Draft, length: float, radius: float, x_end: float = 0.05) -> None:
    x = np.linspace(x_end - length, x_end, 10)
    draft.add("handle", tube(np.stack([x, 0 * x, 0 * x], 1), radius, segments=16))


def build_shovel(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    hl, r = p["handle_length"], p["handle_radius"]
    _pole(d, hl, r)
    if p["d_grip"] == 1:  # D-shaped grip: two splayed sides and a crossbar along y
        end, side, back = -hl + 0.05, 0.13, -hl - 0.3
        out = bezier(np.array([[end, 0, 0], [back + 0.1, -side, 0], [back, -side, 0]]), 8)
        cross = np.stack([np.full(5, back), np.linspace(-side, side, 5), np.zeros(5)], 1)
        back_in = bezier(np.array([[back, side, 0], [back + 0.1, side, 0], [end, 0, 0]]), 8)
        d.add("grip", tube(np.concatenate([out, cross[1:-1], back_in]), 0.8 * r, segments=10))
    length, width, dish = p["blade_length"], p["blade_width"], p["dish"]
    socket = np.array([[-0.25, 0, 0], [0.12, 0, 0.0]])
    d.add("socket", tube(socket, np.array([1.1 * r, 1.6 * r]), segments=14))
    u = np.linspace(0, 1, 22)[:, None]
    v = np.linspace(-1, 1, 13)[None]
    point = (
        np.clip(1 - u ** p["pointiness"], 0.0, 1.0) ** 0.5 if p["pointed"] == 1 else 1 - 0.15 * u**8
    )
    half = 0.5 * width * point + 1e-3
    x = np.broadcast_to(u * length, half.shape[:1] + v.shape[1:])
    z = dish * v**2 * np.ones_like(x) - p["bend"] * u**2
    d.add("blade", thick_sheet(np.stack([x, half * v, z], -1), 0.02))
    tip_z = -p["bend"]
    d.functions["dig-with"] = FunctionSpec("blade", (length, 0, tip_z), ALONG, ACROSS)
    d.functions["scoop-with"] = FunctionSpec(
        "blade", (0.45 * length, 0, 0.6 * dish - 0.2 * p["bend"]), UP, ALONG
    )
    d.functions["lift-with"] = FunctionSpec("blade", (length, 0, tip_z), ALONG, ACROSS, symmetry=2)
    steel = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(
        handle=pick_material(rng, HANDLE_KINDS), grip=pick_material(rng, ("plastic", "wood"))
    )
    d.materials.update(socket=steel, blade=steel)
    return d


def build_rake(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _pole(d, p["handle_length"], p["handle_radius"])
    width, n, tine_len = p["head_width"], int(p["tines"]), p["tine_length"]
    y = np.linspace(-width / 2, width / 2, 8)
    head = np.stack([np.full_like(y, 0.05), y, 0 * y], 1)
    d.add("head", sweep(head, rounded_rect(0.035, 0.03, 0.012), up=ALONG))
    if p["bow"] == 1:  # bow rake: springs from the handle to the ends of the head
        for s in (1, -1):
            bow = bezier(
                np.array(
                    [[-0.35, 0, 0], [-0.2, s * 0.25 * width, 0.15], [0.05, s * 0.45 * width, 0.05]]
                ),
                12,
            )
            d.add("head", tube(bow, 0.018, segments=8))
    curl = p["curl"]
    for yc in np.linspace(-0.48 * width, 0.48 * width, n):
        tine = bezier(
            np.array([[0.05, yc, 0.0], [0.05, yc, -0.6 * tine_len], [0.05 - curl, yc, -tine_len]]),
            6,
        )
        d.add("tines", tube(tine, np.linspace(0.02, 0.01, 6), segments=6))
    edge = FunctionSpec("tines", (0.05 - curl, 0, -tine_len), DOWN, ACROSS, symmetry=2)
    d.functions.update({"sweep-with": edge, "scrape-with": edge})
    steel = pick_material(rng, ("metal", "plastic"))
    d.materials.update(handle=pick_material(rng, HANDLE_KINDS), head=steel, tines=steel)
    return d


def build_hoe(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _pole(d, p["handle_length"], p["handle_radius"])
    drop, reach, height, width = p["neck_drop"], p["reach"], p["blade_height"], p["blade_width"]
    tilt = np.radians(p["tilt"])
    top = np.array([reach, 0, -drop])
    down = np.array(
        [np.sin(tilt), 0, -np.cos(tilt)]
    )  # along the blade face, from its top to its edge
    neck = bezier(
        np.array(
            [[-0.15, 0, 0], [reach * 0.8, 0, 0.02], [reach, 0, -0.4 * drop], top + [0, 0, 0.02]]
        ),
        14,
    )
    d.add("neck", tube(neck, 0.022, segments=10))
    u = np.linspace(0, 1, 8)[:, None, None]
    v = np.linspace(-0.5, 0.5, 10)[None, :, None]
    taper = 1 - p["taper"] * u  # trapezoidal blades narrow towards the edge
    grid = top + u * height * down + v * taper * width * np.array(ACROSS)
    d.add("blade", thick_sheet(grid, 0.02))
    edge_mid = top + height * down
    edge = FunctionSpec("blade", edge_mid, down, ACROSS, symmetry=2)
    facing = np.cross(down, ACROSS)  # the face towards the user (-x side)
    d.functions.update({"dig-with": edge, "scrape-with": edge, "sweep-with": edge})
    d.functions["pull-with"] = FunctionSpec(
        "blade", top + 0.5 * height * down + 0.01 * facing, facing, ACROSS
    )
    steel = pick_material(rng, ("metal",))
    d.materials.update(handle=pick_material(rng, HANDLE_KINDS), neck=steel, blade=steel)
    return d


def build_squeegee(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    turned_handle(d, p["handle_length"], p["handle_radius"], 0.02, (0.8, 1.0, 1.0, 0.9, 0.7))
    width, depth, thick = p["width"], p["channel_depth"], p["channel_thickness"]
    y = np.linspace(-width / 2, width / 2, 6)
    channel = np.stack([np.full_like(y, depth / 2), y, 0 * y], 1)
    d.add(
        "channel",
        sweep(channel, rounded_rect(depth / 2, thick / 2, 0.3 * min(depth, thick)), up=ALONG),
    )
    rubber = p["rubber_length"]
    d.add("rubber", box((rubber + 0.02, 0.98 * width, 0.02), (depth + rubber / 2 - 0.01, 0, 0)))
    edge = FunctionSpec("rubber", (depth + rubber, 0, 0), ALONG, ACROSS, symmetry=2)
    d.functions.update({"sweep-with": edge, "scrape-with": edge})
    d.materials.update(
        handle=pick_material(rng, ("plastic", "wood", "metal")),
        channel=pick_material(rng, ("metal", "plastic")),
    )
    d.materials["rubber"] = pick_material(rng, ("rubber",))
    return d


def build_dustpan(p: Params, rng: np.random.Generator) -> Draft:
    """A tray open at the front: sloping floor, back and side walls, a thin lip, a short handle at -x."""
    d = Draft()
    length, width, height, wall = p["length"], p["width"], p["wall_height"], 0.025
    flare = p["flare"]
    u = np.linspace(0, 1, 16)[:, None]
    v = np.linspace(-0.5, 0.5, 12)[None]
    half = width * (1 + flare * u)
    slope = p["slope"]
    floor_x = np.broadcast_to(u * length, (16, 12))
    floor = np.stack([floor_x, half * v, np.broadcast_to(-slope * u * length, (16, 12))], -1)
    d.add("pan", thick_sheet(floor[:15], wall))
    d.add("lip", thick_sheet(floor[14:], 0.6 * wall))
    hz = np.linspace(0, height, 6)[None]
    back_y = np.linspace(-0.5, 0.5, 12)[:, None] * width
    back = np.stack(
        [np.zeros((12, 6)), np.broadcast_to(back_y, (12, 6)), np.broadcast_to(hz, (12, 6))], -1
    )
    d.add("pan", thick_sheet(back, wall))
    for s in (1, -1):
        rows = np.linspace(0, 0.9, 10)
        top = height * (1 - rows) ** p["wall_curve"] + 0.02
        t = np.linspace(0, 1, 5)[None]
        xs = np.broadcast_to((rows * length)[:, None], (10, 5))
        ys = s * 0.5 * width * (1 + flare * rows)[:, None] * np.ones((1, 5))
        zs = -slope * rows[:, None] * length + t * top[:, None]
        d.add("pan", thick_sheet(np.stack([xs, ys, zs], -1), wall))
    if p["hood"] == 1:
        hx = np.broadcast_to(np.linspace(0, 0.3 * length, 5)[:, None], (5, 12))
        hood = np.stack(
            [hx, np.broadcast_to(back_y[:, 0][None], (5, 12)), np.full((5, 12), height)], -1
        )
        d.add("pan", thick_sheet(hood, wall))
    handle = bezier(
        np.array(
            [
                [0.02, 0, 0.6 * height],
                [-0.2, 0, 0.7 * height],
                [-p["handle_length"], 0, 0.9 * height],
            ]
        ),
        12,
    )
    d.add("handle", tube(handle, 0.05, segments=12, aspect=0.7, up=UP))
    front = (length, 0, -slope * length)
    d.functions["scoop-with"] = FunctionSpec("pan", (0.45 * length, 0, 0.4 * height), UP, ALONG)
    d.functions["lift-with"] = FunctionSpec("lip", front, ALONG, ACROSS)
    body = pick_material(rng, ("plastic", "plastic", "metal"))
    d.materials.update(pan=body, handle=body, lip=pick_material(rng, ("rubber", "plastic")))
    return d


FAMILIES = (
    Family(
        "shovel",
        {
            "handle_length": Range(2.0, 3.0),
            "handle_radius": Range(0.04, 0.06),
            "d_grip": Range(0, 1, integer=True),
            "blade_length": Range(0.6, 0.9),
            "blade_width": Range(0.5, 0.7),
            "pointed": Range(0, 1, integer=True),
            "pointiness": Range(2.0, 5.0),
            "dish": Range(0.04, 0.12),
            "bend": Range(0.0, 0.12),
        },
        build_shovel,
        ("dig-with", "scoop-with", "lift-with"),
    ),
    Family(
        "rake",
        {
            "handle_length": Range(2.2, 3.0),
            "handle_radius": Range(0.035, 0.05),
            "head_width": Range(0.6, 1.0),
            "tines": Range(10, 16, integer=True),
            "tine_length": Range(0.15, 0.25),
            "curl": Range(0.0, 0.06),
            "bow": Range(0, 1, integer=True),
        },
        build_rake,
        ("sweep-with", "scrape-with"),
    ),
    Family(
        "hoe",
        {
            "handle_length": Range(2.0, 2.8),
            "handle_radius": Range(0.035, 0.05),
            "neck_drop": Range(0.1, 0.25),
            "reach": Range(0.1, 0.25),
            "blade_height": Range(0.2, 0.35),
            "blade_width": Range(0.35, 0.6),
            "tilt": Range(-10.0, 30.0),
            "taper": Range(0.0, 0.3),
        },
        build_hoe,
        ("dig-with", "scrape-with", "sweep-with", "pull-with"),
    ),
    Family(
        "squeegee",
        {
            "handle_length": Range(0.8, 2.2),
            "handle_radius": Range(0.05, 0.08),
            "width": Range(0.8, 1.4),
            "channel_depth": Range(0.06, 0.1),
            "channel_thickness": Range(0.05, 0.08),
            "rubber_length": Range(0.06, 0.12),
        },
        build_squeegee,
        ("sweep-with", "scrape-with"),
    ),
    Family(
        "dustpan",
        {
            "length": Range(0.8, 1.1),
            "width": Range(0.8, 1.1),
            "flare": Range(0.0, 0.15),
            "wall_height": Range(0.15, 0.3),
            "wall_curve": Range(0.6, 1.5),
            "slope": Range(0.02, 0.1),
            "hood": Range(0, 1, integer=True),
            "handle_length": Range(0.4, 0.8),
        },
        build_dustpan,
        ("scoop-with", "lift-with"),
    ),
)

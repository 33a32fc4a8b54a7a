"""Thin ends that go under or into things (pry-with, wedge-with, pull-with, peel-with, scrape-with):
crowbar, pry bar, chisel, wedge, door stopper.

Tools lie along +x with the prying or wedging end at +x and its flat faces facing +-z;
one-sided wedges and chisel bevels slope on the +z side, so y = z x x of their frames
points to the sloped face.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import arc, bezier, prism, rounded_rect, sweep, thick_sheet, tube
from funcorr.data.assets.parts import turned_handle

ALONG = (1.0, 0.0, 0.0)
ACROSS = (0.0, 1.0, 0.0)
UP = (0.0, 0.0, 1.0)


def build_crowbar(p: Params, rng: np.random.Generator) -> Draft:
    """Hexagonal bar: a bent chisel end at +x, a gooseneck at -x ending in a split claw."""
    d = Draft()
    length, r = p["length"], p["bar_radius"]
    d.add("shaft", tube(np.array([[-0.01, 0, 0], [length - 0.05, 0, 0]]), r, segments=6))
    bend = np.radians(p["chisel_bend"])
    direction = np.array([np.cos(bend), 0, np.sin(bend)])
    end = np.array([length + 0.05, 0, 0]) + p["chisel_length"] * direction
    chisel = bezier(np.array([[length - 0.1, 0, 0], [length + 0.05, 0, 0], end]), 12)
    t = np.linspace(0, 1, len(chisel))
    flat = np.clip(1.6 * t - 0.4, 0, 1)
    d.add(
        "chisel_end", tube(chisel, r * (1 + 0.35 * flat), segments=6, aspect=1 - 0.85 * flat, up=UP)
    )
    hook_r, sweep_angle = p["hook_radius"], np.radians(p["hook_sweep"])
    neck = arc((0, 0, hook_r), hook_r, -np.pi / 2, -np.pi / 2 - sweep_angle, 24, plane=(0, 2))
    d.add("curve", tube(neck, r, segments=6))
    tangent = neck[-1] - neck[-2]
    tangent /= np.linalg.norm(tangent)
    inward = np.array([0, 0, hook_r]) - neck[-1]
    inward /= np.linalg.norm(inward)
    claw_len = p["claw_length"]
    for side in (-1, 1):
        prong = (
            neck[-1] + np.linspace(-0.03, claw_len, 8)[:, None] * tangent + [0, side * 0.55 * r, 0]
        )
        radius = np.linspace(0.75 * r, 0.35 * r, len(prong))
        d.add(
            "claw",
            tube(prong, radius, segments=8, aspect=np.linspace(1.0, 0.45, len(prong)), up=inward),
        )
    d.functions["pry-with"] = FunctionSpec("chisel_end", end, direction, ACROSS, symmetry=2)
    d.functions["pull-with"] = FunctionSpec("claw", neck[-1] + 0.8 * r * inward, inward, ACROSS)
    steel = pick_material(rng, ("metal", "plastic"))
    d.materials.update(shaft=steel, chisel_end=steel, curve=steel, claw=steel)
    return d


def build_pry_bar(p: Params, rng: np.random.Generator) -> Draft:
    """Flat bar with a gently bent prying blade at +x and a sharply bent nail-pulling end at -x."""
    d = Draft()
    length, width, thick = p["length"], p["width"], p["thickness"]
    rear = np.radians(p["rear_bend"])
    rear_end = np.array([-p["rear_length"] * np.cos(rear), 0, p["rear_length"] * np.sin(rear)])
    back = bezier(np.array([rear_end, [-0.05, 0, 0], [0.15, 0, 0]]), 10)
    body = np.stack([np.linspace(0.15, length, 10), np.zeros(10), np.zeros(10)], 1)
    bend = np.radians(p["front_bend"])
    direction = np.array([np.cos(bend), 0, np.sin(bend)])
    tip = np.array([length + 0.08, 0, 0]) + p["blade_length"] * direction
    front = bezier(np.array([[length, 0, 0], [length + 0.08, 0, 0], tip]), 10)
    path = np.concatenate([back, body[1:], front[1:]])
    n_back, n_body = len(back), len(body) - 1
    taper = np.ones((len(path), 2))
    taper[: n_back // 2, 0] = np.linspace(0.35, 1.0, n_back // 2)
    taper[-6:, 0] = np.linspace(1.0, 0.2, 6)
    taper[-6:, 1] = np.linspace(1.0, 1.1, 6)
    section = rounded_rect(thick / 2, width / 2, 0.3 * thick)
    d.add_by_segment(
        sweep(path, section, taper, up=UP), [(0, "bar"), (n_back + n_body - 1, "blade")]
    )
    d.functions["pry-with"] = FunctionSpec("blade", tip, direction, ACROSS, symmetry=2)
    steel = pick_material(rng, ("metal", "plastic"))
    d.materials.update(bar=steel, blade=steel)
    return d


def build_chisel(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    turned_handle(d, p["handle_length"], p["handle_radius"], -0.12, (0.75, 0.95, 1.0, 0.8, 0.7))
    d.add(
        "bolster",
        tube(
            np.array([[-0.16, 0, 0], [0.05, 0, 0]]),
            np.array([0.7, 0.45]) * p["handle_radius"],
            segments=16,
        ),
    )
    length, width, thick = p["blade_length"], p["blade_width"], p["thickness"]
    u = np.linspace(0, 1, 16)
    v = np.linspace(-0.5, 0.5, 6)
    bevel = np.clip((1 - u) / p["bevel"], 0, 1)
    t = (0.006 + (thick - 0.006) * bevel)[:, None].repeat(len(v), 1)
    half = width / 2 * (1 - p["taper"] * (1 - u))  # firmer chisels narrow towards the handle
    x = np.broadcast_to((u * length)[:, None], t.shape)
    grid = np.stack(
        [x, half[:, None] * 2 * v[None], (t - thick) / 2], -1
    )  # flat back, bevel on top
    d.add("blade", thick_sheet(grid, t))
    edge = (length, 0, -thick / 2 + 0.003)
    wedge = FunctionSpec("blade", edge, ALONG, ACROSS)
    d.functions.update(
        {"pry-with": wedge, "wedge-with": wedge, "peel-with": wedge, "scrape-with": wedge}
    )
    steel = pick_material(rng, ("metal",))
    d.materials.update(
        handle=pick_material(rng, ("wood", "plastic", "rubber")), bolster=steel, blade=steel
    )
    return d


def build_wedge(p: Params, rng: np.random.Generator) -> Draft:
    """Wedge profile in the xz plane (flat bottom, sloped top) extruded along y, optional grip ribs."""
    d = Draft()
    length, height, tip, flat = (
        p["length"],
        p["height"],
        p["tip_height"],
        p["flat_back"] * p["length"],
    )

    def top(x: float) -> float:
        return height if x <= flat else height + (tip - height) * (x - flat) / (length - flat)

    split = 0.7 * length
    back = (
        [(0, 0), (split, 0), (split, top(split))]
        + ([(flat, height)] if flat < split else [])
        + [(0, height)]
    )
    d.add("body", prism(np.array(back), p["width"]))
    d.add(
        "tip",
        prism(np.array([(split, 0), (length, 0), (length, tip), (split, top(split))]), p["width"]),
    )
    ribs = int(p["ribs"])
    rib_w = 0.025
    for x in np.linspace(max(flat, 0.1 * length) + 0.05, 0.8 * length, ribs) if ribs else []:
        rib = [(x - rib_w, top(x - rib_w) - 0.01), (x + rib_w, top(x + rib_w) - 0.01)]
        rib += [(x + rib_w, top(x + rib_w) + 0.025), (x - rib_w, top(x - rib_w) + 0.025)]
        d.add("body", prism(np.array(rib), 0.85 * p["width"]))
    d.functions["wedge-with"] = FunctionSpec("tip", (length, 0, tip / 2), ALONG, ACROSS)
    material = pick_material(
        rng, ("rubber", "plastic") if p["rubber"] == 1 else ("wood", "plastic")
    )
    d.materials.update(body=material, tip=material)
    return d


FAMILIES = (
    Family(
        "crowbar",
        {
            "length": Range(1.8, 2.8),
            "bar_radius": Range(0.035, 0.055),
            "chisel_bend": Range(5.0, 25.0),
            "chisel_length": Range(0.15, 0.25),
            "hook_radius": Range(0.15, 0.25),
            "hook_sweep": Range(150.0, 200.0),
            "claw_length": Range(0.15, 0.25),
        },
        build_crowbar,
        ("pry-with", "pull-with"),
    ),
    Family(
        "pry bar",
        {
            "length": Range(1.2, 1.8),
            "width": Range(0.12, 0.2),
            "thickness": Range(0.025, 0.04),
            "rear_bend": Range(45.0, 100.0),
            "rear_length": Range(0.15, 0.3),
            "front_bend": Range(5.0, 25.0),
            "blade_length": Range(0.12, 0.25),
        },
        build_pry_bar,
        ("pry-with",),
    ),
    Family(
        "chisel",
        {
            "handle_length": Range(0.8, 1.2),
            "handle_radius": Range(0.1, 0.15),
            "blade_length": Range(0.6, 1.0),
            "blade_width": Range(0.1, 0.35),
            "thickness": Range(0.04, 0.07),
            "bevel": Range(0.1, 0.2),
            "taper": Range(0.0, 0.3),
        },
        build_chisel,
        ("pry-with", "wedge-with", "peel-with", "scrape-with"),
    ),
    Family(
        "wedge",
        {
            "length": Range(1.0, 1.6),
            "height": Range(0.1, 0.25),
            "width": Range(0.3, 0.6),
            "tip_height": Range(0.005, 0.02),
            "flat_back": Range(0.0, 0.1),
            "ribs": Range(0, 0, integer=True),
            "rubber": Range(0, 0, integer=True),
        },
        build_wedge,
        ("wedge-with",),
    ),
    Family(
        "door stopper",
        {
            "length": Range(0.8, 1.2),
            "height": Range(0.2, 0.4),
            "width": Range(0.3, 0.45),
            "tip_height": Range(0.01, 0.03),
            "flat_back": Range(0.0, 0.25),
            "ribs": Range(0, 6, integer=True),
            "rubber": Range(0, 1, integer=True),
        },
        build_wedge,
        ("wedge-with",),
    ),
)

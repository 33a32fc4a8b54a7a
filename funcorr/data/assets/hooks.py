"""Hanging tools (hang-onto, pull-with): wall hook and coat hanger, both lying in the xz plane."""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import arc, bezier, box, tube

LOOP_NORMAL = (0.0, 1.0, 0.0)


def build_hook(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, shank, bend, wire = p["bend_radius"], p["shank_length"], p["bend_radius"], p["wire_radius"]
    straight = np.stack([np.zeros(8), np.zeros(8), np.linspace(0, -shank, 8)], 1)
    sweep = np.radians(p["sweep"])
    curve = arc((bend, 0, -shank), r, np.pi, np.pi + sweep, 24)
    end_dir = np.array([-np.sin(np.pi + sweep), 0, np.cos(np.pi + sweep)])
    tip = curve[-1] + np.linspace(0, p["tip_length"], 6)[:, None] * end_dir
    path = np.concatenate([straight, curve[1:], tip[1:]])
    n_shank, n_curve = len(straight) - 1, len(curve) - 1
    radius = np.concatenate(
        [np.full(n_shank + n_curve + 1, wire), np.linspace(wire, 0.6 * wire, len(tip) - 1)]
    )
    d.add_by_segment(
        tube(path, radius, segments=14),
        [(0, "shank"), (n_shank, "curve"), (n_shank + n_curve, "tip")],
    )
    if p["mount"] == 0:
        d.add("mount", box((0.06, 0.35, 0.5), (-0.03 - wire, 0, 0.1)))
    else:
        d.add(
            "mount",
            tube(arc((0, 0, 0.2), 0.15, -np.pi / 2, 1.5 * np.pi, 32), 0.7 * wire, segments=12),
        )
    bottom = np.array([bend, 0, -shank - r])
    d.functions["hang-onto"] = FunctionSpec("curve", bottom + [0, 0, wire], (0, 0, 1), LOOP_NORMAL)
    d.functions["pull-with"] = d.functions["hang-onto"]
    metal = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(shank=metal, curve=metal, tip=metal, mount=metal)
    return d


def build_coat_hanger(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    half, shoulder, wire = p["width"] / 2, p["shoulder"], p["wire_radius"]
    # Body: a flat bar curving down from the neck to both shoulder tips, plus an optional bar underneath.
    bar = bezier(
        np.array(
            [
                [-half, 0, 0],
                [-0.45 * half, 0, shoulder * 1.2],
                [0.45 * half, 0, shoulder * 1.2],
                [half, 0, 0],
            ]
        ),
        40,
    )
    d.add("body", tube(bar, p["bar_radius"], segments=16, aspect=p["bar_flat"], up=(0, 1, 0)))
    if p["bottom_bar"] == 1:
        d.add(
            "body", tube(np.array([[-half * 0.98, 0, 0], [half * 0.98, 0, 0]]), wire, segments=12)
        )
    top = bar[len(bar) // 2]
    neck = np.stack(
        [np.zeros(6), np.zeros(6), np.linspace(top[2] - 0.05, top[2] + p["neck"], 6)], 1
    )
    r = p["hook_radius"]
    curve = arc((r, 0, neck[-1, 2]), r, np.pi, np.radians(-40), 28)
    path = np.concatenate([neck, curve[1:]])
    d.add("hook", tube(path, wire, segments=12))
    summit = np.array([r, 0, neck[-1, 2] + r])
    d.functions["hang-onto"] = FunctionSpec("hook", summit - [0, 0, wire], (0, 0, -1), LOOP_NORMAL)
    d.materials.update(
        body=pick_material(rng, ("wood", "plastic", "metal")), hook=pick_material(rng, ("metal",))
    )
    return d


FAMILIES = (
    Family(
        "hook",
        {
            "bend_radius": Range(0.2, 0.35),
            "shank_length": Range(0.5, 1.0),
            "sweep": Range(160, 230),
            "tip_length": Range(0.05, 0.3),
            "wire_radius": Range(0.04, 0.07),
            "mount": Range(0, 1, integer=True),
        },
        build_hook,
        ("hang-onto", "pull-with"),
    ),
    Family(
        "coat hanger",
        {
            "width": Range(1.6, 2.2),
            "shoulder": Range(0.25, 0.5),
            "bar_radius": Range(0.05, 0.09),
            "bar_flat": Range(0.3, 1.0),
            "bottom_bar": Range(0, 1, integer=True),
            "neck": Range(0.1, 0.3),
            "hook_radius": Range(0.2, 0.32),
            "wire_radius": Range(0.03, 0.045),
        },
        build_coat_hanger,
        ("hang-onto",),
    ),
)

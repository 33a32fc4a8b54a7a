"""Vessels (pour-with, scoop-with, hang-onto, roll-onto): kettle, teapot, bottle, mug, jug, watering can.

All stand on z = 0 with the opening up; spouts point towards +x, handles sit at -x.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import bezier, lathe, rounded_profile, tube

UP = (0.0, 0.0, 1.0)
AWAY_FROM_HANDLE = (1.0, 0.0, 0.0)
BODY_KINDS = ("ceramic", "metal", "plastic")


def _spout(
    draft: Draft, controls: np.ndarray, r_base: float, r_tip: float, part: str = "spout"
) -> FunctionSpec:
    """Tapered tube along a Bezier centre line; returns the pour-with spec at its tip."""
    path = bezier(controls, 24)
    draft.add(part, tube(path, np.linspace(r_base, r_tip, len(path)), segments=20))
    direction = path[-1] - path[-2]
    return FunctionSpec(part, path[-1], direction, UP)


def _side_handle(
    draft: Draft, wall_x: float, z_low: float, z_high: float, reach: float, radius: float
) -> np.ndarray:
    """C-shaped handle in the xz plane at -x, starting inside the wall; returns its centre line (N, 3)."""
    controls = np.array(
        [
            [wall_x + radius, 0, z_high],
            [wall_x - reach * 1.3, 0, z_high + 0.1 * reach],
            [wall_x - reach * 1.3, 0, z_low - 0.1 * reach],
            [wall_x + radius, 0, z_low],
        ]
    )
    path = bezier(controls, 28)
    draft.add("handle", tube(path, radius, segments=16, aspect=0.6, up=(0, 1, 0)))
    return path


def _hang_spec(path: np.ndarray, radius: float) -> FunctionSpec:
    """hang-onto frame on a handle loop: its inner top, normal pointing into the loop."""
    centre = path.mean(0)
    top = path[np.argmax(path[:, 2] - 0.3 * np.abs(path[:, 0] - centre[0]))]
    inward = centre - top
    inward /= np.linalg.norm(inward)
    return FunctionSpec("handle", top + radius * inward, inward, (0, 1, 0))


def _lid(draft: Draft, radius: float, z: float, height: float) -> None:
    knob = 0.22 * radius
    profile = [
        (0, z),
        (radius, z),
        (radius * 0.9, z + 0.35 * height),
        (radius * 0.5, z + 0.8 * height),
        (knob, z + height),
        (knob * 1.3, z + 1.4 * height),
        (0, z + 1.5 * height),
    ]
    draft.add("lid", lathe(np.array(profile), 40))


def build_kettle(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, h, top = p["body_radius"], p["body_height"], p["body_radius"] * p["shoulder"]
    profile = [
        (0, 0),
        (0.92 * r, 0),
        (r, 0.06 * h),
        (1.02 * r, 0.45 * h),
        (r, 0.7 * h),
        (top + 0.35 * (r - top), 0.92 * h),
        (top, h),
        (0, h),
    ]
    d.add("body", lathe(rounded_profile(profile, 2), 48))
    _lid(d, top * 0.95, h, p["lid_height"])
    angle = np.radians(p["spout_angle"])
    base = np.array([0.55 * r, 0, 0.3 * h])
    tip = np.array(
        [r + p["spout_length"] * np.cos(angle), 0, 0.3 * h + p["spout_length"] * np.sin(angle)]
    )
    mid = np.array(
        [r + 0.35 * p["spout_length"] * np.cos(angle), 0, 0.32 * h + 0.15 * p["spout_length"]]
    )
    d.functions["pour-with"] = _spout(
        d, np.array([base, mid, tip]), p["spout_radius"] * 1.7, p["spout_radius"] * 0.7
    )
    arch = np.array(
        [
            [-0.7 * top, 0, h - 0.05],
            [-0.6 * top, 0, h + p["handle_height"] * 1.3],
            [0.6 * top, 0, h + p["handle_height"] * 1.3],
            [0.7 * top, 0, h - 0.05],
        ]
    )
    d.add("handle", tube(bezier(arch, 28), 0.09, segments=16, aspect=0.7, up=(0, 1, 0)))
    body = pick_material(rng, BODY_KINDS)
    d.materials.update(
        body=body, lid=body, spout=body, handle=pick_material(rng, ("plastic", "rubber", "wood"))
    )
    return d


def build_teapot(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, h = p["body_radius"], p["body_height"]
    opening = p["opening"] * r
    # Ellipse from where it meets the foot (radius 0.62 r) up to the lid opening.
    angles = np.linspace(-np.arccos(0.62), np.arccos(p["opening"]), 18)
    ellipse = [(r * np.cos(a), h / 2 + h / 2 * np.sin(a)) for a in angles]
    profile = [(0, 0), (0.6 * r, 0)] + ellipse + [(0, ellipse[-1][1])]
    d.add("body", lathe(np.array(profile), 48))
    top_z = ellipse[-1][1]
    _lid(d, opening, top_z, 0.12 * h)
    base = np.array([0.6 * r, 0, 0.3 * h])
    tip = base + np.array(
        [r * 0.4 + p["spout_length"], 0, p["spout_length"] * np.tan(np.radians(p["spout_angle"]))]
    )
    s_curve = np.array(
        [
            base,
            base + [0.7 * r, 0, -0.05 * h],
            tip - [0.25 * p["spout_length"], 0, 0.4 * (tip[2] - base[2])],
            tip,
        ]
    )
    d.functions["pour-with"] = _spout(d, s_curve, p["spout_radius"] * 1.8, p["spout_radius"] * 0.6)
    handle_r = 0.08
    _side_handle(d, -0.9 * r, 0.25 * h, 0.8 * h, p["handle_reach"], handle_r)
    body = pick_material(rng, ("ceramic", "ceramic", "metal"))
    d.materials.update(body=body, lid=body, spout=body, handle=body)
    return d


def build_bottle(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, hb, rn = p["body_radius"], p["body_height"], p["body_radius"] * p["neck_ratio"]
    neck_top = hb + p["shoulder_height"] + p["neck_height"]
    lip, wall = 0.12 * rn, 0.25 * rn
    profile = [
        (0, 0),
        (0.9 * r, 0),
        (r, 0.05 * hb),
        (r, hb),  # body: segments 0-2
        (0.5 * (r + rn), hb + 0.6 * p["shoulder_height"]),
        (rn, hb + p["shoulder_height"]),  # shoulder: 3-4
        (rn, neck_top - 2 * lip),
        (rn + lip, neck_top - 1.5 * lip),
        (rn + lip, neck_top - 0.5 * lip),
        (rn, neck_top),
        (rn - wall, neck_top),
        (rn - wall, neck_top - 3 * lip),
        (0, neck_top - 3 * lip),
    ]
    d.add_by_segment(lathe(np.array(profile), 48), [(0, "body"), (5, "neck")])
    d.functions["pour-with"] = FunctionSpec(
        "neck", (0, 0, neck_top), UP, AWAY_FROM_HANDLE, symmetry=0
    )
    d.functions["roll-onto"] = FunctionSpec(
        "body", (0, 0, hb / 2), UP, AWAY_FROM_HANDLE, symmetry=0
    )
    glass = pick_material(rng, ("glass", "plastic"))
    d.materials.update(body=glass, neck=glass)
    return d


def _open_cup(r: float, h: float, wall: float, band: float) -> np.ndarray:
    """Thin-walled cup profile; segments 3-6 form the rim band (outer top, lip, inner top)."""
    return np.array(
        [
            (0, 0),
            (0.95 * r, 0),
            (r, 0.05 * h),
            (r, h - band),
            (r, h),
            (r - wall / 2, h + wall / 2),
            (r - wall, h),
            (r - wall, h - band),
            (r - wall, wall),
            (0, wall),
        ]
    )


def build_mug(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, h, wall = p["radius"], p["height"], p["wall"]
    d.add_by_segment(
        lathe(_open_cup(r, h, wall, 0.18 * h), 48), [(0, "body"), (3, "rim"), (7, "body")]
    )
    radius = p["handle_thickness"]
    path = _side_handle(d, -r, h * p["handle_low"], h * 0.85, p["handle_reach"], radius)
    rim = FunctionSpec("rim", (0, 0, h), UP, AWAY_FROM_HANDLE, symmetry=0)
    d.functions.update({"pour-with": rim, "scoop-with": rim, "hang-onto": _hang_spec(path, radius)})
    body = pick_material(rng, ("ceramic", "ceramic", "plastic", "metal"))
    d.materials.update(body=body, rim=body, handle=body)
    return d


def build_jug(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, h, wall = p["radius"], p["height"], 0.06
    waist, top = r * p["waist"], r * p["flare"]
    profile = [
        (0, 0),
        (0.95 * r, 0),
        (r, 0.05 * h),
        (r, 0.4 * h),
        (waist, 0.75 * h),
        (top, h),
        (top - wall / 2, h + wall / 2),
        (top - wall, h),
        (waist - wall, 0.75 * h),
        (r - wall, 0.4 * h),
        (r - wall, wall),
        (0, wall),
    ]
    d.add("body", lathe(np.array(profile), 48))
    base = np.array([top - 2.5 * wall, 0, h - 0.08 * h])
    tip = np.array([top + p["spout_length"], 0, h + 0.45 * p["spout_length"]])
    d.functions["pour-with"] = _spout(
        d, np.array([base, 0.5 * (base + tip) + [0, 0, -0.05], tip]), 0.28 * top, 0.16 * top
    )
    _side_handle(d, -r * 0.95, 0.3 * h, 0.85 * h, p["handle_reach"], 0.09)
    body = pick_material(rng, BODY_KINDS + ("glass",))
    d.materials.update(body=body, spout=body, handle=body)
    return d


def build_watering_can(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, h = p["radius"], p["height"]
    profile = [
        (0, 0),
        (0.95 * r, 0),
        (r, 0.05 * h),
        (r, 0.9 * h),
        (0.85 * r, h),
        (0.3 * r, h),
        (0.3 * r, 1.08 * h),
        (0, 1.08 * h),
    ]
    d.add("body", lathe(np.array(profile), 48))
    angle = np.radians(p["spout_angle"])
    base = np.array([0.5 * r, 0, 0.12 * h])
    direction = np.array([np.cos(angle), 0, np.sin(angle)])
    tip = np.array([r, 0, 0.12 * h]) + p["spout_length"] * direction
    path = np.linspace(base, tip, 20)
    rose_len = 0.25
    rose_path = np.linspace(tip - 0.02 * direction, tip + rose_len * direction, 6)
    d.add("spout", tube(path, np.linspace(0.09, 0.06, len(path)), segments=16))
    d.add(
        "spout", tube(rose_path, np.linspace(0.06, p["rose_radius"], len(rose_path)), segments=24)
    )
    d.functions["pour-with"] = FunctionSpec("spout", rose_path[-1], direction, UP)
    arch = np.array(
        [
            [-0.9 * r, 0, 0.75 * h],
            [-1.2 * r, 0, 1.45 * h],
            [0.1 * r, 0, 1.45 * h],
            [0.4 * r, 0, 0.98 * h],
        ]
    )
    d.add("handle", tube(bezier(arch, 28), 0.08, segments=16, aspect=0.7, up=(0, 1, 0)))
    body = pick_material(rng, ("plastic", "metal"))
    d.materials.update(body=body, spout=body, handle=body)
    return d


FAMILIES = (
    Family(
        "kettle",
        {
            "body_radius": Range(0.9, 1.3),
            "body_height": Range(1.0, 1.6),
            "shoulder": Range(0.45, 0.75),
            "spout_length": Range(0.7, 1.2),
            "spout_angle": Range(30, 60),
            "spout_radius": Range(0.1, 0.16),
            "lid_height": Range(0.1, 0.2),
            "handle_height": Range(0.35, 0.7),
        },
        build_kettle,
        ("pour-with",),
    ),
    Family(
        "teapot",
        {
            "body_radius": Range(0.9, 1.2),
            "body_height": Range(0.9, 1.3),
            "opening": Range(0.35, 0.55),
            "spout_length": Range(0.5, 0.9),
            "spout_angle": Range(30, 55),
            "spout_radius": Range(0.09, 0.14),
            "handle_reach": Range(0.35, 0.6),
        },
        build_teapot,
        ("pour-with",),
    ),
    Family(
        "bottle",
        {
            "body_radius": Range(0.3, 0.55),
            "body_height": Range(1.0, 2.0),
            "neck_ratio": Range(0.3, 0.55),
            "shoulder_height": Range(0.15, 0.5),
            "neck_height": Range(0.25, 0.6),
        },
        build_bottle,
        ("pour-with", "roll-onto"),
    ),
    Family(
        "mug",
        {
            "radius": Range(0.4, 0.6),
            "height": Range(0.8, 1.3),
            "wall": Range(0.04, 0.08),
            "handle_reach": Range(0.25, 0.45),
            "handle_thickness": Range(0.05, 0.08),
            "handle_low": Range(0.15, 0.35),
        },
        build_mug,
        ("pour-with", "scoop-with", "hang-onto"),
    ),
    Family(
        "jug",
        {
            "radius": Range(0.5, 0.75),
            "height": Range(1.2, 1.9),
            "waist": Range(0.7, 0.9),
            "flare": Range(0.75, 1.0),
            "spout_length": Range(0.2, 0.4),
            "handle_reach": Range(0.3, 0.5),
        },
        build_jug,
        ("pour-with",),
    ),
    Family(
        "watering can",
        {
            "radius": Range(0.6, 0.9),
            "height": Range(0.9, 1.4),
            "spout_angle": Range(30, 55),
            "spout_length": Range(1.0, 1.6),
            "rose_radius": Range(0.12, 0.2),
        },
        build_watering_can,
        ("pour-with",),
    ),
)

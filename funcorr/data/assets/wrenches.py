"""Turning tools (apply torque-with, pry-with): wrench, allen wrench, ratchet, tire iron.

The functional frame of apply torque-with sits on the axis of the turned nut or screw
(inside the jaw, the socket or the key tip) with x along the lever arm towards the
handle. Flat tools lie in the xy plane with their faces towards +-z.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import arc, bezier, box, lathe, rounded_rect, sweep, tube
from funcorr.data.assets.parts import flat_grip

UP = (0.0, 0.0, 1.0)
DOWN = (0.0, 0.0, -1.0)
ACROSS = (0.0, 1.0, 0.0)
TOWARDS_HANDLE = (-1.0, 0.0, 0.0)
TOOL_STEEL = ("metal", "metal", "rubber")


def _ring(
    centre: tuple[float, float],
    mid_radius: float,
    band: float,
    thick: float,
    start: float,
    stop: float,
) -> tuple:
    """Flat ring or C (band wide radially, ``thick`` along z) around a centre in the xy plane."""
    path = arc((centre[0], centre[1], 0.0), mid_radius, start, stop, 40, plane=(0, 1))
    return sweep(path, rounded_rect(thick / 2, band / 2, 0.3 * min(thick, band)), up=UP)


def build_wrench(p: Params, rng: np.random.Generator) -> Draft:
    """Combination wrench: an open jaw at +x (tilted 15 degrees), a ring or a plain end at x = 0."""
    d = Draft()
    length, width, thick = p["length"], p["width"], p["thickness"]
    outer, nut = p["jaw_radius"], p["opening"] * p["jaw_radius"]
    mid = (outer + nut) / 2
    half_open = np.arcsin(min(0.95, nut / mid)) + 0.15
    tilt = np.radians(15.0)
    d.add(
        "jaw",
        _ring((length, 0), mid, outer - nut, thick, tilt + half_open, tilt + 2 * np.pi - half_open),
    )
    ring_r = p["ring_radius"]
    if p["ring"] == 1:
        d.add("ring", _ring((0.0, 0.0), 0.7 * ring_r, 0.55 * ring_r, 0.9 * thick, 0.0, 2 * np.pi))
        start = 0.9 * ring_r
    else:
        start = 0.0
    u = np.linspace(0, 1, 12)
    path = np.stack([start - 0.02 + u * (length - outer - start + 0.08), 0 * u, 0 * u], 1)
    waist = np.stack([0.75 + 0.25 * np.abs(2 * u - 1), 1 - p["waist"] * np.sin(np.pi * u)], 1)
    d.add("handle", sweep(path, rounded_rect(0.45 * thick, width / 2, 0.2 * width), waist, up=UP))
    d.functions["apply torque-with"] = FunctionSpec("jaw", (length, 0, 0), UP, TOWARDS_HANDLE)
    steel = pick_material(rng, ("metal",))
    d.materials.update(jaw=steel, ring=steel, handle=steel)
    return d


def build_allen_wrench(p: Params, rng: np.random.Generator) -> Draft:
    """L-shaped hex key: long arm along -x, short arm along +y; its end turns the screw."""
    d = Draft()
    a, long_arm, short_arm = p["hex_radius"], p["long_arm"], p["short_arm"]
    bend = 1.6 * a
    angles = np.arange(6) * np.pi / 3
    hexagon = a * np.stack([np.cos(angles), np.sin(angles)], 1)
    straight = np.stack([np.linspace(-long_arm, -bend, 6), np.zeros(6), np.zeros(6)], 1)
    corner = arc((-bend, bend, 0), bend, -np.pi / 2, 0, 8, plane=(0, 1))
    tip_from = short_arm * (1 - p["tip_fraction"])
    up_arm = np.stack([np.zeros(6), np.linspace(bend, tip_from, 6), np.zeros(6)], 1)
    tip = np.stack([np.zeros(3), np.linspace(tip_from, short_arm, 3), np.zeros(3)], 1)
    path = np.concatenate([straight, corner[1:], up_arm[1:], tip[1:]])
    first_tip = len(path) - len(tip)
    d.add_by_segment(sweep(path, hexagon, up=UP), [(0, "shaft"), (first_tip, "tip")])
    centre = (0, (tip_from + short_arm) / 2, 0)
    d.functions["apply torque-with"] = FunctionSpec("tip", centre, ACROSS, TOWARDS_HANDLE)
    steel = pick_material(rng, TOOL_STEEL)
    d.materials.update(shaft=steel, tip=steel)
    return d


def _socket(radius: float, length: float, depth: float) -> np.ndarray:
    """(r, z) profile of a socket from z = 0 (drive end) to z = length (opening), hollow to ``depth``."""
    inner = 0.62 * radius
    return np.array(
        [
            (0, 0),
            (0.85 * radius, 0),
            (radius, 0.1 * length),
            (radius, 0.92 * length),
            (0.95 * radius, length),
            (inner, length),
            (inner, length - depth),
            (0, length - depth),
        ]
    )


def build_ratchet(p: Params, rng: np.random.Generator) -> Draft:
    """Socket ratchet: a round head at the origin, a socket below it (opening to -z), a handle along -x."""
    d = Draft()
    head_r, head_t = p["head_radius"], p["head_thickness"]
    profile = [(0, -head_t / 2), (0.9 * head_r, -head_t / 2), (head_r, -0.3 * head_t)]
    profile += [(head_r, 0.3 * head_t), (0.9 * head_r, head_t / 2), (0, head_t / 2)]
    d.add("head", lathe(np.array(profile), 40))
    d.add(
        "head", box((0.5 * head_r, 0.2 * head_r, 0.1), (0.1 * head_r, 0, head_t / 2))
    )  # direction lever
    socket_r, socket_l = p["socket_radius"], p["socket_length"]
    mesh, seg = lathe(_socket(socket_r, socket_l, 0.6 * socket_l), 32)
    mesh.apply_transform(np.diag([1.0, -1.0, -1.0, 1.0]))  # flip so the opening faces -z
    mesh.apply_translation((0, 0, -head_t / 2 + 0.01))
    d.add("socket", (mesh, seg))
    neck = np.array([[-0.95 * head_r, 0, 0], [-0.2 * head_r, 0, 0]])
    d.add(
        "head",
        sweep(
            neck,
            rounded_rect(0.4 * head_t, 0.55 * head_r, 0.1),
            np.array([[1.0, 0.8], [1.0, 1.0]]),
            up=UP,
        ),
    )
    grip = p["grip_width"]
    flat_grip(d, p["handle_length"], grip, 0.7 * grip, -0.8 * head_r, (0.7, 0.9, 1.0, 1.0, 0.75))
    origin = (0, 0, -head_t / 2 - 0.5 * socket_l)
    d.functions["apply torque-with"] = FunctionSpec("socket", origin, DOWN, TOWARDS_HANDLE)
    steel = pick_material(rng, ("metal",))
    d.materials.update(
        head=steel, socket=steel, handle=pick_material(rng, ("metal", "rubber", "plastic"))
    )
    return d


def build_tire_iron(p: Params, rng: np.random.Generator) -> Draft:
    """L-shaped lug wrench: a bar along x bent up at +x into a socket; a flattened pry tip at -x."""
    d = Draft()
    length, r, riser, bend = p["length"], p["bar_radius"], p["riser"], 2.5 * p["bar_radius"]
    straight = np.stack([np.linspace(0, length - bend, 8), np.zeros(8), np.zeros(8)], 1)
    corner = arc((length - bend, 0, bend), bend, -np.pi / 2, 0, 8, plane=(0, 2))
    up = np.stack([np.full(5, length), np.zeros(5), np.linspace(bend, riser, 5)], 1)
    d.add("shaft", tube(np.concatenate([straight, corner[1:], up[1:]]), r, segments=14))
    socket_r, socket_l = p["socket_radius"], p["socket_length"]
    mesh, seg = lathe(_socket(socket_r, socket_l, 0.6 * socket_l), 32)
    mesh.apply_translation((length, 0, riser - 0.02))
    d.add("socket", (mesh, seg))
    angle = np.radians(p["tip_bend"])
    direction = np.array([-np.cos(angle), 0, -np.sin(angle)])
    tip_end = np.array([-0.05, 0, 0]) + p["tip_length"] * direction
    path = bezier(np.array([[0.08, 0, 0], [-0.05, 0, 0], tip_end]), 10)
    t = np.clip(np.linspace(-0.3, 1, len(path)), 0, 1)
    d.add("tip", tube(path, r * (1 + 0.4 * t), segments=14, aspect=1 - 0.8 * t, up=UP))
    d.functions["apply torque-with"] = FunctionSpec(
        "socket", (length, 0, riser + 0.5 * socket_l), UP, TOWARDS_HANDLE
    )
    d.functions["pry-with"] = FunctionSpec("tip", tip_end, direction, ACROSS, symmetry=2)
    steel = pick_material(rng, TOOL_STEEL)
    d.materials.update(shaft=steel, socket=pick_material(rng, ("metal",)), tip=steel)
    return d


FAMILIES = (
    Family(
        "wrench",
        {
            "length": Range(1.6, 2.4),
            "width": Range(0.12, 0.2),
            "thickness": Range(0.04, 0.07),
            "jaw_radius": Range(0.16, 0.26),
            "opening": Range(0.4, 0.6),
            "ring": Range(0, 1, integer=True),
            "ring_radius": Range(0.13, 0.2),
            "waist": Range(0.0, 0.25),
        },
        build_wrench,
        ("apply torque-with",),
    ),
    Family(
        "allen wrench",
        {
            "hex_radius": Range(0.04, 0.08),
            "long_arm": Range(1.2, 2.0),
            "short_arm": Range(0.3, 0.6),
            "tip_fraction": Range(0.3, 0.45),
        },
        build_allen_wrench,
        ("apply torque-with",),
    ),
    Family(
        "ratchet",
        {
            "head_radius": Range(0.16, 0.24),
            "head_thickness": Range(0.1, 0.16),
            "socket_radius": Range(0.1, 0.16),
            "socket_length": Range(0.18, 0.3),
            "handle_length": Range(1.2, 1.8),
            "grip_width": Range(0.14, 0.2),
        },
        build_ratchet,
        ("apply torque-with",),
    ),
    Family(
        "tire iron",
        {
            "length": Range(1.6, 2.4),
            "bar_radius": Range(0.04, 0.06),
            "riser": Range(0.3, 0.5),
            "socket_radius": Range(0.1, 0.14),
            "socket_length": Range(0.18, 0.28),
            "tip_length": Range(0.15, 0.25),
            "tip_bend": Range(0.0, 20.0),
        },
        build_tire_iron,
        ("apply torque-with", "pry-with"),
    ),
)

"""Two-jawed tools (pick up-with, apply torque-with): tongs, tweezers, pliers, chopsticks, grabber.

The jaws point to +x and close along z (tongs, tweezers: lying on one arm, as they do on
a table) or along y (pliers, chopsticks, grabber: lying flat). The pick up-with origin is
midway between the two tip ends.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import (
    arc,
    bezier,
    box,
    lathe,
    rounded_rect,
    sweep,
    thick_sheet,
    tube,
)

ALONG = (1.0, 0.0, 0.0)
ACROSS = (0.0, 1.0, 0.0)
UP = (0.0, 0.0, 1.0)
TOWARDS_HANDLE = (-1.0, 0.0, 0.0)


def _arm_path(
    length: float, back: float, bow: float, front: float, sign: float, n: int = 20
) -> np.ndarray:
    """Centre line (n, 3) of one arm in the xz plane from (0, 0, sign * back) to (length, 0, sign * front)."""
    controls = [
        [0, 0, back],
        [0.45 * length, 0, back + bow],
        [0.8 * length, 0, front + 0.5 * bow],
        [length, 0, front],
    ]
    return bezier(np.array(controls) * [1, 1, sign], n)


def build_tongs(p: Params, rng: np.random.Generator) -> Draft:
    """Spring tongs: two strips joined by a loop at the back, with cupped scalloped pads at the front."""
    d = Draft()
    length, width, thick = p["length"], p["width"], p["thickness"]
    back, gap, bow = p["hinge"], p["gap"], p["bow"]
    loop = arc((0, 0, 0), back, np.pi / 2, 3 * np.pi / 2, 12, plane=(0, 2))
    arms = [_arm_path(length, back, bow, gap + thick, s) for s in (1, -1)]
    path = np.concatenate([arms[0][::-1], loop[1:-1], arms[1]])
    # Parallel transport keeps the strip's width along y round the loop (a fixed up would flip there).
    d.add("arms", sweep(path, rounded_rect(thick / 2, width / 2, 0.45 * thick)))
    if p["grips"] == 1:
        for arm in arms:
            d.add(
                "handle",
                sweep(arm[2:9], rounded_rect(1.5 * thick, 0.6 * width, 1.2 * thick), up=(0, 0, 1)),
            )
    pad_len, pad_w, cup = p["pad_length"], p["pad_width"], p["cup"]
    u = np.linspace(0, 1, 10)[:, None]
    v = np.linspace(-1, 1, 9)[None]
    for s in (1, -1):
        x = np.broadcast_to(length - 0.05 + u * pad_len, (10, 9))
        scallop = 0.02 * np.cos(2 * np.pi * p["scallops"] * u)
        z = s * (gap + cup * v**2 - scallop - 0.3 * cup * u)
        d.add(
            "tips",
            thick_sheet(np.stack([x, np.broadcast_to(0.5 * pad_w * v, x.shape), z], -1), thick),
        )
    tip = (length - 0.05 + pad_len, 0, 0)
    d.functions["pick up-with"] = FunctionSpec("tips", tip, ALONG, UP, symmetry=2)
    steel = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(
        arms=steel, tips=steel if rng.uniform() < 0.5 else pick_material(rng, ("rubber", "plastic"))
    )
    d.materials["handle"] = pick_material(rng, ("rubber", "plastic"))
    return d


def build_tweezers(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, width, thick, gap = p["length"], p["width"], p["thickness"], p["gap"]
    tip_w = p["tip_width"]
    tips_from = int(0.8 * 20)
    for s in (1, -1):
        path = _arm_path(length, thick / 2, gap, thick / 2 + 0.003, s, 20)
        t = np.linspace(0, 1, 20)
        half = np.interp(t, [0, 0.3, 0.75, 1.0], [0.8, 1.0, 0.8, tip_w])
        scale = np.stack([np.ones(20), half], 1)
        piece = sweep(path, rounded_rect(thick / 2, width / 2, 0.45 * thick), scale, up=(0, 0, 1))
        d.add_by_segment(piece, [(0, "arms"), (tips_from, "tips")])
    d.add("arms", box((0.12 * length, 0.95 * width, 2.2 * thick), (0.05 * length, 0, 0)))
    d.functions["pick up-with"] = FunctionSpec("tips", (length, 0, 0), ALONG, UP, symmetry=2)
    steel = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(arms=steel, tips=steel)
    return d


def build_pliers(p: Params, rng: np.random.Generator) -> Draft:
    """Two crossing levers in the xy plane: jaws at +x, pivot at the origin, handles spreading at -x."""
    d = Draft()
    jaw_len, jaw_w, thick = p["jaw_length"], p["jaw_width"], p["thickness"]
    taper = p["taper"]
    u = np.linspace(0, 1, 10)
    section = rounded_rect(thick / 2, jaw_w / 2, 0.3 * min(thick, jaw_w))
    for s in (1, -1):
        width = 1 - (1 - taper) * u**1.2
        y = s * (0.004 + 0.5 * jaw_w * width)
        path = np.stack([-0.15 + u * (jaw_len + 0.15), y, np.full_like(u, s * 0.2 * thick)], 1)
        d.add("jaws", sweep(path, section, np.stack([np.linspace(1, 0.7, 10), width], 1), up=UP))
        length, spread = p["handle_length"], p["spread"]
        handle = bezier(
            np.array(
                [
                    [0.1, 0, s * 0.2 * thick],
                    [-0.3 * length, -s * 0.05, 0],
                    [-length, -s * spread, 0],
                ]
            ),
            16,
        )
        d.add(
            "arms", sweep(handle[:6], rounded_rect(0.45 * thick, 0.4 * jaw_w, 0.2 * thick), up=UP)
        )
        grip = rounded_rect(0.6 * thick, 0.55 * jaw_w, 0.5 * thick)
        d.add(
            "handle",
            sweep(handle[4:], grip, np.stack([np.ones(12), np.linspace(1.0, 1.25, 12)], 1), up=UP),
        )
    d.add(
        "pivot",
        lathe(
            np.array(
                [
                    (0, -0.7 * thick),
                    (0.45 * jaw_w, -0.7 * thick),
                    (0.45 * jaw_w, 0.7 * thick),
                    (0, 0.7 * thick),
                ]
            ),
            24,
        ),
    )
    d.functions["pick up-with"] = FunctionSpec("jaws", (jaw_len, 0, 0), ALONG, ACROSS, symmetry=2)
    d.functions["apply torque-with"] = FunctionSpec(
        "jaws", (0.45 * jaw_len, 0, 0), UP, TOWARDS_HANDLE
    )
    steel = pick_material(rng, ("metal",))
    d.materials.update(
        jaws=steel, arms=steel, handle=pick_material(rng, ("rubber", "plastic")), pivot=steel
    )
    return d


def build_chopsticks(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, back, tip_gap = p["length"], p["back_width"], p["tip_gap"]
    spread, lift = p["spread"], p["lift"]
    square = rounded_rect(back / 2, back / 2, p["roundness"] * back / 2)
    tips = []
    for s in (1, -1):
        start = np.array([0.0, s * spread / 2, s * lift / 2])
        end = np.array([length, s * (tip_gap / 2 + 0.35 * back * p["tip_ratio"]), 0.0])
        path = start + np.linspace(0, 1, 10)[:, None] * (end - start)
        scale = np.linspace(1, p["tip_ratio"], 10)
        d.add_by_segment(sweep(path, square, scale, up=UP), [(0, "shaft"), (7, "tip")])
        tips.append(end)
    direction = np.array([length, 0, 0])
    d.functions["pick up-with"] = FunctionSpec(
        "tip", np.mean(tips, 0), direction, ACROSS, symmetry=2
    )
    wood = pick_material(rng, ("wood", "wood", "plastic", "metal"))
    d.materials.update(shaft=wood, tip=wood)
    return d


def build_grabber(p: Params, rng: np.random.Generator) -> Draft:
    """Reacher: a pistol grip with a trigger, a long shaft, two fingers with pads at +x."""
    d = Draft()
    length, r = p["shaft_length"], p["shaft_radius"]
    d.add("shaft", tube(np.array([[-0.05, 0, 0], [length, 0, 0]]), r, segments=14))
    grip_len = p["grip_length"]
    grip = np.array([[0.05, 0, 0.02], [-0.15, 0, -grip_len]])
    d.add(
        "handle",
        sweep(grip, rounded_rect(0.08, 0.06, 0.04), np.array([[1.0, 1.0], [1.2, 1.1]]), up=ALONG),
    )
    d.add("handle", box((0.25, 0.1, 0.14), (-0.02, 0, 0.03)))
    trigger = bezier(np.array([[0.15, 0, -0.02], [0.2, 0, -0.15], [0.12, 0, -0.3]]), 8)
    d.add("handle", tube(trigger, 0.03, segments=8, aspect=0.6, up=ACROSS))
    d.add("head", box((0.14, 0.1, 0.08), (length + 0.03, 0, 0)))
    finger, gap = p["finger_length"], p["gap"]
    for s in (1, -1):
        path = bezier(
            np.array(
                [
                    [length + 0.05, s * 0.03, 0],
                    [length + 0.5 * finger, s * (gap + 0.1), 0],
                    [length + finger, s * gap, 0],
                ]
            ),
            12,
        )
        d.add("grippers", sweep(path, rounded_rect(0.05, 0.012, 0.01), up=UP))
        pad = np.array(
            [
                [length + finger - 0.02, s * (gap + 0.005), 0],
                [length + finger - 0.02, s * (gap - 0.025), 0],
            ]
        )
        d.add("grippers", tube(pad, 0.05, segments=14))
    tip = (length + finger, 0, 0)
    d.functions["pick up-with"] = FunctionSpec("grippers", tip, ALONG, ACROSS, symmetry=2)
    d.materials.update(
        shaft=pick_material(rng, ("metal",)), handle=pick_material(rng, ("plastic", "rubber"))
    )
    d.materials.update(
        head=pick_material(rng, ("plastic",)), grippers=pick_material(rng, ("rubber", "plastic"))
    )
    return d


FAMILIES = (
    Family(
        "tongs",
        {
            "length": Range(1.6, 2.4),
            "width": Range(0.12, 0.18),
            "thickness": Range(0.02, 0.03),
            "hinge": Range(0.06, 0.1),
            "gap": Range(0.06, 0.2),
            "bow": Range(0.0, 0.05),
            "grips": Range(0, 1, integer=True),
            "pad_length": Range(0.25, 0.4),
            "pad_width": Range(0.16, 0.26),
            "cup": Range(0.0, 0.05),
            "scallops": Range(2.0, 4.0),
        },
        build_tongs,
        ("pick up-with",),
    ),
    Family(
        "tweezers",
        {
            "length": Range(1.6, 2.2),
            "width": Range(0.1, 0.16),
            "thickness": Range(0.02, 0.03),
            "gap": Range(0.04, 0.1),
            "tip_width": Range(0.2, 0.7),
        },
        build_tweezers,
        ("pick up-with",),
    ),
    Family(
        "pliers",
        {
            "jaw_length": Range(0.35, 0.7),
            "jaw_width": Range(0.08, 0.14),
            "thickness": Range(0.06, 0.1),
            "taper": Range(0.3, 0.8),
            "handle_length": Range(1.0, 1.4),
            "spread": Range(0.2, 0.4),
        },
        build_pliers,
        ("pick up-with", "apply torque-with"),
    ),
    Family(
        "chopsticks",
        {
            "length": Range(2.0, 2.6),
            "back_width": Range(0.07, 0.1),
            "tip_ratio": Range(0.35, 0.6),
            "roundness": Range(0.2, 1.0),
            "tip_gap": Range(0.01, 0.05),
            "spread": Range(0.05, 0.3),
            "lift": Range(0.0, 0.15),
        },
        build_chopsticks,
        ("pick up-with",),
    ),
    Family(
        "grabber",
        {
            "shaft_length": Range(2.2, 3.0),
            "shaft_radius": Range(0.03, 0.045),
            "grip_length": Range(0.35, 0.5),
            "finger_length": Range(0.25, 0.4),
            "gap": Range(0.08, 0.16),
        },
        build_grabber,
        ("pick up-with",),
    ),
)

"""Kitchen utensils that work the food (mix-with, press-with, pound-with, peel-with, roll-onto):
whisk, masher, pestle, meat tenderizer, rolling pin, peeler.

Tools lie along +x with the working end at +x; the tenderizer's head runs along y with
its toothed face at +y, like the hammer's.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, along_x, pick_material
from funcorr.data.assets.geometry import bezier, box, lathe, rounded_rect, sweep, tube
from funcorr.data.assets.parts import flat_grip, turned_handle

UP = (0.0, 0.0, 1.0)
ALONG = (1.0, 0.0, 0.0)
ACROSS = (0.0, 1.0, 0.0)
TOWARDS_HANDLE = (-1.0, 0.0, 0.0)


def build_whisk(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    turned_handle(d, p["handle_length"], p["handle_radius"], 0.02, (0.8, 1.0, 0.9, 0.7, 0.75))
    length, bulb, neck = p["wire_length"], p["bulb"] * p["wire_length"], 0.6 * p["handle_radius"]
    # Half a loop in the (x, r) plane: out of the handle, round the bulb, across the axis at the tip.
    half = bezier(
        np.array(
            [[0, neck], [0.4 * length, 1.3 * bulb], [length, p["fullness"] * bulb], [length, 0]]
        ),
        20,
    )
    loops = int(p["loops"])
    for k in range(loops):
        phi = np.pi * k / loops
        radial = np.array([0.0, np.cos(phi), np.sin(phi)])
        side = half[:, :1] * [1.0, 0, 0] + half[:, 1:] * radial
        other = half[::-1][1:, :1] * [1.0, 0, 0] - half[::-1][1:, 1:] * radial
        d.add("wires", tube(np.concatenate([side, other]), p["wire_radius"], segments=6))
    centre = FunctionSpec("wires", (length / 2, 0, 0), ALONG, UP, symmetry=0)
    d.functions["mix-with"] = centre
    d.materials.update(handle=pick_material(rng, ("metal", "plastic", "wood", "rubber")))
    d.materials["wires"] = pick_material(rng, ("metal", "metal", "plastic"))
    return d


def build_masher(p: Params, rng: np.random.Generator) -> Draft:
    """Potato masher: a zigzag wire or a grid plate across the end of a wire frame or stem."""
    d = Draft()
    turned_handle(d, p["handle_length"], p["handle_radius"], 0.0, (0.9, 1.0, 0.85, 0.7))
    reach, half_w, half_h, wire = (
        p["reach"],
        p["face_width"] / 2,
        p["face_height"] / 2,
        p["wire_radius"],
    )
    grip = 0.5 * p["handle_radius"]
    if (
        p["grid"] == 0
    ):  # one bent wire: down one side, zigzag across the face, back up the other side
        s = np.linspace(0, 1, 12 * int(p["zigs"]))
        zig = np.stack(
            [np.full_like(s, reach), half_w * (2 * s - 1), half_h * np.cos(np.pi * p["zigs"] * s)],
            1,
        )
        down = bezier(
            np.array(
                [[-0.1, -grip, 0], [0.5 * reach, -grip, 0], [0.8 * reach, -half_w, 0], zig[0]]
            ),
            12,
        )
        up = bezier(
            np.array([zig[-1], [0.8 * reach, half_w, 0], [0.5 * reach, grip, 0], [-0.1, grip, 0]]),
            12,
        )
        d.add("frame", tube(down, wire, segments=10))
        d.add("face", tube(zig, wire, segments=10))
        d.add("frame", tube(up, wire, segments=10))
        front = reach + wire
    else:  # a stem to an oval plate made of a rim and crossing bars
        d.add("frame", tube(np.array([[-0.1, 0, 0], [reach, 0, 0]]), 2 * wire, segments=12))
        t = np.linspace(0, 2 * np.pi, 41)
        rim = np.stack([np.full_like(t, reach), half_w * np.cos(t), half_h * np.sin(t)], 1)
        d.add("face", tube(rim, wire, segments=8))
        bars = int(p["zigs"]) + 1
        for y in np.linspace(-half_w, half_w, bars + 2)[1:-1]:
            h = half_h * np.sqrt(max(1 - (y / half_w) ** 2, 0.0))
            path = np.array([[reach, y, -h], [reach, y, h]])
            d.add("face", sweep(path, rounded_rect(wire, 0.6 * wire, 0.3 * wire), up=ALONG))
        front = reach + wire
    d.functions["press-with"] = FunctionSpec("face", (front, 0, 0), ALONG, ACROSS, symmetry=2)
    metal = pick_material(rng, ("metal",))
    d.materials.update(
        handle=pick_material(rng, ("wood", "plastic", "rubber")), frame=metal, face=metal
    )
    return d


def build_pestle(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r_top, r_head = p["length"], p["top_radius"], p["head_radius"]
    z = np.linspace(0, 1, 18)
    # Club profile: a rounded knob, a waist, then swelling to the head and a domed end.
    r = np.interp(
        z,
        [0, 0.05, 0.3, 0.62, 0.9, 1.0],
        [0.6 * r_top, r_top, p["waist"] * r_top, 0.9 * r_head, r_head, 0.7 * r_head],
    )
    dome = np.linspace(0, np.pi / 2, 6)[1:]
    profile = np.concatenate(
        [
            [(0, 0)],
            np.stack([r, z * length], 1),
            np.stack([0.7 * r_head * np.cos(dome), length + 0.5 * r_head * np.sin(dome)], 1),
        ]
    )
    head_from = int(np.searchsorted(z, 0.62)) + 1
    mesh, seg = along_x(lathe(profile, 28), 0.0)
    d.add_by_segment((mesh, seg), [(0, "body"), (head_from, "head")])
    tip = FunctionSpec("head", (length + 0.5 * r_head, 0, 0), ALONG, ACROSS, symmetry=0)
    d.functions.update({"press-with": tip, "pound-with": tip})
    stone = pick_material(rng, ("ceramic", "wood", "metal"))
    d.materials.update(body=stone, head=stone)
    return d


def build_meat_tenderizer(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    side, length, teeth = p["head_side"], p["head_length"], int(p["teeth"])
    d.add("head", box((side, length, side), (0, 0, 0)))
    pitch, tooth = side / teeth, p["tooth_height"]
    square = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]]) * pitch / 2
    for i in range(teeth):
        for j in range(teeth):
            x, z = (i + 0.5) * pitch - side / 2, (j + 0.5) * pitch - side / 2
            path = np.array([[x, length / 2 - 0.005, z], [x, length / 2 + tooth, z]])
            d.add("face", sweep(path, square, np.array([1.0, 0.05]), up=ALONG))
    if (
        p["flat_back"] == 0
    ):  # a second, finer-toothed face on the back is common; keep it flat but rimmed
        d.add("head", box((0.9 * side, 0.04, 0.9 * side), (0, -length / 2 - 0.015, 0)))
    flat_grip(
        d,
        p["handle_length"],
        p["handle_width"],
        0.7 * p["handle_width"],
        -0.3 * side,
        (0.9, 1.0, 0.85, 0.6),
    )
    d.functions["pound-with"] = FunctionSpec(
        "face", (0, length / 2 + tooth, 0), ACROSS, TOWARDS_HANDLE, symmetry=4
    )
    d.functions["press-with"] = d.functions["pound-with"]
    metal = pick_material(rng, ("metal", "wood"))
    d.materials.update(
        head=metal, face=metal, handle=pick_material(rng, ("wood", "plastic", "rubber"))
    )
    return d


def build_rolling_pin(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r, taper = p["body_length"], p["radius"], p["taper"]
    z = np.linspace(0, length, 17)
    radius = r * (1 - taper * (2 * z / length - 1) ** 2)
    bevel = 0.15 * r if taper < 0.2 else 0.0
    profile = np.concatenate(
        [
            [(0, 0), (radius[0] - bevel, 0)],
            np.stack([radius, z], 1)[1:-1],
            [(radius[-1] - bevel, length), (0, length)],
        ]
    )
    d.add("cylinder", along_x(lathe(profile, 40), -length / 2))
    if p["handles"] == 1:
        hl, hr = p["handle_length"], p["handle_radius"]
        for sign in (-1, 1):
            start = sign * (length / 2 - 0.02)
            x = np.linspace(start, start + sign * hl, 8)
            hr_profile = hr * np.interp(
                np.linspace(0, 1, 8), [0, 0.15, 0.6, 1.0], [0.6, 0.8, 1.0, 0.95]
            )
            d.add("handle", tube(np.stack([x, 0 * x, 0 * x], 1), hr_profile, segments=20))
    d.functions["roll-onto"] = FunctionSpec("cylinder", (0, 0, 0), ALONG, UP, symmetry=0)
    d.materials.update(cylinder=pick_material(rng, ("wood", "wood", "ceramic", "metal")))
    d.materials["handle"] = pick_material(rng, ("wood", "plastic"))
    return d


def build_peeler(p: Params, rng: np.random.Generator) -> Draft:
    """Y peeler (blade across the end of a yoke) or straight swivel peeler (blade along the handle axis)."""
    d = Draft()
    flat_grip(
        d,
        p["handle_length"],
        p["handle_width"],
        0.45 * p["handle_width"],
        0.02,
        (0.8, 1.0, 0.9, 0.6),
    )
    span, blade_w, slot, wire = p["span"], p["blade_width"], p["slot"], 0.035
    strip = (blade_w - slot) / 2
    thin = rounded_rect(0.008, strip / 2, 0.004)
    if p["y_shape"] == 1:
        reach = p["reach"]
        for sign in (-1, 1):  # the two arms of the yoke
            arm = bezier(
                np.array(
                    [
                        [-0.05, 0, 0],
                        [0.4 * reach, sign * 0.3 * span, 0],
                        [reach, sign * span / 2, 0],
                    ]
                ),
                14,
            )
            d.add("yoke", sweep(arm, rounded_rect(0.03, wire, 0.015), up=UP))
        # Two strips across the yoke ends with the slot between them; pulled towards the user,
        # the far strip's edge cuts and the near one guards the depth.
        for sign, part in ((-1, "guard"), (1, "blade")):
            x = reach + sign * (slot + strip) / 2
            d.add(part, sweep(np.array([[x, -0.47 * span, 0], [x, 0.47 * span, 0]]), thin, up=UP))
        spec = FunctionSpec("blade", (reach + slot / 2, 0, 0), TOWARDS_HANDLE, ACROSS, symmetry=2)
    else:
        length = span
        loop = np.array([[0, -blade_w / 2 - wire, 0], [length + 0.05, -blade_w / 2 - wire, 0]])
        for sign in (-1, 1):
            d.add("yoke", sweep(loop * [1, sign, 1], rounded_rect(0.03, wire, 0.015), up=UP))
        d.add(
            "yoke",
            sweep(
                np.array(
                    [
                        [length + 0.05, -blade_w / 2 - wire, 0],
                        [length + 0.05, blade_w / 2 + wire, 0],
                    ]
                ),
                rounded_rect(0.03, wire, 0.015),
                up=UP,
            ),
        )
        for sign, part in ((-1, "guard"), (1, "blade")):
            y = sign * (slot + strip) / 2
            d.add(part, sweep(np.array([[0.03, y, 0], [length, y, 0]]), thin, up=UP))
        spec = FunctionSpec("blade", (length / 2, slot / 2, 0), (0, -1, 0), ALONG, symmetry=2)
    d.functions["peel-with"] = spec
    d.materials.update(handle=pick_material(rng, ("plastic", "rubber", "metal", "wood")))
    d.materials.update(
        yoke=pick_material(rng, ("metal", "plastic")), blade=pick_material(rng, ("metal",))
    )
    d.materials["guard"] = d.materials["blade"]
    return d


FAMILIES = (
    Family(
        "whisk",
        {
            "handle_length": Range(0.8, 1.2),
            "handle_radius": Range(0.06, 0.1),
            "wire_length": Range(1.2, 1.8),
            "bulb": Range(0.16, 0.32),
            "fullness": Range(0.6, 1.1),
            "loops": Range(3, 6, integer=True),
            "wire_radius": Range(0.01, 0.018),
        },
        build_whisk,
        ("mix-with",),
    ),
    Family(
        "masher",
        {
            "handle_length": Range(0.8, 1.2),
            "handle_radius": Range(0.08, 0.12),
            "reach": Range(0.5, 0.9),
            "face_width": Range(0.5, 0.8),
            "face_height": Range(0.3, 0.55),
            "zigs": Range(3, 5, integer=True),
            "wire_radius": Range(0.02, 0.035),
            "grid": Range(0, 1, integer=True),
        },
        build_masher,
        ("press-with",),
    ),
    Family(
        "pestle",
        {
            "length": Range(1.0, 1.6),
            "top_radius": Range(0.09, 0.15),
            "head_radius": Range(0.18, 0.28),
            "waist": Range(0.7, 1.0),
        },
        build_pestle,
        ("press-with", "pound-with"),
    ),
    Family(
        "meat tenderizer",
        {
            "head_side": Range(0.22, 0.32),
            "head_length": Range(0.5, 0.8),
            "teeth": Range(4, 6, integer=True),
            "tooth_height": Range(0.03, 0.06),
            "flat_back": Range(0, 1, integer=True),
            "handle_length": Range(1.1, 1.6),
            "handle_width": Range(0.12, 0.18),
        },
        build_meat_tenderizer,
        ("pound-with", "press-with"),
    ),
    Family(
        "rolling pin",
        {
            "body_length": Range(1.4, 2.2),
            "radius": Range(0.14, 0.24),
            "taper": Range(0.0, 0.45),
            "handles": Range(0, 1, integer=True),
            "handle_length": Range(0.3, 0.45),
            "handle_radius": Range(0.06, 0.09),
        },
        build_rolling_pin,
        ("roll-onto",),
    ),
    Family(
        "peeler",
        {
            "handle_length": Range(0.9, 1.3),
            "handle_width": Range(0.14, 0.22),
            "y_shape": Range(0, 1, integer=True),
            "span": Range(0.5, 0.75),
            "reach": Range(0.3, 0.45),
            "blade_width": Range(0.1, 0.15),
            "slot": Range(0.015, 0.03),
        },
        build_peeler,
        ("peel-with",),
    ),
)

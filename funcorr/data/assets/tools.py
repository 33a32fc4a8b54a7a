"""Striking and pointed tools (pound-with, press-with, pull-with, pierce-with, poke-with, pry-with,
lift-with, mix-with): hammer, mallet, screwdriver, awl, fork.

Handles run along x; hammer and mallet heads run along y with the striking face at +y;
pointed tools point towards +x.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, along_x, pick_material
from funcorr.data.assets.geometry import bezier, box, lathe, thick_sheet, tube

TOWARDS_HANDLE = (-1.0, 0.0, 0.0)
FORWARD = (1.0, 0.0, 0.0)


def _straight_handle(draft: Draft, length: float, radius: float, x_end: float) -> None:
    x = np.linspace(x_end, x_end - length, 16)
    taper = radius * (1.0 + 0.25 * np.linspace(0, 1, len(x)) ** 2)
    draft.add(
        "handle",
        tube(np.stack([x, 0 * x, 0 * x], 1), taper, segments=18, aspect=0.75, up=(0, 1, 0)),
    )


def _face_cylinder(radius: float, y0: float, length: float, bevel: float) -> tuple:
    """Striking face: a short round solid along +y from y0, with a bevelled edge."""
    profile = np.array(
        [(0, 0), (radius, 0), (radius, length - bevel), (radius - bevel, length), (0, length)]
    )
    mesh, seg = lathe(profile, 40)
    rot = np.array([[1, 0, 0, 0], [0, 0, 1, y0], [0, -1, 0, 0], [0, 0, 0, 1.0]])  # z -> +y
    mesh.apply_transform(rot)
    return mesh, seg


def build_hammer(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    hx, hy, hz = p["head_width"], p["head_length"], p["head_width"]
    d.add("head", box((hx, hy, hz), (0, 0, 0)))
    face_len = 0.25 * hy
    face_radius = p["face_radius"] * hx
    d.add("face", _face_cylinder(face_radius, hy / 2 - 0.02, face_len, 0.15 * face_radius))
    # Claw: two flat prongs curving from the back of the head towards the handle side.
    for side in (-1, 1):
        curve = bezier(
            np.array(
                [
                    [0, -hy / 2 + 0.05, side * 0.12 * hz],
                    [0, -hy / 2 - 0.4 * p["claw_length"], side * 0.14 * hz],
                    [-0.5 * p["claw_length"], -hy / 2 - 0.9 * p["claw_length"], side * 0.18 * hz],
                ]
            ),
            14,
        )
        d.add(
            "claw",
            tube(
                curve,
                np.linspace(0.45 * hx, 0.1 * hx, len(curve)),
                segments=12,
                aspect=0.45,
                up=(0, 0, 1),
            ),
        )
    _straight_handle(d, p["handle_length"], p["handle_radius"], hx / 2)
    face_end = hy / 2 - 0.02 + face_len
    d.functions["pound-with"] = FunctionSpec(
        "face", (0, face_end, 0), (0, 1, 0), TOWARDS_HANDLE, symmetry=0
    )
    d.functions["pull-with"] = _claw_spec(hy, p["claw_length"])
    d.materials.update(
        head=pick_material(rng, ("metal",)),
        handle=pick_material(rng, ("wood", "rubber", "plastic")),
    )
    d.materials.update(face=d.materials["head"], claw=d.materials["head"])
    return d


def _claw_spec(head_length: float, claw_length: float) -> FunctionSpec:
    """pull-with on the claw: mid-way along it between the prongs, z towards its concave side."""
    p0 = np.array([0, -head_length / 2 + 0.05, 0])
    p2 = np.array([-0.5 * claw_length, -head_length / 2 - 0.9 * claw_length, 0])
    mid = bezier(np.array([p0, [0, -head_length / 2 - 0.4 * claw_length, 0], p2]), 3)[1]
    return FunctionSpec("claw", mid, (p0 + p2) / 2 - mid, (0, 0, 1))


def build_mallet(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    r, length = p["head_radius"], p["head_length"]
    face_len = 0.15 * length
    d.add("head", _face_cylinder(r, -length / 2, length - face_len + 0.01, 0.1 * r))
    d.add("face", _face_cylinder(r, length / 2 - face_len, face_len, 0.12 * r))
    _straight_handle(d, p["handle_length"], p["handle_radius"], 0.9 * r)
    d.functions["pound-with"] = FunctionSpec(
        "face", (0, length / 2, 0), (0, 1, 0), TOWARDS_HANDLE, symmetry=0
    )
    d.functions["press-with"] = d.functions["pound-with"]
    head = pick_material(rng, ("wood", "rubber", "plastic"))
    d.materials.update(head=head, face=head, handle=pick_material(rng, ("wood", "plastic")))
    return d


def _lathe_handle(draft: Draft, length: float, radius: float) -> None:
    """Bulbous handle lathe from x = -length to 0."""
    z = np.linspace(0, length, 12)
    r = radius * (0.75 + 0.3 * np.sin(np.linspace(0.2, np.pi - 0.4, len(z))))
    profile = np.concatenate([[(0, 0)], np.stack([r, z], 1), [(0, length)]])
    draft.add("handle", along_x(lathe(profile, 32), -length))


def build_screwdriver(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _lathe_handle(d, p["handle_length"], p["handle_radius"])
    rs, shaft_len, tip_len = p["shaft_radius"], p["shaft_length"], p["tip_length"]
    d.add("shaft", tube(np.array([[-0.1, 0, 0], [shaft_len, 0, 0]]), rs, segments=16))
    x = np.linspace(shaft_len - 0.02, shaft_len + tip_len, 10)
    path = np.stack([x, 0 * x, 0 * x], 1)
    t = np.linspace(0, 1, len(x))
    flat = p["tip_type"] == 0
    if flat:  # flat blade: widens slightly while flattening to a thin edge
        d.add("tip", tube(path, rs * (1 + 0.2 * t), segments=16, aspect=1 - 0.8 * t, up=(0, 0, 1)))
    else:  # pointed (Phillips-like) tip modelled as a cone
        d.add("tip", tube(path, rs * (1 - 0.85 * t), segments=16))
    spec = FunctionSpec(
        "tip", (shaft_len + tip_len, 0, 0), FORWARD, (0, 1, 0), symmetry=2 if flat else 0
    )
    d.functions.update({"pierce-with": spec, "poke-with": spec, "pry-with": spec})
    metal = pick_material(rng, ("metal",))
    d.materials.update(
        shaft=metal, tip=metal, handle=pick_material(rng, ("plastic", "rubber", "wood"))
    )
    return d


def build_awl(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    _lathe_handle(d, p["handle_length"], p["handle_radius"])
    rs, shaft_len, tip_len = p["shaft_radius"], p["shaft_length"], p["tip_length"]
    d.add("shaft", tube(np.array([[-0.1, 0, 0], [shaft_len, 0, 0]]), rs, segments=16))
    x = np.linspace(shaft_len - 0.02, shaft_len + tip_len, 8)
    d.add("tip", tube(np.stack([x, 0 * x, 0 * x], 1), np.linspace(rs, 0.004, len(x)), segments=16))
    spec = FunctionSpec("tip", (shaft_len + tip_len, 0, 0), FORWARD, (0, 1, 0), symmetry=0)
    d.functions.update({"pierce-with": spec, "poke-with": spec})
    metal = pick_material(rng, ("metal",))
    d.materials.update(shaft=metal, tip=metal, handle=pick_material(rng, ("wood", "plastic")))
    return d


def build_fork(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    lh, head_len, tine_len, width = (
        p["handle_length"],
        p["head_length"],
        p["tine_length"],
        p["head_width"],
    )
    handle = bezier(
        np.array([[-lh, 0, p["rise"]], [-0.5 * lh, 0, 0.1 * p["rise"]], [0.05, 0, 0]]), 20
    )
    d.add(
        "handle",
        tube(
            handle,
            np.linspace(p["handle_width"], 0.05, len(handle)),
            segments=14,
            aspect=0.25,
            up=(0, 0, 1),
        ),
    )
    u = np.linspace(0, 1, 12)[:, None]
    v = np.linspace(-1, 1, 10)[None]
    half = 0.05 + (width / 2 - 0.05) * np.sqrt(u)
    bend = p["curve"] * u**2
    head = np.stack(
        [np.broadcast_to(u * head_len, (12, 10)), half * v, np.broadcast_to(bend, (12, 10))], -1
    )
    d.add("neck", thick_sheet(head, 0.03))
    n = int(p["tines"])
    centres = np.linspace(-1, 1, n) * (width / 2 - 0.035) if n > 1 else np.zeros(1)
    t = np.linspace(0, 1, 10)
    tips = []
    for y in centres:
        path = np.stack(
            [head_len - 0.03 + t * tine_len, np.full_like(t, y), p["curve"] + p["curve"] * 1.5 * t],
            1,
        )
        d.add(
            "tines",
            tube(path, np.linspace(0.035, 0.008, len(t)), segments=10, aspect=0.8, up=(0, 0, 1)),
        )
        tips.append(path[-1])
    tip_centre = np.mean(tips, 0)
    direction = np.array([tine_len, 0, 1.5 * p["curve"]])
    spec = FunctionSpec("tines", tip_centre, direction, (0, 1, 0))
    d.functions.update({"pierce-with": spec, "poke-with": spec, "lift-with": spec})
    # Mixing uses the whole tine block: centred on it, z along the tines, x out of the concave side.
    middle = (head_len + 0.5 * tine_len, 0, 1.75 * p["curve"])
    d.functions["mix-with"] = FunctionSpec("tines", middle, direction, (0, 0, 1))
    metal = pick_material(rng, ("metal", "metal", "plastic"))
    d.materials.update(
        neck=metal, tines=metal, handle=pick_material(rng, ("metal", "wood", "plastic"))
    )
    return d


FAMILIES = (
    Family(
        "hammer",
        {
            "head_width": Range(0.18, 0.28),
            "head_length": Range(0.6, 0.9),
            "face_radius": Range(0.5, 0.7),
            "claw_length": Range(0.25, 0.45),
            "handle_length": Range(1.4, 2.0),
            "handle_radius": Range(0.07, 0.1),
        },
        build_hammer,
        ("pound-with", "pull-with"),
    ),
    Family(
        "mallet",
        {
            "head_radius": Range(0.2, 0.35),
            "head_length": Range(0.7, 1.1),
            "handle_length": Range(1.3, 1.9),
            "handle_radius": Range(0.06, 0.09),
        },
        build_mallet,
        ("pound-with", "press-with"),
    ),
    Family(
        "screwdriver",
        {
            "handle_length": Range(0.7, 1.1),
            "handle_radius": Range(0.12, 0.18),
            "shaft_radius": Range(0.03, 0.05),
            "shaft_length": Range(0.8, 1.5),
            "tip_length": Range(0.12, 0.25),
            "tip_type": Range(0, 1, integer=True),
        },
        build_screwdriver,
        ("pierce-with", "poke-with", "pry-with"),
    ),
    Family(
        "awl",
        {
            "handle_length": Range(0.6, 0.9),
            "handle_radius": Range(0.12, 0.2),
            "shaft_radius": Range(0.025, 0.04),
            "shaft_length": Range(0.5, 1.0),
            "tip_length": Range(0.2, 0.4),
        },
        build_awl,
        ("pierce-with", "poke-with"),
    ),
    Family(
        "fork",
        {
            "handle_length": Range(1.2, 1.7),
            "handle_width": Range(0.07, 0.12),
            "rise": Range(0.0, 0.2),
            "head_length": Range(0.25, 0.4),
            "head_width": Range(0.25, 0.4),
            "tine_length": Range(0.35, 0.6),
            "tines": Range(2, 4, integer=True),
            "curve": Range(0.0, 0.08),
        },
        build_fork,
        ("pierce-with", "poke-with", "lift-with", "mix-with"),
    ),
)

"""Writing instruments (write-with, roll-onto, poke-with): pen, pencil, marker, crayon.

All are solids of revolution (the pencil's barrel is hexagonal) lying along +x with the
writing point at +x; the write-with frame sits on that point.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, along_x, pick_material
from funcorr.data.assets.geometry import lathe, rounded_rect, sweep, tube

ALONG = (1.0, 0.0, 0.0)
UP = (0.0, 0.0, 1.0)


def _lathe_x(
    draft: Draft,
    profile: list[tuple[float, float]],
    parts: list[tuple[int, str]],
    segments: int = 24,
) -> None:
    """A lathe along +x from an (r, x) profile, faces labelled by profile segment."""
    draft.add_by_segment(along_x(lathe(np.array(profile), segments)), parts)


def build_pen(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r, tip = p["length"], p["radius"], p["tip_length"]
    grip_from = length - tip - p["grip_length"]
    profile = [
        (0, 0),
        (0.55 * r, 0),
        (0.6 * r, 0.06),
        (0.9 * r, 0.07),
        (r, 0.12),
    ]  # click button, back end
    profile += [
        (r, grip_from),
        (p["grip_ratio"] * r, grip_from + 0.03),
        (p["grip_ratio"] * r, length - tip),
    ]
    first_tip = len(profile) - 1
    profile += [
        (0.75 * r, length - 0.6 * tip),
        (0.25 * r, length - 0.06 * tip),
        (0.12 * r, length - 0.01),
        (0, length),
    ]
    _lathe_x(d, profile, [(0, "barrel"), (first_tip, "tip")])
    if p["clip"] == 1:
        clip = np.array([[0.08, 0, r], [0.1, 0, r + 0.05], [0.45 * length, 0, r + 0.03]])
        d.add("clip", sweep(clip, rounded_rect(0.012, 0.04, 0.01), up=UP))
    point = FunctionSpec("tip", (length, 0, 0), ALONG, UP, symmetry=0)
    d.functions["write-with"] = point
    d.functions["roll-onto"] = FunctionSpec("barrel", (grip_from / 2, 0, 0), ALONG, UP, symmetry=0)
    barrel = pick_material(rng, ("plastic", "metal"))
    d.materials.update(
        barrel=barrel,
        clip=pick_material(rng, ("metal", "plastic")),
        tip=pick_material(rng, ("metal", "plastic")),
    )
    return d


def build_pencil(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, a, tip, lead = p["length"], p["radius"], p["tip_length"], p["lead_length"]
    angles = np.arange(6) * np.pi / 3 + np.pi / 6
    hexagon = a * np.stack([np.cos(angles), np.sin(angles)], 1)
    d.add("barrel", sweep(np.array([[0.0, 0, 0], [length - tip + 0.01, 0, 0]]), hexagon, up=UP))
    x = np.linspace(length - tip, length - lead, 6)
    d.add(
        "tip", tube(np.stack([x, 0 * x, 0 * x], 1), np.linspace(0.93 * a, 0.32 * a, 6), segments=24)
    )
    x = np.linspace(length - lead - 0.005, length, 4)
    d.add(
        "graphite",
        tube(np.stack([x, 0 * x, 0 * x], 1), np.linspace(0.32 * a, 0.03 * a, 4), segments=16),
    )
    if p["eraser"] == 1:
        d.add("ferrule", tube(np.array([[-0.12, 0, 0], [0.02, 0, 0]]), 1.02 * a, segments=24))
        d.add("eraser", _eraser(a))
    point = FunctionSpec("tip", (length, 0, 0), ALONG, UP, symmetry=0)
    d.functions.update({"write-with": point, "poke-with": point})
    d.materials.update(
        barrel=pick_material(rng, ("plastic", "wood")),
        tip=pick_material(rng, ("wood",)),
        graphite=pick_material(rng, ("rubber",)),
        ferrule=pick_material(rng, ("metal",)),
        eraser=pick_material(rng, ("rubber", "plastic")),
    )
    return d


def _eraser(a: float) -> tuple:
    """Rounded eraser behind a ferrule ending at x = -0.12."""
    profile = np.array([(0, 0), (0.95 * a, 0), (0.95 * a, 0.09), (0.8 * a, 0.12), (0, 0.12)])
    return along_x(lathe(profile, 24), -0.24)


def build_marker(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r, nib = p["length"], p["radius"], p["nib_length"]
    collar = 0.12 * length
    body_end = length - collar - nib
    profile = [(0, 0), (0.9 * r, 0), (r, 0.04), (r, body_end)]
    first_tip = len(profile) - 1
    profile += [(0.5 * r, body_end + collar), (0.35 * r, body_end + collar)]
    if p["chisel"] == 1:  # a blunt felt nib
        profile += [(0.33 * r, length - 0.02), (0, length)]
    else:
        profile += [(0.3 * r, length - 0.25 * nib), (0.2 * r, length - 0.05 * nib), (0, length)]
    _lathe_x(d, profile, [(0, "body"), (first_tip, "tip")])
    if p["cap"] == 1:  # the cap posted on the back end
        cap = [(0, -0.06), (1.08 * r, -0.06), (1.1 * r, 0.3 * length), (0, 0.3 * length)]
        d.add("cap", along_x(lathe(np.array(cap), 24), 0.0))
    d.functions["write-with"] = FunctionSpec("tip", (length, 0, 0), ALONG, UP, symmetry=0)
    d.functions["roll-onto"] = FunctionSpec("body", (body_end / 2, 0, 0), ALONG, UP, symmetry=0)
    colour = pick_material(rng, ("plastic",))
    d.materials.update(body=pick_material(rng, ("plastic",)), tip=colour, cap=colour)
    return d


def build_crayon(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, r, tip = p["length"], p["radius"], p["tip_length"]
    profile = [(0, 0), (0.9 * r, 0), (r, 0.03), (r, length - tip)]
    first_tip = len(profile) - 1
    profile += [(0.45 * r, length - 0.1 * tip), (0.3 * r, length), (0, length)]
    _lathe_x(d, profile, [(0, "wax"), (first_tip, "tip")])
    wrap = [
        (0, 0.1 * length),
        (1.04 * r, 0.1 * length),
        (1.04 * r, length - tip - 0.12 * length),
        (0, length - tip - 0.12 * length),
    ]
    d.add("wrapper", along_x(lathe(np.array(wrap), 24), 0.0))
    d.functions["write-with"] = FunctionSpec("tip", (length, 0, 0), ALONG, UP, symmetry=0)
    wax = pick_material(rng, ("plastic",))
    d.materials.update(wax=wax, tip=wax, wrapper=pick_material(rng, ("plastic", "ceramic")))
    return d


FAMILIES = (
    Family(
        "pen",
        {
            "length": Range(2.0, 2.6),
            "radius": Range(0.045, 0.075),
            "tip_length": Range(0.15, 0.3),
            "grip_length": Range(0.0, 0.5),
            "grip_ratio": Range(0.9, 1.1),
            "clip": Range(0, 1, integer=True),
        },
        build_pen,
        ("write-with", "roll-onto"),
    ),
    Family(
        "pencil",
        {
            "length": Range(1.0, 2.4),
            "radius": Range(0.035, 0.05),
            "tip_length": Range(0.15, 0.25),
            "lead_length": Range(0.03, 0.06),
            "eraser": Range(0, 1, integer=True),
        },
        build_pencil,
        ("write-with", "poke-with"),
    ),
    Family(
        "marker",
        {
            "length": Range(1.5, 2.2),
            "radius": Range(0.08, 0.14),
            "nib_length": Range(0.08, 0.15),
            "chisel": Range(0, 1, integer=True),
            "cap": Range(0, 1, integer=True),
        },
        build_marker,
        ("write-with", "roll-onto"),
    ),
    Family(
        "crayon",
        {
            "length": Range(1.4, 2.0),
            "radius": Range(0.07, 0.1),
            "tip_length": Range(0.15, 0.25),
        },
        build_crayon,
        ("write-with",),
    ),
)

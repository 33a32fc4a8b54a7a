"""Bristled tools (brush-with, sweep-with, write-with): toothbrush, brush, hairbrush, paintbrush, broom.

Tools lie along +x (handle at x < 0, head at +x). Bristles are a few dozen tapered tufts
rather than single hairs, which reads as bristles at render resolution while keeping the
triangle count low. Toothbrush and hairbrush bristles point to +z, a scrub brush's to -z
(it stands on them), paintbrush and broom bristles continue the handle towards +x.
"""

from __future__ import annotations

import numpy as np

from funcorr.data.assets.base import Draft, FunctionSpec
from funcorr.data.assets.family import Family, Params, Range, pick_material
from funcorr.data.assets.geometry import bezier, lathe, rounded_rect, sweep, tube

UP = (0.0, 0.0, 1.0)
ALONG = (1.0, 0.0, 0.0)
ACROSS = (0.0, 1.0, 0.0)


def _outline(u: np.ndarray, half_width: float, back: float = 4.0, front: float = 4.0) -> np.ndarray:
    """Half-widths (N,) of a superellipse outline at fractions u in [0, 1] along its length.

    ``back`` / ``front`` are the exponents of the two halves: 2 is elliptic, larger is squarer.
    """
    s = np.abs(2 * u - 1)
    power = np.where(u < 0.5, back, front)
    return half_width * np.clip(1 - s**power, 1e-4, 1) ** (1 / power) + 1e-3


def _plate(
    x0: float, length: float, half_width: float, thickness: float, back: float, front: float
) -> tuple:
    """Flat rounded plate along x from x0 with a superellipse outline, centred on z = 0."""
    u = np.linspace(0, 1, 24)
    path = np.stack([x0 + u * length, 0 * u, 0 * u], 1)
    scale = np.stack([np.ones_like(u), _outline(u, half_width, back, front)], 1)
    return sweep(path, rounded_rect(thickness / 2, 1.0, 0.4 * thickness), scale, up=UP)


def _tufts(
    draft: Draft,
    part: str,
    centres: np.ndarray,
    base: float,
    lengths: np.ndarray,
    radius: float,
    direction: float = 1.0,
    flare: float = 1.2,
) -> None:
    """Hexagonal tufts at xy ``centres`` (K, 2) from z = base along ``direction`` * z, one length each."""
    for (x, y), length in zip(centres, lengths, strict=True):
        path = np.array([[x, y, base - direction * 0.01], [x, y, base + direction * length]])
        draft.add(part, tube(path, np.array([radius, flare * radius]), segments=6))


def _grid_inside(
    length: float, half_width: float, spacing: float, x0: float, back: float, front: float
) -> np.ndarray:
    """Tuft centres (K, 2) on a staggered grid inside a superellipse outline, with a margin."""
    nx = max(2, int(length / spacing))
    centres = []
    for i, x in enumerate(np.linspace(0.5 * spacing, length - 0.5 * spacing, nx)):
        limit = _outline(np.array([x / length]), half_width, back, front)[0] - 0.55 * spacing
        ny = int(2 * limit / spacing) + 1
        if limit <= 0:
            continue
        ys = np.linspace(-limit, limit, ny) if ny > 1 else np.zeros(1)
        if i % 2 and ny > 1:  # stagger alternate rows
            ys = 0.5 * (ys[:-1] + ys[1:])
        centres += [(x0 + x, y) for y in ys]
    return np.array(centres)


def build_toothbrush(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    length, grip, neck = p["handle_length"], p["grip_width"], 0.55 * p["head_width"]
    path = np.array([[-length, 0, p["rise"]], [-0.5 * length, 0, 0.1 * p["rise"]], [0.05, 0, 0]])
    centre_line = bezier(path, 28)
    t = np.linspace(0, 1, len(centre_line))
    width = np.interp(t, [0, 0.08, 0.45, 0.75, 1.0], [0.7 * grip, grip, 0.9 * grip, neck, neck])
    d.add(
        "handle",
        tube(centre_line, width / 2, segments=16, aspect=np.minimum(1.0, 0.07 / width), up=UP),
    )
    hl, hw, ht = p["head_length"], p["head_width"], p["head_thickness"]
    d.add("head", _plate(0.0, hl, hw / 2, ht, 3.0, 2.5))
    spacing = hw / (p["rows"] + 0.3)
    centres = _grid_inside(hl, hw / 2, spacing, 0.0, 3.0, 2.5)
    wave = 1 + p["trim"] * np.cos(2 * np.pi * (centres[:, 0] - hl / 2) / hl)
    _tufts(d, "bristles", centres, ht / 2, p["bristle_length"] * wave, 0.36 * spacing)
    tips = FunctionSpec(
        "bristles", (hl / 2, 0, ht / 2 + p["bristle_length"]), UP, ALONG, symmetry=2
    )
    d.functions["brush-with"] = tips
    body = pick_material(rng, ("plastic",))
    d.materials.update(handle=body, head=body, bristles=pick_material(rng, ("plastic",)))
    return d


def build_brush(p: Params, rng: np.random.Generator) -> Draft:
    """Scrub brush: an iron-shaped block on a bed of tufts, optionally with an arched handle on top."""
    d = Draft()
    length, half, height = p["block_length"], p["block_width"] / 2, p["block_height"]
    u = np.linspace(0, 1, 28)
    path = np.stack([u * length, 0 * u, np.full_like(u, height / 2)], 1)
    scale = np.stack([np.ones_like(u), _outline(u, half, 6.0, p["point"])], 1)
    d.add("head", sweep(path, rounded_rect(height / 2, 1.0, 0.35 * height), scale, up=UP))
    if p["handle"] == 1:
        arch = np.array(
            [[0.2 * length, 0, 0.8 * height], [0.25 * length, 0, height + 1.3 * p["arch"]]]
            + [[0.75 * length, 0, height + 1.3 * p["arch"]], [0.8 * length, 0, 0.8 * height]]
        )
        d.add("handle", tube(bezier(arch, 24), 0.06, segments=14, aspect=0.7, up=ACROSS))
    centres = _grid_inside(length, half, p["spacing"], 0.0, 6.0, p["point"])
    bl = p["bristle_length"]
    _tufts(
        d, "bristles", centres, 0.0, np.full(len(centres), bl), 0.4 * p["spacing"], direction=-1.0
    )
    d.functions["brush-with"] = FunctionSpec(
        "bristles", (length / 2, 0, -bl), (0, 0, -1), ALONG, symmetry=2
    )
    block = pick_material(rng, ("plastic", "wood"))
    d.materials.update(head=block, handle=block, bristles=pick_material(rng, ("plastic",)))
    return d


def build_hairbrush(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    pl, pw, pt = p["pad_length"], p["pad_width"], p["pad_thickness"]
    hl = p["handle_length"]
    u = np.linspace(0, 1, 16)
    handle = np.stack([-hl + u * (hl + 0.1 * pl), 0 * u, -0.3 * pt * u], 1)
    hw = np.interp(u, [0, 0.15, 0.7, 1.0], [0.8, 1.0, 0.8, 1.2]) * p["handle_width"] / 2
    d.add(
        "handle",
        sweep(
            handle,
            rounded_rect(0.45 * pt, 1.0, 0.4 * pt),
            np.stack([np.ones_like(u), hw], 1),
            up=UP,
        ),
    )
    d.add("back", _plate(0.0, pl, pw / 2, pt, 2.2, p["squareness"]))
    pad = lathe(np.array([(0, 0), (1, 0), (0.95, 0.5), (0, 1.0)]), 32)
    pad[0].vertices[:] = pad[0].vertices * [0.45 * pl, 0.45 * pw, 0.35 * pt] + [
        pl / 2,
        0,
        0.45 * pt,
    ]
    d.add("pad", pad)
    centres = _grid_inside(pl, 0.85 * pw / 2, p["spacing"], 0.0, 2.2, p["squareness"])
    pins = p["pin_length"]
    _tufts(
        d, "bristles", centres, 0.75 * pt, np.full(len(centres), pins), p["pin_radius"], flare=0.8
    )
    d.functions["brush-with"] = FunctionSpec(
        "bristles", (pl / 2, 0, 0.75 * pt + pins), UP, ALONG, symmetry=2
    )
    body = pick_material(rng, ("plastic", "wood"))
    d.materials.update(handle=body, back=body, pad=pick_material(rng, ("rubber",)))
    d.materials["bristles"] = pick_material(rng, ("plastic", "rubber"))
    return d


def build_paintbrush(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    flat, width, hl = p["flat"] == 1, p["width"], p["handle_length"]
    thick = max(0.05, p["thickness"] * width) if flat else 0.6 * width
    if flat:  # a flat wooden paddle handle
        u = np.linspace(0, 1, 16)
        path = np.stack([-hl + u * (hl + 0.05), 0 * u, 0 * u], 1)
        half = (
            np.interp(u, [0, 0.1, 0.5, 0.85, 1.0], [0.5, 0.65, 0.7, 0.5, 0.6])
            * min(max(width, 0.2), 0.35)
            / 2
        )
        grip = rounded_rect(0.3 * thick + 0.015, 1.0, 0.02)
        d.add("handle", sweep(path, grip, np.stack([np.ones_like(u), half], 1), up=UP))
    else:  # a long turned handle, thickest near the ferrule
        z = np.linspace(0, hl, 14)
        r = p["handle_radius"] * np.interp(z / hl, [0, 0.1, 0.7, 1.0], [0.5, 0.7, 1.15, 0.9])
        profile = np.concatenate([[(0, 0)], np.stack([r, z], 1), [(0, hl)]])
        mesh, seg = lathe(profile, 20)
        mesh.apply_transform(
            np.array([[0, 0, 1, -hl + 0.02], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1.0]])
        )
        d.add("handle", (mesh, seg))
    fl, bl = p["ferrule_length"], p["bristle_length"]
    section = rounded_rect(thick / 2, width / 2, 0.45 * thick) if flat else None
    x = np.linspace(0, fl, 6)
    ferrule = np.stack([x, 0 * x, 0 * x], 1)
    if flat:
        d.add(
            "ferrule",
            sweep(ferrule, section, np.stack([np.linspace(1.1, 1.0, 6), np.ones(6)], 1), up=UP),
        )
    else:
        d.add("ferrule", tube(ferrule, np.linspace(1.05, 1.0, 6) * thick / 2, segments=20))
    t = np.linspace(0, 1, 12)
    bristles = np.stack([fl - 0.02 + t * (bl + 0.02), 0 * t, 0 * t], 1)
    if flat:  # chisel edge: thickness tapers, width flares slightly
        scale = np.stack(
            [np.interp(t, [0, 0.3, 1], [0.95, 1.0, 0.3]), 1 + 0.06 * np.sin(np.pi * t)], 1
        )
        d.add("bristles", sweep(bristles, section, scale, up=UP))
    else:  # pointed round brush with a belly
        d.add(
            "bristles",
            tube(bristles, thick / 2 * np.interp(t, [0, 0.35, 1], [0.95, 1.1, 0.12]), segments=16),
        )
    tip = FunctionSpec("bristles", (fl + bl, 0, 0), ALONG, ACROSS, symmetry=2 if flat else 0)
    d.functions.update({"brush-with": tip, "write-with": tip})
    d.materials.update(
        handle=pick_material(rng, ("wood", "plastic")),
        ferrule=pick_material(rng, ("metal",)),
        bristles=pick_material(rng, ("wood", "plastic", "rubber")),
    )
    return d


def build_broom(p: Params, rng: np.random.Generator) -> Draft:
    d = Draft()
    hl, width, block, depth = (
        p["handle_length"],
        p["head_width"],
        p["block_length"],
        p["block_depth"],
    )
    x = np.linspace(-hl, 0.5 * block, 12)
    d.add("handle", tube(np.stack([x, 0 * x, 0 * x], 1), p["handle_radius"], segments=16))
    y = np.linspace(-width / 2, width / 2, 10)
    head = np.stack([np.full_like(y, block / 2), y, 0 * y], 1)
    d.add(
        "head", sweep(head, rounded_rect(block / 2, depth / 2, 0.3 * min(block, depth)), up=ALONG)
    )
    n = int(p["tufts"])
    pitch = width / n
    bl, slant, splay = p["bristle_length"], p["slant"], p["splay"]
    for yc in (np.arange(n) + 0.5) * pitch - width / 2:
        reach = bl * (1 + slant * 2 * yc / width)
        path = np.array([[block - 0.02, yc, 0.0], [block + reach, yc * (1 + splay), 0.0]])
        scale = np.array([[1.0, 1.0], [1.35, 1.0 + splay]])
        d.add(
            "bristles",
            sweep(path, rounded_rect(0.38 * depth, 0.47 * pitch, 0.1 * depth), scale, up=UP),
        )
    edge = FunctionSpec("bristles", (block + bl, 0, 0), ALONG, ACROSS, symmetry=2)
    d.functions.update({"sweep-with": edge, "brush-with": edge})
    d.materials.update(
        handle=pick_material(rng, ("wood", "metal", "plastic")),
        head=pick_material(rng, ("plastic", "wood")),
        bristles=pick_material(rng, ("plastic", "wood")),
    )
    return d


FAMILIES = (
    Family(
        "toothbrush",
        {
            "handle_length": Range(1.4, 1.8),
            "grip_width": Range(0.1, 0.16),
            "rise": Range(0.0, 0.12),
            "head_length": Range(0.26, 0.36),
            "head_width": Range(0.1, 0.14),
            "head_thickness": Range(0.035, 0.055),
            "bristle_length": Range(0.09, 0.14),
            "rows": Range(3, 4, integer=True),
            "trim": Range(-0.25, 0.25),
        },
        build_toothbrush,
        ("brush-with",),
    ),
    Family(
        "brush",
        {
            "block_length": Range(1.0, 1.5),
            "block_width": Range(0.45, 0.7),
            "block_height": Range(0.15, 0.3),
            "point": Range(1.6, 6.0),
            "handle": Range(0, 1, integer=True),
            "arch": Range(0.15, 0.3),
            "spacing": Range(0.07, 0.1),
            "bristle_length": Range(0.12, 0.25),
        },
        build_brush,
        ("brush-with",),
    ),
    Family(
        "hairbrush",
        {
            "handle_length": Range(0.9, 1.3),
            "handle_width": Range(0.14, 0.22),
            "pad_length": Range(0.8, 1.1),
            "pad_width": Range(0.45, 0.75),
            "pad_thickness": Range(0.08, 0.12),
            "squareness": Range(2.0, 5.0),
            "spacing": Range(0.07, 0.1),
            "pin_radius": Range(0.008, 0.014),
            "pin_length": Range(0.1, 0.17),
        },
        build_hairbrush,
        ("brush-with",),
    ),
    Family(
        "paintbrush",
        {
            "flat": Range(0, 1, integer=True),
            "width": Range(0.12, 0.6),
            "thickness": Range(0.18, 0.3),
            "handle_length": Range(1.0, 1.7),
            "handle_radius": Range(0.05, 0.08),
            "ferrule_length": Range(0.2, 0.35),
            "bristle_length": Range(0.3, 0.6),
        },
        build_paintbrush,
        ("brush-with", "write-with"),
    ),
    Family(
        "broom",
        {
            "handle_length": Range(2.2, 3.0),
            "handle_radius": Range(0.035, 0.05),
            "head_width": Range(0.6, 1.0),
            "block_length": Range(0.1, 0.18),
            "block_depth": Range(0.1, 0.16),
            "tufts": Range(6, 12, integer=True),
            "bristle_length": Range(0.3, 0.5),
            "slant": Range(0.0, 0.35),
            "splay": Range(0.0, 0.15),
        },
        build_broom,
        ("sweep-with", "brush-with"),
    ),
)

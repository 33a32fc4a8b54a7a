"""Solid (3D) procedural albedo textures keyed on a part's material kind.

A solid texture is a function of the object-frame surface point, not of the image, so a
surface point has the same albedo in every view: multi-view correspondences used for
training see the same colour at both ends. Each part gets one texture drawn from a
generator derived from the asset seed:

- ``wood``: growth rings around the part's long axis, bent by fBm turbulence, with fine
  fibres along the grain;
- ``metal``: brushed streaks along the long axis and faint smudges (the mirror look comes
  from the renderer's reflections, see :func:`surface_finish`);
- ``ceramic``: a glaze with subtle tone variation and sparse speckles;
- ``plastic`` / ``glass``: slight low-frequency noise; ``rubber``: fine grain;
- decals on larger parts: printed labels (a band with lines of text-like glyphs), coloured
  stripes and round logo patches.

Coordinates are taken in the part's principal-axis frame (axis 0 = longest), so grain and
labels follow the part whatever its pose in the object frame.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from funcorr.data.assets.base import Asset


@dataclass(frozen=True)
class LatticeNoise:
    """3D value noise: random values (P, P, P) on the integer lattice, periodic with period P,
    and a permutation (256,) for hashing integer cells (decal glyphs)."""

    perm: np.ndarray
    values: np.ndarray

    PERIOD = 64

    @staticmethod
    def draw(rng: np.random.Generator) -> LatticeNoise:
        p = LatticeNoise.PERIOD
        # float32 keeps the 64^3 table in cache: gathers are ~3x faster than from float64.
        values = rng.uniform(-1.0, 1.0, p**3).astype(np.float32)
        return LatticeNoise(rng.permutation(256).astype(np.int64), values)

    def hash(self, ix: np.ndarray, iy: np.ndarray, iz: np.ndarray) -> np.ndarray:
        """Lattice cells (N,) int -> pseudo-random ints (N,) in [0, 256)."""
        p = self.perm
        return p[(p[(p[ix & 255] + iy) & 255] + iz) & 255]

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Smoothly interpolated noise (N,) in [-1, 1] at points (N, 3) (lattice spacing 1)."""
        period = self.PERIOD
        cell = np.floor(points)
        s = points - cell
        s = s * s * (3.0 - 2.0 * s)  # smoothstep weights (N, 3)
        lo = cell.astype(np.int64) % period
        hi = (lo + 1) % period
        # Flat indices of the 8 cell corners: (2, 2, 2, N) over (x, y, z) low / high.
        x = np.stack([lo[:, 0], hi[:, 0]]) * (period * period)
        y = np.stack([lo[:, 1], hi[:, 1]]) * period
        z = np.stack([lo[:, 2], hi[:, 2]])
        v = self.values[x[:, None, None] + y[None, :, None] + z[None, None, :]]
        v = v[:, :, 0] + s[:, 2] * (v[:, :, 1] - v[:, :, 0])
        v = v[:, 0] + s[:, 1] * (v[:, 1] - v[:, 0])
        return v[0] + s[:, 0] * (v[1] - v[0])

    def fbm(self, points: np.ndarray, octaves: int = 3) -> np.ndarray:
        """Fractal sum (N,) in about [-1, 1] of ``octaves`` octaves (frequency x2, amplitude /2)."""
        out, total = np.zeros(len(points)), 0.0
        for octave in range(octaves):
            out += 0.5**octave * self(points * 2.0**octave + 17.0 * octave)
            total += 0.5**octave
        return out / total


@dataclass(frozen=True)
class PartFrame:
    """Principal-axis frame of a part: centre (3,), axes (3, 3) rows (longest first) and half
    extents (3,)."""

    centre: np.ndarray
    axes: np.ndarray
    half: np.ndarray

    @staticmethod
    def of(vertices: np.ndarray) -> PartFrame:
        centre = vertices.mean(axis=0)
        _, _, vt = np.linalg.svd(vertices - centre, full_matrices=False)
        local = (vertices - centre) @ vt.T
        lo, hi = local.min(axis=0), local.max(axis=0)
        centre = centre + ((lo + hi) / 2) @ vt
        return PartFrame(centre, vt, np.maximum((hi - lo) / 2, 1e-6))

    def local(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) coordinates along the principal axes."""
        return (points - self.centre) @ self.axes.T


@dataclass(frozen=True)
class Decal:
    """A printed mark on a part: ``label`` (band + text), ``stripes`` or ``logo``.

    centre / width: band or stripe positions along axis 0 in half-extent units ([-1, 1]);
    colours (K, 3) in [0, 1]: background first, then ink / stripe / ring colours; pitch:
    text line pitch (object units); spot (3,): logo centre on the surface; radius: logo radius.
    """

    kind: str
    centre: np.ndarray
    width: np.ndarray
    colours: np.ndarray
    pitch: float = 0.04
    spot: np.ndarray | None = None
    radius: float = 0.0


@dataclass(frozen=True)
class SolidTexture:
    """Albedo texture of one part: a kind, its frame, noise tables, strengths and an optional decal.

    frequency: feature frequency (rings per object unit for wood, lattice cells per unit
    otherwise); contrast: strength of the pattern; dark (3,): albedo multiplier of the
    darkest phase (wood late-wood, metal streaks).
    """

    kind: str
    frame: PartFrame
    noise: LatticeNoise
    frequency: float
    contrast: float
    dark: np.ndarray
    decal: Decal | None = None

    def albedo(self, points: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Albedo (N, 3) in [0, 1] at object-frame points (N, 3) of this part; base (N, 3)."""
        local = self.frame.local(points)
        out = base * self._modulation(local)
        if self.decal is not None:
            out = _apply_decal(self.decal, self.frame, self.noise, points, local, out)
        return np.clip(out, 0.0, 1.0)

    def _modulation(self, local: np.ndarray) -> np.ndarray:
        """(N, 3) multiplier of the base colour."""
        n = self.noise
        if self.kind == "wood":
            radius = np.sqrt(local[:, 1] ** 2 + local[:, 2] ** 2)
            warp = 0.35 * n.fbm(local * np.array([1.5, 5.0, 5.0]), 3)
            ring = 0.5 + 0.5 * np.sin(
                2 * np.pi * (radius * self.frequency + warp * 3.0 + local[:, 0] * 0.7)
            )
            fibres = 0.5 + 0.5 * n(local * np.array([6.0, 90.0, 90.0]) + 50.0)
            t = np.clip(self.contrast * ring**3 + 0.25 * fibres, 0.0, 1.0)[:, None]
            return 1.12 * (1.0 - t) + self.dark[None] * t
        if self.kind == "metal":
            streaks = n(local * np.array([2.5, 160.0, 160.0])) + 0.5 * n(
                local * np.array([5.0, 400.0, 400.0]) + 9.0
            )
            smudge = n.fbm(local * 4.0 + 30.0, 2)
            return (1.0 + self.contrast * streaks + 0.05 * smudge)[:, None] * np.ones(3)
        if self.kind == "ceramic":
            speck = np.clip((n(local * self.frequency) - 0.6) / 0.2, 0.0, 1.0)
            glaze = n.fbm(local * 3.0 + 40.0, 2)
            return (1.0 + 0.05 * glaze)[:, None] - (self.contrast * speck)[:, None] * (
                1.0 - self.dark[None]
            )
        if self.kind == "rubber":
            return (1.0 + self.contrast * n(local * self.frequency) + 0.05 * n.fbm(local * 5.0, 2))[
                :, None
            ] * np.ones(3)
        # plastic, glass, painted (real meshes): a slight, low-frequency unevenness
        return (1.0 + self.contrast * n.fbm(local * self.frequency, 3))[:, None] * np.ones(3)


def _apply_decal(
    decal: Decal,
    frame: PartFrame,
    noise: LatticeNoise,
    points: np.ndarray,
    local: np.ndarray,
    albedo: np.ndarray,
) -> np.ndarray:
    out = albedo.copy()
    s = local[:, 0] / frame.half[0]
    if decal.kind == "stripes":
        for k, (c, w) in enumerate(zip(decal.centre, decal.width, strict=True)):
            out[np.abs(s - c) < w] = decal.colours[1 + k % (len(decal.colours) - 1)]
        return out
    if decal.kind == "logo":
        d = np.linalg.norm(points - decal.spot, axis=1)
        out[d < decal.radius] = decal.colours[0]
        out[np.abs(d - 0.6 * decal.radius) < 0.12 * decal.radius] = decal.colours[1]
        out[d < 0.3 * decal.radius] = decal.colours[2 % len(decal.colours)]
        return out
    # label: a band along axis 0 with lines of glyphs running across it
    lo, hi = decal.centre[0] - decal.width[0], decal.centre[0] + decal.width[0]
    band = (s > lo) & (s < hi)
    out[band] = decal.colours[0]
    round_part = frame.half[2] > 0.4 * frame.half[1]
    across = (
        np.arctan2(local[:, 2], local[:, 1]) * 0.5 * (frame.half[1] + frame.half[2])
        if round_part
        else local[:, 1]
    )
    along = local[:, 0] - lo * frame.half[0]
    pitch = decal.pitch
    line = np.floor(along / pitch).astype(np.int64)
    in_line = along / pitch - line
    glyph_w = 0.62 * pitch
    glyph = np.floor(across / glyph_w).astype(np.int64)
    gx = np.clip(((across / glyph_w - glyph) * 3.6).astype(np.int64), 0, 3)  # 3 columns + a gap
    gy = np.clip(((in_line - 0.2) / 0.6 * 4).astype(np.int64), -1, 4)  # 4 rows inside [0.2, 0.8]
    # Lines leave a margin at both band ends; word gaps and line ends come from hashed cells.
    n_lines = int((hi - lo) * frame.half[0] / pitch)
    ink = band & (line >= 1) & (line < n_lines - 1) & (gx < 3) & (gy >= 0) & (gy < 4)
    cell = noise.hash(line + 512, glyph + 2048, gx * 4 + gy)
    word = noise.hash(line + 7, glyph + 4096, np.zeros_like(line)) > 45
    line_end = (
        np.abs(glyph) < 3 + noise.hash(line + 99, np.zeros_like(line), np.zeros_like(line)) % 14
    )
    ink &= (cell > 110) & word & line_end
    out[ink] = decal.colours[1]
    return out


_DECAL_KINDS = ("label", "stripes", "logo")
# How often each kind carries print, relative to ``decal_chance`` (labelled bottles and
# mugs are common, printed blades rare).
_PRINTED = {"plastic": 1.0, "ceramic": 1.0, "glass": 0.8, "metal": 0.35}


def _vivid(rng: np.random.Generator) -> np.ndarray:
    """(3,) print colour in [0, 1]: saturated hues, white and black."""
    roll = rng.uniform()
    if roll < 0.2:
        return np.full(3, rng.uniform(0.85, 1.0))
    if roll < 0.35:
        return np.full(3, rng.uniform(0.02, 0.15))
    return np.array(
        colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0))
    )


def _draw_decal(rng: np.random.Generator, vertices: np.ndarray) -> Decal:
    kind = _DECAL_KINDS[int(rng.integers(len(_DECAL_KINDS)))]
    colours = np.stack([_vivid(rng) for _ in range(3)])
    if kind == "label":
        if rng.uniform() < 0.6:  # light paper label with dark print
            colours[0] = np.clip(
                np.full(3, rng.uniform(0.8, 1.0)) + rng.uniform(-0.05, 0.05, 3), 0, 1
            )
            colours[1] = np.full(3, rng.uniform(0.0, 0.25))
        return Decal(
            kind,
            np.array([rng.uniform(-0.3, 0.3)]),
            np.array([rng.uniform(0.2, 0.45)]),
            colours,
            pitch=float(rng.uniform(0.025, 0.05)),
        )
    if kind == "stripes":
        k = int(rng.integers(1, 4))
        return Decal(kind, rng.uniform(-0.85, 0.85, k), rng.uniform(0.03, 0.12, k), colours)
    spot = vertices[int(rng.integers(len(vertices)))]
    return Decal(
        kind, np.zeros(1), np.zeros(1), colours, spot=spot, radius=float(rng.uniform(0.04, 0.12))
    )


def draw_texture(
    rng: np.random.Generator, kind: str, vertices: np.ndarray, decal_chance: float = 0.5
) -> SolidTexture:
    """A random texture for a part of material ``kind`` whose vertices (N, 3) give its frame."""
    frame = PartFrame.of(vertices)
    noise = LatticeNoise.draw(rng)
    dark = np.ones(3)
    if kind == "wood":
        frequency, contrast = rng.uniform(12.0, 40.0), rng.uniform(0.35, 0.75)
        dark = np.array([0.55, 0.42, 0.32]) * rng.uniform(0.8, 1.1)
    elif kind == "metal":
        frequency, contrast = 160.0, rng.uniform(0.03, 0.1)
    elif kind == "ceramic":
        frequency, contrast = rng.uniform(40.0, 110.0), rng.uniform(0.05, 0.35)
        dark = np.array([0.35, 0.32, 0.3])
    elif kind == "rubber":
        frequency, contrast = rng.uniform(80.0, 200.0), rng.uniform(0.05, 0.15)
    else:
        frequency, contrast = rng.uniform(3.0, 10.0), rng.uniform(0.02, 0.06)
    decal = None
    big = 2.0 * frame.half[0] >= 0.25
    roll = rng.uniform()
    if big and roll < decal_chance * _PRINTED.get(kind, 0.0):
        decal = _draw_decal(rng, vertices)
    elif kind in ("rubber", "wood", "plastic") and roll < 0.15:  # painted rings on handles
        decal = Decal(
            "stripes",
            rng.uniform(-0.9, 0.9, 2),
            rng.uniform(0.02, 0.08, 2),
            np.stack([_vivid(rng)] * 2),
        )
    return SolidTexture(kind, frame, noise, frequency, contrast, dark, decal)


# Per kind: specular weight, shininess and mirror reflectivity ranges of randomised renders.
FINISH_RANGES = {
    "metal": ((0.5, 1.0), (20.0, 150.0), (0.35, 0.75)),
    "plastic": ((0.15, 0.6), (10.0, 80.0), (0.0, 0.08)),
    "ceramic": ((0.35, 0.8), (40.0, 200.0), (0.03, 0.15)),
    "rubber": ((0.02, 0.12), (3.0, 10.0), (0.0, 0.0)),
    "wood": ((0.02, 0.3), (5.0, 40.0), (0.0, 0.03)),
    "glass": ((0.6, 1.0), (60.0, 250.0), (0.15, 0.4)),
}


def surface_finish(rng: np.random.Generator, kind: str) -> tuple[float, float, float]:
    """(specular weight, shininess, reflectivity) drawn for a material kind."""
    ranges = FINISH_RANGES.get(kind, FINISH_RANGES["plastic"])
    return tuple(float(rng.uniform(lo, hi)) for lo, hi in ranges)


@dataclass(frozen=True)
class AssetTextures:
    """Textures (P,) and finishes of an asset's parts; ``albedo`` is a renderer albedo hook.

    specular, shininess, reflect: (P,) per part.
    """

    textures: list[SolidTexture]
    face_parts: np.ndarray
    base: np.ndarray
    specular: np.ndarray
    shininess: np.ndarray
    reflect: np.ndarray

    def albedo(self, points: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Albedo (N, 3) in [0, 1] at hit points (N, 3) on faces (N,)."""
        parts = self.face_parts[faces]
        base = self.base[faces]
        out = np.empty_like(base)
        for part in np.unique(parts):
            idx = np.flatnonzero(parts == part)
            out[idx] = self.textures[part].albedo(points[idx], base[idx])
        return out


def asset_textures(
    asset: Asset, rng: np.random.Generator, textured: bool = True, decal_chance: float = 0.5
) -> AssetTextures:
    """Draw every part's texture and finish (in part order) from ``rng``.

    Meshes with their own face colours keep them under a faint unevenness; ``textured=False``
    keeps flat colours but still varies the finish per kind; decal_chance: how often a larger
    printable part (plastic, ceramic; glass and metal less) carries a label, stripes or a logo.
    """
    base = (
        np.asarray(asset.face_colors, np.float64)
        if asset.face_colors is not None
        else np.array([m.color for m in asset.materials], np.float64)[asset.face_parts]
    ) / 255.0
    textures, finishes = [], []
    for part, material in enumerate(asset.materials):
        faces = asset.face_parts == part
        vertices = (
            asset.mesh.vertices[np.unique(asset.mesh.faces[faces])]
            if faces.any()
            else np.zeros((4, 3))
        )
        if len(vertices) < 4:
            vertices = np.concatenate([vertices, np.eye(3) * 1e-3, np.zeros((1, 3))])
        kind = "plastic" if asset.face_colors is not None else material.kind
        texture = draw_texture(
            rng, kind, vertices, decal_chance=0.0 if asset.face_colors is not None else decal_chance
        )
        if not textured:
            texture = SolidTexture(kind, texture.frame, texture.noise, 1.0, 0.0, np.ones(3))
        textures.append(texture)
        finishes.append(surface_finish(rng, material.kind))
    specular, shininess, reflect = (np.array(v) for v in zip(*finishes, strict=True))
    return AssetTextures(textures, np.asarray(asset.face_parts), base, specular, shininess, reflect)

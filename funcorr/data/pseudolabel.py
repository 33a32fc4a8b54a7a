"""Functional-part pseudo-labels from part boxes voted onto a surface point cloud (paper Sec. 7.4).

Pipeline, for one object, one part and a set of rendered views:

1. a :class:`PartBoxProposer` proposes boxes around the part in every view, ``n_trials``
   times (a VLM samples differently each time; :class:`VLMBoxProposer` asks an OpenAI-style
   chat endpoint, :class:`NoisyOracleProposer` perturbs boxes of the true part masks);
2. every surface point (object frame, (P, 3), typically 100k points sampled on the mesh)
   visible in a view gets that view's vote: the fraction of trials whose boxes contain its
   projection. Visibility compares the point's depth with the view's depth map;
3. votes are divided by the number of views in which the point is visible, giving a score
   in [0, 1] (NaN for points no view sees);
4. Otsu's threshold splits the scores into part / not part;
5. a morphological closing on the point cloud (kNN dilation, then erosion) fills holes;
6. labels go back to every view: each object pixel takes the label of the surface point
   nearest to its xyz.

Steps 2, 5 and 6 depend on the object and its views but not on the part: their geometry
(point visibility and projections, the kNN graph, each pixel's nearest point) is computed
once per object (:func:`surface_geometry`) and shared by all its parts
(:func:`pseudo_label_parts`), which gives the same masks as labelling each part alone.

Views follow the renderer's contract (duck-typed by :class:`View`): ``rgb (H, W, 3) uint8``,
``depth (H, W) float32`` (camera z, 0 = background), ``xyz (H, W, 3)`` object-frame points
(NaN on background), ``mask (H, W) bool``, ``part_ids (H, W) int16`` (-1 = background),
``K (3, 3)`` and ``cam_to_world (4, 4)`` (OpenCV camera: x right, y down, z forward; world =
the object frame of ``xyz``). Pixel xy = (column, row) with the top-left pixel centre at (0, 0).
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, Self

import httpx
import numpy as np
from PIL import Image
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu

from funcorr.files import InputError

Box = tuple[float, float, float, float]
"""[x0, y0, x1, y1] in pixel coordinates of the view (x0 <= x1, y0 <= y1)."""

# The reference's third query template (request_part.py), the one it used for labelling.
DEFAULT_TEMPLATE = "What are the exact bounding boxes of <expr> in the provided picture?"


class ViewImage(Protocol):
    """Anything with an RGB image: ``rgb`` (H, W, 3) uint8."""

    rgb: np.ndarray


class View(ViewImage, Protocol):
    """A rendered view (see the module docstring for the meaning of each field)."""

    depth: np.ndarray
    xyz: np.ndarray
    mask: np.ndarray
    part_ids: np.ndarray
    K: np.ndarray
    cam_to_world: np.ndarray


class PartBoxProposer(Protocol):
    """Proposes boxes around ``part`` of an object of ``category`` in one view."""

    def propose(self, view: View, category: str, part: str) -> list[Box]: ...


# --- part descriptions and the VLM prompt ------------------------------------------------------


def load_part_descriptions(taxonomy: str | os.PathLike | None = None) -> dict[str, dict[str, str]]:
    """category -> part -> description from the taxonomy in use: the folder ``taxonomy``
    (e.g. one written by ``funcorr taxonomy parts``) or, when None, the shipped one.

    Objaverse descriptions win over HANDAL ones for the same part.
    """
    from funcorr.data.taxonomy import load_taxonomy

    tax = load_taxonomy(taxonomy)
    merged: dict[str, dict[str, str]] = {}
    for table in (tax.part_descriptions, tax.handal_part_descriptions):
        for category, parts in table.items():
            for part, description in parts.items():
                merged.setdefault(_key(category), {}).setdefault(_key(part), description)
    return merged


def _key(name: str) -> str:
    """Lookup key for categories and parts: ``measuring_cup`` and ``Measuring cup`` match."""
    return " ".join(name.replace("_", " ").split()).lower()


def part_query(category: str, part: str, descriptions: dict[str, dict[str, str]], template: str = DEFAULT_TEMPLATE) -> str:
    """The question sent to the VLM, worded as in the reference.

    A description ``"- Spout - The elongated ... poured out."`` becomes the quoted expression
    ``"spout - the elongated ... poured out"`` (bullet, ``*`` and ``.`` removed, lower case,
    because the VLM echoes markdown and sentence punctuation back into its box syntax).
    Parts without a description are asked for as ``"the <part> of the <category>"``.
    """
    description = descriptions.get(_key(category), {}).get(_key(part))
    if description is None:
        phrase = f"the {part} of the {category}"
    else:
        phrase = description.strip().removeprefix("-").strip().replace("*", "").replace(".", "").lower()
    return template.replace("<expr>", f'"{phrase}"').strip()


# --- parsing VLM replies -------------------------------------------------------------------------

CoordMode = Literal["pixel", "norm1000", "norm1"]
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# Four numbers opened by [ ( or ; and closed by ] ) or ; -- covers CogVLM's
# [[x0,y0,x1,y1;x0,...]], JSON [[x0, y0, x1, y1], [...]], {"bbox_2d": [...]} and (x0,y0,x1,y1).
_BOX_PATTERN = re.compile(
    rf"(?<=[\[(;])\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*(?=[\]);])"
)


def parse_box_numbers(text: str) -> list[tuple[float, float, float, float]]:
    """Every bracketed group of four numbers in a VLM reply, as raw floats in reply order."""
    return [tuple(float(value) for value in match.groups()) for match in _BOX_PATTERN.finditer(text)]


def reply_box_to_image(
    raw: Sequence[float],
    mode: CoordMode,
    sent_size: tuple[int, int],
    offset: tuple[int, int],
    image_size: tuple[int, int],
) -> Box | None:
    """Map one reply box to pixel coordinates of the original view.

    raw: [x0, y0, x1, y1] as the VLM wrote it; mode: ``pixel`` (pixel coordinates of the sent
    image), ``norm1000`` (CogVLM: 0-1000 across the sent image) or ``norm1`` (0-1);
    sent_size / image_size: (W, H); offset: (x, y) of the original image inside the sent
    (padded) one. Normalised coordinates measure from the image's outer edge, pixel
    coordinates from the top-left pixel centre, hence the half-pixel shift. Returns None for
    boxes that are empty after clipping to the image.
    """
    x0, y0, x1, y1 = raw
    if mode != "pixel":
        scale = 1000.0 if mode == "norm1000" else 1.0
        sx, sy = sent_size[0] / scale, sent_size[1] / scale
        x0, x1 = x0 * sx - 0.5, x1 * sx - 0.5
        y0, y1 = y0 * sy - 0.5, y1 * sy - 0.5
    x0, x1 = sorted((x0 - offset[0], x1 - offset[0]))
    y0, y1 = sorted((y0 - offset[1], y1 - offset[1]))
    width, height = image_size
    x0, x1 = max(x0, -0.5), min(x1, width - 0.5)
    y0, y1 = max(y0, -0.5), min(y1, height - 0.5)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


# --- VLM client --------------------------------------------------------------------------------


class VLMError(InputError, RuntimeError):
    """The VLM endpoint could not be reached or answered with an error (bad user input for
    the CLI: one line, exit 2)."""


def check_reachable(base_url: str, timeout_s: float = 10.0, what: str = "VLM") -> None:
    """Open (and close) a TCP connection to an OpenAI-style endpoint, so a server that is down
    is one clear error before a long run starts rather than a failure in its middle."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise VLMError(f"The {what} endpoint {base_url!r} is not an http(s) URL.")
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout_s).close()
    except OSError as err:
        raise VLMError(f"Cannot reach the {what} endpoint {base_url}: {err.strerror or err}.") from None


@dataclass(frozen=True)
class VLMConfig:
    """An OpenAI-compatible chat-completions endpoint that answers with boxes.

    base_url: e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended);
    api_key_env: name of the environment variable holding the key (no header when unset);
    coords: how the model writes boxes (CogVLM: ``norm1000``); square_pad: pad the image to
    a white square before sending, as the reference does for CogVLM's square input;
    taxonomy: folder of the taxonomy whose part descriptions word the questions (None: the
    shipped one).
    """

    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    coords: CoordMode = "norm1000"
    square_pad: bool = True
    template: str = DEFAULT_TEMPLATE
    temperature: float = 0.9
    top_p: float = 0.95
    max_tokens: int = 256
    timeout_s: float = 120.0
    taxonomy: str | None = None

    @classmethod
    def from_env(cls, **overrides) -> VLMConfig:
        """Config from ``FUNCORR_VLM_BASE_URL`` and ``FUNCORR_VLM_MODEL``; keyword overrides win."""
        values = {"base_url": os.environ.get("FUNCORR_VLM_BASE_URL"), "model": os.environ.get("FUNCORR_VLM_MODEL")}
        values.update(overrides)
        if not values["base_url"] or not values["model"]:
            raise VLMError("Set FUNCORR_VLM_BASE_URL and FUNCORR_VLM_MODEL (or pass base_url= and model=).")
        return cls(**values)


def encode_view_image(rgb: np.ndarray, square_pad: bool) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """JPEG data URL of ``rgb`` (H, W, 3) uint8, optionally centred on a white square.

    Returns (data_url, sent_size (W, H), offset (x, y) of the image inside the sent one).
    """
    image = Image.fromarray(np.ascontiguousarray(rgb[..., :3]).astype(np.uint8))
    offset = (0, 0)
    if square_pad:
        side = max(image.size)
        offset = ((side - image.width) // 2, (side - image.height) // 2)
        padded = Image.new("RGB", (side, side), (255, 255, 255))
        padded.paste(image, offset)
        image = padded
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    return f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}", image.size, offset


def post_chat(client: httpx.Client, config: VLMConfig, body: dict) -> str:
    """POST one chat-completions request to ``config.base_url``; the assistant's reply text.

    The key, when the environment holds one under ``config.api_key_env``, goes in a Bearer
    header. Raises VLMError for transport errors and non-200 answers.
    """
    url = config.base_url.rstrip("/") + "/chat/completions"
    key = os.environ.get(config.api_key_env)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = client.post(url, json=body, headers=headers)
    except httpx.HTTPError as err:
        raise VLMError(f"VLM request to {url} failed: {err}") from err
    if response.status_code != 200:
        raise VLMError(f"VLM at {url} answered HTTP {response.status_code}: {response.text[:300]}")
    return reply_text(response.json())


def reply_text(payload: dict) -> str:
    """Assistant text of a chat-completions response (string or list-of-parts content)."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError) as err:
        raise VLMError(f"Unexpected chat-completions response: {str(payload)[:300]}") from err
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content or ""


class VLMBoxProposer:
    """Asks a VLM for the part's boxes: one chat request per call, image as a base64 data URL."""

    def __init__(self, config: VLMConfig, descriptions: dict[str, dict[str, str]] | None = None, client: httpx.Client | None = None):
        self.config = config
        if descriptions is None:
            descriptions = load_part_descriptions(config.taxonomy)
        self.descriptions = descriptions
        self.client = client if client is not None else httpx.Client(timeout=config.timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def request_body(self, view: ViewImage, category: str, part: str) -> tuple[dict, tuple[int, int], tuple[int, int]]:
        """(chat-completions JSON body, sent_size, offset) for one question about ``view``."""
        data_url, sent_size, offset = encode_view_image(view.rgb, self.config.square_pad)
        body = {
            "model": self.config.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": part_query(category, part, self.descriptions, self.config.template)},
                        {"type": "image_url", "image_url": {"url": data_url}},
                    ],
                }
            ],
            "temperature": self.config.temperature,
            "top_p": self.config.top_p,
            "max_tokens": self.config.max_tokens,
            "stream": False,
        }
        return body, sent_size, offset

    def propose(self, view: ViewImage, category: str, part: str) -> list[Box]:
        """Boxes the VLM gives for ``part`` in ``view`` (empty when its reply has none)."""
        body, sent_size, offset = self.request_body(view, category, part)
        reply = post_chat(self.client, self.config, body)
        height, width = view.rgb.shape[:2]
        raw_boxes = parse_box_numbers(reply)
        boxes = (reply_box_to_image(raw, self.config.coords, sent_size, offset, (width, height)) for raw in raw_boxes)
        return [box for box in boxes if box is not None]


# --- noisy oracle ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OracleNoise:
    """How the oracle degrades true part boxes.

    jitter: std of each edge's shift as a fraction of the box's width (x edges) or height
    (y edges); miss_rate: probability that a call returns no box for a visible part;
    false_box_rate: probability that a call adds a part-sized box centred on a random object
    pixel outside the part.
    """

    jitter: float = 0.0
    miss_rate: float = 0.0
    false_box_rate: float = 0.0


def mask_box(mask: np.ndarray) -> Box | None:
    """Tight box around the true pixels of ``mask`` (H, W), covering whole pixels; None if empty."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return None
    return (float(cols.min()) - 0.5, float(rows.min()) - 0.5, float(cols.max()) + 0.5, float(rows.max()) + 0.5)


class NoisyOracleProposer:
    """Boxes from the view's true part mask, with seeded jitter, misses and false boxes.

    part_names: names indexed by ``view.part_ids``; when omitted, ``view.part_names`` is used.
    """

    def __init__(self, noise: OracleNoise = OracleNoise(), seed: int = 0, part_names: Sequence[str] | None = None):
        self.noise = noise
        self.part_names = list(part_names) if part_names is not None else None
        self._rng = np.random.default_rng(seed)

    def _part_mask(self, view: View, part: str) -> np.ndarray:
        names = self.part_names if self.part_names is not None else getattr(view, "part_names", None)
        if names is None:
            raise ValueError("NoisyOracleProposer needs part_names (constructor) or view.part_names.")
        if part not in names:
            raise ValueError(f"Unknown part {part!r}; this object has parts {list(names)}.")
        return np.asarray(view.part_ids) == names.index(part)

    def propose(self, view: View, category: str, part: str) -> list[Box]:
        """0-2 boxes: the (jittered) true box unless missed, plus possibly one false box."""
        part_mask = self._part_mask(view, part)
        true_box = mask_box(part_mask)
        boxes: list[Box] = []
        if true_box is not None and self._rng.random() >= self.noise.miss_rate:
            boxes.append(self._jitter(true_box))
        if self._rng.random() < self.noise.false_box_rate:
            false_box = self._false_box(np.asarray(view.mask, bool) & ~part_mask, true_box)
            if false_box is not None:
                boxes.append(false_box)
        return boxes

    def _jitter(self, box: Box) -> Box:
        x0, y0, x1, y1 = box
        dx, dy = (x1 - x0) * self.noise.jitter, (y1 - y0) * self.noise.jitter
        sx0, sy0, sx1, sy1 = self._rng.normal(0.0, 1.0, size=4) * (dx, dy, dx, dy)
        return (min(x0 + sx0, x1 + sx1), min(y0 + sy0, y1 + sy1), max(x0 + sx0, x1 + sx1), max(y0 + sy0, y1 + sy1))

    def _false_box(self, elsewhere: np.ndarray, true_box: Box | None) -> Box | None:
        rows, cols = np.nonzero(elsewhere)
        if rows.size == 0:
            return None
        pick = self._rng.integers(rows.size)
        if true_box is not None:
            half_w, half_h = (true_box[2] - true_box[0]) / 2, (true_box[3] - true_box[1]) / 2
        else:
            half_w, half_h = elsewhere.shape[1] / 10, elsewhere.shape[0] / 10
        cx, cy = cols[pick], rows[pick]
        return (cx - half_w, cy - half_h, cx + half_w, cy + half_h)


# --- geometry and voting -----------------------------------------------------------------------


@dataclass(frozen=True)
class VisibilityConfig:
    """When a surface point counts as visible in a view.

    depth_slack_pixels: a point is visible when its camera z is within this many pixel
    footprints (depth / focal length) of the depth map at its pixel -- the depth map is only
    known per pixel, so a sloped surface varies by about a footprint across one.
    """

    depth_slack_pixels: float = 1.5


def project_points(points: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray]:
    """Object-frame points (P, 3) -> pixel xy (P, 2) and camera z (P,) in ``view``'s camera.

    (Same maths as ``funcorr.data.render.project``; kept here so that pseudo-labelling does
    not import the renderer's trimesh/embree stack.)
    """
    world_to_cam = np.linalg.inv(np.asarray(view.cam_to_world, dtype=np.float64))
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uvw = cam @ np.asarray(view.K, dtype=np.float64).T
        xy = uvw[:, :2] / z[:, None]
    return xy, z


def visible_points(points: np.ndarray, view: View, config: VisibilityConfig = VisibilityConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Which points (P, 3) the view sees, and where. Returns visible (P,) bool and xy (P, 2)."""
    xy, depth = project_points(points, view)
    surface_depth = np.asarray(view.depth)
    height, width = surface_depth.shape
    cols, rows = np.rint(np.nan_to_num(xy, nan=-1.0, posinf=-1.0, neginf=-1.0)).astype(np.int64).T
    inside = (cols >= 0) & (cols < width) & (rows >= 0) & (rows < height) & (depth > 0)
    surface = np.where(inside, surface_depth[rows.clip(0, height - 1), cols.clip(0, width - 1)], 0.0)
    focal = float(np.mean(np.diag(np.asarray(view.K))[:2]))
    tolerance = config.depth_slack_pixels * surface / focal
    return inside & (surface > 0) & (np.abs(depth - surface) <= tolerance), xy


def boxes_contain(xy: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
    """(P,) bool: the point xy (P, 2) lies inside at least one box."""
    inside = np.zeros(xy.shape[0], dtype=bool)
    for x0, y0, x1, y1 in boxes:
        inside |= (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    return inside


@dataclass(frozen=True)
class SurfaceGeometry:
    """The part-independent geometry of points (P, 3) seen in V views.

    visible (V, P) bool and xy (V, P, 2): :func:`visible_points` per view; neighbours (P, k):
    each point's k nearest points (itself included), for :func:`close_point_labels`;
    pixels[v] (H, W) bool: the object pixels of view v with a finite xyz; nearest[v]: for
    those pixels (row-major), the index of the nearest point (:func:`labels_to_masks`).
    """

    visible: np.ndarray
    xy: np.ndarray
    neighbours: np.ndarray
    pixels: list[np.ndarray]
    nearest: list[np.ndarray]


def knn_graph(points: np.ndarray, k: int, tree: cKDTree | None = None) -> np.ndarray:
    """Indices (P, min(k, P)) of each point's k nearest points, itself included."""
    tree = cKDTree(points) if tree is None else tree
    # workers=-1 queries on every core; the answer does not depend on it.
    return tree.query(points, k=min(k, points.shape[0]), workers=-1)[1].reshape(points.shape[0], -1)


def pixel_points(views: Sequence[View], tree: cKDTree) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per view, its object pixels with a finite xyz ((H, W) bool) and, row-major, the index of
    the point of ``tree`` nearest to each one's xyz."""
    pixels, nearest = [], []
    for view in views:
        xyz = np.asarray(view.xyz, dtype=np.float64)
        held = np.asarray(view.mask, bool) & np.isfinite(xyz).all(axis=-1)
        pixels.append(held)
        nearest.append(tree.query(xyz[held], workers=-1)[1] if held.any() else np.zeros(0, dtype=np.int64))
    return pixels, nearest


def surface_geometry(points: np.ndarray, views: Sequence[View], visibility: VisibilityConfig = VisibilityConfig(), k: int = 16) -> SurfaceGeometry:
    """Compute the :class:`SurfaceGeometry` of ``points`` (P, 3) in ``views`` once."""
    points = np.asarray(points, dtype=np.float64)
    seen = [visible_points(points, view, visibility) for view in views]
    tree = cKDTree(points)
    pixels, nearest = pixel_points(views, tree)
    visible = np.stack([v for v, _ in seen]) if seen else np.zeros((0, points.shape[0]), bool)
    xy = np.stack([xy for _, xy in seen]) if seen else np.zeros((0, points.shape[0], 2))
    return SurfaceGeometry(visible, xy, knn_graph(points, k, tree), pixels, nearest)


def collect_proposals(views: Sequence[View], proposer: PartBoxProposer, category: str, part: str, n_trials: int) -> list[list[list[Box]]]:
    """Boxes per view, per trial: ``result[v][t]`` is the list returned by trial t on view v."""
    return [[proposer.propose(view, category, part) for _ in range(n_trials)] for view in views]


@dataclass(frozen=True)
class VoteField:
    """scores: (P,) in [0, 1], NaN where no view sees the point; seen: (P,) number of views that do."""

    scores: np.ndarray
    seen: np.ndarray


def vote_scores(
    points: np.ndarray,
    views: Sequence[View],
    proposals: Sequence[Sequence[Sequence[Box]]],
    visibility: VisibilityConfig = VisibilityConfig(),
    geometry: SurfaceGeometry | None = None,
) -> VoteField:
    """Per-point part score: mean over the views that see it of the fraction of trials whose
    boxes contain it. Dividing by visible views, not all views, keeps parts that few views
    see (a kettle's base) from scoring low just for being hidden. ``geometry``: visibility
    already computed (:func:`surface_geometry`)."""
    votes = np.zeros(points.shape[0])
    seen = np.zeros(points.shape[0], dtype=np.int64)
    for index, (view, trials) in enumerate(zip(views, proposals, strict=True)):
        if geometry is None:
            visible, xy = visible_points(points, view, visibility)
        else:
            visible, xy = geometry.visible[index], geometry.xy[index]
        if trials:
            votes += visible * np.mean([boxes_contain(xy, boxes) for boxes in trials], axis=0)
        seen += visible
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = np.where(seen > 0, votes / np.maximum(seen, 1), np.nan)
    return VoteField(scores, seen)


def otsu_threshold(scores: np.ndarray) -> float:
    """Otsu's threshold over the finite scores; points strictly above it are the part."""
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        raise ValueError("No finite scores to threshold (no point is visible in any view).")
    if finite.min() == finite.max():
        return float(finite.min())
    return float(threshold_otsu(finite))


def _neighbour_fraction(labels: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Fraction of each point's k neighbours (itself included) that are labelled, (P,)."""
    return labels[neighbours].mean(axis=1)


def close_point_labels(
    points: np.ndarray,
    labels: np.ndarray,
    k: int = 16,
    dilate_fraction: float = 0.25,
    erode_fraction: float = 0.75,
    iterations: int = 1,
    neighbours: np.ndarray | None = None,
) -> np.ndarray:
    """Morphological closing of point labels (P,) bool on the kNN graph of points (P, 3)
    (``neighbours`` (P, k): that graph, when already computed by :func:`knn_graph`).

    Dilation adds points with at least ``dilate_fraction`` labelled neighbours; erosion then
    keeps labelled points with at least ``erode_fraction`` labelled neighbours. Fractions
    rather than the classic any/all rules make both steps majority votes, so one stray label
    neither spreads nor punches holes (kNN neighbourhoods are not symmetric, and point
    density varies over a sampled mesh).
    """
    if neighbours is None:
        neighbours = knn_graph(points, k)
    closed = labels.astype(bool)
    for _ in range(iterations):
        closed = closed | (_neighbour_fraction(closed, neighbours) >= dilate_fraction)
    for _ in range(iterations):
        closed = closed & (_neighbour_fraction(closed, neighbours) >= erode_fraction)
    return closed


def labels_to_masks(points: np.ndarray, labels: np.ndarray, views: Sequence[View], geometry: SurfaceGeometry | None = None) -> list[np.ndarray]:
    """2D part masks (H, W) bool per view: each object pixel takes the label of the surface
    point nearest to its xyz (``geometry``: those nearest points already found)."""
    if geometry is None:
        pixels, nearest_points = pixel_points(views, cKDTree(points))
    else:
        pixels, nearest_points = geometry.pixels, geometry.nearest
    masks = []
    for held, nearest in zip(pixels, nearest_points, strict=True):
        mask = np.zeros(held.shape, dtype=bool)
        if held.any():
            mask[held] = labels[nearest]
        masks.append(mask)
    return masks


def mask_iou(pred: np.ndarray, true: np.ndarray) -> float:
    """Intersection over union of two (H, W) bool masks; 1.0 when both are empty (they agree)."""
    pred, true = np.asarray(pred, bool), np.asarray(true, bool)
    union = np.logical_or(pred, true).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, true).sum() / union)


# --- the whole pipeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class PseudoLabelConfig:
    """n_trials: proposer calls per view (the reference asks CogVLM 4 times); the closing
    parameters are those of :func:`close_point_labels`."""

    n_trials: int = 4
    visibility: VisibilityConfig = VisibilityConfig()
    closing_k: int = 16
    dilate_fraction: float = 0.25
    erode_fraction: float = 0.75
    closing_iterations: int = 1


@dataclass
class PseudoLabelResult:
    """Everything the pipeline computed for one part.

    scores (P,), seen (P,): see :class:`VoteField`; threshold: Otsu's; voted (P,) bool:
    scores above the threshold; labels (P,) bool: after closing; masks: (H, W) bool per view;
    proposals: boxes per view per trial.
    """

    scores: np.ndarray
    seen: np.ndarray
    threshold: float
    voted: np.ndarray
    labels: np.ndarray
    masks: list[np.ndarray]
    proposals: list[list[list[Box]]] = field(repr=False)


def pseudo_label_part(
    views: Sequence[View],
    points: np.ndarray,
    proposer: PartBoxProposer,
    category: str,
    part: str,
    config: PseudoLabelConfig = PseudoLabelConfig(),
    geometry: SurfaceGeometry | None = None,
) -> PseudoLabelResult:
    """Run the Sec. 7.4 pipeline for ``part`` of one object seen in ``views``.

    points: (P, 3) surface points in the object frame (the paper samples 100k on the mesh);
    geometry: their :func:`surface_geometry` in ``views`` (computed here when None).
    """
    points = np.asarray(points, dtype=np.float64)
    if geometry is None:
        geometry = surface_geometry(points, views, config.visibility, config.closing_k)
    proposals = collect_proposals(views, proposer, category, part, config.n_trials)
    votes = vote_scores(points, views, proposals, config.visibility, geometry)
    threshold = otsu_threshold(votes.scores)
    voted = np.nan_to_num(votes.scores, nan=0.0) > threshold
    labels = close_point_labels(
        points, voted, config.closing_k, config.dilate_fraction, config.erode_fraction, config.closing_iterations, geometry.neighbours
    )
    return PseudoLabelResult(votes.scores, votes.seen, threshold, voted, labels, labels_to_masks(points, labels, views, geometry), proposals)


def pseudo_label_parts(
    views: Sequence[View],
    points: np.ndarray,
    proposer: PartBoxProposer,
    category: str,
    parts: Sequence[str],
    config: PseudoLabelConfig = PseudoLabelConfig(),
) -> list[PseudoLabelResult]:
    """:func:`pseudo_label_part` for each of ``parts`` in turn (the proposer is asked in that
    order), sharing one :func:`surface_geometry`: the same results, the geometry once."""
    points = np.asarray(points, dtype=np.float64)
    geometry = surface_geometry(points, views, config.visibility, config.closing_k)
    return [pseudo_label_part(views, points, proposer, category, part, config, geometry) for part in parts]

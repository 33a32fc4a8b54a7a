"""Where part boxes come from (paper Sec. 7.4, step 1): a :class:`PartBoxProposer` returns
boxes around a named part in one rendered view. :class:`VLMBoxProposer` asks an
OpenAI-compatible vision-language chat endpoint with the reference's prompt wording and parses
the boxes out of its reply; :class:`NoisyOracleProposer` simulates one offline from the true
part masks (misses, false boxes, jitter). Voting the boxes onto the surface is
:mod:`funcorr.data.pseudolabel`."""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Self

import httpx
import numpy as np
from PIL import Image

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


def part_query(
    category: str,
    part: str,
    descriptions: dict[str, dict[str, str]],
    template: str = DEFAULT_TEMPLATE,
) -> str:
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
        phrase = (
            description.strip().removeprefix("-").strip().replace("*", "").replace(".", "").lower()
        )
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
    return [
        tuple(float(value) for value in match.groups()) for match in _BOX_PATTERN.finditer(text)
    ]


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
        raise VLMError(
            f"Cannot reach the {what} endpoint {base_url}: {err.strerror or err}."
        ) from None


class ChatClientOwner:
    """Owns ``self.client`` (an ``httpx.Client``) and closes it on ``close()`` or at the end
    of a ``with`` block."""

    client: httpx.Client

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()


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
        values = {
            "base_url": os.environ.get("FUNCORR_VLM_BASE_URL"),
            "model": os.environ.get("FUNCORR_VLM_MODEL"),
        }
        values.update(overrides)
        if not values["base_url"] or not values["model"]:
            raise VLMError(
                "Set FUNCORR_VLM_BASE_URL and FUNCORR_VLM_MODEL (or pass base_url= and model=)."
            )
        return cls(**values)


def encode_view_image(
    rgb: np.ndarray, square_pad: bool
) -> tuple[str, tuple[int, int], tuple[int, int]]:
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
    return (
        f"data:image/jpeg;base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}",
        image.size,
        offset,
    )


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


class VLMBoxProposer(ChatClientOwner):
    """Asks a VLM for the part's boxes: one chat request per call, image as a base64 data URL."""

    def __init__(
        self,
        config: VLMConfig,
        descriptions: dict[str, dict[str, str]] | None = None,
        client: httpx.Client | None = None,
    ):
        self.config = config
        if descriptions is None:
            descriptions = load_part_descriptions(config.taxonomy)
        self.descriptions = descriptions
        self.client = client if client is not None else httpx.Client(timeout=config.timeout_s)

    def request_body(
        self, view: ViewImage, category: str, part: str
    ) -> tuple[dict, tuple[int, int], tuple[int, int]]:
        """(chat-completions JSON body, sent_size, offset) for one question about ``view``."""
        data_url, sent_size, offset = encode_view_image(view.rgb, self.config.square_pad)
        body = {
            "model": self.config.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "text",
                            "text": part_query(
                                category, part, self.descriptions, self.config.template
                            ),
                        },
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
        boxes = (
            reply_box_to_image(raw, self.config.coords, sent_size, offset, (width, height))
            for raw in raw_boxes
        )
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
    return (
        float(cols.min()) - 0.5,
        float(rows.min()) - 0.5,
        float(cols.max()) + 0.5,
        float(rows.max()) + 0.5,
    )


class NoisyOracleProposer:
    """Boxes from the view's true part mask, with seeded jitter, misses and false boxes.

    part_names: names indexed by ``view.part_ids``; when omitted, ``view.part_names`` is used.
    """

    def __init__(
        self,
        noise: OracleNoise = OracleNoise(),
        seed: int = 0,
        part_names: Sequence[str] | None = None,
    ):
        self.noise = noise
        self.part_names = list(part_names) if part_names is not None else None
        self._rng = np.random.default_rng(seed)

    def _part_mask(self, view: View, part: str) -> np.ndarray:
        names = (
            self.part_names if self.part_names is not None else getattr(view, "part_names", None)
        )
        if names is None:
            raise ValueError(
                "NoisyOracleProposer needs part_names (constructor) or view.part_names."
            )
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
        return (
            min(x0 + sx0, x1 + sx1),
            min(y0 + sy0, y1 + sy1),
            max(x0 + sx0, x1 + sx1),
            max(y0 + sy0, y1 + sy1),
        )

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

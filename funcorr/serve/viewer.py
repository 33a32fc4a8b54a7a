"""The viewer's state and computations, independent of HTTP.

One idea at about 760 lines: the viewer's state and what each page action computes, kept
apart from HTTP (:mod:`funcorr.serve.app`); each action reads the same caches.

A :class:`Viewer` keeps, in bounded LRU caches:

* images by content id (a hash of their pixels and mask), with a display-size copy;
* matchers (loaded backbones / trained heads) by configuration;
* features by (image id, feature configuration), so a click costs one
  :func:`~funcorr.model.matching.similarity_heatmap` call plus drawing;
* per-pair results that take longer (discovered matches, label-transfer colouring).

The object mask each image is matched within (``MatcherConfig.object_mask``: alpha, the
backbone's saliency decoder, or the full image) is chosen per request and can be shown as an
overlay (:meth:`Viewer.object_masks`).

Positions exchanged with the page are original image pixels (x = column, y = row, (0, 0) the
centre of the top-left pixel); overlay pictures cover the original image at display size
(longest side at most ``display_max``), so the page stretches them over the image it shows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from funcorr.images import InputError, LoadedImage, Resize
from funcorr.model.matcher import OBJECT_MASK_POLICIES, Matcher, MatcherConfig, Prepared
from funcorr.model.matching import (
    Discovery,
    ImageFeatures,
    discover,
    mask_pixels,
    similarity_heatmap,
    spread_out,
    transfer_points,
)
from funcorr.model.modes import ModeRule, densify, find_modes
from funcorr.serve.cache import LRUCache
from funcorr.serve.pairs import DatasetPairs
from funcorr.viz import (
    colours,
    draw_matches,
    heatmap_overlay,
    object_picture,
    paint,
    position_colours,
)

MatcherFactory = Callable[[MatcherConfig], Matcher]


class UnknownImage(KeyError):
    """An image id the viewer does not hold (never uploaded, or dropped from the LRU)."""


@dataclass(frozen=True)
class ViewerConfig:
    """Defaults and cache sizes of a viewer.

    defaults: feature options every matcher starts from (size, resize, device, weights and the
    page's initial backbone / checkpoint / function); checkpoints: trained heads the page may
    choose (only these: the page never names a file to load); data: dataset folder or None.
    dense_cache_size: targets whose per-pixel features are kept whole (S * S * C floats each,
    about 77 MB at 224 px with 384 channels), which turns a heat map into one matrix product.
    discovery_stride / label_stride / label_key_stride: lattice steps (network pixels) that
    keep top-K discovery and dense label transfer under a second on a CPU.
    *_cache_bytes: byte budgets of the caches (the entry counts alone do not bound memory: an
    entry is a few kB or hundreds of MB); upload_max_side: uploads are shrunk on arrival so
    their longest side is at most this (default: 4 x the network size, at least display_max),
    since the network never sees more.
    """

    defaults: MatcherConfig = field(default_factory=MatcherConfig)
    checkpoints: tuple[Path, ...] = ()
    data: Path | None = None
    feature_cache_size: int = 32
    dense_cache_size: int = 4
    image_cache_size: int = 64
    matcher_cache_size: int = 2
    result_cache_size: int = 16
    image_cache_bytes: int = 256 * 2**20
    feature_cache_bytes: int = 256 * 2**20
    dense_cache_bytes: int = 512 * 2**20
    result_cache_bytes: int = 64 * 2**20
    upload_max_side: int | None = None
    display_max: int = 448
    discovery_stride: int = 4
    discovery_spacing: float = 12.0
    label_stride: int = 2
    label_key_stride: int = 4
    modes: ModeRule = field(default_factory=ModeRule)


@dataclass(frozen=True)
class MatcherChoice:
    """What the page's selects name: a backbone, or a checkpoint (by its path as listed), a
    function, and the object-mask policy (None: the server's default)."""

    backbone: str
    checkpoint: str | None = None
    function: str | None = None
    object_mask: str | None = None


@dataclass(frozen=True)
class ExportRequest:
    """What the page shows: a pair, the choice, the clicked point, top-K and overlay toggles."""

    source: str
    target: str
    choice: MatcherChoice
    point: tuple[float, float] | None = None
    top_k: int | None = None
    heatmap: bool = True
    labels: bool = False
    masks: bool = False


@dataclass(frozen=True)
class StoredImage:
    """An image the page can refer to. display: (h, w, 3) uint8 copy at display size;
    uploaded_size: (W, H) of the upload when it was shrunk on arrival (positions exchanged
    with the page are pixels of the image kept, ``image``)."""

    id: str
    name: str
    image: LoadedImage
    display: np.ndarray
    uploaded_size: tuple[int, int] | None = None

    def info(self) -> dict:
        width, height = self.image.size
        info = {
            "id": self.id,
            "name": self.name,
            "width": width,
            "height": height,
            "has_mask": self.image.mask is not None,
        }
        if self.uploaded_size is not None:
            info["uploaded_size"] = list(self.uploaded_size)
        return info


@dataclass(frozen=True)
class ImageState:
    """An image ready to match: network-size preparation, queryable features (restricted to
    the object mask) and where that mask came from (alpha, saliency or full)."""

    prepared: Prepared
    features: ImageFeatures
    mask_source: str = "alpha"


@dataclass(frozen=True)
class ClickResult:
    """Answer to a click. Points in original pixels; heatmap_png covers the target at display size."""

    source_xy: tuple[float, float]
    target_xy: tuple[float, float]
    similarity: float
    modes: list[dict]
    heatmap_png: bytes | None
    timing_ms: dict[str, float]

    def to_json(self) -> dict:
        return {
            "source": list(self.source_xy),
            "target": list(self.target_xy),
            "similarity": self.similarity,
            "ambiguous": len(self.modes) >= 2,
            "modes": self.modes,
            "timing_ms": self.timing_ms,
        }


def image_id(image: LoadedImage) -> str:
    """Content id: hash of the pixels and mask (not of the file), so a re-upload or the same
    dataset view maps to the same cached features."""
    digest = hashlib.sha256()
    digest.update(str(tuple(image.rgb.shape)).encode())
    digest.update(image.rgb.contiguous().numpy().tobytes())
    if image.mask is not None:
        digest.update(image.mask.contiguous().numpy().tobytes())
    return digest.hexdigest()[:20]


def find_checkpoints(folder: Path) -> tuple[Path, ...]:
    """Trained heads below ``folder``, sorted: funcorr ``.safetensors`` checkpoints (not the
    ``.train.safetensors`` resume states, not other safetensors files) and funcorr 0.1 ``.pt``
    files, which are only ever read as plain data (``torch.load(weights_only=True)``)."""
    from funcorr.model.checkpoint import CHECKPOINT_FORMAT, TRAIN_SUFFIX

    if not folder.is_dir():
        raise InputError(f"No checkpoint folder at {folder}.")
    found = [
        p
        for p in folder.rglob("*.safetensors")
        if not p.name.endswith(TRAIN_SUFFIX) and _header_format(p) == CHECKPOINT_FORMAT
    ]
    return tuple(sorted(found + list(folder.rglob("*.pt"))))


def _header_format(path: Path) -> str | None:
    """The ``format`` entry of a safetensors header (None when unreadable): no tensor is read."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return (handle.metadata() or {}).get("format")
    except (SafetensorError, OSError, ValueError):
        return None


def png_bytes(picture: np.ndarray | Image.Image) -> bytes:
    """PNG encoding; fast compression because pictures go straight to the browser."""
    buffer = io.BytesIO()
    (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(
        buffer, format="PNG", compress_level=1
    )
    return buffer.getvalue()


def display_size(size: tuple[int, int], display_max: int) -> tuple[int, int]:
    """(w, h) of an image of ``size`` (W, H) shrunk so its longest side is <= ``display_max``."""
    width, height = size
    scale = min(1.0, display_max / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def display_to_original(size: tuple[int, int], display: tuple[int, int]) -> torch.Tensor:
    """Original-pixel xy of every display pixel centre, row-major. (h * w, 2)."""
    (width, height), (w, h) = size, display
    xy = mask_pixels(torch.ones(h, w, dtype=torch.bool))
    return (xy + 0.5) * torch.tensor([width / w, height / h]) - 0.5


def original_to_display(
    xy: np.ndarray, size: tuple[int, int], display: tuple[int, int]
) -> np.ndarray:
    """(N, 2) original-pixel xy -> display-pixel xy (inverse of :func:`display_to_original`)."""
    (width, height), (w, h) = size, display
    return (np.asarray(xy, dtype=np.float64) + 0.5) * np.array([w / width, h / height]) - 0.5


def sample_network_map(
    values: torch.Tensor, net_xy: torch.Tensor, mode: str = "bilinear"
) -> torch.Tensor:
    """Sample a square map (C, S, S) at pixel xy (N, 2) of that map. Returns (N, C)."""
    size = values.shape[-1]
    grid = (net_xy.float() / (size - 1) * 2 - 1).reshape(1, -1, 1, 2)
    # align_corners=True: pixel-index coordinates put pixel centres at 0 .. S-1.
    out = F.grid_sample(
        values[None].float(),
        grid.to(values.device),
        mode=mode,
        padding_mode="border",
        align_corners=True,
    )
    return out[0, :, :, 0].T


def overlay_heatmap(stored: StoredImage, plan: Resize, heat: torch.Tensor) -> np.ndarray:
    """The (S, S) similarity map over the display copy of the image. (h, w, 3) uint8."""
    h, w = stored.display.shape[:2]
    net_xy = plan.to_net(display_to_original(stored.image.size, (w, h)))
    values = sample_network_map(heat[None].cpu(), net_xy)[:, 0].reshape(h, w).numpy()
    return heatmap_overlay(stored.display, values)


def mask_overlay_rgba(stored: StoredImage, plan: Resize, mask: torch.Tensor) -> np.ndarray:
    """A transparent (h, w, 4) uint8 layer over the display copy: outside the (S, S) object
    mask veiled in white, its boundary drawn, inside clear."""
    from scipy import ndimage

    h, w = stored.display.shape[:2]
    net_xy = plan.to_net(display_to_original(stored.image.size, (w, h)))
    inside = (
        (sample_network_map(mask[None].float().cpu(), net_xy, mode="nearest")[:, 0] > 0.5)
        .reshape(h, w)
        .numpy()
    )
    layer = np.zeros((h, w, 4), np.uint8)
    layer[~inside] = (255, 255, 255, 140)
    edge = inside & ~ndimage.binary_erosion(inside, border_value=0)
    layer[ndimage.binary_dilation(edge)] = (0, 200, 255, 255)
    return layer


def overlay_positions(
    stored: StoredImage,
    state: ImageState,
    source_net_xy: Callable[[torch.Tensor], torch.Tensor],
    size: int,
) -> np.ndarray:
    """Paint each object pixel of the display copy with :func:`position_colours` of the source
    network position ``source_net_xy(its network xy)`` (the label-transfer colouring)."""
    h, w = stored.display.shape[:2]
    display_xy = mask_pixels(torch.ones(h, w, dtype=torch.bool))
    net_xy = state.prepared.plan.to_net(display_to_original(stored.image.size, (w, h)))
    inside = (
        sample_network_map(state.prepared.mask[None].float(), net_xy, mode="nearest")[:, 0] > 0.5
    )
    rgb = position_colours(source_net_xy(net_xy[inside]).numpy(), (size, size))
    return paint(stored.display, display_xy[inside].numpy(), rgb)


class Viewer:
    """State of one viewer server: caches and the computations behind the page's requests.

    Cache access and computation happen under one lock: requests arrive on several threads,
    and on a CPU two feature extractions at once are no faster than one after the other.
    """

    def __init__(
        self, config: ViewerConfig | None = None, matcher_factory: MatcherFactory = Matcher
    ):
        config = ViewerConfig() if config is None else config
        self.config = config
        self.matcher_factory = matcher_factory
        self.images: LRUCache[str, StoredImage] = LRUCache(
            config.image_cache_size, config.image_cache_bytes
        )
        self.matchers: LRUCache[tuple, Matcher] = LRUCache(config.matcher_cache_size)
        self.features: LRUCache[tuple, ImageState] = LRUCache(
            config.feature_cache_size, config.feature_cache_bytes
        )
        self.dense: LRUCache[tuple, ImageFeatures] = LRUCache(
            max(1, config.dense_cache_size), config.dense_cache_bytes
        )
        self.results: LRUCache[tuple, object] = LRUCache(
            config.result_cache_size, config.result_cache_bytes
        )
        self.dataset = DatasetPairs(config.data)
        self._lock = threading.RLock()

    # ---- choices -------------------------------------------------------------------------

    def default_choice(self) -> MatcherChoice:
        cfg = self.config.defaults
        return MatcherChoice(cfg.backbone, cfg.checkpoint, cfg.function, cfg.object_mask)

    def options(self) -> dict:
        """What the page's selects offer, and the defaults."""
        from funcorr.backbones import BACKBONES, weights_available
        from funcorr.text import function_names

        cfg = self.config.defaults
        return {
            "backbones": [
                {
                    "name": name,
                    "available": name == cfg.backbone or weights_available(name, cfg.weights),
                    "description": entry.description,
                }
                for name, entry in BACKBONES.items()
            ],
            "checkpoints": [str(path) for path in self.config.checkpoints],
            "functions": list(function_names()),
            "defaults": dataclasses.asdict(self.default_choice()),
            "object_masks": list(OBJECT_MASK_POLICIES),
            "image_size": cfg.image_size,
            "display_max": self.config.display_max,
            "mode_rule": dataclasses.asdict(self.config.modes),
        }

    def matcher_config(self, choice: MatcherChoice) -> MatcherConfig:
        """The full configuration for a page choice; InputError for anything not offered."""
        from funcorr.backbones import BACKBONES
        from funcorr.text import resolve_function

        if choice.backbone not in BACKBONES:
            raise InputError(
                f"Unknown backbone {choice.backbone!r}; choose one of {', '.join(BACKBONES)}."
            )
        offered = {str(path) for path in self.config.checkpoints}
        if choice.checkpoint is not None and choice.checkpoint not in offered:
            raise InputError(
                f"Checkpoint {choice.checkpoint!r} is not offered by this server (start it with --checkpoint or --checkpoint-dir)."
            )
        if choice.function:
            resolve_function(choice.function)
        if choice.checkpoint is not None and not choice.function:
            raise InputError("A trained checkpoint needs a function (e.g. pour-with).")
        if choice.object_mask is not None and choice.object_mask not in OBJECT_MASK_POLICIES:
            raise InputError(
                f"Unknown object mask {choice.object_mask!r}; choose one of {', '.join(OBJECT_MASK_POLICIES)}."
            )
        return dataclasses.replace(
            self.config.defaults,
            backbone=choice.backbone,
            checkpoint=choice.checkpoint,
            function=choice.function or None,
            object_mask=choice.object_mask or self.config.defaults.object_mask,
        )

    @staticmethod
    def feature_key(config: MatcherConfig) -> tuple:
        """What features depend on. Raw backbone features ignore the function, so changing the
        function without a checkpoint reuses them; the batch size changes nothing."""
        relevant = dataclasses.replace(
            config, batch_size=0, function=config.function if config.checkpoint else None
        )
        return tuple(sorted(dataclasses.asdict(relevant).items()))

    def matcher(self, choice: MatcherChoice) -> Matcher:
        config = self.matcher_config(choice)
        with self._lock:
            return self.matchers.get_or_create(
                self.feature_key(config), lambda: self.matcher_factory(config)
            )

    def warm_up(self) -> None:
        """Load the default matcher now rather than on the first request."""
        self.matcher(self.default_choice())

    # ---- images --------------------------------------------------------------------------

    def upload_max_side(self) -> int:
        """Longest side uploads are shrunk to on arrival (see :class:`ViewerConfig`)."""
        cfg = self.config
        return cfg.upload_max_side or max(4 * cfg.defaults.image_size, cfg.display_max)

    def add_image(
        self, image: LoadedImage, name: str, uploaded_size: tuple[int, int] | None = None
    ) -> StoredImage:
        """Keep ``image`` (by content id) and return its record."""
        key = image_id(image)

        def store() -> StoredImage:
            display = Image.fromarray(object_picture(image)).resize(
                display_size(image.size, self.config.display_max), Image.BILINEAR
            )
            return StoredImage(key, name, image, np.asarray(display), uploaded_size)

        with self._lock:
            return self.images.get_or_create(key, store)

    def image(self, key: str) -> StoredImage:
        with self._lock:
            stored = self.images.get(key)
        if stored is None:
            raise UnknownImage(
                f"Image {key} is not on the server (it may have been dropped from the cache): load it again."
            )
        return stored

    def image_state(self, key: str, choice: MatcherChoice) -> ImageState:
        """Prepared image and features, from the cache when this image and configuration were seen."""
        stored = self.image(key)
        matcher = self.matcher(choice)
        with self._lock:

            def compute() -> ImageState:
                prepared = matcher.prepare(stored.image)
                encoded = matcher.encode([prepared])
                return ImageState(
                    prepared, matcher.features([prepared], encoded)[0], encoded.sources[0]
                )

            return self.features.get_or_create((key, self.feature_key(matcher.config)), compute)

    def dense_features(self, key: str, choice: MatcherChoice) -> ImageFeatures:
        """:func:`densify` of an image's features (kept for the few most recent targets)."""
        state = self.image_state(key, choice)
        with self._lock:
            dense_key = (key, self.feature_key(self.matcher(choice).config))
            return self.dense.get_or_create(dense_key, lambda: densify(state.features))

    def prepare_pair(self, source: str, target: str, choice: MatcherChoice) -> dict:
        """Compute (or find) both images' features, and the target's dense features, so that the
        first click is as fast as the next. Returns timing and how many images were cached."""
        start = time.perf_counter()
        hits = self.features.hits
        self.image_state(source, choice)
        self.image_state(target, choice)
        cached = self.features.hits - hits
        self.dense_features(target, choice)
        return {"ms": _ms_since(start), "cached": cached}

    # ---- pair computations ---------------------------------------------------------------

    def click(
        self,
        source: str,
        target: str,
        choice: MatcherChoice,
        xy: tuple[float, float],
        heatmap: bool = True,
    ) -> ClickResult:
        """Match one source point: the similarity map over the target, its modes, and the best one."""
        start = time.perf_counter()
        src_stored, tgt_stored = self.image(source), self.image(target)
        width, height = src_stored.image.size
        if not (0 <= xy[0] <= width - 1 and 0 <= xy[1] <= height - 1):
            raise InputError(f"Point {xy} lies outside the {width}x{height} source image.")
        src, tgt = self.image_state(source, choice), self.image_state(target, choice)
        tgt_dense = self.dense_features(target, choice)
        features_ms = _ms_since(start)
        with self._lock:
            heat_start = time.perf_counter()
            net_point = src.prepared.plan.to_net(torch.tensor([xy], dtype=torch.float32))[0]
            heat = similarity_heatmap(src.features, tgt_dense, net_point)
            heat_ms = _ms_since(heat_start)
            # The best mode is the nearest neighbour over the target object, i.e. what
            # transfer_points returns: no second pass over the target is needed.
            modes = find_modes(heat, tgt.features.mask, self.config.modes)
            mode_xy = tgt.prepared.plan.to_orig(modes.xy.cpu())
            picture = (
                png_bytes(overlay_heatmap(tgt_stored, tgt.prepared.plan, heat)) if heatmap else None
            )
        return ClickResult(
            (float(xy[0]), float(xy[1])),
            (float(mode_xy[0, 0]), float(mode_xy[0, 1])),
            float(modes.similarity[0]),
            [
                {"target": p.tolist(), "similarity": float(s), "strength": float(r)}
                for p, s, r in zip(mode_xy, modes.similarity.cpu(), modes.strength.cpu())
            ],
            picture,
            {"features": features_ms, "heatmap": heat_ms, "total": _ms_since(start)},
        )

    def _ranked(self, source: str, target: str, choice: MatcherChoice) -> Discovery:
        """Discovery on a lattice of both objects (cached per pair and configuration)."""
        src, tgt = self.image_state(source, choice), self.dense_features(target, choice)
        stride = self.config.discovery_stride

        def compute() -> Discovery:
            lattice = torch.zeros_like(src.features.mask)
            lattice[::stride, ::stride] = True
            return discover(
                src.features, tgt, src_mask=src.features.mask & lattice, tgt_mask=tgt.mask & lattice
            )

        with self._lock:
            return self.results.get_or_create(
                ("discover", source, target, self.feature_key(self.matcher(choice).config)), compute
            )

    def top_matches(self, source: str, target: str, choice: MatcherChoice, k: int) -> dict:
        """The ``k`` best discovered matches, spread out, in original pixels."""
        start = time.perf_counter()
        src, tgt = self.image_state(source, choice), self.image_state(target, choice)
        ranked = self._ranked(source, target, choice)
        keep = spread_out(
            ranked.src_xy.cpu(), ranked.tgt_xy.cpu(), k, self.config.discovery_spacing
        )
        src_xy = src.prepared.plan.to_orig(ranked.src_xy[keep].cpu())
        tgt_xy = tgt.prepared.plan.to_orig(ranked.tgt_xy[keep].cpu())
        matches = [
            {
                "source": p.tolist(),
                "target": q.tolist(),
                "score": float(ranked.score[i]),
                "similarity": float(ranked.similarity[i]),
                "cycle_error_px": float(ranked.cycle_error[i]),
            }
            for i, p, q in zip(keep.tolist(), src_xy, tgt_xy)
        ]
        return {
            "matches": matches,
            "ms": _ms_since(start),
            "lattice_stride": self.config.discovery_stride,
        }

    def label_transfer(
        self, source: str, target: str, choice: MatcherChoice
    ) -> tuple[bytes, bytes, float]:
        """Dense label-transfer colouring: (source PNG, target PNG, ms). The source object is
        coloured by position; every target object pixel takes the colour of its match."""
        start = time.perf_counter()
        src_stored, tgt_stored = self.image(source), self.image(target)
        src, tgt = self.image_state(source, choice), self.image_state(target, choice)
        size = self.matcher(choice).config.image_size

        def compute() -> tuple[bytes, bytes]:
            step = self.config.label_stride
            lattice = torch.zeros(size, size, dtype=torch.bool)
            lattice[::step, ::step] = True
            # Match a full lattice of target pixels (object or not), so matches form a grid
            # image that display pixels look up by nearest lattice node.
            back = transfer_points(
                self.dense_features(target, choice),
                src.features,
                mask_pixels(lattice),
                candidate_stride=self.config.label_key_stride,
            )
            grid = back.points.cpu().T.reshape(2, *lattice[::step, ::step].shape)

            def matched(net_xy: torch.Tensor) -> torch.Tensor:
                return (
                    sample_network_map(grid, net_xy / step, mode="nearest")
                    if len(net_xy)
                    else net_xy
                )

            left = overlay_positions(src_stored, src, lambda net_xy: net_xy, size)
            right = overlay_positions(tgt_stored, tgt, matched, size)
            return png_bytes(left), png_bytes(right)

        with self._lock:
            key = ("labels", source, target, self.feature_key(self.matcher(choice).config))
            left, right = self.results.get_or_create(key, compute)
        return left, right, _ms_since(start)

    def object_masks(self, source: str, target: str, choice: MatcherChoice) -> dict:
        """Each image's object mask as a transparent overlay PNG, and where it came from."""
        answer = {}
        for role, key in (("source", source), ("target", target)):
            stored, state = self.image(key), self.image_state(key, choice)
            layer = mask_overlay_rgba(stored, state.prepared.plan, state.features.mask)
            answer[role] = {
                "png": png_bytes(layer),
                "source": state.mask_source,
                "pixels_at_network_size": int(state.features.mask.sum()),
            }
        return answer

    # ---- dataset -------------------------------------------------------------------------

    def pairs(self) -> dict:
        with self._lock:
            return self.dataset.listing()

    def load_pair(self, split: str, index: int) -> dict:
        """Put both images of a dataset pair into the viewer; their records and the function."""
        with self._lock:
            pair = self.dataset.load(split, index)
        first = self.add_image(pair.first, f"{pair.pair_id} (1)")
        second = self.add_image(pair.second, f"{pair.pair_id} (2)")
        return {
            "pair_id": pair.pair_id,
            "function": pair.function,
            "source": first.info(),
            "target": second.info(),
        }

    # ---- export --------------------------------------------------------------------------

    def export_record(self, request: ExportRequest) -> dict:
        """The page's current result as a JSON-ready record."""
        src_stored, tgt_stored = self.image(request.source), self.image(request.target)
        from funcorr.match_command import record_header

        record = {
            **record_header(src_stored.info(), tgt_stored.info(), self.matcher(request.choice)),
            "function": request.choice.function,
            "mode_rule": dataclasses.asdict(self.config.modes),
            "object_masks": [
                {
                    "image": role,
                    "source": state.mask_source,
                    "pixels_at_network_size": int(state.features.mask.sum()),
                }
                for role, state in (
                    ("source", self.image_state(request.source, request.choice)),
                    ("target", self.image_state(request.target, request.choice)),
                )
            ],
        }
        if request.point is not None:
            record["click"] = self.click(
                request.source, request.target, request.choice, request.point, heatmap=False
            ).to_json()
        if request.top_k:
            top = self.top_matches(request.source, request.target, request.choice, request.top_k)
            record["top_matches"] = top["matches"]
            record["top_matches_lattice_stride"] = top["lattice_stride"]
        return record

    def export_picture(self, request: ExportRequest) -> bytes:
        """Both panes as shown (overlay, clicked match in red, top-K in rainbow colours) side by side. PNG."""
        src_stored, tgt_stored = self.image(request.source), self.image(request.target)
        left, right = src_stored.display, tgt_stored.display
        if request.labels:
            left_png, right_png, _ = self.label_transfer(
                request.source, request.target, request.choice
            )
            left, right = _decode_png(left_png), _decode_png(right_png)
        src_points: list = []
        tgt_points: list = []
        point_colours: list = []
        other_modes = np.zeros((0, 2))
        if request.point is not None:
            # The label colouring, when on, replaces the heat map on the target (as on the page).
            clicked = self.click(
                request.source,
                request.target,
                request.choice,
                request.point,
                heatmap=request.heatmap and not request.labels,
            )
            if clicked.heatmap_png is not None:
                right = _decode_png(clicked.heatmap_png)
            src_points.append(clicked.source_xy)
            tgt_points.append(clicked.target_xy)
            point_colours.append((255, 40, 40))
            other_modes = np.array([m["target"] for m in clicked.modes[1:]]).reshape(-1, 2)
        if request.top_k:
            matches = self.top_matches(
                request.source, request.target, request.choice, request.top_k
            )["matches"]
            src_points += [m["source"] for m in matches]
            tgt_points += [m["target"] for m in matches]
            point_colours += [tuple(c) for c in colours(len(matches))]
        if request.masks:
            masks = self.object_masks(request.source, request.target, request.choice)
            left, right = _veil(left, masks["source"]["png"]), _veil(right, masks["target"]["png"])
        picture = draw_matches(
            left,
            right,
            original_to_display(
                np.reshape(src_points, (-1, 2)), src_stored.image.size, left.shape[1::-1]
            ),
            original_to_display(
                np.reshape(tgt_points, (-1, 2)), tgt_stored.image.size, right.shape[1::-1]
            ),
            point_colours=np.array(point_colours, dtype=np.uint8).reshape(-1, 3),
        )
        # The target is the right-most image of the picture: rings mark the click's other modes.
        rings = original_to_display(other_modes, tgt_stored.image.size, right.shape[1::-1]) + [
            picture.width - right.shape[1],
            0,
        ]
        draw = ImageDraw.Draw(picture)
        radius = max(6, round(max(right.shape[:2]) / 40))
        for x, y in rings:
            draw.ellipse(
                [x - radius, y - radius, x + radius, y + radius], outline=(255, 40, 40), width=2
            )
        return png_bytes(picture)


def _veil(picture: np.ndarray, layer_png: bytes) -> np.ndarray:
    """Composite a transparent overlay PNG onto an (h, w, 3) picture of the same display size."""
    with Image.open(io.BytesIO(layer_png)) as layer:
        base = Image.fromarray(picture).convert("RGBA")
        return np.asarray(
            Image.alpha_composite(base, layer.convert("RGBA").resize(base.size)).convert("RGB")
        )


def _decode_png(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        return np.asarray(im.convert("RGB"))


def _ms_since(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)

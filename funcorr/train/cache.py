"""The training cache: frozen backbone features and functional-part labels of every view.

The backbone is frozen (paper Sec. 4), so its block features of every training view are
computed once, for ``background_variants`` versions of each view (the render itself and
copies composited onto other backgrounds, optionally colour-jittered), and a CPU step only
runs the small head. Part masks are pseudo-labels (Sec. 7.4) or the renderer's true masks.
The cache is one safetensors file (tensors) with a JSON header (the rest): no pickle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from tqdm import tqdm

from funcorr.data.backgrounds import random_background
from funcorr.data.part_boxes import (
    NoisyOracleProposer,
    OracleNoise,
    VLMBoxProposer,
    VLMConfig,
    check_reachable,
)
from funcorr.data.pseudolabel import pseudo_label_parts
from funcorr.data.readers import TrainViews, load_view
from funcorr.images import InputError, atomic_path, mask_iou
from funcorr.train.config import TrainConfig, cache_key

CACHE_FORMAT = "funcorr-train-cache"
CACHE_VERSION = 2


@dataclass
class TrainingCache:
    """Per-view tensors the training loop needs, all at network resolution.

    features: (V, K, L, C, h, w) float16 backbone blocks for K background variants;
    masks: (V, H, W) bool; part_masks: function -> (V, H, W) bool (empty where the view's
    asset lacks that function); asset_of: (V,) long; functions_of_asset: per asset index the
    functions it supports; spatial: list of (view_a, view_b, (N, 2, 2) pixel pairs).
    """

    features: torch.Tensor
    masks: torch.Tensor
    part_masks: dict[str, torch.Tensor]
    asset_of: torch.Tensor
    functions_of_asset: dict[int, list[str]]
    spatial: list[tuple[int, int, torch.Tensor]]
    label_source: str
    patch_size: int
    stride: int
    pseudo_label_iou: dict[str, dict[str, float]] = field(default_factory=dict)


# --------------------------------------------------------------------------- variants


def colour_jitter(image: torch.Tensor, strength: float, rng: np.random.Generator) -> torch.Tensor:
    """Random brightness, contrast and saturation factors in [1 - s, 1 + s]. (3, H, W) in [0, 1]."""
    if strength <= 0:
        return image
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, 3)
    out = image * brightness
    out = (out - out.mean()) * contrast + out.mean()
    grey = (0.299 * out[0] + 0.587 * out[1] + 0.114 * out[2])[None]
    return ((out - grey) * saturation + grey).clamp(0, 1)


def _background(
    kind: str, size: tuple[int, int], rng: np.random.Generator, dtype: torch.dtype
) -> torch.Tensor:
    """(3, H, W) background of a kind; ``colour`` draws exactly three uniforms, as funcorr
    0.1 did, so colour-only caches stay reproducible."""
    if kind == "colour":
        return torch.tensor(rng.uniform(0, 1, 3), dtype=dtype).view(3, 1, 1).expand(3, *size)
    pixels = random_background(rng, (size[1], size[0]), kinds=(kind,))
    return torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).to(dtype) / 255.0


def background_variants(
    image: torch.Tensor, mask: torch.Tensor, cfg: TrainConfig, rng: np.random.Generator
) -> torch.Tensor:
    """The rendered image plus ``background_variants - 1`` copies on other backgrounds (the
    paper's random-colour augmentation, done at cache time so it costs nothing per step).
    image (3, H, W), mask (H, W) bool. Returns (K, 3, H, W)."""
    out = [image]
    size = tuple(mask.shape)
    for _ in range(cfg.background_variants - 1):
        kind = (
            cfg.background_kinds[int(rng.integers(len(cfg.background_kinds)))]
            if len(cfg.background_kinds) > 1
            else cfg.background_kinds[0]
        )
        composite = torch.where(mask[None], image, _background(kind, size, rng, image.dtype))
        out.append(colour_jitter(composite, cfg.colour_jitter, rng))
    return torch.stack(out)


# --------------------------------------------------------------------------- labels


def pseudo_part_masks(
    root: Path, asset_id: str, record: dict, cfg: TrainConfig, seed: int
) -> tuple[dict[str, list[torch.Tensor]], dict[str, float]]:
    """Pseudo-labelled functional-part masks of every view of one asset (paper Sec. 7.4).

    Boxes come from a VLM when ``cfg.vlm_base_url`` is set, else from the noisy oracle that
    simulates one; votes are aggregated on the asset's surface points seen in its views.
    Returns masks per function (one (H, W) bool per view) and their IoU with the true masks.
    """
    views = [load_view(root, asset_id, v, record) for v in range(record["n_views"])]
    points = np.concatenate([v.xyz[v.mask] for v in views])
    rng = np.random.default_rng(seed)
    points = points[rng.choice(len(points), min(len(points), 100_000), replace=False)]
    if cfg.vlm_base_url:
        proposer = VLMBoxProposer(
            VLMConfig(base_url=cfg.vlm_base_url, model=cfg.vlm_model, taxonomy=cfg.taxonomy)
        )
    else:
        noise = OracleNoise(cfg.oracle_jitter, cfg.oracle_miss_rate, cfg.oracle_false_box_rate)
        proposer = NoisyOracleProposer(noise, seed=seed)
    masks, ious = {}, {}
    functions = list(record["functions"].items())
    # One geometry (visibility, kNN graph, pixel -> point) for all parts of the asset.
    results = pseudo_label_parts(
        views, points, proposer, record["category"], [spec["part"] for _, spec in functions]
    )
    for (function, spec), result in zip(functions, results, strict=True):
        masks[function] = [torch.from_numpy(m & v.mask) for m, v in zip(result.masks, views)]
        ious[function] = float(
            np.mean([mask_iou(m, v.part_mask(spec["part"])) for m, v in zip(result.masks, views)])
        )
    return masks, ious


# --------------------------------------------------------------------------- build / IO


def cache_path(cfg: TrainConfig) -> Path:
    return Path(cfg.data) / "cache" / f"train-{cache_key(cfg)}.safetensors"


def build_cache(cfg: TrainConfig, backbone, device: torch.device) -> TrainingCache:
    """Compute (or load) the feature cache for the train split of ``cfg.data``."""
    path = cache_path(cfg)
    if path.is_file():
        return read_cache(path)
    dataset = TrainViews(cfg.data, split="train")
    if len(dataset) == 0:
        raise InputError(f"{cfg.data} has no training views.")
    if cfg.labels == "pseudo" and cfg.vlm_base_url:
        check_reachable(cfg.vlm_base_url)
    rng = np.random.default_rng(cfg.seed)
    features, masks, assets, spatial, ious = [], [], [], [], {}
    part_lists: dict[str, dict[int, torch.Tensor]] = {}
    functions_of_asset: dict[int, list[str]] = {}
    for asset, asset_id in enumerate(
        tqdm(dataset.asset_ids, desc="caching features and labels", unit="asset")
    ):
        record = dataset.asset_info(asset_id)
        items = [dataset[i] for i in dataset.views_of(asset_id)]
        if cfg.labels == "pseudo":
            parts, ious[asset_id] = pseudo_part_masks(
                Path(cfg.data), asset_id, record, cfg, int(rng.integers(1 << 31))
            )
        else:
            parts = {
                f: [item["functional_masks"][f] & item["mask"] for item in items]
                for f in record["functions"]
            }
        functions_of_asset[asset] = sorted(parts)
        first = len(masks)
        for view, item in enumerate(items):
            images = background_variants(item["image"], item["mask"], cfg, rng)
            with torch.no_grad():
                features.append(backbone(images.to(device)).half().cpu())
            masks.append(item["mask"])
            assets.append(asset)
            for function, per_view in parts.items():
                part_lists.setdefault(function, {})[first + view] = per_view[view]
        view_ids = [item["view_id"] for item in items]
        pairs = [(a, b) for a in range(len(items)) for b in range(len(items)) if a != b]
        for j in rng.permutation(len(pairs))[: cfg.spatial_pairs_per_asset]:
            a, b = pairs[j]
            corr = dataset.correspondences(
                asset_id, view_ids[a], view_ids[b], max_points=512, seed=int(rng.integers(1 << 31))
            )
            if len(corr) >= 16:
                spatial.append((first + a, first + b, torch.from_numpy(np.ascontiguousarray(corr))))
    part_masks = {}
    for function, by_view in part_lists.items():
        stack = torch.zeros(len(masks), *masks[0].shape, dtype=torch.bool)
        for i, part in by_view.items():
            stack[i] = part
        part_masks[function] = stack
    cache = TrainingCache(
        torch.stack(features),
        torch.stack(masks),
        part_masks,
        torch.tensor(assets),
        functions_of_asset,
        spatial,
        cfg.labels,
        backbone.grid.patch_size,
        backbone.grid.stride,
        ious,
    )
    write_cache(path, cache)
    return cache


def write_cache(path: Path, cache: TrainingCache) -> None:
    """Atomic safetensors file: tensors by name, everything else in the JSON header."""
    tensors = {"features": cache.features, "masks": cache.masks, "asset_of": cache.asset_of}
    tensors |= {f"part/{i}": m for i, m in enumerate(cache.part_masks.values())}
    if cache.spatial:
        tensors["spatial/points"] = torch.cat([corr for _, _, corr in cache.spatial])
    header = {
        "functions": list(cache.part_masks),
        "functions_of_asset": {str(k): v for k, v in cache.functions_of_asset.items()},
        "spatial": [[a, b, len(corr)] for a, b, corr in cache.spatial],
        "label_source": cache.label_source,
        "patch_size": cache.patch_size,
        "stride": cache.stride,
        "pseudo_label_iou": cache.pseudo_label_iou,
    }
    metadata = {
        "format": CACHE_FORMAT,
        "version": str(CACHE_VERSION),
        "funcorr": json.dumps(header),
    }
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)


def read_cache(path: Path) -> TrainingCache:
    """Read a cache written by :func:`write_cache`; a truncated or foreign file is an error
    naming the file (delete it and the next run rebuilds it)."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format") != CACHE_FORMAT:
                raise InputError(f"{path} is not a funcorr training cache; delete it to rebuild.")
            header = json.loads(metadata["funcorr"])
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}  # noqa: SIM118 - safe_open is not a dict
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise InputError(
            f"Could not read the training cache {path} ({err}); delete it to rebuild."
        ) from None
    spatial, offset = [], 0
    for a, b, n in header["spatial"]:
        spatial.append((a, b, tensors["spatial/points"][offset : offset + n]))
        offset += n
    return TrainingCache(
        tensors["features"],
        tensors["masks"],
        {f: tensors[f"part/{i}"] for i, f in enumerate(header["functions"])},
        tensors["asset_of"],
        {int(k): v for k, v in header["functions_of_asset"].items()},
        spatial,
        header["label_source"],
        header["patch_size"],
        header["stride"],
        header["pseudo_label_iou"],
    )

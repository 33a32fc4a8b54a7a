"""What a training run depends on: :class:`TrainConfig`, read from YAML and checked up front."""

from __future__ import annotations

import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from funcorr.images import InputError

BACKGROUND_KINDS = ("colour", "gradient", "noise", "photo")


@dataclass
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint.

    layers: the number of last backbone blocks, or a list of block indices (0-based);
    weights: local folder of a hub backbone's weights (``save_pretrained`` / ``huggingface-cli
    download --local-dir``), as ``--weights`` of ``funcorr match``; None: the Hugging Face cache;
    push_own_background: also push each functional part away from the rest of its own object
    (not in the reference code); spatial_on_part: draw the multi-view points on the functional
    part of the conditioning function (paper Sec. 8.2, the full model) rather than anywhere on
    the object; background_kinds: backgrounds composited behind the object for the cached
    variants (``colour`` = uniform random colour as in the paper; ``gradient``, ``noise`` and
    ``photo`` from :mod:`funcorr.data.backgrounds`); colour_jitter: strength of the random
    brightness / contrast / saturation change of each variant (0 = none); snapshot_every: keep
    a ``step-NNNNNN.safetensors`` copy every that many steps, for checkpoint selection.
    """

    data: str
    out: str = "runs/default"
    backbone: str = "dinov2-s14"
    weights: str | None = None
    layers: int | list[int] = 3
    stride: int | None = None
    text_encoder: str = "minilm"
    steps: int = 2000
    batch_pairs: int = 4
    lr: float = 1e-4
    temperature: float = 0.1
    push_own_background: bool = True
    spatial_on_part: bool = False
    points_per_image: int = 128
    weight_functional: float = 1.0
    weight_spatial: float = 10.0
    weight_mask: float = 1.0
    mask_head: bool = True
    # pseudo: part masks from box votes (VLM at vlm_base_url, else a noisy oracle simulating
    # one); true: the renderer's part masks (an upper bound, not the weakly-supervised method).
    labels: str = "pseudo"
    oracle_jitter: float = 0.1
    oracle_miss_rate: float = 0.2
    oracle_false_box_rate: float = 0.1
    vlm_base_url: str | None = None
    vlm_model: str = "cogvlm-grounding-generalist"
    # Folder of the taxonomy whose part descriptions word the VLM's questions (paper Sec. 7.2),
    # e.g. one written by `funcorr taxonomy parts`; None: the shipped taxonomy.
    taxonomy: str | None = None
    background_variants: int = 2
    background_kinds: list[str] = field(default_factory=lambda: ["colour"])
    colour_jitter: float = 0.0
    spatial_pairs_per_asset: int = 6
    val_every: int = 200
    val_pairs: int = 40
    checkpoint_every: int = 200
    snapshot_every: int = 0
    seed: int = 0
    device: str = "auto"
    resume: bool = True

    def __post_init__(self) -> None:
        check_config(self)

    @staticmethod
    def from_yaml(path: str | Path, **overrides: Any) -> TrainConfig:
        """Read a YAML file of TrainConfig fields; ``overrides`` (not None) replace its values."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"No config at path {path}.")
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            # safe_load also refuses !!python tags: a config file never constructs objects.
            reason = " ".join(str(err).split())
            raise InputError(f"{path} is not a valid YAML config: {reason}") from None
        if not isinstance(raw, dict):
            raise InputError(
                f"{path} must hold a mapping of TrainConfig fields, got {type(raw).__name__}."
            )
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(map(str, raw)) - known)
        if unknown:
            raise InputError(
                f"Unknown keys in {path}: {', '.join(unknown)}. Known: {', '.join(sorted(known))}."
            )
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if "data" not in raw:
            raise InputError(f"{path} must set `data:` (a folder made by `funcorr make-data`).")
        try:
            return TrainConfig(**raw)
        except InputError as err:
            raise InputError(f"{path}: {err}") from None


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether a YAML value fits a field annotation (bools are not numbers here)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return any(_type_ok(value, option) for option in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if typing.get_origin(annotation) is list:
        (item,) = typing.get_args(annotation)
        return isinstance(value, list) and all(_type_ok(v, item) for v in value)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, annotation)


POSITIVE = (
    "steps",
    "batch_pairs",
    "lr",
    "temperature",
    "points_per_image",
    "background_variants",
    "val_every",
    "checkpoint_every",
)
NON_NEGATIVE = (
    "weight_functional",
    "weight_spatial",
    "weight_mask",
    "val_pairs",
    "snapshot_every",
    "spatial_pairs_per_asset",
    "colour_jitter",
)
FRACTIONS = ("oracle_jitter", "oracle_miss_rate", "oracle_false_box_rate")


def check_config(cfg: TrainConfig) -> None:
    """Refuse wrong types and impossible values with one sentence naming the field."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if not _type_ok(value, hints[f.name]):
            raise InputError(f"{f.name} must be {_describe(hints[f.name])}, got {value!r}.")
    for name in POSITIVE:
        if getattr(cfg, name) <= 0:
            raise InputError(f"{name} must be positive, got {getattr(cfg, name)!r}.")
    for name in NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise InputError(f"{name} must be zero or positive, got {getattr(cfg, name)!r}.")
    for name in FRACTIONS:
        if not 0 <= getattr(cfg, name) <= 1:
            raise InputError(f"{name} must be between 0 and 1, got {getattr(cfg, name)!r}.")
    if cfg.points_per_image < 2:
        raise InputError("points_per_image must be at least 2.")
    if (
        isinstance(cfg.layers, int)
        and cfg.layers < 1
        or isinstance(cfg.layers, list)
        and not cfg.layers
    ):
        raise InputError(
            f"layers must be a positive count or a non-empty list of blocks, got {cfg.layers!r}."
        )
    if cfg.labels not in ("pseudo", "true"):
        raise InputError(f"labels must be 'pseudo' or 'true', got {cfg.labels!r}.")
    bad = [k for k in cfg.background_kinds if k not in BACKGROUND_KINDS]
    if bad or not cfg.background_kinds:
        raise InputError(
            f"background_kinds must be a non-empty list of {', '.join(BACKGROUND_KINDS)}; got {cfg.background_kinds!r}."
        )
    if cfg.weight_functional + cfg.weight_spatial + cfg.weight_mask <= 0:
        raise InputError("At least one loss weight must be positive.")
    if cfg.taxonomy is not None and not Path(cfg.taxonomy).is_dir():
        raise InputError(f"taxonomy: no taxonomy folder at {cfg.taxonomy}.")


def _describe(annotation: Any) -> str:
    text = str(annotation).replace("typing.", "")
    return {
        "int": "an integer",
        "float": "a number",
        "bool": "true or false",
        "str": "a string",
    }.get(getattr(annotation, "__name__", text), text)


def cache_key(cfg: TrainConfig) -> str:
    """Hash of the fields the feature cache depends on (a change means a new cache file)."""
    keys = [
        cfg.backbone,
        cfg.layers,
        cfg.stride,
        cfg.background_variants,
        cfg.labels,
        cfg.spatial_pairs_per_asset,
        cfg.oracle_jitter,
        cfg.oracle_miss_rate,
        cfg.oracle_false_box_rate,
        cfg.seed,
    ]
    if cfg.background_kinds != ["colour"] or cfg.colour_jitter:
        keys += [cfg.background_kinds, cfg.colour_jitter]
    if cfg.vlm_base_url and cfg.taxonomy:  # other part descriptions, other VLM answers
        keys.append(str(Path(cfg.taxonomy).resolve()))
    if cfg.weights:  # another copy of the weights may differ: its own cache
        keys.append(str(Path(cfg.weights).resolve()))
    return hashlib.sha1(json.dumps(keys).encode()).hexdigest()[:12]

"""Trained models shipped inside the package, loaded by name.

Each model is ``funcorr/resources/models/<name>.safetensors`` (fp16 weights and the
checkpoint record, see :mod:`funcorr.model.checkpoint`) beside ``<name>.json``, its card:
what it was trained on, how, and what it scores. Reading a model parses JSON and raw tensor
bytes only; the card's SHA-256 is checked so a damaged install fails loudly.

``--model auto`` (the CLI default) picks :data:`DEFAULT_MODEL` whenever a function is given
and the backbone is the one the model was trained on; ``--model none`` gives raw features.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import torch

from funcorr.images import InputError, atomic_path

DEFAULT_MODEL = "funcorr-s14"
AUTO, NONE = "auto", "none"


@dataclass(frozen=True)
class ModelCard:
    """A shipped model: name, weights path, SHA-256 of the weights, the backbone it runs on,
    and the card's full JSON (training data, steps, hardware, scores)."""

    name: str
    weights: Path
    sha256: str
    backbone: str
    card: dict


def models_dir() -> Path:
    return Path(str(resources.files("funcorr") / "resources" / "models"))


def shipped_models() -> dict[str, ModelCard]:
    """Every model card in the package, by name (empty when none ships)."""
    folder = models_dir()
    cards = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            card = json.loads(path.read_text(encoding="utf-8"))
            cards[card["name"]] = ModelCard(
                card["name"], folder / card["weights"], card["sha256"], card["backbone"], card
            )
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise InputError(
                f"The model card {path} is damaged ({err}); reinstall funcorr."
            ) from None
    return cards


def verified_weights(card: ModelCard) -> Path:
    """The card's weights file, after checking it exists and matches the card's SHA-256."""
    if not card.weights.is_file():
        raise InputError(
            f"Model {card.name}: its weights {card.weights} are missing; reinstall funcorr."
        )
    digest = hashlib.sha256(card.weights.read_bytes()).hexdigest()
    if digest != card.sha256:
        raise InputError(
            f"Model {card.name}: {card.weights} does not match its card's SHA-256; reinstall funcorr."
        )
    return card.weights


def resolve_model(model: str | None, function: str | None, backbone: str) -> Path | None:
    """The checkpoint a ``--model`` value selects, or None for raw backbone features.

    ``none``: raw features. ``auto``: the default model when a function is given and it runs
    on ``backbone``, else raw features. A shipped model's name, or a path to a checkpoint
    file (``.safetensors``; legacy ``.pt`` read as plain data).
    """
    if model is None or model == NONE:
        return None
    cards = shipped_models()
    if model == AUTO:
        card = cards.get(DEFAULT_MODEL)
        if function is None or card is None or card.backbone != backbone:
            return None
        return verified_weights(card)
    if model in cards:
        return verified_weights(cards[model])
    path = Path(model)
    if path.suffix in (".safetensors", ".pt"):
        if not path.is_file():
            raise InputError(f"No checkpoint at path {path}.")
        return path
    known = ", ".join([AUTO, NONE, *cards]) or f"{AUTO}, {NONE}"
    raise InputError(
        f"Unknown model {model!r}: use {known}, or a path to a .safetensors checkpoint."
    )


def export_model(
    checkpoint: str | Path,
    name: str,
    card: dict,
    folder: Path | None = None,
    inference: dict | None = None,
) -> ModelCard:
    """Write a trained checkpoint as shipped model ``name``: fp16 weights (halves the file;
    features differ from fp32 by < 1e-3 cosine) with the checkpoint record, and ``<name>.json``,
    ``card`` plus name, weights file, SHA-256 and backbone. ``inference``: how the model is
    best used (``raw_weight``, ``object_mask``, ``head_stride``, and ``parts`` for discovery),
    stored in the record, where :class:`~funcorr.model.matcher.Matcher` reads its defaults.
    Returns the new card."""
    from funcorr.model.checkpoint import read_checkpoint, save_checkpoint_state

    folder = models_dir() if folder is None else Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = read_checkpoint(checkpoint)
    weights = folder / f"{name}.safetensors"
    save_checkpoint_state(
        weights,
        source.state,
        {**source.record, "model_name": name, "inference": inference or {}},
        dtype=torch.float16,
    )
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    full = {
        "name": name,
        "weights": weights.name,
        "sha256": sha256,
        "backbone": source.record["backbone"]["name"],
        **card,
    }
    with atomic_path(folder / f"{name}.json") as tmp:
        tmp.write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    return ModelCard(name, weights, sha256, full["backbone"], full)

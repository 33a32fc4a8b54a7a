"""Function names -> cached text embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from funcorr.text.encoders import DEFAULT_TEXT_ENCODER, TextEncoder, load_text_encoder
from funcorr.text.taxonomy import function_names, resolve_function


class FunctionEmbedder:
    """Embeds function names (``"pour-with"``) with a text encoder, once per distinct phrase.

    The cache lives in the object, keyed by the embedded phrase, so ``"pour-with"`` and
    ``"pour with"`` share one entry.
    """

    def __init__(self, encoder: TextEncoder, *, allow_free_text: bool = False):
        self.encoder = encoder
        self.allow_free_text = allow_free_text
        self.vocabulary = function_names()
        self._cache: dict[str, torch.Tensor] = {}

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return self.encoder.dim

    def text_of(self, function: str) -> str:
        """The phrase embedded for ``function``; raises InputError for unknown names."""
        return resolve_function(
            function, allow_free_text=self.allow_free_text, vocabulary=self.vocabulary
        )

    def embed(self, functions: Sequence[str]) -> torch.Tensor:
        """(F,) function names -> (F, D) unit vectors; uncached phrases are encoded in one batch."""
        if isinstance(functions, str):
            raise TypeError(
                "embed() takes a list of function names; use embed_one() for a single name."
            )
        texts = [self.text_of(function) for function in functions]
        missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
        if missing:
            for text, vector in zip(missing, self.encoder.encode(missing)):
                self._cache[text] = vector
        if not texts:
            return torch.empty(0, self.dim)
        return torch.stack([self._cache[text] for text in texts])

    def embed_one(self, function: str) -> torch.Tensor:
        """(D,) embedding of one function: the cached tensor itself (treat it as read-only)."""
        text = self.text_of(function)
        if text not in self._cache:
            self.embed([function])
        return self._cache[text]


def load_function_embedder(
    name: str = DEFAULT_TEXT_ENCODER,
    *,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    allow_free_text: bool = False,
) -> FunctionEmbedder:
    """A :class:`FunctionEmbedder` over the registered text encoder ``name``."""
    return FunctionEmbedder(
        load_text_encoder(name, weights=weights, device=device), allow_free_text=allow_free_text
    )

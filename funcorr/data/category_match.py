"""Nouns -> nearest taxonomy category by text-embedding similarity (paper Sec. 7.3).

The paper embeds the LLM's object name and the taxonomy's category names and keeps a caption
when the best cosine similarity passes a threshold (0.7 with its embedding model). funcorr
uses the offline MiniLM encoder (``funcorr.text``), whose scale differs: see
:data:`DEFAULT_THRESHOLD`. Only distinct nouns are embedded, once each, so curating 600k
captions costs one encoder call per new noun, not per caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

# MiniLM cosine similarities measured against the shipped taxonomy's 246 categories:
# "hand saw" -> saw 0.78, "cellphone" -> smartphone 0.77, "frying pan" -> pan 0.76,
# "dinner fork" -> fork 0.76 pass; "cat" -> cat's paw 0.71, "rock" -> stone 0.71,
# "teakettle" -> teapot 0.73, "tumbler" -> mug 0.55, "chair" -> club 0.47 do not.
DEFAULT_THRESHOLD = 0.75


@dataclass(frozen=True)
class CategoryMatch:
    """The best category for a noun and its cosine similarity (rounded to 4 decimals, so
    decisions do not hinge on the last bits of a batched matrix product)."""

    noun: str
    category: str
    similarity: float


class CategoryMatcher:
    """Best category per noun; a noun equal to a category name matches it with similarity 1.

    encoder: a :class:`funcorr.text.TextEncoder` (unit vectors); categories: names to match.
    """

    def __init__(self, categories: Iterable[str], encoder, batch_size: int = 256):
        self.categories = list(dict.fromkeys(categories))
        if not self.categories:
            raise ValueError("CategoryMatcher needs at least one category.")
        self.encoder = encoder
        self.batch_size = batch_size
        self._exact = set(self.categories)
        self._vectors = self._encode(self.categories)  # (K, D)
        self.cache: dict[str, tuple[str, float]] = {}
        self.encoded = 0

    def _encode(self, texts: Sequence[str]) -> torch.Tensor:
        chunks = [
            self.encoder.encode(list(texts[i : i + self.batch_size]))
            for i in range(0, len(texts), self.batch_size)
        ]
        return torch.cat(chunks).float()

    def remember(self, noun: str, category: str, similarity: float) -> None:
        """Put a known result in the cache (a resumed run replays its earlier decisions)."""
        self.cache.setdefault(noun, (category, similarity))

    def match(self, nouns: Sequence[str]) -> list[CategoryMatch | None]:
        """One result per noun (None for an empty noun); new nouns are embedded in batches."""
        new = [n for n in dict.fromkeys(nouns) if n and n not in self.cache]
        for noun in [n for n in new if n in self._exact]:
            self.cache[noun] = (noun, 1.0)
        to_embed = [n for n in new if n not in self._exact]
        if to_embed:
            similarity = self._encode(to_embed) @ self._vectors.T  # (N, K)
            best, index = similarity.max(dim=1)
            for noun, value, k in zip(to_embed, best.tolist(), index.tolist(), strict=True):
                self.cache[noun] = (self.categories[k], round(float(value), 4))
            self.encoded += len(to_embed)
        return [CategoryMatch(n, *self.cache[n]) if n else None for n in nouns]

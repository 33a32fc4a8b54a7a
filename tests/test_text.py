"""Function-text embeddings: real MiniLM vectors, the taxonomy check, the cache, offline errors."""

from __future__ import annotations

import pytest
import torch

from funcorr.backbones.weights import WeightsNotFound
from funcorr.images import InputError
from funcorr.text import (
    FunctionEmbedder,
    function_names,
    function_text,
    load_function_embedder,
    load_text_encoder,
    minilm_directory,
)


class CountingEncoder:
    """Wraps an encoder and records every batch it is asked to encode."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.calls: list[list[str]] = []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


@pytest.fixture(scope="module")
def minilm():
    return load_text_encoder("minilm")


def test_function_text():
    assert function_text("pour-with") == "pour with"
    assert function_text("apply torque-with") == "apply torque with"
    assert "pour-with" in function_names() and len(function_names()) == 24


def test_minilm_embeddings_are_semantic_and_normalised(minilm):
    embedder = FunctionEmbedder(minilm, allow_free_text=True)
    pour, paraphrase, hammer = embedder.embed(["pour-with", "pouring liquid", "hammer a nail"])
    assert embedder.dim == 384 and pour.shape == (384,)
    assert pour @ paraphrase > pour @ hammer + 0.3
    vectors = embedder.embed(function_names())
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(len(function_names())), atol=1e-5)
    assert (vectors @ vectors.T - torch.eye(len(vectors))).max() < 0.99  # all distinct


def test_hyphenated_name_is_embedded_as_phrase(minilm):
    embedder = FunctionEmbedder(minilm, allow_free_text=True)
    assert torch.allclose(
        embedder.embed_one("pour-with"), minilm.encode(["pour with"])[0], atol=1e-6
    )


def test_cache_encodes_each_phrase_once(minilm):
    counting = CountingEncoder(minilm)
    embedder = FunctionEmbedder(counting)
    first = embedder.embed(["pour-with", "cut-with", "pour-with"])
    second = embedder.embed(["cut-with", "Pour with"])
    assert counting.calls == [["pour with", "cut with"]]
    assert (
        torch.equal(first[0], first[2])
        and torch.equal(second[0], first[1])
        and torch.equal(second[1], first[0])
    )
    assert embedder.embed_one("pour-with") is embedder.embed_one("pour with")
    assert embedder.embed([]).shape == (0, 384)


def test_unknown_function_lists_valid_names(minilm):
    embedder = FunctionEmbedder(minilm)
    with pytest.raises(InputError, match="Unknown function 'juggle-with'.*pour-with"):
        embedder.embed(["juggle-with"])
    with pytest.raises(TypeError):
        embedder.embed("pour-with")
    assert FunctionEmbedder(minilm, allow_free_text=True).embed(["juggle with"]).shape == (1, 384)


def test_missing_weights_fail_fast_with_instructions(tmp_path):
    with pytest.raises(WeightsNotFound, match="openai/clip-vit-base-patch32"):
        load_text_encoder("clip-text", weights=tmp_path / "nowhere")
    with pytest.raises(WeightsNotFound, match="MiniLM"):
        load_function_embedder("minilm", weights=tmp_path)
    with pytest.raises(WeightsNotFound, match="open_clip|checkpoint"):
        load_text_encoder("open-clip")
    with pytest.raises(ValueError, match="minilm"):
        load_text_encoder("word2vec")


def test_clip_text_loads_from_a_local_directory(tmp_path):
    """A tiny random CLIP text tower saved to disk (with MiniLM's tokenizer files, which
    AutoTokenizer reads the same way) goes through the same offline loader as real weights."""
    from transformers import AutoTokenizer, CLIPTextConfig, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=30522,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        projection_dim=24,
        max_position_embeddings=77,
    )
    CLIPTextModelWithProjection(config).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(minilm_directory(), local_files_only=True).save_pretrained(
        tmp_path
    )
    embedder = load_function_embedder("clip-text", weights=tmp_path)
    vectors = embedder.embed(["pour-with", "cut-with"])
    assert embedder.dim == 24 and vectors.shape == (2, 24)
    assert torch.allclose(vectors.norm(dim=-1), torch.ones(2), atol=1e-5)

"""Function-text embeddings: the taxonomy's function names and the encoders that embed them."""

from funcorr.text.embedder import FunctionEmbedder, load_function_embedder
from funcorr.text.encoders import (
    DEFAULT_TEXT_ENCODER,
    TEXT_ENCODERS,
    CLIPTextEncoder,
    MeanPooledEncoder,
    OpenCLIPTextEncoder,
    TextEncoder,
    TextEncoderEntry,
    load_text_encoder,
    minilm_directory,
)
from funcorr.text.taxonomy import function_names, function_text, resolve_function

__all__ = [
    "DEFAULT_TEXT_ENCODER",
    "TEXT_ENCODERS",
    "CLIPTextEncoder",
    "FunctionEmbedder",
    "MeanPooledEncoder",
    "OpenCLIPTextEncoder",
    "TextEncoder",
    "TextEncoderEntry",
    "function_names",
    "function_text",
    "load_function_embedder",
    "load_text_encoder",
    "minilm_directory",
    "resolve_function",
]

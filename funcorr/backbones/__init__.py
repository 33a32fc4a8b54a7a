"""Frozen dense feature extractors and their registry."""

from __future__ import annotations

import importlib

# Names load with their module on first use, so that the command line can read the option
# choices (``precision``) without importing torch.
_EXPORTS = {
    "BACKBONES": "funcorr.backbones.registry",
    "DEFAULT_BACKBONE": "funcorr.backbones.registry",
    "load_backbone": "funcorr.backbones.registry",
    "resolve_device": "funcorr.backbones.registry",
    "weights_available": "funcorr.backbones.registry",
    "Backbone": "funcorr.backbones.vit",
    "FeatureGrid": "funcorr.backbones.base",
    "pixel_to_cell": "funcorr.backbones.base",
    "sample_at_pixels": "funcorr.backbones.base",
    "upsample_to_pixels": "funcorr.backbones.base",
    "WeightsNotFound": "funcorr.backbones.weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'funcorr.backbones' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)

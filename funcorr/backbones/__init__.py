"""Frozen dense feature extractors and their registry."""

from __future__ import annotations

from funcorr.lazy import lazy_exports

# Names load with their module on first use, so that the command line can read the option
# choices (``precision``) without importing torch.
__getattr__, __all__ = lazy_exports(
    __name__,
    {
        "funcorr.backbones.base": (
            "FeatureGrid",
            "pixel_to_cell",
            "sample_at_pixels",
            "upsample_to_pixels",
        ),
        "funcorr.backbones.registry": (
            "BACKBONES",
            "DEFAULT_BACKBONE",
            "load_backbone",
            "resolve_device",
            "weights_available",
        ),
        "funcorr.backbones.vit": ("Backbone",),
        "funcorr.backbones.weights": ("WeightsNotFound",),
    },
)

"""Frozen dense feature extractors and their registry."""

from funcorr.backbones.base import FeatureGrid, pixel_to_cell, sample_at_pixels, upsample_to_pixels
from funcorr.backbones.registry import (
    BACKBONES,
    DEFAULT_BACKBONE,
    load_backbone,
    resolve_device,
    weights_available,
)
from funcorr.backbones.vit import Backbone
from funcorr.backbones.weights import WeightsNotFound

__all__ = [
    "BACKBONES",
    "DEFAULT_BACKBONE",
    "Backbone",
    "FeatureGrid",
    "WeightsNotFound",
    "load_backbone",
    "pixel_to_cell",
    "resolve_device",
    "sample_at_pixels",
    "upsample_to_pixels",
    "weights_available",
]

"""Backbone precision: int8 on the CPU approximates fp32 closely; impossible choices are refused."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from funcorr.backbones import load_backbone
from funcorr.backbones.precision import check_precision
from funcorr.images import InputError
from funcorr.model.matcher import MatcherConfig


@pytest.mark.parametrize(
    ("precision", "device", "message"),
    [
        ("bf16", "cpu", "Unknown precision 'bf16'"),
        ("fp16", "cpu", "fp16 backbones run on CUDA only"),
        ("int8", "cuda", "int8 backbones run on the CPU only"),
    ],
)
def test_impossible_precisions_are_refused(precision, device, message):
    with pytest.raises(InputError, match=message):
        check_precision(precision, torch.device(device))
    # Refused before any weights load, whatever the backbone.
    with pytest.raises(InputError, match=message):
        load_backbone("dinov2-s14", pretrained=False, precision=precision, device=device)


def test_matcher_config_refuses_unknown_precision():
    with pytest.raises(InputError, match="Unknown precision 'int4'"):
        MatcherConfig(precision="int4")


def test_int8_quantizes_every_block_linear_and_stays_close(dinov2_s14, dinov2_s14_int8):
    plain = [m for m in dinov2_s14_int8.model.modules() if type(m) is nn.Linear]
    quantized = [
        m
        for m in dinov2_s14_int8.model.modules()
        if isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
    ]
    assert plain == [] and len(quantized) == 12 * 6  # q, k, v, output, fc1, fc2 per block
    # The fp32 backbone is untouched (quantize_dynamic copies).
    assert sum(type(m) is nn.Linear for m in dinov2_s14.model.modules()) == 72
    images = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        exact, approx = dinov2_s14.features(images), dinov2_s14_int8.features(images)
    cosine = F.cosine_similarity(exact, approx, dim=1)  # (2, h, w) per cell
    assert cosine.mean() > 0.99 and cosine.min() > 0.95
    assert (exact - approx).abs().max() > 1e-3  # really int8 arithmetic, not a no-op

"""Numeric precision of a frozen backbone's blocks: fp32 (exact), fp16 (CUDA) or int8 (CPU).

On a 2-core CPU the backbone pass is most of what one-to-many transfer costs once the head
and the search reuse their work (``benchmarks/bench_transfer.py``), and the blocks' linear
layers are most of that pass. Dynamic int8 quantization (weights per output channel,
activations per tensor at run time) runs them about 1.4x faster on AVX2 at a measured cost in
features (cosine about 0.998 to fp32) and keypoints (README, "Demonstration transfer"); it is
never the default.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

from funcorr.files import InputError

if TYPE_CHECKING:  # torch loads with the backbone; the CLI reads PRECISIONS without it
    import torch
    from torch import nn

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8")


def check_precision(precision: str, device: torch.device | None = None) -> None:
    """Refuse an unknown precision, or one that ``device`` (when given) cannot run, in one line."""
    if precision not in PRECISIONS:
        raise InputError(f"Unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}.")
    if device is None:
        return
    if precision == "fp16" and device.type != "cuda":
        raise InputError("fp16 backbones run on CUDA only; on a CPU use fp32 or int8.")
    if precision == "int8" and device.type != "cpu":
        raise InputError(
            "int8 backbones run on the CPU only (--device cpu); on CUDA use fp16 or fp32."
        )


def apply_precision(model: nn.Module, precision: str, device: torch.device) -> nn.Module:
    """``model`` (a frozen transformer) at ``precision`` on ``device``; fp32 leaves it as is.

    int8 replaces every ``nn.Linear`` by its dynamically quantized version (per-channel int8
    weights, fbgemm kernels); convolutions, norms and attention stay fp32.
    """
    check_precision(precision, device)
    if precision == "fp16":
        return model.half()
    if precision == "int8":
        import torch
        from torch import nn
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # torch 2.13 marks eager-mode quantization as deprecated in favour of torchao; the
        # kernels are the ones funcorr pins, so the notice is not the user's concern.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return quantize_dynamic(
                model.float(), {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
            )
    return model

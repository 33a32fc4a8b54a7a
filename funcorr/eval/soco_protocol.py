"""SOCO's own keypoint evaluation, reproduced step for step (``--protocol soco``).

This follows GenIntel/SOCO ``scripts/evaluate_dinov2.py`` (and OmniProbe's DINOv2 wrapper it
mirrors), so numbers are comparable with what SOCO reports, quirks included:

1. **Input**: the image is pasted at the top-left of a white square of side max(W, H), then
   resized (PIL bicubic) to E x E, E = max(p, round(800 / p) * p): 798 for patch 14.
2. **Features**: the final block's patch tokens, no final layernorm, L2-normalised per cell.
3. **Points**: each keypoint is truncated to integer pixels, scaled by E / max(W, H), truncated
   again, then divided by E (so coordinates are fractions of the padded square).
4. **Query**: the source feature is sampled bilinearly at the point with
   ``grid_sample(align_corners=True)``: fraction 0 is the first cell's centre and 1 the last's.
5. **Prediction**: argmax of cosine similarity over *every* target cell (no mask), reported as
   (column / w, row / h): the cell's top-left corner, not its centre.
6. **Score**: a point is correct when error ``<`` alpha * max(bbox w, h) / max(W, H) of the target
   (strictly less: an error exactly at the threshold is a miss). SOC merges the semantic
   matches per source point, CC takes the nearest of the concept's target points.
7. **Averaging**: PCK per pair, the mean of the pairs of each category (``pair_group``), then
   the mean of the categories. Per-pair and per-point means are reported beside it.

funcorr's default protocol (:mod:`funcorr.eval.keypoints`) differs on purpose (224 px input,
cell centres, ``<=``, the last three blocks) and stays documented there.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from funcorr.backbones import load_backbone
from funcorr.eval.keypoint_pairs import KeypointPair, Match
from funcorr.eval.keypoints import task_label

#: SOCO's requested input size (its ``--image-size``), rounded to a patch multiple.
REQUESTED_SIZE = 800


@dataclass(frozen=True)
class SOCOProtocol:
    """Settings SOCO's script exposes: requested input size and the bbox-relative threshold."""

    image_size: int = REQUESTED_SIZE
    threshold: float = 0.1

    def effective_size(self, patch: int) -> int:
        """SOCO rounds the requested size to the nearest multiple of the patch: 800 -> 798 at 14."""
        return max(patch, round(self.image_size / patch) * patch)


def soco_input(path: Path, size: int) -> torch.Tensor:
    """The image at ``path`` pasted top-left on a white square, resized to ``size`` (PIL
    bicubic). Returns (3, size, size) in [0, 1] (the backbone normalises)."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    side = max(rgb.size)
    square = Image.new("RGB", (side, side), color="white")
    square.paste(rgb, (0, 0))
    resized = square.resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0).permute(2, 0, 1)


def soco_points(points: torch.Tensor, image_size: tuple[int, int], size: int) -> torch.Tensor:
    """Keypoints (K, 2) in original pixels -> fractions of the padded square (K, 2) float32,
    with SOCO's two integer truncations (toward zero, as ``int()`` and an int32 cast)."""
    pixels = points.double().trunc().to(torch.int32)
    scaled = (pixels * size / max(image_size)).to(torch.int32)
    return scaled.float() / size


def final_block_features(backbone: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """L2-normalised final-block patch tokens of (B, 3, E, E) images. Returns (B, C, h, w).
    ``backbone`` must return the final block only (``layers=[-1]``)."""
    blocks = backbone(images)
    if blocks.shape[1] != 1:
        raise ValueError(
            f"The SOCO protocol reads the final block only; the backbone returns {blocks.shape[1]} blocks."
        )
    return F.normalize(blocks[:, 0], p=2, dim=1)


def predict(source: torch.Tensor, target: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """SOCO's nearest-cell prediction. source/target: (C, h, w) normalised features; points
    (K, 2) fractions. Returns (K, 2) fractions: (column / w, row / h) of the best target cell."""
    grid = (points.to(source.device) * 2.0 - 1.0)[None, None]
    query = F.grid_sample(source[None], grid, mode="bilinear", align_corners=True)[
        0, :, 0
    ].T  # (K, C)
    scores = torch.einsum("kc,chw->khw", query, target).flatten(1)
    height, width = target.shape[-2:]
    best = scores.argmax(dim=1)
    rows = torch.div(best, width, rounding_mode="floor")
    return torch.stack((best % width / width, rows / height), dim=1).float().cpu()


def pair_correct(
    predicted: torch.Tensor, targets: torch.Tensor, matches: Sequence[Match], radius: float
) -> torch.Tensor:
    """(P,) bool: for each source point with a match (merged over groups), whether its
    prediction lies strictly within ``radius`` of the nearest valid target point."""
    valid: dict[int, set[int]] = defaultdict(set)
    for match in matches:
        for s in match.source_indices:
            valid[s].update(match.target_indices)
    hits = [
        bool((predicted[s] - targets[sorted(t)]).norm(dim=1).min() < radius)
        for s, t in valid.items()
    ]
    return torch.tensor(hits, dtype=torch.bool)


@dataclass(frozen=True)
class SOCOPairScore:
    """One pair under SOCO's protocol: per task, how many points were scored and correct."""

    pair_id: str
    pair_type: str
    category: str
    radius: float
    correct: dict[str, int]
    points: dict[str, int]

    def pck(self, task: str) -> float | None:
        """Percent correct of the pair, or None when the task has no point on it."""
        count = self.points.get(task, 0)
        # float32 mean times 100, as SOCO computes it, so category means agree to the last digit.
        return float(torch.tensor(float(self.correct[task])) / count * 100) if count else None


def score_pair(
    pair: KeypointPair,
    backbone: torch.nn.Module,
    protocol: SOCOProtocol,
    device: torch.device | str = "cpu",
) -> SOCOPairScore:
    """Predict every source keypoint of ``pair`` and score SOC and CC as SOCO does."""
    size = protocol.effective_size(backbone.grid.patch_size)
    images = torch.stack(
        [soco_input(pair.source.image_path, size), soco_input(pair.target.image_path, size)]
    ).to(device)
    with torch.no_grad():
        dense = final_block_features(backbone, images)
    src_size, tgt_size = _size(pair.source), _size(pair.target)
    predicted = predict(dense[0], dense[1], soco_points(pair.source.points(), src_size, size))
    targets = soco_points(pair.target.points(), tgt_size, size)
    scale = 1.0
    if pair.target.bbox is not None:
        left, top, right, bottom = pair.target.bbox
        scale = max(right - left, bottom - top) / max(tgt_size)
    radius = protocol.threshold * scale
    correct, points = {}, {}
    for task, matches in (("soc", pair.semantic_matches), ("cc", pair.concept_matches)):
        hits = pair_correct(predicted, targets, matches, radius)
        correct[task], points[task] = int(hits.sum()), int(hits.numel())
    pair_type = (
        "cross"
        if pair.pair_type == "cross" or pair.source.category != pair.target.category
        else "intra"
    )
    return SOCOPairScore(pair.pair_id, pair_type, pair.group, radius, correct, points)


def _size(view) -> tuple[int, int]:
    """(W, H) of the image file (SOCO opens the image; the annotation's imsize is not used)."""
    with Image.open(view.image_path) as image:
        return image.size


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def aggregate(scores: Sequence[SOCOPairScore], task: str) -> dict[str, Any]:
    """SOCO's reduction for one task (percent): pair -> category -> mean (``per_category``, the
    number SOCO reports), beside the mean over pairs and over points."""
    by_category: dict[str, list[float | None]] = defaultdict(list)
    for score in scores:
        by_category[score.category].append(score.pck(task))
    categories = {c: _mean(v) for c, v in sorted(by_category.items())}
    points = sum(s.points.get(task, 0) for s in scores)
    return {
        "per_category": _mean(list(categories.values())),
        "per_image": _mean([s.pck(task) for s in scores]),
        "per_point": 100.0 * sum(s.correct.get(task, 0) for s in scores) / points
        if points
        else None,
        "pairs": sum(1 for s in scores if s.pck(task) is not None),
        "points": points,
        "categories": categories,
    }


def evaluate_soco_protocol(
    pairs: Sequence[KeypointPair],
    backbone_name: str,
    protocol: SOCOProtocol = SOCOProtocol(),
    weights: str | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, Any]:
    """Score ``pairs`` with a registered backbone's final block under SOCO's protocol.
    Returns a JSON-ready record: settings, per pair type the SOC / CC aggregates, per pair."""
    from tqdm import tqdm

    backbone = load_backbone(backbone_name, layers=[-1], weights=weights, device=device)
    scores = [
        score_pair(p, backbone, protocol, device)
        for p in tqdm(pairs, desc="SOCO protocol", unit="pair", disable=not progress)
    ]
    results: dict[str, Any] = {}
    for pair_type in sorted({s.pair_type for s in scores}):
        mine = [s for s in scores if s.pair_type == pair_type]
        results[pair_type] = {
            task_label(task, pair_type): aggregate(mine, task)
            for task in ("soc", "cc")
            if any(s.points[task] for s in mine)
        }
    return {
        "protocol": "soco",
        "settings": {
            **asdict(protocol),
            "effective_image_size": protocol.effective_size(backbone.grid.patch_size),
            "patch_size": backbone.grid.patch_size,
            "features": "final block patch tokens, L2-normalised, no final norm",
            "padding": "white, image at the top-left",
            "prediction": "argmax over all target cells, cell corner (column / w, row / h)",
            "criterion": "error < threshold * max(target bbox w, h) / max(target W, H)",
            "normalization": "target_bbox_max_dimension",
            "reduction": "pair_then_category",
        },
        "results": results,
        "per_pair": [asdict(s) for s in scores],
    }


def format_summary(record: dict[str, Any]) -> list[str]:
    """One printed line per pair type and task: SOCO's category mean, then per-pair and per-point."""
    lines = []
    for pair_type, tasks in record["results"].items():
        for name, value in tasks.items():
            parts = [
                f"{key} {_percent(value[key])}"
                for key in ("per_category", "per_image", "per_point")
            ]
            lines.append(
                f"{pair_type} {name} PCK@{record['settings']['threshold']:g} (SOCO protocol): "
                + ", ".join(parts)
                + f" ({value['pairs']} pairs, {len(value['categories'])} categories, {value['points']} points)"
            )
    return lines


def _percent(value: float | None) -> str:
    return (
        "n/a"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.2f}"
    )

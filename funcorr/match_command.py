"""``funcorr match``: correspondences between two images, as JSON and a picture.

Everything is computed before anything is written, and files are written atomically, so a
failed run leaves no partial output behind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from funcorr.files import write_all
from funcorr.images import InputError, LoadedImage, load_image, load_mask, save_png
from funcorr.model.flip import choose_orientation, mirrored_prepared, unmirror
from funcorr.model.matcher import Encoded, Matcher, MatcherConfig, Prepared
from funcorr.model.matching import (
    ImageFeatures,
    Transfer,
    discover_in_regions,
    mask_pixels,
    part_regions,
    spread_out,
    transfer_mask,
    transfer_points,
)
from funcorr.viz import draw_label_transfer, draw_matches, mask_overlay, side_by_side, to_uint8


@dataclass
class MatchRequest:
    """What to compute for one pair. Points are in original source-image pixels."""

    source: Path
    target: Path
    points: list[tuple[float, float]] | None = None
    mask: Path | None = None
    top: int = 20
    soft_window: float | None = None
    flip: bool = False


def parse_point(text: str) -> tuple[float, float]:
    """'x,y' -> (x, y)."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError as err:
        raise InputError(f"A point must look like 'x,y' (e.g. 120,84), got {text!r}.") from err
    return x, y


def check_points(points: list[tuple[float, float]], image: LoadedImage) -> torch.Tensor:
    width, height = image.size
    tensor = torch.tensor(points, dtype=torch.float32).reshape(-1, 2)
    outside = [(x, y) for x, y in points if not (0 <= x <= width - 1 and 0 <= y <= height - 1)]
    if outside:
        raise InputError(f"Points {outside} lie outside the {width}x{height} source image.")
    return tensor


def record_header(source: Path | dict, target: Path | dict, matcher: Matcher) -> dict:
    """The provenance every result JSON starts with: inputs (paths, or descriptions of uploaded
    images), feature settings, coordinate convention."""
    return {
        "source": str(source) if isinstance(source, Path) else source,
        "target": str(target) if isinstance(target, Path) else target,
        "function": matcher.config.function,
        "backbone": matcher.config.backbone if matcher.head is None else "checkpoint",
        "checkpoint": matcher.config.checkpoint,
        "image_size": matcher.config.image_size,
        "resize": matcher.config.resize,
        "object_mask": matcher.config.object_mask,
        "coordinates": "original image pixels, x=column, y=row, (0,0) = centre of the top-left pixel",
    }


def encode_pair(
    matcher: Matcher, src: Prepared, tgt: Prepared, flip: bool = False
) -> tuple[Encoded, ImageFeatures, ImageFeatures, dict | None]:
    """One backbone pass over the pair (and the mirrored target with ``flip``): the encoding
    of (src, tgt), their features, and the orientation record when ``flip`` chose one. With
    ``flip`` the target features returned are those of the better-agreeing orientation,
    indexed in the original target's pixels (:mod:`funcorr.model.flip`)."""
    images = [src, tgt, mirrored_prepared(tgt)] if flip else [src, tgt]
    encoded = matcher.encode(images)
    features = matcher.features(images, encoded)
    pair = Encoded(
        encoded.blocks[:2],
        encoded.masks[:2],
        encoded.sources[:2],
        None if encoded.saliency is None else encoded.saliency[:2],
    )
    if not flip:
        return pair, features[0], features[1], None
    tgt_feat, orientation = choose_orientation(
        features[0], features[1], unmirror(features[2], features[1].mask)
    )
    return pair, features[0], tgt_feat, orientation.to_record()


def object_mask_record(encoded: Encoded) -> list[dict]:
    """Where each image's object mask came from and its size, for result JSONs."""
    return [
        {"image": which, "source": source, "pixels_at_network_size": int(mask.sum())}
        for which, source, mask in zip(("source", "target"), encoded.sources, encoded.masks)
    ]


def outline_mask(
    image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int] = (0, 200, 255)
) -> np.ndarray:
    """(H, W, 3) uint8 picture with the area outside ``mask`` (H, W) faded and the mask's
    boundary drawn, so a picture shows which pixels were matched."""
    from scipy import ndimage

    out = image.astype(np.float32).copy()
    out[~mask] = 0.45 * out[~mask] + 0.55 * 255
    edge = mask & ~ndimage.binary_erosion(mask, iterations=1, border_value=0)
    out[ndimage.binary_dilation(edge)] = colour
    return out.astype(np.uint8)


def run_match(request: MatchRequest, matcher: Matcher) -> tuple[dict, np.ndarray]:
    """Compute matches for ``request``. Returns (JSON-ready record, picture as (H, W, 3) uint8)."""
    src_image, tgt_image = load_image(request.source), load_image(request.target)
    points = check_points(request.points, src_image) if request.points else None
    src_label = load_mask(request.mask, size=src_image.size) if request.mask else None
    src, tgt = matcher.prepare(src_image), matcher.prepare(tgt_image)
    encoded, src_feat, tgt_feat, orientation = encode_pair(matcher, src, tgt, request.flip)
    part_masks = matcher.predicted_part_mask([src, tgt], encoded)
    # With a mask head, match part to part and rest to rest (the paper's Sec. 8.2).
    regions = part_regions(src_feat.mask, tgt_feat.mask, *(part_masks or (None, None)))
    record = record_header(request.source, request.target, matcher)
    record["object_masks"] = object_mask_record(encoded)
    if orientation is not None:
        record["orientation"] = orientation
    if matcher.head is None and matcher.config.function:
        record["note"] = (
            "Raw backbone features do not depend on the function; use --model auto (the shipped model, with the default backbone) or --checkpoint for function-conditioned matching."
        )
    left, right = (
        outline_mask(to_uint8(p.rgb), m.cpu().numpy())
        for p, m in ((src, src_feat.mask), (tgt, tgt_feat.mask))
    )
    if points is not None:
        moved = _transfer_by_region(
            src_feat, tgt_feat, src.plan.to_net(points), regions, request.soft_window
        )
        record["points"] = [
            {"source": p.tolist(), "target": q.tolist(), "similarity": float(s)}
            for p, q, s in zip(points, tgt.plan.to_orig(moved.points.cpu()), moved.similarity.cpu())
        ]
        picture = np.asarray(
            draw_matches(left, right, src.plan.to_net(points).numpy(), moved.points.cpu().numpy())
        )
    elif src_label is not None:
        net_label = _resize_mask(src_label, src, src_feat.mask)
        tgt_mask, _ = transfer_mask(src_feat, tgt_feat, net_label)
        record["mask"] = {
            "target_pixels_at_network_size": int(tgt_mask.sum()),
            "file": "transferred_mask.png",
        }
        picture = side_by_side(
            mask_overlay(left, net_label.numpy()), mask_overlay(right, tgt_mask.cpu().numpy())
        )[0]
        record["_mask"] = tgt.plan.mask_to_orig(tgt_mask.cpu()).numpy()
    else:
        top = discover_in_regions(src_feat, tgt_feat, regions)
        keep = spread_out(top.src_xy.cpu(), top.tgt_xy.cpu(), request.top)
        record["top_matches"] = [
            {
                "source": p.tolist(),
                "target": q.tolist(),
                "score": float(top.score[i]),
                "similarity": float(top.similarity[i]),
                "cycle_error_px": float(top.cycle_error[i]),
            }
            for i, p, q in zip(
                keep.tolist(),
                src.plan.to_orig(top.src_xy[keep].cpu()),
                tgt.plan.to_orig(top.tgt_xy[keep].cpu()),
            )
        ]
        dense = transfer_points(tgt_feat, src_feat, mask_pixels(tgt_feat.mask))
        transfer_picture = draw_label_transfer(
            left,
            right,
            mask_pixels(src_feat.mask.cpu()).numpy(),
            mask_pixels(tgt_feat.mask.cpu()).numpy(),
            dense.points.cpu().numpy(),
        )
        lines = draw_matches(
            left, right, top.src_xy[keep].cpu().numpy(), top.tgt_xy[keep].cpu().numpy()
        )
        picture = np.concatenate(
            [
                np.asarray(lines),
                np.full((8, lines.width, 3), 255, np.uint8),
                np.asarray(transfer_picture),
            ],
            axis=0,
        )
    if part_masks is not None:
        record["predicted_part_pixels"] = [int(m.sum()) for m in part_masks]
        record["matched_within_parts"] = len(regions) == 2
    return record, picture


def _transfer_by_region(
    src,
    tgt,
    points: torch.Tensor,
    regions: list[tuple[torch.Tensor, torch.Tensor]],
    soft_window: float | None,
) -> Transfer:
    """Transfer each point within the target region paired with the source region it lies in
    (points in no region use the last pair, the whole object or its rest)."""
    xy = points.round().long()
    target = torch.full((points.shape[0], 2), float("nan"))
    similarity = torch.zeros(points.shape[0])
    todo = torch.ones(points.shape[0], dtype=torch.bool)
    for index, (src_region, tgt_region) in enumerate(regions):
        inside = src_region.cpu()[
            xy[:, 1].clamp(0, src_region.shape[0] - 1), xy[:, 0].clamp(0, src_region.shape[1] - 1)
        ]
        chosen = todo & (inside if index < len(regions) - 1 else torch.ones_like(todo))
        if chosen.any():
            moved = transfer_points(
                src, tgt, points[chosen], tgt_mask=tgt_region, soft_window=soft_window
            )
            target[chosen], similarity[chosen] = moved.points.cpu(), moved.similarity.cpu()
            todo &= ~chosen
    return Transfer(target, similarity)


def _resize_mask(mask: torch.Tensor, prepared: Prepared, object_mask: torch.Tensor) -> torch.Tensor:
    from funcorr.images import apply_resize

    net = (apply_resize(mask.float(), prepared.plan, mode="nearest") > 0.5) & object_mask.cpu()
    if not net.any():
        raise InputError("The source mask does not overlap the source object after resizing.")
    return net


def write_outputs(record: dict, picture: np.ndarray, out_dir: Path) -> list[Path]:
    """Write matches.json, matches.png (and transferred_mask.png), all or none. Returns the paths."""
    writers = {}
    mask = record.pop("_mask", None)
    if mask is not None:
        writers["transferred_mask.png"] = lambda tmp: save_png((mask * 255).astype(np.uint8), tmp)
    writers["matches.png"] = lambda tmp: save_png(picture, tmp)
    writers["matches.json"] = lambda tmp: tmp.write_text(json.dumps(record, indent=2))
    return write_all(out_dir, writers)


def checkpoint_from_args(args, function_known: bool = False) -> str | None:
    """The checkpoint the CLI's ``--checkpoint`` / ``--model`` select (None: raw features).

    ``function_known``: the command supplies functions itself (each benchmark pair or
    FunKPoint action has one), so ``--model auto`` picks the shipped model without --function."""
    from funcorr.model.zoo import AUTO, resolve_model

    model = getattr(args, "model", None)
    if args.checkpoint:
        if model not in (None, AUTO):
            raise InputError("Give either --checkpoint or --model, not both.")
        return args.checkpoint
    function = args.function or ("(given per pair)" if function_known else None)
    path = resolve_model(model, function, args.backbone)
    return None if path is None else str(path)


def matcher_config_from_args(args, function_known: bool = False) -> MatcherConfig:
    """MatcherConfig from the shared backbone options of the CLI."""
    return MatcherConfig(
        backbone=args.backbone,
        layers=tuple(args.layers) if args.layers else None,
        stride=args.stride,
        image_size=args.size,
        resize=args.resize,
        device=args.device,
        weights=args.weights,
        checkpoint=checkpoint_from_args(args, function_known),
        function=args.function,
        object_mask=getattr(args, "object_mask", None),
        raw_weight=getattr(args, "raw_weight", None),
        head_stride=getattr(args, "head_stride", None),
        soft_window=getattr(args, "soft_window", None),
        precision=getattr(args, "precision", "fp32"),
    )

"""FunKPoint functional keypoints on real photos: reader, action -> function map and PCK runner.

Layout of the curated FunKPoint set (one folder per action)::

    ROOT/<Action>/references.csv   tests.csv   references/*.jpg   tests/*.png

Each CSV row is one image: ``action``, ``object_category``, ``dataset_image_path`` (relative to
ROOT) and ``p1_x, p1_y, ..., pN_x, pN_y``, the functional keypoints normalised to [0, 1]
(x = column / width, y = row / height), in a canonical order shared by every image of the
action (some actions label fewer than five points; empty cells end the list).

Protocol: every reference of an action transfers its points to every test image of the same
action; a point is correct when the prediction lies within ``alpha`` (0.1) of the truth in
normalised image coordinates (Euclidean, ``<=``). ``overall`` pools every point of every
action; ``per_action`` gives each action's pooled PCK. A trained head is conditioned on the
function the action maps to (:data:`ACTION_FUNCTIONS`).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch
from tqdm import tqdm

from funcorr.images import InputError, load_image
from funcorr.model.matching import transfer_points

Role = Literal["reference", "test"]

#: FunKPoint action (lower case, words joined by "_") -> the taxonomy function that performs it.
#: Flipping a pancake and lifting something are both done with the lifting surface of a
#: spatula-like tool, so both map to lift-with.
ACTION_FUNCTIONS: Mapping[str, str] = MappingProxyType(
    {
        "pour": "pour-with",
        "scrape": "scrape-with",
        "mix": "mix-with",
        "stir": "mix-with",
        "whisk": "mix-with",
        "brush_dust": "brush-with",
        "brush": "brush-with",
        "dust": "brush-with",
        "sweep": "sweep-with",
        "poke": "poke-with",
        "flip": "lift-with",
        "lift_something": "lift-with",
        "lift": "lift-with",
        "cut": "cut-with",
        "slice": "cut-with",
        "chop": "cut-with",
        "scoop": "scoop-with",
        "pound": "pound-with",
        "hammer": "pound-with",
        "hit": "pound-with",
        "mash": "press-with",
        "press": "press-with",
        "pierce": "pierce-with",
        "stab": "pierce-with",
        "hang": "hang-onto",
        "hang_something": "hang-onto",
        "dig": "dig-with",
        "pry": "pry-with",
        "peel": "peel-with",
        "spread": "spread-with",
        "write": "write-with",
        "draw": "write-with",
        "pick_up": "pick up-with",
        "pick_up_something": "pick up-with",
        "grasp": "pick up-with",
        "sift": "sift-with",
        "strain": "sift-with",
        "screw": "apply torque-with",
        "tighten": "apply torque-with",
        "loosen": "apply torque-with",
        "wedge": "wedge-with",
        "pull": "pull-with",
        "roll": "roll-onto",
    }
)


def action_key(action: str) -> str:
    """Lower-case slug of an action name: ``"Brush/Dust"`` and ``"Brush_Dust"`` -> ``"brush_dust"``."""
    return re.sub(r"[^a-z0-9]+", "_", action.lower()).strip("_")


def function_for_action(action: str, nearest: Callable[[str], str] | None = None) -> str:
    """The function an action maps to: the full slug, then its first word, then ``nearest``
    (e.g. text-embedding similarity over the taxonomy's functions) if given."""
    key = action_key(action)
    for candidate in (key, key.split("_")[0]):
        if candidate in ACTION_FUNCTIONS:
            return ACTION_FUNCTIONS[candidate]
    if nearest is not None:
        return nearest(action.replace("_", " "))
    raise InputError(
        f"No function is known for FunKPoint action {action!r}; known: {', '.join(ACTION_FUNCTIONS)}."
    )


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class FunKPointImage:
    """One annotated photo. points: normalised (x, y) in [0, 1], canonical order of the action."""

    action: str
    role: Role
    category: str
    path: Path
    points: tuple[tuple[float, float], ...]

    def pixel_points(self, size: tuple[int, int]) -> torch.Tensor:
        """(K, 2) points in pixel-index coordinates of an image of ``size`` (W, H)."""
        w, h = size
        normalised = torch.tensor(self.points, dtype=torch.float32).reshape(-1, 2)
        return normalised * normalised.new_tensor([w, h]) - 0.5


@dataclass(frozen=True)
class FunKPointAction:
    """An action's references and tests."""

    name: str
    references: tuple[FunKPointImage, ...]
    tests: tuple[FunKPointImage, ...]


def _points(row: Mapping[str, str], where: str) -> tuple[tuple[float, float], ...]:
    points = []
    for k in range(1, 100):
        x, y = (row.get(f"p{k}_x") or "").strip(), (row.get(f"p{k}_y") or "").strip()
        if not x and not y:
            break
        try:
            point = (float(x), float(y))
        except ValueError:
            raise InputError(f"{where}: point p{k} is not a number pair ({x!r}, {y!r}).") from None
        if not all(-0.5 <= v <= 1.5 for v in point):
            raise InputError(f"{where}: point p{k} = {point} is not normalised to [0, 1].")
        points.append(point)
    if not points:
        raise InputError(f"{where}: no keypoints (columns p1_x, p1_y, ...).")
    return tuple(points)


def _inside(root: Path, relative: str, where: str) -> Path:
    """``root / relative``, refusing paths that leave the dataset folder."""
    path = (root / relative).resolve()
    if not path.is_relative_to(root.resolve()):
        raise InputError(f"{where}: image path {relative!r} points outside {root}.")
    return path


def _read_rows(root: Path, action_dir: Path, role: Role) -> tuple[FunKPointImage, ...]:
    path = action_dir / ("references.csv" if role == "reference" else "tests.csv")
    if not path.is_file():
        raise InputError(f"{action_dir} has no {path.name}.")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"dataset_image_path", "p1_x", "p1_y"} - set(reader.fieldnames or ())
        if missing:
            raise InputError(f"{path} lacks the columns {', '.join(sorted(missing))}.")
        images = []
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            image = _inside(root, row["dataset_image_path"], where)
            if not image.is_file():
                raise InputError(f"{where}: no image at {image}.")
            category = row.get("object_category") or image.stem
            images.append(
                FunKPointImage(action_dir.name, role, category, image, _points(row, where))
            )
    return tuple(images)


def read_funkpoint(root: str | Path, actions: Sequence[str] | None = None) -> list[FunKPointAction]:
    """Every action folder under ``root`` holding a references.csv, sorted by name
    (only ``actions`` when given)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"No FunKPoint folder at {root}.")
    found = sorted(p for p in root.iterdir() if (p / "references.csv").is_file())
    if actions is not None:
        wanted = {action_key(a) for a in actions}
        unknown = wanted - {action_key(p.name) for p in found}
        if unknown:
            raise InputError(
                f"No action {', '.join(sorted(unknown))} in {root}; found {', '.join(p.name for p in found)}."
            )
        found = [p for p in found if action_key(p.name) in wanted]
    if not found:
        raise InputError(f"{root} holds no FunKPoint action folder (<Action>/references.csv).")
    result = []
    for folder in found:
        references, tests = _read_rows(root, folder, "reference"), _read_rows(root, folder, "test")
        counts = {len(image.points) for image in references + tests}
        if len(counts) != 1:
            raise InputError(
                f"{folder}: images label different numbers of points ({sorted(counts)})."
            )
        result.append(FunKPointAction(folder.name, references, tests))
    return result


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class PointScore:
    """One transferred keypoint: normalised error (Euclidean, image side = 1)."""

    action: str
    reference: str
    test: str
    category: str
    index: int
    error: float


def normalised_error(
    predicted: torch.Tensor, truth: torch.Tensor, size: tuple[int, int]
) -> torch.Tensor:
    """Euclidean distance in normalised coordinates between pixel points (N, 2) of an image of
    ``size`` (W, H): each axis divided by its own side. (N,)."""
    scale = predicted.new_tensor(size, dtype=torch.float32)
    return ((predicted.float() - truth.float()) / scale).norm(dim=-1)


def summarise(scores: Sequence[PointScore], alpha: float = 0.1) -> dict[str, Any]:
    """``overall`` PCK@alpha over every point, ``per_action`` pooled per action, and the
    mean of the per-action values."""
    if not scores:
        raise InputError("No FunKPoint point was scored.")
    hits = torch.tensor([s.error <= alpha for s in scores], dtype=torch.float64)
    per_action: dict[str, dict[str, Any]] = {}
    for action in sorted({s.action for s in scores}):
        mine = torch.tensor(
            [s.error <= alpha for s in scores if s.action == action], dtype=torch.float64
        )
        pairs = {(s.reference, s.test) for s in scores if s.action == action}
        per_action[action] = {
            "pck": float(mine.mean()),
            "points": int(mine.numel()),
            "pairs": len(pairs),
        }
    return {
        "alpha": alpha,
        "overall": float(hits.mean()),
        "points": int(hits.numel()),
        "action_mean": float(sum(a["pck"] for a in per_action.values()) / len(per_action)),
        "per_action": per_action,
    }


@dataclass(frozen=True)
class FunKPointConfig:
    """alpha: PCK threshold (fraction of the image side); soft_window: soft-argmax radius in
    network pixels (None = plain nearest neighbour)."""

    alpha: float = 0.1
    soft_window: float | None = None


def _matcher_transfer(matcher: Any, action: FunKPointAction, config: FunKPointConfig) -> Callable:
    """Features of every image of the action computed once; returns (ref, test) -> predictions."""
    images = action.references + action.tests
    loaded = [load_image(image.path) for image in images]
    prepared = [matcher.prepare(image) for image in loaded]
    features = dict(zip(images, matcher.features(prepared)))
    plans = dict(zip(images, (p.plan for p in prepared)))

    def transfer(
        reference: FunKPointImage, test: FunKPointImage, points: torch.Tensor
    ) -> torch.Tensor:
        net = plans[reference].to_net(points)
        moved = transfer_points(
            features[reference], features[test], net, soft_window=config.soft_window
        )
        return plans[test].to_orig(moved.points.cpu())

    return transfer


def _chance_transfer(seed: int) -> Callable:
    generator = torch.Generator().manual_seed(seed)

    def transfer(
        reference: FunKPointImage, test: FunKPointImage, points: torch.Tensor
    ) -> torch.Tensor:
        w, h = _size(test)
        return torch.rand(points.shape[0], 2, generator=generator) * torch.tensor([w, h]) - 0.5

    return transfer


def _size(image: FunKPointImage) -> tuple[int, int]:
    from PIL import Image

    with Image.open(image.path) as im:
        return im.size


def evaluate_funkpoint(
    actions: Sequence[FunKPointAction],
    matcher: Any | None,
    config: FunKPointConfig = FunKPointConfig(),
    function_of: Callable[[str], str] = function_for_action,
    seed: int = 0,
    progress: bool = False,
) -> list[PointScore]:
    """Transfer every reference's points to every test of its action; ``matcher`` (a
    :class:`funcorr.model.matcher.Matcher`) or None for the uniform-chance baseline."""
    scores = []
    bar = tqdm(
        total=sum(len(a.references) * len(a.tests) for a in actions),
        desc="funkpoint",
        unit="pair",
        disable=not progress,
    )
    for action in actions:
        if matcher is None:
            transfer = _chance_transfer(seed)
        else:
            matcher.use_function(function_of(action.name))
            transfer = _matcher_transfer(matcher, action, config)
        for reference in action.references:
            source = reference.pixel_points(_size(reference))
            for test in action.tests:
                size = _size(test)
                errors = normalised_error(
                    transfer(reference, test, source), test.pixel_points(size), size
                )
                scores += [
                    PointScore(
                        action.name, reference.path.name, test.path.name, test.category, k, float(e)
                    )
                    for k, e in enumerate(errors)
                ]
                bar.update(1)
    bar.close()
    return scores

"""Evaluation pairs of a dataset folder (``funcorr make-data``) for the viewer's pair picker.

``funcorr.data.readers`` is imported lazily and every failure (module missing, folder
incomplete, split absent) becomes a reason shown on the page instead of an error: the viewer
works without a dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from funcorr.images import InputError, LoadedImage

FALLBACK_SPLITS = ("test", "unseen")


@dataclass(frozen=True)
class PairImages:
    """One evaluation pair as viewer images."""

    pair_id: str
    function: str | None
    first: LoadedImage
    second: LoadedImage


@dataclass
class DatasetPairs:
    """Lists and loads the pairs of ``root`` (``None``: no dataset given)."""

    root: Path | None
    _splits: dict[str, object] | None = field(default=None, init=False)
    _reason: str | None = field(default=None, init=False)

    def _open(self) -> dict[str, object]:
        """EvalPairs per split present, opened once; on failure {} and ``_reason`` says why."""
        if self._splits is not None:
            return self._splits
        self._splits = {}
        if self.root is None:
            self._reason = "no dataset folder given (start with: funcorr serve --data DIR)"
            return self._splits
        try:
            from funcorr.data import readers
        except ImportError as err:
            self._reason = f"dataset support is not installed ({err})"
            return self._splits
        errors = []
        for split in getattr(readers, "EVAL_SPLITS", FALLBACK_SPLITS):
            try:
                self._splits[split] = readers.EvalPairs(self.root, split)
            except (InputError, OSError, ValueError, KeyError) as err:
                errors.append(f"{split}: {err}")
        if not self._splits:
            self._reason = f"no evaluation pairs in {self.root} ({'; '.join(errors)})"
        elif errors:  # a damaged split is reported, not hidden behind the readable ones
            self._reason = "; ".join(errors)
        return self._splits

    def listing(self) -> dict:
        """{"available": bool, "reason": str | None, "pairs": [{split, index, pair_id, function}]}."""
        splits = self._open()
        pairs = []
        for split, pairs_of_split in splits.items():
            # The pair records are metadata only; reading items would decode every image.
            records = getattr(pairs_of_split, "pairs", None) or [
                {} for _ in range(len(pairs_of_split))
            ]
            for index, record in enumerate(records):
                pair_id = record.get("pair_id", f"{split}-{index}")
                pairs.append(
                    {
                        "split": split,
                        "index": index,
                        "pair_id": pair_id,
                        "function": record.get("function"),
                    }
                )
        return {"available": bool(pairs), "reason": self._reason, "pairs": pairs}

    def load(self, split: str, index: int) -> PairImages:
        """Images (with object masks when the dataset has them) and function of one pair."""
        splits = self._open()
        if split not in splits:
            raise InputError(
                f"No split {split!r} in the dataset ({self._reason or 'available: ' + ', '.join(splits)})."
            )
        pairs_of_split = splits[split]
        if not 0 <= index < len(pairs_of_split):
            raise InputError(
                f"Pair index {index} is outside 0..{len(pairs_of_split) - 1} of split {split!r}."
            )
        item = pairs_of_split[index]
        return PairImages(
            str(item.get("pair_id", f"{split}-{index}")),
            item.get("function"),
            LoadedImage(item["image1"].float(), _bool_or_none(item.get("mask1"))),
            LoadedImage(item["image2"].float(), _bool_or_none(item.get("mask2"))),
        )


def _bool_or_none(mask: torch.Tensor | None) -> torch.Tensor | None:
    """A dataset mask as (H, W) bool, or None when absent or empty (empty = unusable)."""
    if mask is None:
        return None
    mask = mask.bool()
    return mask if bool(mask.any()) else None

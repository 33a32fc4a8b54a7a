"""``report.json`` of a curation run: what was kept, what was rejected and why, with examples.

Layout::

    settings     the run's identity (captions file, threshold, cap, seed, noun source, ...)
    totals       records and the count of each outcome: malformed, no_noun, below_threshold,
                 no_mesh, verify_rejected, duplicate, over_cap, kept (train / test)
    threshold    its value; how many captions fell within 0.05 below it (what lowering it
                 would add) and above it (what raising it would remove), with examples; a
                 20-bin histogram of every noun's best similarity
    categories   per category (the nearest one of each noun): functions, kept, train, test,
                 rejected and its breakdown, examples of kept and rejected captions
    frequent_rejected_nouns   the 20 most frequent nouns below the threshold and their
                 nearest category
"""

from __future__ import annotations

from pathlib import Path

from funcorr.data.caption_nouns import read_captions
from funcorr.data.manifest import ManifestRow

#: Every decision a caption can end in, in report order.
STATUSES = (
    "malformed",
    "no_noun",
    "below_threshold",
    "no_mesh",
    "verify_rejected",
    "duplicate",
    "matched",
)

REJECTIONS = ("below_threshold", "no_mesh", "verify_rejected", "duplicate", "over_cap")
CAPTION_CHARS = 200


def _captions_for(path: Path, uids: set[str]) -> dict[str, str]:
    """Captions of a few uids, from one more streaming pass over the file."""
    found: dict[str, str] = {}
    if not uids:
        return found
    for caption in read_captions(path):
        if caption is not None and caption.uid in uids and caption.uid not in found:
            found[caption.uid] = caption.text[:CAPTION_CHARS]
            if len(found) == len(uids):
                break
    return found


def build_report(
    state, rows: list[ManifestRow], captions: Path, settings: dict, functions_of=None
) -> dict:
    """The report of a finished :class:`~funcorr.data.curate.CurationState` and its kept rows."""
    cfg = state.config
    kept = state.kept()
    split_of = {(r.category, r.uid): r.split for r in rows}
    kept_examples = {c: uids[: cfg.examples] for c, uids in kept.items()}
    cited = {d.uid for slot in state.examples.values() for d in slot}
    cited |= {d.uid for _, examples in state.near.values() for d in examples}
    cited |= {uid for uids in kept_examples.values() for uid in uids}
    text = _captions_for(captions, {uid for uid in cited if uid})

    def example(decision) -> dict:
        return {
            "uid": decision.uid,
            "caption": text.get(decision.uid, ""),
            "noun": decision.noun,
            "similarity": decision.similarity,
        }

    by_category: dict[str, dict] = {}
    for (category, status), n in sorted(state.counts.items()):
        if category:
            by_category.setdefault(category, {})[status] = n
    categories = {}
    for category, counts in sorted(by_category.items()):
        uids = kept.get(category, [])
        splits = [split_of[(category, uid)] for uid in uids]
        breakdown = {s: counts.get(s, 0) for s in REJECTIONS[:-1]}
        breakdown["over_cap"] = counts.get("matched", 0) - len(uids)
        matched_examples = {d.uid: d for d in state.examples.get((category, "matched"), [])}
        entry = {
            "functions": list(functions_of(category)) if functions_of else [],
            "kept": len(uids),
            "train": splits.count("train"),
            "test": splits.count("test"),
            "rejected": sum(breakdown.values()),
            "rejected_because": breakdown,
            "examples": {
                "kept": [
                    {"uid": uid, "caption": text.get(uid, "")}
                    | ({"noun": matched_examples[uid].noun} if uid in matched_examples else {})
                    for uid in kept_examples.get(category, [])
                ],
                **{
                    status: [example(d) for d in state.examples.get((category, status), [])]
                    for status in REJECTIONS[:-1]
                    if state.examples.get((category, status))
                },
            },
        }
        categories[category] = entry

    totals = {
        status: sum(n for (_, s), n in state.counts.items() if s == status)
        for status in STATUSES
        if status != "matched"
    }
    matched = sum(n for (_, s), n in state.counts.items() if s == "matched")
    totals = {
        "records": state.records,
        **totals,
        "over_cap": matched - len(rows),
        "kept": len(rows),
        "train": sum(r.split == "train" for r in rows),
        "test": sum(r.split == "test" for r in rows),
        "categories_kept": len(kept),
    }
    return {
        "settings": settings,
        "totals": totals,
        "threshold": {
            "value": cfg.threshold,
            "window": 0.05,
            "just_below": {
                "count": state.near["below"][0],
                "examples": [example(d) for d in state.near["below"][1]],
            },
            "just_above": {
                "count": state.near["above"][0],
                "examples": [example(d) for d in state.near["above"][1]],
            },
            "histogram": {
                f"{i * 0.05:.2f}-{(i + 1) * 0.05:.2f}": n for i, n in enumerate(state.histogram)
            },
        },
        "categories": categories,
        "no_noun_examples": [example(d) for d in state.examples.get(("", "no_noun"), [])],
        "frequent_rejected_nouns": [
            {"noun": noun, "count": n, "nearest": category, "similarity": similarity}
            for noun, (n, category, similarity) in sorted(
                state.rejected_nouns.items(), key=lambda item: (-item[1][0], item[0])
            )[:20]
        ],
    }

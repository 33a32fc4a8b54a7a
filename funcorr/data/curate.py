"""Curation: captioned meshes -> the assets of a functional training set (paper Sec. 4.1, 7.3).

For every caption (streamed, never loaded whole):

1. a noun: :class:`~funcorr.data.caption_nouns.HeuristicNouns` or an LLM;
2. the nearest taxonomy category by MiniLM similarity; below ``threshold`` it is rejected;
3. with ``meshes``, an asset without a mesh file is rejected (so the cap fills with usable ones);
4. optionally the LLM confirms the match (asked only when the asset would enter its
   category's current selection, which leaves the final selection unchanged);
5. each category keeps the ``cap`` assets with the smallest seeded hash of their uid -- a
   uniform random subset that does not depend on the captions' order;
6. kept assets are split train/test per category, by the same hash order.

Every decision is appended to ``OUT/decisions.jsonl`` (one line per caption record), so an
interrupted run replays that file and continues with the next record: the result is the same
as an uninterrupted run's. Memory holds the per-category selections (at most ``cap`` entries
each), counters, a few examples and one cache entry per distinct noun -- not the captions.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import itertools
import json
import os
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from funcorr.data.caption_nouns import Caption, count_lines, read_captions
from funcorr.data.category_match import DEFAULT_THRESHOLD, CategoryMatcher
from funcorr.data.curate_report import build_report
from funcorr.data.manifest import ManifestRow, write_manifest
from funcorr.images import InputError, atomic_path

VERIFY_SYSTEM = (
    "You check category labels of 3D models. You get a description of a model and a proposed "
    "object name. Answer yes when the model is an instance of that object (a toy, stylised or "
    "low-poly one counts) and no when it is something else or only contains one. Reply with "
    "the single word yes or no."
)
VERIFY_USER = 'Description: "{caption}"\nProposed object: "{category}"\nIs the model this object?'


@dataclass(frozen=True)
class CurateConfig:
    """threshold: minimum cosine similarity of noun and category; cap: assets kept per
    category (paper: 200); test_fraction: share of each category's kept assets in ``test``
    (at least one when two or more are kept); seed: picks the cap subset and the split;
    verify: ask the LLM to confirm each match; examples: captions quoted per report entry;
    chunk: captions per embedding batch and per append to the decisions file."""

    threshold: float = DEFAULT_THRESHOLD
    cap: int = 200
    test_fraction: float = 0.25
    seed: int = 0
    verify: bool = False
    examples: int = 3
    chunk: int = 256


@dataclass(frozen=True)
class Decision:
    """What curation decided for one caption record (a line of ``decisions.jsonl``)."""

    uid: str
    noun: str
    category: str
    similarity: float
    status: str

    def to_line(self) -> str:
        return json.dumps([self.uid, self.noun, self.category, self.similarity, self.status]) + "\n"

    @staticmethod
    def from_line(line: str) -> Decision:
        uid, noun, category, similarity, status = json.loads(line)
        return Decision(uid, noun, category, float(similarity), status)


def selection_key(seed: int, uid: str) -> int:
    """The uid's place in the seeded random order (smaller = kept first)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{uid}".encode()).digest()[:8], "big")


@dataclass
class CurationState:
    """Everything a run accumulates; rebuilt exactly by replaying the decisions file."""

    config: CurateConfig
    counts: Counter = field(default_factory=Counter)  # (category, status) -> n; category "" if none
    selected: dict[str, list[tuple[int, str]]] = field(
        default_factory=dict
    )  # max-heaps of (-key, uid)
    members: dict[str, set[str]] = field(default_factory=dict)
    examples: dict[tuple[str, str], list[Decision]] = field(default_factory=dict)
    histogram: list[int] = field(default_factory=lambda: [0] * 20)
    near: dict[str, list] = field(default_factory=lambda: {"below": [0, []], "above": [0, []]})
    rejected_nouns: dict[str, list] = field(
        default_factory=dict
    )  # noun -> [n, category, similarity]
    records: int = 0

    def would_enter(self, category: str, uid: str) -> bool:
        """Whether a matched asset would enter its category's current selection."""
        heap = self.selected.get(category, [])
        if uid in self.members.get(category, ()):
            return False
        return len(heap) < self.config.cap or selection_key(self.config.seed, uid) < -heap[0][0]

    def status_for_match(self, category: str, uid: str) -> str:
        return "duplicate" if uid in self.members.get(category, ()) else "matched"

    def apply(self, decision: Decision) -> None:
        """Account for one decision (live or replayed)."""
        self.records += 1
        self.counts[(decision.category, decision.status)] += 1
        slot = self.examples.setdefault((decision.category, decision.status), [])
        if len(slot) < self.config.examples:
            slot.append(decision)
        if not decision.noun:
            return
        self.histogram[min(max(int(decision.similarity * 20), 0), 19)] += 1
        gap = decision.similarity - self.config.threshold
        side = "below" if -0.05 <= gap < 0 else "above" if 0 <= gap < 0.05 else None
        if side:
            self.near[side][0] += 1
            if len(self.near[side][1]) < self.config.examples:
                self.near[side][1].append(decision)
        if decision.status == "below_threshold":
            self.rejected_nouns.setdefault(
                decision.noun, [0, decision.category, decision.similarity]
            )[0] += 1
        if decision.status == "matched":
            heap = self.selected.setdefault(decision.category, [])
            members = self.members.setdefault(decision.category, set())
            heapq.heappush(heap, (-selection_key(self.config.seed, decision.uid), decision.uid))
            members.add(decision.uid)
            if len(heap) > self.config.cap:
                members.discard(heapq.heappop(heap)[1])

    def kept(self) -> dict[str, list[str]]:
        """category -> kept uids in selection order (smallest key first)."""
        return {
            c: [uid for _, uid in sorted(heap, reverse=True)]
            for c, heap in sorted(self.selected.items())
            if heap
        }


def split_kept(uids: list[str], test_fraction: float) -> dict[str, str]:
    """uid -> train/test for one category's kept uids (in selection order): the first
    ``round(test_fraction * n)`` go to test, at least one when n >= 2 (as make-data splits)."""
    n_test = max(1, round(test_fraction * len(uids))) if len(uids) >= 2 else 0
    return {uid: "test" if i < n_test else "train" for i, uid in enumerate(uids)}


# --- inputs ------------------------------------------------------------------------------------


def index_meshes(source: str | os.PathLike) -> dict[str, str]:
    """uid -> absolute mesh path, from a folder searched recursively for ``<uid>.<ext>`` files
    (Objaverse's ``glbs/000-023/<uid>.glb`` layout works) or from a ``uid,path`` CSV."""
    from funcorr.data.assets.mesh_io import MESH_SUFFIXES

    source = Path(source)
    if source.is_dir():
        files = sorted(
            p for p in source.rglob("*") if p.suffix.lower() in MESH_SUFFIXES and p.is_file()
        )
        index: dict[str, str] = {}
        for path in files:
            index.setdefault(path.stem, str(path.resolve()))
        return index
    if source.is_file():
        with open(source, newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if len(row) >= 2]
        if rows and [c.strip().lower() for c in rows[0][:2]] == ["uid", "path"]:
            rows = rows[1:]
        return {
            uid.strip(): str((source.parent / path.strip()).resolve())
            for uid, path, *_ in rows
            if uid.strip() and path.strip()
        }
    raise InputError(f"--meshes {source} is neither a folder of meshes nor a uid,path CSV.")


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


# --- the run -----------------------------------------------------------------------------------


def _check_settings(out: Path, settings: dict) -> None:
    """Allow a new or empty folder, or a resume with identical settings."""
    path = out / "settings.json"
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored != settings:
            changed = sorted(k for k in settings if stored.get(k) != settings[k])
            raise InputError(
                f"{out} holds a curation made with different settings ({', '.join(changed)}); "
                "use a new --out folder or the same options to resume."
            )
        return
    if out.exists() and any(out.iterdir()):
        raise InputError(
            f"{out} exists and is not a curation folder; choose an empty or new --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=1, sort_keys=True))


def _replay(path: Path, state: CurationState, matcher: CategoryMatcher) -> None:
    """Rebuild the state from an earlier run's decisions; drop a torn last line."""
    if not path.is_file():
        return
    good = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if not raw.endswith(b"\n"):
                break
            decision = Decision.from_line(raw.decode("utf-8"))
            state.apply(decision)
            if decision.noun:
                matcher.remember(decision.noun, decision.category, decision.similarity)
            good += len(raw)
    if good != path.stat().st_size:
        with open(path, "rb+") as handle:
            handle.truncate(good)


def _decide(
    captions: list[Caption | None], state: CurationState, nouns, matcher, llm, meshes
) -> list[Decision]:
    """Decisions for one chunk, applied to the state in order (verification depends on it)."""
    cfg = state.config
    words = [nouns.noun(c.text) if c is not None else "" for c in captions]
    matches = matcher.match(words)
    out = []
    for caption, match in zip(captions, matches, strict=True):
        if caption is None:
            decision = Decision("", "", "", 0.0, "malformed")
        elif match is None:
            decision = Decision(caption.uid, "", "", 0.0, "no_noun")
        else:
            status = "below_threshold" if match.similarity < cfg.threshold else "matched"
            if status == "matched" and meshes is not None and caption.uid not in meshes:
                status = "no_mesh"
            if status == "matched":
                status = state.status_for_match(match.category, caption.uid)
            if (
                status == "matched"
                and cfg.verify
                and state.would_enter(match.category, caption.uid)
            ):
                status = (
                    "matched"
                    if _confirmed(llm, caption.text, match.category)
                    else "verify_rejected"
                )
            decision = Decision(caption.uid, match.noun, match.category, match.similarity, status)
        state.apply(decision)
        out.append(decision)
    return out


def _confirmed(llm, caption: str, category: str) -> bool:
    """The LLM's yes/no on a match; anything but a leading yes counts as no."""
    reply = llm.ask(VERIFY_SYSTEM, VERIFY_USER.format(caption=caption, category=category))
    words = reply.strip().lower().replace(".", " ").replace(",", " ").split()
    return bool(words) and words[0].strip("\"'*") == "yes"


@dataclass(frozen=True)
class CurationResult:
    """Paths written and the headline numbers."""

    manifest: Path
    report: Path
    records: int
    kept: int
    categories: int
    processed_now: int


def curate(
    captions: str | os.PathLike,
    out: str | os.PathLike,
    nouns,
    matcher: CategoryMatcher,
    config: CurateConfig = CurateConfig(),
    *,
    llm=None,
    meshes: str | os.PathLike | None = None,
    settings: dict | None = None,
    functions_of=None,
    progress: bool = True,
) -> CurationResult:
    """Curate ``captions`` into ``out``/manifest.csv and ``out``/report.json (resuming).

    nouns: an object with ``noun(caption) -> str``; matcher: a :class:`CategoryMatcher`
    over the taxonomy's categories; llm: a :class:`funcorr.data.text_llm.TextLLM`, needed
    for ``config.verify``; meshes: folder or ``uid,path`` CSV of meshes named by uid;
    settings: extra identity of the run (noun source, taxonomy) checked on resume;
    functions_of: category -> functions, quoted in the report.
    """
    from tqdm import tqdm

    if config.verify and llm is None:
        raise InputError("Verifying matches needs an LLM endpoint (--llm-url and --llm-model).")
    if config.cap < 1 or not 0 <= config.test_fraction < 1:
        raise InputError("The cap must be >= 1 and the test fraction in [0, 1).")
    captions, out = Path(captions), Path(out)
    if not captions.is_file():
        raise InputError(f"No captions file at {captions}.")
    identity = {
        "captions": str(captions.resolve()),
        "captions_bytes": captions.stat().st_size,
        "meshes": str(Path(meshes).resolve()) if meshes is not None else None,
        **{k: v for k, v in asdict(config).items() if k != "chunk"},
        **(settings or {}),
    }
    _check_settings(out, identity)
    mesh_index = index_meshes(meshes) if meshes is not None else None
    state = CurationState(config)
    decisions = out / "decisions.jsonl"
    _replay(decisions, state, matcher)
    done = state.records
    total = max(count_lines(captions) - done, 0)
    stream = itertools.islice(read_captions(captions), done, None)
    with (
        open(decisions, "a", encoding="utf-8") as log,
        tqdm(total=total, unit="caption", desc="curating", disable=not progress) as bar,
    ):
        for chunk in _batched(stream, config.chunk):
            lines = _decide(chunk, state, nouns, matcher, llm, mesh_index)
            log.write("".join(d.to_line() for d in lines))
            log.flush()
            bar.update(len(chunk))

    kept = state.kept()
    rows = []
    for category, uids in kept.items():
        splits = split_kept(uids, config.test_fraction)
        rows += [
            ManifestRow(uid, (mesh_index or {}).get(uid, ""), category, splits[uid]) for uid in uids
        ]
    rows.sort(key=lambda r: (r.category, r.uid))
    manifest = write_manifest(rows, out / "manifest.csv")
    report = build_report(state, rows, captions, identity, functions_of)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    return CurationResult(
        manifest, out / "report.json", state.records, len(rows), len(kept), state.records - done
    )

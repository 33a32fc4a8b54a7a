"""Result files (JSON with every number, Markdown and CSV tables, PR-curve PNGs) and the report.

One idea at about 500 lines: turning result records into files and tables, for the three
result kinds, which share the table and merge code.

Every result JSON has ``kind`` (``functional``, ``keypoints`` or ``lvlm``), ``config``,
``environment`` (funcorr and torch versions, date) and ``results``. Fractions are stored in
[0, 1]; tables print them as percentages (normalised distance stays a fraction). NaN (a split
with no pairs) is stored as ``null`` and printed as ``–``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import platform
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from funcorr.images import InputError, atomic_path

MISSING = "–"
PAPER_THRESHOLDS = ("23", "10")  # the paper's Table 1 columns, in px at 224 px


def shown_thresholds(documents: Sequence[dict[str, Any]]) -> list[str]:
    """Thresholds (px, as in metric names) for tables and PR plots: the paper's when evaluated,
    else every threshold that was (largest first), so any ``--thresholds`` list is shown."""
    found = {
        key.removeprefix("pck_")
        for doc in documents
        for summary in doc["results"]["summary"].values()
        for key in (summary or {})
        if key.startswith("pck_")
    }
    return [t for t in PAPER_THRESHOLDS if t in found] or sorted(found, key=float, reverse=True)


def functional_columns(documents: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(summary key, title) of the functional table, as the paper's Table 1."""
    shown = shown_thresholds(documents)
    columns = [("norm_dist", "Norm. dist ↓")] + [(f"pck_{t}", f"PCK@{t} ↑") for t in shown]
    for t in shown:
        columns += [(f"best_f1_{t}", f"Best F1@{t} ↑"), (f"ap_{t}", f"AP@{t} ↑")]
    return columns + [("part_iou", "Part IoU ↑")]


def environment() -> dict[str, str]:
    """Versions and date stamped into every result file."""
    import torch

    import funcorr

    return {
        "funcorr_version": funcorr.__version__,
        "torch_version": torch.__version__,
        "python_version": sys.version.split()[0],
        "platform": platform.platform(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def result_document(kind: str, config: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "config": config, "environment": environment(), "results": results}


def _json_safe(value: Any) -> Any:
    """NaN/inf -> None and tuples/paths -> JSON types, so the file is strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: Path, document: dict[str, Any]) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(
            json.dumps(_json_safe(document), indent=2, allow_nan=False) + "\n", encoding="utf-8"
        )
    return path


def write_text(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return write_text(path, buffer.getvalue())


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub Markdown table; columns holding only numbers (or ``–``) are right-aligned."""
    numeric = [bool(rows) and all(_is_number(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(" ---: " if numeric[i] else " --- " for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == MISSING
    return True


def percent(value: float | None) -> str:
    return (
        MISSING
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{100 * value:.1f}"
    )


def fraction(value: float | None) -> str:
    return (
        MISSING
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.3f}"
    )


# --------------------------------------------------------------------------- tables


def functional_table(documents: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per method and split (within / across / all), columns as the paper's Table 1."""
    columns = functional_columns(documents)
    header = ["Method", "Split", "Pairs"] + [title for _, title in columns]
    rows = []
    for doc in documents:
        results = doc["results"]
        for split in ("within", "across", "all"):
            summary = results["summary"].get(split) or {}
            if not summary.get("pair_directions"):
                continue
            cells = [
                fraction(summary.get(key)) if key == "norm_dist" else percent(summary.get(key))
                for key, _ in columns
            ]
            rows.append([results["method"], split, str(summary["pair_directions"] // 2), *cells])
    return header, rows


def keypoint_table(documents: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per method, dataset, task and alpha: PCK with bbox and image thresholds."""
    header = [
        "Method",
        "Dataset",
        "Task",
        "α",
        "Pairs",
        "Points",
        "bbox per-image",
        "bbox per-point",
        "bbox per-category",
        "image per-image",
        "image per-point",
    ]
    rows = []
    for doc in documents:
        results = doc["results"]
        for task, by_reference in results["results"].items():
            for alpha, bbox in by_reference["bbox"].items():
                image = by_reference["image"][alpha]
                if not bbox.get("pairs"):
                    continue
                rows.append(
                    [
                        results["method"],
                        results["dataset"],
                        task,
                        alpha,
                        str(bbox["pairs"]),
                        str(bbox["points"]),
                        percent(bbox["per_image"]),
                        percent(bbox["per_point"]),
                        percent(bbox["per_category"]),
                        percent(image["per_image"]),
                        percent(image["per_point"]),
                    ]
                )
    return header, rows


def super_category_table(
    documents: Sequence[dict[str, Any]], alpha: str = "0.1"
) -> tuple[list[str], list[list[str]]]:
    """Per-super-category PCK@alpha (bbox, per-category mean within each super-category)."""
    groups = sorted(
        {
            s
            for doc in documents
            for task in doc["results"]["results"].values()
            for s in (task["bbox"].get(alpha) or {}).get("super_categories", {})
        }
    )
    header = ["Method", "Dataset", "Task", *groups]
    rows = []
    for doc in documents:
        for task, by_reference in doc["results"]["results"].items():
            supers = (by_reference["bbox"].get(alpha) or {}).get("super_categories") or {}
            if supers:
                rows.append(
                    [
                        doc["results"]["method"],
                        doc["results"]["dataset"],
                        task,
                        *(percent(supers.get(g)) for g in groups),
                    ]
                )
    return header, rows


def funkpoint_table(documents: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Rows per method: PCK@alpha over all points, the mean over actions, then each action."""
    actions = sorted({a for doc in documents for a in doc["results"]["per_action"]})
    header = ["Method", "α", "Points", "Overall", "Action mean", *actions]
    rows = []
    for doc in documents:
        r = doc["results"]
        cells = [percent((r["per_action"].get(a) or {}).get("pck")) for a in actions]
        rows.append(
            [
                r["method"],
                f"{r['alpha']:g}",
                str(r["points"]),
                percent(r["overall"]),
                percent(r["action_mean"]),
                *cells,
            ]
        )
    return header, rows


def lvlm_table(documents: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    header = ["Method", "Query", "Questions", "Avg. accuracy ↑", "Circular accuracy ↑", "Unparsed"]
    rows = [
        [
            r["method"],
            r["mode"],
            str(r["questions"]),
            percent(r["average_accuracy"]),
            percent(r["circular_accuracy"]),
            str(r["unparsed_replies"]),
        ]
        for r in (doc["results"] for doc in documents)
    ]
    return header, rows


# --------------------------------------------------------------------------- plots


def plot_pr_curves(
    documents: Sequence[dict[str, Any]], path: Path, thresholds: Sequence[str] | None = None
) -> Path | None:
    """Mean precision-recall curves (one panel per threshold, one line per method and split;
    default thresholds: :func:`shown_thresholds`)."""
    thresholds = shown_thresholds(documents) if thresholds is None else thresholds
    if not thresholds:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(thresholds), figsize=(5 * len(thresholds), 4.2), squeeze=False)
    drawn = False
    for ax, threshold in zip(axes[0], thresholds):
        for doc in documents:
            for split, style in (("within", "-"), ("across", "--")):
                curve = (doc["results"]["pr_curves"].get(split) or {}).get(threshold)
                if curve:
                    ax.plot(
                        curve["recall"],
                        curve["precision"],
                        style,
                        label=f"{doc['results']['method']} ({split})",
                    )
                    drawn = True
        ax.set(
            title=f"Discovery @ {threshold} px",
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    if drawn:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path if drawn else None


# --------------------------------------------------------------------------- writers


def write_outputs(document: dict[str, Any], out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.json``, ``<stem>.md``, ``<stem>.csv`` (and ``<stem>_pr.png`` for functional)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = _json_safe(document)
    written = [write_json(out_dir / f"{stem}.json", document)]
    tables = {
        "functional": functional_table,
        "keypoints": keypoint_table,
        "funkpoint": funkpoint_table,
        "lvlm": lvlm_table,
    }
    header, rows = tables[document["kind"]]([document])
    written.append(write_csv(out_dir / f"{stem}.csv", header, rows))
    body = f"# {document['kind']}: {document['results']['method']}\n\n" + markdown_table(
        header, rows
    )
    if document["kind"] == "functional":
        plot = plot_pr_curves([document], out_dir / f"{stem}_pr.png")
        if plot is not None:
            written.append(plot)
            body += f"\n![PR curves]({plot.name})\n"
    written.append(write_text(out_dir / f"{stem}.md", body + "\n" + conventions(document["kind"])))
    return written


def conventions(kind: str) -> str:
    """The protocol in words, printed under every table."""
    if kind == "functional":
        return (
            "Label transfer and discovery as Sec. 5.1 of the dense functional correspondence paper; thresholds in px at 224 px. "
            "Every pair contributes one value per direction (1→2, 2→1); a split is the mean over its pair-directions. "
            "Norm. dist = mean error / 223; PCK counts error ≤ k. Discovery: precision/recall of the top 1..100 % of the "
            "ranking (score = (1 − norm. cycle error) · norm. similarity); AP = Σ (Δrecall · precision) from (0, 1).\n"
        )
    if kind == "keypoints":
        return (
            "PCK@α counts error ≤ α·max(bbox w, h) of the target box (bbox) or ≤ α·max(W, H) of the target image (image). "
            "per-image = mean of per-pair PCK, per-point = all keypoints pooled, per-category = mean of category means.\n"
        )
    if kind == "funkpoint":
        return (
            "FunKPoint: every reference's keypoints transferred to every test photo of the same action; a point is correct "
            "when the normalised error (x / W, y / H, Euclidean) is ≤ α. Overall pools all points; action mean averages actions.\n"
        )
    return "Average accuracy over questions; circular accuracy counts a question only when all 4 rotations of its candidates are answered correctly.\n"


def load_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """Result JSONs from files or folders (every ``*.json`` with a ``kind``), in sorted order."""
    files: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            files.extend(sorted(path.rglob("*.json")))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"No result file or folder at {path}.")
    documents = []
    for file in files:
        try:
            doc = json.loads(file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if (
            isinstance(doc, dict)
            and doc.get("kind") in ("functional", "keypoints", "funkpoint", "lvlm")
            and "results" in doc
        ):
            doc["_path"] = str(file)
            documents.append(doc)
    if not documents:
        raise InputError(f"No funcorr result JSON found in {', '.join(map(str, paths))}.")
    return documents


def _run_key(document: dict[str, Any]) -> str:
    """What identifies a run across its shards: method and configuration, shard and output
    names aside."""
    config = {
        k: v
        for k, v in document.get("config", {}).items()
        if k not in ("shard", "out", "name", "_path")
    }
    if isinstance(config.get("protocol"), dict):
        config["protocol"] = {k: v for k, v in config["protocol"].items() if k != "shard"}
    return json.dumps([document["results"]["method"], config], sort_keys=True, default=str)


def merge_shards(documents: Sequence[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """Replace the shards of each functional run (``eval functional --shard i/n``) by one merged
    document, written to ``out_dir`` as ``functional_<method>_merged.json``, at the place of
    its first shard. A merged file found again beside its shards is dropped."""
    from funcorr.eval.functional import merge_records

    groups: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        if doc["kind"] == "functional" and doc["results"].get("shard"):
            groups.setdefault(_run_key(doc), []).append(doc)
    merged_at: dict[int, dict[str, Any]] = {}
    sources: set[str] = set()
    for shards in groups.values():
        record = merge_records([d["results"] for d in shards])
        config = {k: v for k, v in shards[0]["config"].items() if k != "shard"}
        config["merged_from"] = [
            d["_path"] for d in sorted(shards, key=lambda d: d["results"]["shard"])
        ]
        merged = {
            "kind": "functional",
            "config": config,
            "environment": shards[0].get("environment", {}),
            "results": record,
        }
        stem = "".join(c if c.isalnum() or c in "_.+-" else "-" for c in record["method"])
        merged["_path"] = str(write_json(out_dir / f"functional_{stem}_merged.json", merged))
        merged_at[id(shards[0])] = merged
        sources.update(config["merged_from"])
    out = []
    for doc in documents:
        if id(doc) in merged_at:
            out.append(merged_at[id(doc)])
        elif (
            not (doc["kind"] == "functional" and doc["results"].get("shard"))
            and not set(doc.get("config", {}).get("merged_from") or ()) & sources
        ):
            out.append(doc)
    return out


def render_report(
    paths: Sequence[Path], out_dir: Path, title: str = "funcorr evaluation report"
) -> Path:
    """One Markdown page (``report.md``) with every table and the PR curves as PNG; shards of a
    functional run are merged first (:func:`merge_shards`)."""
    documents = load_documents(paths)
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = merge_shards(documents, out_dir)
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        by_kind.setdefault(doc["kind"], []).append(doc)
    parts = [f"# {title}\n"]
    if "functional" in by_kind:
        docs = by_kind["functional"]
        parts += ["## Dense functional correspondence\n", markdown_table(*functional_table(docs))]
        plot = plot_pr_curves(docs, out_dir / "report_pr_curves.png")
        if plot is not None:
            parts.append(f"\n![Discovery precision-recall curves]({plot.name})\n")
        parts.append("\n" + conventions("functional"))
    if "keypoints" in by_kind:
        docs = by_kind["keypoints"]
        parts += [
            "## Keypoint correspondence (SPair / SOCO)\n",
            markdown_table(*keypoint_table(docs)),
        ]
        header, rows = super_category_table(docs)
        if rows:
            parts += ["\n### Per super-category (PCK@0.1, bbox)\n", markdown_table(header, rows)]
        parts.append("\n" + conventions("keypoints"))
    if "funkpoint" in by_kind:
        parts += [
            "## Functional keypoints on real photos (FunKPoint)\n",
            markdown_table(*funkpoint_table(by_kind["funkpoint"])),
            "\n" + conventions("funkpoint"),
        ]
    if "lvlm" in by_kind:
        parts += [
            "## LVLM multiple choice (SOCO)\n",
            markdown_table(*lvlm_table(by_kind["lvlm"])),
            "\n" + conventions("lvlm"),
        ]
    parts.append(
        "\n## Sources\n\n"
        + "\n".join(
            f"- `{d['_path']}` ({d['kind']}, funcorr {d.get('environment', {}).get('funcorr_version', '?')}, {d.get('environment', {}).get('created_at', '?')})"
            for d in documents
        )
        + "\n"
    )
    return write_text(out_dir / "report.md", "\n".join(parts))

"""``funcorr curate`` and ``funcorr taxonomy objects|parts``."""

from __future__ import annotations

import argparse
import os


def _add_llm_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--llm-url",
        default=os.environ.get("FUNCORR_LLM_BASE_URL"),
        help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 "
        "(default: $FUNCORR_LLM_BASE_URL)"
        + ("" if required else "; without it curation is offline"),
    )
    parser.add_argument(
        "--llm-model",
        default=os.environ.get("FUNCORR_LLM_MODEL"),
        help="model name (default: $FUNCORR_LLM_MODEL)",
    )
    parser.add_argument(
        "--llm-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key"
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from funcorr.cli import positive_float, positive_int  # noqa: PLC0415

    curate = subparsers.add_parser(
        "curate",
        help="pick the assets of a functional training set from captioned meshes (paper Sec. 7.3)",
        description="Summarise each caption into a noun, match it to the taxonomy's categories by "
        "MiniLM similarity, optionally verify with an LLM, cap each category and split train/test. "
        "Writes OUT/manifest.csv (uid, path, category, split) and OUT/report.json. Streams the "
        "captions and resumes an interrupted run from OUT/decisions.jsonl.",
    )
    curate.add_argument("--captions", required=True, help="Cap3D-style CSV: uid,caption per line")
    curate.add_argument(
        "--meshes",
        help="folder of meshes named <uid>.<ext> (searched recursively) or a uid,path CSV",
    )
    curate.add_argument("--taxonomy", help="taxonomy folder (default: the shipped one)")
    curate.add_argument(
        "--out", required=True, help="output folder (created; resumed if it exists)"
    )
    curate.add_argument(
        "--threshold",
        type=positive_float,
        help="minimum noun-category similarity (default 0.75 for MiniLM)",
    )
    curate.add_argument(
        "--cap", type=positive_int, default=200, help="assets kept per category (paper: 200)"
    )
    curate.add_argument(
        "--test-fraction", type=float, default=0.25, help="share of each category's assets in test"
    )
    curate.add_argument(
        "--seed", type=int, default=0, help="picks which assets fill the cap and the split"
    )
    curate.add_argument(
        "--nouns",
        choices=["auto", "heuristic", "llm"],
        default="auto",
        help="caption -> noun: the LLM when an endpoint is given (auto), or the offline heuristic",
    )
    curate.add_argument(
        "--verify",
        action="store_true",
        help="ask the LLM to confirm every match that would be kept",
    )
    curate.add_argument(
        "--text-weights", help="local all-MiniLM-L6-v2 folder (default: the packaged copy)"
    )
    _add_llm_options(curate, required=False)
    curate.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    curate.set_defaults(func=run_curate)

    taxonomy = subparsers.add_parser(
        "taxonomy",
        help="regenerate the function/object/part taxonomy with an LLM (paper Sec. 7.1, 7.2)",
        description="Write taxonomy JSON files with the shipped names and schema into --out, so "
        "the "
        "folder works as --taxonomy. Replies are logged in OUT/llm-replies.jsonl: a rerun resumes.",
    )
    steps = taxonomy.add_subparsers(dest="step", metavar="STEP", required=True)
    objects = steps.add_parser(
        "objects", help="object categories per function -> action2objects.json"
    )
    objects.add_argument("--out", required=True, help="taxonomy folder to write")
    objects.add_argument(
        "--functions", metavar="LIST", help="comma-separated functions (default: the taxonomy's 24)"
    )
    objects.add_argument(
        "--taxonomy", help="taxonomy whose functions are used (default: the shipped one)"
    )
    objects.add_argument(
        "--per-list",
        type=positive_int,
        default=15,
        help="objects asked for in each of the two lists",
    )
    _add_llm_options(objects, required=True)
    objects.set_defaults(func=run_taxonomy_objects)

    parts = steps.add_parser(
        "parts",
        help="functional parts and descriptions per (category, function) "
        "-> Objaverse_obj2part*.json",
    )
    parts.add_argument(
        "--out", required=True, help="taxonomy folder to write (may equal --taxonomy)"
    )
    parts.add_argument(
        "--taxonomy", help="taxonomy whose object lists are used (default: the shipped one)"
    )
    parts.add_argument(
        "--categories", metavar="LIST", help="only these categories (comma-separated)"
    )
    _add_llm_options(parts, required=True)
    parts.set_defaults(func=run_taxonomy_parts)


def _csv(value: str | None) -> list[str] | None:
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _llm(args: argparse.Namespace, log=None, required: bool = True):
    from funcorr.data.text_llm import TextLLM, llm_config  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415

    if not args.llm_url or not args.llm_model:
        if required:
            raise InputError(
                "This needs an LLM endpoint: pass --llm-url and --llm-model (or set FUNCORR_LLM_*)."
            )
        return None
    return TextLLM(llm_config(args.llm_url, args.llm_model, args.llm_key_env), log=log)


def run_curate(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from funcorr.data.caption_nouns import HeuristicNouns, LLMNouns  # noqa: PLC0415
    from funcorr.data.category_match import DEFAULT_THRESHOLD, CategoryMatcher  # noqa: PLC0415
    from funcorr.data.curate import CurateConfig, curate  # noqa: PLC0415
    from funcorr.data.taxonomy import load_taxonomy  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415
    from funcorr.text import load_text_encoder  # noqa: PLC0415

    use_llm_nouns = args.nouns == "llm" or (args.nouns == "auto" and bool(args.llm_url))
    llm = _llm(args, required=use_llm_nouns or args.verify)
    tax = load_taxonomy(args.taxonomy)
    nouns = LLMNouns(llm) if use_llm_nouns else HeuristicNouns(tax.categories)
    matcher = CategoryMatcher(
        tax.categories, load_text_encoder("minilm", weights=args.text_weights)
    )
    config = CurateConfig(
        threshold=DEFAULT_THRESHOLD if args.threshold is None else args.threshold,
        cap=args.cap,
        test_fraction=args.test_fraction,
        seed=args.seed,
        verify=args.verify,
    )
    if not 0 < config.threshold <= 1:
        raise InputError(f"--threshold must be in (0, 1], got {config.threshold}.")
    settings = {
        "nouns": f"llm:{args.llm_model}" if use_llm_nouns else "heuristic",
        "verify_model": args.llm_model if args.verify else None,
        "taxonomy": str(Path(args.taxonomy).resolve()) if args.taxonomy else "shipped",
        "encoder": "minilm",
    }
    try:
        result = curate(
            args.captions,
            args.out,
            nouns,
            matcher,
            config,
            llm=llm,
            meshes=args.meshes,
            settings=settings,
            functions_of=tax.functions_of,
            progress=not args.no_progress,
        )
    finally:
        if llm is not None:
            llm.close()
    resumed = result.records - result.processed_now
    print(
        f"{result.records} captions{f' ({resumed} from an earlier run)' if resumed else ''}: "
        f"{result.kept} assets kept in {result.categories} categories"
    )
    print(result.manifest)
    print(result.report)
    return 0


def run_taxonomy_objects(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    from funcorr.data.taxonomy import TAXONOMY_FILES, load_taxonomy  # noqa: PLC0415
    from funcorr.data.taxonomy_gen import generate_objects, write_json  # noqa: PLC0415

    out = Path(args.out)
    functions = _csv(args.functions) or load_taxonomy(args.taxonomy).functions
    with _llm(args, log=out / "llm-replies.jsonl") as llm:
        table = generate_objects(
            llm, functions, args.per_list, progress=lambda x: tqdm(x, desc="functions")
        )
    path = write_json(out / TAXONOMY_FILES["action2objects"], table)
    counts = [len(v) for v in table.values()]
    print(
        f"{len(table)} functions, {len(set().union(*map(set, table.values())))} distinct objects "
        f"({min(counts)}-{max(counts)} per function; {llm.asked} new LLM replies)"
    )
    print(path)
    return 0


def run_taxonomy_parts(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from tqdm import tqdm  # noqa: PLC0415

    from funcorr.data.taxonomy import TAXONOMY_FILES, load_taxonomy  # noqa: PLC0415
    from funcorr.data.taxonomy_gen import generate_parts, write_json  # noqa: PLC0415
    from funcorr.images import InputError  # noqa: PLC0415

    out = Path(args.out)
    tax = load_taxonomy(args.taxonomy)
    categories = _csv(args.categories)
    unknown = sorted(set(categories or ()) - set(tax.categories))
    if unknown:
        raise InputError(f"Categories not in the taxonomy's object lists: {', '.join(unknown)}.")
    table = {f: list(objs) for f, objs in tax.objaverse_action2objects.items()}
    with _llm(args, log=out / "llm-replies.jsonl") as llm:
        parts = generate_parts(
            llm, table, categories, progress=lambda x: tqdm(list(x), desc="category-function pairs")
        )
    if not args.taxonomy or Path(args.taxonomy).resolve() != out.resolve():
        # The output must be a whole taxonomy folder: carry the object lists over.
        write_json(
            out / TAXONOMY_FILES["action2objects"],
            {f: list(o) for f, o in tax.action2objects.items()},
        )
        write_json(out / TAXONOMY_FILES["objaverse_action2objects"], table)
    paths = [
        write_json(out / TAXONOMY_FILES["part2function"], parts.part2function),
        write_json(out / TAXONOMY_FILES["part_descriptions"], parts.descriptions),
    ]
    n_parts = sum(len(p) for p in parts.part2function.values())
    print(
        f"{len(parts.part2function)} categories, {n_parts} functional parts; "
        f"{len(parts.empty)} category-function pairs without a part; {llm.asked} new LLM replies"
    )
    for path in paths:
        print(path)
    return 0

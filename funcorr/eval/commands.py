"""``funcorr eval functional|keypoints|lvlm`` and ``funcorr report``: thin layers over funcorr.eval.

One idea at about 580 lines: the ``eval`` and ``report`` command line (options, checks and
handlers); the work itself is in the benchmark modules.

Heavy imports stay inside the handlers so ``funcorr --help`` is fast.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict
from pathlib import Path


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", text).strip("-") or "run"


def _print_paths(paths) -> None:
    for path in paths:
        print(path)


def _matcher(args: argparse.Namespace, function: str | None = None):
    """The matcher of ``--method`` / ``--model`` / ``--checkpoint``. ``function``: the first
    function the benchmark asks for (pairs and actions carry their own), which makes
    ``--model auto`` pick the shipped model; an explicit ``--method BACKBONE`` means that
    backbone's raw features."""
    from funcorr.backbones import BACKBONES
    from funcorr.images import InputError
    from funcorr.match_command import matcher_config_from_args
    from funcorr.model.matcher import Matcher

    method = getattr(args, "method", None)
    if method == "checkpoint" and not args.checkpoint:
        raise InputError("--method checkpoint needs --checkpoint PATH.")
    raw = method not in (None, "checkpoint") and not args.checkpoint
    config = matcher_config_from_args(args, function_known=function is not None and not raw)
    if raw:
        config.backbone, config.checkpoint = method, None
    if config.checkpoint is None and config.backbone not in BACKBONES:
        raise InputError(
            f"Unknown method {config.backbone!r}: use chance, checkpoint or a backbone ({', '.join(sorted(BACKBONES))})."
        )
    if config.checkpoint is not None and function is not None and config.function is None:
        config.function = function
    return Matcher(config)


def _method_label(matcher) -> str:
    """What a result table calls the method: the model's or checkpoint's name, else the
    backbone; an approximate backbone precision is part of the name (its numbers differ)."""
    name = matcher.config.backbone
    if matcher.config.checkpoint:
        name = f"model:{Path(matcher.config.checkpoint).stem}"
    precision = matcher.config.precision
    return name if precision == "fp32" else f"{name}+{precision}"


# --------------------------------------------------------------------------- functional


def _functional(args: argparse.Namespace) -> int:
    import torch

    from funcorr.eval.functional import FunctionalConfig, evaluate_functional, parse_shard
    from funcorr.eval.functional_methods import (
        ChanceMatcher,
        FunctionalMethod,
        MatcherFeatures,
        NearestNeighbourMatcher,
    )
    from funcorr.eval.part_masks import load_part_predictor
    from funcorr.eval.report import result_document, write_outputs
    from funcorr.images import InputError

    try:
        from funcorr.data.readers import EvalPairs
    except ModuleNotFoundError as err:
        raise InputError(
            f"The benchmark reader funcorr.data.readers is not available: {err}"
        ) from err
    if not Path(args.data).is_dir():
        raise InputError(f"No benchmark folder at {args.data}.")
    torch.manual_seed(args.seed)
    pairs = EvalPairs(args.data, split=args.split)
    if len(pairs) == 0:
        raise InputError(f"The benchmark at {args.data} (split {args.split}) has no pairs.")
    config = FunctionalConfig(
        thresholds_px=tuple(args.thresholds),
        image_size=args.size,
        resize=args.resize,
        seed=args.seed,
        max_pairs=args.max_pairs,
        discovery=not args.no_discovery,
        shard=parse_shard(args.shard) if args.shard else None,
    )
    label = "chance"
    features = None
    if args.method == "chance" and not args.checkpoint:
        matcher = ChanceMatcher(args.seed)
    else:
        feature_matcher = _matcher(args, function=str(pairs[0]["function"]))
        label = _method_label(feature_matcher)
        features = MatcherFeatures(feature_matcher)
        matcher = NearestNeighbourMatcher(soft_window=feature_matcher.config.soft_window)
    # Default: what the model records (funcorr-s14 restricts discovery to the parts its mask
    # head predicts, as `funcorr match` does); raw features and chance use none.
    spec = args.parts
    if spec is None:
        spec = features.matcher.inference.get("parts", "none") if features else "none"
    parts = load_part_predictor(spec, features)
    if parts is not None:
        label += f"+{'gt' if parts.is_ground_truth else spec.split(':')[0]}-parts"
    method = FunctionalMethod(label, matcher, features, parts)
    results = evaluate_functional(pairs, method, config, progress=True)
    record = {
        **{k: v for k, v in vars(args).items() if k != "func"},
        "protocol": asdict(config),
        "method_label": label,
    }
    document = result_document("functional", record, results.to_record())
    shard = f"_shard-{config.shard[0]}-of-{config.shard[1]}" if config.shard else ""
    _print_paths(
        write_outputs(document, Path(args.out), f"functional_{_slug(args.name or label)}{shard}")
    )
    summary = results.summary("all")
    pck = "  ".join(
        f"PCK@{k:g} {100 * summary[f'pck_{k:g}']:.1f}"
        for k in sorted(set(config.thresholds_px), reverse=True)
    )
    print(f"{label}: {pck}  norm. dist {summary['norm_dist']:.3f}")
    return 0


# --------------------------------------------------------------------------- keypoints


def _keypoint_pairs(args: argparse.Namespace):
    from funcorr.eval.soco import SOCOPairs
    from funcorr.eval.spair import SPairPairs

    root = Path(args.data)
    fmt = _keypoint_format(args)
    if fmt == "spair":
        return fmt, [
            (
                "intra",
                SPairPairs(
                    root,
                    split=args.split,
                    categories=args.categories,
                    max_pairs=args.max_pairs,
                    allow_abs=args.allow_abs,
                ),
            )
        ]
    types = ("intra", "cross") if args.pair_type == "both" else (args.pair_type,)
    return fmt, [
        (t, SOCOPairs(root, t, categories=args.categories, max_pairs_per_category=args.max_pairs))
        for t in types
    ]


def _keypoint_format(args: argparse.Namespace) -> str:
    """--format, with ``auto`` decided by the folder's layout."""
    root = Path(args.data)
    if args.format != "auto":
        return args.format
    if (root / "PairAnnotations").is_dir():
        return "soco"
    if any((p / "references.csv").is_file() for p in root.iterdir() if p.is_dir()):
        return "funkpoint"
    return "spair"


def _funkpoint(args: argparse.Namespace) -> int:
    from funcorr.eval.funkpoint import (
        FunKPointConfig,
        evaluate_funkpoint,
        function_for_action,
        read_funkpoint,
        summarise,
    )
    from funcorr.eval.report import result_document, write_outputs

    actions = read_funkpoint(args.data, args.categories)
    chance = args.method == "chance" and not args.checkpoint
    matcher = None if chance else _matcher(args, function=function_for_action(actions[0].name))
    config = FunKPointConfig(
        alpha=args.alpha[0] if args.alpha else 0.1,
        soft_window=None if matcher is None else matcher.config.soft_window,
    )
    label = "chance" if chance else _method_label(matcher)
    scores = evaluate_funkpoint(actions, matcher, config, seed=args.seed, progress=True)
    summary = summarise(scores, config.alpha)
    functions = {a.name: function_for_action(a.name) for a in actions}
    for action, function in functions.items():
        summary["per_action"][action]["function"] = function
    results = {"method": label, **summary, "points_detail": [asdict(s) for s in scores]}
    record = {**{k: v for k, v in vars(args).items() if k != "func"}, "protocol": asdict(config)}
    document = result_document("funkpoint", record, results)
    _print_paths(write_outputs(document, Path(args.out), f"funkpoint_{_slug(args.name or label)}"))
    per_action = ", ".join(f"{a} {100 * v['pck']:.1f}" for a, v in summary["per_action"].items())
    print(
        f"{label}: FunKPoint PCK@{config.alpha:g} overall {100 * summary['overall']:.1f} ({summary['points']} points); {per_action}"
    )
    return 0


def _soco_protocol(args: argparse.Namespace) -> int:
    from funcorr.backbones import resolve_device
    from funcorr.eval.report import result_document, write_json
    from funcorr.eval.soco_protocol import SOCOProtocol, evaluate_soco_protocol, format_summary
    from funcorr.images import InputError

    fixed = {
        "--checkpoint": args.checkpoint,
        "--flip": args.flip,
        "--soft-window": args.soft_window,
        "--object-mask": args.object_mask,
        "--layers": args.layers,
        "--stride": args.stride,
        "--precision": args.precision != "fp32" and args.precision,
    }
    given = [name for name, value in fixed.items() if value]
    if given:
        raise InputError(
            f"--protocol soco fixes the features and the matching (final block, every patch, argmax); drop {', '.join(given)}."
        )
    backbone = args.method if args.method not in (None, "chance") else args.backbone
    if args.method == "chance":
        raise InputError(
            "--protocol soco evaluates a backbone; use --protocol funcorr for the chance baseline."
        )
    fmt, sources = _keypoint_pairs(args)
    pairs = [pair for _, group in sources for pair in group]
    # SOCO scores one threshold: a single --alpha, else its 0.1 (the default list holds it).
    alphas = list(args.alpha or [0.1])
    threshold = alphas[0] if len(alphas) == 1 else 0.1 if 0.1 in alphas else None
    if threshold is None:
        raise InputError("--protocol soco scores one threshold: give a single --alpha.")
    protocol = SOCOProtocol(args.soco_size, threshold)
    record = evaluate_soco_protocol(
        pairs,
        backbone,
        protocol,
        weights=args.weights,
        device=resolve_device(args.device),
        progress=True,
    )
    document = result_document(
        "keypoints_soco_protocol",
        {**{k: v for k, v in vars(args).items() if k != "func"}, "format": fmt},
        {"method": backbone, **record},
    )
    Path(args.out).mkdir(parents=True, exist_ok=True)
    print(
        write_json(
            Path(args.out) / f"keypoints_{fmt}_soco-protocol_{_slug(args.name or backbone)}.json",
            document,
        )
    )
    for line in format_summary(record):
        print(line)
    return 0


def _keypoints(args: argparse.Namespace) -> int:
    import torch

    from funcorr.eval.keypoints import (
        ChanceKeypointMethod,
        FeatureKeypointMethod,
        KeypointConfig,
        KeypointResults,
        evaluate_keypoints,
        load_super_categories,
    )
    from funcorr.eval.report import result_document, write_outputs
    from funcorr.images import InputError

    if not Path(args.data).is_dir():
        raise InputError(f"No keypoint dataset folder at {args.data}.")
    torch.manual_seed(args.seed)
    if _keypoint_format(args) == "funkpoint":
        if args.flip or args.protocol == "soco":
            raise InputError(
                "FunKPoint runs funcorr's protocol without --flip (benchmarks/keypoint_options.py measures --flip on it); drop --flip / --protocol soco."
            )
        return _funkpoint(args)
    if args.protocol == "soco":
        return _soco_protocol(args)
    fmt, sources = _keypoint_pairs(args)
    config = KeypointConfig(
        alphas=tuple(args.alpha or (0.05, 0.1, 0.15)), tasks=tuple(args.tasks), strict=args.strict
    )
    if args.method == "chance" and not args.checkpoint:
        method = ChanceKeypointMethod(args.seed)
    else:
        matcher = _matcher(args)
        method = FeatureKeypointMethod.from_matcher(
            matcher, _method_label(matcher), soft_window=matcher.config.soft_window, flip=args.flip
        )
    supers = load_super_categories(args.super_categories, fmt)
    scores = []
    for _, pairs in sources:
        scores += evaluate_keypoints(pairs, method, config, fmt, supers, progress=True).pairs
    results = KeypointResults(method.name, fmt, scores, config, supers)
    record = {**{k: v for k, v in vars(args).items() if k != "func"}, "protocol": asdict(config)}
    document = result_document("keypoints", record, results.to_record())
    _print_paths(
        write_outputs(
            document, Path(args.out), f"keypoints_{fmt}_{_slug(args.name or method.name)}"
        )
    )
    for pair_type in results.pair_types():
        for task in config.tasks:
            for alpha in config.alphas:
                pck = results.pck(task, alpha, "bbox", pair_type)
                if pck["points"]:
                    print(
                        f"{pair_type} {task} PCK@{alpha:g} (bbox): per-category {100 * pck['per_category']:.1f}, per-image {100 * pck['per_image']:.1f}, per-point {100 * pck['per_point']:.1f} ({pck['points']} points)"
                    )
    return 0


# --------------------------------------------------------------------------- lvlm


def _lvlm(args: argparse.Namespace) -> int:
    import os

    from funcorr.eval.lvlm import (
        LVLMAnswerer,
        OpenAIChatClient,
        RandomAnswerer,
        RandomPlusPlusAnswerer,
        evaluate_lvlm,
        questions_from_pairs,
        read_questions,
    )
    from funcorr.eval.report import result_document, write_outputs
    from funcorr.eval.soco import SOCOPairs
    from funcorr.eval.spair import SPairPairs
    from funcorr.images import InputError

    if (args.questions is None) == (args.data is None):
        raise InputError("Give exactly one of --questions FILE or --data DIR.")
    if args.baseline == "random":
        answerer = RandomAnswerer(args.seed)
    elif args.baseline == "random++":
        answerer = RandomPlusPlusAnswerer(args.seed)
    else:
        if not args.base_url or not args.model:
            raise InputError(
                "An LVLM needs --base-url and --model (or use --baseline random / random++)."
            )
        answerer = LVLMAnswerer(
            OpenAIChatClient(
                args.base_url,
                args.model,
                os.environ.get(args.api_key_env) if args.api_key_env else None,
                timeout_s=args.timeout,
            )
        )
        answerer.client.check_reachable()
    if args.questions is not None:
        questions = read_questions(args.questions)
    else:
        root = Path(args.data)
        pairs = (
            SOCOPairs(root, args.pair_type, max_pairs_per_category=args.max_pairs)
            if (root / "PairAnnotations").is_dir()
            else SPairPairs(root, max_pairs=args.max_pairs, allow_abs=args.allow_abs)
        )
        questions = questions_from_pairs(pairs, args.mode, seed=args.seed)
    if args.max_questions is not None:
        questions = questions[: args.max_questions]
    results = evaluate_lvlm(questions, answerer, circular_eval=not args.no_circular, progress=True)
    record = {k: v for k, v in vars(args).items() if k not in ("func", "api_key_env")}
    document = result_document("lvlm", record, results.to_record())
    _print_paths(
        write_outputs(
            document, Path(args.out), f"lvlm_{_slug(args.name or answerer.name)}_{_slug(args.mode)}"
        )
    )
    print(
        f"{answerer.name} ({args.mode}): accuracy {100 * results.average_accuracy:.1f}, circular {100 * results.circular_accuracy:.1f}"
    )
    return 0


# --------------------------------------------------------------------------- report


def _report(args: argparse.Namespace) -> int:
    from funcorr.eval.report import render_report

    print(render_report([Path(p) for p in args.results], Path(args.out), args.title))
    return 0


# --------------------------------------------------------------------------- parsers


def register(sub) -> None:
    from funcorr.cli import (
        add_feature_options,
        add_soft_window_option,
        positive_float,
        positive_int,
    )

    evaluate = sub.add_parser(
        "eval", help="benchmarks: dense functional, keypoint (SPair/SOCO), LVLM multiple choice"
    )
    tasks = evaluate.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)

    functional = tasks.add_parser(
        "functional",
        help="label transfer + discovery on a funcorr benchmark folder (paper Sec. 5.1)",
    )
    functional.add_argument(
        "--data", required=True, help="benchmark folder written by the data engine"
    )
    functional.add_argument("--split", default="test", help="benchmark split (default: test)")
    functional.add_argument(
        "--method",
        default=None,
        help="chance, or a registered backbone for its raw features (default: --model, i.e. the shipped functional model on --backbone)",
    )
    functional.add_argument(
        "--parts",
        help="part masks for discovery: none, gt, head (checkpoint mask head), folder:DIR (<pair_id>_<1|2>.png) "
        "or module:factory (default: the model's recommendation, head for funcorr-s14; none for raw features)",
    )
    functional.add_argument(
        "--thresholds",
        type=positive_float,
        nargs="+",
        default=[23, 15, 10, 5],
        help="pixel thresholds at 224 px",
    )
    functional.add_argument(
        "--no-discovery",
        action="store_true",
        help="label transfer only (discovery is the slow part)",
    )
    add_soft_window_option(functional)
    functional.add_argument(
        "--shard",
        help="evaluate shard i/n (0 <= i < n): the i-th of n contiguous slices of the pairs; `funcorr report` merges the n result files",
    )
    _common(functional)
    add_feature_options(functional)
    functional.set_defaults(func=_functional)

    keypoints = tasks.add_parser(
        "keypoints", help="PCK on SPair-71k-style or SOCO pairs (SOC, CC, Cross-SOC, SOC-geo)"
    )
    keypoints.add_argument(
        "--data", required=True, help="SPair folder (pairs.json or PairAnnotation/) or SOCO root"
    )
    keypoints.add_argument(
        "--format",
        choices=["auto", "spair", "soco", "funkpoint"],
        default="auto",
        help="auto: from the folder layout; funkpoint: <Action>/references.csv + tests.csv (real photos, PCK of the image side)",
    )
    keypoints.add_argument("--split", default="test", help="SPair-71k split")
    keypoints.add_argument(
        "--pair-type", choices=["intra", "cross", "both"], default="both", help="SOCO pair type"
    )
    keypoints.add_argument(
        "--categories", nargs="+", help="only these categories / pair groups (FunKPoint: actions)"
    )
    keypoints.add_argument(
        "--method",
        default=None,
        help="chance, or a registered backbone for its raw features (default: --model; the shipped functional model on FunKPoint, whose actions give functions)",
    )
    keypoints.add_argument(
        "--alpha",
        type=positive_float,
        nargs="+",
        help="PCK thresholds as fractions of the reference length (default 0.05 0.1 0.15; FunKPoint: 0.1)",
    )
    keypoints.add_argument(
        "--tasks", nargs="+", choices=["soc", "cc", "soc_geo"], default=["soc", "cc", "soc_geo"]
    )
    keypoints.add_argument(
        "--strict", action="store_true", help="count error < threshold (SOCO's code) instead of <="
    )
    add_soft_window_option(keypoints)
    keypoints.add_argument(
        "--protocol",
        choices=["funcorr", "soco"],
        default="funcorr",
        help="funcorr: 224 px, last 3 blocks, cell centres, <= (default); soco: SOCO's evaluate_dinov2.py exactly (798 px white-padded, final block, argmax at the cell corner, <, pair -> category -> mean)",
    )
    keypoints.add_argument(
        "--soco-size",
        type=positive_int,
        default=800,
        help="--protocol soco: requested input size, rounded to a patch multiple as SOCO does (800 -> 798)",
    )
    keypoints.add_argument(
        "--flip",
        action="store_true",
        help="also match the mirrored target; keep the orientation whose mutual nearest neighbours agree better",
    )
    keypoints.add_argument(
        "--allow-abs",
        action="store_true",
        help="let pairs.json name images by absolute path (default: names stay inside --data)",
    )
    keypoints.add_argument(
        "--super-categories",
        help="JSON {category: super-category} (default for SPair: PASCAL groups)",
    )
    _common(keypoints)
    add_feature_options(keypoints)
    keypoints.set_defaults(func=_keypoints)

    lvlm = tasks.add_parser(
        "lvlm",
        help="SOCO multiple-choice keypoint questions for an OpenAI-compatible LVLM endpoint",
    )
    lvlm.add_argument("--data", help="SOCO root or SPair folder to build questions from")
    lvlm.add_argument("--questions", help="JSON/JSONL questions file instead of --data")
    lvlm.add_argument(
        "--allow-abs",
        action="store_true",
        help="let pairs.json name images by absolute path (default: names stay inside --data)",
    )
    lvlm.add_argument("--pair-type", choices=["intra", "cross"], default="intra")
    lvlm.add_argument(
        "--mode", choices=["visual", "visual+description", "description"], default="visual"
    )
    lvlm.add_argument(
        "--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1"
    )
    lvlm.add_argument("--model", help="model name sent to the endpoint")
    lvlm.add_argument(
        "--api-key-env",
        default="OPENAI_API_KEY",
        help="environment variable holding the API key (if any)",
    )
    lvlm.add_argument("--timeout", type=positive_float, default=120.0)
    lvlm.add_argument(
        "--baseline",
        choices=["random", "random++"],
        help="answer with a baseline instead of an LVLM",
    )
    lvlm.add_argument(
        "--no-circular",
        action="store_true",
        help="ask each question once instead of in all 4 rotations",
    )
    lvlm.add_argument("--max-questions", type=positive_int)
    _common(lvlm)
    lvlm.set_defaults(func=_lvlm)

    report = sub.add_parser(
        "report", help="render result JSONs into one Markdown page with tables and plots"
    )
    report.add_argument("results", nargs="+", help="result JSON files or folders")
    report.add_argument("--out", required=True, help="output folder for report.md and its PNGs")
    report.add_argument("--title", default="funcorr evaluation report")
    report.set_defaults(func=_report)


def _common(parser: argparse.ArgumentParser) -> None:
    from funcorr.cli import positive_int

    parser.add_argument(
        "--max-pairs",
        type=positive_int,
        help="evaluate at most this many pairs (per category for SOCO)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for chance baselines and question order"
    )
    parser.add_argument("--name", help="name used in output file names (default: the method)")
    parser.add_argument("--out", required=True, help="output folder")

"""Benchmarks: dense functional correspondence (label transfer, discovery), keypoint PCK on
SPair/SOCO (SOC, CC, Cross-SOC, SOC-geo), SOCO's LVLM multiple choice, and the report.

Names are imported on first use so that ``funcorr --help`` does not load torch-heavy modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "funcorr.eval.metrics": (
        "pck_at",
        "point_distances",
        "normalised_distance",
        "nearest_target_distances",
        "discovery_hits",
        "discovery_hits_at",
        "precision_recall",
        "average_precision",
        "f1_scores",
        "PRCurve",
        "DiscoveryHits",
    ),
    "funcorr.eval.functional": (
        "FunctionalConfig",
        "FunctionalResults",
        "evaluate_direction",
        "evaluate_pair",
        "evaluate_functional",
    ),
    "funcorr.eval.functional_methods": (
        "FunctionalMethod",
        "NearestNeighbourMatcher",
        "ChanceMatcher",
        "MatcherFeatures",
        "PartPredictor",
    ),
    "funcorr.eval.part_masks": (
        "GroundTruthParts",
        "MaskFolderParts",
        "HeadParts",
        "load_part_predictor",
    ),
    "funcorr.eval.keypoint_pairs": ("Keypoint", "Match", "KeypointView", "KeypointPair"),
    "funcorr.eval.spair": ("SPairPairs",),
    "funcorr.eval.soco": ("SOCOPairs",),
    "funcorr.eval.keypoints": (
        "KeypointConfig",
        "FeatureKeypointMethod",
        "ChanceKeypointMethod",
        "KeypointResults",
        "evaluate_keypoints",
        "chance_pck",
        "score_pair",
    ),
    "funcorr.eval.lvlm": (
        "MCQuestion",
        "OpenAIChatClient",
        "LVLMAnswerer",
        "RandomAnswerer",
        "RandomPlusPlusAnswerer",
        "questions_from_pairs",
        "circular",
        "parse_choice",
        "evaluate_lvlm",
        "read_questions",
    ),
    "funcorr.images": ("mask_iou",),
    "funcorr.eval.report": ("render_report", "write_outputs", "result_document"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = [name for names in _EXPORTS.values() for name in names]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'funcorr.eval' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)

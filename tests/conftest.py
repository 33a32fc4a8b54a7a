"""Shared fixtures: the real offline backbone is loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # CI has 2 cores; more threads than that only adds contention.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def dinov2_s14():
    from funcorr.backbones import load_backbone

    return load_backbone("dinov2-s14")


@pytest.fixture(scope="session")
def spair_mini() -> Path:
    path = SHARED / "data" / "spair-mini"
    if not (path / "pairs.json").is_file():
        pytest.skip("../shared/data/spair-mini is not beside this checkout")
    return path

"""Shared fixtures: the real offline backbone is loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    # CI has 2 cores; more threads than that only adds contention.
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def dinov2_s14():
    from funcorr.backbones import load_backbone

    return load_backbone("dinov2-s14")


@pytest.fixture(scope="session")
def dinov2_s14_int8():
    from funcorr.backbones import load_backbone

    return load_backbone("dinov2-s14", precision="int8")


@pytest.fixture(scope="session")
def spair_mini() -> Path:
    """Six real SPair-71k pairs, vendored under tests/data (see its README)."""
    return DATA / "spair-mini"


@pytest.fixture(scope="session")
def micro_data(tmp_path_factory) -> Path:
    """A dataset folder of 4 assets at 64 px with 3 test pairs (about a second to make):
    for tests of readers, commands and their failures, not of the data itself."""
    from funcorr.data.build import make_dataset
    from funcorr.data.format import DataConfig
    from funcorr.data.groundtruth import GTConfig

    config = DataConfig(
        functions=("cut-with",),
        assets_per_category=2,
        train_views=3,
        eval_views=5,
        image_size=64,
        pairs_per_function=3,
        match_neighbours=1,
        match_points=64,
        gt=GTConfig(min_part_pixels=10, min_correspondences=5, max_points=100),
    )
    root = tmp_path_factory.mktemp("micro") / "data"
    make_dataset(config, root, progress=False)
    return root

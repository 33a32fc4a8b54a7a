"""Training's pseudo-labeller words its VLM questions from the taxonomy in use (paper Sec. 7.2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fake_chat import fake_chat_server

from funcorr.data.readers import TrainViews
from funcorr.images import InputError
from funcorr.train.cache import pseudo_part_masks
from funcorr.train.config import TrainConfig, cache_key

MARKER = "a part described only in the test's own taxonomy"


def _taxonomy_with_marker(folder: Path, category: str, part: str) -> Path:
    shutil.copytree(
        Path(__file__).resolve().parents[1] / "funcorr" / "resources" / "taxonomy", folder
    )
    path = folder / "Objaverse_obj2part_descriptions.json"
    table = json.loads(path.read_text())
    table.setdefault(category, {})[part] = f"- {part} - {MARKER}."
    path.write_text(json.dumps(table))
    return folder


def test_vlm_questions_use_the_configured_taxonomy(micro_data: Path, tmp_path: Path) -> None:
    views = TrainViews(micro_data)
    asset_id = views.asset_ids[0]
    record = views.asset_info(asset_id)
    part, category = record["functions"]["cut-with"]["part"], record["category"]
    taxonomy = _taxonomy_with_marker(tmp_path / "taxonomy", category, part)
    with fake_chat_server(lambda body: "It is at [[100,100,900,900]].") as server:
        for folder, expected in ((None, False), (str(taxonomy), True)):
            server.requests.clear()
            cfg = TrainConfig(data=str(micro_data), vlm_base_url=server.url, taxonomy=folder)
            masks, _ = pseudo_part_masks(micro_data, asset_id, record, cfg, seed=0)
            assert "cut-with" in masks
            texts = [body["messages"][0]["content"][0]["text"] for _, body in server.requests]
            assert texts and any(MARKER in t for t in texts) is expected


def test_taxonomy_is_checked_and_keys_the_cache(micro_data: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no taxonomy folder"):
        TrainConfig(data=str(micro_data), taxonomy=str(tmp_path / "missing"))
    taxonomy = _taxonomy_with_marker(tmp_path / "t", "knife", "blade")
    base = TrainConfig(data=str(micro_data), vlm_base_url="http://127.0.0.1:9/v1")
    assert cache_key(
        TrainConfig(
            data=str(micro_data), vlm_base_url="http://127.0.0.1:9/v1", taxonomy=str(taxonomy)
        )
    ) != cache_key(base)

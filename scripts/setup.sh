#!/usr/bin/env bash
# Install humanparse (editable) with its test extras into the current Python.
# torch/torchvision/timm come from PyPI; nothing compiles a CUDA extension.
# Re-installs when pyproject.toml changed since the last set-up with this Python (a stamp file records it).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
REPO=$PWD
# Checked from / so that the repository folder itself does not count as an installation.
installed=$(cd / && "$PY" -c "import humanparse, torch, torchvision, timm, onnxruntime, pytest, os; print(os.path.dirname(humanparse.__file__))" 2>/dev/null || true)
stamp_file="$REPO/.setup-stamp"
want="$("$PY" -c 'import sys; print(sys.executable)') $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$installed" != "$REPO/humanparse" ] || [ "$(cat "$stamp_file" 2>/dev/null)" != "$want" ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp_file"
fi
# pyEdgeEval (the `edge-reference` extra of pyproject.toml; PyPI, a BSDS port; sdist only: builds a small CPU Cython extension, about a minute) is the
# independent reference of tests/metrics/test_edge_metrics.py. Best effort: without a C compiler that one
# test is skipped, nothing else needs it.
if ! (cd / && "$PY" -c "import pyEdgeEval" 2>/dev/null); then
  "$PY" -m pip install --quiet --disable-pip-version-check "pyEdgeEval==0.2.8" \
    || echo "setup: pyEdgeEval did not build; the edge-benchmark agreement test will be skipped"
fi

#!/usr/bin/env bash
# Install humanparse (editable) with its test extras into the current Python.
# torch/torchvision/timm come from PyPI; nothing compiles a CUDA extension.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
REPO=$PWD
# Checked from / so that the repository folder itself does not count as an installation.
installed=$(cd / && "$PY" -c "import humanparse, torch, torchvision, timm, onnxruntime, pytest, os; print(os.path.dirname(humanparse.__file__))" 2>/dev/null || true)
if [ "$installed" != "$REPO/humanparse" ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
fi

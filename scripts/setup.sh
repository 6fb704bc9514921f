#!/usr/bin/env bash
# Install humanparse (editable) with its test extras into the current Python.
# torch/torchvision/timm come from PyPI; nothing compiles a CUDA extension.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import humanparse, torch, torchvision, timm, onnxruntime, pytest" >/dev/null 2>&1 \
   || [ "$("$PY" -c 'import humanparse, os; print(os.path.dirname(humanparse.__file__))' 2>/dev/null)" != "$PWD/humanparse" ]; then
  "$PY" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
fi

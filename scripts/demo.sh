#!/usr/bin/env bash
# The main job end to end on the embedded sample data: set-up, then the SST demo
# (universal SST vs the Multi-datasets baseline, same budget and seed; pictures of every head).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
"$PY" -m humanparse demo --out runs/demo "$@"

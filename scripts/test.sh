#!/usr/bin/env bash
# Set-up, then the whole test suite (CPU only, no network; about 10 minutes on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
"$PY" -m pytest -q "$@"

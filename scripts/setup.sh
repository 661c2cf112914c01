#!/usr/bin/env bash
# Creates .venv (if missing) and installs archsmith with its dev tools into it.
# torch==2.13.0 goes in first, from the machine's local CPU wheel; constraints.txt then pins it
# so that no later requirement can pull a different (CUDA) build.
# Usage: bash scripts/setup.sh [EXTRAS]   (default extras: dev,compress,bench,nb201,distributed: the tests compare against the anchors)
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev,compress,bench,nb201,distributed}"
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet torch==2.13.0 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install --quiet -c constraints.txt -e ".[${extras}]" 2>&1 | grep -v "is ignored" || true
if [[ ",${extras}," == *",bench,"* ]]; then
    # memcnn without its torchvision requirement (see the bench extra in pyproject.toml)
    .venv/bin/python -m pip install --quiet -c constraints.txt --no-deps memcnn 2>&1 | grep -v "is ignored" || true
fi
.venv/bin/python -c "import archsmith, torch; print(f'archsmith {archsmith.__version__} with torch {torch.__version__} in .venv')"

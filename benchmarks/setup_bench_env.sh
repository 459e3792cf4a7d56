#!/usr/bin/env bash
# Create the benchmark environment .venv-bench: torch 2.13.0 (the main environment's version), this
# package with its PyTorch engine, and the iterative baseline pty-chi, exactly the version Ptychodus
# 1.7's `ptychi` extra names (ptychi==2.1.*), with the torchvision that matches torch 2.13.0.
# About 6 GB (the CUDA libraries of PyPI's torch build); PtychoPINN itself is timed in .venv.
#
# The main environment .venv is left untouched: pty-chi is a benchmark dependency only.
# Usage (repository root):  bash benchmarks/setup_bench_env.sh [VENV_DIR]
set -euo pipefail

VENV="${1:-.venv-bench}"
PYTHON="${PYTHON:-python3}"
TORCH="torch==2.13.0"
TORCHVISION="torchvision==0.28.0"
PTYCHI="ptychi==2.1.*"

cd "$(dirname "$0")/.."
test -x "$VENV/bin/python" || "$PYTHON" -m venv "$VENV"
PIP="$VENV/bin/python -m pip --disable-pip-version-check"
# torch and torchvision together from PyPI: torchvision 0.28.0 there is built against PyPI's torch
# 2.13.0 (a CUDA 13 build, which runs on the CPU too); next to the CPU-only torch wheel of .venv its
# compiled operators fail to load ("operator torchvision::nms does not exist", measured). --isolated
# ignores a user-level pip configuration (e.g. a find-links folder offering the CPU-only wheel).
$PIP --isolated install --quiet "$TORCH" "$TORCHVISION"
# A regular (non-editable) install: Ptychodus discovers our bridge module only there.
$PIP install --quiet ".[torch]" "$PTYCHI"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
for name in ('ptychodus', 'ptychi', 'torch', 'torchvision', 'ptychopinn-plugin'):
    print(f'{name} {version(name)}')
PY

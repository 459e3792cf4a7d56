#!/usr/bin/env bash
# Create the benchmark environment .venv-bench: the main environment's frameworks (torch 2.13.0 CPU,
# this package with its PyTorch engine) plus the iterative baseline pty-chi, exactly the version
# Ptychodus 1.7's `ptychi` extra names (ptychi==2.1.*) and the torchvision that matches torch 2.13.0.
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
# torch first (the same pin as the Makefile's CPU_FRAMEWORKS; pip takes the CPU build where the
# machine offers one, as for .venv), so that torchvision and ptychi do not pull another build.
$PIP install --quiet "$TORCH"
# A regular (non-editable) install: Ptychodus discovers our bridge module only there.
$PIP install --quiet ".[torch]" "$PTYCHI" "$TORCH" "$TORCHVISION"
"$VENV/bin/python" - <<'PY'
from importlib.metadata import version
for name in ('ptychodus', 'ptychi', 'torch', 'torchvision', 'ptychopinn-plugin'):
    print(f'{name} {version(name)}')
PY

"""Importing the package and its core must load neither TensorFlow nor PyTorch."""

from __future__ import annotations

import subprocess
import sys

FRAMEWORKS = ('torch', 'tensorflow', 'keras', 'lightning', 'jax')

CORE_MODULES = (
    'ptychopinn_plugin',
    'ptychopinn_plugin.config',
    'ptychopinn_plugin.engines',
    'ptychopinn_plugin.core.contract',
    'ptychopinn_plugin.core.dataset',
    'ptychopinn_plugin.core.grouping',
    'ptychopinn_plugin.core.stitching',
    'ptychopinn_plugin.core.physics',
    'ptychopinn_plugin.core.simulate',
    'ptychopinn_plugin.core.metrics',
    'ptychopinn_plugin.core.translate',
    'ptychopinn_plugin.core.weights',
)


def test_importing_the_package_and_core_loads_no_framework() -> None:
    code = (
        'import importlib, sys\n'
        f'for name in {CORE_MODULES!r}:\n'
        '    importlib.import_module(name)\n'
        f'loaded = sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)\n'
        'print(",".join(loaded))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == '', f'frameworks loaded on import: {result.stdout.strip()}'

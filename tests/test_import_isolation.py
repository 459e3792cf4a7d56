"""Importing the package and every core or solver module loads no framework; the core loads no
engine, no Ptychodus and nothing of the solver above it.

The module list is discovered, not written by hand: a new core module is covered the day it is
added.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import ptychopinn_plugin.core
import ptychopinn_plugin.solver

FRAMEWORKS = ('torch', 'tensorflow', 'keras', 'lightning', 'jax')
"""Never loaded by importing the package, its configuration, the engine chooser or the core."""
CORE_FORBIDDEN = (
    'ptychopinn_plugin.engines',
    'ptychodus',
    'ptychopinn_plugin.ptychodus_io',
    'ptychopinn_plugin.solver',
    'ptychopinn_plugin.inference',
    'ptychopinn_plugin.workflow',
)
"""Never loaded by importing only the core: it sits below the engines and the iterative solver
(which uses the core, never the reverse), and Ptychodus's objects and files are read and written
in ``ptychodus_io``."""
SOLVER_FORBIDDEN = ('ptychopinn_plugin.engines', 'ptychodus', 'ptychopinn_plugin.ptychodus_io')
"""Never loaded by importing the solver: it works on NumPy arrays from the core."""

CORE_MODULES = tuple(
    sorted(
        info.name
        for info in pkgutil.walk_packages(
            ptychopinn_plugin.core.__path__, prefix='ptychopinn_plugin.core.'
        )
    )
)
SOLVER_MODULES = tuple(
    sorted(
        info.name
        for info in pkgutil.walk_packages(
            ptychopinn_plugin.solver.__path__, prefix='ptychopinn_plugin.solver.'
        )
    )
)
TOP_MODULES = ('ptychopinn_plugin', 'ptychopinn_plugin.config', 'ptychopinn_plugin.engines')


def _loaded_after_import(modules: tuple[str, ...], watched: tuple[str, ...]) -> list[str]:
    code = (
        'import importlib, sys\n'
        f'for name in {modules!r}:\n'
        '    importlib.import_module(name)\n'
        f'print(",".join(sorted(m for m in {watched!r} if m in sys.modules)))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120, check=True
    )
    return [name for name in result.stdout.strip().split(',') if name]


def test_the_core_module_list_is_discovered() -> None:
    assert 'ptychopinn_plugin.core.protocol' in CORE_MODULES
    assert 'ptychopinn_plugin.core.contract' in CORE_MODULES
    assert 'ptychopinn_plugin.solver.overlap' in SOLVER_MODULES


@pytest.mark.e2e
def test_importing_the_package_core_and_solver_loads_no_framework() -> None:
    loaded = _loaded_after_import(TOP_MODULES + CORE_MODULES + SOLVER_MODULES, FRAMEWORKS)
    assert loaded == [], f'frameworks loaded on import: {loaded}'


@pytest.mark.e2e
def test_importing_the_core_loads_no_engine_and_no_ptychodus() -> None:
    loaded = _loaded_after_import(CORE_MODULES, CORE_FORBIDDEN)
    assert loaded == [], f'the core imported {loaded}'


@pytest.mark.e2e
def test_importing_the_solver_loads_no_engine_and_no_ptychodus() -> None:
    loaded = _loaded_after_import(SOLVER_MODULES, SOLVER_FORBIDDEN)
    assert loaded == [], f'the solver imported {loaded}'

"""Fixtures of the robustness tests: a small simulated scan, untrained archives, a library.

Everything is real: the scan is simulated with Ptychodus's own forward model, archives hold
canonical initial weights (no framework needed to write them), and the library is the one
Ptychodus builds. The helpers live in ``robustness_helpers.py`` (imported by name).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'integration'))

from robustness_helpers import make_small_scan

from ptychopinn_plugin.ptychodus_io.simulation import WorkflowScan


@pytest.fixture(scope='session')
def small_scan() -> WorkflowScan:
    """36 points at N = 32 simulated by Ptychodus (a second or two)."""
    return make_small_scan(seed=0)

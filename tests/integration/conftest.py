"""Fixtures of the integration tests, which drive the real, installed Ptychodus.

The subprocess tests run the ``ptychodus`` console script, which imports the *installed* copy of
this package; they request ``installed_copy`` (``tests/conftest.py``), which fails them when the
installed copy differs from the source tree.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ptychodus_workflow import WorkflowScan, make_workflow_scan


@pytest.fixture(scope='session')
def workflow_scan() -> WorkflowScan:
    """One simulated scan shared by the integration tests (Ptychodus's own simulator)."""
    return make_workflow_scan(seed=0)

"""Helpers of the integration tests: the scan they simulate and a framework blocker.

Workflow directories and batch runs come from the package (``ptychodus_io.simulation`` and
``ptychodus_io.batch``, shared with the demo): a scan simulated with Ptychodus's own forward model,
written with its own writers, run through the real ``ptychodus`` console script of this virtual
environment.
"""

from __future__ import annotations

from ptychopinn_plugin.ptychodus_io.batch import BatchRun, run_ptychodus
from ptychopinn_plugin.ptychodus_io.simulation import ScanSpec, WorkflowScan, write_workflow_scan
from ptychopinn_plugin.ptychodus_io.simulation import (
    make_workflow_scan as _make_workflow_scan,
)
from ptychopinn_plugin.ptychodus_io.workflow_dir import write_settings

__all__ = [
    'PATTERN_SIZE_PX',
    'BatchRun',
    'WorkflowScan',
    'block_frameworks_prelude',
    'make_workflow_scan',
    'run_ptychodus',
    'write_settings',
    'write_workflow_scan',
]

SCAN = ScanSpec(pattern_size_px=32, step_px=6.0, columns=12, rows=12, num_photons=1e5)
"""144 points at N = 32, 1e5 counts per pattern, 60 % overlap: seconds per epoch on two cores."""
PATTERN_SIZE_PX = SCAN.pattern_size_px


def make_workflow_scan(seed: int = 0) -> WorkflowScan:
    return _make_workflow_scan(seed, SCAN)


def block_frameworks_prelude(*names: str) -> str:
    """A ``sitecustomize`` under which the given top-level packages look uninstalled.

    ``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError`` and
    ``importlib.util.find_spec(name)`` return None, exactly as for a package that is not installed.
    """
    return 'import sys\n' + ''.join(f'sys.modules[{name!r}] = None\n' for name in names)

"""Fixtures of the integration tests, which drive the real, installed Ptychodus.

The subprocess tests run the ``ptychodus`` console script, which imports the *installed* copy of
this package (a regular, non-editable install: Ptychodus discovers the bridge module only there).
``installed_copy`` fails those tests when the installed copy differs from the source tree, with the
command that fixes it, instead of silently testing stale code.
"""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ptychodus_workflow import WorkflowScan, make_workflow_scan  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_PACKAGE = REPO_ROOT / 'ptychopinn_plugin'
SOURCE_BRIDGE = REPO_ROOT / 'bridge' / 'ptychodus' / 'plugins' / 'ptychopinn_plugin_bridge.py'


def _site_packages() -> Path:
    import ptychodus

    return Path(ptychodus.__file__).resolve().parent.parent


def stale_installed_files() -> list[str]:
    """Source files whose installed copy is missing or different."""
    site = _site_packages()
    pairs = [(SOURCE_BRIDGE, site / 'ptychodus' / 'plugins' / SOURCE_BRIDGE.name)]
    pairs += [
        (source, site / source.relative_to(REPO_ROOT))
        for source in SOURCE_PACKAGE.rglob('*.py')
        if '__pycache__' not in source.parts
    ]
    return [
        str(source.relative_to(REPO_ROOT))
        for source, installed in pairs
        if not installed.is_file() or not filecmp.cmp(source, installed, shallow=False)
    ]


@pytest.fixture(scope='session')
def installed_copy() -> Path:
    """The site-packages directory, after checking that the installed package is current."""
    stale = stale_installed_files()
    if stale:
        pytest.fail(
            'the installed ptychopinn-plugin differs from the source tree in '
            f'{", ".join(stale[:5])}{" ..." if len(stale) > 5 else ""}; reinstall it as a regular '
            'wheel (make install, or: python -m pip install --no-deps --force-reinstall .)'
        )
    return _site_packages()


@pytest.fixture(scope='session')
def workflow_scan() -> WorkflowScan:
    """One simulated scan shared by the integration tests (Ptychodus's own simulator)."""
    return make_workflow_scan(seed=0)

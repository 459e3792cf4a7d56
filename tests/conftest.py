"""Shared test fixtures and paths: the backends, the installed-copy check, artifacts.

Test modules import shared constants from ``suite_helpers.py`` (``BACKENDS``); this conftest
holds the fixtures every folder can request: ``backend`` (each engine in turn) and
``installed_copy`` (the tests that run the installed ``ptychodus`` console script).
"""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

import numpy as np
import pytest
from suite_helpers import BACKENDS

from ptychopinn_plugin.config import Backend

# Precision = auto (the default) resolves to bf16-mixed on hardware that computes bfloat16 natively;
# the suite's figures and tolerances are for float32 on every machine, so auto is pinned here (and
# in the Ptychodus processes the tests start). tests/engines/test_precision.py unpins it.
os.environ['PTYCHOPINN_AUTO_PRECISION'] = '32-true'

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_PACKAGE = REPO_ROOT / 'ptychopinn_plugin'
SOURCE_BRIDGE = REPO_ROOT / 'bridge' / 'ptychodus' / 'plugins' / 'ptychopinn_plugin_bridge.py'
SHARED_DATA = REPO_ROOT.parent / 'shared' / 'data'
ARTIFACTS = REPO_ROOT / 'test-artifacts'


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope='session')
def artifact_dir() -> Path:
    """Folder for files a test leaves for people to look at (screenshots, figures)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(params=BACKENDS, ids=[b.value for b in BACKENDS])
def backend(request) -> Backend:
    """Each engine in turn; a backend that is not installed fails, it is never skipped."""
    return request.param


def site_packages() -> Path:
    """The site-packages directory Ptychodus (and the installed copy of this package) live in."""
    import ptychodus

    return Path(ptychodus.__file__).resolve().parent.parent


def stale_installed_files() -> list[str]:
    """Source files whose installed copy is missing or different."""
    site = site_packages()
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
    """The site-packages directory, after checking that the installed package is current.

    The ``ptychodus`` console script imports the *installed* copy of this package (a regular,
    non-editable install: Ptychodus discovers the bridge module only there). Tests that run it
    request this fixture, which fails them when the installed copy differs from the source tree,
    with the command that fixes it, instead of silently testing stale code.
    """
    stale = stale_installed_files()
    if stale:
        pytest.fail(
            'the installed ptychopinn-plugin differs from the source tree in '
            f'{", ".join(stale[:5])}{" ..." if len(stale) > 5 else ""}; reinstall it as a regular '
            'wheel (make install, or: python -m pip install --no-deps --force-reinstall .)'
        )
    return site_packages()

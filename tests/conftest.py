"""Shared test fixtures and paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
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

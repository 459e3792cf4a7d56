"""Fixtures of the example and shipped-model tests."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / 'examples'
MODELS = REPO_ROOT / 'models'


@pytest.fixture(scope='session')
def model_index() -> dict:
    """``models/index.json``: every shipped model, its sha256, measured quality and thresholds."""
    return json.loads((MODELS / 'index.json').read_text())


@pytest.fixture
def example():
    """Load ``examples/NAME.py`` in this process and return its ``main``."""

    def load(name: str):
        return runpy.run_path(str(EXAMPLES / f'{name}.py'), run_name=f'example_{name}')['main']

    return load

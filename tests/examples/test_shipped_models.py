"""The pretrained models in ``models/``: intact, documented, and as good as their cards say.

Each shipped model reconstructs the held-out test scan of its model card (the realistic benchmark's
256-point test scan that ``benchmarks/make_models.py`` scored it on) under both backends, with the
default inference settings and with the network alone, above the thresholds the card states (the
measured score minus a margin, from ``models/index.json``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from ptychopinn_plugin.core.archive import load_archive

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS = REPO_ROOT / 'models'
INDEX = json.loads((MODELS / 'index.json').read_text())
MAX_ARCHIVE_BYTES = 4 * 1024**2
"""Shipped archives stay small enough for a source repository (a few MB)."""


@functools.cache
def _make_models():
    """``benchmarks/make_models.py`` as a module (the held-out scan and the scoring live there)."""
    spec = importlib.util.spec_from_file_location(
        'make_models', REPO_ROOT / 'benchmarks' / 'make_models.py'
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_model_of_the_script_is_shipped_with_a_card() -> None:
    names = {spec.name for spec in _make_models().MODELS}
    assert set(INDEX) == names
    assert {p.stem for p in MODELS.glob('*.zip')} == names
    for name in names:
        card = (MODELS / f'{name}.md').read_text()
        entry = INDEX[name]
        assert entry['sha256'] in card
        assert f'{entry["bytes"]:,} bytes' in card
        assert _make_models().threshold_text(entry['test_thresholds']) in ' '.join(card.split())


@pytest.mark.parametrize('name', sorted(INDEX))
def test_shipped_archive_is_small_intact_and_loads(name: str) -> None:
    path = MODELS / INDEX[name]['file']
    payload = path.read_bytes()
    assert len(payload) == INDEX[name]['bytes'] <= MAX_ARCHIVE_BYTES
    assert hashlib.sha256(payload).hexdigest() == INDEX[name]['sha256']
    archive = load_archive(path)
    spec = INDEX[name]['spec']
    assert archive.trained_backend == spec['backend']
    assert archive.config.model.gridsize == spec['gridsize']
    assert archive.config.model.pattern_size_px == 64


@pytest.fixture(scope='module')
def held_out():
    module = _make_models()
    return module, module.held_out_scan()


def _model_backend_pairs() -> list:
    """Every model on both backends and both inference settings; the default run keeps the
    cross-backend half (each model on the backend that did not train it: both backends and both
    gridsizes still run), the rest is ``slow``."""
    pairs = []
    for name in sorted(INDEX):
        for backend in ('pytorch', 'tensorflow'):
            for setting in sorted(INDEX[name]['test_thresholds']):
                same = backend == INDEX[name]['spec']['backend']
                marks = [pytest.mark.slow] if same else []
                pairs.append(
                    pytest.param(
                        name, backend, setting, marks=marks, id=f'{name}-on-{backend}-{setting}'
                    )
                )
    return pairs


@pytest.mark.parametrize(('name', 'backend', 'setting'), _model_backend_pairs())
def test_shipped_model_reconstructs_its_held_out_scan_above_the_card_threshold(
    held_out, name: str, backend: str, setting: str
) -> None:
    module, scan = held_out
    archive = load_archive(MODELS / INDEX[name]['file'])
    scores = module.score_archive(archive, backend, scan, setting)
    for key, threshold in INDEX[name]['test_thresholds'][setting].items():
        assert scores[key] >= threshold, (
            f'{name} on {backend} ({setting}): {key} {scores[key]} < {threshold}'
        )

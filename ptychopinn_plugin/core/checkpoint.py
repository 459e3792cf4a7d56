"""Checkpoints: resuming a training that was killed or preempted from its last finished epoch.

A training with a checkpoint path writes, after every epoch, a checkpoint archive
(``core/archive.py`` with a :class:`~.archive.TrainingState`): the weights of that epoch, Adam's
moments, the per-epoch history and a fingerprint of what it trains on. Each write replaces the
previous checkpoint atomically, so a kill at any moment leaves the last finished epoch whole. The
checkpoint of ``model.zip`` is ``model.checkpoint.zip`` beside it (:func:`checkpoint_path`); it is
removed once the model itself is written.

Resuming checks the fingerprint (:func:`resume_point`): the same data (a SHA-256 over the
patterns, positions, probe and any ground truth) and the same model and training settings, except
``num_epochs``, which may grow. The execution settings (backend, device, precision) may change:
the moments are in canonical names and layout, as the weights are. The resumed epochs then visit
the groups in the order of ``core.schedule.epoch_order`` and follow the learning-rate schedule as
an uninterrupted training would.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import PluginConfig
from ..errors import ConfigurationError
from .archive import Archive
from .contract import TrainingData
from .protocol import EpochReport, ResumePoint
from .schedule import monitored_loss

__all__ = [
    'CHECKPOINT_SUFFIX',
    'checkpoint_path',
    'discard_checkpoint',
    'fingerprint',
    'history_of',
    'resume_point',
]

CHECKPOINT_SUFFIX = '.checkpoint.zip'
_FREE_TRAINING_SETTINGS = ('num_epochs',)
"""Training settings a resumed training may change (more epochs continue the same schedule)."""


def checkpoint_path(model_path: Path | str) -> Path:
    """Where the training of ``model_path`` keeps its checkpoint: ``<stem>.checkpoint.zip``."""
    model_path = Path(model_path)
    return model_path.with_name(model_path.stem + CHECKPOINT_SUFFIX)


def discard_checkpoint(path: Path | str) -> None:
    """Remove a checkpoint once the finished model is written (no error when there is none)."""
    Path(path).unlink(missing_ok=True)


def _data_digest(datasets: Sequence[TrainingData]) -> str:
    digest = hashlib.sha256()
    for data in datasets:
        arrays = [data.diffraction_amplitude, data.positions_px, data.probe]
        if data.ground_truth_patches is not None:
            arrays.append(data.ground_truth_patches)
        for array in arrays:
            array = np.ascontiguousarray(array)
            digest.update(f'{array.dtype.str}{array.shape}'.encode())
            digest.update(array.data)
    return digest.hexdigest()


def _settings(config: PluginConfig) -> dict[str, Any]:
    settings = json.loads(config.to_json())
    for name in _FREE_TRAINING_SETTINGS:
        settings['training'].pop(name, None)
    return {'model': settings['model'], 'training': settings['training']}


def fingerprint(datasets: Sequence[TrainingData], config: PluginConfig) -> dict[str, Any]:
    """What a training runs on: a checksum of its data and its model and training settings."""
    return {
        'data_sha256': _data_digest(datasets),
        'num_patterns': int(sum(d.num_patterns for d in datasets)),
        'settings': _settings(config),
    }


def history_of(checkpoint: Archive) -> list[EpochReport]:
    """The per-epoch reports a checkpoint's training had made."""
    state = checkpoint.training_state
    return [] if state is None else [EpochReport(**epoch) for epoch in state.history]


def resume_point(
    checkpoint: Archive, expected: dict[str, Any], path: Path | str, num_epochs: int
) -> ResumePoint:
    """Where to continue ``checkpoint``'s training, after checking that it trained on what
    ``expected`` (:func:`fingerprint`) describes.

    Raises
    ------
    ConfigurationError
        When ``checkpoint`` is not a checkpoint, was trained on other data or with other settings
        (each difference named), or has more epochs than ``num_epochs``; the message says how to
        start over.
    """
    state = checkpoint.training_state
    fix = f'delete {path} to start the training over, or train into another output directory'
    if state is None:
        raise ConfigurationError(f'{path} is a model archive, not a training checkpoint; {fix}')
    found = state.fingerprint
    if found.get('data_sha256') != expected['data_sha256']:
        raise ConfigurationError(
            f'the checkpoint {path} was trained on other data ({found.get("num_patterns")} '
            f'patterns, checksum {str(found.get("data_sha256"))[:12]}) than these '
            f'({expected["num_patterns"]} patterns, checksum {expected["data_sha256"][:12]}); '
            f'resume with the same input files, or {fix}'
        )
    differences = _differences(found.get('settings', {}), expected['settings'])
    if differences:
        raise ConfigurationError(
            f'the checkpoint {path} was trained with other settings: {"; ".join(differences)}; '
            f'resume with the settings it was trained with, or {fix}'
        )
    history = history_of(checkpoint)
    if len(history) > num_epochs:
        raise ConfigurationError(
            f'the checkpoint {path} has trained {len(history)} epochs, more than the {num_epochs} '
            f'asked for; ask for at least {len(history)} epochs, or {fix}'
        )
    losses = tuple(monitored_loss(r.training_loss, r.validation_loss) for r in history)
    return ResumePoint(len(history), losses, state.optimizer)


def _differences(found: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    differences = []
    for section in sorted(set(found) | set(expected)):
        before, now = found.get(section, {}), expected.get(section, {})
        for name in sorted(set(before) | set(now)):
            if before.get(name) != now.get(name):
                differences.append(
                    f'{section}.{name} = {before.get(name)!r} in the checkpoint, '
                    f'{now.get(name)!r} now'
                )
    return differences

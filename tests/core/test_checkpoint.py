"""Checkpoints (``core/checkpoint.py``, ``TrainingRun(checkpoint=)``, ``resume_from``) in process.

The real kill-and-resume runs are ``tests/cli/test_cli_resume.py`` (the command) and
``tests/integration/test_batch.py`` (``ptychodus -b train``); here: what a checkpoint holds, that
it is read as strictly as a model, that other data or settings are refused with the difference
named, and that a checkpoint of one backend resumes under the other.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from ptychopinn_plugin.config import ModelConfig, PluginConfig
from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.core.archive import load_archive
from ptychopinn_plugin.core.checkpoint import checkpoint_path, fingerprint
from ptychopinn_plugin.errors import ArchiveError, ConfigurationError
from ptychopinn_plugin.evidence.parity import OBJECT_RTOL
from ptychopinn_plugin.workflow import TrainingRun

NUM_EPOCHS = 4


@pytest.fixture(scope='module')
def scan():
    return simulate.make_scan('smooth', num_patterns=48, pattern_size_px=32).data


def _config(backend: str = 'pytorch', **training) -> PluginConfig:
    return PluginConfig(
        model=ModelConfig(pattern_size_px=32, n_filters_scale=1),
        training={
            'num_epochs': NUM_EPOCHS,
            'batch_size': 8,
            'probe_refinement': 'off',
            'plateau_patience': 1,
            **training,
        },
        execution={'backend': backend, 'device': 'cpu'},
    )


def _train(scan, config, *, checkpoint=None, stop_after=None, resume=None):
    run = TrainingRun([scan], config, preflight=False, checkpoint=checkpoint)
    try:
        if resume is not None:
            run.resume_from(load_archive(resume), resume)
        for report in run.epochs():
            if report.epoch == stop_after:
                break
        return run.archive()
    finally:
        run.release()


def test_checkpoint_path_sits_beside_the_model(tmp_path) -> None:
    assert checkpoint_path(tmp_path / 'model.zip') == tmp_path / 'model.checkpoint.zip'


def test_a_checkpoint_holds_the_last_epoch_and_adams_state(scan, tmp_path) -> None:
    path = tmp_path / 'model.checkpoint.zip'
    archive = _train(scan, _config(), checkpoint=path, stop_after=2)
    checkpoint = load_archive(path)
    state = checkpoint.training_state
    assert state is not None
    assert [epoch['epoch'] for epoch in state.history] == [1, 2]
    assert state.optimizer.step == 2 * 6  # 2 epochs of ceil(46 training groups / 8 per batch)
    assert set(state.optimizer.first_moments) == set(state.optimizer.second_moments)
    assert 'probe.real' not in state.optimizer.first_moments  # the probe does not train
    assert state.fingerprint == fingerprint([scan], _config())
    for name, value in archive.weights.items():
        np.testing.assert_array_equal(checkpoint.weights[name], value)
    with zipfile.ZipFile(path) as zf:  # stored: a checkpoint is written every epoch
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}


def test_a_corrupt_training_state_is_refused(scan, tmp_path) -> None:
    path = tmp_path / 'model.checkpoint.zip'
    _train(scan, _config(), checkpoint=path, stop_after=1)
    with zipfile.ZipFile(path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    manifest = json.loads(members['manifest.json'])
    manifest['training_state']['optimizer_step'] = -1
    edited = tmp_path / 'edited.zip'
    with zipfile.ZipFile(edited, 'w') as zf:
        for name, payload in members.items():
            zf.writestr(name, json.dumps(manifest) if name == 'manifest.json' else payload)
    with pytest.raises(ArchiveError, match='training state of this checkpoint is incomplete'):
        load_archive(edited)
    with zipfile.ZipFile(edited, 'w') as zf:
        for name, payload in members.items():
            zf.writestr(name, payload[:-1] + b'x' if name == 'optimizer.npz' else payload)
    with pytest.raises(ArchiveError, match=r'optimizer\.npz does not match its checksum'):
        load_archive(edited)


def test_other_data_or_settings_are_refused_naming_the_difference(scan, tmp_path) -> None:
    path = tmp_path / 'model.checkpoint.zip'
    _train(scan, _config(), checkpoint=path, stop_after=2)
    counts = scan.diffraction_amplitude.copy()
    counts[0, 0, 0] += 1.0
    with pytest.raises(ConfigurationError, match='was trained on other data'):
        _train(replace(scan, diffraction_amplitude=counts), _config(), resume=path)
    with pytest.raises(ConfigurationError, match=r'training.batch_size = 8 in the checkpoint, 4'):
        _train(scan, _config(batch_size=4), resume=path)
    with pytest.raises(ConfigurationError, match='has trained 2 epochs, more than the 1'):
        _train(scan, _config(num_epochs=1), resume=path)


def test_more_epochs_may_be_asked_and_a_model_is_no_checkpoint(scan, tmp_path) -> None:
    path = tmp_path / 'model.checkpoint.zip'
    _train(scan, _config(num_epochs=2), checkpoint=path)
    longer = _train(scan, _config(num_epochs=3), resume=path)
    assert longer.training_summary['epochs_completed'] == 3
    assert longer.training_summary['resumed_from']['epochs_completed'] == 2
    from ptychopinn_plugin.core.archive import save_archive

    model = save_archive(tmp_path / 'model.zip', longer)
    with pytest.raises(ConfigurationError, match='is a model archive, not a training checkpoint'):
        _train(scan, _config(num_epochs=3), resume=model)


@pytest.mark.parametrize(
    ('first', 'second'), [('pytorch', 'tensorflow'), ('tensorflow', 'pytorch')]
)
def test_a_checkpoint_resumes_under_the_other_backend(scan, tmp_path, first, second) -> None:
    path = tmp_path / 'model.checkpoint.zip'
    _train(scan, _config(first), checkpoint=path, stop_after=2)
    resumed = _train(scan, _config(second), resume=path)
    reference = _train(scan, _config(second))
    losses = resumed.training_summary['training_loss']
    expected = reference.training_summary['training_loss']
    assert len(losses) == NUM_EPOCHS
    # the two engines train alike to the parity tolerance (docs/results.md, parity)
    np.testing.assert_allclose(losses[2:], expected[2:], rtol=OBJECT_RTOL)
    assert (
        resumed.training_summary['final_learning_rate']
        == (reference.training_summary['final_learning_rate'])
    )

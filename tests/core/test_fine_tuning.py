"""Fine-tuning at reconstruction (``workflow.FineTuning``, ``InferenceConfig.fine_tune_epochs``):
PINN epochs on the scan being reconstructed, the loaded model left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn_plugin.config import (
    ExecutionConfig,
    InferenceConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
)
from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.core.weights import PHYSICS_WEIGHTS
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.workflow import TrainingRun, reconstruct

N = 32


@pytest.fixture(scope='module')
def scans():
    train = simulate.make_scan('camera', num_patterns=64, pattern_size_px=N, seed=3)
    test = simulate.make_scan('camera', num_patterns=64, pattern_size_px=N, seed=4)
    return train, test


def _archive(data, mode: Mode = Mode.PINN):
    config = PluginConfig(
        model=ModelConfig(pattern_size_px=N, n_filters_scale=1, mode=mode),
        training=TrainingConfig(num_epochs=1, batch_size=16),
        execution=ExecutionConfig(backend='pytorch', device='cpu'),
    )
    run = TrainingRun([data], config)
    try:
        list(run.epochs())
        return run.archive()
    finally:
        run.release()


def _reconstruct(archive, scan, inference: InferenceConfig) -> list:
    return list(
        reconstruct(
            archive,
            scan.data,
            execution=archive.config.execution,
            inference=inference,
            object_shape=scan.object_.shape,
        )
    )


def test_fine_tuning_trains_on_the_scan_first_and_leaves_the_model_unchanged(scans) -> None:
    train, test = scans
    archive = _archive(train.data)
    before = {name: np.array(value, copy=True) for name, value in archive.weights.items()}
    steps = _reconstruct(archive, test, InferenceConfig(fine_tune_epochs=2, refine_iterations=2))
    tuning = [s for s in steps if s.num_done == 0]
    assert [s.num_tuned for s in tuning] == [1, 2]  # one step per epoch, before any group
    assert all(s.object_ is None for s in tuning)
    final = steps[-1]
    assert final.finished
    assert final.num_steps == 2 + test.data.num_patterns + 2
    assert final.num_steps_done == final.num_steps
    tuned = final.tuned_archive
    assert tuned is not None
    assert tuned.training_summary['epochs_completed'] == 2
    assert 'fine_tuned_on' in tuned.training_summary
    network = [k for k in archive.weights if k not in PHYSICS_WEIGHTS]
    assert any(not np.array_equal(tuned.weights[k], archive.weights[k]) for k in network)
    for name, value in archive.weights.items():  # the loaded model is untouched
        np.testing.assert_array_equal(value, before[name])
    without = _reconstruct(archive, test, InferenceConfig(refine_iterations=2))[-1]
    assert without.tuned_archive is None
    assert without.num_steps == test.data.num_patterns + 2


def test_a_supervised_model_cannot_be_fine_tuned_without_ground_truth(scans) -> None:
    train, test = scans
    archive = _archive(train.data, Mode.SUPERVISED)
    with pytest.raises(ConfigurationError, match='FineTuneEpochs'):
        _reconstruct(archive, test, InferenceConfig(fine_tune_epochs=1))


def test_the_reconstruction_uses_the_fine_tuned_network(scans) -> None:
    """Network alone (no refinement): the object after fine-tuning is the tuned network's object,
    not the loaded one's."""
    train, test = scans
    archive = _archive(train.data)
    network_alone = InferenceConfig(refine_iterations=0)
    tuned_run = _reconstruct(
        archive, test, InferenceConfig(fine_tune_epochs=1, refine_iterations=0)
    )
    tuned = tuned_run[-1].tuned_archive
    assert tuned is not None
    loaded_object = _reconstruct(archive, test, network_alone)[-1].object_
    tuned_object = _reconstruct(tuned, test, network_alone)[-1].object_
    np.testing.assert_allclose(tuned_run[-1].object_, tuned_object, rtol=1e-5, atol=1e-6)
    assert np.max(np.abs(tuned_object - loaded_object)) > 1e-3

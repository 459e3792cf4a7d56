"""Stopping a training, and what comes after it in the same process, on both backends.

Ptychodus cancels a training by no longer iterating (closing) the generator the reconstructor
returned; ``workflow.TrainingRun.epochs`` is that generator's source. Stopping must return within
the epoch in progress, leave the engine holding the weights of the last finished epoch (the model a
new engine builds from ``archive()`` predicts the same), and leave nothing behind: no worker thread,
no network kept alive. A later training or reconstruction in the same process must not see any
trace of a cancelled or failed one. Sizes are tiny (N = 32, 16 patterns, n_filters_scale 1).
"""

from __future__ import annotations

import gc
import threading
import time
import weakref

import numpy as np
import pytest

from ptychopinn_plugin.config import (
    Backend,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
)
from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.core.dataset import group_inputs
from ptychopinn_plugin.core.grouping import group_scan_points
from ptychopinn_plugin.core.physics import dataset_normalization
from ptychopinn_plugin.workflow import TrainingRun, build_engine, reconstruct

MODEL = ModelConfig(pattern_size_px=32, n_filters_scale=1)
CANCEL_SLACK_S = 3.0
"""Closing the epoch iterator may take the rest of the epoch in progress plus the framework's
teardown (Lightning ends its fit loop, joins the worker thread): well under 3 s at this size even
on a loaded two-core machine. A cancellation that ran on to the next epochs would take several."""
PREDICTION_ATOL = 1e-5
"""The same weights in two engines of one backend: identical but for float32 accumulation order."""
AMPLITUDE_SPREAD_MIN = 1e-3
"""Peak-to-peak amplitude of the cancelled (one-epoch) network's object over the covered pixels,
relative to its mean: a constant network output gives float32 rounding (below 1e-6)."""
DETERMINISM_RTOL = 1e-5
"""Two identical CPU trainings in one process: identical up to reordered float32 reductions
(the same tolerance as the engine contract's determinism test)."""


@pytest.fixture(scope='module')
def scan():
    return simulate.make_scan('smooth', num_patterns=16, pattern_size_px=32, seed=3)


def _config(backend: Backend, num_epochs: int) -> PluginConfig:
    return PluginConfig(
        model=MODEL,
        training=TrainingConfig(num_epochs=num_epochs, batch_size=8, validation_fraction=0.2),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )


def _probe_inputs(scan) -> tuple[np.ndarray, np.ndarray]:
    groups = group_scan_points(scan.data.positions_px, 1)
    inputs = group_inputs(scan.data, groups, dataset_normalization(scan.data.diffraction_amplitude))
    return inputs[:8], groups.relative_offsets_px[:8].astype(np.float32)


def _fit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith('ptychopinn-') and t.is_alive()]


def _train(scan, backend: Backend, num_epochs: int) -> tuple[list[float], dict[str, np.ndarray]]:
    run = TrainingRun([scan.data], _config(backend, num_epochs))
    try:
        losses = [report.training_loss for report in run.epochs()]
        return losses, run.archive().weights
    finally:
        run.release()


def test_stopping_returns_within_the_epoch_and_leaves_a_consistent_model(scan, backend) -> None:
    run = TrainingRun([scan.data], _config(backend, num_epochs=50))
    epochs = run.epochs()
    first = next(epochs)
    start = time.perf_counter()
    epochs.close()  # what Ptychodus does when the user presses Stop
    closing_s = time.perf_counter() - start
    assert closing_s < first.seconds + CANCEL_SLACK_S, f'{closing_s:.2f} s to stop'
    assert [report.epoch for report in run.history] == [1]
    assert _fit_threads() == []

    # the engine holds the weights of the finished epoch: a new engine from archive() agrees
    archive = run.archive()
    assert archive.training_summary['epochs_completed'] == 1
    inputs, offsets = _probe_inputs(scan)
    from_run = run.engine.predict(inputs, offsets)
    rebuilt = build_engine(archive, run.config.execution)
    try:
        np.testing.assert_allclose(
            rebuilt.predict(inputs, offsets), from_run, rtol=0, atol=PREDICTION_ATOL
        )
    finally:
        rebuilt.release()

    # releasing frees the framework model holding every weight
    network = weakref.ref(run.engine._network)
    run.release()
    del run, epochs, rebuilt
    gc.collect()
    assert network() is None, 'the network outlived the cancelled, released training run'

    # and the cancelled model reconstructs a scan: the network's own object (no refinement), which
    # is what the cancelled model contributes: finite, and its amplitude varies over the covered
    # pixels (a constant network output stitches to a constant amplitude; the ramp fit after the
    # stitching changes only the phase)
    steps = list(
        reconstruct(
            archive,
            scan.data,
            execution=ExecutionConfig(backend=backend, device='cpu'),
            inference=InferenceConfig(batch_size=8, refine_iterations=0),
            object_shape=scan.object_.shape,
        )
    )
    assert steps[-1].finished
    assert steps[-1].num_done == scan.data.num_patterns
    covered = steps[-1].weight > 0
    assert covered.any()
    assert np.all(np.isfinite(steps[-1].object_))
    amplitude = np.abs(steps[-1].object_[covered])
    assert np.ptp(amplitude) > AMPLITUDE_SPREAD_MIN * np.mean(amplitude), np.ptp(amplitude)


def test_training_after_a_cancelled_and_a_failed_one_is_unaffected(scan, backend) -> None:
    reference_losses, reference = _train(scan, backend, num_epochs=1)

    cancelled = TrainingRun([scan.data], _config(backend, num_epochs=50))
    epochs = cancelled.epochs()
    next(epochs)
    epochs.close()
    cancelled.release()

    failed = TrainingRun([scan.data], _config(backend, num_epochs=50))
    epochs = failed.epochs()
    next(epochs)
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C in the consumer while an epoch is reported
        epochs.throw(KeyboardInterrupt)
    failed.release()
    assert _fit_threads() == []

    losses, weights = _train(scan, backend, num_epochs=1)
    np.testing.assert_allclose(losses, reference_losses, rtol=DETERMINISM_RTOL)
    for name, value in reference.items():
        np.testing.assert_allclose(weights[name], value, rtol=DETERMINISM_RTOL, atol=1e-7)

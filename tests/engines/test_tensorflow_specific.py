"""TensorFlow engine: what the shared engine contract cannot see from outside.

The Keras backend guard, the device errors, the raw network patches against the oracle's canvas,
the loss definitions against ``core/physics.py``, tracked physics variables, mixed precision, and
coexistence with PyTorch in one process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from ptychopinn_plugin.config import ExecutionConfig, Mode, ModelConfig, TrainingConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.dataset import prepare_training
from ptychopinn_plugin.core.weights import (
    LOG_INTENSITY_SCALE,
    PROBE_IMAG,
    PROBE_REAL,
    initial_weights,
)
from ptychopinn_plugin.errors import BackendUnavailableError, DeviceUnavailableError

REPO_ROOT = Path(__file__).resolve().parents[2]
FORWARD_RTOL = 1e-5
"""float32 physics vs the float64 oracle, relative to the peak (float32 FFT rounding)."""
LOSS_RTOL = 1e-5
"""float32 loss vs the float64 oracle: a mean of float32 terms."""
MIXED_ATOL = 0.1
"""bfloat16 network vs float32: 8 mantissa bits through a dozen layers."""
SMALL = dict(pattern_size_px=32, n_filters_scale=1)


def _engine(model: ModelConfig, *, seed: int = 0, precision: str = '32-true', log_scale=3.0):
    from ptychopinn_plugin.engines.tensorflow_engine.engine import TensorFlowEngine

    probe = physics.normalize_probe(simulate.disk_probe(model.pattern_size_px), model.probe_scale)
    weights = initial_weights(model, probe, log_scale, seed)
    execution = ExecutionConfig(backend='tensorflow', device='cpu', precision=precision)
    return TensorFlowEngine(model, execution, weights), weights


def _inputs(model: ModelConfig, num_groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, c = model.pattern_size_px, model.num_channels
    inputs = rng.gamma(2.0, 0.5, size=(num_groups, c, n, n)).astype(np.float32)
    offsets = rng.uniform(-3.5, 3.5, size=(num_groups, c, 2)).astype(np.float32)
    return inputs, offsets - offsets.mean(axis=1, keepdims=True)


def _raw_patches(engine, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network's amplitude and phase (B, C, N, N), before any canvas."""
    amplitude, phase = engine._network.generate(inputs)
    return np.asarray(amplitude), np.asarray(phase)


@pytest.mark.parametrize('probe_big', [True, False])
def test_canvas_patches_and_amplitudes_match_the_oracle_from_raw_patches(probe_big) -> None:
    model = ModelConfig(**SMALL, gridsize=2, num_neighbors=4, probe_big=probe_big)
    engine, weights = _engine(model)
    inputs, offsets = _inputs(model, 5)
    amplitude, phase = _raw_patches(engine, inputs)
    raw = amplitude * np.exp(1j * phase)
    support = physics.object_support_mask(32, model.pad_object, model.probe_big)
    canvas_px = physics.canvas_size_px(32, float(np.max(np.abs(offsets))))
    canvas = physics.merge_on_canvas(raw, offsets, support, canvas_px)
    expected_patches = physics.extract_from_canvas(canvas, offsets, 32)
    np.testing.assert_allclose(engine.predict(inputs, offsets), expected_patches, atol=1e-5)
    probe = weights[PROBE_REAL] + 1j * weights[PROBE_IMAG]
    scale = float(np.exp(weights[LOG_INTENSITY_SCALE]))
    expected = physics.forward_amplitude(raw, offsets, probe, model, scale)
    error = np.max(np.abs(engine.predict_amplitude(inputs, offsets) - expected)) / expected.max()
    assert error < FORWARD_RTOL


def _losses(engine, arrays, training: TrainingConfig, canvas_px: int, uses_truth: bool):
    import tensorflow as tf

    from ptychopinn_plugin.engines.tensorflow_engine.training import per_group_losses

    columns = [arrays.inputs, arrays.count_targets, arrays.offsets_px]
    if uses_truth:
        columns.append(arrays.truth_patches.astype(np.complex64))
    batch = tuple(tf.constant(column) for column in columns)
    losses = per_group_losses(
        engine._network,
        training,
        batch,
        canvas_px,
        uses_truth=uses_truth,
        is_training=False,
    )
    return float(np.mean(losses))


@pytest.mark.parametrize('gridsize', [1, 2])
def test_pinn_loss_with_every_term_matches_the_oracle(gridsize) -> None:
    model = ModelConfig(**SMALL, gridsize=gridsize, num_neighbors=4)
    scan = simulate.make_scan('smooth', num_patterns=24, pattern_size_px=32, seed=1)
    training = TrainingConfig(
        mae_weight=0.3, realspace_mae_weight=0.2, realspace_weight=0.7, validation_fraction=0.0
    )
    prepared = prepare_training([scan.data], model, training)
    arrays = prepared.arrays
    engine, weights = _engine(
        model, log_scale=np.log(prepared.normalization.initial_intensity_scale)
    )
    canvas_px = physics.canvas_size_px(32, float(np.max(np.abs(arrays.offsets_px))))
    loss = _losses(engine, arrays, training, canvas_px + 4, uses_truth=True)

    amplitude, phase = _raw_patches(engine, arrays.inputs)
    raw = amplitude * np.exp(1j * phase)
    probe = weights[PROBE_REAL] + 1j * weights[PROBE_IMAG]
    scale = float(np.exp(weights[LOG_INTENSITY_SCALE]))
    predicted = physics.forward_amplitude(raw, arrays.offsets_px, probe, model, scale)
    support = physics.object_support_mask(32, model.pad_object, model.probe_big)
    expected = (
        physics.pinn_loss(predicted, arrays.count_targets, nll_weight=1.0, mae_weight=0.3)
        + 0.2 * physics.realspace_mae(raw, arrays.truth_patches, support)
        + 0.7 * physics.realspace_mse(raw, arrays.truth_patches, support)
    )
    assert loss == pytest.approx(expected, rel=LOSS_RTOL)


def test_supervised_loss_is_the_oracle_realspace_mae_without_physics() -> None:
    model = ModelConfig(**SMALL, mode=Mode.SUPERVISED, probe_big=False, amp_activation='swish')
    scan = simulate.make_scan('smooth', num_patterns=16, pattern_size_px=32, seed=2)
    training = TrainingConfig(validation_fraction=0.0)
    arrays = prepare_training([scan.data], model, training).arrays
    engine, _ = _engine(model)
    loss = _losses(engine, arrays, training, 32, uses_truth=True)
    amplitude, phase = _raw_patches(engine, arrays.inputs)
    support = physics.object_support_mask(32, pad_object=True, probe_big=False)
    expected = physics.realspace_mae(amplitude * np.exp(1j * phase), arrays.truth_patches, support)
    assert loss == pytest.approx(expected, rel=LOSS_RTOL)


def test_physics_parameters_are_tracked_keras_variables() -> None:
    engine, _ = _engine(ModelConfig(**SMALL))
    names = {variable.path for variable in engine._network.weights}
    assert {'physics/probe_real', 'physics/probe_imag', 'physics/log_intensity_scale'} <= names
    assert len(engine._network.weights) == len(engine.get_weights())


def test_bfloat16_mixed_precision_predicts_close_to_float32_and_trains() -> None:
    model = ModelConfig(**SMALL)
    reference, _ = _engine(model)
    mixed, _ = _engine(model, precision='bf16-mixed')
    inputs, offsets = _inputs(model, 3)
    np.testing.assert_allclose(
        mixed.predict(inputs, offsets), reference.predict(inputs, offsets), atol=MIXED_ATOL
    )
    scan = simulate.make_scan('smooth', num_patterns=24, pattern_size_px=32, seed=0)
    training = TrainingConfig(num_epochs=2, batch_size=8, validation_fraction=0.0)
    prepared = prepare_training([scan.data], model, training)
    before = mixed.get_weights()['encoder.0.conv1.kernel']
    reports = list(mixed.fit(prepared.arrays, training))
    assert all(np.isfinite(report.training_loss) for report in reports)
    after = mixed.get_weights()
    assert not np.array_equal(after['encoder.0.conv1.kernel'], before)  # it trained
    assert np.all(np.isfinite(after['encoder.0.conv1.kernel']))
    assert after[PROBE_REAL].dtype == np.float32


def test_requesting_cuda_without_a_gpu_is_an_error_naming_the_fix() -> None:
    import tensorflow as tf

    from ptychopinn_plugin.engines.tensorflow_engine.engine import TensorFlowEngine

    model = ModelConfig(**SMALL)
    probe = physics.normalize_probe(simulate.disk_probe(32), 4.0)
    weights = initial_weights(model, probe, 3.0, 0)
    execution = ExecutionConfig(backend='tensorflow', device='cuda')
    if tf.config.list_physical_devices('GPU'):
        assert TensorFlowEngine(model, execution, weights).predict(*_inputs(model, 1)).shape
    else:
        with pytest.raises(DeviceUnavailableError, match='cuda'):
            TensorFlowEngine(model, execution, weights)


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    import os

    environment = {**os.environ, 'PYTHONPATH': str(REPO_ROOT), 'TF_CPP_MIN_LOG_LEVEL': '3', **env}
    return subprocess.run(
        [sys.executable, '-c', textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=REPO_ROOT,
    )


@pytest.mark.e2e
def test_keras_loaded_with_another_backend_is_refused_with_the_fix() -> None:
    result = _run_python(
        """
        import keras
        from ptychopinn_plugin.engines import get_engine
        try:
            get_engine('tensorflow')
        except ImportError as exc:
            print(type(exc).__name__, exc)
        """,
        KERAS_BACKEND='torch',
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert BackendUnavailableError.__name__ in result.stdout
    assert 'KERAS_BACKEND=tensorflow' in result.stdout


@pytest.mark.e2e
@pytest.mark.parametrize('first', ['pytorch', 'tensorflow'])
def test_both_frameworks_train_and_predict_in_one_process(first) -> None:
    result = _run_python(
        f"""
        import numpy as np
        from ptychopinn_plugin.config import ExecutionConfig, ModelConfig, TrainingConfig
        from ptychopinn_plugin.core import physics, simulate
        from ptychopinn_plugin.core.dataset import prepare_training
        from ptychopinn_plugin.core.weights import initial_weights
        from ptychopinn_plugin.engines import get_engine

        model = ModelConfig(pattern_size_px=32, n_filters_scale=1)
        scan = simulate.make_scan('smooth', num_patterns=16, pattern_size_px=32, seed=0)
        training = TrainingConfig(num_epochs=1, batch_size=8, validation_fraction=0.0)
        prepared = prepare_training([scan.data], model, training)
        weights = initial_weights(model, prepared.normalized_probe, 3.0, 0)
        outputs = []
        for backend in {[first, 'tensorflow' if first == 'pytorch' else 'pytorch']!r}:
            engine = get_engine(backend)(
                model, ExecutionConfig(backend=backend, device='cpu'), weights
            )
            list(engine.fit(prepared.arrays, training))
            engine.set_weights(weights)
            outputs.append(engine.predict(prepared.arrays.inputs, prepared.arrays.offsets_px))
        print('max difference', float(np.max(np.abs(outputs[0] - outputs[1]))))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    difference = float(result.stdout.split('max difference')[-1])
    assert difference < 1e-4


@pytest.mark.e2e
def test_two_replica_mirrored_training_matches_one_device() -> None:
    result = _run_python(
        """
        import json

        import numpy as np
        import tensorflow as tf

        cpu = tf.config.list_physical_devices('CPU')[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        from ptychopinn_plugin.config import ExecutionConfig, ModelConfig, TrainingConfig
        from ptychopinn_plugin.core import simulate
        from ptychopinn_plugin.core.dataset import prepare_training
        from ptychopinn_plugin.core.weights import initial_weights
        from ptychopinn_plugin.engines import get_engine

        model = ModelConfig(pattern_size_px=32, n_filters_scale=1, gridsize=2, num_neighbors=4)
        scan = simulate.make_scan('smooth', num_patterns=40, pattern_size_px=32, seed=0)
        training = TrainingConfig(num_epochs=1, batch_size=7, validation_fraction=0.2)
        prepared = prepare_training([scan.data], model, training)
        scale = np.log(prepared.normalization.initial_intensity_scale)
        weights = initial_weights(model, prepared.normalized_probe, scale, 0)
        losses = []
        for devices in (1, 2):
            execution = ExecutionConfig(backend='tensorflow', device='cpu', devices=devices)
            engine = get_engine('tensorflow')(model, execution, weights)
            (report,) = engine.fit(prepared.arrays, training)
            losses.append((report.training_loss, report.validation_loss))
        print('losses', json.dumps(losses))
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (single_train, single_val), (mirrored_train, mirrored_val) = json.loads(
        result.stdout.split('losses')[-1]
    )
    # batches of 7 are padded to 8 for 2 replicas; the padding carries weight 0
    assert mirrored_train == pytest.approx(single_train, rel=1e-4)
    assert mirrored_val == pytest.approx(single_val, rel=1e-4)

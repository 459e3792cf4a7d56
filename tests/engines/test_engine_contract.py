"""Engine contract: the same test bodies run against the PyTorch and the TensorFlow engine.

These tests are the specification of an engine: the forward model reproduces the NumPy oracle
(``core/physics.py``), predictions do not depend on batching, training lowers the loss, trainable
physics parameters train, nothing leaks between runs, and canonical weights round-trip exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
from engine_helpers import build_engine

from ptychopinn_plugin.config import Mode, ModelConfig, TrainingConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.dataset import prepare_training
from ptychopinn_plugin.core.protocol import Engine, EpochReport
from ptychopinn_plugin.core.weights import LOG_INTENSITY_SCALE, PROBE_REAL, weight_specs

FORWARD_RTOL = 1e-5
"""float32 forward model vs the float64 oracle, relative to the peak amplitude: float32 rounding of
the FFT of an N = 64 field accumulates to a few 1e-6."""
BATCH_ATOL = 1e-5
"""Predictions of one group in different batches: kernels may differ by batch size only in the
order of float32 accumulation."""
DETERMINISM_RTOL = 1e-5
"""Two identical CPU trainings: identical up to reordered float32 reductions across threads."""

SMALL = dict(pattern_size_px=32, n_filters_scale=1)


def _inputs(model: ModelConfig, num_groups: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n, c = model.pattern_size_px, model.num_channels
    inputs = rng.gamma(2.0, 0.5, size=(num_groups, c, n, n)).astype(np.float32)
    offsets = rng.uniform(-3.5, 3.5, size=(num_groups, c, 2)).astype(np.float32)
    offsets -= offsets.mean(axis=1, keepdims=True)
    return inputs, offsets


def _scan_arrays(model: ModelConfig, seed: int, num_patterns: int = 48, **training):
    scan = simulate.make_scan(
        'smooth', num_patterns=num_patterns, pattern_size_px=model.pattern_size_px, seed=seed
    )
    config = TrainingConfig(seed=seed, validation_fraction=0.2, **training)
    prepared = prepare_training([scan.data], model, config)
    return prepared, config


def test_engine_satisfies_the_protocol(backend) -> None:
    engine, _ = build_engine(backend, ModelConfig(**SMALL))
    assert isinstance(engine, Engine)
    assert engine.backend is backend


@pytest.mark.parametrize(
    'model',
    [
        ModelConfig(pattern_size_px=64, n_filters_scale=1),
        ModelConfig(**SMALL, probe_mask=True, gaussian_smoothing_sigma_px=0.8),
        ModelConfig(**SMALL, gridsize=2, num_neighbors=4),
        ModelConfig(**SMALL, gridsize=2, num_neighbors=4, probe_big=False),
        ModelConfig(**SMALL, pad_object=False, amp_activation='swish'),
        ModelConfig(**SMALL, gridsize=3, num_neighbors=8, object_big=False),
    ],
    ids=['n64', 'mask-smooth', 'grid2-canvas', 'grid2-central', 'nopad-swish', 'grid3-nocanvas'],
)
def test_forward_model_matches_the_numpy_oracle(backend, model) -> None:
    engine, weights = build_engine(backend, model)
    inputs, offsets = _inputs(model, 5)
    patches = engine.predict(inputs, offsets)
    assert patches.shape == inputs.shape
    assert patches.dtype == np.complex64
    probe = weights[PROBE_REAL] + 1j * weights['probe.imag']
    scale = float(np.exp(weights[LOG_INTENSITY_SCALE]))
    # predict() already merged and re-extracted the canvas: apply only the rest of the chain
    chain = model.model_copy(update={'object_big': False})
    expected = physics.forward_amplitude(patches, offsets, probe, chain, scale)
    amplitude = engine.predict_amplitude(inputs, offsets)
    error = np.max(np.abs(amplitude - expected)) / np.max(expected)
    assert error < FORWARD_RTOL, f'relative error {error:.2e}'


def test_predicted_patches_respect_the_object_support(backend) -> None:
    model = ModelConfig(**SMALL, probe_big=False)
    engine, _ = build_engine(backend, model)
    patches = engine.predict(*_inputs(model, 3))
    support = physics.object_support_mask(32, pad_object=True, probe_big=False)
    assert np.all(patches[..., support == 0] == 0)
    assert np.all(np.abs(np.angle(patches[..., support == 1])) <= np.pi)


@pytest.mark.parametrize('gridsize', [1, 2])
def test_predictions_do_not_depend_on_batch_size_or_batch_mates(backend, gridsize) -> None:
    model = ModelConfig(**SMALL, gridsize=gridsize, num_neighbors=4)
    engine, _ = build_engine(backend, model)
    inputs, offsets = _inputs(model, 7)
    together = engine.predict(inputs, offsets)
    alone = np.concatenate(
        [engine.predict(inputs[i : i + 1], offsets[i : i + 1]) for i in range(7)]
    )
    np.testing.assert_allclose(alone, together, atol=BATCH_ATOL)
    other, other_offsets = _inputs(model, 4, seed=9)
    mixed = engine.predict(
        np.concatenate([inputs[:2], other]), np.concatenate([offsets[:2], other_offsets])
    )
    np.testing.assert_allclose(mixed[:2], together[:2], atol=BATCH_ATOL)


def test_canonical_weights_round_trip_exactly(backend) -> None:
    model = ModelConfig(**SMALL, gridsize=2, num_neighbors=4)
    engine, weights = build_engine(backend, model, seed=3)
    out = engine.get_weights()
    assert sorted(out) == sorted(spec.name for spec in weight_specs(model))
    for name, value in weights.items():
        np.testing.assert_array_equal(out[name], value, err_msg=name)
    shifted = {name: value + np.float32(0.25) for name, value in weights.items()}
    engine.set_weights(shifted)
    for name, value in engine.get_weights().items():
        np.testing.assert_array_equal(value, shifted[name], err_msg=name)


def test_weights_set_into_one_engine_reproduce_its_predictions_in_another(backend) -> None:
    model = ModelConfig(**SMALL)
    first, _ = build_engine(backend, model, seed=1)
    second, _ = build_engine(backend, model, seed=2)
    inputs, offsets = _inputs(model, 3)
    assert not np.allclose(first.predict(inputs, offsets), second.predict(inputs, offsets))
    second.set_weights(first.get_weights())
    np.testing.assert_allclose(
        second.predict(inputs, offsets), first.predict(inputs, offsets), atol=BATCH_ATOL
    )


def _fit(engine, arrays, config) -> list[EpochReport]:
    return list(engine.fit(arrays, config))


def test_training_lowers_the_pinn_loss_and_reports_every_epoch(backend) -> None:
    model = ModelConfig(**SMALL)
    prepared, config = _scan_arrays(model, seed=0, num_epochs=4, batch_size=8)
    engine, _ = build_engine(
        backend, model, log_intensity_scale=np.log(prepared.normalization.initial_intensity_scale)
    )
    reports = _fit(engine, prepared.arrays, config)
    assert [r.epoch for r in reports] == [1, 2, 3, 4]
    assert all(r.num_epochs == 4 and r.seconds > 0 for r in reports)
    assert reports[-1].training_loss < reports[0].training_loss
    assert reports[-1].validation_loss is not None
    assert np.isfinite(reports[-1].validation_loss)
    assert reports[0].learning_rate == pytest.approx(config.learning_rate)


@pytest.mark.parametrize('trainable', [True, False])
def test_intensity_scale_and_probe_change_only_when_trainable(backend, trainable) -> None:
    model = ModelConfig(**SMALL)
    prepared, config = _scan_arrays(
        model,
        seed=0,
        num_epochs=2,
        batch_size=8,
        intensity_scale_trainable=trainable,
        probe_trainable=trainable,
    )
    engine, initial = build_engine(backend, model, log_intensity_scale=1.0)
    reports = _fit(engine, prepared.arrays, config)
    after = engine.get_weights()
    for name in (LOG_INTENSITY_SCALE, PROBE_REAL):
        changed = not np.array_equal(after[name], initial[name])
        assert changed is trainable, f'{name} changed={changed}, trainable={trainable}'
    assert reports[-1].intensity_scale == pytest.approx(np.exp(after[LOG_INTENSITY_SCALE]))


def test_two_trainings_in_one_process_do_not_influence_each_other(backend) -> None:
    model = ModelConfig(**SMALL)
    first_data, config = _scan_arrays(model, seed=0, num_epochs=2, batch_size=8)
    other_data, other_config = _scan_arrays(
        model, seed=5, num_epochs=3, batch_size=4, learning_rate=3e-3
    )
    reference, _ = build_engine(backend, model, seed=0)
    _fit(reference, first_data.arrays, config)
    expected = reference.get_weights()
    reference.release()

    other, _ = build_engine(backend, model, seed=7)
    _fit(other, other_data.arrays, other_config)
    again, _ = build_engine(backend, model, seed=0)
    _fit(again, first_data.arrays, config)
    for name, value in again.get_weights().items():
        np.testing.assert_allclose(value, expected[name], rtol=DETERMINISM_RTOL, atol=1e-6)


def test_stopping_between_epochs_keeps_the_last_finished_epoch(backend) -> None:
    model = ModelConfig(**SMALL)
    prepared, config = _scan_arrays(model, seed=0, num_epochs=5, batch_size=8)
    engine, initial = build_engine(backend, model)
    iterator = engine.fit(prepared.arrays, config)
    next(iterator)
    after_one = engine.get_weights()
    iterator.close()  # the consumer stops, as Ptychodus does on cancel
    assert not np.array_equal(
        after_one['encoder.0.conv1.kernel'], initial['encoder.0.conv1.kernel']
    )
    np.testing.assert_array_equal(
        engine.get_weights()['encoder.0.conv1.kernel'], after_one['encoder.0.conv1.kernel']
    )
    # the stopped engine predicts with the finished epoch's weights
    inputs, offsets = _inputs(model, 2)
    fresh, _ = build_engine(backend, model, seed=5)
    fresh.set_weights(after_one)
    np.testing.assert_allclose(
        engine.predict(inputs, offsets), fresh.predict(inputs, offsets), atol=BATCH_ATOL
    )


def test_supervised_training_fits_ground_truth_patches(backend) -> None:
    model = ModelConfig(**SMALL, mode=Mode.SUPERVISED, probe_big=False)
    prepared, config = _scan_arrays(model, seed=0, num_epochs=4, batch_size=8)
    assert prepared.arrays.truth_patches is not None
    engine, _ = build_engine(backend, model)
    reports = _fit(engine, prepared.arrays, config)
    assert reports[-1].training_loss < reports[0].training_loss
    # the supervised loss is an MAE on amplitude and phase: bounded by a few radians, unlike the
    # Poisson likelihood of counts
    assert 0 < reports[-1].training_loss < 2 * np.pi

"""PyTorch engine internals the shared contract cannot see: canvas on raw generator output, kernel
layout, loss functions against the NumPy oracle, device errors, worker-thread errors, precision.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from ptychopinn_plugin.config import ExecutionConfig, ModelConfig, TrainingConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.dataset import prepare_training
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.engines.pytorch_engine import losses, training
from ptychopinn_plugin.engines.pytorch_engine.engine import PyTorchEngine
from ptychopinn_plugin.errors import DeviceUnavailableError

FORWARD_RTOL = 1e-5
"""float32 physics vs the float64 oracle, relative to the peak (as in the contract tests)."""
LOSS_RTOL = 1e-5
"""float32 loss reductions over a few thousand elements vs float64."""
BF16_ATOL = 0.1
"""bfloat16 keeps 8 mantissa bits; after ten convolutions patches of amplitude <= 1 and phase in
(-pi, pi] differ from float32 by a few 1e-2."""

SMALL = dict(pattern_size_px=32, n_filters_scale=1)


def _engine(model: ModelConfig, precision: str = '32-true', seed: int = 0) -> PyTorchEngine:
    probe = physics.normalize_probe(simulate.disk_probe(model.pattern_size_px), model.probe_scale)
    weights = initial_weights(model, probe, 3.0, seed)
    return PyTorchEngine(model, ExecutionConfig(device='cpu', precision=precision), weights)


def _inputs(model: ModelConfig, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    n, c = model.pattern_size_px, model.num_channels
    inputs = rng.gamma(2.0, 0.5, size=(num_groups, c, n, n)).astype(np.float32)
    offsets = rng.uniform(-3.5, 3.5, size=(num_groups, c, 2)).astype(np.float32)
    return inputs, offsets - offsets.mean(axis=1, keepdims=True)


def _arrays(model: ModelConfig, **values):
    scan = simulate.make_scan('smooth', num_patterns=32, pattern_size_px=model.pattern_size_px)
    config = TrainingConfig(**{'num_epochs': 2, 'batch_size': 8, **values})
    return prepare_training([scan.data], model, config).arrays, config


def _raw_patches(engine: PyTorchEngine, inputs: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        amplitude, phase = engine._network.generator(torch.from_numpy(inputs))
    return (amplitude * torch.exp(1j * phase)).numpy()


@pytest.mark.parametrize('probe_big', [True, False])
def test_canvas_merge_of_generator_patches_matches_the_oracle(probe_big) -> None:
    model = ModelConfig(**SMALL, gridsize=2, num_neighbors=4, probe_big=probe_big)
    engine = _engine(model)
    inputs, offsets = _inputs(model, 3)
    raw = _raw_patches(engine, inputs)
    support = physics.object_support_mask(32, model.pad_object, model.probe_big)
    canvas_px = physics.canvas_size_px(32, float(np.max(np.abs(offsets))))
    expected = physics.extract_from_canvas(
        physics.merge_on_canvas(raw, offsets, support, canvas_px), offsets, 32
    )
    patches = engine.predict(inputs, offsets)
    assert np.max(np.abs(patches - expected)) < FORWARD_RTOL * np.max(np.abs(expected))
    weights = engine.get_weights()
    probe = weights['probe.real'] + 1j * weights['probe.imag']
    scale = float(np.exp(weights['log_intensity_scale']))
    amplitude = physics.forward_amplitude(raw, offsets, probe, model, scale)
    error = np.max(np.abs(engine.predict_amplitude(inputs, offsets) - amplitude))
    assert error < FORWARD_RTOL * np.max(amplitude)


def test_canonical_kernels_are_height_width_in_out() -> None:
    model = ModelConfig(**SMALL)
    engine = _engine(model)
    kernel = engine.get_weights()['encoder.0.conv1.kernel']  # (3, 3, 1, out)
    image = np.random.default_rng(1).normal(size=(32, 32)).astype(np.float32)
    padded = np.pad(image, 1)
    expected = sum(
        padded[dy : dy + 32, dx : dx + 32, None] * kernel[dy, dx, 0]
        for dy in range(3)
        for dx in range(3)
    )
    with torch.no_grad():
        out = engine._network.generator.encoder[0].conv1(torch.from_numpy(image)[None, None])
    np.testing.assert_allclose(out[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_losses_match_the_numpy_oracle() -> None:
    rng = np.random.default_rng(2)
    shape = (2, 4, 16, 16)
    intensity = rng.gamma(2.0, 1.0, size=shape)
    counts = rng.poisson(9.0 * intensity).astype(np.float64)
    expected = physics.pinn_loss(3.0 * np.sqrt(intensity), counts, nll_weight=0.7, mae_weight=0.3)
    loss = losses.pinn_loss(
        torch.tensor(intensity, dtype=torch.float32),
        torch.log(torch.tensor(3.0)),
        torch.tensor(counts, dtype=torch.float32),
        nll_weight=0.7,
        mae_weight=0.3,
    )
    assert float(loss) == pytest.approx(expected, rel=LOSS_RTOL)

    amplitude = rng.uniform(-0.2, 1.0, size=shape)
    phase = rng.uniform(-np.pi, np.pi, size=shape)
    patches = amplitude * np.exp(1j * phase)
    truth = rng.uniform(0.1, 1.0, size=shape) * np.exp(1j * rng.uniform(-3, 3, size=shape))
    support = physics.object_support_mask(16, pad_object=True, probe_big=False)
    as_tensor = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    mae = losses.realspace_mae(
        as_tensor(amplitude),
        as_tensor(phase),
        torch.tensor(truth, dtype=torch.complex64),
        as_tensor(support),
    )
    assert float(mae) == pytest.approx(
        physics.realspace_mae(patches, truth, support), rel=LOSS_RTOL
    )
    mse = losses.realspace_mse(
        torch.tensor(patches, dtype=torch.complex64),
        torch.tensor(truth, dtype=torch.complex64),
        as_tensor(support),
    )
    assert float(mse) == pytest.approx(
        physics.realspace_mse(patches, truth, support), rel=LOSS_RTOL
    )


@pytest.mark.skipif(torch.cuda.is_available(), reason='needs a machine without a CUDA GPU')
def test_requesting_cuda_without_a_gpu_is_a_clear_error() -> None:
    model = ModelConfig(**SMALL)
    probe = physics.normalize_probe(simulate.disk_probe(32), model.probe_scale)
    weights = initial_weights(model, probe, 3.0, 0)
    with pytest.raises(DeviceUnavailableError, match='cuda'):
        PyTorchEngine(model, ExecutionConfig(device='cuda'), weights)


def _fit_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == 'ptychopinn-pytorch-fit']


def test_an_error_during_training_reaches_the_consumer(monkeypatch) -> None:
    model = ModelConfig(**SMALL)
    arrays, config = _arrays(model)

    def fail(self, batch):
        raise FloatingPointError('loss exploded')

    monkeypatch.setattr(training.PtychoPINNModule, 'compute_loss', fail)
    with pytest.raises(FloatingPointError, match='loss exploded'):
        list(_engine(model).fit(arrays, config))
    assert not _fit_threads()


def test_training_without_validation_groups_reports_no_validation_loss() -> None:
    model = ModelConfig(**SMALL)
    arrays, config = _arrays(model, validation_fraction=0.0)
    reports = list(_engine(model).fit(arrays, config))
    assert [r.validation_loss for r in reports] == [None, None]
    assert all(np.isfinite(r.training_loss) for r in reports)
    assert not _fit_threads()


def test_bf16_predictions_stay_close_to_float32() -> None:
    model = ModelConfig(**SMALL, gridsize=2, num_neighbors=4)
    inputs, offsets = _inputs(model, 3)
    full = _engine(model).predict(inputs, offsets)
    half = _engine(model, precision='bf16-mixed').predict(inputs, offsets)
    assert half.dtype == np.complex64
    assert np.max(np.abs(half - full)) < BF16_ATOL


def test_pinn_loss_adds_the_real_space_terms_of_the_generator_patches() -> None:
    model = ModelConfig(**SMALL, gridsize=2, num_neighbors=4)
    arrays, config = _arrays(model, validation_fraction=0.0)
    assert arrays.truth_patches is not None
    with_terms = config.model_copy(update={'realspace_mae_weight': 1.0, 'realspace_weight': 0.5})
    engine = _engine(model)
    loaders = training.make_dataloaders(arrays, config, use_truth=True, pin_memory=False)
    batch = next(iter(loaders[0]))
    losses = []
    for setting in (config, with_terms):
        module = training.PtychoPINNModule(
            engine._network, model, setting, canvas_px=48, channels_last=False
        )
        with torch.no_grad():
            losses.append(float(module.compute_loss(batch)))
    raw = _raw_patches(engine, batch['inputs'].numpy())
    truth = batch['truth'].numpy()
    support = physics.object_support_mask(32, model.pad_object, model.probe_big)
    expected = physics.realspace_mae(raw, truth, support) + 0.5 * physics.realspace_mse(
        raw, truth, support
    )
    # the Poisson term is about -1e4 in float32: the difference of two losses is good to ~1e-3
    assert losses[1] - losses[0] == pytest.approx(expected, abs=1e-2)


def _constant_loss(self, batch):
    return sum(p.sum() * 0 for p in self.network.parameters() if p.requires_grad) + 1.0


def test_the_learning_rate_follows_the_plateau_schedule_down_to_its_floor(monkeypatch) -> None:
    monkeypatch.setattr(training.PtychoPINNModule, 'compute_loss', _constant_loss)
    model = ModelConfig(**SMALL)
    arrays, config = _arrays(
        model, num_epochs=5, learning_rate=1e-3, min_learning_rate=2e-4, plateau_patience=0
    )
    reports = list(_engine(model).fit(arrays, config))
    assert [r.learning_rate for r in reports] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4, 2e-4])


def test_early_stopping_ends_the_iteration_and_flags_the_last_report(monkeypatch) -> None:
    monkeypatch.setattr(training.PtychoPINNModule, 'compute_loss', _constant_loss)
    model = ModelConfig(**SMALL)
    arrays, config = _arrays(model, num_epochs=6, early_stopping_patience=2)
    reports = list(_engine(model).fit(arrays, config))
    assert [r.stopped_early for r in reports] == [False, False, True]
    assert not _fit_threads()

"""Reconstruction quality against a known truth, for each engine, through the shared workflow.

A network trained on one simulated scan reconstructs a held-out scan of another object of the same
kind; scores are computed over the scanned region after removing the global complex scale and phase
offset. What is scored is the network's own object (``refine_iterations = 0``: the patches
stitched, phase-aligned and ramp-corrected, nothing iterated), so a broken network, a wrong weight
mapping or a constant output fails; the overlap refinement after it has its own tests
(``tests/solver``, and the ``..._after_refinement`` tests of the shipped models and of the batch
pipeline). The default run uses a short training (a few minutes on a 2-core CPU); the ``slow``
test trains longer and asserts the published-style threshold.
"""

from __future__ import annotations

import functools

import pytest
from suite_helpers import BACKENDS

from ptychopinn_plugin.config import (
    Backend,
    ExecutionConfig,
    InferenceConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ptychopinn_plugin.core import metrics, physics, simulate
from ptychopinn_plugin.core.dataset import prepare_training
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.errors import DataContractError
from ptychopinn_plugin.workflow import TrainingRun, reconstruct

PINN_PHASE_SSIM = 0.8
"""Issue 3's bar for PINN on ~1,000 training patterns at N = 64 (held-out scan); slow test."""
QUICK_AMPLITUDE_PSNR_DB = 15.5
QUICK_PHASE_PSNR_DB = 22.0
QUICK_PHASE_SSIM = 0.6
QUICK_AMPLITUDE_SSIM = 0.45
"""Regression guard for the short default-run training (:data:`QUICK_EPOCHS` epochs,
n_filters_scale 1, 1,024 patterns, training seed 0), on the network's own object
(:data:`NETWORK_ONLY`) of the held-out scan. A flat object scores 12.9 / 16.1 dB, 0.51 / 0.03, so
the PSNRs and the phase SSIM are what separate a trained network from a broken one (the amplitude
SSIM bar, kept from the earlier guard, a flat object passes).

Why 8 epochs: after 4 the network-only phase SSIM scattered too widely for a bar: 0.58 / 0.68 / 0.48
/ 0.66 (PyTorch, seeds 0-3) and 0.74 / 0.57 (TensorFlow, seeds 0, 2) on 2026-12-08, machine D
(2-core AMD EPYC); the same seed 0 gave 0.71 on 2026-12-07's machine with the same code and
frameworks (most likely another CPU's rounding), and CI failed on it. After 8 epochs, same machine
D, seeds 0-3 (``pytest -s`` prints seed 0): PyTorch amplitude / phase PSNR 21.2-22.7 / 25.7-29.4 dB,
amplitude / phase SSIM 0.62-0.67 / 0.71-0.81; TensorFlow 21.2-22.2 / 27.4-30.3 dB, 0.65-0.69 /
0.77-0.83 (about 35 s a training). The bars are unchanged; every seed of both engines clears them by
at least 0.1 phase SSIM. The default output, the refinement from a flat object, does not use the
network's object at all: that is not what this test is about."""
QUICK_EPOCHS = 8
SUPERVISED_MIN_MAE_DROP = 0.2
"""Short supervised training must lower its own objective, the amplitude + phase MAE of the patches
against the truth, on the held-out scan by this fraction of the untrained network's. (Image SSIM is
no measure here: after 3 epochs the output is still nearly flat, and a flat amplitude already
scores 0.5 amplitude SSIM on this object, trained or not.)"""

KIND = 'smooth'
N = 64
NETWORK_ONLY = InferenceConfig(refine_iterations=0)
"""The network's own object: stitched, phase-aligned and ramp-corrected, no refinement."""


@functools.cache
def _scan(seed: int, num_patterns: int):
    """A simulated scan, made once per test process (the tests only read it)."""
    return simulate.make_scan(KIND, num_patterns=num_patterns, pattern_size_px=N, seed=seed)


def _train_and_score(
    backend: Backend, mode: Mode, *, num_patterns: int, epochs: int, scale: int, seed: int = 0
):
    train = _scan(seed=0, num_patterns=num_patterns)
    test = _scan(seed=1, num_patterns=256)
    config = PluginConfig(
        model=ModelConfig(mode=mode, pattern_size_px=N, n_filters_scale=scale),
        training=TrainingConfig(num_epochs=max(epochs, 1), batch_size=16, seed=seed),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    run = TrainingRun([train.data], config)
    assert run.engine.backend is backend  # the engine asked for, not the other one
    reports = list(run.epochs()) if epochs else []
    archive = run.archive()
    run.release()
    steps = list(
        reconstruct(
            archive,
            test.data,
            execution=config.execution,
            inference=NETWORK_ONLY,
            object_shape=test.object_.shape,
        )
    )
    crop = default_stitch_crop_px(N)
    mask = scanned_region_mask(test.data.positions_px, test.object_.shape, N, crop)
    scores = metrics.compare_objects(steps[-1].object_, test.object_, mask)
    return reports, {str(k): float(v) for k, v in scores.items()}


@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_pinn_network_reconstructs_a_held_out_scan(backend) -> None:
    reports, scores = _train_and_score(
        backend, Mode.PINN, num_patterns=1024, epochs=QUICK_EPOCHS, scale=1
    )
    print(f'{backend.value}, network only: {scores}')
    assert reports[-1].training_loss < reports[0].training_loss
    assert scores['amplitude_psnr_db'] >= QUICK_AMPLITUDE_PSNR_DB, scores
    assert scores['phase_psnr_db'] >= QUICK_PHASE_PSNR_DB, scores
    assert scores['phase_ssim'] >= QUICK_PHASE_SSIM, scores
    assert scores['amplitude_ssim'] >= QUICK_AMPLITUDE_SSIM, scores


@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_supervised_trains_on_ground_truth_and_reconstructs(backend) -> None:
    """The held-out patch MAE of the network before its 3 epochs and after them (one run)."""
    config = PluginConfig(
        model=ModelConfig(mode=Mode.SUPERVISED, pattern_size_px=N, n_filters_scale=1),
        training=TrainingConfig(num_epochs=3, batch_size=16, seed=0),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    held_out = prepare_training(
        [_scan(seed=1, num_patterns=256).data],
        config.model,
        config.training.model_copy(update={'validation_fraction': 0.0}),
    ).arrays
    support = physics.object_support_mask(N, config.model.pad_object, config.model.probe_big)

    def held_out_mae(run: TrainingRun) -> float:
        patches = run.engine.predict(held_out.inputs, held_out.offsets_px)
        return physics.realspace_mae(patches, held_out.truth_patches, support)

    run = TrainingRun([_scan(seed=0, num_patterns=512).data], config)
    try:
        untrained = held_out_mae(run)
        reports = list(run.epochs())
        assert reports[-1].training_loss < reports[0].training_loss
        trained = held_out_mae(run)
    finally:
        run.release()
    assert trained <= (1 - SUPERVISED_MIN_MAE_DROP) * untrained, (trained, untrained)


def test_supervised_mode_refuses_data_without_ground_truth() -> None:
    scan = _scan(seed=0, num_patterns=64)
    from dataclasses import replace

    data = replace(scan.data, ground_truth_patches=None)
    config = PluginConfig(model=ModelConfig(mode=Mode.SUPERVISED, pattern_size_px=N))
    with pytest.raises(DataContractError, match='ground-truth'):
        TrainingRun([data], config)
    # PINN needs no truth: the same data make a training run (and its training arrays)
    run = TrainingRun([data], PluginConfig(model=ModelConfig(pattern_size_px=N)))
    try:
        assert run.prepared.arrays.truth_patches is None
        assert run.prepared.arrays.inputs.shape[0] > 0
    finally:
        run.release()


@pytest.mark.slow
# 20 epochs on 1,024 patterns at n_filters_scale 2 (~27 s each): ~10 min alone, ~20 at half speed
@pytest.mark.timeout(2400)
@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_pinn_at_full_width_reaches_the_published_quality_range(backend) -> None:
    _, scores = _train_and_score(backend, Mode.PINN, num_patterns=1024, epochs=20, scale=2)
    print(f'{backend.value}: {scores}')  # the figures docs/results.md quotes (pytest -s)
    assert scores['phase_ssim'] >= PINN_PHASE_SSIM, scores

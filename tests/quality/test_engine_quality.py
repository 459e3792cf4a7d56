"""Reconstruction quality against a known truth, for each engine, through the shared workflow.

A network trained on one simulated scan reconstructs a held-out scan of another object of the same
kind; scores are computed over the scanned region after removing the global complex scale and phase
offset. The default run uses a short training (a few minutes on a 2-core CPU); the ``slow`` tests
train longer and assert the published-style thresholds.
"""

from __future__ import annotations

import numpy as np
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
QUICK_AMPLITUDE_SSIM = 0.45
QUICK_PHASE_SSIM = 0.6
"""Regression guard for the short default-run training (4 epochs, n_filters_scale 1, 1,024
patterns), on the mean over :data:`QUICK_SEEDS`. Measured on the held-out scan with today's default
inference (phase synchronisation and the data-fitted phase ramp). A single 4-epoch run is a
lottery: PyTorch's phase SSIM over training seeds 0 to 3 is 0.58, 0.74, 0.62, 0.78 (2026-11-26,
after the shared batch order); before that change seed 0 alone gave 0.78, and TensorFlow gives
0.75 and 0.63 for seeds 0 and 1. Means over seeds 0 and 1: PyTorch amplitude 0.55, phase 0.66;
TensorFlow 0.55, 0.69. Stitched as predicted, such networks score phase 0.38, and an untrained
network about 0.03 on both (so did the broken initialisation the amplitude guard was added for)."""
QUICK_SEEDS = (0, 1)
"""Training seeds of the quick guard: one run's scatter (0.09 SSIM) is larger than the margin
between a working engine and the bar."""
SUPERVISED_MIN_MAE_DROP = 0.2
"""Short supervised training must lower its own objective, the amplitude + phase MAE of the patches
against the truth, on the held-out scan by this fraction of the untrained network's. (Image SSIM is
no measure here: after 3 epochs the output is still nearly flat, and a flat amplitude already
scores 0.5 amplitude SSIM on this object, trained or not.)"""

KIND = 'smooth'
N = 64


def _scan(seed: int, num_patterns: int):
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
    reports = list(run.epochs()) if epochs else []
    archive = run.archive()
    run.release()
    steps = list(
        reconstruct(
            archive,
            test.data,
            execution=config.execution,
            inference=InferenceConfig(),
            object_shape=test.object_.shape,
        )
    )
    crop = default_stitch_crop_px(N)
    mask = scanned_region_mask(test.data.positions_px, test.object_.shape, N, crop)
    scores = metrics.compare_objects(steps[-1].object_, test.object_, mask)
    return reports, {str(k): float(v) for k, v in scores.items()}


@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_pinn_reconstructs_a_held_out_scan(backend) -> None:
    runs = [
        _train_and_score(backend, Mode.PINN, num_patterns=1024, epochs=4, scale=1, seed=seed)
        for seed in QUICK_SEEDS
    ]
    for reports, scores in runs:
        print(f'{backend.value}: {scores}')
        assert reports[-1].training_loss < reports[0].training_loss
    mean = {key: float(np.mean([scores[key] for _, scores in runs])) for key in runs[0][1]}
    assert mean['amplitude_ssim'] >= QUICK_AMPLITUDE_SSIM, mean
    assert mean['phase_ssim'] >= QUICK_PHASE_SSIM, mean


@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_supervised_trains_on_ground_truth_and_reconstructs(backend) -> None:
    untrained = _held_out_patch_mae(backend, epochs=0)
    trained = _held_out_patch_mae(backend, epochs=3)
    assert trained <= (1 - SUPERVISED_MIN_MAE_DROP) * untrained, (trained, untrained)


def _held_out_patch_mae(backend: Backend, *, epochs: int) -> float:
    config = PluginConfig(
        model=ModelConfig(mode=Mode.SUPERVISED, pattern_size_px=N, n_filters_scale=1),
        training=TrainingConfig(num_epochs=max(epochs, 1), batch_size=16, seed=0),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    run = TrainingRun([_scan(seed=0, num_patterns=512).data], config)
    reports = list(run.epochs()) if epochs else []
    if epochs:
        assert reports[-1].training_loss < reports[0].training_loss
    held_out = prepare_training(
        [_scan(seed=1, num_patterns=256).data],
        config.model,
        config.training.model_copy(update={'validation_fraction': 0.0}),
    ).arrays
    patches = run.engine.predict(held_out.inputs, held_out.offsets_px)
    run.release()
    support = physics.object_support_mask(N, config.model.pad_object, config.model.probe_big)
    return physics.realspace_mae(patches, held_out.truth_patches, support)


def test_supervised_mode_refuses_data_without_ground_truth() -> None:
    scan = _scan(seed=0, num_patterns=64)
    from dataclasses import replace

    data = replace(scan.data, ground_truth_patches=None)
    config = PluginConfig(model=ModelConfig(mode=Mode.SUPERVISED, pattern_size_px=N))
    with pytest.raises(DataContractError, match='ground-truth'):
        TrainingRun([data], config)
    assert np.all(np.isfinite(data.diffraction_amplitude))  # PINN needs no truth: same data
    TrainingRun([data], PluginConfig(model=ModelConfig(pattern_size_px=N)))


@pytest.mark.slow
# 20 epochs on 1,024 patterns at n_filters_scale 2 (~27 s each): ~10 min alone, ~20 at half speed
@pytest.mark.timeout(2400)
@pytest.mark.parametrize('backend', BACKENDS, ids=[b.value for b in BACKENDS])
def test_pinn_at_full_width_reaches_the_published_quality_range(backend) -> None:
    _, scores = _train_and_score(backend, Mode.PINN, num_patterns=1024, epochs=20, scale=2)
    print(f'{backend.value}: {scores}')  # the figures docs/results.md quotes (pytest -s)
    assert scores['phase_ssim'] >= PINN_PHASE_SSIM, scores

"""Data consistency (``solver/consistency.py``): per-pattern R-factor, misfit over Poisson noise."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.solver.consistency import (
    WARN_NOISE_RATIO,
    expected_amplitude_noise,
    measure_consistency,
)


@pytest.fixture(scope='module')
def scan() -> simulate.SimulatedScan:
    return simulate.make_scan('smooth', 64, 32, 1e5, seed=0)


@pytest.mark.parametrize('intensity', [0.01, 0.3, 1.0, 3.0, 50.0])
def test_expected_amplitude_noise_matches_sampled_poisson_counts(intensity: float) -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(intensity, size=400_000)
    sampled = np.mean((np.sqrt(counts) - np.sqrt(intensity)) ** 2)
    assert expected_amplitude_noise(np.array(intensity)) == pytest.approx(sampled, rel=0.02)


def test_dark_and_bright_limits() -> None:
    assert expected_amplitude_noise(np.array(1e-6)) == pytest.approx(2e-6)
    assert expected_amplitude_noise(np.array(1e6)) == pytest.approx(0.25)


def test_the_true_object_explains_its_noisy_patterns_to_the_noise(scan) -> None:
    data = scan.data
    truth = measure_consistency(
        data.object_guess, data.positions_px, data.diffraction_amplitude, data.probe
    )
    assert truth.r_factor.shape == truth.noise_ratio.shape == (data.positions_px.shape[0],)
    assert 0.8 < truth.median_noise_ratio < 1.25
    assert truth.warning() is None
    assert 'R-factor' in truth.summary()


def test_a_flat_object_or_a_wrong_probe_is_flagged_in_words(scan) -> None:
    data = scan.data
    flat = measure_consistency(
        np.ones_like(data.object_guess), data.positions_px, data.diffraction_amplitude, data.probe
    )
    assert flat.median_noise_ratio > WARN_NOISE_RATIO
    shifted = np.roll(data.probe, 3, axis=0) * np.exp(0.5j)  # another probe
    wrong_probe = measure_consistency(
        data.object_guess, data.positions_px, data.diffraction_amplitude, np.conj(shifted)
    )
    for consistency in (flat, wrong_probe):
        message = consistency.warning()
        assert message is not None
        assert 'probe' in message
        assert 'centre' in message


def test_the_saved_map_holds_one_value_per_position(scan, tmp_path) -> None:
    data = scan.data
    consistency = measure_consistency(
        data.object_guess, data.positions_px, data.diffraction_amplitude, data.probe
    )
    saved = np.load(consistency.save(tmp_path / 'consistency.npz'))
    np.testing.assert_array_equal(saved['positions_px'], data.positions_px)
    np.testing.assert_array_equal(saved['noise_ratio'], consistency.noise_ratio)


def test_inference_reports_consistency_on_the_finished_step_only(scan, caplog) -> None:
    from ptychopinn_plugin import inference

    data = scan.data
    caplog.set_level(logging.INFO, logger='ptychopinn_plugin')
    inference._reported(
        measure_consistency(
            data.object_guess, data.positions_px, data.diffraction_amplitude, data.probe
        ),
        refined=True,
    )
    assert any('data consistency' in r.getMessage() for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)
    caplog.clear()
    flat = inference._consistency(np.ones_like(data.object_guess), data, None, None)
    assert flat is not None
    assert 'RefineIterations' in flat.warning(refined=False)
    assert 'RefineIterations' not in flat.warning(refined=True)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert 'RefineIterations' in warnings[0]


def test_the_pre_training_check_passes_the_true_probe_and_flags_a_wrong_one(scan) -> None:
    from ptychopinn_plugin.solver.consistency import preflight_consistency

    data = scan.data
    good = preflight_consistency(data.positions_px, data.diffraction_amplitude, data.probe)
    assert good.r_factor.size == data.positions_px.shape[0]  # fewer than the 256 it takes
    assert good.warning() is None
    shifted = np.roll(data.diffraction_amplitude, 2, axis=1)  # the patterns' centre moved 2 px
    offset = preflight_consistency(data.positions_px, shifted, data.probe)
    assert offset.median_noise_ratio > WARN_NOISE_RATIO > good.median_noise_ratio
    few = preflight_consistency(
        data.positions_px, data.diffraction_amplitude, data.probe, num_patterns=9
    )
    assert few.r_factor.size == 9


def test_training_warns_before_it_starts_when_the_probe_cannot_explain_the_data(
    scan, caplog
) -> None:
    from ptychopinn_plugin import workflow

    data = scan.data
    caplog.set_level(logging.INFO, logger='ptychopinn_plugin')
    assert workflow._preflight(data, refines=True) is not None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    caplog.clear()
    wrong = type(data)(
        diffraction_amplitude=np.roll(data.diffraction_amplitude, 2, axis=1),
        positions_px=data.positions_px,
        probe=data.probe,
    )
    workflow._preflight(wrong, refines=False)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warning.startswith('before training')
    assert 'centre' in warning
    assert 'probe' in warning
    assert 'ProbeRefinement = on' in warning  # the remedy, when refinement is off
    caplog.clear()
    workflow._preflight(wrong, refines=True)
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert 'the probe is refined first' in warning


def test_the_pre_training_check_leaves_a_stray_position_out(scan) -> None:
    from ptychopinn_plugin.solver.consistency import central_region, preflight_consistency

    data = scan.data
    positions = data.positions_px.copy()
    positions[0] = (1e6, 1e6)  # one corrupt motor reading
    region = central_region(positions, data.diffraction_amplitude, data.pattern_size_px, 256)
    assert 0 not in region.rows
    assert region.rows.size == data.num_patterns - 1  # 64 points: all but the stray one
    assert max(region.shape) < 10 * data.pattern_size_px + np.ptp(data.positions_px).max()
    checked = preflight_consistency(positions, data.diffraction_amplitude, data.probe)
    assert checked.r_factor.size == region.rows.size

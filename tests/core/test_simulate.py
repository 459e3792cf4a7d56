"""Synthetic datasets: objects, probes, scans, Poisson counts, and agreement with the physics."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.contract import DiffractionQuantity
from ptychopinn_plugin.errors import ConfigurationError

N = 32
FLOAT32_RTOL = 1e-5
"""Simulated amplitudes are stored as float32 (about 6e-8 relative), compared to float64 physics."""
RANGE_ATOL = 1e-6
"""Objects are complex64: a modulus on the range boundary is off by float32 round-off."""
SPIRAL_STEP_RTOL = 0.1
"""The Fermat spiral's median nearest-neighbour distance matches the requested step to ~10 %."""


@pytest.fixture(scope='module')
def small_object() -> np.ndarray:
    return simulate.smooth_random_object((120, 140), correlation_px=4.0, seed=3)


@pytest.mark.parametrize('kind', list(simulate.ObjectKind))
def test_objects_are_complex64_within_documented_ranges(kind: simulate.ObjectKind) -> None:
    obj = simulate.make_object(kind, (90, 110), seed=1)
    assert obj.dtype == np.complex64
    assert obj.shape == (90, 110)
    low, high = simulate.DEFAULT_AMPLITUDE_RANGE
    assert np.abs(obj).min() >= low - RANGE_ATOL
    assert np.abs(obj).max() <= high + RANGE_ATOL
    phase_low, phase_high = simulate.DEFAULT_PHASE_RANGE_RAD
    phase = np.angle(obj)
    assert phase.min() >= phase_low - RANGE_ATOL
    assert phase.max() <= phase_high + RANGE_ATOL
    assert np.ptp(np.abs(obj)) > 0.25  # real contrast in amplitude and in phase
    assert np.ptp(phase) > 1.0


@pytest.mark.parametrize('kind', ['smooth', 'lines'])
def test_random_objects_are_deterministic_for_a_seed_and_differ_between_seeds(kind: str) -> None:
    first = simulate.make_object(kind, (64, 64), seed=5)
    np.testing.assert_array_equal(first, simulate.make_object(kind, (64, 64), seed=5))
    assert not np.array_equal(first, simulate.make_object(kind, (64, 64), seed=6))


def test_object_ranges_can_be_chosen() -> None:
    obj = simulate.smooth_random_object(
        (50, 50), amplitude_range=(0.2, 0.3), phase_range_rad=(0, 0)
    )
    assert 0.2 - RANGE_ATOL <= np.abs(obj).min()
    assert np.abs(obj).max() <= 0.3 + RANGE_ATOL
    np.testing.assert_allclose(np.angle(obj), 0.0, atol=RANGE_ATOL)


def test_unknown_object_kind_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match='camera, smooth, lines, siemens'):
        simulate.make_object('bananas', (10, 10))


def test_disk_probe_is_centred_unit_disk_without_propagation() -> None:
    probe = simulate.disk_probe(N, 6.0)
    assert probe.dtype == np.complex64
    assert probe.shape == (N, N)
    np.testing.assert_array_equal(probe, probe[::-1, ::-1])
    index = np.arange(N) - (N - 1) / 2
    distance = np.hypot(index[:, None], index[None, :])
    np.testing.assert_array_equal(np.abs(probe[distance <= 5.5]), 1.0)
    np.testing.assert_array_equal(np.abs(probe[distance >= 6.5]), 0.0)


def test_propagated_disk_probe_keeps_power_and_centre_and_gains_structure() -> None:
    flat = simulate.disk_probe(N, 6.0)
    probe = simulate.disk_probe(N, 6.0, propagation_px2=12.0)
    assert np.sum(np.abs(probe) ** 2) == pytest.approx(np.sum(np.abs(flat) ** 2), rel=FLOAT32_RTOL)
    np.testing.assert_allclose(probe, probe[::-1, ::-1], atol=FLOAT32_RTOL)
    assert np.ptp(np.angle(probe[N // 2, 10:22])) > 0.1
    with pytest.raises(ConfigurationError, match='aliases'):
        simulate.disk_probe(N, 6.0, propagation_px2=N + 1.0)


def test_raster_scan_keeps_patches_inside_with_the_requested_step_and_overlap() -> None:
    shape = (150, 200)
    step = simulate.step_for_overlap(probe_diameter_px=16.0, overlap_fraction=0.6)
    positions = simulate.raster_scan(shape, N, step)
    _assert_inside(positions, shape, N)
    distance, _ = cKDTree(positions).query(positions, k=2)
    np.testing.assert_allclose(distance[:, 1], step, rtol=1e-12)
    assert 1 - np.median(distance[:, 1]) / 16.0 == pytest.approx(0.6)


def test_jittered_raster_scan_stays_inside_and_is_deterministic() -> None:
    shape = (100, 100)
    positions = simulate.raster_scan(shape, N, 8.0, jitter_px=3.0, seed=2)
    _assert_inside(positions, shape, N)
    np.testing.assert_array_equal(
        positions, simulate.raster_scan(shape, N, 8.0, jitter_px=3.0, seed=2)
    )
    regular = simulate.raster_scan(shape, N, 8.0)
    assert np.max(np.abs(positions - regular)) <= 3.0


def test_fermat_spiral_stays_inside_with_nearest_neighbour_distance_near_step() -> None:
    shape = (200, 180)
    positions = simulate.fermat_spiral_scan(shape, N, 10.0)
    _assert_inside(positions, shape, N)
    distance, _ = cKDTree(positions).query(positions, k=2)
    assert np.median(distance[:, 1]) == pytest.approx(10.0, rel=SPIRAL_STEP_RTOL)
    assert len(simulate.fermat_spiral_scan(shape, N, 10.0, num_points=50)) == 50


def test_object_too_small_for_a_patch_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match='cannot hold'):
        simulate.raster_scan((20, 200), N, 5.0)


def test_noise_free_simulation_matches_the_reference_forward_model(small_object) -> None:
    probe = simulate.disk_probe(N, 7.0, propagation_px2=10.0)
    positions = simulate.raster_scan(small_object.shape, N, 9.5, jitter_px=2.0, seed=4)
    num_photons = 3e4
    data = simulate.simulate_dataset(small_object, probe, positions, num_photons, poisson=False)
    truth = data.ground_truth_patches.astype(np.complex128)
    config = ModelConfig(pattern_size_px=N, gridsize=1, pad_object=False, probe_mask=False)
    probe_normalized = physics.normalize_probe(probe, config.probe_scale)
    # Simulated amplitude = sqrt(c) |F(probe * O)| with c = num_photons / mean sum |probe * O|^2
    # (Parseval); the model computes K |F(probe / q * O)| with q the probe normalisation divisor.
    divisor = probe[0, 0] / probe_normalized[0, 0]
    mean_power = np.mean(np.sum(np.abs(probe * truth) ** 2, axis=(1, 2)))
    scale = abs(divisor) * np.sqrt(num_photons / mean_power)
    predicted = physics.forward_amplitude(
        truth[:, None], np.zeros((len(truth), 1, 2)), probe_normalized, config, scale
    )[:, 0]
    atol = FLOAT32_RTOL * float(data.diffraction_amplitude.max())
    np.testing.assert_allclose(predicted, data.diffraction_amplitude, rtol=FLOAT32_RTOL, atol=atol)


def test_expected_mean_total_counts_equal_num_photons(small_object) -> None:
    probe = simulate.disk_probe(N, 7.0)
    positions = simulate.raster_scan(small_object.shape, N, 12.0)
    data = simulate.simulate_dataset(small_object, probe, positions, 5e3, poisson=False)
    assert data.mean_total_counts() == pytest.approx(5e3, rel=FLOAT32_RTOL)
    assert data.metadata.num_photons == pytest.approx(5e3, rel=1e-12)


def test_poisson_counts_are_integers_with_poisson_statistics(small_object) -> None:
    probe = simulate.disk_probe(N, 7.0, propagation_px2=10.0)
    positions = simulate.raster_scan(small_object.shape, N, 6.0)
    num_photons = 2e4
    clean = simulate.simulate_dataset(small_object, probe, positions, num_photons, poisson=False)
    noisy = simulate.simulate_dataset(small_object, probe, positions, num_photons, seed=9)
    expected = clean.diffraction_amplitude.astype(np.float64) ** 2
    counts = noisy.diffraction_amplitude.astype(np.float64) ** 2
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-3)
    bright = expected > 20
    z_score = (counts[bright] - expected[bright]) / np.sqrt(expected[bright])
    assert bright.sum() > 10_000
    assert abs(np.mean(z_score)) < 0.05
    assert np.var(z_score) == pytest.approx(1.0, abs=0.05)
    # mean total counts: Poisson spread of a mean over n patterns of num_photons each
    spread = 5 * np.sqrt(num_photons / noisy.num_patterns)
    assert abs(noisy.metadata.num_photons - num_photons) < spread
    assert noisy.metadata.num_photons == pytest.approx(noisy.mean_total_counts(), rel=FLOAT32_RTOL)


def test_simulated_dataset_records_truth_and_counts_metadata(small_object) -> None:
    probe = simulate.disk_probe(N, 7.0)
    positions = simulate.raster_scan(small_object.shape, N, 12.0)
    data = simulate.simulate_dataset(small_object, probe, positions, 1e3, seed=0)
    assert data.metadata.source_quantity is DiffractionQuantity.COUNTS
    np.testing.assert_array_equal(data.object_guess, small_object)
    np.testing.assert_array_equal(data.probe, probe)
    assert data.ground_truth_patches.shape == (len(positions), N, N)
    assert data.diffraction_amplitude.dtype == np.float32


@pytest.mark.parametrize('scan', ['raster', 'spiral'])
def test_make_scan_is_deterministic_and_keeps_the_scan_inside_the_object(scan: str) -> None:
    first = simulate.make_scan(
        'siemens', num_patterns=40, pattern_size_px=N, num_photons=1e4, seed=7, scan=scan
    )
    second = simulate.make_scan(
        'siemens', num_patterns=40, pattern_size_px=N, num_photons=1e4, seed=7, scan=scan
    )
    np.testing.assert_array_equal(
        first.data.diffraction_amplitude, second.data.diffraction_amplitude
    )
    np.testing.assert_array_equal(first.data.positions_px, second.data.positions_px)
    _assert_inside(first.data.positions_px, first.object_.shape, N)
    assert first.data.num_patterns >= 40
    assert first.step_px == N / 4
    if scan == 'spiral':
        assert first.data.num_patterns == 40


def test_make_scan_of_a_thousand_patterns_uses_an_object_of_a_few_hundred_pixels() -> None:
    scan = simulate.make_scan('smooth', num_patterns=1000, pattern_size_px=64, seed=0)
    assert 1000 <= scan.data.num_patterns <= 1100
    assert max(scan.object_.shape) < 700
    assert scan.data.metadata.num_photons == pytest.approx(1e6, rel=0.01)
    noise_seed_changed = simulate.make_scan('smooth', num_patterns=16, pattern_size_px=N, seed=1)
    same_seed = simulate.make_scan('smooth', num_patterns=16, pattern_size_px=N, seed=0)
    assert not np.array_equal(noise_seed_changed.object_, same_seed.object_)


def _assert_inside(positions: np.ndarray, shape: tuple[int, int], n_px: int) -> None:
    half = (n_px - 1) / 2
    assert np.all(positions[:, 0] - half >= 0)
    assert np.all(positions[:, 0] + half <= shape[1] - 1)
    assert np.all(positions[:, 1] - half >= 0)
    assert np.all(positions[:, 1] + half <= shape[0] - 1)


def test_aberrated_probe_is_not_centrosymmetric_and_keeps_its_aperture() -> None:
    symmetric = simulate.disk_probe(N, 6.0, propagation_px2=8.0)
    aberrated = simulate.disk_probe(N, 6.0, propagation_px2=8.0, aberration_rad=3.0)
    flipped = np.abs(aberrated[::-1, ::-1])
    assert np.max(np.abs(np.abs(symmetric[::-1, ::-1]) - np.abs(symmetric))) < 1e-5
    assert np.max(np.abs(flipped - np.abs(aberrated))) > 0.1 * np.abs(aberrated).max()
    np.testing.assert_allclose(
        np.sum(np.abs(aberrated) ** 2), np.sum(np.abs(symmetric) ** 2), rtol=1e-4
    )


def test_power_diameter_of_a_uniform_disc_follows_the_enclosed_area() -> None:
    rows, cols = np.indices((128, 128))
    disc = (np.hypot(rows - 70.0, cols - 50.0) <= 20.0).astype(np.complex64)
    # a uniform disc of radius r holds the fraction f of its power within radius r sqrt(f)
    assert simulate.power_diameter_px(disc, 0.9) == pytest.approx(2 * 20 * np.sqrt(0.9), abs=1.0)
    assert simulate.power_diameter_px(disc, 1.0) == pytest.approx(40.0, abs=1.0)

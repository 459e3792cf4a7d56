"""Metrics: alignment invariance, wrap-safe phase, monotonic response to blur, and FRC sanity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from ptychopinn_plugin.core.metrics import (
    ComparedPart,
    FRCThreshold,
    MetricName,
    align_complex,
    compare_objects,
    frc,
    frc_resolution,
    psnr,
    remove_relative_phase_ramp,
    ssim,
)
from ptychopinn_plugin.errors import ConfigurationError, DataContractError

SIZE_PX = 96
FLOAT_TOL = 1e-9
"""Scores of inputs that differ only by a global complex scale agree to float64 rounding."""
FRC_IDENTITY_TOL = 1e-12
"""FRC of identical images is 1 up to float64 rounding of the ring sums."""
EXACT_ALIGNMENT_MIN_DB = 100.0
"""A scaled, phase-shifted copy aligns back to float64 rounding: PSNR far above any real score."""
BLUR_SIGMAS_PX = (0.5, 1.0, 2.0, 4.0)


def _blur(field: np.ndarray, sigma_px: float) -> np.ndarray:
    return gaussian_filter(field.real, sigma_px) + 1j * gaussian_filter(field.imag, sigma_px)


@pytest.fixture
def truth() -> np.ndarray:
    """A complex object with fine texture and sharp edges in both amplitude and phase."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[:SIZE_PX, :SIZE_PX]
    texture = gaussian_filter(rng.normal(size=(SIZE_PX, SIZE_PX)), 1.0)
    texture /= np.abs(texture).max()
    disks = (np.hypot(xx - 30, yy - 40) < 14) | (np.hypot(xx - 65, yy - 60) < 10)
    amplitude = 0.7 + 0.2 * texture - 0.2 * disks
    phase = 1.2 * disks + 0.5 * texture + 0.3 * np.sin(xx / 6.0)
    return amplitude * np.exp(1j * phase)


def test_identical_objects_give_infinite_psnr_and_unit_ssim(truth: np.ndarray) -> None:
    scores = compare_objects(truth, truth)
    assert scores[MetricName.AMPLITUDE_PSNR_DB] == np.inf
    assert scores[MetricName.PHASE_PSNR_DB] == np.inf
    assert scores[MetricName.COMPLEX_PSNR_DB] == np.inf
    assert scores[MetricName.AMPLITUDE_SSIM] == 1.0
    assert scores[MetricName.PHASE_SSIM] == 1.0


def test_compare_objects_returns_every_metric_name_as_plain_float(truth: np.ndarray) -> None:
    scores = compare_objects(_blur(truth, 1.0), truth)
    assert set(scores) == {str(name) for name in MetricName}
    assert all(isinstance(value, float) for value in scores.values())


def test_align_complex_undoes_a_global_scale_and_phase_offset(truth: np.ndarray) -> None:
    moved = truth * 0.37 * np.exp(2.5j)
    np.testing.assert_allclose(align_complex(moved, truth), truth, rtol=0, atol=1e-12)
    for part in ComparedPart:
        assert psnr(moved, truth, part=part) > EXACT_ALIGNMENT_MIN_DB


def test_global_complex_scale_and_phase_offset_do_not_change_scores(truth: np.ndarray) -> None:
    estimate = _blur(truth, 1.0)
    reference = compare_objects(estimate, truth)
    for scale in (0.37 * np.exp(2.5j), 3.0 * np.exp(-3.1j), -1.0):
        scores = compare_objects(estimate * scale, truth)
        for name, value in reference.items():
            assert scores[name] == pytest.approx(value, rel=FLOAT_TOL, abs=FLOAT_TOL), name


def test_scores_decrease_monotonically_with_increasing_gaussian_blur(truth: np.ndarray) -> None:
    scores = [compare_objects(_blur(truth, sigma), truth) for sigma in BLUR_SIGMAS_PX]
    for name in MetricName:
        values = [s[name] for s in scores]
        assert all(a > b for a, b in itertools.pairwise(values)), (name, values)


def test_phase_scores_do_not_see_wrapping_at_plus_minus_pi(truth: np.ndarray) -> None:
    rng = np.random.default_rng(9)
    small = 0.05 * gaussian_filter(rng.normal(size=truth.shape), 1.0)
    near_zero = np.abs(truth) * np.exp(1j * (0.3 * np.angle(truth)))
    near_pi = near_zero * np.exp(1j * (np.pi - 0.1))  # straddles +-pi: np.angle wraps it
    assert np.ptp(np.angle(near_pi)) > np.pi
    for part_score in (psnr, ssim):
        at_zero = part_score(near_zero * np.exp(1j * small), near_zero, part=ComparedPart.PHASE)
        at_pi = part_score(near_pi * np.exp(1j * small), near_pi, part=ComparedPart.PHASE)
        assert at_pi == pytest.approx(at_zero, rel=FLOAT_TOL)


def test_mask_limits_alignment_and_scores_to_the_selected_pixels(truth: np.ndarray) -> None:
    mask = np.zeros(truth.shape, dtype=bool)
    mask[20:70, 15:80] = True
    estimate = truth.copy()
    estimate[~mask] = 50.0 * np.exp(1j)  # garbage outside the mask
    scores = compare_objects(estimate, truth, mask)
    assert scores[MetricName.PHASE_PSNR_DB] == np.inf
    assert scores[MetricName.AMPLITUDE_SSIM] == 1.0
    assert compare_objects(estimate, truth)[MetricName.AMPLITUDE_PSNR_DB] < 20.0


def test_frc_of_identical_images_is_one_at_every_frequency(truth: np.ndarray) -> None:
    for image in (np.angle(truth), truth):
        frequencies, curve = frc(image, image)
        assert frequencies.shape == curve.shape == (SIZE_PX // 2 + 1,)
        assert frequencies[0] == 0.0
        assert frequencies[-1] == pytest.approx(0.5)
        np.testing.assert_allclose(curve, 1.0, rtol=0, atol=FRC_IDENTITY_TOL)
    assert frc_resolution(truth, truth) == 2.0


def test_frc_resolution_worsens_as_blur_buries_detail_under_noise(truth: np.ndarray) -> None:
    noise = 0.02 * np.random.default_rng(3).normal(size=truth.shape)
    phase = np.angle(truth)
    resolutions = [
        frc_resolution(gaussian_filter(phase, sigma) + noise, phase, threshold=threshold)
        for threshold in FRCThreshold
        for sigma in (0.5, 2.0)
    ]
    half_bit_sharp, half_bit_blurred, seventh_sharp, seventh_blurred = resolutions
    assert 2.0 <= half_bit_sharp < half_bit_blurred
    assert 2.0 <= seventh_sharp < seventh_blurred


def test_ssim_of_the_complex_part_is_refused(truth: np.ndarray) -> None:
    with pytest.raises(ConfigurationError, match='real images'):
        ssim(truth, truth, part='complex')
    with pytest.raises(ConfigurationError, match='unknown part'):
        psnr(truth, truth, part='intensity')


def test_mismatched_shapes_and_empty_masks_are_rejected(truth: np.ndarray) -> None:
    with pytest.raises(DataContractError, match='one shape'):
        psnr(truth[:-1], truth)
    with pytest.raises(DataContractError, match='no pixels'):
        psnr(truth, truth, np.zeros(truth.shape, dtype=bool))
    with pytest.raises(DataContractError, match='zero on the mask'):
        align_complex(np.zeros_like(truth), truth)


def test_flat_truth_phase_uses_the_full_circle_as_peak() -> None:
    amplitude_only = np.linspace(0.2, 1.0, SIZE_PX * SIZE_PX).reshape(SIZE_PX, SIZE_PX) + 0j
    estimate = amplitude_only * np.exp(0.1j * np.sin(np.arange(SIZE_PX) / 3.0))
    expected_mse = np.mean(np.angle(estimate * np.conj(amplitude_only)) ** 2)
    value = psnr(estimate, amplitude_only, part='phase', align=False)
    assert value == pytest.approx(10 * np.log10((2 * np.pi) ** 2 / expected_mse), rel=1e-6)


def test_masked_ssim_ignores_pixels_outside_an_irregular_mask() -> None:
    rng = np.random.default_rng(0)
    truth = np.exp(1j * rng.uniform(-1, 1, (64, 64))).astype(np.complex64)
    mask = np.zeros((64, 64), bool)
    mask[10:50, 10:50] = True
    mask[10:20, 10:20] = False  # an irregular, L-shaped scanned region
    estimate = np.where(mask, truth, 0)
    assert ssim(estimate, truth, mask, part='phase') == pytest.approx(1.0)


def test_a_relative_phase_ramp_is_removed_only_on_request(truth: np.ndarray) -> None:
    rows, cols = np.indices(truth.shape)
    # a ramp of 2.4 turns across x and 1.5 across y: wraps several times, no unwrapping needed
    ramped = truth * np.exp(1j * (0.16 * cols - 0.1 * rows)) * (0.5 + 0.2j)
    mask = np.zeros(truth.shape, bool)
    mask[10:-10, 5:-20] = True
    before = compare_objects(ramped, truth, mask)
    after = compare_objects(remove_relative_phase_ramp(ramped, truth, mask), truth, mask)
    assert before['phase_ssim'] < 0.5
    assert after['phase_psnr_db'] > EXACT_ALIGNMENT_MIN_DB
    assert after['amplitude_psnr_db'] > EXACT_ALIGNMENT_MIN_DB

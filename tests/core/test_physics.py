"""The NumPy reference forward model: masks, probe scaling, far field, smoothing, canvas, losses."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.core import physics
from ptychopinn_plugin.errors import ConfigurationError, DataContractError

N = 32
FLOAT64_RTOL = 1e-12
"""Identities that hold exactly in real arithmetic, evaluated in float64 (FFT round-off only)."""
SMOOTHING_SUM_RTOL = 1e-12
"""A normalised kernel preserves the sum exactly when no weight falls off the border."""


def _random_complex(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.normal(size=shape) + 1j * rng.normal(size=shape)


def _centered_gaussian(n_px: int, sigma_px: float) -> np.ndarray:
    index = np.arange(n_px) - (n_px - 1) / 2
    return np.exp(-(index[:, None] ** 2 + index[None, :] ** 2) / (2 * sigma_px**2))


def test_disk_mask_has_radius_quarter_n_about_the_array_centre() -> None:
    mask = physics.disk_mask(N)
    assert mask.shape == (N, N)
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(mask, mask[::-1, ::-1])
    np.testing.assert_array_equal(mask, mask.T)
    center_row = mask[N // 2]
    assert center_row.sum() == 16  # indices 8 .. 23: |j - 15.5| <= 8
    assert mask.sum() == pytest.approx(np.pi * (N / 4) ** 2, rel=0.1)


def test_object_support_is_central_square_only_with_pad_object_and_no_probe_big() -> None:
    square = physics.object_support_mask(N, pad_object=True, probe_big=False)
    expected = np.zeros((N, N))
    expected[N // 4 : 3 * N // 4, N // 4 : 3 * N // 4] = 1
    np.testing.assert_array_equal(square, expected)
    for pad_object, probe_big in ((True, True), (False, False), (False, True)):
        np.testing.assert_array_equal(
            physics.object_support_mask(N, pad_object, probe_big), np.ones((N, N))
        )


def test_normalized_probe_has_mean_amplitude_one_over_probe_scale_inside_disk(rng) -> None:
    probe = _random_complex(rng, (N, N)) * 7.3
    normalized = physics.normalize_probe(probe, probe_scale=4.0)
    inside = physics.disk_mask(N) > 0
    assert np.mean(np.abs(normalized[inside])) == pytest.approx(0.25, rel=FLOAT64_RTOL)
    np.testing.assert_allclose(normalized / probe, normalized[0, 0] / probe[0, 0])


def test_probe_that_is_zero_in_the_disk_is_rejected() -> None:
    probe = np.zeros((N, N), np.complex64)
    probe[0, 0] = 1
    with pytest.raises(DataContractError, match='zero everywhere inside'):
        physics.normalize_probe(probe, 4.0)


def test_farfield_preserves_total_power_parseval(rng) -> None:
    wave = _random_complex(rng, (3, 2, N, N))
    amplitude = physics.farfield_amplitude(wave)
    assert amplitude.dtype == np.float64
    np.testing.assert_allclose(
        np.sum(amplitude**2, axis=(-2, -1)),
        np.sum(np.abs(wave) ** 2, axis=(-2, -1)),
        rtol=FLOAT64_RTOL,
    )


def test_farfield_of_centred_gaussian_peaks_at_index_n_over_2_symmetrically() -> None:
    amplitude = physics.farfield_amplitude(_centered_gaussian(N, 4.0))
    assert np.unravel_index(np.argmax(amplitude), amplitude.shape) == (N // 2, N // 2)
    inner = amplitude[1:, 1:]  # index 0 is the unpaired Nyquist row and column
    np.testing.assert_allclose(inner, inner[::-1, ::-1], rtol=1e-9, atol=1e-12)


def test_gaussian_kernel_is_normalised_with_radius_ceil_three_sigma() -> None:
    np.testing.assert_array_equal(physics.gaussian_kernel_1d(0.0), [1.0])
    kernel = physics.gaussian_kernel_1d(1.2)
    assert kernel.size == 2 * 4 + 1
    assert kernel.sum() == pytest.approx(1.0, rel=FLOAT64_RTOL)
    np.testing.assert_allclose(kernel, kernel[::-1])
    with pytest.raises(ConfigurationError, match='sigma'):
        physics.gaussian_kernel_1d(-1.0)


def test_smoothing_with_sigma_zero_is_identity(rng) -> None:
    patches = _random_complex(rng, (2, N, N))
    np.testing.assert_array_equal(physics.smooth_patches(patches, 0.0), patches)


def test_smoothing_preserves_sum_away_from_borders_and_matches_2d_convolution(rng) -> None:
    patches = np.zeros((N, N), np.complex128)
    patches[10:22, 12:20] = _random_complex(rng, (12, 8))
    smoothed = physics.smooth_patches(patches, 1.0)
    assert smoothed.sum() == pytest.approx(patches.sum(), rel=SMOOTHING_SUM_RTOL)
    kernel = physics.gaussian_kernel_1d(1.0)
    radius = kernel.size // 2
    padded = np.pad(patches, radius)
    direct = np.zeros_like(patches)
    for di in range(kernel.size):
        for dj in range(kernel.size):
            direct += kernel[di] * kernel[dj] * padded[di : di + N, dj : dj + N]
    np.testing.assert_allclose(smoothed, direct, rtol=FLOAT64_RTOL, atol=1e-14)


def test_exit_wave_is_probe_times_patch_and_disk_masked_on_request(rng) -> None:
    patches = _random_complex(rng, (2, N, N))
    probe = _random_complex(rng, (N, N))
    plain = physics.exit_wave(patches, probe, probe_mask=False, smoothing_sigma_px=0.0)
    np.testing.assert_allclose(plain, probe * patches, rtol=FLOAT64_RTOL)
    masked = physics.exit_wave(patches, probe, probe_mask=True, smoothing_sigma_px=0.0)
    np.testing.assert_allclose(masked, probe * patches * physics.disk_mask(N), rtol=FLOAT64_RTOL)


def test_dataset_normalization_gives_mean_power_of_half_n_squared(rng) -> None:
    amplitude = np.sqrt(rng.poisson(30.0, size=(10, N, N)).astype(float))
    scale = physics.dataset_normalization(amplitude)
    power = np.mean(np.sum((scale * amplitude) ** 2, axis=(1, 2)))
    assert power == pytest.approx((N / 2) ** 2, rel=FLOAT64_RTOL)


def test_intensity_scale_makes_half_amplitude_object_reproduce_the_photon_count(rng) -> None:
    probe = physics.normalize_probe(_random_complex(rng, (N, N)), 4.0)
    for probe_mask in (False, True):
        scale = physics.initial_intensity_scale(1e5, probe, probe_mask)
        patches = np.full((1, 1, N, N), physics.TYPICAL_OBJECT_AMPLITUDE, np.complex128)
        config = ModelConfig(pattern_size_px=N, probe_mask=probe_mask, gridsize=1)
        amplitude = physics.forward_amplitude(patches, np.zeros((1, 1, 2)), probe, config, scale)
        assert np.sum(amplitude**2) == pytest.approx(1e5, rel=FLOAT64_RTOL)


def test_count_targets_equal_counts_when_num_photons_is_measured(rng) -> None:
    counts = rng.poisson(12.0, size=(20, N, N)).astype(float)
    num_photons = float(np.mean(np.sum(counts, axis=(1, 2))))
    targets = physics.count_targets(np.sqrt(counts), num_photons)
    np.testing.assert_allclose(targets, counts, rtol=FLOAT64_RTOL, atol=1e-12)


def test_poisson_nll_is_minimised_at_predicted_equal_observed(rng) -> None:
    observed = rng.poisson(20.0, size=(4, N, N)).astype(float)
    best = physics.poisson_nll(observed, observed)
    for factor in (0.9, 0.99, 1.01, 1.1):
        assert physics.poisson_nll(observed * factor, observed) > best
    assert np.isfinite(physics.poisson_nll(np.zeros_like(observed), observed))


def test_mean_absolute_error_uses_complex_modulus() -> None:
    assert physics.mean_absolute_error(np.array([3 + 4j, 0]), np.zeros(2)) == pytest.approx(2.5)


def test_integer_translation_is_a_shift_with_zero_fill(rng) -> None:
    images = rng.normal(size=(2, 8, 9))
    moved = physics.translate_bilinear(images, np.array([2.0, -3.0]), np.array([-1.0, 0.0]))
    expected = np.zeros_like(images)
    expected[0, :-1, 2:] = images[0, 1:, :-2]
    expected[1, :, :-3] = images[1, :, 3:]
    np.testing.assert_array_equal(moved, expected)


def test_subpixel_translation_of_a_linear_ramp_is_exact_inside() -> None:
    rows, cols = np.mgrid[0:12, 0:12].astype(float)
    ramp = 0.7 * cols - 1.3 * rows + 2.0
    dx, dy = 0.3, -1.6
    moved = physics.translate_bilinear(ramp, dx, dy)
    expected = 0.7 * (cols - dx) - 1.3 * (rows - dy) + 2.0
    inside = (slice(1, 10), slice(1, 11))  # every source neighbour lies in the image
    np.testing.assert_allclose(moved[inside], expected[inside], rtol=FLOAT64_RTOL, atol=1e-12)


def test_translation_shifts_broadcast_over_leading_axes(rng) -> None:
    images = rng.normal(size=(3, 2, 6, 6))
    shift = np.array([[0.5, 1.0]])
    moved = physics.translate_bilinear(images, shift, 0.0)
    for b in range(3):
        for c in range(2):
            single = physics.translate_bilinear(images[b, c], shift[0, c], 0.0)
            np.testing.assert_array_equal(moved[b, c], single)


def _object_and_group(
    rng: np.random.Generator, offsets: np.ndarray, n_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """One smooth object and the C patches cut from it at centre + offset (integer offsets)."""
    size = 3 * n_px
    obj = _random_complex(rng, (size, size))
    center = size // 2
    patches = []
    for dx, dy in offsets.astype(int):
        top = center + dy - n_px // 2
        left = center + dx - n_px // 2
        patches.append(obj[top : top + n_px, left : left + n_px])
    return obj, np.stack(patches)[None]


@pytest.mark.parametrize(('pad_object', 'probe_big'), [(True, False), (False, False)])
def test_canvas_merge_of_consistent_patches_reextracts_them_inside_support(
    rng, pad_object: bool, probe_big: bool
) -> None:
    offsets = np.array([[[-3.0, -2.0], [4.0, -2.0], [-3.0, 5.0], [4.0, 5.0]]])
    _, patches = _object_and_group(rng, offsets[0], N)
    support = physics.object_support_mask(N, pad_object, probe_big)
    canvas_px = physics.canvas_size_px(N, float(np.max(np.abs(offsets))))
    assert canvas_px == N + 10
    canvas = physics.merge_on_canvas(patches, offsets, support, canvas_px)
    back = physics.extract_from_canvas(canvas, offsets, N)
    assert back.shape == patches.shape
    inside = support > 0
    np.testing.assert_allclose(back[..., inside], patches[..., inside], rtol=FLOAT64_RTOL)


def test_canvas_pixels_no_patch_covers_are_zero_and_everything_finite(rng) -> None:
    offsets = np.array([[[-6.0, 0.0], [6.0, 0.0]]])
    patches = _random_complex(rng, (1, 2, N, N))
    support = physics.object_support_mask(N, pad_object=True, probe_big=False)
    canvas = physics.merge_on_canvas(patches, offsets, support, physics.canvas_size_px(N, 6.0))
    assert np.all(np.isfinite(canvas))
    assert np.all(canvas[0, :8] == 0)
    assert np.all(canvas[0, :, :8] == 0)
    assert np.max(np.abs(canvas)) <= np.max(np.abs(patches)) * (1 + FLOAT64_RTOL)


def test_canvas_with_odd_margin_is_rejected(rng) -> None:
    patches = _random_complex(rng, (1, 2, N, N))
    with pytest.raises(ConfigurationError, match='even number'):
        physics.merge_on_canvas(patches, np.zeros((1, 2, 2)), np.ones((N, N)), N + 3)


def test_forward_amplitude_with_canvas_is_independent_of_batch_composition(rng) -> None:
    config = ModelConfig(pattern_size_px=N, gridsize=2, object_big=True, probe_big=False)
    probe = physics.normalize_probe(_centered_gaussian(N, 6.0), config.probe_scale)
    patches = _random_complex(rng, (3, 4, N, N))
    offsets = rng.uniform(-4, 4, size=(3, 4, 2))
    together = physics.forward_amplitude(patches, offsets, probe, config, 10.0, canvas_px=N + 8)
    for b in range(3):
        alone = physics.forward_amplitude(
            patches[b : b + 1], offsets[b : b + 1], probe, config, 10.0
        )
        np.testing.assert_allclose(together[b : b + 1], alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('sigma_px', [0.5, 0.8, 2.0])
def test_the_smoothing_matrix_applies_smooth_patches(rng, sigma_px) -> None:
    patches = _random_complex(rng, (3, 2, 24, 24))
    matrix = physics.smoothing_matrix(24, sigma_px)
    assert matrix.shape == (24, 24)
    np.testing.assert_allclose(
        matrix @ patches @ matrix.T, physics.smooth_patches(patches, sigma_px), atol=1e-13
    )


def test_no_smoothing_has_no_matrix() -> None:
    assert physics.smoothing_matrix(24, 0.0) is None


@pytest.mark.parametrize('largest', [0.0, 0.3, 3.5, 4.0, 8.2, 20.0])
def test_the_padded_canvas_rounds_the_margin_up_to_a_multiple_of_8(largest) -> None:
    offsets = np.array([[[largest, -largest / 3], [-largest / 2, 0.0]]])
    side = physics.padded_canvas_size_px(32, offsets)
    margin = (side - 32) // 2
    assert side >= physics.canvas_size_px(32, largest)
    assert (side - 32) % 2 == 0
    assert margin % physics.CANVAS_MARGIN_ROUNDING_PX == 0
    assert margin - (physics.canvas_size_px(32, largest) - 32) // 2 < 8


def test_the_padded_canvas_without_offsets_is_the_patch() -> None:
    assert physics.padded_canvas_size_px(32, np.zeros((0, 4, 2))) == 32
    assert physics.padded_canvas_size_px(36, np.zeros((2, 4, 2))) == 36

"""Patch extraction and stitching: convention, sub-pixel accuracy, round trip, weights, errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from ptychopinn_plugin.core.stitching import (
    Stitcher,
    extract_patches,
    scanned_region_mask,
    stitch_patches,
)
from ptychopinn_plugin.errors import DataContractError

ROUND_TRIP_PSNR_DB = 40.0
"""Required fidelity of extract -> stitch on a full-resolution cameraman object (project brief)."""
EXACT_ALIGNED_PSNR_DB = 40.0
"""Exact patches whose global phases were scrambled, realigned: only float32 rounding remains."""
FLOAT32_ATOL = 2e-6
"""Complex64 FFT round-off for unit-magnitude values (a few float32 epsilons times log2 N)."""


def cameraman_object() -> np.ndarray:
    """Complex 512 x 512 object: amplitude 0.5..1, phase -1..1 rad, both from skimage's camera."""
    camera = data.camera().astype(np.float64) / 255.0
    return ((0.5 + 0.5 * camera) * np.exp(1j * (2.0 * camera - 1.0))).astype(np.complex64)


def jittered_raster(rng, start_px, stop_px, step_px, jitter_px=1.0) -> np.ndarray:
    grid = np.arange(start_px, stop_px, step_px)
    x_px, y_px = np.meshgrid(grid, grid)
    positions = np.stack([x_px.ravel(), y_px.ravel()], axis=1)
    return positions + rng.uniform(-jitter_px, jitter_px, positions.shape)


def periodic_test_object(shape, period_px):
    """A band-limited complex function whose frequencies are multiples of 1 / period_px."""
    waves = np.array([[3, -5], [7, 2], [-11, 13]]) / period_px  # (row, column) cycles per pixel

    def evaluate(rows, cols):
        phases = [2 * np.pi * (fr * rows + fc * cols) for fr, fc in waves]
        return sum(np.exp(1j * phase) for phase in phases) / len(waves)

    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return evaluate(rows, cols), evaluate


@pytest.mark.parametrize('jitter_px', [0.0, 1.0])  # 0: even N at integer points, all half-pixel
def test_stitching_extracted_patches_reproduces_the_object_above_40_db(rng, jitter_px):
    object_ = cameraman_object()
    size, crop = 64, 20
    positions = jittered_raster(rng, 40, 472, crop / 2, jitter_px)  # step ~ crop / 2
    patches = extract_patches(object_, positions, size)
    stitched, weight = stitch_patches(patches, positions, object_.shape, crop)
    scanned = weight > 0  # every covered pixel, no border excluded
    assert scanned.sum() > 0.7 * object_.size
    for part in (np.real, np.imag):
        truth, result = part(object_[scanned]), part(stitched[scanned])
        data_range = float(truth.max() - truth.min())
        psnr = peak_signal_noise_ratio(truth, result, data_range=data_range)
        assert psnr > ROUND_TRIP_PSNR_DB


def test_extract_samples_a_band_limited_object_exactly_at_sub_pixel_positions(rng):
    size = 32
    object_, evaluate = periodic_test_object((160, 160), period_px=size)
    positions = rng.uniform(20, 140, (40, 2))
    patches = extract_patches(object_, positions, size)
    index = np.arange(size)
    rows = positions[:, 1, None, None] - (size - 1) / 2 + index[None, :, None]
    cols = positions[:, 0, None, None] - (size - 1) / 2 + index[None, None, :]
    np.testing.assert_allclose(patches, evaluate(rows, cols), atol=FLOAT32_ATOL)


def test_stitch_places_analytic_patches_at_sub_pixel_positions(rng):
    size, crop = 32, 12
    object_, evaluate = periodic_test_object((160, 160), period_px=size)
    positions = rng.uniform(20, 140, (200, 2))
    index = np.arange(size)
    rows = positions[:, 1, None, None] - (size - 1) / 2 + index[None, :, None]
    cols = positions[:, 0, None, None] - (size - 1) / 2 + index[None, None, :]
    stitched, weight = stitch_patches(evaluate(rows, cols), positions, object_.shape, crop)
    np.testing.assert_allclose(stitched[weight > 0], object_[weight > 0], atol=FLOAT32_ATOL)


def test_odd_patch_at_integer_position_equals_plain_slicing(rng):
    object_ = (rng.random((90, 100)) + 1j * rng.random((90, 100))).astype(np.complex64)
    size = 15
    patches = extract_patches(object_, np.array([[40.0, 30.0], [7.0, 70.0]]), size)
    half = (size - 1) // 2
    np.testing.assert_array_equal(
        patches[0], object_[30 - half : 30 + half + 1, 40 - half : 41 + half]
    )
    np.testing.assert_array_equal(patches[1], object_[70 - half : 71 + half, 7 - half : 8 + half])


def test_even_patch_at_half_integer_position_equals_plain_slicing(rng):
    # Even N: the scan point sits between pixels; x = 40.5 puts patch column 0 on 41 - N/2.
    object_ = (rng.random((90, 100)) + 1j * rng.random((90, 100))).astype(np.complex64)
    size = 16
    patches = extract_patches(object_, np.array([[40.5, 30.5]]), size)
    np.testing.assert_array_equal(patches[0], object_[31 - size // 2 : 31 + size // 2, 33:49])


def test_bright_pixel_lands_where_the_convention_puts_it():
    object_ = np.zeros((120, 140), dtype=np.complex64)
    object_[50, 70] = 1.0
    odd, even = 33, 32
    odd_patch = extract_patches(object_, np.array([[70.0, 50.0]]), odd)[0]
    # (N-1)/2 = 16: the scan point's own pixel.
    assert np.unravel_index(np.argmax(np.abs(odd_patch)), odd_patch.shape) == (16, 16)
    assert odd_patch[16, 16] == 1.0
    even_patch = extract_patches(object_, np.array([[70.5, 50.5]]), even)[0]
    # Row 50 = y - (N-1)/2 + i = 50.5 - 15.5 + i, so i = 15 = N/2 - 1 (likewise the column).
    assert np.unravel_index(np.argmax(np.abs(even_patch)), even_patch.shape) == (15, 15)
    assert even_patch[15, 15] == 1.0


def test_patch_pixels_outside_the_object_are_zero():
    object_ = np.ones((50, 60), dtype=np.complex64)
    patch = extract_patches(object_, np.array([[0.0, 0.0]]), 9)[0]  # odd N, integer: no shift
    assert np.all(patch[:4, :] == 0)
    assert np.all(patch[:, :4] == 0)
    assert np.all(patch[4:, 4:] == 1)


def test_extract_rejects_a_centre_outside_the_object():
    with pytest.raises(DataContractError, match='outside the 50 x 60 object'):
        extract_patches(np.ones((50, 60)), np.array([[10.0, 10.0], [60.0, 10.0]]), 16)


def test_extract_rejects_a_non_finite_object():
    object_ = np.ones((20, 20), dtype=np.complex64)
    object_[3, 4] = np.nan
    with pytest.raises(DataContractError, match='1 NaN or infinite pixels'):
        extract_patches(object_, np.array([[10.0, 10.0]]), 8)


def test_overlapping_crops_are_averaged_and_weights_count_them():
    patches = np.stack([np.full((8, 8), 1.0 + 1.0j), np.full((8, 8), 3.0 - 1.0j)])
    positions = np.array([[10.0, 10.0], [12.0, 10.0]])  # even N: half-pixel shifts
    stitched, weight = stitch_patches(patches, positions, (30, 30), crop_px=4)
    overlap = weight == 2
    assert overlap.sum() == 4 * 2  # crops 4 wide, 2 px apart
    np.testing.assert_allclose(stitched[overlap], 2.0 + 0.0j, atol=FLOAT32_ATOL)
    assert weight.sum() == 2 * 4 * 4
    assert weight.dtype == np.float32
    assert stitched.dtype == np.complex64


def test_uncovered_pixels_take_the_fill_and_covered_pixels_ignore_it(rng):
    object_ = (rng.random((60, 60)) + 1j * rng.random((60, 60))).astype(np.complex64)
    positions = np.array([[30.3, 29.6]])
    patches = extract_patches(object_, positions, 32)
    guess = np.full((60, 60), 5.0 - 2.0j)
    with_fill, weight = stitch_patches(patches, positions, (60, 60), 10, fill=guess)
    without_fill, _ = stitch_patches(patches, positions, (60, 60), 10)
    covered = weight > 0
    assert covered.sum() == 100
    np.testing.assert_array_equal(with_fill[~covered], guess[~covered].astype(np.complex64))
    assert np.all(without_fill[~covered] == 0)
    np.testing.assert_array_equal(with_fill[covered], without_fill[covered])


def test_crops_over_the_border_are_clipped_and_patches_outside_are_ignored():
    patches = np.ones((3, 16, 16), dtype=np.complex64)
    positions = np.array([[0.5, 0.5], [39.2, 20.0], [500.0, 500.0]])
    stitched, weight = stitch_patches(patches, positions, (30, 40), crop_px=8)
    assert weight[:4, :4].sum() > 0
    assert weight[:, -1].sum() > 0
    assert weight.sum() < 2 * 8 * 8
    np.testing.assert_allclose(stitched[weight > 0], 1.0, atol=FLOAT32_ATOL)


def test_scanned_region_mask_matches_the_stitching_weights(rng):
    positions = rng.uniform(-5, 105, (60, 2))
    patches = np.ones((60, 24, 24), dtype=np.complex64)
    _, weight = stitch_patches(patches, positions, (100, 100), crop_px=9)
    mask = scanned_region_mask(positions, (100, 100), pattern_size_px=24, crop_px=9)
    np.testing.assert_array_equal(mask, weight > 0)


def test_chunk_size_does_not_change_the_result(rng):
    object_ = cameraman_object()[:128, :128]
    positions = rng.uniform(10, 118, (37, 2))
    patches = extract_patches(object_, positions, 16, chunk_size=5)
    np.testing.assert_allclose(patches, extract_patches(object_, positions, 16), atol=1e-7)
    first = stitch_patches(patches, positions, object_.shape, 6, chunk_size=1)
    second = stitch_patches(patches, positions, object_.shape, 6, chunk_size=1000)
    np.testing.assert_allclose(first[0], second[0], atol=FLOAT32_ATOL)
    np.testing.assert_array_equal(first[1], second[1])


def test_streaming_batches_through_a_stitcher_equals_stitching_at_once(rng):
    object_ = cameraman_object()[:128, :128]
    positions = rng.uniform(10, 118, (41, 2))
    patches = extract_patches(object_, positions, 16)
    stitcher = Stitcher(object_.shape, 16, 6)
    for begin in range(0, 41, 10):
        stitcher.add(patches[begin : begin + 10], positions[begin : begin + 10])
    streamed = stitcher.result(fill=object_)
    at_once = stitch_patches(patches, positions, object_.shape, 6, fill=object_)
    np.testing.assert_allclose(streamed[0], at_once[0], atol=FLOAT32_ATOL)
    np.testing.assert_array_equal(streamed[1], at_once[1])
    assert stitcher.num_patches == 41


@pytest.mark.parametrize(
    ('patches', 'positions', 'shape', 'crop', 'kwargs', 'message'),
    [
        (np.zeros((2, 8, 8)), np.zeros((3, 2)), (20, 20), 4, {}, '2 patches but 3 positions'),
        (np.zeros((2, 8, 8)), np.zeros((2, 2)), (20, 20), 9, {}, 'crop_px=9 exceeds'),
        (np.zeros((2, 8, 6)), np.zeros((2, 2)), (20, 20), 4, {}, 'must be square'),
        (np.zeros((2, 8, 8)), np.zeros((2, 2)), (20,), 4, {}, 'object_shape must be'),
        (np.zeros((2, 8, 8)), np.zeros((2, 2)), (20, 20), 0, {}, 'crop_px must be a positive'),
        (np.zeros((2, 8, 8)), np.zeros((2, 2)), (20, 20), 4, {'fill': np.zeros((5, 5))}, 'fill'),
        (np.zeros((2, 8, 8)), np.full((2, 2), np.inf), (20, 20), 4, {}, 'NaN or infinite'),
    ],
)
def test_stitch_rejects_bad_input_with_a_data_contract_error(
    patches, positions, shape, crop, kwargs, message
):
    with pytest.raises(DataContractError, match=message):
        stitch_patches(patches, positions, shape, crop, **kwargs)


def test_phase_alignment_removes_random_global_phases_of_the_patches(rng):
    from ptychopinn_plugin.core.grouping import overlap_order

    object_ = cameraman_object()[:160, :160]
    grid = np.arange(24.0, 137.0, 8.0)  # a jittered raster whose 12 px crops overlap
    positions = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    positions += rng.uniform(-1, 1, positions.shape)
    positions = positions[overlap_order(positions)]
    count = positions.shape[0]
    patches = extract_patches(object_, positions, 32)
    phases = rng.uniform(-np.pi, np.pi, (count, 1, 1))
    scrambled = (patches * np.exp(1j * phases)).astype(np.complex64)
    mask = scanned_region_mask(positions, object_.shape, 32, 12)

    def error_db(estimate):
        aligned = estimate * np.exp(-1j * np.angle(np.vdot(object_[mask], estimate[mask])))
        difference = np.abs(aligned[mask] - object_[mask])
        return 20 * np.log10(np.abs(object_[mask]).max() / np.sqrt(np.mean(difference**2)))

    stitcher = Stitcher(object_.shape, 32, 12, align_phase=True)
    stitcher.add(scrambled, positions)
    assert error_db(stitcher.result()[0]) > EXACT_ALIGNED_PSNR_DB
    assert error_db(stitch_patches(scrambled, positions, object_.shape, 12)[0]) < 20.0


def test_global_phase_synchronisation_restores_scrambled_patches_in_any_order(rng):
    object_ = cameraman_object()[:160, :160]
    grid = np.arange(24.0, 137.0, 8.0)
    positions = np.stack(np.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    positions += rng.uniform(-1, 1, positions.shape)
    positions = positions[rng.permutation(positions.shape[0])]  # no overlap order needed
    patches = extract_patches(object_, positions, 32)
    phases = rng.uniform(-np.pi, np.pi, (positions.shape[0], 1, 1))
    scrambled = (patches * np.exp(1j * phases)).astype(np.complex64)
    mask = scanned_region_mask(positions, object_.shape, 32, 12)
    stitcher = Stitcher(object_.shape, 32, 12, synchronize_phase=True)
    stitcher.add(scrambled[:100], positions[:100])
    stitcher.add(scrambled[100:], positions[100:])
    estimate = stitcher.result()[0]
    aligned = estimate * np.exp(-1j * np.angle(np.vdot(object_[mask], estimate[mask])))
    rms = np.sqrt(np.mean(np.abs(aligned[mask] - object_[mask]) ** 2))
    peak_db = 20 * np.log10(np.abs(object_[mask]).max() / rms)
    assert peak_db > EXACT_ALIGNED_PSNR_DB
    np.testing.assert_array_equal(stitcher.result()[0], estimate)  # result() can be repeated

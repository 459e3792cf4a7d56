"""Ptychodus <-> contract translation, on data made by Ptychodus's own forward model.

Geometry (positions, object grid, patch convention) must agree with Ptychodus's mapping; counts
become amplitudes; the probe is mode 0; the dose of the simulator is calibrated; Ptychodus's own
NPZ export reads back through the contract reader.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.io import save_ptychopinn_training_data
from ptychodus.api.object import Object, ObjectCenter
from ptychodus.api.probe import ProbeSequence
from ptychodus.api.probe_positions import ProbePosition, ProbePositionSequence
from ptychodus.api.product import LossValue, Product
from ptychodus.api.reconstruct import ReconstructInput

from ptychopinn_plugin.core.contract import (
    DiffractionQuantity,
    read_training_data,
    write_training_data,
)
from ptychopinn_plugin.errors import DataContractError
from ptychopinn_plugin.ptychodus_io.inputs import training_data_from_reconstruct_input
from ptychopinn_plugin.ptychodus_io.products import (
    DEFAULT_DETECTOR_DISTANCE_M,
    DEFAULT_DETECTOR_PIXEL_SIZE_M,
    DEFAULT_PHOTON_ENERGY_EV,
    far_field_object_pixel_size_m,
    make_product,
    object_from_array,
    product_with_object,
    product_with_probe,
    product_with_probe_power,
)
from ptychopinn_plugin.ptychodus_io.simulation import PtychodusSimulation, simulate_with_ptychodus

N = 32
OBJECT_SIDE_PX = 96
WAVELENGTH_M = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
PIXEL_SIZE_M = far_field_object_pixel_size_m(N, wavelength_m=WAVELENGTH_M)
NUM_PHOTONS = 1e5

POSITION_ATOL_PX = 1e-9
"""Metres -> pixels -> metres round trip loses only float64 rounding (about 1e-14 px here)."""
DOSE_RTOL = 0.01
"""Poisson scatter of the mean total counts of 196 patterns is 1/sqrt(196 * photons), at most
0.23 % at 1e3 photons; the calibration itself is exact up to rounding."""
SIMULATOR_PEAK_RTOL = 1e-5
"""Our evaluation of the simulator's formula matches to ~1.5e-7 of the peak (the simulator works in
complex64); a patch one pixel off misses by more than 7e-3 of the peak."""
CALIBRATION_RTOL = 1e-6
"""The noise-free dose is exact up to rounding the rescaled probe to complex64 (~1e-7)."""
EXPORT_AMPLITUDE_RTOL = 1e-6
"""Ptychodus's export and our translation take float32 square roots of the same repaired counts."""


def _object(height_px: int = OBJECT_SIDE_PX, width_px: int = OBJECT_SIDE_PX) -> np.ndarray:
    yy, xx = np.mgrid[:height_px, :width_px]
    amplitude = 0.8 + 0.15 * np.cos(xx / 5.0) * np.sin(yy / 9.0)
    return (amplitude * np.exp(0.6j * np.sin(yy / 7.0 + xx / 11.0))).astype(np.complex64)


def _probe(num_modes: int = 1) -> np.ndarray:
    radius = np.hypot(*(np.mgrid[:N, :N] - (N - 1) / 2))
    mode0 = np.exp(-((radius / 5.0) ** 2)) * np.exp(0.02j * radius**2)
    modes = [mode0] + [
        0.3 * mode0 * np.exp(1j * k * np.arctan2(*(np.mgrid[:N, :N] - 15.5)))
        for k in range(1, num_modes)
    ]
    return np.asarray(modes if num_modes > 1 else mode0, dtype=np.complex64)


def _grid_positions() -> np.ndarray:
    """Scan on half-integer pixels: x - (N-1)/2 is integral, so the simulator needs no shift."""
    steps = np.arange(20.5, 76.0, 4.0)
    return np.array([(x, y) for y in steps for x in steps])


def _product(num_modes: int = 1) -> Product:
    return make_product(
        _object(),
        _probe(num_modes),
        _grid_positions(),
        pixel_size_m=PIXEL_SIZE_M,
        wavelength_m=WAVELENGTH_M,
        name='test-scan',
    )


def _scan(
    num_modes: int = 1, seed: int = 7, num_photons: float = NUM_PHOTONS
) -> PtychodusSimulation:
    return simulate_with_ptychodus(
        _product(num_modes), num_photons=num_photons, rng=np.random.default_rng(seed)
    )


@pytest.fixture(scope='module')
def two_mode_scan() -> PtychodusSimulation:
    return _scan(num_modes=2)


def _with_patterns(parameters: ReconstructInput, patterns, bad_pixels=None) -> ReconstructInput:
    return ReconstructInput(patterns, bad_pixels, parameters.product)


# --- geometry ----------------------------------------------------------------------------------


def test_far_field_pixel_size_follows_lambda_z_over_n_detector_pixel() -> None:
    expected = WAVELENGTH_M * DEFAULT_DETECTOR_DISTANCE_M / (N * DEFAULT_DETECTOR_PIXEL_SIZE_M)
    assert PIXEL_SIZE_M == pytest.approx(expected, rel=1e-15)
    assert 50e-9 < PIXEL_SIZE_M < 200e-9  # a plausible hard X-ray ptychography pixel


def test_make_product_stores_positions_that_ptychodus_maps_back_to_the_given_pixels() -> None:
    product = _product()
    geometry = product.object_.get_geometry()
    positions = product.probe_positions
    mapped = np.stack(
        [
            geometry.map_probe_positions_to_object_x_px(positions),
            geometry.map_probe_positions_to_object_y_px(positions),
        ],
        axis=1,
    )
    np.testing.assert_allclose(mapped, _grid_positions(), rtol=0, atol=POSITION_ATOL_PX)
    np.testing.assert_array_equal(positions.get_indexes(), np.arange(len(positions)))
    assert (geometry.center_x_m, geometry.center_y_m) == (0.0, 0.0)
    assert product.metadata.far_field
    assert product.metadata.photon_energy_eV == pytest.approx(DEFAULT_PHOTON_ENERGY_EV)


def test_translated_positions_match_ptychodus_mapping_on_an_off_centre_object() -> None:
    """A product not built by us: non-square pixels, object centred away from the origin."""
    pixel = PixelGeometry(width_m=80e-9, height_m=60e-9)
    center = ObjectCenter(x_m=3.3e-6, y_m=-1.7e-6)
    object_ = Object(_object(80, 100), pixel, center)
    points = [
        ProbePosition(index=10 + k, x_m=3.3e-6 + 1e-7 * k, y_m=-1.7e-6 - 7e-8 * k) for k in range(6)
    ]
    probe = ProbeSequence(_probe(), None, pixel)
    product = Product(_product().metadata, ProbePositionSequence(points), probe, object_, [])
    counts = np.full((6, N, N), 4.0)
    data = training_data_from_reconstruct_input(ReconstructInput(counts, None, product))
    for row, point in enumerate(points):
        expected = object_.get_geometry().map_coordinates_probe_to_object(point)
        assert data.positions_px[row, 0] == pytest.approx(expected.x_px, abs=POSITION_ATOL_PX)
        assert data.positions_px[row, 1] == pytest.approx(expected.y_px, abs=POSITION_ATOL_PX)
    np.testing.assert_array_equal(data.scan_index, np.arange(10, 16))
    assert data.metadata.object_center_x_m == center.x_m
    assert data.metadata.object_pixel_height_m == pixel.height_m


def test_contract_patch_convention_matches_the_ptychodus_simulator() -> None:
    """Scan point at patch index (N-1)/2: the patch covers x-(N-1)/2 .. x+(N-1)/2.

    For an integral x - (N-1)/2 Ptychodus cuts exactly that patch and applies no Fourier shift; its
    far-field propagator is a scaled FFT with a small input quadratic phase (Fresnel transform).
    """
    scan = simulate_with_ptychodus(_product(), num_photons=NUM_PHOTONS, rng=None)
    product = scan.product
    probe = product.probes.get_probe_no_opr().get_incoherent_mode(0).astype(np.complex128)
    obj = product.object_.get_layer(0).astype(np.complex128)
    fresnel = PIXEL_SIZE_M**2 / (WAVELENGTH_M * DEFAULT_DETECTOR_DISTANCE_M)
    centred = np.arange(N) - N // 2
    quadratic = np.exp(1j * np.pi * fresnel * (centred[:, None] ** 2 + centred[None, :] ** 2))

    def peak_relative_error(row: int, offset_px: int) -> float:
        x_px, y_px = _grid_positions()[row]
        x0 = int(x_px - (N - 1) / 2) + offset_px
        y0 = int(y_px - (N - 1) / 2)
        exit_wave = probe * obj[y0 : y0 + N, x0 : x0 + N] * quadratic
        far_field = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(exit_wave)))
        expected = fresnel**2 * np.abs(far_field) ** 2
        return float(np.max(np.abs(scan.counts[row] - expected)) / np.max(expected))

    for row in (0, 17, 101):
        assert peak_relative_error(row, 0) < SIMULATOR_PEAK_RTOL
        assert peak_relative_error(row, 1) > 100 * SIMULATOR_PEAK_RTOL


def test_object_from_array_keeps_pixel_size_centre_and_position_mapping() -> None:
    pixel = PixelGeometry(width_m=80e-9, height_m=60e-9)
    like = Object(np.ones((2, 40, 50), np.complex64), pixel, ObjectCenter(2e-6, -5e-7), [1e-6])
    result = object_from_array(_object(40, 50), like)
    assert result.get_geometry() == like.get_geometry()
    assert result.num_layers == 1
    assert list(result.layer_spacing_m) == []
    assert result.dtype == np.complex64
    np.testing.assert_array_equal(result.get_layer(0), _object(40, 50))
    points = ProbePositionSequence([ProbePosition(0, 2.1e-6, -4e-7)])
    assert result.get_geometry().map_probe_positions_to_object_x_px(points) == pytest.approx(
        like.get_geometry().map_probe_positions_to_object_x_px(points)
    )


def test_object_from_array_rejects_an_array_off_the_product_grid() -> None:
    like = _product().object_
    with pytest.raises(DataContractError, match='stitch the reconstruction onto the product'):
        object_from_array(np.ones((OBJECT_SIDE_PX, OBJECT_SIDE_PX - 1), np.complex64), like)


def test_product_with_object_replaces_only_the_object() -> None:
    product = _product()
    product = Product(
        product.metadata,
        product.probe_positions,
        product.probes,
        product.object_,
        [LossValue(0, 1.5)],
    )
    replaced = product_with_object(product, np.zeros((OBJECT_SIDE_PX, OBJECT_SIDE_PX)))
    assert replaced.metadata is product.metadata
    assert replaced.probe_positions is product.probe_positions
    assert replaced.probes is product.probes
    assert list(replaced.losses) == [LossValue(0, 1.5)]
    assert replaced.object_.get_geometry() == product.object_.get_geometry()
    assert not np.any(replaced.object_.get_array())


def test_product_with_probe_power_sets_the_total_probe_intensity(two_mode_scan) -> None:
    product = two_mode_scan.product
    rescaled = product_with_probe_power(product, 2.5e5)
    probes, before = rescaled.probes.get_array(), product.probes.get_array()
    assert np.sum(np.abs(probes) ** 2) == pytest.approx(2.5e5, rel=1e-5)
    ratio = probes / before
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)  # one real factor, all modes
    assert abs(ratio.flat[0].imag) < 1e-6 * ratio.flat[0].real
    assert rescaled.probe_positions is product.probe_positions
    np.testing.assert_array_equal(rescaled.object_.get_array(), product.object_.get_array())
    with pytest.raises(DataContractError, match='photons_per_pattern must be positive'):
        product_with_probe_power(product, 0.0)


def test_product_with_probe_replaces_mode_zero_at_its_power(two_mode_scan) -> None:
    product = two_mode_scan.product
    before = product.probes.get_array()
    new = np.rot90(before[0, 0]) * 7.0  # another probe at another scale
    replaced = product_with_probe(product, new)
    after = replaced.probes.get_array()
    np.testing.assert_allclose(
        np.sum(np.abs(after[0, 0]) ** 2), np.sum(np.abs(before[0, 0]) ** 2), 1e-5
    )
    np.testing.assert_allclose(after[0, 0], new / 7.0, rtol=1e-4, atol=1e-6 * np.abs(new).max())
    np.testing.assert_array_equal(after[:, 1:], before[:, 1:])  # the other modes are kept
    assert replaced.probe_positions is product.probe_positions
    with pytest.raises(DataContractError, match='replacement probe'):
        product_with_probe(product, new[:-1])


# --- ReconstructInput -> TrainingData ----------------------------------------------------------


def test_reconstruct_input_becomes_amplitude_mode_zero_probe_and_counts_metadata(
    two_mode_scan: PtychodusSimulation,
) -> None:
    parameters = two_mode_scan.reconstruct_input
    data = training_data_from_reconstruct_input(parameters)
    counts = two_mode_scan.counts
    np.testing.assert_array_equal(data.diffraction_amplitude, np.sqrt(counts.astype(np.float32)))
    product_probe = parameters.product.probes.get_array()
    assert product_probe.shape == (1, 2, N, N)
    np.testing.assert_array_equal(data.probe, product_probe[0, 0])
    np.testing.assert_array_equal(data.object_guess, parameters.product.object_.get_layer(0))
    np.testing.assert_array_equal(data.scan_index, parameters.product.probe_positions.get_indexes())
    np.testing.assert_allclose(data.positions_px, _grid_positions(), atol=POSITION_ATOL_PX)
    metadata = data.metadata
    assert metadata.source_quantity is DiffractionQuantity.COUNTS
    assert metadata.num_photons == pytest.approx(np.mean(counts.sum(axis=(1, 2))), rel=1e-12)
    assert metadata.probe_modes_dropped == 1
    assert metadata.num_bad_pixels == 0
    assert metadata.object_pixel_width_m == PIXEL_SIZE_M
    assert (metadata.object_center_x_m, metadata.object_center_y_m) == (0.0, 0.0)
    assert 'test-scan' in metadata.source


def test_bad_pixels_are_inpainted_or_zeroed_and_counted(two_mode_scan: PtychodusSimulation) -> None:
    parameters = two_mode_scan.reconstruct_input
    counts = two_mode_scan.counts.copy()
    bad = np.zeros((N, N), dtype=bool)
    bad[[3, 10, 20], [5, 12, 25]] = True
    hot = counts.copy()
    hot[:, bad] = 1e9  # saturated pixels that must not reach the network
    inpainted = training_data_from_reconstruct_input(_with_patterns(parameters, hot, bad))
    assert inpainted.metadata.num_bad_pixels == 3
    filled = inpainted.diffraction_amplitude[:, bad] ** 2
    assert np.all(filled >= 0)
    assert filled.max() <= counts.max()
    good = ~bad
    np.testing.assert_array_equal(
        inpainted.diffraction_amplitude[:, good], np.sqrt(counts[:, good].astype(np.float32))
    )
    zeroed = training_data_from_reconstruct_input(
        _with_patterns(parameters, hot, bad), inpaint_bad_pixels=False
    )
    assert not np.any(zeroed.diffraction_amplitude[:, bad])
    assert zeroed.metadata.num_bad_pixels == 3


def test_bad_pixel_mask_of_another_size_is_rejected(two_mode_scan: PtychodusSimulation) -> None:
    parameters = two_mode_scan.reconstruct_input
    mask = np.zeros((N + 2, N + 2), dtype=bool)
    with pytest.raises(DataContractError, match='crop the mask together'):
        training_data_from_reconstruct_input(_with_patterns(parameters, two_mode_scan.counts, mask))


def test_probe_size_differing_from_pattern_size_says_crop_or_resample(
    two_mode_scan: PtychodusSimulation,
) -> None:
    parameters = two_mode_scan.reconstruct_input
    cropped = two_mode_scan.counts[:, 2:-2, 2:-2]
    with pytest.raises(DataContractError, match=r'probe is 32 x 32.*28 x 28.*crop.*resample'):
        training_data_from_reconstruct_input(_with_patterns(parameters, cropped))


def test_reconstruct_input_without_patterns_is_rejected(two_mode_scan: PtychodusSimulation) -> None:
    parameters = two_mode_scan.reconstruct_input
    with pytest.raises(DataContractError, match='no diffraction patterns'):
        training_data_from_reconstruct_input(_with_patterns(parameters, np.zeros((0, N, N))))


def test_patterns_not_paired_one_to_one_with_positions_are_rejected(
    two_mode_scan: PtychodusSimulation,
) -> None:
    parameters = two_mode_scan.reconstruct_input
    with pytest.raises(DataContractError, match='prepare_reconstruct_input'):
        training_data_from_reconstruct_input(_with_patterns(parameters, two_mode_scan.counts[:-1]))


def test_probe_and_object_on_different_pixel_grids_are_rejected() -> None:
    product = _product()
    coarse = Object(
        _object(), PixelGeometry(2 * PIXEL_SIZE_M, 2 * PIXEL_SIZE_M), ObjectCenter(0, 0)
    )
    product = Product(product.metadata, product.probe_positions, product.probes, coarse, [])
    counts = np.ones((len(product.probe_positions), N, N))
    with pytest.raises(DataContractError, match='one grid'):
        training_data_from_reconstruct_input(ReconstructInput(counts, None, product))


# --- simulation --------------------------------------------------------------------------------


@pytest.mark.parametrize('num_photons', [1e3, 1e6])
def test_simulation_hits_the_requested_mean_photon_count(num_photons: float) -> None:
    scan = _scan(num_photons=num_photons)
    measured = float(np.mean(scan.counts.sum(axis=(1, 2))))
    assert measured == pytest.approx(num_photons, rel=DOSE_RTOL)
    assert np.all(scan.counts == np.round(scan.counts))  # Poisson counts
    noise_free = simulate_with_ptychodus(_product(), num_photons=num_photons, rng=None)
    assert float(np.mean(noise_free.counts.sum(axis=(1, 2)))) == pytest.approx(
        num_photons, rel=CALIBRATION_RTOL
    )
    # The object absorbs: a transparent object would pass more photons than were detected.
    assert scan.incident_photons_per_pattern > num_photons
    probe = scan.product.probes.get_array()
    assert scan.product.metadata.probe_photon_count == pytest.approx(np.sum(np.abs(probe) ** 2))


def test_simulation_is_deterministic_for_a_seed() -> None:
    first, again, other = _scan(seed=11), _scan(seed=11), _scan(seed=12)
    np.testing.assert_array_equal(first.counts, again.counts)
    assert not np.array_equal(first.counts, other.counts)
    assert first.probe_amplitude_scale == other.probe_amplitude_scale


def test_simulation_refuses_near_field_products_and_patches_outside_the_object() -> None:
    product = _product()
    near = Product(
        replace(product.metadata, far_field=False),
        product.probe_positions,
        product.probes,
        product.object_,
        [],
    )
    with pytest.raises(DataContractError, match='far-field'):
        simulate_with_ptychodus(near, num_photons=NUM_PHOTONS, rng=None)
    edge = make_product(
        _object(),
        _probe(),
        np.array([[10.0, 48.0]]),
        pixel_size_m=PIXEL_SIZE_M,
        wavelength_m=WAVELENGTH_M,
    )
    with pytest.raises(DataContractError, match='pad the object'):
        simulate_with_ptychodus(edge, num_photons=NUM_PHOTONS, rng=None)


# --- files -------------------------------------------------------------------------------------


def test_translated_data_round_trips_through_a_contract_file(
    two_mode_scan: PtychodusSimulation, tmp_path: Path
) -> None:
    data = training_data_from_reconstruct_input(two_mode_scan.reconstruct_input)
    back = read_training_data(write_training_data(tmp_path / 'train_data.npz', data))
    np.testing.assert_array_equal(back.diffraction_amplitude, data.diffraction_amplitude)
    np.testing.assert_array_equal(back.positions_px, data.positions_px)
    np.testing.assert_array_equal(back.probe, data.probe)
    np.testing.assert_array_equal(back.object_guess, data.object_guess)
    np.testing.assert_array_equal(back.scan_index, data.scan_index)
    assert back.metadata == data.metadata


def test_ptychodus_export_reads_back_as_amplitude_with_the_mode_zero_probe(
    two_mode_scan: PtychodusSimulation, tmp_path: Path
) -> None:
    parameters = two_mode_scan.reconstruct_input
    bad = np.zeros((N, N), dtype=bool)
    bad[7, 9] = True
    parameters = _with_patterns(parameters, two_mode_scan.counts, bad)
    path = tmp_path / 'ptychodus_export.npz'
    save_ptychopinn_training_data(path, parameters)
    exported = read_training_data(path)
    ours = training_data_from_reconstruct_input(parameters)
    np.testing.assert_allclose(
        exported.diffraction_amplitude, ours.diffraction_amplitude, rtol=EXPORT_AMPLITUDE_RTOL
    )
    np.testing.assert_array_equal(exported.probe, ours.probe)
    np.testing.assert_array_equal(exported.positions_px, ours.positions_px)
    np.testing.assert_array_equal(exported.object_guess, ours.object_guess)
    assert exported.metadata.source_quantity is DiffractionQuantity.COUNTS
    assert exported.metadata.num_photons == pytest.approx(ours.metadata.num_photons, rel=1e-9)
    assert exported.metadata.probe_modes_dropped == ours.metadata.probe_modes_dropped == 1
    assert exported.metadata.num_bad_pixels == ours.metadata.num_bad_pixels == 1
    # Ptychodus writes scan_index = 0 for every pattern (its single-object convention).
    assert not np.any(exported.scan_index)

"""The object-wide phase ramp: measured from diffraction centres of mass, removed by inference."""

from __future__ import annotations

import numpy as np
import pytest

from ptychopinn_plugin.config import InferenceConfig, ModelConfig
from ptychopinn_plugin.core import metrics, physics, simulate
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.inference import reconstruct_object
from ptychopinn_plugin.solver import phase_ramp as refine

N = 64
RAMP = (0.006, -0.004)
"""rad/px (x, y): the size of the tilt a short training leaves in every patch (measured 0.005)."""
RAMP_TOLERANCE = 3e-4
"""rad/px: a 3e-4 rad/px residue is 0.1 rad across a 300 px field, below what SSIM notices."""
CENTROID_TOLERANCE_PX = 2e-3
"""A contained far field shifts by exactly a N / 2 pi pixels; the rest is the tails' wrap-around."""
ALIGNED_PHASE_SSIM = 0.95
MISALIGNED_PHASE_SSIM = 0.7
"""Perfect patches with random offsets and a common tilt: the default inference recovers the phase
(>= 0.95 SSIM, measured 0.999), stitching them as they come does not (measured 0.006), nor does
phase synchronisation without the ramp fitted to the data (measured 0.40)."""


@pytest.fixture(scope='module')
def scan():
    return simulate.make_scan('smooth', num_patterns=196, pattern_size_px=N, seed=4, poisson=False)


def _ramp(shape, ramp):
    rows, cols = np.mgrid[: shape[0], : shape[1]]
    return np.exp(1j * (ramp[0] * cols + ramp[1] * rows))


def test_a_phase_tilt_moves_the_diffraction_centre_by_n_over_two_pi() -> None:
    probe = simulate.disk_probe(N, 0.2 * N, propagation_px2=0.4 * N, aberration_rad=3.0)
    flat = np.ones((1, N, N), np.complex128)
    tilted = flat * _ramp((N, N), RAMP)[None]
    before, after = (
        refine.diffraction_centroids_px(physics.farfield_amplitude(probe * p) ** 2)
        for p in (flat, tilted)
    )
    expected = np.array(RAMP) * N / (2 * np.pi)
    np.testing.assert_allclose(after - before, expected[None], atol=CENTROID_TOLERANCE_PX)


def test_the_ramp_added_to_an_object_is_measured_from_the_data_and_removed(scan) -> None:
    data = scan.data
    truth = scan.object_
    ramped = (truth * np.conj(_ramp(truth.shape, RAMP))).astype(np.complex64)
    weight = np.ones(truth.shape, np.float32)
    found = refine.fit_phase_ramp(
        ramped, weight, data.positions_px, data.diffraction_amplitude, data.probe
    )
    np.testing.assert_allclose(found, RAMP, atol=RAMP_TOLERANCE)
    fixed = refine.apply_phase_ramp(ramped, found, weight > 0)
    mask = scanned_region_mask(data.positions_px, truth.shape, N, 20)
    assert metrics.compare_objects(fixed, truth, mask)['phase_ssim'] > 0.99


def test_without_fully_covered_scan_points_the_ramp_is_left_alone(scan) -> None:
    data = scan.data
    weight = np.zeros(scan.object_.shape, np.float32)
    weight[::2] = 1.0  # every other row missing: no window is fully covered
    found = refine.fit_phase_ramp(
        scan.object_, weight, data.positions_px, data.diffraction_amplitude, data.probe
    )
    assert found == (0.0, 0.0)


def test_data_centred_off_the_model_leave_the_object_alone_with_a_warning(scan, caplog) -> None:
    """A detector-centre offset of 1.5 px is not a network tilt: no ramp, a warning instead."""
    data = scan.data
    shifted = np.roll(data.diffraction_amplitude, (1, 2), axis=(1, 2))  # 2 px in x, 1 px in y
    weight = np.ones(scan.object_.shape, np.float32)
    with caplog.at_level('WARNING', logger='ptychopinn_plugin.solver.phase_ramp'):
        found = refine.fit_phase_ramp(scan.object_, weight, data.positions_px, shifted, data.probe)
    assert found == (0.0, 0.0)
    assert 'phase ramp correction skipped' in caplog.text
    assert '(1.99, 1.00) detector pixels' in caplog.text  # wrap-around of the tails: 1.99
    assert 'crop centre' in caplog.text


def test_the_ramp_spares_pixels_outside_the_covered_region() -> None:
    object_ = np.full((8, 10), 0.5 + 0.5j, np.complex64)
    covered = np.zeros(object_.shape, bool)
    covered[2:5, 3:7] = True
    result = refine.apply_phase_ramp(object_, (0.3, -0.2), covered)
    assert np.all(result[~covered] == object_[~covered])
    np.testing.assert_allclose(np.abs(result), np.abs(object_), rtol=1e-6)
    assert not np.allclose(result[covered], object_[covered])


class TiltedOracle:
    """Engine double: the true patch of each group, with a random phase and a common tilt.

    That is what a trained network returns, idealised: each patch right up to the two things the
    far field cannot pin per patch (global phase) or pins only weakly (a small tilt).
    """

    solver_device = None  # the refinement runs with NumPy

    def __init__(self, data) -> None:
        self.truth = data.ground_truth_patches
        rng = np.random.default_rng(0)
        self.offsets = rng.uniform(-np.pi, np.pi, data.num_patterns)
        centred = np.arange(N) - N / 2
        self.tilt = np.exp(1j * (RAMP[0] * centred[None, :] + RAMP[1] * centred[:, None]))
        self.done = 0

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        rows = np.arange(self.done, self.done + inputs.shape[0])
        self.done += inputs.shape[0]
        patches = self.truth[rows] * np.exp(1j * self.offsets[rows])[:, None, None] * self.tilt
        return patches[:, None].astype(np.complex64)


@pytest.mark.parametrize(
    ('inference', 'minimum', 'maximum'),
    [
        (InferenceConfig(refine_iterations=0), ALIGNED_PHASE_SSIM, 1.0),
        (
            InferenceConfig(phase_ramp_correction=False, refine_iterations=0),
            0.0,
            MISALIGNED_PHASE_SSIM,
        ),
        (
            InferenceConfig(
                phase_alignment='none', phase_ramp_correction=False, refine_iterations=0
            ),
            0.0,
            MISALIGNED_PHASE_SSIM,
        ),
    ],
    ids=['default', 'no-ramp-correction', 'as-predicted'],
)
def test_default_inference_undoes_patch_phase_offsets_and_tilts(
    scan, inference, minimum, maximum
) -> None:
    data = scan.data
    steps = reconstruct_object(
        TiltedOracle(data),
        data,
        ModelConfig(pattern_size_px=N),
        inference,
        object_shape=scan.object_.shape,
    )
    final = list(steps)[-1].object_
    mask = scanned_region_mask(data.positions_px, scan.object_.shape, N, 20)
    phase_ssim = metrics.compare_objects(final, scan.object_, mask)['phase_ssim']
    assert minimum <= phase_ssim <= maximum

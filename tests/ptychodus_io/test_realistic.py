"""Realistic benchmark scans: Ptychodus's zone plate, natural-image objects, scans, dose."""

from __future__ import annotations

import numpy as np
import pytest
from ptychodus.api.geometry import PixelGeometry
from ptychodus.api.plugins import PluginRegistry
from ptychodus.api.probe import ProbeGeometry, ProbeGeometryProvider
from ptychodus.api.settings import SettingsRegistry
from ptychodus.model.product.probe.fzp import FresnelZonePlateProbeBuilder
from ptychodus.model.product.probe.settings import ProbeSettings
from ptychodus.plugins.fresnel_zone_plate import register_plugins
from scipy.spatial import cKDTree

from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.ptychodus_io.realistic import (
    AMPLITUDE_RANGE,
    PHASE_RANGE_RAD,
    RealisticSpec,
    make_realistic_scan,
    scan_step_px,
    zone_plate_probe,
)

SMALL = RealisticSpec(num_points=50, num_photons=1e4)
"""A non-square point count, low dose: a fast scan (object about 120 px)."""
PROBE_MATCH_RTOL = 1e-6
"""Our probe and Ptychodus's builder's run the same function: equal to float rounding."""
DOSE_RTOL = 0.01
"""Mean counts per pattern against the requested dose. The calibration is exact for the
noise-free counts; Poisson noise moves the mean of 50 patterns of 1e4 counts by about 0.14 %."""
DIAGNOSTICS_DIAMETER_PX = 27.0
"""The diagnostics' zone plate (quality-diagnostics.md): 90 % of the power within 27 px."""
DIAGNOSTICS_DISC_RADIUS_PX = 16.0
"""The diagnostics' zone plate: far-field disc radius 16 px of 64."""


class _Geometry(ProbeGeometryProvider):
    """What Ptychodus's probe builder asks of the product: the default far-field geometry."""

    def __init__(self, spec: RealisticSpec) -> None:
        self._spec = spec

    detector_distance_m = 1.0
    far_field = True
    probe_photon_count = 1.0
    probe_power_W = 0.0  # noqa: N815 (Ptychodus's name)
    num_scan_points = 1

    @property
    def photon_wavelength_m(self) -> float:
        return self._spec.wavelength_m

    def get_detector_pixel_geometry(self) -> PixelGeometry:
        return PixelGeometry(width_m=75e-6, height_m=75e-6)

    def get_probe_geometry(self) -> ProbeGeometry:
        n, pixel_m = self._spec.pattern_size_px, self._spec.pixel_size_m
        return ProbeGeometry(width_px=n, height_px=n, pixel_width_m=pixel_m, pixel_height_m=pixel_m)


def _builder_probe(spec: RealisticSpec, preset_display_name: str) -> np.ndarray:
    registry = PluginRegistry()
    register_plugins(registry)
    builder = FresnelZonePlateProbeBuilder(
        np.random.default_rng(0), ProbeSettings(SettingsRegistry()), registry.fresnel_zone_plates
    )
    builder.apply_presets(preset_display_name)
    builder.defocus_distance_m.set_value(spec.defocus_m)
    probes = builder.build(_Geometry(spec))
    return np.asarray(probes.get_array()).reshape(-1, spec.pattern_size_px, spec.pattern_size_px)[0]


def _unit(array: np.ndarray) -> np.ndarray:
    return array / np.linalg.norm(array)


def test_probe_is_what_ptychodus_zone_plate_builder_makes_from_the_preset() -> None:
    spec = RealisticSpec()
    ours = zone_plate_probe(spec)
    theirs = _builder_probe(spec, 'APS 33-ID-C VelociProbe')
    np.testing.assert_allclose(_unit(ours), _unit(theirs), rtol=0, atol=PROBE_MATCH_RTOL)


def test_probe_matches_the_diagnostics_zone_plate_with_its_central_stop() -> None:
    probe = zone_plate_probe(RealisticSpec())
    assert simulate.power_diameter_px(probe) == pytest.approx(DIAGNOSTICS_DIAMETER_PX, abs=1.0)
    far_field = np.abs(np.fft.fftshift(np.fft.fft2(probe))) ** 2
    rows, cols = np.indices(far_field.shape)
    radius = np.hypot(rows - 32, cols - 32)
    outside = far_field[radius > DIAGNOSTICS_DISC_RADIUS_PX + 1.5].sum() / far_field.sum()
    assert outside < 0.01, 'the far-field disc extends beyond 16 px'
    # the 60 um stop of the 180 um plate darkens the inner third of the disc
    stop = far_field[radius < 3].mean()
    annulus = far_field[(radius > 8) & (radius < 14)].mean()
    assert stop < 0.01 * annulus


def test_objects_span_the_ranges_and_train_and_test_objects_differ() -> None:
    train = make_realistic_scan('train', SMALL, seed=0)
    test = make_realistic_scan('test', SMALL, seed=0)
    for scan in (train, test):
        amplitude, phase = np.abs(scan.truth), np.angle(scan.truth)
        assert amplitude.min() == pytest.approx(AMPLITUDE_RANGE[0], abs=1e-9)
        assert amplitude.max() == pytest.approx(AMPLITUDE_RANGE[1], abs=1e-9)
        assert phase.min() == pytest.approx(PHASE_RANGE_RAD[0], abs=1e-9)
        assert phase.max() == pytest.approx(PHASE_RANGE_RAD[1], abs=1e-9)
        assert np.corrcoef(amplitude.ravel(), phase.ravel())[0, 1] < 0.5
    assert train.truth.shape == test.truth.shape
    for part in (np.abs, np.angle):
        correlation = np.corrcoef(part(train.truth).ravel(), part(test.truth).ravel())[0, 1]
        assert abs(correlation) < 0.5


def test_siemens_star_is_the_test_object_on_request() -> None:
    spec = RealisticSpec(num_points=50, num_photons=1e4, test_object='siemens')
    test = make_realistic_scan('test', spec, seed=0)
    height, width = test.truth.shape
    angles = np.linspace(0, 2 * np.pi, 720, endpoint=False)
    ring = 0.3 * min(height, width)
    rows = np.round((height - 1) / 2 + ring * np.sin(angles)).astype(int)
    cols = np.round((width - 1) / 2 + ring * np.cos(angles)).astype(int)
    phase_on_ring = np.angle(test.truth[rows, cols])
    # 36 spokes: the phase along a circle about the centre repeats 36 times
    spectrum = np.abs(np.fft.rfft(phase_on_ring - phase_on_ring.mean()))
    assert int(np.argmax(spectrum)) == 36


@pytest.mark.parametrize('pattern', ['raster', 'spiral'])
def test_scans_have_the_requested_points_at_the_requested_overlap(pattern) -> None:
    spec = RealisticSpec(num_points=50, num_photons=1e4, pattern=pattern)
    scan = make_realistic_scan('train', spec, seed=0)
    assert scan.positions_px.shape == (50, 2)
    assert scan.simulated.counts.shape == (50, 64, 64)
    step = scan_step_px(spec, zone_plate_probe(spec))
    assert step == pytest.approx((1 - 0.7) * DIAGNOSTICS_DIAMETER_PX, rel=0.05)
    distances, _ = cKDTree(scan.positions_px).query(scan.positions_px, k=2)
    # raster: jitter of 10 % of the step; spiral: its neighbour distance varies about the step
    assert np.median(distances[:, 1]) == pytest.approx(step, rel=0.2)


@pytest.mark.parametrize('num_photons', [1e4, 1e6])
def test_mean_counts_per_pattern_are_the_requested_dose(num_photons) -> None:
    spec = RealisticSpec(num_points=50, num_photons=num_photons)
    counts = make_realistic_scan('test', spec, seed=0).simulated.counts
    assert np.all(counts == np.round(counts)), 'Poisson counts are whole numbers'
    mean = float(np.mean(np.sum(counts, axis=(1, 2))))
    assert mean == pytest.approx(num_photons, rel=DOSE_RTOL)


def test_the_same_seed_gives_the_same_scan_and_another_seed_another() -> None:
    first = make_realistic_scan('train', SMALL, seed=3)
    again = make_realistic_scan('train', SMALL, seed=3)
    other = make_realistic_scan('train', SMALL, seed=4)
    np.testing.assert_array_equal(first.simulated.counts, again.simulated.counts)
    np.testing.assert_array_equal(first.truth, again.truth)
    assert not np.array_equal(first.truth, other.truth)


def test_an_unknown_preset_is_refused_with_the_presets_named() -> None:
    with pytest.raises(ConfigurationError, match='APS_Velociprobe'):
        zone_plate_probe(RealisticSpec(zone_plate_preset='no such plate'))


def test_a_spec_out_of_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match='overlap_fraction'):
        RealisticSpec(overlap_fraction=1.2)
    with pytest.raises(ConfigurationError, match='num_points'):
        RealisticSpec(num_points=0)

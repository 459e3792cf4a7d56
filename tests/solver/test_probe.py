"""Probe refinement before training (``solver/probe.py``, ``OverlapRefinement`` with
``refine_probe``) and how training and inference use it (``workflow.py``).

Figures measured on 2026-12-03 (machine B, 2-core Xeon) on the camera scan below (N = 32, 144
points, 1e5 photons per pattern), whose probe is tilted by one detector pixel (the far field moved
by one pixel: the offset diffraction centre of the measured Siemens star, in small).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ptychopinn_plugin.config import (
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    PluginConfig,
    ProbeRefinement,
    ReconstructionProbe,
    TrainingConfig,
)
from ptychopinn_plugin.core import metrics, simulate
from ptychopinn_plugin.errors import ConfigurationError
from ptychopinn_plugin.solver.consistency import preflight_consistency
from ptychopinn_plugin.solver.overlap import OverlapRefinement
from ptychopinn_plugin.solver.probe import choose_probe, refine_probe
from ptychopinn_plugin.workflow import TrainingRun, model_probe, probe_was_refined, reconstruct

N = 32
TILTED_BEFORE = 5.0
"""Median misfit (x noise) of the tilted probe after the 30-iteration check: measured 8.5 (the
true probe: 1.2; the warning threshold ``WARN_NOISE_RATIO`` is 4)."""
REFINED_AFTER = 2.0
"""... and of the probe refined for 100 iterations: measured 1.32."""
REFINED_CORRELATION = 0.9
"""Correlation of the refined probe with the true one: measured 0.94 (the tilted one: 0.81)."""
TILTED_CORRELATION = 0.85


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope='module')
def camera():
    return simulate.make_scan(
        'camera', num_patterns=144, pattern_size_px=N, num_photons=1e5, seed=1
    )


@pytest.fixture(scope='module')
def tilted(camera) -> np.ndarray:
    x = np.arange(N) - (N - 1) / 2
    return (camera.data.probe * np.exp(2j * np.pi * x[None, :] / N)).astype(np.complex64)


def test_a_refined_probe_explains_patterns_its_tilted_start_cannot(camera, tilted) -> None:
    data = camera.data
    check = preflight_consistency(data.positions_px, data.diffraction_amplitude, tilted)
    assert check.median_noise_ratio > TILTED_BEFORE
    result = refine_probe(data.positions_px, data.diffraction_amplitude, tilted, iterations=100)
    # at equal iterations (the tilted probe held fixed for 100): its object absorbs part of the
    # tilt as a phase ramp (measured 2.95), still well above the refined probe's 1.32
    assert result.before.median_noise_ratio > REFINED_AFTER
    assert result.after.median_noise_ratio < REFINED_AFTER
    assert result.improves()
    assert _correlation(result.probe, data.probe) > REFINED_CORRELATION
    assert _correlation(tilted, data.probe) < TILTED_CORRELATION
    # power constraint: the refined probe keeps the starting probe's total power
    np.testing.assert_allclose(np.sum(np.abs(result.probe) ** 2), np.sum(np.abs(tilted) ** 2), 1e-4)
    assert result.num_patterns == data.num_patterns
    # the patterns centre one pixel left of the tilted probe's far field (measured -1.0)
    assert abs(result.centre_offset_px[0] + 1.0) < 0.2
    assert abs(result.centre_offset_px[1]) < 0.2
    record = result.as_dict()
    assert record['after']['median_noise_ratio'] < record['before']['median_noise_ratio']


def test_steps_without_probe_refinement_keep_the_probe(camera, tilted) -> None:
    data = camera.data
    flat = np.ones(camera.object_.shape, np.complex64)
    refinement = OverlapRefinement(flat, data.positions_px, data.diffraction_amplitude, tilted)
    for _ in range(3):
        refinement.step()
    assert np.array_equal(refinement.probe, tilted)
    refinement.step(refine_probe=True)
    assert not np.array_equal(refinement.probe, tilted)


def _config(mode: ProbeRefinement) -> PluginConfig:
    return PluginConfig(
        model=ModelConfig(pattern_size_px=N, n_filters_scale=1),
        training=TrainingConfig(
            num_epochs=1, probe_refinement=mode, probe_refinement_iterations=100
        ),
        execution=ExecutionConfig(backend='pytorch', device='cpu'),
    )


def _run(data, mode: ProbeRefinement):
    """The untrained run's record of the probe refinement and its archive."""
    run = TrainingRun([data], _config(mode))
    try:
        return run.probe_refinement, run.archive()
    finally:
        run.release()


def test_auto_leaves_a_probe_that_explains_the_data_alone(camera) -> None:
    record, archive = _run(camera.data, ProbeRefinement.AUTO)
    assert record is None
    assert archive.training_summary['probe_refinement'] is None
    assert not probe_was_refined(archive)


def test_auto_refines_a_probe_that_fails_the_check_and_trains_with_it(camera, tilted) -> None:
    from dataclasses import replace

    data = replace(camera.data, probe=tilted)
    _, archive = _run(data, ProbeRefinement.AUTO)
    record = archive.training_summary['probe_refinement']
    assert record['adopted']
    assert record['mode'] == 'auto'
    assert probe_was_refined(archive)
    # the model's probe is the refined one, not the tilted one it was given
    assert _correlation(model_probe(archive), camera.data.probe) > REFINED_CORRELATION


def test_off_trains_with_the_probe_as_given(camera, tilted) -> None:
    from dataclasses import replace

    record, archive = _run(replace(camera.data, probe=tilted), ProbeRefinement.OFF)
    assert record is None
    assert _correlation(model_probe(archive), tilted) > 0.999


def test_inference_refines_with_the_models_refined_probe(camera, tilted, caplog) -> None:
    from dataclasses import replace

    data = replace(camera.data, probe=tilted)
    _, archive = _run(data, ProbeRefinement.ON)
    with caplog.at_level(logging.INFO, logger='ptychopinn_plugin.workflow'):
        steps = list(
            reconstruct(
                archive,
                data,
                execution=archive.config.execution,
                inference=InferenceConfig(refine_iterations=20),
                object_shape=camera.object_.shape,
            )
        )
    assert 'reconstruction probe: model (' in caplog.text
    assert steps[-1].probe_choice is not None
    assert steps[-1].probe_choice.source == 'model'
    consistency = steps[-1].consistency
    assert consistency is not None
    # with the tilted probe of the scan the data could not be explained (TILTED_BEFORE)
    assert consistency.median_noise_ratio < TILTED_BEFORE


def test_the_objects_ramp_moves_into_the_probe_and_the_patterns_are_explained_as_before(
    camera,
) -> None:
    data = camera.data
    _, cols = np.indices(camera.object_.shape)
    ramp = 0.05  # rad/px in x: 0.25 detector pixels at N = 32
    ramped = (camera.object_ * np.exp(1j * ramp * cols)).astype(np.complex64)
    own = OverlapRefinement(
        camera.object_, data.positions_px, data.diffraction_amplitude, data.probe
    ).remove_object_ramp()  # the camera object's own small net ramp
    refinement = OverlapRefinement(
        ramped, data.positions_px, data.diffraction_amplitude, data.probe
    )
    before = float(np.mean(_misfits(refinement)))
    tilt = refinement.remove_object_ramp()
    assert tilt[0] - own[0] == pytest.approx(ramp * N / (2 * np.pi), rel=0.02)
    assert tilt[1] - own[1] == pytest.approx(0.0, abs=0.005)
    after = float(np.mean(_misfits(refinement)))
    assert after < 1.05 * before  # the opposite tilt went into the probe
    mask = refinement.illuminated
    scores = metrics.compare_objects(refinement.object_, camera.object_, mask)
    unmoved = metrics.compare_objects(ramped, camera.object_, mask)
    assert scores['phase_ssim'] > unmoved['phase_ssim'] + 0.2  # the ramp left the object


def _misfits(refinement: OverlapRefinement) -> list[float]:
    """Mean squared amplitude misfit per chunk of the current object and probe (no step)."""
    out = []
    for modulus, measured in refinement.far_field_moduli():
        out.append(float(np.mean((refinement.scale * modulus - measured) ** 2)))
    return out


def test_an_exact_probe_refined_on_noisy_data_is_not_adopted(camera) -> None:
    data = camera.data
    result = refine_probe(data.positions_px, data.diffraction_amplitude, data.probe, iterations=60)
    # fitting the noise lowers the misfit a little, not by the margin adoption needs
    assert result.after.median_noise_ratio > 0.8 * result.before.median_noise_ratio
    assert not result.improves()


# --- which probe a reconstruction uses (ReconstructionProbe) -------------------------------------


def _choose(data, scan_probe, model_probe, mode=ReconstructionProbe.AUTO):
    return choose_probe(
        data.positions_px,
        data.diffraction_amplitude,
        scan_probe,
        model_probe,
        mode,
        refine_iterations=100,
    )


def test_auto_takes_the_models_probe_when_the_scan_brings_a_worse_one(camera, tilted) -> None:
    """The next scan of a session comes with the optics' model probe; the model knows better."""
    choice = _choose(camera.data, tilted, camera.data.probe)
    assert choice.source == 'model'
    assert choice.noise_ratios['model'] < TILTED_BEFORE < choice.noise_ratios['scan']
    assert _correlation(choice.probe, camera.data.probe) > 0.999
    assert "model's" in choice.reason
    assert choice.note().startswith('PtychoPINN reconstruction probe: model (')


def test_auto_keeps_the_scans_probe_when_the_models_is_the_wrong_one(camera, tilted) -> None:
    choice = _choose(camera.data, camera.data.probe, tilted)
    assert choice.source == 'scan'
    assert choice.noise_ratios['scan'] < TILTED_BEFORE < choice.noise_ratios['model']
    assert _correlation(choice.probe, camera.data.probe) > 0.999


def test_auto_refines_on_the_scan_when_neither_probe_explains_it(camera, tilted) -> None:
    # a defocused probe: a quadratic phase in the far field, which no object can absorb (an
    # object absorbs a tilt as a phase ramp, so a tilted probe alone is refined away slowly)
    q = np.fft.fftfreq(N) * N
    defocus = np.exp(0.02j * (q[:, None] ** 2 + q[None, :] ** 2))
    defocused = np.fft.ifft2(np.fft.fft2(tilted) * defocus).astype(np.complex64)
    choice = _choose(camera.data, defocused, tilted)
    assert choice.source.endswith(', refined on this scan')
    assert min(choice.noise_ratios['model'], choice.noise_ratios['scan']) > TILTED_BEFORE
    assert choice.noise_ratios['refined'] < REFINED_AFTER
    assert _correlation(choice.probe, camera.data.probe) > REFINED_CORRELATION


def test_the_settings_scan_and_model_take_that_probe_without_a_check(camera, tilted) -> None:
    scan = _choose(camera.data, tilted, camera.data.probe, ReconstructionProbe.SCAN)
    assert (scan.source, scan.noise_ratios) == ('scan', {})
    assert np.array_equal(scan.probe, tilted)
    model = _choose(camera.data, camera.data.probe, tilted, ReconstructionProbe.MODEL)
    assert (model.source, model.noise_ratios) == ('model', {})
    assert np.array_equal(model.probe, tilted)
    with pytest.raises(ConfigurationError, match='ReconstructionProbe = scan or auto'):
        _choose(camera.data, tilted, None, ReconstructionProbe.MODEL)
    # auto with no model probe of this size, or with the very probe the model holds: no check
    assert _choose(camera.data, tilted, None).noise_ratios == {}
    same = _choose(camera.data, tilted, 3.0 * tilted)
    assert (same.source, same.noise_ratios) == ('scan', {})

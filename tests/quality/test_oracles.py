"""The quality oracles (``evidence/oracles.py``, issue 14 item 2) measure what they claim.

The quick run (64 points, 20 steps per fit: seconds) checks what does not depend on the length of
the fits: the true patches pass through the engine's forward model at the Poisson noise level
and stitch back to the truth, and the gridsize-2 canvas returns the true member patches at the
centre of each (a wrong offset sign or swapped x / y would mix the members and drop the
correlation). The ceilings themselves come from the full run, recorded in ``docs/results.md``.
"""

from __future__ import annotations

import json

import numpy as np

from ptychopinn_plugin.evidence.oracles import main, patch_correlations

TRUTH_STITCH_SSIM = 0.95
"""Stitching the true patches with the defaults (measured 0.98 phase, 1.00 amplitude at 64 points;
the loss is the global phase synchronisation and ramp fit on a small scan)."""
POISSON_EXCESS_MAX = 1.0
"""The true patches' excess NLL per pixel (Poisson noise gives about 0.5; measured 0.77 at 64
points, where the scan's edge patterns are few-count)."""
CANVAS_CENTRE_CORR = 0.95
"""True member patches through the gridsize-2 canvas, centre crop: measured 0.99 (phase) and
0.97 (amplitude); a member placed at the wrong offset correlates near 0."""


def test_patch_correlations_ignore_each_patch_phase_offset() -> None:
    rng = np.random.default_rng(0)
    truth = np.exp(1j * rng.normal(size=(5, 16, 16))) * rng.uniform(0.5, 1, size=(5, 16, 16))
    offsets = np.exp(1j * rng.uniform(-3, 3, size=(5, 1, 1)))
    assert np.allclose(patch_correlations(truth * offsets, truth, 8), (1.0, 1.0))
    other = np.roll(truth, 3, axis=-1)
    phase, amplitude = patch_correlations(other, truth, 8)
    assert phase < 0.5
    assert amplitude < 0.5


def test_quick_run_passes_the_truth_through_the_physics_and_the_canvas(tmp_path) -> None:
    assert main(['--out', str(tmp_path), '--quick']) == 0
    rows = {
        row['oracle']: row for row in json.loads((tmp_path / 'oracles.json').read_text())['rows']
    }
    assert len(rows) == 5
    truth = rows['truth (true patches)']
    assert truth['excess_nll'] < POISSON_EXCESS_MAX
    assert truth['scores']['phase_ssim'] > TRUTH_STITCH_SSIM
    assert truth['scores']['amplitude_ssim'] > TRUTH_STITCH_SSIM
    canvas = rows['truth through the gridsize-2 canvas']
    assert canvas['patch_phase_corr'] > CANVAS_CENTRE_CORR
    assert canvas['patch_amplitude_corr'] > CANVAS_CENTRE_CORR
    for row in rows.values():
        assert np.isfinite(row['excess_nll'])
    assert '| oracle |' in (tmp_path / 'oracles.md').read_text()

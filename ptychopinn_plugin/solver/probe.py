"""Probe refinement before training, for scans whose probe is a nominal model (issue 16, item 3).

A PINN keeps its probe fixed, so it can only be as good as the probe it trains with. A measured
scan usually comes with a model of the optics (a zone-plate focus computed from its parameters),
not with the probe that made the patterns, and such a model may leave the data far from explained
(the measured Siemens star, ``docs/results.md``). PtychoPINN as published therefore trains with a
probe an iterative solver refined. This module does that refinement itself, so that no second
program is needed: on the scan points nearest the centre it refines a flat object and the probe
together (``OverlapRefinement.step(refine_probe=True)``, the probe's total power held fixed) and
returns the refined probe with the data consistency before and after. How it compares with
pty-chi's refined probe: ``docs/results.md``.

The probe and the object share two exact ambiguities the data cannot settle: a global phase and a
linear phase ramp in the object traded against a shift of the probe's far field. The refinement
ends by moving the object's net ramp into the probe (``OverlapRefinement.remove_object_ramp``), so
that objects reconstructed with the probe carry none. A refined probe may still differ from another
solver's by a small tilt, and an object reconstructed with it from another's by the matching ramp;
comparisons across probes therefore also report scores with the ramp removed
(``metrics.remove_relative_phase_ramp``).

Training calls :func:`refine_probe` according to ``[PtychoPINN] ProbeRefinement``
(``workflow.py``): ``auto`` when the scan's own probe fails the pre-training check
(``consistency.preflight_consistency``), ``on`` always, ``off`` never.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from .consistency import (
    DataConsistency,
    central_region,
    measure_consistency,
    preflight_consistency,
)
from .overlap import OverlapRefinement

logger = logging.getLogger(__name__)

__all__ = [
    'PROBE_REFINEMENT_PATTERNS',
    'ProbeRefinementResult',
    'refine_probe',
]

PROBE_REFINEMENT_PATTERNS = 1024
"""Scan points the probe is refined on (those nearest the centre); one probe needs no more."""
IMPROVEMENT = 0.8
"""A refined probe is adopted (``auto``) when its median misfit is below this fraction of the
starting probe's, both after the same iterations on the same points."""
OBJECT_ONLY_ITERATIONS = 10
"""Iterations that refine the flat object alone before the probe moves (a flat object gives the
probe no structure to learn from)."""


@dataclass(frozen=True, eq=False)
class ProbeRefinementResult:
    """A refined probe and how well it explains the scan, before and after."""

    probe: np.ndarray
    """(N, N) complex64, with the starting probe's total power."""
    before: DataConsistency
    """The starting probe, held fixed, with a flat object refined as long on the same points."""
    after: DataConsistency
    """The refined probe and its jointly refined object on the same points."""
    iterations: int
    num_patterns: int
    seconds: float
    centre_offset_px: tuple[float, float]
    """(kx, ky) detector pixels from the starting probe's far-field centre of mass to the measured
    patterns' (the diffraction centre offset of a model probe, which the refined probe absorbs)."""

    def improves(self) -> bool:
        """Whether the refined probe explains the data clearly better than the starting one
        (median misfit below :data:`IMPROVEMENT` of the starting probe's, at equal iterations):
        an exact probe refined on noisy data gains a little by fitting the noise, and must not
        be swapped for that."""
        return self.after.median_noise_ratio < IMPROVEMENT * self.before.median_noise_ratio

    def as_dict(self) -> dict[str, object]:
        """Provenance for the training summary (JSON)."""
        return {
            'iterations': self.iterations,
            'num_patterns': self.num_patterns,
            'seconds': round(self.seconds, 2),
            'centre_offset_px': [round(v, 3) for v in self.centre_offset_px],
            'before': self.before.as_dict(),
            'after': self.after.as_dict(),
        }


def refine_probe(
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    probe: np.ndarray,
    *,
    iterations: int,
    num_patterns: int = PROBE_REFINEMENT_PATTERNS,
) -> ProbeRefinementResult:
    """Refine ``probe`` together with a flat object on the scan's central points.

    Parameters
    ----------
    positions_px, diffraction_amplitude : the scan (positions (x, y) in object pixels, measured
        amplitudes ``sqrt(counts)`` with the zero frequency at ``N // 2``).
    probe : (N, N) complex, the starting probe (any scale; the result keeps its power).
    iterations : total refinement iterations, the first :data:`OBJECT_ONLY_ITERATIONS` of the
        object alone.

    The starting probe is measured on the same points with the same number of iterations, the
    probe held fixed (:attr:`ProbeRefinementResult.before`), so that :meth:`~ProbeRefinementResult.
    improves` compares probes, not iteration counts.
    """
    start = time.perf_counter()
    n_px = np.asarray(probe).shape[-1]
    region = central_region(positions_px, diffraction_amplitude, n_px, num_patterns)
    before = preflight_consistency(
        positions_px, diffraction_amplitude, probe, num_patterns=num_patterns, iterations=iterations
    )
    refinement = OverlapRefinement(
        region.flat_object(), region.positions_px, region.amplitude, probe
    )
    offset = refinement.probe_centre_offset()
    for iteration in range(iterations):
        refinement.step(refine_probe=iteration >= OBJECT_ONLY_ITERATIONS)
    refinement.remove_object_ramp()
    refined = refinement.probe
    after = measure_consistency(refinement.object_, region.positions_px, region.amplitude, refined)
    return ProbeRefinementResult(
        probe=refined,
        before=before,
        after=after,
        iterations=iterations,
        num_patterns=int(region.rows.size),
        seconds=time.perf_counter() - start,
        centre_offset_px=offset,
    )

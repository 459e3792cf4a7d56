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

Training calls :func:`refine_probe` according to ``[PtychoPINNTraining] ProbeRefinement``
(``workflow.py``): ``auto`` when the scan's own probe fails the pre-training check
(``consistency.preflight_consistency``), ``on`` always, ``off`` never.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ..config import ReconstructionProbe
from ..errors import ConfigurationError
from .consistency import (
    WARN_NOISE_RATIO,
    DataConsistency,
    central_region,
    measure_consistency,
    preflight_consistency,
)

logger = logging.getLogger(__name__)

__all__ = [
    'PROBE_REFINEMENT_PATTERNS',
    'ProbeChoice',
    'ProbeRefinementResult',
    'choose_probe',
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
    device: str | None = None,
) -> ProbeRefinementResult:
    """Refine ``probe`` together with a flat object on the scan's central points.

    Parameters
    ----------
    positions_px, diffraction_amplitude : the scan (positions (x, y) in object pixels, measured
        amplitudes ``sqrt(counts)`` with the zero frequency at ``N // 2``).
    probe : (N, N) complex, the starting probe (any scale; the result keeps its power).
    iterations : total refinement iterations, the first :data:`OBJECT_ONLY_ITERATIONS` of the
        object alone.
    device : where it runs, as for :class:`OverlapRefinement`.

    The starting probe is measured on the same points with the same number of iterations, the
    probe held fixed (:attr:`ProbeRefinementResult.before`), so that :meth:`~ProbeRefinementResult.
    improves` compares probes, not iteration counts.
    """
    start = time.perf_counter()
    n_px = np.asarray(probe).shape[-1]
    region = central_region(positions_px, diffraction_amplitude, n_px, num_patterns)
    before = preflight_consistency(
        positions_px,
        diffraction_amplitude,
        probe,
        num_patterns=num_patterns,
        iterations=iterations,
        device=device,
    )
    # as the check it is compared with (the plain step), so that the probe, not an object ramp,
    # takes up a tilt (``remove_object_ramp`` below)
    refinement = region.flat_refinement(probe, device)
    offset = refinement.probe_centre_offset()
    for iteration in range(iterations):
        refinement.step(refine_probe=iteration >= OBJECT_ONLY_ITERATIONS)
    refinement.remove_object_ramp()
    refined = refinement.probe
    after = measure_consistency(
        refinement.object_, region.positions_px, region.amplitude, refined, device=device
    )
    return ProbeRefinementResult(
        probe=refined,
        before=before,
        after=after,
        iterations=iterations,
        num_patterns=int(region.rows.size),
        seconds=time.perf_counter() - start,
        centre_offset_px=offset,
    )


SAME_PROBE_CORRELATION = 0.9999
"""Normalised correlation above which the model's and the scan's probes count as one probe (the
model keeps a rescaled copy of its training probe): no comparison is needed."""


@dataclass(frozen=True, eq=False)
class ProbeChoice:
    """Which probe a reconstruction refines and measures with, and why."""

    probe: np.ndarray
    """(N, N) complex64, the chosen probe (the scan's power for the scan's probe, the model's
    normalisation for the model's; the refinement fits the intensity scale either way)."""
    source: str
    """``model``, ``scan``, or either followed by ``, refined on this scan``."""
    reason: str
    """Why, in words (the setting, or the check's figures)."""
    noise_ratios: dict[str, float]
    """Median misfit over the Poisson noise of each candidate in the check (empty without one)."""

    def note(self) -> str:
        """One line for the log and the output product's comments."""
        return f'PtychoPINN reconstruction probe: {self.source} ({self.reason})'

    def as_dict(self) -> dict[str, object]:
        """Provenance (JSON)."""
        return {
            'source': self.source,
            'reason': self.reason,
            'noise_ratios': {k: round(v, 3) for k, v in self.noise_ratios.items()},
        }


def choose_probe(
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    scan_probe: np.ndarray,
    model_probe: np.ndarray | None,
    mode: ReconstructionProbe,
    *,
    refine_iterations: int,
    device: str | None = None,
) -> ProbeChoice:
    """The probe a reconstruction of this scan should use (``[PtychoPINN] ReconstructionProbe``).

    Parameters
    ----------
    positions_px, diffraction_amplitude : the scan to reconstruct.
    scan_probe : (N, N) complex, the scan's own probe (its product's).
    model_probe : (N, N) complex, the probe the model was trained with; None when the model has
        none for patterns of this size.
    mode : ``scan`` and ``model`` take that probe; ``auto`` compares both with the pre-training
        check (:func:`~.consistency.preflight_consistency`: the same central points, the same
        iterations from a flat object) and takes the one with the lower median misfit; when
        even that one leaves the data unexplained (above ``WARN_NOISE_RATIO``), it refines it on
        the scan (:func:`refine_probe`) and adopts the refinement when it explains them better.
    refine_iterations : iterations of that probe refinement.
    device : where the checks and the refinement run, as for :class:`OverlapRefinement`.

    Raises
    ------
    ConfigurationError
        ``mode`` is ``model`` and the model has no probe for patterns of this size.
    """
    scan_probe = np.asarray(scan_probe, dtype=np.complex64)
    if mode is ReconstructionProbe.SCAN:
        return ProbeChoice(scan_probe, 'scan', 'ReconstructionProbe = scan', {})
    if model_probe is None:
        if mode is ReconstructionProbe.MODEL:
            raise ConfigurationError(
                f'ReconstructionProbe = model, but the model holds no probe for '
                f'{scan_probe.shape[0]} px patterns; set [PtychoPINNInference] '
                'ReconstructionProbe = scan or auto'
            )
        return ProbeChoice(scan_probe, 'scan', 'the model holds no probe of this size', {})
    model_probe = np.asarray(model_probe, dtype=np.complex64)
    if mode is ReconstructionProbe.MODEL:
        return ProbeChoice(model_probe, 'model', 'ReconstructionProbe = model', {})
    if _correlation(model_probe, scan_probe) > SAME_PROBE_CORRELATION:
        return ProbeChoice(scan_probe, 'scan', 'it is the probe the model was trained with', {})
    checks = {
        name: preflight_consistency(positions_px, diffraction_amplitude, probe, device=device)
        for name, probe in (('model', model_probe), ('scan', scan_probe))
    }
    ratios = {name: check.median_noise_ratio for name, check in checks.items()}
    best = min(ratios, key=ratios.__getitem__)
    probe = model_probe if best == 'model' else scan_probe
    figures = ', '.join(f"{name}'s {ratio:.2f}" for name, ratio in ratios.items())
    reason = f'median misfit over the Poisson noise on central points: {figures}'
    if ratios[best] <= WARN_NOISE_RATIO or refine_iterations == 0:
        return ProbeChoice(probe, best, reason, ratios)
    result = refine_probe(
        positions_px, diffraction_amplitude, probe, iterations=refine_iterations, device=device
    )
    ratios = {**ratios, 'refined': result.after.median_noise_ratio}
    if not result.improves():
        return ProbeChoice(
            probe, best, f'{reason}; refining it on this scan gained too little', ratios
        )
    return ProbeChoice(
        result.probe,
        f'{best}, refined on this scan',
        f'{reason}, neither below {WARN_NOISE_RATIO:g}; refined '
        f'{result.after.median_noise_ratio:.2f} against '
        f'{result.before.median_noise_ratio:.2f} at equal iterations',
        ratios,
    )


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    """|<a, b>| / (|a| |b|) of two probes (1 for probes equal up to a complex factor)."""
    a = first.astype(np.complex128).ravel()
    b = second.astype(np.complex128).ravel()
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(abs(np.vdot(a, b)) / norm) if norm > 0 else 0.0

"""How well a reconstruction explains the measured patterns (issue 16, item 4).

A PINN's object can look plausible and still contradict the data (a model probe instead of a
refined one, an offset diffraction centre, a wrong dose). This module measures, for every pattern,
how far the far field of the reconstructed object under the scan's probe is from the measured
amplitudes, with the forward model of ``solver/overlap.py`` (the probe Fourier-shifted by each
position's sub-pixel residual):

- the amplitude **R-factor** ``sum_q |s |F_k(q)| - a_k(q)| / sum_q a_k(q)`` (``a = sqrt(counts)``,
  ``s`` the least-squares amplitude scale over the whole scan), the figure iterative solvers report;
- the **noise ratio**: the pattern's summed squared amplitude misfit divided by what Poisson noise
  alone gives for the modelled intensities (``expected_amplitude_noise``): about 1 for a model that
  explains the data to the noise, well above 1 for one that does not, whatever the dose. It
  assumes detector counts (the plugin's contract: amplitudes are square roots of counts).

Inference measures it for the object it returns (``inference.py``), logs the medians and warns in
words when the median noise ratio exceeds :data:`WARN_NOISE_RATIO`, naming the usual causes.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .overlap import OverlapRefinement

logger = logging.getLogger(__name__)

__all__ = [
    'WARN_NOISE_RATIO',
    'CentralRegion',
    'DataConsistency',
    'central_region',
    'consistency_of',
    'expected_amplitude_noise',
    'measure_consistency',
    'preflight_consistency',
]

WARN_NOISE_RATIO = 4.0
"""Median noise ratio above which inference warns that the data are not explained, between what
explained and unexplained reconstructions measure (``docs/results.md``, "Data consistency")."""

_TABLE_LAMBDA = np.logspace(-4, 4, 321)


def _amplitude_noise_table(lam: np.ndarray) -> np.ndarray:
    """``E[(sqrt(y) - sqrt(lam))^2]`` for ``y ~ Poisson(lam)``, summed over the distribution."""
    top = int(np.ceil(lam.max() + 12 * np.sqrt(lam.max()) + 30))
    counts = np.arange(top + 1, dtype=np.float64)
    log_factorial = np.array([math.lgamma(k + 1.0) for k in counts])
    pmf = np.exp(counts[None, :] * np.log(lam)[:, None] - lam[:, None] - log_factorial[None, :])
    return np.sum(pmf * (np.sqrt(counts)[None, :] - np.sqrt(lam)[:, None]) ** 2, axis=1)


_TABLE_NOISE = _amplitude_noise_table(_TABLE_LAMBDA)


def expected_amplitude_noise(intensity: np.ndarray) -> np.ndarray:
    """Mean squared deviation of ``sqrt(counts)`` from ``sqrt(intensity)`` under Poisson noise.

    About ``2 * intensity`` for dark pixels, a maximum of about 0.45 near one count, and 1/4 for
    bright ones; tabulated exactly between 1e-4 and 1e4 counts and interpolated in log intensity.
    """
    lam = np.asarray(intensity, dtype=np.float64)
    inside = np.interp(
        np.log(np.clip(lam, _TABLE_LAMBDA[0], _TABLE_LAMBDA[-1])),
        np.log(_TABLE_LAMBDA),
        _TABLE_NOISE,
    )
    return np.where(
        lam < _TABLE_LAMBDA[0], 2.0 * lam, np.where(lam > _TABLE_LAMBDA[-1], 0.25, inside)
    )


@dataclass(frozen=True, eq=False)
class DataConsistency:
    """Per-pattern agreement between a reconstruction and the measured patterns."""

    positions_px: np.ndarray
    """(n, 2) scan positions (x, y) in object pixels."""
    r_factor: np.ndarray
    """(n,) amplitude R-factor of each pattern."""
    noise_ratio: np.ndarray
    """(n,) squared amplitude misfit over the Poisson expectation (1: explained to the noise)."""
    scale: float
    """Least-squares amplitude scale from the model's far fields to ``sqrt(counts)``."""

    @property
    def median_r_factor(self) -> float:
        return float(np.median(self.r_factor))

    @property
    def median_noise_ratio(self) -> float:
        return float(np.median(self.noise_ratio))

    def summary(self) -> str:
        """One line for the log."""
        low, high = np.percentile(self.noise_ratio, [10, 90])
        return (
            f'data consistency: median amplitude R-factor {self.median_r_factor:.3f}; median '
            f'misfit {self.median_noise_ratio:.2f} x the Poisson noise (1 = explained to the '
            f'noise; 10th-90th percentile {low:.2f} to {high:.2f}) over {self.r_factor.size} '
            'patterns'
        )

    def warning(self, *, refined: bool = True) -> str | None:
        """Words for the user when the reconstruction does not explain the data, else None.

        ``refined``: whether the object went through the overlap refinement; a network's object
        alone does not explain realistic data (the refinement is what fits them), so without it
        the first cause named is the missing refinement.
        """
        if self.median_noise_ratio <= WARN_NOISE_RATIO:
            return None
        causes = (
            'a probe that was not refined for these data (train with [PtychoPINNTraining] '
            'ProbeRefinement = auto or on, or with the probe of an iterative reconstruction of '
            'this scan; reconstruct with [PtychoPINNInference] ReconstructionProbe = auto), '
            "a diffraction centre offset from the probe's far "
            'field, positions or geometry (detector distance, pixel size, energy) that do not '
            'match, or data that are not detector counts'
        )
        if not refined:
            causes = (
                "the network's object without the overlap refinement (set "
                '[PtychoPINNInference] RefineIterations above 0, default 100), ' + causes
            )
        return (
            f'the reconstruction does not explain the measured patterns: their median misfit is '
            f'{self.median_noise_ratio:.1f} x what Poisson noise alone gives (R-factor '
            f'{self.median_r_factor:.3f}). Likely causes: {causes}'
        )

    def save(self, path: str | Path) -> Path:
        """Write the per-pattern figures as an NPZ (positions, R-factors, noise ratios), atomically
        (a temporary file beside ``path``, then renamed over it)."""
        path = Path(path)
        temporary = path.with_name(f'.{path.name}.partial')
        try:
            with temporary.open('wb') as stream:
                np.savez(
                    stream,
                    positions_px=self.positions_px,
                    r_factor=self.r_factor,
                    noise_ratio=self.noise_ratio,
                    scale=np.float64(self.scale),
                )
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        return path

    def as_dict(self) -> dict[str, float]:
        """The medians, for provenance records (JSON)."""
        return {
            'median_r_factor': round(self.median_r_factor, 5),
            'median_noise_ratio': round(self.median_noise_ratio, 4),
            'num_patterns': int(self.r_factor.size),
        }


def measure_consistency(
    object_: np.ndarray,
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    probe: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    device: str | None = None,
) -> DataConsistency:
    """Per-pattern R-factor and noise ratio of ``object_`` against the measured amplitudes (of
    the scan points ``rows``, all by default); ``device`` as for :class:`OverlapRefinement`."""
    model = OverlapRefinement(
        object_, positions_px, diffraction_amplitude, probe, rows=rows, device=device
    )
    return consistency_of(model)


def consistency_of(model: OverlapRefinement) -> DataConsistency:
    """Per-pattern R-factor and noise ratio of a refinement's current object and probe.

    Reuses the refinement's scan, probe and chunks (no second solver): to measure another object
    on the same scan, :meth:`OverlapRefinement.set_object` it first.
    """
    cross = power = 0.0
    for modulus, measured in model.far_field_moduli():
        cross += float(np.sum(modulus.astype(np.float64) * measured))
        power += float(np.sum(modulus.astype(np.float64) ** 2))
    scale = cross / power if power > 0 else 0.0
    r_factor, noise_ratio = [], []
    for modulus, measured in model.far_field_moduli():
        fitted = scale * modulus.astype(np.float64)
        residual = fitted - measured
        r_factor.append(
            np.sum(np.abs(residual), axis=(-2, -1))
            / np.maximum(np.sum(measured, axis=(-2, -1)), np.finfo(np.float64).tiny)
        )
        noise = np.sum(expected_amplitude_noise(fitted**2), axis=(-2, -1))
        noise_ratio.append(
            np.sum(residual**2, axis=(-2, -1)) / np.maximum(noise, np.finfo(np.float64).tiny)
        )
    return DataConsistency(
        positions_px=np.asarray(model.positions_px, dtype=np.float64),
        r_factor=np.concatenate(r_factor),
        noise_ratio=np.concatenate(noise_ratio),
        scale=scale,
    )


PREFLIGHT_PATTERNS = 256
"""Scan points of the pre-training check: those nearest the scan's centre (a compact region, so
that they overlap as in the whole scan)."""
PREFLIGHT_ITERATIONS = 30
"""Overlap-refinement iterations of the pre-training check, from a flat object."""


def preflight_consistency(
    positions_px: np.ndarray,
    diffraction_amplitude: np.ndarray,
    probe: np.ndarray,
    *,
    num_patterns: int = PREFLIGHT_PATTERNS,
    iterations: int = PREFLIGHT_ITERATIONS,
    device: str | None = None,
) -> DataConsistency:
    """Can the scan's probe explain its patterns at all? Checked before any training.

    Refines a flat object against the patterns nearest the scan's centre for ``iterations``
    iterations (``solver/overlap.py``) and measures the data consistency of the result. A PINN
    holds the probe fixed, so a probe that fails here (a nominal model probe of a measured scan,
    a diffraction centre offset from its far field) fails the trained network too. ``device``:
    where it runs, as for :class:`OverlapRefinement`.
    """
    region = central_region(
        positions_px, diffraction_amplitude, np.asarray(probe).shape[-1], num_patterns
    )
    refinement = region.flat_refinement(probe, device)
    for _ in range(iterations):
        refinement.step()
    refinement.set_object(refinement.object_)  # zero beyond the grid, as the object it returns
    return consistency_of(refinement)


OUTLIER_FACTOR = 4.0
"""Central-region points farther from the median position than this many times the 90th-percentile
distance of the chosen points (plus one pattern width) are left out."""


@dataclass(frozen=True, eq=False)
class CentralRegion:
    """The scan points nearest the scan's centre, on an object grid of their own."""

    rows: np.ndarray
    """(m,) sorted indices of the chosen points in the scan."""
    positions_px: np.ndarray
    """(m, 2) their positions (x, y) on the local grid."""
    amplitude: np.ndarray
    """(m, N, N) their measured amplitudes."""
    shape: tuple[int, int]
    """(H, W) of the local object grid (an N-pixel border beyond the outermost windows)."""

    def flat_refinement(self, probe: np.ndarray, device: str | None) -> OverlapRefinement:
        """A refinement of a flat object on these points with ``probe``, for judging the probe
        (the pre-training check, the probe refinement): the plain step, without the low-frequency
        preconditioner, which would let an object phase ramp absorb a tilted probe within a few
        iterations. ``device`` as for :class:`OverlapRefinement`."""
        return OverlapRefinement(
            np.ones(self.shape, np.complex64),
            self.positions_px,
            self.amplitude,
            probe,
            low_frequency_gain=1.0,
            device=device,
        )


def central_region(
    positions_px: np.ndarray, diffraction_amplitude: np.ndarray, n_px: int, num_patterns: int
) -> CentralRegion:
    """The ``num_patterns`` scan points nearest the median position (a compact region, so that
    they overlap as in the whole scan), shifted onto a local grid."""
    positions = np.asarray(positions_px, dtype=np.float64)
    centre = np.median(positions, axis=0)
    distance = np.sqrt(np.sum((positions - centre) ** 2, axis=1))
    rows = np.argsort(distance, kind='stable')[:num_patterns]
    # a stray position (a corrupt motor reading) must not stretch the local grid: keep the points
    # within four times the 90th-percentile distance of the chosen ones (plus a window)
    reach = OUTLIER_FACTOR * float(np.percentile(distance[rows], 90)) + n_px
    rows = np.sort(rows[distance[rows] <= reach])
    local = positions[rows]
    origin = np.floor(local.min(axis=0)) - n_px
    local = local - origin
    shape = (int(np.ceil(local[:, 1].max())) + n_px, int(np.ceil(local[:, 0].max())) + n_px)
    return CentralRegion(rows, local, np.asarray(diffraction_amplitude)[rows], shape)

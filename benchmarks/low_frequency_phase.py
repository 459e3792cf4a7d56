"""What the refinement leaves unsettled on realistic scans, and the low-frequency preconditioner.

For each cell (``OVERLAP:PHOTONS``) the realistic benchmark's held-out test scan is simulated
(``ptychodus_io/realistic.py``, seed 0) and the built-in refinement (``OverlapRefinement``, the
scan's exact probe held fixed) runs from a flat object. No network is involved.

- ``--gains``: the preconditioner's cap (``low_frequency_gain``; 1 is the plain step), amplitude /
  phase SSIM after 10, 20, 30, 50, 100 (and ``--iterations``) steps, and the time in the steps.
- ``--oracle``: after the plain steps (cap 1 must be among the gains), the phase error's low-pass
  part (Gaussian, sigma in pixels) taken from the truth: how much of what is missing is the
  large-scale phase. Also a plain Gaussian smoothing of the object (how much is pixel noise).

    PYTHONPATH=. .venv/bin/python benchmarks/low_frequency_phase.py --cells 0.35:1e6 0.7:1e4 \
        --gains 1 10 [--oracle]

About 20 s per cell and gain at 100 iterations on 2 cores (1,024 patterns).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from low_dose_prior_oracle import held_out_scan
from scipy.ndimage import gaussian_filter

from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.solver.overlap import OverlapRefinement

CHECKPOINTS = (10, 20, 30, 50, 100)


def _cell(text: str) -> tuple[float, float]:
    overlap, photons = text.split(':')
    return float(overlap), float(photons)


def _scores(object_: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> str:
    scores = score_object(object_, truth, mask)
    return f'{scores["amplitude_ssim"]:.3f} / {scores["phase_ssim"]:.3f}'


def _lowpass(values: np.ndarray, support: np.ndarray, sigma: float) -> np.ndarray:
    weight = gaussian_filter(support.astype(float), sigma)
    return gaussian_filter(values * support, sigma) / np.maximum(weight, 1e-6)


def _oracle_rows(refined, lit, truth, mask) -> list[str]:
    """The refined object with its phase error's low-pass part taken from the truth."""
    scale = np.sum(np.conj(refined[mask]) * truth[mask]) / np.sum(np.abs(refined[mask]) ** 2)
    aligned = refined * scale
    error = np.angle(truth * np.conj(aligned))
    rows = []
    for sigma in (4, 8, 16, 32):
        fixed = np.where(lit, aligned * np.exp(1j * _lowpass(error, lit, sigma)), aligned)
        rows.append(f'| truth low-pass phase, sigma {sigma} px | {_scores(fixed, truth, mask)} |')
    for sigma in (1, 2):
        smooth = gaussian_filter(aligned.real, sigma) + 1j * gaussian_filter(aligned.imag, sigma)
        smooth = np.where(lit, smooth, aligned)
        rows.append(f'| Gaussian smoothing, sigma {sigma} px | {_scores(smooth, truth, mask)} |')
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cells', nargs='+', type=_cell, default=[(0.35, 1e6), (0.7, 1e4)])
    parser.add_argument('--gains', nargs='+', type=float, default=[1.0, 10.0])
    parser.add_argument('--iterations', type=int, default=100)
    parser.add_argument('--oracle', action='store_true')
    args = parser.parse_args()
    checkpoints = sorted({c for c in CHECKPOINTS if c <= args.iterations} | {args.iterations})
    for overlap, photons in args.cells:
        data, truth, mask = held_out_scan(overlap, photons, 0)
        print(f'\n### {overlap:.0%} overlap, {photons:.0e} photons per pattern\n')
        print('| cap | ' + ' | '.join(f'{c} it.' for c in checkpoints) + ' | seconds |')
        print('| ---: |' + ' ---: |' * (len(checkpoints) + 1))
        plain = None
        for gain in args.gains:
            flat = np.ones(truth.shape, np.complex64)
            refinement = OverlapRefinement(
                flat,
                data.positions_px,
                data.diffraction_amplitude,
                data.probe,
                low_frequency_gain=gain,
            )
            cells, seconds = [], 0.0
            for count in range(1, args.iterations + 1):
                begin = time.perf_counter()
                refinement.step()
                seconds += time.perf_counter() - begin
                if count in checkpoints:
                    object_ = np.where(refinement.illuminated, refinement.object_, flat)
                    cells.append(_scores(object_, truth, mask))
            if gain == 1.0:
                plain = (object_, refinement.illuminated)
            print(f'| {gain:g} | ' + ' | '.join(cells) + f' | {seconds:.1f} |', flush=True)
        if args.oracle and plain is not None:
            print(f'\n| plain step, {args.iterations} iterations, then | amplitude / phase SSIM |')
            print('| :--- | ---: |')
            print('\n'.join(_oracle_rows(*plain, truth, mask)), flush=True)


if __name__ == '__main__':
    main()

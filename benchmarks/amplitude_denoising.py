"""Denoising the refined amplitude at its shot-noise level, across doses and overlaps.

Made by: the refinement alone, 100 iterations from a flat object (no network; the defaults'
output since ``RefineStart = flat``), then ``solver.denoise.denoise_amplitude`` with the weight
``factor x OverlapRefinement.amplitude_noise()``: the shot-noise level of the amplitude that the
counts and the probe's illumination give, no truth involved. Factor 0 is the refinement as it
is; 1 is the default (``InferenceConfig.amplitude_denoising``). Scored on the realistic held-out
test scans (``ptychodus_io/realistic.py``: natural images, Ptychodus's zone-plate probe) against
the truth over the scanned region, with the data consistency of each object beside.

    PYTHONPATH=. .venv/bin/python benchmarks/amplitude_denoising.py \
        --cells 0.7:1e6 0.5:1e6 0.35:1e6 0.7:1e5 0.7:1e4 0.5:1e4 0.35:1e4 0.7:1e3 0.5:1e3

A cell may name the scan's seed as a third field (``0.7:1e4:1``: other images, other noise).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from low_dose_prior_oracle import refined_test_scan

from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.solver.consistency import consistency_of
from ptychopinn_plugin.solver.denoise import denoise_refined

FACTORS = (0.0, 0.5, 1.0, 2.0)


def _cell(text: str) -> tuple[float, float, int]:
    fields = text.split(':')
    return float(fields[0]), float(fields[1]), int(fields[2]) if len(fields) > 2 else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cells', nargs='+', type=_cell, default=[(0.7, 1e4, 0), (0.7, 1e6, 0)])
    parser.add_argument('--factors', nargs='+', type=float, default=list(FACTORS))
    parser.add_argument('--device', default='cpu', help="refinement device ('numpy': NumPy)")
    args = parser.parse_args()
    print(
        '| overlap | photons | seed | shot-noise level / median amplitude | '
        + ' | '.join(
            f'x {factor:g}: amplitude / phase SSIM (misfit x noise)' for factor in args.factors
        )
        + ' | denoising s |'
    )
    print('| ---: ' * (4 + len(args.factors) + 1) + '|')
    for overlap, photons, seed in args.cells:
        refinement, refined, truth, mask = refined_test_scan(overlap, photons, seed, args.device)
        level = refinement.amplitude_noise()
        cells, seconds = [], 0.0
        for factor in args.factors:
            begin = time.perf_counter()
            estimate = denoise_refined(refinement, refined, factor)
            seconds = max(seconds, time.perf_counter() - begin)
            refinement.set_object(estimate)
            misfit = consistency_of(refinement).median_noise_ratio
            scores = score_object(estimate, truth, mask)
            cells.append(
                f'{scores["amplitude_ssim"]:.3f} / {scores["phase_ssim"]:.3f} ({misfit:.2f})'
            )
        lit = refinement.illuminated
        relative = level / float(np.median(np.abs(refined[lit])))
        print(
            f'| {overlap:.0%} | {photons:.0e} | {seed} | {relative:.4f} | '
            + ' | '.join(cells)
            + f' | {seconds:.2f} |',
            flush=True,
        )


if __name__ == '__main__':
    main()

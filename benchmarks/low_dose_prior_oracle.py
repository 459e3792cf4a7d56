"""How much can a prior against noise add to the refinement at low dose? An oracle (issue 26).

For each cell (``OVERLAP:PHOTONS``) the realistic benchmark's held-out test scan is simulated
(``ptychodus_io/realistic.py``, seed 0) and the built-in refinement runs 100 iterations from a
flat object (the plugin's default output, no network). Generic image priors are then applied to
the refined object on its lit pixels, each at several strengths, and scored against the truth:
Gaussian smoothing and total variation of the real and imaginary parts, non-local means of the
real and imaginary parts, total variation of the amplitude and the phase separately, and of the
amplitude alone (the phase kept). The strength is chosen by looking at the truth, so the best row
of each family is an upper bound of what that prior adds; a learned prior has to beat it::

    PYTHONPATH=. .venv/bin/python benchmarks/low_dose_prior_oracle.py --cells 0.7:1e4 0.5:1e4

About 1 min per cell on 2 cores.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.restoration import denoise_nl_means, denoise_tv_chambolle

from ptychopinn_plugin.config import default_stitch_crop_px
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.ptychodus_io.realistic import RealisticSpec, make_realistic_scan
from ptychopinn_plugin.solver.overlap import OverlapRefinement

N = 64
ITERATIONS = 100


def _cell(text: str) -> tuple[float, float]:
    overlap, photons = text.split(':')
    return float(overlap), float(photons)


def held_out_scan(overlap: float, photons: float, seed: int):
    """The realistic held-out test scan of a cell: its data, truth and scanned-region mask."""
    spec = RealisticSpec(num_photons=photons, overlap_fraction=overlap)
    test = make_realistic_scan('test', spec, seed=seed).with_probe_power_of_data()
    truth = test.truth
    mask = scanned_region_mask(test.positions_px, truth.shape, N, default_stitch_crop_px(N))
    return test.training_data(), truth, mask


def refined_test_scan(
    overlap: float, photons: float, seed: int, device: str | None
) -> tuple[OverlapRefinement, np.ndarray, np.ndarray, np.ndarray]:
    """The realistic held-out test scan of a cell, refined :data:`ITERATIONS` times from a flat
    object on ``device`` (``'numpy'``: NumPy): the refinement, its object (the start kept where
    barely lit), the truth and the scanned-region mask."""
    data, truth, mask = held_out_scan(overlap, photons, seed)
    flat = np.ones(truth.shape, np.complex64)
    refinement = OverlapRefinement(
        flat,
        data.positions_px,
        data.diffraction_amplitude,
        data.probe,
        device=None if device == 'numpy' else device,
    )
    for _ in range(ITERATIONS):
        refinement.step()
    return refinement, np.where(refinement.illuminated, refinement.object_, flat), truth, mask


def _noise_sigma(values: np.ndarray) -> float:
    """Robust pixel-noise level: the median absolute high-pass residual (Gaussian noise)."""
    return float(np.median(np.abs(values - gaussian_filter(values, 1.0)))) / 0.6745


def _candidates(refined: np.ndarray, lit: np.ndarray) -> list[tuple[str, float, np.ndarray]]:
    """The refined object through each prior and strength (on the lit pixels only)."""
    level = float(np.median(np.abs(refined[lit])))

    def parts(denoise: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        return np.where(lit, denoise(refined.real) + 1j * denoise(refined.imag), refined)

    def polar(weight: float, phase_too: bool = True) -> np.ndarray:
        amplitude = denoise_tv_chambolle(np.abs(refined), weight=weight * level)
        phase = np.angle(refined)
        if phase_too:
            phase = denoise_tv_chambolle(phase, weight=weight)
        return np.where(lit, amplitude * np.exp(1j * phase), refined)

    def nl_means(values: np.ndarray, factor: float) -> np.ndarray:
        sigma = _noise_sigma(values)
        return denoise_nl_means(
            values, h=factor * sigma, sigma=sigma, patch_size=5, patch_distance=6
        )

    candidates: list[tuple[str, float, np.ndarray]] = [('none', 0.0, refined)]
    for sigma in (0.5, 0.75, 1.0, 1.5, 2.0):
        candidates.append(
            ('Gaussian, sigma px', sigma, parts(lambda v, s=sigma: gaussian_filter(v, s)))
        )
    for weight in (0.02, 0.05, 0.1, 0.2, 0.4):
        tv = parts(lambda v, w=weight: denoise_tv_chambolle(v, weight=w * level))
        candidates.append(('TV of real and imaginary, weight', weight, tv))
    for factor in (0.6, 0.8, 1.0, 1.5):
        candidates.append(
            ('non-local means, h / sigma', factor, parts(lambda v, f=factor: nl_means(v, f)))
        )
    for weight in (0.05, 0.1, 0.2, 0.4):
        candidates.append(('TV of amplitude and phase, weight', weight, polar(weight)))
    for weight in (0.05, 0.1, 0.2, 0.4):
        candidates.append(('TV of the amplitude alone, weight', weight, polar(weight, False)))
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cells', nargs='+', type=_cell, default=[(0.7, 1e4), (0.5, 1e4)])
    parser.add_argument('--device', default='cpu', help="refinement device (None: 'numpy')")
    args = parser.parse_args()
    for overlap, photons in args.cells:
        refinement, refined, truth, mask = refined_test_scan(overlap, photons, 0, args.device)
        lit = refinement.illuminated
        # the global complex scale the scores remove anyway, so that strengths mean the same
        refined = refined * (
            np.sum(np.conj(refined[mask]) * truth[mask]) / np.sum(np.abs(refined[mask]) ** 2)
        )
        candidates = _candidates(refined, lit)
        print(
            f'\n### {overlap:.0%} overlap, {photons:.0e} photons: refinement {ITERATIONS} '
            'iterations from a flat object, then\n'
        )
        print('| prior | strength | amplitude SSIM | phase SSIM |\n| :--- | ---: | ---: | ---: |')
        for name, strength, estimate in candidates:
            scores = score_object(estimate, truth, mask)
            print(
                f'| {name} | {strength:g} | {scores["amplitude_ssim"]:.3f} | '
                f'{scores["phase_ssim"]:.3f} |',
                flush=True,
            )


if __name__ == '__main__':
    main()

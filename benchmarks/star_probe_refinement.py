"""How many probe-refinement iterations does the measured Siemens star need? A screen at N = 64.

For each iteration count: the probe in the star's file (a zone-plate model) is refined with a flat
object on the scan points left of the median x (``core.probe_refinement.refine_probe``, as training
does). A flat object is then refined for 100 iterations on the points to the right with that probe
held fixed (``OverlapRefinement``, as inference does after the network). Scores are against
pty-chi LSQML 100 on all points (``examples/data/star-n64-ptychi-lsqml100.h5``) over the right
half, with and without the linear phase ramp between the objects. pty-chi's own refined probe is
the first row. No network is trained, so this isolates the probe.

    PYTHONPATH=. .venv/bin/python benchmarks/star_probe_refinement.py [ITERATIONS ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import h5py
import numpy as np

from ptychopinn_plugin.config import default_stitch_crop_px
from ptychopinn_plugin.core import metrics
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.evidence.benchmark import load_siemens_star, score_object
from ptychopinn_plugin.solver.consistency import measure_consistency
from ptychopinn_plugin.solver.overlap import OverlapRefinement
from ptychopinn_plugin.solver.probe import refine_probe

REPO = Path(__file__).resolve().parents[1]
STAR = REPO.parent / 'shared' / 'data' / 'tike-siemens-star'
REFERENCE = REPO / 'examples' / 'data' / 'star-n64-ptychi-lsqml100.h5'
N = 64


def load_reference() -> tuple[np.ndarray, np.ndarray]:
    """pty-chi LSQML 100's object and refined probe (complex64) of the star at N = 64."""
    with h5py.File(REFERENCE) as file:
        reference = np.asarray(file['object'][()])[0]
        probe = np.asarray(file['probe'][()]).reshape(N, N).astype(np.complex64)
    return reference, probe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('iterations', type=int, nargs='*', default=[100, 200, 500])
    parser.add_argument('--star-dir', type=Path, default=STAR)
    args = parser.parse_args()
    scan = load_siemens_star(args.star_dir, N)
    amplitude = np.sqrt(scan.counts)
    left = scan.positions_px[:, 0] < np.median(scan.positions_px[:, 0])
    right = ~left
    reference, ptychi_probe = load_reference()
    mask = scanned_region_mask(
        scan.positions_px[right], scan.object_shape, N, default_stitch_crop_px(N)
    )

    def score(probe: np.ndarray, label: str) -> None:
        refinement = OverlapRefinement(
            np.ones(scan.object_shape, np.complex64),
            scan.positions_px[right],
            amplitude[right],
            probe,
        )
        for _ in range(100):
            refinement.step()
        estimate = refinement.object_
        consistency = measure_consistency(
            estimate, scan.positions_px[right], amplitude[right], probe
        )
        raw = score_object(estimate, reference, mask)
        ramp = score_object(
            metrics.remove_relative_phase_ramp(estimate, reference, mask), reference, mask
        )
        print(
            f'| {label} | {raw["phase_ssim"]:.3f} | {ramp["phase_ssim"]:.3f} | '
            f'{raw["amplitude_ssim"]:.3f} | {raw["frc_px"]:.2f} | '
            f'{consistency.median_noise_ratio:.2f} |',
            flush=True,
        )

    print(
        '| probe | phase SSIM | phase SSIM, ramp removed | amplitude SSIM | FRC px '
        '| misfit x noise |'
    )
    print('| :--- | ---: | ---: | ---: | ---: | ---: |')
    score(ptychi_probe, "pty-chi's refined probe")
    score(scan.probe, 'the model probe as given')
    for iterations in args.iterations:
        start = time.perf_counter()
        result = refine_probe(
            scan.positions_px[left], amplitude[left], scan.probe, iterations=iterations
        )
        seconds = time.perf_counter() - start
        score(result.probe, f'refined, {iterations} iterations ({seconds:.0f} s)')


if __name__ == '__main__':
    main()

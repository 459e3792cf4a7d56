"""The built-in refinement against pty-chi on the measured Siemens star, per iteration and second.

Both solvers start from a flat object on all 516 points at N = 64 and hold the same probe fixed:
pty-chi's own refined probe (from ``examples/data/star-n64-ptychi-lsqml100.h5``, pty-chi LSQML 100
as shipped, probe refined), so neither solver's probe handling plays a part. pty-chi runs through
``ptychodus -b reconstruct`` in the benchmark environment, as comparably as it allows (LSQML,
probe fixed, one compact batch, momentum; ``evidence.baseline.ptychi_settings(..., 'comparable')``);
its seconds are Ptychodus's "Reconstruction time". The built-in refinement runs in this process
(NumPy, and PyTorch on the CPU), its seconds its own.

The star has no truth, so quality is measured twice: the data consistency of each object with
that probe (median misfit over the Poisson noise, 1 = explained to the noise;
``solver/consistency.py``, the same code for both), and phase SSIM against the reference object
(pty-chi LSQML 100 as shipped; this favours pty-chi, whose artefacts the reference shares)::

    PYTHONPATH=. .venv/bin/python benchmarks/star_solvers.py [--iterations 25 50 100 200]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from ptychopinn_plugin.config import default_stitch_crop_px
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.evidence.baseline import ptychi_settings, run_batch
from ptychopinn_plugin.evidence.benchmark import (
    load_siemens_star,
    score_object,
    write_measured_workflow,
)
from ptychopinn_plugin.evidence.report import reconstruction_seconds
from ptychopinn_plugin.solver.consistency import measure_consistency
from ptychopinn_plugin.solver.overlap import OverlapRefinement

sys.path.insert(0, str(Path(__file__).resolve().parent))
from star_probe_refinement import REPO, STAR, N, load_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--iterations', type=int, nargs='+', default=[25, 50, 100, 200])
    parser.add_argument('--star-dir', type=Path, default=STAR)
    parser.add_argument('--bench-venv', type=Path, default=REPO / '.venv-bench')
    parser.add_argument('--devices', nargs='+', default=['numpy', 'cpu'])
    args = parser.parse_args()
    reference, probe = load_reference()
    scan = replace(load_siemens_star(args.star_dir, N), probe=probe)
    if reference.shape != scan.object_shape:
        raise SystemExit(f'reference {reference.shape} is not on the grid {scan.object_shape}')
    amplitude = np.sqrt(scan.counts).astype(np.float32)
    mask = scanned_region_mask(scan.positions_px, scan.object_shape, N, default_stitch_crop_px(N))

    def row(solver: str, iterations: int, seconds: float, object_: np.ndarray) -> None:
        consistency = measure_consistency(object_, scan.positions_px, amplitude, probe)
        scores = score_object(object_, reference, mask)
        print(
            f'| {solver} | {iterations} | {seconds:.1f} | '
            f'{consistency.median_noise_ratio:.2f} | {scores["phase_ssim"]:.3f} | '
            f'{scores["amplitude_ssim"]:.3f} |',
            flush=True,
        )

    print(
        f"Siemens star, N = {N}, {len(scan.counts)} points, flat start, pty-chi's refined probe "
        'held fixed\n'
    )
    print(
        '| solver | iterations | seconds | misfit x noise | phase SSIM vs pty-chi 100 | '
        'amplitude SSIM |\n| :--- | ---: | ---: | ---: | ---: | ---: |'
    )
    for device in args.devices:
        refinement = OverlapRefinement(
            np.ones(scan.object_shape, np.complex64),
            scan.positions_px,
            amplitude,
            probe,
            device=None if device == 'numpy' else device,
        )
        start = time.perf_counter()
        done = 0
        for iterations in sorted(args.iterations):
            while done < iterations:
                refinement.step()
                done += 1
            elapsed = time.perf_counter() - start
            row(f'built-in ({refinement.arrays!r})', iterations, elapsed, refinement.object_)
    for iterations in sorted(args.iterations):
        settings = ptychi_settings('LSQML', iterations, 'comparable', len(scan.counts))
        with tempfile.TemporaryDirectory() as folder:
            directory = write_measured_workflow(Path(folder) / 'input', scan, settings)
            output = Path(folder) / 'output'
            result = run_batch(
                args.bench_venv / 'bin' / 'ptychodus', 'reconstruct', directory, output
            )
            products = sorted(output.glob('product.*.h5'))
            if result.returncode != 0 or not products:
                print(f'| pty-chi comparable | {iterations} | failed: {result.log[-300:]!r} |||')
                continue
            from ptychodus.api.io import load_product

            object_ = np.asarray(load_product(products[-1]).object_.get_layer(0))
            seconds = reconstruction_seconds(result.log) or float('nan')
        row('pty-chi LSQML comparable', iterations, seconds, object_)


if __name__ == '__main__':
    main()

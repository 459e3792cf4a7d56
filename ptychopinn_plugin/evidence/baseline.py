"""Speed and quality against an iterative solver: pty-chi through ``ptychodus -b reconstruct``.

``python -m ptychopinn_plugin.evidence.baseline --out DIR`` simulates two scans with Ptychodus's own
forward model, trains PtychoPINN on the first with ``ptychodus -b train`` and reconstructs the
second with ``ptychodus -b reconstruct`` (each backend), then reconstructs the same workflow
directory with pty-chi algorithms (LSQML, ePIE) at several iteration counts, also through
``ptychodus -b reconstruct``. Every time is Ptychodus's own "Reconstruction time" log line, so
application start-up and data loading are excluded for both; what remains is the reconstructor's
own work (for PtychoPINN: building the engine and the network, inference, stitching; for pty-chi:
its subprocess, task set-up, the iterations) plus saving the yielded products.

pty-chi runs from a separate environment (``benchmarks/setup_bench_env.sh`` makes
``.venv-bench``), PtychoPINN from this one. Ptychodus 1.7 hands pty-chi positions with a half-pixel
origin mismatch for even pattern sizes; the baseline is reported as shipped, and again after
sub-pixel registration to the truth so the reader sees what the mismatch costs.

The test scan's probe is rescaled to the data's mean counts per pattern (``sum |P|^2`` = counts),
as Ptychodus's probe builders scale a probe to their photon count. The probe that Ptychodus's
simulator needed is about 1,800 times stronger in amplitude (its Fresnel prefactor), and with it
pty-chi's object does not move from the flat guess in 50 LSQML iterations (epoch-0 loss 3e12).
PtychoPINN normalises the probe and gives the same object either way.

Writes ``DIR/baseline.md``, ``DIR/baseline.json`` and ``DIR/baseline_*.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..config import default_stitch_crop_px
from ..core import metrics
from ..core.stitching import scanned_region_mask
from .report import (
    PTYCHI_VARIANTS,
    command_line,
    load_note,
    machine_description,
    markdown_table,
    prepare_output,
    pyplot,
    reconstruction_seconds,
    save_object_figure,
)

if TYPE_CHECKING:
    from ..ptychodus_io.batch import BatchRun

logger = logging.getLogger('ptychopinn_plugin.evidence.baseline')

__all__ = [
    'PTYCHI_VARIANTS',
    'BaselineRun',
    'main',
    'ptychi_settings',
    'reconstruct_in_ptychodus',
    'registered_scores',
    'run_batch',
    'score',
]

DEFAULT_BENCH_VENV = Path('.venv-bench')
PTYCHI_ALGORITHMS = ('LSQML', 'ePIE')
"""pty-chi display names in Ptychodus 1.7 (``model/ptychi/_names.py``); the processing key is
``pty-chi_<name casefolded>``."""
REGISTRATION_UPSAMPLING = 20
"""Sub-pixel registration precision: 1/20 pixel (enough to resolve the half-pixel mismatch)."""


def run_batch(
    executable: Path, action: str, input_dir: Path, output_dir: Path, *, timeout_s: float = 1800
) -> BatchRun:
    """Run ``EXECUTABLE -b ACTION -i IN -o OUT`` (``ptychodus_io.batch.run_ptychodus``)."""
    if not executable.is_file():
        raise FileNotFoundError(
            f'{executable} does not exist; create the benchmark environment with '
            '`bash benchmarks/setup_bench_env.sh` (pty-chi) or install this package'
        )
    from ..ptychodus_io.batch import run_ptychodus

    return run_ptychodus(action, input_dir, output_dir, timeout_s=timeout_s, executable=executable)


COMPARABLE_MOMENTUM_GAIN = 0.5
"""LSQML's ``MomentumAccelerationGain`` in the ``comparable`` variant (pty-chi's default is 0)."""


def ptychi_settings(
    algorithm: str, num_epochs: int, variant: str = 'shipped', num_patterns: int | None = None
) -> dict[str, dict[str, object]]:
    """Ptychodus settings of one pty-chi run: as shipped except the iteration count, or a variant.

    ``NumSyncEpochs = NumEpochs`` makes pty-chi yield (and Ptychodus save) one product at the end,
    as PtychoPINN's single final product; intermediate products would add saving time.

    ``variant`` (``PTYCHI_VARIANTS``): ``shipped``; ``probe-fixed`` holds the probe fixed (as the
    plugin's refinement does); ``comparable`` also puts every pattern in one batch
    (``num_patterns``, required) and turns on LSQML's momentum acceleration, as the plugin's
    refinement runs (full batch, momentum 0.9); pty-chi applies LSQML's object momentum only with
    compact batching, which with one batch is the whole scan.
    """
    if variant not in PTYCHI_VARIANTS:
        raise ValueError(
            f'unknown pty-chi variant {variant!r}; choose one of {list(PTYCHI_VARIANTS)}'
        )
    settings: dict[str, dict[str, object]] = {
        'Processing': {'Algorithm': f'pty-chi_{algorithm.casefold()}'},
        'PtyChi': {'NumEpochs': num_epochs, 'NumSyncEpochs': num_epochs},
    }
    if variant in ('probe-fixed', 'comparable'):
        settings['PtyChiProbe'] = {'IsOptimizable': False}
    if variant == 'comparable':
        if algorithm.casefold() != 'lsqml':
            raise ValueError(
                f"the 'comparable' pty-chi variant is defined for LSQML only, not {algorithm}"
            )
        if num_patterns is None:
            raise ValueError("the 'comparable' pty-chi variant needs num_patterns (one batch)")
        settings['PtyChi'].update(BatchSize=num_patterns, BatchingMode='compact')
        # pty-chi applies LSQML's object momentum in compact batching only
        settings['PtyChiLSQML'] = {'MomentumAccelerationGain': COMPARABLE_MOMENTUM_GAIN}
    return settings


def registered_scores(
    estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray
) -> tuple[dict[str, float], tuple[float, float]]:
    """Scores after removing the sub-pixel shift between estimate and truth, and that shift."""
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    aligned = metrics.align_complex(estimate, truth, mask)
    shift, _, _ = phase_cross_correlation(
        truth * mask, aligned * mask, upsample_factor=REGISTRATION_UPSAMPLING
    )
    shifted = np.fft.ifft2(ndimage.fourier_shift(np.fft.fft2(estimate), shift))
    return metrics.compare_objects(shifted, truth, mask), (float(shift[0]), float(shift[1]))


def score(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, object]:
    scores = metrics.compare_objects(estimate, truth, mask)
    registered, shift = registered_scores(estimate, truth, mask)
    return {'scores': scores, 'registered': registered, 'shift_px': shift}


@dataclass
class BaselineRun:
    """One reconstruction of the test scan through ``ptychodus -b reconstruct``."""

    method: str
    iterations: int | None
    returncode: int
    wall_s: float
    reconstruction_s: float | None
    scores: dict[str, float] = field(default_factory=dict)
    registered: dict[str, float] = field(default_factory=dict)
    shift_px: tuple[float, float] = (0.0, 0.0)
    note: str = ''


def _final_object(output: Path) -> np.ndarray | None:
    from ptychodus.api.io import load_product

    products = sorted(output.glob('product.*.h5'))
    if not products:
        return None
    return np.asarray(load_product(products[-1]).object_.get_layer(0))


def reconstruct_in_ptychodus(
    executable: Path, directory: Path, output: Path, method: str, iterations, truth, mask
) -> tuple[BaselineRun, np.ndarray | None]:
    """Reconstruct a workflow directory with ``EXECUTABLE -b reconstruct``, time and score it.

    Returns the run (Ptychodus's "Reconstruction time", scores against ``truth`` over ``mask``,
    or a note saying why there are none) and the final object (None when none was written).
    """
    done = run_batch(executable, 'reconstruct', directory, output)
    run = BaselineRun(
        method, iterations, done.returncode, done.seconds, reconstruction_seconds(done.log)
    )
    estimate = _final_object(output) if done.returncode == 0 else None
    if estimate is None:
        run.note = ' / '.join(done.log.strip().splitlines()[-3:]) or 'no product written'
    elif 'none_none' in done.log or run.reconstruction_s is None:
        run.note = 'Ptychodus did not run the requested algorithm (no "Reconstruction time" line)'
    else:
        measured = score(estimate, truth, mask)
        run.scores = measured['scores']
        run.registered = measured['registered']
        run.shift_px = measured['shift_px']
    logger.info(
        '%s %s: %.2f s, %s', method, iterations, run.reconstruction_s or float('nan'), run.scores
    )
    return run, estimate


def pinn_settings(backend: str, epochs: int, n_filters_scale: int) -> dict[str, dict[str, object]]:
    return {
        'Processing': {'Algorithm': 'ptychopinn_pinn'},
        'PtychoPINNModel': {'NumFiltersScale': n_filters_scale},
        'PtychoPINNTraining': {'NumEpochs': epochs, 'BatchSize': 16},
        'PtychoPINNInference': {'NumPartialResults': 1},
        'PtychoPINN': {'Backend': backend, 'Device': 'cpu'},
    }


@dataclass
class Headline:
    """pty-chi's cheapest run at equal or better quality than PtychoPINN, and the time ratio."""

    algorithm: str
    reference: str
    criterion: str
    iterations: int | None
    ptychi_s: float | None
    pinn_s: float
    ratio: float | None
    """pty-chi seconds / PtychoPINN seconds (None when pty-chi never reached the quality)."""

    def sentence(self) -> str:
        if self.ratio is None:
            return (
                f"{self.algorithm} did not reach {self.reference}'s {self.criterion} in any "
                'iteration count tried'
            )
        return (
            f'{self.algorithm} needs {self.iterations} iterations ({self.ptychi_s:.2f} s) to match '
            f'{self.reference} ({self.pinn_s:.2f} s) in {self.criterion}: ratio {self.ratio:.2f}'
        )


QUALITY_CRITERION = ('phase_ssim', 'amplitude_ssim')
"""Equal or better quality means both phase and amplitude SSIM at least PtychoPINN's (scanned
region, global complex scale removed, as shipped: no registration)."""


def headlines(runs: list[BaselineRun], reference: BaselineRun) -> list[Headline]:
    result = []
    for algorithm in sorted({r.method for r in runs if r.method.startswith('pty-chi')}):
        candidates = sorted(
            (r for r in runs if r.method == algorithm and r.scores and r.reconstruction_s),
            key=lambda r: r.iterations or 0,
        )
        good = [
            r
            for r in candidates
            if all(r.scores[k] >= reference.scores[k] for k in QUALITY_CRITERION)
        ]
        best = good[0] if good else None
        result.append(
            Headline(
                algorithm=algorithm,
                reference=reference.method,
                criterion=' and '.join(QUALITY_CRITERION).replace('_', ' '),
                iterations=best.iterations if best else None,
                ptychi_s=best.reconstruction_s if best else None,
                pinn_s=float(reference.reconstruction_s or float('nan')),
                ratio=(best.reconstruction_s / reference.reconstruction_s)
                if best and reference.reconstruction_s
                else None,
            )
        )
    return result


def run_experiment(args: argparse.Namespace) -> dict[str, object]:
    from ..ptychodus_io.simulation import ScanSpec, make_workflow_scan, write_workflow_scan

    out: Path = args.out
    n = args.pattern_size
    spec = ScanSpec(
        pattern_size_px=n,
        step_px=round(0.22 * n),
        columns=args.side,
        rows=args.side,
        num_photons=args.photons,
    )
    train_scan = make_workflow_scan(0, spec)
    # both methods reconstruct the test scan with its probe at the data's photon count (what
    # Ptychodus's probe builders give); the simulator's own probe scale stalls pty-chi
    test_scan = make_workflow_scan(1, spec).with_probe_power_of_data()
    crop = default_stitch_crop_px(n)
    mask = scanned_region_mask(test_scan.positions_px, test_scan.truth.shape, n, crop)
    main_ptychodus = Path(sys.executable).with_name('ptychodus')
    bench_ptychodus = (args.bench_venv / 'bin' / 'ptychodus').absolute()
    runs: list[BaselineRun] = []
    objects: dict[str, np.ndarray] = {}
    training: dict[str, float] = {}

    guess = score(test_scan.initial_guess, test_scan.truth, mask)
    runs.append(
        BaselineRun(
            'initial guess (flat)', None, 0, 0.0, None, guess['scores'], guess['registered']
        )
    )
    for backend in args.backends.split(','):
        settings = pinn_settings(backend, args.train_epochs, args.n_filters_scale)
        train_dir = write_workflow_scan(out / f'pinn-{backend}' / 'train', train_scan, settings)
        trained = run_batch(main_ptychodus, 'train', train_dir, train_dir.parent / 'train-output')
        training[backend] = trained.seconds
        model = train_dir.parent / 'train-output' / 'model.zip'
        if trained.returncode != 0 or not model.is_file():
            runs.append(
                BaselineRun(
                    f'PtychoPINN {backend}',
                    None,
                    trained.returncode,
                    trained.seconds,
                    None,
                    note='training failed: ' + trained.log.strip().splitlines()[-1],
                )
            )
            continue
        directory = write_workflow_scan(out / f'pinn-{backend}' / 'test', test_scan, settings)
        shutil.copyfile(model, directory / 'model.zip')
        for repeat in range(args.repeats):
            run, estimate = reconstruct_in_ptychodus(
                main_ptychodus,
                directory,
                directory.parent / f'test-output-{repeat}',
                f'PtychoPINN {backend}',
                None,
                test_scan.truth,
                mask,
            )
            runs.append(run)
            if estimate is not None:
                objects[f'PtychoPINN {backend}'] = estimate

    for algorithm in args.algorithms.split(','):
        for iterations in (int(i) for i in args.iterations.split(',')):
            directory = write_workflow_scan(
                out / f'ptychi-{algorithm}-{iterations}' / 'test',
                test_scan,
                ptychi_settings(algorithm, iterations),
            )
            run, estimate = reconstruct_in_ptychodus(
                bench_ptychodus,
                directory,
                directory.parent / 'test-output',
                f'pty-chi {algorithm}',
                iterations,
                test_scan.truth,
                mask,
            )
            runs.append(run)
            if estimate is not None:
                objects[f'pty-chi {algorithm} {iterations}'] = estimate
    _figures(out, test_scan.truth, mask, objects, runs)
    return {'runs': runs, 'training_wall_s': training, 'spec': asdict(spec)}


def _figures(out, truth, mask, objects, runs) -> None:
    if objects:
        panels = [('truth', truth * mask)] + [
            (name, metrics.align_complex(o, truth, mask) * mask) for name, o in objects.items()
        ]
        save_object_figure(out / 'baseline_objects.png', panels[:8])
    plt = pyplot()
    if plt is None:
        return
    fig, axis = plt.subplots(figsize=(6, 3.8))
    for method in sorted({r.method for r in runs if r.reconstruction_s}):
        points = sorted(
            (r.reconstruction_s, r.scores['phase_ssim'])
            for r in runs
            if r.method == method and r.reconstruction_s and r.scores
        )
        if points:
            x, y = zip(*points, strict=True)
            axis.plot(x, y, 'o-' if method.startswith('pty-chi') else 's', label=method)
    axis.set_xscale('log')
    axis.set_xlabel('Ptychodus "Reconstruction time" (s)')
    axis.set_ylabel('phase SSIM (as shipped)')
    axis.set_title('quality vs time, same workflow directory', fontsize=9)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / 'baseline_quality_vs_time.png', dpi=72)
    plt.close(fig)


def write_report(
    out: Path, result: dict[str, object], command: str, seconds: float, load: str
) -> Path:
    runs: list[BaselineRun] = result['runs']  # type: ignore[assignment]
    rows = []
    for r in runs:
        if not r.scores:
            rows.append([r.method, r.iterations or '', '', '', '', '', '', '', r.note])
            continue
        rows.append(
            [
                r.method,
                r.iterations if r.iterations is not None else '',
                f'{r.reconstruction_s:.2f}' if r.reconstruction_s else '',
                f'{r.scores["amplitude_psnr_db"]:.1f}',
                f'{r.scores["phase_psnr_db"]:.1f}',
                f'{r.scores["amplitude_ssim"]:.2f}',
                f'{r.scores["phase_ssim"]:.2f}',
                f'{r.registered["phase_ssim"]:.2f} ({r.shift_px[0]:+.2f}, {r.shift_px[1]:+.2f})',
                r.note,
            ]
        )
    pinn = [
        r for r in runs if r.method.startswith('PtychoPINN') and r.scores and r.reconstruction_s
    ]
    lines = [
        '# PtychoPINN vs pty-chi through `ptychodus -b reconstruct`',
        '',
        f'Command: `{command}`  ',
        f'Finished in {seconds / 60:.1f} min; {load} at the start, {load_note()} at the end.  ',
        'Machine: ' + ', '.join(f'{k} {v}' for k, v in machine_description().items()) + '.  ',
        f'Scans: {result["spec"]}; train on seed 0, reconstruct seed 1 (another object), whose '
        "probe is rescaled to the data's mean counts per pattern (as Ptychodus's probe builders "
        "scale a probe; with the simulator's probe scale pty-chi does not move from the flat "
        'guess).  ',
        'PtychoPINN training (`ptychodus -b train`, wall seconds with start-up): '
        + ', '.join(f'{k} {v:.1f} s' for k, v in result['training_wall_s'].items())  # type: ignore[union-attr]
        + '.',
        '',
        'Seconds: Ptychodus\'s own "Reconstruction time" line (start-up and loading excluded). '
        'Scores on the scanned region after removing the global complex scale, as shipped; the '
        'last score column is phase SSIM after sub-pixel registration to the truth, with the '
        'shift (rows, columns) in pixels.',
        '',
        markdown_table(
            [
                'method',
                'iterations',
                'seconds',
                'amplitude PSNR dB',
                'phase PSNR dB',
                'amplitude SSIM',
                'phase SSIM',
                'phase SSIM registered (shift px)',
                'note',
            ],
            rows,
        ),
        '',
    ]
    if pinn:
        reference = min(pinn, key=lambda r: r.reconstruction_s or float('inf'))
        lines += ['## Headline', '']
        for headline in headlines(runs, reference):
            lines.append(f'- {headline.sentence()}.')
        lines.append('')
    path = out / 'baseline.md'
    path.write_text('\n'.join(lines))
    (out / 'baseline.json').write_text(
        json.dumps(
            {
                'command': command,
                'seconds': seconds,
                'machine': machine_description(),
                'spec': result['spec'],
                'training_wall_s': result['training_wall_s'],
                'runs': [asdict(r) for r in runs],
                'headlines': [asdict(h) for h in headlines(runs, reference)] if pinn else [],
            },
            indent=1,
        )
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.baseline', description=__doc__.splitlines()[0]
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument(
        '--bench-venv',
        type=Path,
        default=DEFAULT_BENCH_VENV,
        help='environment with pty-chi (benchmarks/setup_bench_env.sh)',
    )
    parser.add_argument('--pattern-size', type=int, default=64)
    parser.add_argument('--side', type=int, default=18, help='scan points per side')
    parser.add_argument('--photons', type=float, default=1e6, help='photons per pattern')
    parser.add_argument('--train-epochs', type=int, default=10)
    parser.add_argument('--n-filters-scale', type=int, default=1)
    parser.add_argument('--backends', default='pytorch,tensorflow')
    parser.add_argument(
        '--repeats', type=int, default=2, help='PtychoPINN reconstructions per backend'
    )
    parser.add_argument('--algorithms', default=','.join(PTYCHI_ALGORITHMS))
    parser.add_argument('--iterations', default='2,5,10,20,50,100')
    args = parser.parse_args(argv)
    load = prepare_output(args.out)
    start = time.perf_counter()
    result = run_experiment(args)
    command = command_line('ptychopinn_plugin.evidence.baseline', argv)
    path = write_report(args.out, result, command, time.perf_counter() - start, load)
    print(path.read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())

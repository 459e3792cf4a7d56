"""The README's demo: train and reconstruct through Ptychodus with each backend.

``python -m ptychopinn_plugin.demo --out demo-output`` simulates two scans of different objects
with Ptychodus's own forward model, writes them as standard Ptychodus workflow directories, runs the
real ``ptychodus -b train`` on the first and ``ptychodus -b reconstruct`` on the second, once per
installed backend, and writes to the output folder: the reconstructed products, a figure comparing
truth and reconstruction (amplitude and phase) per backend, the loss curves, and a table of quality
(PSNR / SSIM over the scanned region) and seconds (``quality.md``, ``summary.json``).
``--core-only`` instead runs the framework-free pipeline (simulate, contract NPZ, grouping,
stitching of the true patches) in seconds.

Every row of the quality table names what made its object ("made by"): per backend the network
alone (the product Ptychodus writes before the refinement, what ``RefineIterations 0`` returns)
and the plugin's defaults (the network, then the built-in iterative refinement); once, the same
refinement from the flat initial guess with no network and no training (in this process, a few
seconds), so that the refinement's share and the network's can be told apart.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .config import InferenceConfig, default_stitch_crop_px
from .core import metrics, simulate
from .core.contract import read_training_data, write_training_data
from .core.grouping import group_scan_points
from .core.stitching import scanned_region_mask, stitch_patches

logger = logging.getLogger('ptychopinn_plugin.demo')


def run_core(out: Path, *, num_patterns: int, pattern_size_px: int, seed: int) -> dict[str, float]:
    """Run the framework-free pipeline once and return its measured figures."""
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    scan = simulate.make_scan(
        'camera', num_patterns=num_patterns, pattern_size_px=pattern_size_px, seed=seed
    )
    timings['simulate_s'] = time.perf_counter() - start

    path = write_training_data(out / 'simulated_scan.npz', scan.data, overwrite=True)
    data = read_training_data(path)

    start = time.perf_counter()
    groups = group_scan_points(data.positions_px, gridsize=2, num_neighbors=7, seed=seed)
    timings['group_s'] = time.perf_counter() - start

    crop = default_stitch_crop_px(pattern_size_px)
    start = time.perf_counter()
    stitched, _ = stitch_patches(
        data.ground_truth_patches, data.positions_px, scan.object_.shape, crop
    )
    timings['stitch_s'] = time.perf_counter() - start

    mask = scanned_region_mask(data.positions_px, scan.object_.shape, pattern_size_px, crop)
    scores = metrics.compare_objects(stitched, scan.object_, mask)
    figures = {
        'num_patterns': float(data.num_patterns),
        'num_groups_gridsize2': float(groups.num_groups),
        'mean_photons_per_pattern': data.mean_total_counts(),
        **{str(key): float(value) for key, value in scores.items()},
        **timings,
    }
    (out / 'summary.json').write_text(json.dumps(figures, indent=2))
    _figure(out / 'stitched_truth.png', scan.object_, stitched, mask)
    return figures


def run_ptychodus_demo(out: Path, *, epochs: int, backends: list[str]) -> list[dict[str, object]]:
    """Train on one simulated scan and reconstruct another through ``ptychodus -b``, per backend.

    Rows: the flat initial guess, the built-in refinement from it (no network), then per backend
    the network alone and the network with the refinement (the defaults); each names its maker.
    """
    import shutil

    from ptychodus.api.io import load_product

    from .engines import backend_is_installed
    from .evidence.report import MADE_BY_GUESS, flat_start_refinement, made_by
    from .ptychodus_io.batch import run_ptychodus
    from .ptychodus_io.simulation import ScanSpec, make_workflow_scan, write_workflow_scan

    spec = ScanSpec(pattern_size_px=64, step_px=14.0, columns=18, rows=18, num_photons=1e6)
    logger.info('simulating two scans with Ptychodus (%d points each)', spec.columns * spec.rows)
    train_scan, test_scan = make_workflow_scan(0, spec), make_workflow_scan(1, spec)
    crop = default_stitch_crop_px(spec.pattern_size_px)
    mask = scanned_region_mask(
        test_scan.positions_px, test_scan.truth.shape, spec.pattern_size_px, crop
    )
    defaults = InferenceConfig()
    iterations = defaults.refine_iterations
    rows: list[dict[str, object]] = []

    def row(made: str, backend: str, estimate: np.ndarray, train_s=None, reconstruct_s=None):
        scores = metrics.compare_objects(estimate, test_scan.truth, mask)
        rows.append(
            {
                'made by': made,
                'backend': backend,
                **{str(k): float(v) for k, v in scores.items()},
                'train_s': train_s,
                'reconstruct_s': reconstruct_s,
            }
        )

    row(MADE_BY_GUESS, '', test_scan.initial_guess)
    flat = flat_start_refinement(
        test_scan.training_data(), test_scan.truth.shape, iterations, start=test_scan.initial_guess
    )
    row(made_by(iterations, None), 'none (NumPy solver)', flat.object_, None, flat.seconds)
    _figure(out / 'refinement_alone_flat_start.png', test_scan.truth, flat.object_, mask)
    for backend in backends:
        if not backend_is_installed(backend):
            logger.warning('%s is not installed; skipping it', backend)
            continue
        settings = {
            'Processing': {'Algorithm': 'ptychopinn_pinn'},
            'PtychoPINNModel': {'NumFiltersScale': 1},
            'PtychoPINNTraining': {'NumEpochs': epochs, 'BatchSize': 16},
            'PtychoPINN': {'Backend': backend, 'Device': 'auto'},
        }
        base = out / backend
        train_dir = write_workflow_scan(base / 'train-input', train_scan, settings)
        trained = run_ptychodus('train', train_dir, base / 'train-output')
        if trained.returncode != 0:
            raise RuntimeError(f'ptychodus -b train failed for {backend}:\n{trained.log[-3000:]}')
        test_dir = write_workflow_scan(base / 'reconstruct-input', test_scan, settings)
        shutil.copyfile(base / 'train-output' / 'model.zip', test_dir / 'model.zip')
        done = run_ptychodus('reconstruct', test_dir, base / 'reconstruct-output')
        if done.returncode != 0:
            raise RuntimeError(
                f'ptychodus -b reconstruct failed for {backend}:\n{done.log[-3000:]}'
            )
        products = sorted((base / 'reconstruct-output').glob('product.*.h5'))
        if iterations and len(products) > 1:
            # the product written before the refined one: the network's stitched object
            network = load_product(products[-2]).object_.get_layer(0)
            row(made_by(0, defaults.refine_start), backend, network, trained.seconds)
            _figure(base / 'network_alone.png', test_scan.truth, network, mask)
        estimate = load_product(products[-1]).object_.get_layer(0)
        _figure(base / 'truth_vs_reconstruction.png', test_scan.truth, estimate, mask)
        maker = made_by(iterations, defaults.refine_start)
        row(maker, backend, estimate, trained.seconds, done.seconds)
    (out / 'summary.json').write_text(json.dumps(rows, indent=2))
    return rows


QUALITY_NOTE = (
    'Scores over the scanned region after removing the global complex scale. "Made by": '
    '"network alone" is the network\'s stitched object (what `RefineIterations 0` returns); '
    '"network + refinement" the plugin\'s defaults, the network followed by the built-in iterative '
    'refinement (`solver/overlap.py`, the exact simulated probe held fixed); "refinement alone" '
    'the same refinement from the flat initial guess, with no network and no training. train_s: '
    '`ptychodus -b train` wall time (start-up included), needed by both network rows; '
    'reconstruct_s: `ptychodus -b reconstruct` wall time (start-up included; the network-alone '
    'row is an intermediate product of that run), or the in-process refinement time.'
)
"""What the demo's quality table means (printed under it and written into ``quality.md``)."""


def quality_table(rows: list[dict[str, object]]) -> str:
    """The demo's quality table in Markdown (every row has the same keys)."""
    columns = list(rows[-1])
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + ' --- |' * len(columns)]
    for row in rows:
        lines.append('| ' + ' | '.join(_cell(row.get(c, '')) for c in columns) + ' |')
    return '\n'.join(lines)


def _figure(path: Path, truth: np.ndarray, stitched: np.ndarray, mask: np.ndarray) -> None:
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info('matplotlib is not installed; skipping %s', path)
        return
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    estimate = metrics.align_complex(stitched, truth, mask) * mask
    for row, (name, image) in enumerate((('truth', truth * mask), ('estimate', estimate))):
        axes[row, 0].imshow(np.abs(image), cmap='gray')
        axes[row, 0].set_title(f'{name}: amplitude')
        axes[row, 1].imshow(np.angle(image), cmap='twilight')
        axes[row, 1].set_title(f'{name}: phase')
    for axis in axes.ravel():
        axis.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('demo-output'), help='output folder')
    parser.add_argument('--epochs', type=int, default=10, help='training epochs per backend')
    parser.add_argument(
        '--backends', default='pytorch,tensorflow', help='comma-separated backends to run'
    )
    parser.add_argument('--core-only', action='store_true', help='framework-free pipeline only')
    parser.add_argument('--num-patterns', type=int, default=1024, help='(core only) scan points')
    parser.add_argument('--pattern-size', type=int, default=64, help='(core only) pattern side')
    parser.add_argument('--seed', type=int, default=0, help='(core only) random seed')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args.out.mkdir(parents=True, exist_ok=True)
    if args.core_only:
        figures = run_core(
            args.out,
            num_patterns=args.num_patterns,
            pattern_size_px=args.pattern_size,
            seed=args.seed,
        )
        print('| quantity | value |\n| --- | --- |')
        for key, value in figures.items():
            print(f'| {key} | {value:.4g} |')
    else:
        rows = run_ptychodus_demo(args.out, epochs=args.epochs, backends=args.backends.split(','))
        table = quality_table(rows)
        print(table)
        print('\n' + QUALITY_NOTE)
        (args.out / 'quality.md').write_text(
            f'# Demo quality\n\n{table}\n\n{QUALITY_NOTE}\n', encoding='utf-8'
        )
    print(f'\nwritten to {args.out.resolve()}')
    return 0


def _cell(value: object) -> str:
    if value is None:
        return ''
    return f'{value:.3g}' if isinstance(value, float) else str(value)


if __name__ == '__main__':
    sys.exit(main())

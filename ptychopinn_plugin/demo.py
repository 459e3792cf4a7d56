"""The README's demo: simulate a scan and run the core pipeline end to end.

``python -m ptychopinn_plugin.demo --out demo-output`` simulates a ptychographic scan (our own
simulator),
writes it as a contract NPZ, reads it back, groups the scan points, stitches the ground-truth
patches back onto the object grid and scores the result. It prints a small table and writes it,
with a figure when matplotlib is installed, to the output folder. Training and reconstruction
through Ptychodus join this demo as the plugin lands.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from .config import default_stitch_crop_px
from .core import metrics, simulate
from .core.contract import read_training_data, write_training_data
from .core.grouping import group_scan_points
from .core.stitching import scanned_region_mask, stitch_patches

logger = logging.getLogger('ptychopinn_plugin.demo')


def run(out: Path, *, num_patterns: int, pattern_size_px: int, seed: int) -> dict[str, float]:
    """Run the core pipeline once and return its measured figures."""
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


def _figure(path: Path, truth: np.ndarray, stitched: np.ndarray, mask: np.ndarray) -> None:
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        logger.info('matplotlib is not installed; skipping %s', path)
        return
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    for row, (name, image) in enumerate((('truth', truth), ('stitched', stitched * mask))):
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
    parser.add_argument('--num-patterns', type=int, default=1024, help='scan points to simulate')
    parser.add_argument('--pattern-size', type=int, default=64, help='pattern side N in pixels')
    parser.add_argument('--seed', type=int, default=0, help='random seed')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    figures = run(
        args.out, num_patterns=args.num_patterns, pattern_size_px=args.pattern_size, seed=args.seed
    )
    print('| quantity | value |\n| --- | --- |')
    for key, value in figures.items():
        print(f'| {key} | {value:.4g} |')
    print(f'\nwritten to {args.out.resolve()}')
    return 0


if __name__ == '__main__':
    sys.exit(main())

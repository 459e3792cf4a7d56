"""Speed and memory of the core's per-scan work: grouping, patch extraction and stitching.

Prints a Markdown table of wall-clock seconds and peak memory allocated during each step
(``tracemalloc``, which sees NumPy's buffers; inputs made before the step are not counted, outputs
are). Positions form a jittered raster with a step of about half the crop over a square object.
Quality of the same operations is checked in ``tests/core/test_stitching.py``.

    python benchmarks/bench_core.py --num-positions 100000 --pattern-size 64 --crop 20

It imports the installed package; to measure the working tree, prefix ``PYTHONPATH=.``.
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np

from ptychopinn_plugin.core.grouping import group_scan_points
from ptychopinn_plugin.core.stitching import extract_patches, stitch_patches

MIB = 1024**2


def measure(step: Callable[[], Any]) -> tuple[Any, float, float]:
    """Run ``step`` once; return its result, seconds and peak MiB allocated meanwhile."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    start = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return result, seconds, peak / MIB


def scan(num_positions: int, object_side_px: int, margin_px: int, seed: int) -> np.ndarray:
    """Jittered square raster of ``num_positions`` (x, y) points inside the margin, float64 px."""
    side = int(np.ceil(np.sqrt(num_positions)))
    step_px = (object_side_px - 2 * margin_px) / side
    grid = margin_px + step_px * np.arange(side)
    x_px, y_px = np.meshgrid(grid, grid)
    positions = np.stack([x_px.ravel(), y_px.ravel()], axis=1)[:num_positions]
    return positions + np.random.default_rng(seed).uniform(-0.5, 0.5, positions.shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--num-positions', type=int, default=100_000)
    parser.add_argument('--pattern-size', type=int, default=64, help='patch side N in pixels')
    parser.add_argument('--crop', type=int, default=20, help='stitching crop side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()

    size, crop, count = args.pattern_size, args.crop, args.num_positions
    side_px = int(np.ceil(np.sqrt(count) * crop / 2)) + 2 * size
    positions = scan(count, side_px, size, args.seed)
    rng = np.random.default_rng(args.seed)
    object_ = (rng.random((side_px, side_px)) * np.exp(1j * rng.random((side_px, side_px)))).astype(
        np.complex64
    )

    rows = []
    for gridsize in (1, 2):
        _, seconds, peak = measure(lambda g=gridsize: group_scan_points(positions, g))
        rows.append((f'group_scan_points, gridsize {gridsize}', seconds, peak))
    patches, seconds, peak = measure(lambda: extract_patches(object_, positions, size))
    rows.append((f'extract_patches (output {patches.nbytes / MIB:.0f} MiB)', seconds, peak))
    _, seconds, peak = measure(lambda: stitch_patches(patches, positions, object_.shape, crop))
    rows.append(('stitch_patches', seconds, peak))

    print(
        f'{count} positions, N = {size}, crop = {crop}, object {side_px} x {side_px}, '
        f'{os.cpu_count()} CPUs, numpy {np.__version__}\n'
    )
    print('| step | seconds | peak MiB |')
    print('|---|---:|---:|')
    for name, seconds, peak in rows:
        print(f'| {name} | {seconds:.2f} | {peak:.0f} |')
    max_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f'\nprocess max RSS: {max_rss_mib:.0f} MiB')


if __name__ == '__main__':
    main()

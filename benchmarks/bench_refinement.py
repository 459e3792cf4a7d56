"""Time per iteration and peak memory of the built-in refinement, NumPy against PyTorch.

Each (size, device) pair runs in a fresh child process (so one run's memory never counts towards
another's) that builds the synthetic raster scan of ``bench_scale.py`` (random Poisson amplitudes,
N = 64, 87.5 % linear overlap), starts the refinement (``solver/overlap.py``) from a flat object
on the chosen device, and times its iterations. A sampler thread reads ``/proc/self/status``.
Prints a Markdown table; record it with the command and the machine in ``docs/results.md``::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_refinement.py \\
        [--sizes 1024 10000 100000] [--devices numpy cpu cuda] [--iterations 5] [--memmap]

Columns: the patterns' own size (float32 amplitudes), the set-up (the probe power sums and the
intensity fit), the first iteration (which fills the per-chunk caches of small scans), the mean
of the following iterations, peak resident memory (``VmHWM``, file pages of a memory-mapped scan
included) and peak anonymous memory (what the process allocated itself), and, on CUDA, PyTorch's
peak device memory. Devices: ``numpy`` (NumPy on the CPU), ``cpu`` and ``cuda`` (PyTorch).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import PATTERN_SIZE_PX, MemorySampler, run_child, synthetic_scan


def child(args: argparse.Namespace) -> dict[str, float | str]:
    """One size on one device: build the scan and the refinement, time the iterations."""
    from ptychopinn_plugin.solver.overlap import OverlapRefinement

    device = None if args.device == 'numpy' else args.device
    sampler = MemorySampler()
    sampler.start()
    with tempfile.TemporaryDirectory(dir=args.memmap_dir) as directory:
        data, object_shape = synthetic_scan(args.child, Path(directory) if args.memmap else None)
        if device is not None and device.startswith('cuda'):
            import torch

            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        refinement = OverlapRefinement(
            np.ones(object_shape, np.complex64),
            data.positions_px,
            data.diffraction_amplitude,
            data.probe,
            device=device,
        )
        built = time.perf_counter()
        times = []
        for _ in range(args.iterations):
            begin = time.perf_counter()
            refinement.step()
            _synchronize(device)
            times.append(time.perf_counter() - begin)
        result = refinement.object_
        assert np.all(np.isfinite(result))
        memory = sampler.stop()
        device_mb = 0.0
        if device is not None and device.startswith('cuda'):
            import torch

            device_mb = torch.cuda.max_memory_allocated() / 2**20
    return {
        'patterns': args.child,
        'device': str(refinement.arrays),
        'data_mb': args.child * PATTERN_SIZE_PX**2 * 4 / 2**20,
        'object_px': object_shape[0] * object_shape[1],
        'setup_s': built - start,
        'first_s': times[0],
        'iteration_s': float(np.mean(times[1:])) if len(times) > 1 else times[0],
        'device_mb': device_mb,
        **memory,
    }


def _synchronize(device: str | None) -> None:
    if device is not None and device.startswith('cuda'):
        import torch

        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=int, nargs='+', default=[1024, 10_000, 100_000])
    parser.add_argument('--devices', nargs='+', default=['numpy', 'cpu'])
    parser.add_argument('--iterations', type=int, default=5)
    parser.add_argument('--memmap', action='store_true', help='patterns in a file-backed array')
    parser.add_argument('--memmap-dir', default=None, help='folder of the memory-mapped file')
    parser.add_argument('--child', type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument('--device', default='numpy', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args)))
        return
    print(
        f'refinement from a flat object, N = {PATTERN_SIZE_PX}, {args.iterations} iterations, '
        f'patterns {"memory-mapped" if args.memmap else "in memory"}; '
        f'{platform.processor() or "cpu"}, {os.cpu_count()} cores, Python '
        f'{platform.python_version()}'
    )
    print()
    print(
        '| patterns | device | patterns MB | set-up s | first iteration s | iteration s | '
        'peak RSS MB | peak anonymous MB | peak device MB |\n'
        '|---:|:---|---:|---:|---:|---:|---:|---:|---:|'
    )
    for size in args.sizes:
        for device in args.devices:
            row, error = run_child(__file__, '--child', str(size), '--device', device)
            if row is None:
                print(f'| {size} | {device}: failed: {error} ||||||||', flush=True)
                continue
            print(
                f'| {row["patterns"]} | {row["device"]} | {row["data_mb"]:.0f} | '
                f'{row["setup_s"]:.2f} | {row["first_s"]:.3f} | {row["iteration_s"]:.3f} | '
                f'{row["peak_rss_mb"]:.0f} | {row["peak_anon_mb"]:.0f} | '
                f'{row["device_mb"]:.0f} |',
                flush=True,
            )


if __name__ == '__main__':
    main()

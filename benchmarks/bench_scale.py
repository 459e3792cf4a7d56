"""Peak memory and time of reconstructing very long scans (10k to 100k patterns at N = 64).

Each size runs in a fresh child process (so one size's memory never counts towards another) that
builds an untrained model (the network's weights do not change its cost), a synthetic scan of
random Poisson amplitudes on a raster, and streams the whole scan through ``workflow.reconstruct``
exactly as the Ptychodus plugin does. A sampler thread reads ``/proc/self/status`` every 20 ms.
Prints a Markdown table; record it with the command and the machine in ``docs/robustness.md``::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_scale.py [--backend pytorch] \\
        [--sizes 10000 30000 100000] [--memmap]

Columns: the patterns' own size (float32 amplitudes), peak resident memory (``VmHWM``, which
includes file pages of a memory-mapped scan), peak anonymous memory (what the process allocated
itself; sampled), time to reconstruct, split into the network with stitching and the built-in
refinement (with the data consistency), and throughput. ``--memmap`` keeps the patterns in a
file-backed array, as Ptychodus does for large scans (``load_diffraction_data(mmap_file=...)``).
``--refine-iterations`` sets the refinement's iterations (default: the plugin's); the peak memory
is reached in the first iteration.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

PATTERN_SIZE_PX = 64
STEP_PX = 8.0
"""Raster step: 87.5 % linear overlap at N = 64 (dense, as for PtychoPINN scans)."""
CHUNK_PATTERNS = 4096


class MemorySampler(threading.Thread):
    """Largest ``VmRSS`` and ``RssAnon`` seen while running (``/proc/self/status``, Linux)."""

    def __init__(self, interval_s: float = 0.02) -> None:
        super().__init__(daemon=True)
        self.interval_s = interval_s
        self.peak_kb = {'VmRSS': 0, 'RssAnon': 0}
        self._stop_event = threading.Event()

    def read(self) -> dict[str, int]:
        values = {}
        with open('/proc/self/status') as stream:
            for line in stream:
                key, _, rest = line.partition(':')
                if key in ('VmRSS', 'RssAnon', 'VmHWM'):
                    values[key] = int(rest.split()[0])
        return values

    def run(self) -> None:
        while not self._stop_event.is_set():
            for key, value in self.read().items():
                if key in self.peak_kb:
                    self.peak_kb[key] = max(self.peak_kb[key], value)
            time.sleep(self.interval_s)

    def stop(self) -> dict[str, float]:
        self._stop_event.set()
        self.join()
        final = self.read()
        return {
            'peak_rss_mb': final['VmHWM'] / 1024,
            'peak_anon_mb': self.peak_kb['RssAnon'] / 1024,
        }


def synthetic_scan(num_patterns: int, memmap_dir: Path | None):
    """Random Poisson amplitudes on a raster; the patterns in memory or in a memory-mapped file."""
    from ptychopinn_plugin.core import simulate
    from ptychopinn_plugin.core.contract import DiffractionQuantity, ScanMetadata, TrainingData

    n_px = PATTERN_SIZE_PX
    columns = math.ceil(math.sqrt(num_patterns))
    index = np.arange(num_patterns)
    positions = np.stack(
        [(index % columns) * STEP_PX + n_px, (index // columns) * STEP_PX + n_px], axis=1
    ).astype(np.float64)
    object_shape = (
        int(positions[:, 1].max()) + n_px + 2,
        int(positions[:, 0].max()) + n_px + 2,
    )
    shape = (num_patterns, n_px, n_px)
    if memmap_dir is None:
        amplitude = np.empty(shape, np.float32)
    else:
        amplitude = np.lib.format.open_memmap(
            memmap_dir / 'amplitude.npy', mode='w+', dtype=np.float32, shape=shape
        )
    rng = np.random.default_rng(0)
    for start in range(0, num_patterns, CHUNK_PATTERNS):
        count = min(CHUNK_PATTERNS, num_patterns - start)
        amplitude[start : start + count] = np.sqrt(rng.poisson(3.0, (count, n_px, n_px)))
    if memmap_dir is not None:
        amplitude.flush()
        amplitude = np.load(memmap_dir / 'amplitude.npy', mmap_mode='r')
    data = TrainingData(
        diffraction_amplitude=amplitude,
        positions_px=positions,
        probe=simulate.disk_probe(n_px, n_px / 4),
        metadata=ScanMetadata(source_quantity=DiffractionQuantity.COUNTS, source='bench_scale'),
    )
    return data, object_shape


def run_child(script: str, *extra: str) -> tuple[dict | None, str]:
    """Run ``script`` again with this command's arguments and ``extra`` in a fresh process (so
    one run's memory never counts towards another's): its JSON row (the last line of its
    output), or None and the last line of its error."""
    command = [sys.executable, script, *sys.argv[1:], *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, ' '.join(done.stderr.strip().splitlines()[-1:])
    return json.loads(done.stdout.strip().splitlines()[-1]), ''


def child(args: argparse.Namespace) -> dict[str, float]:
    """One size: build the scan and the model, reconstruct, report memory and time."""
    from ptychopinn_plugin.config import (
        ExecutionConfig,
        InferenceConfig,
        ModelConfig,
        PluginConfig,
    )
    from ptychopinn_plugin.core import physics, simulate
    from ptychopinn_plugin.core.archive import Archive
    from ptychopinn_plugin.core.weights import initial_weights
    from ptychopinn_plugin.workflow import reconstruct

    sampler = MemorySampler()
    sampler.start()
    model = ModelConfig(pattern_size_px=PATTERN_SIZE_PX, n_filters_scale=args.n_filters_scale)
    probe = physics.normalize_probe(
        simulate.disk_probe(PATTERN_SIZE_PX, PATTERN_SIZE_PX / 4), model.probe_scale
    )
    archive = Archive(
        config=PluginConfig(model=model),
        weights=initial_weights(model, probe, math.log(100.0), 0),
    )
    with tempfile.TemporaryDirectory(dir=args.memmap_dir) as directory:
        data, object_shape = synthetic_scan(args.child, Path(directory) if args.memmap else None)
        start = time.perf_counter()
        stitched_at = None
        final = None
        for step in reconstruct(
            archive,
            data,
            execution=ExecutionConfig(backend=args.backend, device=args.device),
            inference=InferenceConfig(
                batch_size=args.batch_size,
                phase_alignment=args.phase_alignment,
                phase_ramp_correction=not args.no_phase_ramp,
                **(
                    {}
                    if args.refine_iterations is None
                    else {'refine_iterations': args.refine_iterations}
                ),
            ),
            object_shape=object_shape,
        ):
            if (
                stitched_at is None
                and step.num_done == step.num_groups
                and step.object_ is not None
            ):
                stitched_at = time.perf_counter()  # the network's object, before the refinement
            final = step
        seconds = time.perf_counter() - start
        assert final is not None
        assert final.finished
        assert final.object_ is not None
        memory = sampler.stop()
    return {
        'patterns': args.child,
        'data_mb': args.child * PATTERN_SIZE_PX**2 * 4 / 2**20,
        'object_px': object_shape[0] * object_shape[1],
        'seconds': seconds,
        'network_seconds': (stitched_at or start) - start,
        'refine_iterations': final.num_refine_iterations,
        **memory,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--backend', choices=['pytorch', 'tensorflow'], default='pytorch')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--sizes', type=int, nargs='+', default=[10_000, 30_000, 100_000])
    parser.add_argument('--batch-size', type=int, default=256)
    parser.add_argument('--n-filters-scale', type=int, default=2)
    parser.add_argument(
        '--phase-alignment',
        choices=['none', 'greedy', 'global'],
        default=None,
        help='stitching phase alignment (default: the InferenceConfig default)',
    )
    parser.add_argument(
        '--no-phase-ramp', action='store_true', help='skip the phase-ramp correction of stitching'
    )
    parser.add_argument(
        '--refine-iterations',
        type=int,
        default=None,
        help='refinement iterations (default: the InferenceConfig default)',
    )
    parser.add_argument('--memmap', action='store_true', help='patterns in a file-backed array')
    parser.add_argument('--memmap-dir', default=None, help='folder of the memory-mapped file')
    parser.add_argument('--child', type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase_alignment is None:
        from ptychopinn_plugin.config import InferenceConfig

        args.phase_alignment = InferenceConfig().phase_alignment.value
    if args.child is not None:
        print(json.dumps(child(args)))
        return

    print(
        f'backend {args.backend}, device {args.device}, N = {PATTERN_SIZE_PX}, n_filters_scale '
        f'{args.n_filters_scale}, inference batch {args.batch_size}, phase alignment '
        f'{args.phase_alignment}, phase ramp {"off" if args.no_phase_ramp else "on"}, patterns '
        f'{"memory-mapped" if args.memmap else "in memory"}; {platform.processor() or "cpu"}, '
        f'{os.cpu_count()} cores, Python {platform.python_version()}'
    )
    print()
    print(
        '| patterns | patterns MB | peak RSS MB | peak anonymous MB | seconds | network + '
        'stitching s | refinement s (iterations) | patterns/s |\n'
        '|---:|---:|---:|---:|---:|---:|---:|---:|'
    )
    for size in args.sizes:
        row, error = run_child(__file__, '--child', str(size))
        if row is None:
            print(f'| {size} | failed: {error} |||||||')
            continue
        print(
            f'| {row["patterns"]} | {row["data_mb"]:.0f} | {row["peak_rss_mb"]:.0f} | '
            f'{row["peak_anon_mb"]:.0f} | {row["seconds"]:.0f} | {row["network_seconds"]:.0f} | '
            f'{row["seconds"] - row["network_seconds"]:.0f} ({row["refine_iterations"]}) | '
            f'{row["patterns"] / row["seconds"]:.0f} |',
            flush=True,
        )


if __name__ == '__main__':
    main()

"""Training and inference speed of both engines, side by side, on this machine.

Prints a Markdown table: seconds per training epoch and full-inference patterns/s (grouping,
network, stitching) for N = 64, gridsize 1 and 2, for each installed backend, and the same for the
bare network call. Run from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_engines.py [--patterns 1024] [--epochs 2]

Figures depend on the machine; record them with the command and the machine in docs/results.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from ptychopinn_plugin.config import (
    Backend,
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    PluginConfig,
    Precision,
    TrainingConfig,
)
from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.engines import backend_is_installed
from ptychopinn_plugin.workflow import TrainingRun, reconstruct


def bench(backend: Backend, gridsize: int, args) -> dict[str, float]:
    """Train once (fp32), then time full inference at each precision."""
    scan = simulate.make_scan('camera', num_patterns=args.patterns, pattern_size_px=64, seed=0)
    config = PluginConfig(
        model=ModelConfig(gridsize=gridsize, num_neighbors=4),
        training=TrainingConfig(num_epochs=args.epochs, batch_size=16, validation_fraction=0.05),
        execution=ExecutionConfig(backend=backend, device=args.device),
    )
    run = TrainingRun([scan.data], config)
    reports = list(run.epochs())
    archive = run.archive()
    run.release()
    result = {'epoch_s': float(np.median([r.seconds for r in reports]))}
    for precision in (Precision.FP32, Precision.BF16_MIXED):
        execution = config.execution.model_copy(update={'precision': precision})
        for _ in range(2):  # the first pass warms up graphs and allocators
            start = time.perf_counter()
            for _step in reconstruct(
                archive,
                scan.data,
                execution=execution,
                inference=InferenceConfig(batch_size=args.batch),
                object_shape=scan.object_.shape,
            ):
                pass
            elapsed = time.perf_counter() - start
        result[precision.value] = scan.data.num_patterns / elapsed
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--patterns', type=int, default=1024)
    parser.add_argument('--epochs', type=int, default=2)
    parser.add_argument('--batch', type=int, default=256, help='inference batch (groups)')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--backends', default='pytorch,tensorflow')
    args = parser.parse_args()
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs')
    print('| backend | gridsize | precision | s / epoch | inference patterns/s |')
    print('| --- | --- | --- | --- | --- |')
    for name in args.backends.split(','):
        backend = Backend(name)
        if not backend_is_installed(backend):
            print(f'| {name} | - | - | not installed | - |')
            continue
        for gridsize in (1, 2):
            figures = bench(backend, gridsize, args)
            for precision in (Precision.FP32, Precision.BF16_MIXED):
                epoch = f'{figures["epoch_s"]:.1f}' if precision is Precision.FP32 else '-'
                print(
                    f'| {name} | {gridsize} | {precision.value} | {epoch} | '
                    f'{figures[precision.value]:.0f} |',
                    flush=True,
                )


if __name__ == '__main__':
    main()

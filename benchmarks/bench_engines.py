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


def bench(backend: Backend, gridsize: int, precision: Precision, args) -> dict[str, float]:
    scan = simulate.make_scan('camera', num_patterns=args.patterns, pattern_size_px=64, seed=0)
    config = PluginConfig(
        model=ModelConfig(gridsize=gridsize, num_neighbors=4),
        training=TrainingConfig(num_epochs=args.epochs, batch_size=16, validation_fraction=0.05),
        execution=ExecutionConfig(backend=backend, device=args.device, precision=precision),
    )
    result: dict[str, float] = {}
    if precision is Precision.FP32:
        run = TrainingRun([scan.data], config)
        reports = list(run.epochs())
        result['epoch_s'] = float(np.median([r.seconds for r in reports]))
        archive = run.archive()
        run.release()
    else:
        archive = TrainingRun([scan.data], config.model_copy(update={})).archive()
    inference = InferenceConfig(batch_size=args.batch)
    execution = config.execution
    for _ in range(2):  # the first pass warms up graphs and allocators
        start = time.perf_counter()
        for _step in reconstruct(
            archive,
            scan.data,
            execution=execution,
            inference=inference,
            object_shape=scan.object_.shape,
        ):
            pass
        elapsed = time.perf_counter() - start
    result['inference_patterns_per_s'] = scan.data.num_patterns / elapsed
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
            for precision in (Precision.FP32, Precision.BF16_MIXED):
                figures = bench(backend, gridsize, precision, args)
                epoch = figures.get('epoch_s')
                print(
                    f'| {name} | {gridsize} | {precision.value} | '
                    f'{"-" if epoch is None else f"{epoch:.1f}"} | '
                    f'{figures["inference_patterns_per_s"]:.0f} |',
                    flush=True,
                )


if __name__ == '__main__':
    main()

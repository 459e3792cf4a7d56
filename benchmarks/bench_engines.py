"""Training and inference speed of both engines, side by side, on this machine.

Prints a Markdown table: seconds per training epoch, then, for a warm engine (built once, as a
Ptychodus session or the ``ptychopinn`` command keeps it for a scan), full-inference patterns/s
(grouping, network, phase synchronisation, ramp fit, stitching) over a scan of ``--infer-patterns``
and the network alone (``engine.predict`` on all groups), for N = 64, gridsize 1 and 2, each
installed backend and both precisions. Run from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_engines.py [--patterns 512] [--epochs 1]

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
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.dataset import group_inputs
from ptychopinn_plugin.core.grouping import group_scan_points
from ptychopinn_plugin.engines import backend_is_installed
from ptychopinn_plugin.inference import reconstruct_object
from ptychopinn_plugin.workflow import TrainingRun, build_engine


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
    test = simulate.make_scan(
        'camera', num_patterns=args.infer_patterns, pattern_size_px=64, seed=1
    )
    data, model = test.data, archive.config.model
    groups = group_scan_points(data.positions_px, model.gridsize, num_neighbors=4, seed=0)
    scale = physics.dataset_normalization(data.diffraction_amplitude)
    inputs = group_inputs(data, groups, scale, np.arange(groups.num_groups))
    offsets = groups.relative_offsets_px.astype(np.float32)
    for precision in (Precision.FP32, Precision.BF16_MIXED):
        engine = build_engine(archive, config.execution.model_copy(update={'precision': precision}))
        engine.predict(inputs[: args.batch], offsets[: args.batch])  # warm-up
        start = time.perf_counter()
        engine.predict(inputs, offsets)
        result[f'{precision.value} network'] = data.num_patterns / (time.perf_counter() - start)
        start = time.perf_counter()
        for _step in reconstruct_object(
            engine,
            data,
            model,
            InferenceConfig(batch_size=args.batch),
            object_shape=test.object_.shape,
        ):
            pass
        result[precision.value] = data.num_patterns / (time.perf_counter() - start)
        engine.release()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--patterns', type=int, default=512, help='training patterns')
    parser.add_argument('--epochs', type=int, default=1)
    parser.add_argument('--infer-patterns', type=int, default=4096, help='inference scan size')
    parser.add_argument('--batch', type=int, default=256, help='inference batch (groups)')
    parser.add_argument('--device', default='auto')
    parser.add_argument('--backends', default='pytorch,tensorflow')
    args = parser.parse_args()
    print(f'machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs')
    print(
        '| backend | gridsize | precision | s / epoch | full inference patterns/s | network only |'
    )
    print('| --- | --- | --- | ---: | ---: | ---: |')
    for name in args.backends.split(','):
        backend = Backend(name)
        if not backend_is_installed(backend):
            print(f'| {name} | - | - | not installed | - | - |')
            continue
        for gridsize in (1, 2):
            figures = bench(backend, gridsize, args)
            for precision in (Precision.FP32, Precision.BF16_MIXED):
                epoch = f'{figures["epoch_s"]:.1f}' if precision is Precision.FP32 else '-'
                print(
                    f'| {name} | {gridsize} | {precision.value} | {epoch} | '
                    f'{figures[precision.value]:.0f} | '
                    f'{figures[precision.value + " network"]:.0f} |',
                    flush=True,
                )


if __name__ == '__main__':
    main()

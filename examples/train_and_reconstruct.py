"""Train a PtychoPINN model and reconstruct a scan from Python, without Ptychodus.

    python examples/train_and_reconstruct.py --out example-output     # train, then reconstruct
    python examples/train_and_reconstruct.py --model models/pinn-n64-g1-pytorch.zip  # no training
    python examples/train_and_reconstruct.py --quick                   # tiny, a few seconds
    python examples/train_and_reconstruct.py --model M --refine-iterations 0  # the network alone

Steps: simulate a training scan and a held-out scan (``core.simulate.make_scan``), train with
``workflow.TrainingRun`` (one report per epoch), save the archive (``core.archive``), reconstruct
the held-out scan with ``workflow.reconstruct`` and score it against the truth
(``core.metrics.compare_objects``) over the scanned region. The reconstruction is the plugin's
default (``InferenceConfig``: the built-in refinement after the network) unless
``--refine-iterations`` says otherwise; the first printed line says what made it
(``--refine-iterations 0``: the network alone).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ptychopinn_plugin.config import (
    ExecutionConfig,
    InferenceConfig,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ptychopinn_plugin.core import metrics, simulate
from ptychopinn_plugin.core.archive import load_archive, save_archive
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.evidence.report import made_by
from ptychopinn_plugin.workflow import TrainingRun, reconstruct


def train(data, *, backend: str, epochs: int, gridsize: int, out: Path) -> Path:
    """Train on one scan and save the model as ``out / 'model.zip'``."""
    config = PluginConfig(
        model=ModelConfig(
            pattern_size_px=data.pattern_size_px, gridsize=gridsize, n_filters_scale=1
        ),
        training=TrainingConfig(num_epochs=epochs, batch_size=16),
        execution=ExecutionConfig(backend=backend, device='auto'),
    )
    run = TrainingRun([data], config)
    try:
        for report in run.epochs():
            print(f'epoch {report.epoch}/{report.num_epochs}: loss {report.training_loss:.5g}')
        archive = run.archive()
    finally:
        run.release()
    return save_archive(out / 'model.zip', archive, overwrite=True)


def reconstruct_and_score(
    model_path: Path, scan, *, backend: str, inference: InferenceConfig
) -> tuple[np.ndarray, dict]:
    """Reconstruct ``scan`` with the model; returns the object and its scores against the truth."""
    archive = load_archive(model_path)
    data = scan.data
    final = None
    for step in reconstruct(
        archive,
        data,
        execution=ExecutionConfig(backend=backend, device='auto'),
        inference=inference,
        object_shape=scan.object_.shape,
        fill=np.ones_like(scan.object_),
    ):
        final = step  # partial objects arrive at a few checkpoints; the last one is complete
    n_px = archive.config.model.pattern_size_px
    mask = scanned_region_mask(
        data.positions_px, scan.object_.shape, n_px, default_stitch_crop_px(n_px)
    )
    return final.object_, metrics.compare_objects(final.object_, scan.object_, mask)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('example-output'), help='output folder')
    parser.add_argument('--backend', default='pytorch', choices=['pytorch', 'tensorflow'])
    parser.add_argument('--epochs', type=int, default=10, help='training epochs')
    parser.add_argument('--num-patterns', type=int, default=1024, help='training scan points')
    parser.add_argument('--gridsize', type=int, default=1, choices=[1, 2])
    parser.add_argument('--model', type=Path, default=None, help='use this archive; skip training')
    parser.add_argument('--quick', action='store_true', help='tiny sizes: 1 epoch, 64 points')
    parser.add_argument(
        '--refine-iterations',
        type=int,
        default=InferenceConfig().refine_iterations,
        help='iterations of the built-in refinement after the network (0: the network alone; '
        'default: the plugin default)',
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.num_patterns = 1, 64
    args.out.mkdir(parents=True, exist_ok=True)

    held_out = simulate.make_scan('smooth', num_patterns=144 if not args.quick else 64, seed=1)
    model_path = args.model
    if model_path is None:
        training_scan = simulate.make_scan('smooth', num_patterns=args.num_patterns, seed=0)
        model_path = train(
            training_scan.data,
            backend=args.backend,
            epochs=args.epochs,
            gridsize=args.gridsize,
            out=args.out,
        )
    inference = InferenceConfig(refine_iterations=args.refine_iterations)
    print('made by:', made_by(inference.refine_iterations, inference.refine_start))
    object_, scores = reconstruct_and_score(
        model_path, held_out, backend=args.backend, inference=inference
    )
    np.save(args.out / 'object.npy', object_)
    (args.out / 'scores.json').write_text(json.dumps(scores, indent=2))
    for name, value in scores.items():
        print(f'{name}: {value:.3f}')
    return scores


if __name__ == '__main__':
    main()

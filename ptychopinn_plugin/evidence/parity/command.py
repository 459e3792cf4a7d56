"""TensorFlow vs PyTorch parity: same weights, the Ptychodus batch cycle, quality and speed.

``python -m ptychopinn_plugin.evidence.parity --out DIR`` writes ``DIR/parity.md`` (a status table
with every row PASS, FAIL with the measured reason, or NOT RUN), ``DIR/parity.json`` (every number)
and PNG figures. Four parts:

1. Same canonical weights in both engines (``core/weights.py``), same simulated inputs: patches,
   predicted amplitudes, and each engine's forward model against the NumPy oracle
   (``core/physics.py``), for N = 64 and 128, gridsize 1 and 2, PINN and Supervised.
2. The full train -> save -> load -> infer cycle through the real ``ptychodus -b train`` and
   ``ptychodus -b reconstruct`` (``ptychodus_io/batch.py``) for each backend, and
   every archive reconstructed by both backends (cross-loading): the two products of one archive
   must agree.
3. Both backends trained from the same data and seed, several seeds: PSNR / SSIM of each on a
   held-out object and their difference, with the spread.
4. Seconds per training epoch and inference patterns/s side by side (from the runs of part 3).

Defaults finish in well under 30 minutes on two CPU cores; ``--cycle-cases`` and
``--quality-cases`` (e.g. ``64:2:pinn,128:1:supervised``), ``--seeds`` and ``--epochs`` scale up.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

from ...config import Mode
from ..report import command_line, prepare_output
from .cases import ALL_CASES, Case
from .cycle import batch_cycle
from .quality import QUALITY_SEEDS, quality_parity
from .report import quality_figure, weights_figure, write_report
from .weights import SELF_CHECK, same_weights_parity

logger = logging.getLogger('ptychopinn_plugin.evidence.parity')

__all__ = ['main']


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.parity', description=__doc__.splitlines()[0]
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument(
        '--weights-cases',
        default=','.join(f'{c.pattern_size_px}:{c.gridsize}:{c.mode.value}' for c in ALL_CASES),
        help='same-weights cases N:GRIDSIZE:MODE (default: N 64, 128, gridsize 1, 2, both modes)',
    )
    parser.add_argument(
        '--cycle-cases',
        default='64:1:pinn,64:2:pinn,64:1:supervised',
        help="ptychodus -b cycle cases ('' to skip; e.g. add 128:1:pinn)",
    )
    parser.add_argument('--cycle-epochs', type=int, default=4, help='epochs of each batch training')
    parser.add_argument(
        '--cycle-side', type=int, default=12, help='scan points per side of the cycle scans'
    )
    parser.add_argument(
        '--quality-cases',
        default='64:1:pinn,64:1:supervised',
        help="in-process quality cases ('' to skip)",
    )
    parser.add_argument(
        '--seeds',
        default=','.join(str(seed) for seed in QUALITY_SEEDS),
        help='seeds of the quality comparison',
    )
    parser.add_argument('--epochs', type=int, default=8, help='epochs of each quality training')
    parser.add_argument(
        '--train-patterns', type=int, default=256, help='patterns per training scan'
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    load_at_start = prepare_output(args.out)

    weights = []
    for text in filter(None, args.weights_cases.split(',')):
        weights.append(same_weights_parity(Case.parse(text)))
        logger.info('same weights, %s: %s', weights[-1].case.label, weights[-1].status.value)
    weights_figure(args.out / 'weights_parity.png', weights)
    self_check = same_weights_parity(
        Case(64, 1, Mode.PINN), num_groups=2, tensorflow_perturbation=SELF_CHECK
    )

    cycles = []
    for text in filter(None, args.cycle_cases.split(',')):
        case = Case.parse(text)
        folder = args.out / 'cycle' / text.replace(':', '-')
        cycles.append(batch_cycle(case, folder, epochs=args.cycle_epochs, side=args.cycle_side))
        figure = folder / 'cycle_objects.png'
        if figure.is_file():
            shutil.copyfile(figure, args.out / f'cycle_{text.replace(":", "_")}.png')

    qualities = []
    seeds = [int(s) for s in args.seeds.split(',') if s]
    for text in filter(None, args.quality_cases.split(',')):
        qualities.append(
            quality_parity(
                Case.parse(text),
                seeds=seeds,
                epochs=args.epochs,
                num_train_patterns=args.train_patterns,
                out=args.out,
            )
        )
    quality_figure(args.out / 'quality_ssim.png', qualities)

    command = command_line('ptychopinn_plugin.evidence.parity', argv)
    path = write_report(
        args.out,
        weights,
        self_check,
        cycles,
        qualities,
        command=command,
        seconds=time.perf_counter() - start,
        load_at_start=load_at_start,
    )
    print(path.read_text())
    return 0

"""The headless Ptychodus workflow: ``ptychodus -b train`` and ``ptychodus -b reconstruct``.

    python examples/ptychodus_batch.py --out batch-output
    python examples/ptychodus_batch.py --model models/pinn-n64-g1-pytorch.zip   # reconstruct only
    python examples/ptychodus_batch.py --quick

Each step is a shell command, printed before it runs, so the script doubles as a recipe:

1. ``ptychopinn simulate ... --workflow-dir DIR``: two simulated scans as standard Ptychodus
   workflow directories (``product.h5``, ``diffraction.h5``, ``settings.ini`` selecting
   ``ptychopinn_pinn`` and the backend); the NPZ beside each holds the truth.
2. ``ptychodus -b train -i TRAIN_DIR -o TRAIN_OUT``: writes ``TRAIN_OUT/model.zip``, the loss
   history and the loss curves.
3. copy ``model.zip`` into the second directory and run ``ptychodus -b reconstruct -i TEST_DIR
   -o TEST_OUT``: writes ``product.NNNNNN.h5`` at each partial result, the last one complete.
4. ``ptychopinn evaluate``: the last product against the truth.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
"""``ptychodus`` and ``ptychopinn`` are console scripts next to this Python."""


def shell(*command: object) -> str:
    """Run a command, echoing it; returns its stdout (raises on failure with its output)."""
    words = [str(word) for word in command]
    print('$', ' '.join(words), flush=True)
    done = subprocess.run(words, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f'{words[0]} failed with status {done.returncode}:\n{done.stderr[-3000:]}')
    return done.stdout


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('batch-output'), help='output folder')
    parser.add_argument('--backend', default='pytorch', choices=['pytorch', 'tensorflow'])
    parser.add_argument('--epochs', type=int, default=10, help='training epochs')
    parser.add_argument('--num-patterns', type=int, default=1024, help='scan points per scan')
    parser.add_argument('--model', type=Path, default=None, help='use this archive; skip training')
    parser.add_argument('--quick', action='store_true', help='tiny sizes: 1 epoch, 64 points')
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.num_patterns = 1, 64
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)  # the example owns its output folder
    ptychopinn, ptychodus = BIN / 'ptychopinn', BIN / 'ptychodus'
    settings = [
        '--backend', args.backend,
        '--setting', f'PtychoPINNTraining.NumEpochs={args.epochs}',
        '--setting', 'PtychoPINNModel.NumFiltersScale=1',
    ]  # fmt: skip
    for name, seed in (('train', 0), ('test', 1)):
        shell(
            ptychopinn, '-q', 'simulate', out / f'{name}.npz', '--object', 'smooth',
            '--num-patterns', args.num_patterns, '--seed', seed,
            '--workflow-dir', out / f'{name}-input', *settings,
        )  # fmt: skip
    model = args.model
    if model is None:
        shell(ptychodus, '-b', 'train', '-i', out / 'train-input', '-o', out / 'train-output')
        model = out / 'train-output' / 'model.zip'
    shutil.copyfile(model, out / 'test-input' / 'model.zip')
    shell(ptychodus, '-b', 'reconstruct', '-i', out / 'test-input', '-o', out / 'test-output')
    final = sorted((out / 'test-output').glob('product.*.h5'))[-1]
    scores = json.loads(shell(ptychopinn, 'evaluate', final, out / 'test.npz', '--json'))['scores']
    for name, value in scores.items():
        print(f'{name}: {value:.3f}')
    return scores


if __name__ == '__main__':
    main()

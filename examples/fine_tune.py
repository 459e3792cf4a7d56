"""Fine-tune a shipped pretrained model on new data with the ``ptychopinn`` command.

    python examples/fine_tune.py --out fine-tune-output
    python examples/fine_tune.py --model models/pinn-n64-g2-tensorflow.zip --backend tensorflow
    python examples/fine_tune.py --quick

The shipped models learnt smooth simulated objects. Here the new data are another kind of object
(random line segments): the script reconstructs a held-out scan of the new kind with the shipped
model as it is, fine-tunes the model on a training scan of the new kind (``ptychopinn train
--init-model``: the network weights start from the archive, the probe and intensity scale from the
new data), reconstructs again and prints both scores. The scores are of the network's own object
(``--refine-iterations 0``): with the defaults the output is the refinement's from a flat object
(``RefineStart = flat``), which fine-tuning the network does not change. Each step is the
``ptychopinn`` command run in this process (``ptychopinn_plugin.cli.main``); the equivalent shell
line is printed first.
"""

from __future__ import annotations

import argparse
import json
import shutil
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

from ptychopinn_plugin.cli import main as ptychopinn

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / 'models' / 'pinn-n64-g1-pytorch.zip'


def run(*words: object) -> str:
    """Run ``ptychopinn WORDS...``; returns what it printed on stdout."""
    words = [str(word) for word in words]
    print('$ ptychopinn', ' '.join(words), flush=True)
    captured = StringIO()
    with redirect_stdout(captured):
        status = ptychopinn(words)
    if status != 0:
        raise SystemExit(f'ptychopinn {words[0]} failed with status {status}')
    return captured.getvalue()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('fine-tune-output'), help='output folder')
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL, help='archive to fine-tune')
    parser.add_argument('--backend', default='pytorch', choices=['pytorch', 'tensorflow'])
    parser.add_argument('--epochs', type=int, default=5, help='fine-tuning epochs')
    parser.add_argument('--num-patterns', type=int, default=512, help='new training scan points')
    parser.add_argument('--quick', action='store_true', help='tiny sizes: 1 epoch, 64 points')
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.num_patterns = 1, 64
    out = args.out
    if out.exists():
        shutil.rmtree(out)  # the example owns its output folder
    new_train, new_test = out / 'lines-train.npz', out / 'lines-test.npz'
    run('-q', 'simulate', new_train, '--object', 'lines', '--num-patterns', args.num_patterns,
        '--seed', 10)  # fmt: skip
    test_patterns = 64 if args.quick else 144
    run('-q', 'simulate', new_test, '--object', 'lines', '--num-patterns', test_patterns,
        '--seed', 11)  # fmt: skip
    execution = ['--backend', args.backend]
    network_alone = ['--refine-iterations', 0]
    run('-q', 'reconstruct', args.model, new_test, '-o', out / 'before', *execution,
        *network_alone)  # fmt: skip
    run('-q', 'train', new_train, '--init-model', args.model, '-o', out / 'tuned.zip',
        '--epochs', args.epochs, '--history', out / 'tuned-history.csv', *execution)  # fmt: skip
    run('-q', 'reconstruct', out / 'tuned.zip', new_test, '-o', out / 'after', *execution,
        *network_alone)  # fmt: skip
    scores = {}
    for stage in ('before', 'after'):
        report = run('evaluate', out / stage / 'object.npz', new_test, '--json')
        scores[stage] = json.loads(report)['scores']
    print('| metric (network alone) | shipped model | fine-tuned |\n| --- | ---: | ---: |')
    for name in scores['before']:
        print(f'| {name} | {scores["before"][name]:.3f} | {scores["after"][name]:.3f} |')
    return scores


if __name__ == '__main__':
    main()

"""Measured data: an iterative reconstruction first, then a PINN trained on its product.

    python examples/measured_workflow.py --out star-workflow        # N = 128, pty-chi first
    python examples/measured_workflow.py --quick \
        --iterative-product examples/data/star-n64-ptychi-lsqml100.h5  # N = 64, no pty-chi

On the measured Siemens star (``shared/data/tike-siemens-star``), each step a shell command,
printed before it runs:

1. ``ptychodus -b reconstruct`` with pty-chi (LSQML, probe refinement on as Ptychodus ships it) on
   every scan point, from the environment that has pty-chi (``bash benchmarks/setup_bench_env.sh``
   makes ``.venv-bench``). It writes ``product.NNNNNN.h5``. ``--iterative-product FILE`` skips
   this step and uses a product written earlier (the repository keeps one at N = 64).
2. Ptychodus 1.7's batch *training* reads ``product.h5``: the latest ``product.NNNNNN.h5`` is
   copied to ``product.h5`` beside the diffraction patterns of the training half (the points left
   of the median x). Ptychodus pairs patterns and positions by scan index, so the whole product
   serves both halves; its refined probe is what the PINN trains with.
3. The test half (the points right of the median x) is what the session's next scan would be: its
   product holds only what such a scan comes with, the file's model probe of the optics and a
   flat object (the positions are the iterative product's). Nothing of the iterative
   reconstruction of these points reaches the model.
4. ``ptychodus -b train`` with PtychoPINN on the training half; then ``ptychodus -b reconstruct``
   with the model on the test half, with the defaults (the plugin chooses the probe the model was
   trained with when it explains the patterns better, ``[PtychoPINNInference]
   ReconstructionProbe = auto``) and once more with the network alone (``RefineIterations = 0``).
5. Both products are scored against the iterative reconstruction on the test half's scanned
   region; the plugin's probe choice and data-consistency lines are printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
"""``ptychodus`` next to this Python: the environment with the plugin."""
ITERATIVE_PTYCHODUS = REPO / '.venv-bench' / 'bin' / 'ptychodus'
"""Ptychodus with pty-chi (``benchmarks/setup_bench_env.sh``)."""
SHIPPED_PRODUCT = REPO / 'examples' / 'data' / 'star-n64-ptychi-lsqml100.h5'
STAR = REPO.parent / 'shared' / 'data' / 'tike-siemens-star'
"""The measured star beside the repository (read there, never copied in)."""


def shell(*command: object) -> str:
    """Run a command, echoing it; returns its combined output (raises on failure)."""
    words = [str(word) for word in command]
    print('$', ' '.join(words), flush=True)
    done = subprocess.run(words, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f'{words[0]} failed with status {done.returncode}:\n{done.stderr[-3000:]}')
    return done.stdout + done.stderr


def latest_product(directory: Path) -> Path:
    """The ``product.NNNNNN.h5`` with the largest number (Ptychodus batch output)."""
    from ptychopinn_plugin.ptychodus_io.layout import product_file

    found = product_file(directory)
    if found is None:
        raise SystemExit(f'{directory} holds no product.NNNNNN.h5')
    return found


def write_patterns(directory: Path, counts: np.ndarray, rows: np.ndarray) -> None:
    """``diffraction.h5`` holding the chosen scan points, under their own scan indexes."""
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import StandardFileLayout, save_diffraction_data

    from ptychopinn_plugin.ptychodus_io.products import DEFAULT_DETECTOR_PIXEL_SIZE_M

    directory.mkdir(parents=True, exist_ok=True)
    save_diffraction_data(
        directory / StandardFileLayout.DIFFRACTION,
        AssembledDiffractionData(
            indexes=rows,
            patterns=counts[rows],
            pixel_geometry=PixelGeometry(
                DEFAULT_DETECTOR_PIXEL_SIZE_M, DEFAULT_DETECTOR_PIXEL_SIZE_M
            ),
            bad_pixels=np.zeros(counts.shape[1:], dtype=bool),
        ),
    )


def main(argv: list[str] | None = None) -> dict:
    from ptychodus.api.io import load_product, save_product

    from ptychopinn_plugin.config import default_stitch_crop_px
    from ptychopinn_plugin.core import metrics
    from ptychopinn_plugin.core.stitching import scanned_region_mask
    from ptychopinn_plugin.evidence.baseline import ptychi_settings
    from ptychopinn_plugin.evidence.benchmark import load_siemens_star, write_measured_workflow
    from ptychopinn_plugin.ptychodus_io.products import product_with_object, product_with_probe
    from ptychopinn_plugin.ptychodus_io.workflow_dir import write_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', type=Path, default=Path('star-workflow'), help='output folder')
    parser.add_argument('--star', type=Path, default=STAR, help='the star data folder')
    parser.add_argument('--backend', default='pytorch', choices=['pytorch', 'tensorflow'])
    parser.add_argument('--size', type=int, default=128, choices=[64, 128], help='pattern size')
    parser.add_argument('--epochs', type=int, default=30, help='PtychoPINN training epochs')
    parser.add_argument('--iterations', type=int, default=100, help='pty-chi LSQML iterations')
    parser.add_argument('--iterative-ptychodus', type=Path, default=ITERATIVE_PTYCHODUS)
    parser.add_argument(
        '--iterative-product', type=Path, help='skip step 1: the product of an earlier run'
    )
    parser.add_argument(
        '--quick', action='store_true', help='N = 64, 2 epochs, NumFiltersScale 1: a minute'
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.epochs = 64, 2
    out = args.out.resolve()
    if out.exists():
        shutil.rmtree(out)  # the example owns its output folder
    scan = load_siemens_star(args.star, args.size)
    ptychodus = BIN / 'ptychodus'

    # 1. the iterative reconstruction of every scan point
    if args.iterative_product is None:
        if not args.iterative_ptychodus.is_file():
            raise SystemExit(
                f'{args.iterative_ptychodus} does not exist: create the environment with pty-chi '
                '(bash benchmarks/setup_bench_env.sh), or pass --iterative-product'
            )
        write_measured_workflow(
            out / 'iterative-input', scan, ptychi_settings('LSQML', args.iterations)
        )
        shell(
            args.iterative_ptychodus, '-b', 'reconstruct',
            '-i', out / 'iterative-input', '-o', out / 'iterative-output',
        )  # fmt: skip
        product = latest_product(out / 'iterative-output')
    else:
        product = args.iterative_product.resolve()
    reference = np.asarray(load_product(product).object_.get_layer(0))

    # 2. workflow directories of the two halves around the iterative product
    split = float(np.median(scan.positions_px[:, 0]))
    halves = {
        'train': np.flatnonzero(scan.positions_px[:, 0] < split),
        'test': np.flatnonzero(scan.positions_px[:, 0] >= split),
    }
    settings = {
        'Processing': {'Algorithm': 'ptychopinn_pinn'},
        'PtychoPINN': {'Backend': args.backend, 'Device': 'cpu'},
        'PtychoPINNTraining': {'NumEpochs': args.epochs},
    }
    if args.quick:
        settings['PtychoPINNModel'] = {'NumFiltersScale': 1}
    directory = out / 'train-input'
    write_patterns(directory, scan.counts, halves['train'])
    print(f'$ cp {product} {directory / "product.h5"}', flush=True)
    shutil.copyfile(product, directory / 'product.h5')
    write_settings(directory / 'settings.ini', settings)
    # the next scan: the optics' model probe and a flat object, as its own product would have
    iterative = load_product(product)
    next_scan = product_with_object(
        product_with_probe(iterative, scan.probe),
        np.ones_like(np.asarray(iterative.object_.get_layer(0))),
    )
    network_only = {**settings, 'PtychoPINNInference': {'RefineIterations': 0}}
    for name, given in (('test', settings), ('test-network', network_only)):
        directory = out / f'{name}-input'
        write_patterns(directory, scan.counts, halves['test'])
        print(f'$ (product of the next scan: model probe, flat object) > {directory}/product.h5')
        save_product(directory / 'product.h5', next_scan)
        write_settings(directory / 'settings.ini', given)

    # 4. train on one half, reconstruct the other (defaults, then the network alone)
    shell(ptychodus, '-b', 'train', '-i', out / 'train-input', '-o', out / 'train-output')
    n = scan.counts.shape[-1]
    mask = scanned_region_mask(
        scan.positions_px[halves['test']], reference.shape, n, default_stitch_crop_px(n)
    )
    result: dict = {'product': str(product)}
    for name, key in (('test', 'scores_vs_iterative'), ('test-network', 'network_alone')):
        shutil.copyfile(out / 'train-output' / 'model.zip', out / f'{name}-input' / 'model.zip')
        log = shell(
            ptychodus,
            '-b',
            'reconstruct',
            '-i',
            out / f'{name}-input',
            '-o',
            out / f'{name}-output',
        )
        final = np.asarray(
            load_product(latest_product(out / f'{name}-output')).object_.get_layer(0)
        )
        # 5. scores against the iterative reconstruction, the probe used, the data consistency
        scores = metrics.compare_objects(final, reference, mask)
        result[key] = {k: float(v) for k, v in scores.items()}
        if key == 'scores_vs_iterative':
            result['probe'] = _last_line(log, 'reconstruction probe: ')
            result['consistency'] = _last_line(log, 'data consistency: ')
    (out / 'scores.json').write_text(json.dumps(result, indent=1))
    for label, key in (('defaults', 'scores_vs_iterative'), ('network alone', 'network_alone')):
        for name, value in result[key].items():
            print(f'{label}: {name} against the iterative reconstruction: {value:.3f}')
    print(f'reconstruction probe: {result["probe"]}')
    print(f'data consistency: {result["consistency"]}')
    return result


def _last_line(log: str, marker: str) -> str | None:
    """What follows ``marker`` on the last log line holding it."""
    lines = [line for line in log.splitlines() if marker in line]
    return lines[-1].split(marker)[-1] if lines else None


if __name__ == '__main__':
    main()

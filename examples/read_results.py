"""Read what training and reconstruction leave behind, without the frameworks.

    python examples/read_results.py --model model.zip --reconstruction out/ --history history.csv
    python examples/read_results.py --quick     # makes a small reconstruction with a shipped model

- a model archive: ``core.archive.read_manifest`` (configuration, training summary, versions;
  no weights, no framework) or ``load_archive`` (weights as NumPy arrays);
- ``object.npz`` from ``ptychopinn reconstruct``: the complex object, how many patch crops cover
  each pixel, the scan positions and provenance;
- ``product.h5``: Ptychodus's product file, read with Ptychodus's own ``load_product``;
- a loss history CSV (``ptychopinn train --history``, or ``loss_history.csv`` from Ptychodus).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from ptychopinn_plugin.core.archive import read_manifest

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / 'models' / 'pinn-n64-g1-pytorch.zip'


def describe_model(path: Path) -> dict:
    manifest = read_manifest(path)
    summary = manifest['training_summary']
    print(
        f'model {path.name}: {manifest["mode"]}, N = {manifest["pattern_size_px"]}, gridsize '
        f'{manifest["gridsize"]}, trained by {manifest["trained_backend"]} for '
        f'{summary["epochs_completed"]} epochs on {summary["num_patterns"]} patterns'
    )
    return manifest


def describe_reconstruction(directory: Path) -> dict:
    from ptychodus.api.io import load_product

    with np.load(directory / 'object.npz') as npz:
        object_ = npz['object']
        coverage = npz['coverage']
        info = json.loads(str(npz['info_json']))
    covered = coverage > 0
    amplitude = np.abs(object_[covered])
    print(
        f'object {object_.shape[1]} x {object_.shape[0]} px, {covered.mean():.0%} covered; '
        f'amplitude {amplitude.min():.3f} .. {amplitude.max():.3f}, '
        f'reconstructed by {info["backend"]} in {info["seconds"]:.2f} s'
    )
    product = load_product(directory / 'product.h5')
    pixel = product.object_.get_pixel_geometry()
    print(
        f'product "{product.metadata.name}": {len(product.probe_positions)} positions, object '
        f'pixel {pixel.width_m * 1e9:.1f} nm, probe {product.probes.get_array().shape}'
    )
    return {'object_shape': list(object_.shape), 'covered_fraction': float(covered.mean()), **info}


def describe_history(path: Path) -> list[dict]:
    rows = list(csv.DictReader(path.open()))
    for row in rows:
        print(
            f'epoch {row["epoch"]}: training loss {float(row["training_loss"]):.5g}, '
            f'{float(row["seconds"]):.1f} s'
        )
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL, help='model archive (.zip)')
    parser.add_argument('--reconstruction', type=Path, default=None, help='reconstruct output dir')
    parser.add_argument('--history', type=Path, default=None, help='loss history CSV')
    parser.add_argument('--quick', action='store_true', help='make a small reconstruction first')
    parser.add_argument('--out', type=Path, default=Path('read-results-output'))
    args = parser.parse_args(argv)
    if args.quick and args.reconstruction is None:
        from ptychopinn_plugin.cli import main as ptychopinn

        args.out.mkdir(parents=True, exist_ok=True)
        scan = args.out / 'scan.npz'
        for words in (
            ['-q', 'simulate', scan, '--num-patterns', 64, '--overwrite'],
            ['-q', 'reconstruct', args.model, scan, '-o', args.out / 'rec', '--overwrite'],
        ):
            if ptychopinn([str(w) for w in words]) != 0:
                raise SystemExit(f'ptychopinn {words[1]} failed')
        args.reconstruction = args.out / 'rec'
    results: dict = {'model': describe_model(args.model)}
    if args.reconstruction is not None:
        results['reconstruction'] = describe_reconstruction(args.reconstruction)
    if args.history is not None:
        results['history'] = describe_history(args.history)
    return results


if __name__ == '__main__':
    main()

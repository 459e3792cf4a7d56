"""Switch the backend: one archive, reconstructed by PyTorch and by TensorFlow.

    python examples/switch_backend.py                                   # a shipped model
    python examples/switch_backend.py --model my-model.zip --device cuda
    python examples/switch_backend.py --quick

An archive holds canonical weights, not a framework's file, so the backend is a choice at run time:
``ExecutionConfig(backend=...)`` in Python, ``--backend`` on the command line, ``[PtychoPINN]
Backend`` in Ptychodus. This script reconstructs one simulated scan with each installed backend
and prints the time each took and how far apart the two objects are (float32 rounding only).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ptychopinn_plugin.config import ExecutionConfig, InferenceConfig
from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.core.archive import load_archive
from ptychopinn_plugin.engines import backend_is_installed
from ptychopinn_plugin.workflow import reconstruct

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = REPO_ROOT / 'models' / 'pinn-n64-g1-pytorch.zip'


def reconstruct_with(archive, scan, backend: str, device: str) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    final = None
    for step in reconstruct(
        archive,
        scan.data,
        execution=ExecutionConfig(backend=backend, device=device),
        # the network's own object: the refinement after it is the same NumPy code for both
        # backends, and its iterations would magnify float32 rounding at a few pixels
        inference=InferenceConfig(refine_iterations=0),
        object_shape=scan.object_.shape,
        fill=np.ones_like(scan.object_),
    ):
        final = step
    return final.object_, time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', type=Path, default=DEFAULT_MODEL, help='model archive (.zip)')
    parser.add_argument('--device', default='auto', choices=['auto', 'cpu', 'cuda'])
    parser.add_argument('--num-patterns', type=int, default=1024, help='scan points')
    parser.add_argument('--quick', action='store_true', help='tiny sizes: 64 points')
    args = parser.parse_args(argv)
    if args.quick:
        args.num_patterns = 64
    archive = load_archive(args.model)
    n_px = archive.config.model.pattern_size_px
    print(f'{args.model.name}: trained by {archive.trained_backend}, N = {n_px}')
    scan = simulate.make_scan('smooth', num_patterns=args.num_patterns, pattern_size_px=n_px)
    objects = {}
    for backend in ('pytorch', 'tensorflow'):
        if not backend_is_installed(backend):
            print(f'{backend}: not installed (pip install "ptychopinn-plugin[...]")')
            continue
        objects[backend], seconds = reconstruct_with(archive, scan, backend, args.device)
        print(f'{backend}: {args.num_patterns} patterns in {seconds:.2f} s')
    result = {'backends': sorted(objects)}
    if len(objects) == 2:
        difference = np.abs(objects['pytorch'] - objects['tensorflow'])
        result['max_abs_difference'] = float(difference.max())
        print(f'largest difference between the two objects: {difference.max():.2e}')
    return result


if __name__ == '__main__':
    main()

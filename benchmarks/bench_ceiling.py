"""How fast can the PtychoPINN network possibly run on this CPU? A roofline-style check.

Prints, for the N = 64 network (PyTorch, inference mode, channels-last):

- the arithmetic per pattern, counted by ``torch.utils.flop_counter`` (convolutions);
- this machine's dense matrix-multiply rate in float32 and bfloat16 (``torch.matmul`` of 2048 x
  2048 matrices, the best case for the same oneDNN / BLAS kernels the convolutions use);
- the bare network's patterns/s (encoder and both decoders, no physics, no stitching) in fp32 and
  under bf16 autocast, eager and, with ``--compile``, through ``torch.compile`` (inductor with
  freezing and weight prepacking);
- the ceiling those imply: matmul rate / arithmetic per pattern, an upper bound for the network
  alone, hence for full inference.

Run on a quiet machine (nothing else using the CPU):

    PYTHONPATH=. .venv/bin/python benchmarks/bench_ceiling.py [--compile]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.engines.pytorch_engine.network import Generator


def matmul_rate(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    """Sustained FLOP/s of a square matrix product in ``dtype``."""
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def patterns_per_second(network, inputs: torch.Tensor, bf16: bool, repeats: int) -> float:
    with torch.inference_mode(), torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16):
        network(inputs)  # warm-up (and compilation)
        start = time.perf_counter()
        for _ in range(repeats):
            network(inputs)
        return repeats * inputs.shape[0] / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--n-filters-scale', type=int, default=2)
    parser.add_argument('--batch', type=int, default=64)
    parser.add_argument('--repeats', type=int, default=6)
    parser.add_argument('--compile', action='store_true', help='also time torch.compile')
    args = parser.parse_args()

    torch.manual_seed(0)
    model = ModelConfig(pattern_size_px=64, n_filters_scale=args.n_filters_scale)
    network = Generator(model).eval().to(memory_format=torch.channels_last)
    with FlopCounterMode(display=False) as counter:
        network(torch.zeros(1, 1, 64, 64))
    flop = counter.get_total_flops()
    inputs = torch.rand(args.batch, 1, 64, 64).contiguous(memory_format=torch.channels_last)

    print(f'threads: {torch.get_num_threads()}, torch {torch.__version__}')
    print(
        f'network: N = 64, n_filters_scale {args.n_filters_scale}, {flop / 1e9:.2f} GFLOP/pattern'
    )
    rows = []
    for name, dtype, bf16 in (('fp32', torch.float32, False), ('bf16', torch.bfloat16, True)):
        rate = matmul_rate(dtype)
        eager = patterns_per_second(network, inputs, bf16, args.repeats)
        row = [name, rate / 1e9, rate / flop, eager, eager * flop / rate]
        if args.compile:
            import torch._inductor.config as inductor

            inductor.freezing = True
            torch._dynamo.reset()
            compiled = patterns_per_second(torch.compile(network), inputs, bf16, args.repeats)
            row.append(compiled)
        rows.append(row)
    header = (
        '| precision | matmul GFLOP/s | ceiling patterns/s | bare network patterns/s | of ceiling |'
    )
    if args.compile:
        header += ' compiled patterns/s |'
    print(header)
    print('| --- ' * (header.count('|') - 1) + '|')
    for row in rows:
        cells = [row[0], f'{row[1]:.0f}', f'{row[2]:.0f}', f'{row[3]:.0f}', f'{row[4]:.0%}']
        cells += [f'{value:.0f}' for value in row[5:]]
        print('| ' + ' | '.join(cells) + ' |')


if __name__ == '__main__':
    main()

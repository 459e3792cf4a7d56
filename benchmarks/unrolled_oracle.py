"""Oracle (issue 26): a network trained end to end through unrolled overlap steps, and through a
loss over neighbouring patterns.

Two levers of issue 26 that bring the overlap between patterns into the network's training:

- ``--train-steps 0``: the network's patches are stitched over a block of neighbouring scan
  points and the stitched object must explain every pattern of the block (a loss over
  neighbouring patterns; the per-pattern PINN loss never sees the overlap);
- ``--train-steps K``: K steps of the overlap refinement follow the stitching inside the model,
  and the loss is the misfit after them, back-propagated through the steps into the network
  ("a few physics steps unrolled inside the network and trained end to end").

The network is the plugin's generator (PyTorch, gridsize 1), trained from scratch, PINN (no truth),
on random W x W blocks of the realistic benchmark's training scan of the cell. Scored on the
cell's held-out test scan: the network's stitched object after 0, K, 2K ... of the same steps,
against the same steps from a flat object, so the network's share is the difference. The steps
are a plain version of ``solver/overlap.py``'s (the probe-power-normalised gradient step of the
amplitude misfit, no momentum, no preconditioner) at the integer part of each position, written
here in differentiable PyTorch; both arms use the same ones.

Usage: ``PYTHONPATH=. python benchmarks/unrolled_oracle.py --cell 0.7:1e6 --train-steps 10
--minutes 10`` (about 12 min on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from gridsize2_ablation import RASTER_WIDTH

from ptychopinn_plugin.config import ModelConfig, default_stitch_crop_px
from ptychopinn_plugin.core import physics
from ptychopinn_plugin.core.stitching import scanned_region_mask, window_origins
from ptychopinn_plugin.engines.pytorch_engine.network import Generator
from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.ptychodus_io.realistic import RealisticSpec, make_realistic_scan

N = 64
POWER_FLOOR = 1e-3
"""Fraction of the largest summed probe power added to the step's denominator (as the solver)."""


class Scan:
    """One scan's constants for the differentiable steps (torch, float32 / complex64)."""

    def __init__(self, workflow_scan) -> None:
        data = workflow_scan.training_data()
        self.truth = workflow_scan.truth
        self.positions = data.positions_px
        origins, _ = window_origins(data.positions_px, N)
        self.origins = torch.from_numpy(origins + N)  # the object is padded by N
        self.shape = (self.truth.shape[0] + 2 * N, self.truth.shape[1] + 2 * N)
        measured = np.fft.ifftshift(data.diffraction_amplitude, axes=(-2, -1))
        self.probe = torch.from_numpy(data.probe.astype(np.complex64))
        flat_power = float(np.sum(np.abs(np.fft.fft2(data.probe, norm='ortho')) ** 2))
        scale = np.sqrt(np.mean(np.sum(measured**2, axis=(-2, -1))) / flat_power)
        self.measured = torch.from_numpy((measured / scale).astype(np.float32))
        self.inputs = torch.from_numpy(
            (
                data.diffraction_amplitude
                * physics.dataset_normalization(data.diffraction_amplitude)
            ).astype(np.float32)
        )[:, None]
        self.mask = scanned_region_mask(
            data.positions_px, self.truth.shape, N, default_stitch_crop_px(N)
        )

    def index(self, points: torch.Tensor, whole: bool = False) -> tuple[torch.Tensor, int]:
        """(B, N, N) flat indices of the windows of ``points`` into the smallest object that
        holds them (``whole``: the padded object of the scan), and that object's size."""
        origins = self.origins[points]
        shape = self.shape
        if not whole:
            origins = origins - origins.min(dim=0).values
            shape = (int(origins[:, 0].max()) + N, int(origins[:, 1].max()) + N)
        rows = origins[:, 0][:, None, None] + torch.arange(N)[None, :, None]
        cols = origins[:, 1][:, None, None] + torch.arange(N)[None, None, :]
        return rows * shape[1] + cols, shape[0] * shape[1]


def scatter(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    out = torch.zeros(size, dtype=values.dtype)
    return out.index_add(0, index.reshape(-1), values.reshape(-1))


class Steps:
    """The differentiable stitching and plain overlap steps over a set of scan points."""

    def __init__(self, scan: Scan, points: torch.Tensor, whole: bool = False) -> None:
        self.scan, self.points = scan, points
        self.index, self.size = scan.index(points, whole)
        weight = (scan.probe.abs() ** 2).expand(len(points), N, N)
        self.weight = weight
        self.power = scatter(weight, self.index, self.size)
        self.denominator = self.power + POWER_FLOOR * self.power.max()
        self.measured = scan.measured[points]

    def stitch(self, patches: torch.Tensor) -> torch.Tensor:
        """Probe-power-weighted mean of the patches, 1 where no probe reaches (flat)."""
        total = scatter(patches * self.weight, self.index, self.size)
        lit = self.power > POWER_FLOOR * self.power.max()
        return torch.where(lit, total / self.power.clamp_min(1e-30), torch.ones_like(total))

    def step(self, object_: torch.Tensor) -> torch.Tensor:
        """One plain overlap step of the flat object vector."""
        probe = self.scan.probe
        exit_wave = probe * object_[self.index]
        spectrum = torch.fft.fft2(exit_wave, norm='ortho')
        corrected = spectrum * (self.measured / spectrum.abs().clamp_min(1e-12))
        change = (torch.fft.ifft2(corrected, norm='ortho') - exit_wave) * probe.conj()
        return object_ + scatter(change, self.index, self.size) / self.denominator

    def misfit(self, object_: torch.Tensor) -> torch.Tensor:
        spectrum = torch.fft.fft2(self.scan.probe * object_[self.index], norm='ortho')
        return torch.mean((spectrum.abs() - self.measured) ** 2)

    def network_object(self, net: Generator) -> torch.Tensor:
        amplitude, phase = net(self.scan.inputs[self.points])
        return self.stitch(torch.polar(amplitude[:, 0], phase[:, 0]))


def score(scan: Scan, object_: torch.Tensor) -> tuple[float, float]:
    padded = object_.detach().reshape(scan.shape).numpy()
    result = score_object(padded[N:-N, N:-N], scan.truth, scan.mask)
    return round(result['amplitude_ssim'], 3), round(result['phase_ssim'], 3)


def block(rng: np.random.Generator, width: int) -> torch.Tensor:
    row, col = rng.integers(0, RASTER_WIDTH - width + 1, 2)
    rows, cols = np.meshgrid(np.arange(row, row + width), np.arange(col, col + width))
    return torch.from_numpy((rows * RASTER_WIDTH + cols).ravel())


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--cell', default='0.7:1e6', help='OVERLAP:PHOTONS')
    parser.add_argument('--train-steps', type=int, default=10, help='unrolled steps (0: none)')
    parser.add_argument('--block', type=int, default=6, help='block side, in scan points')
    parser.add_argument('--minutes', type=float, default=10.0, help='training time')
    parser.add_argument('--n-filters-scale', type=int, default=1)
    args = parser.parse_args()
    overlap, photons = (float(v) for v in args.cell.split(':'))
    spec = RealisticSpec(num_photons=photons, overlap_fraction=overlap)
    train = Scan(make_realistic_scan('train', spec, seed=0).with_probe_power_of_data())
    test = Scan(make_realistic_scan('test', spec, seed=0).with_probe_power_of_data())
    torch.manual_seed(0)
    net = Generator(ModelConfig(n_filters_scale=args.n_filters_scale))
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    start, updates = time.perf_counter(), 0
    while time.perf_counter() - start < 60 * args.minutes:
        steps = Steps(train, block(rng, args.block))
        object_ = steps.network_object(net)
        for _ in range(args.train_steps):
            object_ = steps.step(object_)
        loss = steps.misfit(object_)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        updates += 1
        if updates % 200 == 0:
            print(
                f'{updates} updates, misfit {float(loss):.4g} ({time.perf_counter() - start:.0f} s)'
            )
    net.eval()
    steps = Steps(test, torch.arange(len(test.positions)), whole=True)
    counts = sorted({0, 10, 20, 30, max(args.train_steps, 1)})
    with torch.no_grad():
        starts = {
            'network': steps.network_object(net),
            'flat': torch.ones(test.shape[0] * test.shape[1], dtype=torch.complex64),
        }
        for name, object_ in starts.items():
            done, row = 0, []
            for count in counts:
                for _ in range(count - done):
                    object_ = steps.step(object_)
                done = count
                row.append(f'{count}: {score(test, object_)}')
            print(f'held-out, from the {name} start, amplitude / phase SSIM after', ', '.join(row))
    print(f'training: {updates} updates of {args.block}x{args.block} blocks in {args.minutes} min')


if __name__ == '__main__':
    main()

"""Oracle: what a network in object space adds after a few refinement iterations.

Issue 26 asks the network to save refinement time (time to quality) and to beat the refinement
where the data alone are weak (low dose). A network that maps one diffraction pattern to its
patch cannot see the overlap (``docs/results.md``, "Gridsize 2 on its own training scan"), but the
refinement brings the overlap in. This oracle asks the question of the division of work the
other way round: after K iterations of the refinement from a flat object, how much does a small
convolutional network that maps the refined object (amplitude and phase) to the truth add, when
it is trained on scans simulated with the cell's own probe, geometry and dose over photographs
that are not the test scan's?

Training scans: the realistic benchmark's probe and raster (``ptychodus_io/realistic.py``,
Ptychodus's simulator), objects from pairs of ``skimage.data`` photographs other than the test
pair (coffee and chelsea; chelsea's copy ``cat`` is left out too). Test: the benchmark's held-out
test scan of the cell (seed 0). The network: a three-level U-Net (PyTorch) that predicts a
correction of the amplitude and of the phase (the phase's mean removed from input and target
alike: the global phase is free), trained with an L1 loss on random crops of the lit region.
Scores: amplitude / phase SSIM against the truth over the scanned region, the refinement after
K and after 100 iterations beside (made by: the refinement alone from a flat object, then the
network on its object)::

    PYTHONPATH=. .venv/bin/python benchmarks/object_prior_oracle.py --cell 0.7:1e6 \
        --iterations 10 20
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

from ptychopinn_plugin.config import default_stitch_crop_px
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.ptychodus_io.realistic import (
    ImagePair,
    RealisticSpec,
    make_realistic_scan,
    natural_object,
    realistic_object_shape,
    scan_step_px,
    simulate_realistic_scan,
    zone_plate_probe,
)
from ptychopinn_plugin.solver.overlap import OverlapRefinement

N = 64
LIBRARY = (
    'camera',
    'astronaut',
    'rocket',
    'coins',
    'moon',
    'text',
    'page',
    'horse',
    'clock',
    'hubble_deep_field',
    'immunohistochemistry',
    'brick',
    'grass',
    'gravel',
    'retina',
    'cell',
)
"""Training photographs: ``skimage.data`` images other than the test pair (coffee, chelsea/cat)."""


def _cell(text: str) -> tuple[float, float]:
    overlap, photons = text.split(':')
    return float(overlap), float(photons)


def _refined(data, shape, counts: list[int]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """The refinement from a flat object after each of ``counts`` iterations, with its lit mask."""
    flat = np.ones(shape, np.complex64)
    refinement = OverlapRefinement(
        flat, data.positions_px, data.diffraction_amplitude, data.probe, device='cpu'
    )
    out, done = {}, 0
    for count in sorted(counts):
        for _ in range(count - done):
            refinement.step()
        done = count
        out[count] = (
            np.where(refinement.illuminated, refinement.object_, flat),
            refinement.illuminated,
        )
    return out


def library_training_scan(spec: RealisticSpec, seed: int):
    rng = np.random.default_rng([seed, 7])
    probe = zone_plate_probe(spec)
    step = scan_step_px(spec, probe)
    shape = realistic_object_shape(spec, step)
    first, second = rng.choice(len(LIBRARY), 2, replace=False)
    truth = natural_object(ImagePair(LIBRARY[first], LIBRARY[second]), shape, rng)
    scan = simulate_realistic_scan(spec, truth, probe, step, rng, f'oracle-train-{seed}')
    return scan.with_probe_power_of_data()


def _channels(object_: np.ndarray, lit: np.ndarray) -> np.ndarray:
    """(3, H, W) float32: amplitude - 1, phase less its lit mean, lit mask."""
    phase = np.angle(object_)
    phase = phase - phase[lit].mean()
    return np.stack([np.abs(object_) - 1.0, np.where(lit, phase, 0.0), lit.astype(float)]).astype(
        np.float32
    )


def _target(truth: np.ndarray, lit: np.ndarray) -> np.ndarray:
    phase = np.angle(truth)
    phase = phase - phase[lit].mean()
    return np.stack([np.abs(truth) - 1.0, np.where(lit, phase, 0.0)]).astype(np.float32)


class UNet(nn.Module):
    def __init__(self, width: int = 24) -> None:
        super().__init__()

        def block(i: int, o: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(i, o, 3, padding=1), nn.GELU(), nn.Conv2d(o, o, 3, padding=1), nn.GELU()
            )

        w = width
        self.down = nn.ModuleList([block(3, w), block(w, 2 * w), block(2 * w, 4 * w)])
        self.bottom = block(4 * w, 8 * w)
        self.up = nn.ModuleList(
            [
                nn.ConvTranspose2d(8 * w, 4 * w, 2, 2),
                nn.ConvTranspose2d(4 * w, 2 * w, 2, 2),
                nn.ConvTranspose2d(2 * w, w, 2, 2),
            ]
        )
        self.merge = nn.ModuleList([block(8 * w, 4 * w), block(4 * w, 2 * w), block(2 * w, w)])
        self.head = nn.Conv2d(w, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for layer in self.down:
            h = layer(h)
            skips.append(h)
            h = nn.functional.avg_pool2d(h, 2)
        h = self.bottom(h)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips), strict=True):
            h = merge(torch.cat([up(h), skip], dim=1))
        return x[:, :2] + self.head(h)


def _apply(model: UNet, object_: np.ndarray, lit: np.ndarray) -> np.ndarray:
    x = _channels(object_, lit)
    h, w = x.shape[1:]
    ph, pw = (-h) % 8, (-w) % 8
    x = np.pad(x, ((0, 0), (0, ph), (0, pw)))
    with torch.no_grad():
        y = model(torch.from_numpy(x)[None])[0].numpy()[:, :h, :w]
    estimate = (y[0] + 1.0) * np.exp(1j * y[1])
    return np.where(lit, estimate, object_).astype(np.complex64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cell', type=_cell, default=(0.7, 1e6))
    parser.add_argument('--iterations', type=int, nargs='+', default=[10, 20])
    parser.add_argument('--scans', type=int, default=12, help='training scans')
    parser.add_argument('--steps', type=int, default=1500, help='optimiser steps per count')
    parser.add_argument('--crop', type=int, default=128)
    parser.add_argument('--width', type=int, default=24)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    overlap, photons = args.cell
    spec = RealisticSpec(num_photons=photons, overlap_fraction=overlap)
    counts = sorted(set(args.iterations))
    begin = time.perf_counter()
    training: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {k: [] for k in counts}
    for seed in range(args.scans):
        scan = library_training_scan(spec, seed)
        data = scan.training_data()
        refined = _refined(data, scan.truth.shape, counts)
        for count in counts:
            object_, lit = refined[count]
            training[count].append((_channels(object_, lit), _target(scan.truth, lit)))
    print(
        f'{args.scans} training scans simulated and refined in {time.perf_counter() - begin:.0f} s'
    )
    test = make_realistic_scan('test', spec, seed=0).with_probe_power_of_data()
    data, truth = test.training_data(), test.truth
    mask = scanned_region_mask(test.positions_px, truth.shape, N, default_stitch_crop_px(N))
    refined = _refined(data, truth.shape, [*counts, 100])
    reference = score_object(refined[100][0], truth, mask)
    print(
        f'cell {overlap:.0%} / {photons:.0e}: refinement 100 iterations '
        f'{reference["amplitude_ssim"]:.3f} / {reference["phase_ssim"]:.3f}'
    )
    rng = np.random.default_rng(0)
    for count in counts:
        model = UNet(args.width)
        optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3)
        schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, 2e-3, total_steps=args.steps)
        begin = time.perf_counter()
        for step in range(args.steps):
            xs, ys = [], []
            for _ in range(8):
                x, y = training[count][rng.integers(len(training[count]))]
                lit = x[2] > 0
                rows, cols = np.nonzero(lit)
                top = rng.integers(rows.min(), max(rows.min() + 1, rows.max() - args.crop))
                left = rng.integers(cols.min(), max(cols.min() + 1, cols.max() - args.crop))
                window = (slice(None), slice(top, top + args.crop), slice(left, left + args.crop))
                xc, yc = x[window].copy(), y[window].copy()
                if xc.shape[1:] != (args.crop, args.crop):
                    continue
                k = rng.integers(4)  # rotations and flips: the prior has no orientation
                xc, yc = np.rot90(xc, k, (1, 2)), np.rot90(yc, k, (1, 2))
                offset = rng.normal(0, 0.3)  # the global phase is free
                xc[1] += offset * xc[2]
                yc[1] += offset * xc[2]
                xs.append(xc.copy())
                ys.append(yc.copy())
            xb, yb = torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))
            weight = xb[:, 2:3]
            loss = (weight * (model(xb) - yb).abs()).mean()
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            if step % 250 == 0:
                print(f'  K {count} step {step}: loss {loss.item():.4f}', flush=True)
        seconds = time.perf_counter() - begin
        object_, lit = refined[count]
        before = score_object(object_, truth, mask)
        begin = time.perf_counter()
        after = score_object(_apply(model, object_, lit), truth, mask)
        inference = time.perf_counter() - begin
        print(
            f'K {count}: refinement alone {before["amplitude_ssim"]:.3f} / '
            f'{before["phase_ssim"]:.3f}; + object-space network {after["amplitude_ssim"]:.3f} / '
            f'{after["phase_ssim"]:.3f} (trained {seconds:.0f} s, applied {inference:.2f} s)',
            flush=True,
        )


if __name__ == '__main__':
    main()

"""Oracle (issue 26): does another architecture learn the map from a group's patterns to its
patches where the plugin's generator does not?

"What the network can learn where the truth is known" (``docs/results.md``) trained the plugin's
generator on the true patches of 2 x 2 raster squares (Supervised, a fixed group geometry) and
found it far from the data's own limit even on its training scan (phase SSIM 0.29 there, 0.26
held out; the free fit of the same groups 0.94). This trains, on the same inputs, targets and
scans, a residual U-Net (residual blocks at four scales with skip connections: the issue's
"residual architecture over the group") that maps the four patterns of a square to the real and
imaginary parts of its four patches, with an L1 loss weighted by the probe's power, for as many
epochs (30). Made by: the network alone, its patches stitched with the plugin's stitcher, without
phase synchronisation (each patch keeps the absolute phase it was trained to give) and with it (as
the generator's rows were scored); amplitude / phase SSIM on the held-out test scan and on its own
training scan.

Usage: ``python benchmarks/architecture_oracle.py`` (30 epochs, about 11 min on 2 cores);
``--extra-scans 3 --epochs 8`` trains on four scans for about as many updates.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from gridsize2_ablation import RASTER_WIDTH, square_members, stitched_ssims
from object_prior_oracle import library_training_scan
from torch import nn

from ptychopinn_plugin.config import default_stitch_crop_px
from ptychopinn_plugin.core import physics
from ptychopinn_plugin.core.stitching import extract_patches, scanned_region_mask
from ptychopinn_plugin.ptychodus_io.realistic import RealisticSpec, make_realistic_scan

N = 64
MEMBERS = 4


class Residual(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(8, width),
            nn.GELU(),
            nn.Conv2d(width, width, 3, padding=1),
            nn.GroupNorm(8, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x + self.body(x))


class ResidualUNet(nn.Module):
    """4 patterns in, real and imaginary parts of 4 patches out, (B, 8, N, N) (other channel
    counts for other inputs: ``probe_aware_oracle``)."""

    def __init__(
        self,
        width: int = 32,
        levels: int = 4,
        in_channels: int = MEMBERS,
        out_channels: int = 2 * MEMBERS,
    ) -> None:
        super().__init__()
        widths = [width * 2**k for k in range(levels)]
        self.stem = nn.Conv2d(in_channels, widths[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.pool = nn.ModuleList()
        for k, w in enumerate(widths):
            self.down.append(nn.Sequential(Residual(w), Residual(w)))
            if k + 1 < levels:
                self.pool.append(nn.Conv2d(w, widths[k + 1], 3, stride=2, padding=1))
        self.up = nn.ModuleList()
        self.merge = nn.ModuleList()
        for k in range(levels - 1, 0, -1):
            self.up.append(nn.ConvTranspose2d(widths[k], widths[k - 1], 2, stride=2))
            self.merge.append(
                nn.Sequential(
                    nn.Conv2d(2 * widths[k - 1], widths[k - 1], 1), Residual(widths[k - 1])
                )
            )
        self.head = nn.Conv2d(widths[0], out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        skips = []
        for k, block in enumerate(self.down):
            x = block(x)
            if k < len(self.pool):
                skips.append(x)
                x = self.pool[k](x)
        for up, merge in zip(self.up, self.merge, strict=True):
            x = merge(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)


def group_members(num_points: int, gridsize: int = 2) -> np.ndarray:
    """(n, g^2) members of each group: the point alone (gridsize 1), or the 2 x 2 raster square
    it starts (gridsize 2)."""
    if gridsize == 1:
        return np.arange(num_points)[:, None]
    return square_members(np.zeros((num_points, 1)), gridsize**2, None)


def prepared(scan):
    """Inputs (n, 4, N, N), true patches (n, 4, N, N) complex, members (n, 4)."""
    data = scan.training_data()
    members = group_members(len(data.positions_px))
    scale = physics.dataset_normalization(data.diffraction_amplitude)
    inputs = (data.diffraction_amplitude[members] * scale).astype(np.float32)
    truth = extract_patches(scan.truth, data.positions_px, N)[members]
    return data, torch.from_numpy(inputs), truth, members


def stitched(patches: np.ndarray, positions, scan, data) -> dict[str, tuple[float, float]]:
    """Amplitude / phase SSIM of ``patches`` (k, N, N) at ``positions`` (k, 2) stitched by the
    plugin's stitcher, without and with phase synchronisation."""
    crop = default_stitch_crop_px(N)
    mask = scanned_region_mask(data.positions_px, scan.truth.shape, N, crop)
    return {
        f'synchronised {sync}': stitched_ssims(
            patches.astype(np.complex64), positions, scan.truth, mask, N, crop, synchronize=sync
        )
        for sync in (False, True)
    }


def network_scores(net: nn.Module, inputs, members, scan, data) -> dict[str, tuple[float, float]]:
    """The network's patches of every group (real parts, then imaginary parts, one channel a
    member), stitched and scored by :func:`stitched`."""
    with torch.no_grad():
        out = torch.cat([net(inputs[k : k + 64]) for k in range(0, len(inputs), 64)]).numpy()
    size = members.shape[1]
    patches = (out[:, :size] + 1j * out[:, size:]).reshape(-1, N, N)
    return stitched(patches, data.positions_px[members].reshape(-1, 2), scan, data)


def scores(net: nn.Module, scan) -> dict[str, tuple[float, float]]:
    data, inputs, _, members = prepared(scan)
    return network_scores(net, inputs, members, scan, data)


def weighted_l1(target: torch.Tensor, weight: torch.Tensor):
    """Supervised loss: the L1 misfit to ``target`` weighted by ``weight`` (the probe's power)."""

    def loss(output: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        return torch.mean(torch.abs(output - target[members]) * weight)

    return loss


def fit(
    net: nn.Module,
    inputs: torch.Tensor,
    loss,
    epochs: int,
    batch: int = 16,
) -> None:
    """Adam (1e-3) on ``loss(output, members)`` (:func:`weighted_l1` or another of the same
    signature), in shuffled batches; prints the loss every 500 updates and the time; leaves
    ``net`` in evaluation mode."""
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    start, updates = time.perf_counter(), 0
    batches = [
        torch.from_numpy(order)
        for _ in range(epochs)
        for order in np.array_split(rng.permutation(len(inputs)), len(inputs) // batch)
    ]
    for members in batches:
        value = loss(net(inputs[members]), members)
        optimiser.zero_grad()
        value.backward()
        optimiser.step()
        updates += 1
        if updates % 500 == 0:
            print(
                f'{updates} updates, loss {value.item():.4f} ({time.perf_counter() - start:.0f} s)',
                flush=True,
            )
    net.eval()
    print(f'{epochs} epochs, {updates} updates, {time.perf_counter() - start:.0f} s', flush=True)


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options this oracle shares with ``probe_aware_oracle``."""
    parser.add_argument(
        '--epochs', type=int, default=30, help='passes over all the training groups (default 30)'
    )
    parser.add_argument('--width', type=int, default=16)
    parser.add_argument(
        '--extra-scans',
        type=int,
        default=0,
        help='train also on this many scans of other photographs (never the test pair)',
    )


def benchmark_scans(extra_scans: int) -> tuple:
    """The realistic benchmark's training and held-out test scans (1,024 raster points, seed 0),
    and an iterator over ``extra_scans`` library scans of other photographs, each simulated when
    it is reached (so a caller that keeps only what it prepares from each holds one at a time)."""
    spec = RealisticSpec(num_points=RASTER_WIDTH**2)
    train = make_realistic_scan('train', spec, seed=0).with_probe_power_of_data()
    test = make_realistic_scan('test', spec, seed=0).with_probe_power_of_data()
    return train, test, (library_training_scan(spec, seed) for seed in range(extra_scans))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    add_training_arguments(parser)
    args = parser.parse_args()
    train, test, extra = benchmark_scans(args.extra_scans)
    parts = [prepared(scan) for scan in itertools.chain([train], extra)]
    data = parts[0][0]
    inputs = torch.cat([part[1] for part in parts])
    truth = np.concatenate([part[2] for part in parts])
    target = torch.from_numpy(np.concatenate([truth.real, truth.imag], axis=1).astype(np.float32))
    weight = np.abs(data.probe) ** 2
    weight = torch.from_numpy((weight / weight.max()).astype(np.float32))
    torch.manual_seed(0)
    net = ResidualUNet(args.width)
    fit(net, inputs, weighted_l1(target, weight), args.epochs)
    print('network alone on the held-out test scan, amplitude / phase SSIM:', scores(net, test))
    print('network alone on its own training scan, amplitude / phase SSIM:', scores(net, train))


if __name__ == '__main__':
    main()

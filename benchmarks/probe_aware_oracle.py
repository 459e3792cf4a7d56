"""Oracle (issue 26): does a probe-aware input let a network learn the patch where the pattern
alone does not?

The plugin's network, and the residual U-Net of ``architecture_oracle``, see the diffraction
amplitude and must learn the whole inversion, a global map from the far field to the object,
from one or two scans. Issue 26 names a probe-aware input as a lever. Here the physics that is
known is done before the network: each pattern's own object estimate, ``iterations`` steps of
error reduction with the known probe from a flat object, one pattern at a time (no overlap; the
first step is the pattern's back-projection through the probe's far-field phase). The network
(the residual U-Net of ``architecture_oracle``, gridsize 1) then maps, Supervised on the true
patches, one of three inputs to the patch's real and imaginary parts:

- ``amplitude``: the diffraction amplitude alone (the control: what the plugin's network sees);
- ``estimate``: the real and imaginary parts of the pattern's own estimate;
- ``both``: the three channels together.

Made by: the network alone, its patches stitched by the plugin's stitcher without and with phase
synchronisation; amplitude / phase SSIM on the held-out test scan and on its own training scan,
beside the per-pattern estimates stitched with no network.

Usage: ``python benchmarks/probe_aware_oracle.py --input both`` (30 epochs, about 10 min on 2
cores); ``--extra-scans K`` trains also on K scans of other photographs; ``--gridsize 2`` maps the
2 x 2 raster square each point starts (every member's amplitude and own estimate) to its four
patches, as ``architecture_oracle`` does with the amplitudes alone; ``--loss pinn`` trains without
the truth, on the misfit between the moduli of the predicted patches' exit waves (with the known
probe) and the measured ones, as the plugin's PINN does (its scores then need the phase
synchronisation: a lone pattern leaves each patch's phase offset free);
``--estimate group`` gives the network, in place of the pattern's own estimate, its patch from
the joint fit of the 2 x 2 raster square it starts (:func:`group_estimates`: the overlap of four
patterns, ``--iterations`` steps); ``--what-one-pattern-determines`` trains nothing and prints
how well the true patches, a flat object, the patterns' own estimates and the squares' joint ones
fit the held-out scan's patterns, beside their scores.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from architecture_oracle import (
    ResidualUNet,
    add_training_arguments,
    benchmark_scans,
    fit,
    group_members,
    network_scores,
    stitched,
    weighted_l1,
)

from ptychopinn_plugin.core import physics
from ptychopinn_plugin.core.stitching import extract_patches, fourier_shift, window_origins
from ptychopinn_plugin.solver.overlap import OverlapRefinement

N = 64
INPUT_CHANNELS = {'amplitude': 1, 'estimate': 2, 'both': 3}


def measured_moduli(data) -> np.ndarray:
    """(n, N, N) float32: each pattern's measured modulus of the unnormalised FFT of the exit
    wave, in FFT order (the data are Parseval-normalised and zero-centred)."""
    return (np.fft.ifftshift(data.diffraction_amplitude, axes=(-2, -1)) * N).astype(np.float32)


def amplitude_misfit(measured: torch.Tensor, probe: np.ndarray, size: int):
    """PINN loss (no truth): the mean squared misfit between the moduli of the predicted patches'
    exit waves and the measured ones, ``measured`` (n, g^2, N, N) in the order of the groups (the
    square root makes the Poisson noise's variance flat, so this is its high-count likelihood)."""
    probe_t = torch.from_numpy(probe.astype(np.complex64))

    def loss(output: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
        patches = torch.complex(output[:, :size], output[:, size:])
        modulus = torch.abs(torch.fft.fft2(probe_t * patches))
        return torch.mean((modulus - measured[members]) ** 2)

    return loss


def modulus_correction(probe: np.ndarray, patches: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """The change of the exit waves ``probe * patches`` that gives their far fields the
    ``measured`` moduli, phases kept (one error-reduction projection)."""
    wave = probe * patches
    spectrum = np.fft.fft2(wave)
    return np.fft.ifft2(measured * np.exp(1j * np.angle(spectrum))) - wave


def single_pattern_estimates(data, iterations: int) -> np.ndarray:
    """(n, N, N) complex64: each pattern's object after ``iterations`` error-reduction steps
    with the known probe from a flat object, its own pattern only (no overlap)."""
    probe = data.probe.astype(np.complex64)
    measured = measured_moduli(data)
    step = np.conj(probe) / np.max(np.abs(probe) ** 2)
    estimate = np.ones(measured.shape, np.complex64)
    for _ in range(iterations):
        estimate = (estimate + step * modulus_correction(probe, estimate, measured)).astype(
            np.complex64
        )
    return estimate


def group_estimates(data, iterations: int) -> np.ndarray:
    """(n, N, N) complex64: each point's patch from the joint fit of the 2 x 2 raster square it
    starts: a canvas fitted to the square's four patterns together (``iterations`` parallel
    error-reduction steps with the known probe from a flat canvas, the updates weighted by the
    probe's power). Geometry as the plugin's refinement: each member's window at the integer part
    of its position, the probe Fourier-shifted by the opposite of the sub-pixel rest; the point's
    patch is cut from the canvas and shifted by that rest, so it lies where
    ``stitching.extract_patches`` cuts the true patch."""
    measured = measured_moduli(data)
    members = group_members(len(data.positions_px), 2)
    origins, shifts = window_origins(data.positions_px, N)  # (row, col)
    probes = fourier_shift(
        np.broadcast_to(data.probe.astype(np.complex64), measured.shape).copy(), -shifts, None
    ).astype(np.complex64)
    corner = origins[members]  # (n, 4, 2)
    offset = corner - corner.min(axis=1, keepdims=True)
    side = N + int(offset.max())
    rows = offset[..., 0, None, None] + np.arange(N)[None, None, :, None]
    cols = offset[..., 1, None, None] + np.arange(N)[None, None, None, :]
    groups = np.arange(len(members))[:, None, None]
    canvas = np.ones((len(members), side, side), np.complex64)
    power = np.zeros(canvas.shape, np.float32)
    for k in range(4):
        power[groups, rows[:, k], cols[:, k]] += np.abs(probes[members[:, k]]) ** 2
    power += 1e-3 * power.max()
    for _ in range(iterations):
        update = np.zeros_like(canvas)
        for k in range(4):
            probe = probes[members[:, k]]
            window = canvas[groups, rows[:, k], cols[:, k]]
            change = modulus_correction(probe, window, measured[members[:, k]])
            update[groups, rows[:, k], cols[:, k]] += np.conj(probe) * change
        canvas += update / power
    # The point's window with a flat margin, shifted, then cropped (no wrap-around at its edges).
    slot = np.argmax(members == np.arange(len(members))[:, None], axis=1)  # the point's member
    margin = 4
    canvas = np.pad(canvas, ((0, 0), (margin, margin), (margin, margin)), constant_values=1)
    window = np.arange(N + 2 * margin)
    own = np.arange(len(members))
    patches = canvas[
        own[:, None, None],
        offset[own, slot, 0, None, None] + window[None, :, None],
        offset[own, slot, 1, None, None] + window[None, None, :],
    ]
    return fourier_shift(patches, shifts, N).astype(np.complex64)


ESTIMATES = {'own': single_pattern_estimates, 'group': group_estimates}
"""The per-point estimates a network can be given: the pattern's own, or its 2 x 2 square's."""


def prepared(scan, kind: str, iterations: int, gridsize: int = 1, estimates: str = 'own'):
    """Inputs (n, g^2 C, N, N) float32, true patches (n, g^2, N, N), estimates (n, N, N) (of
    :data:`ESTIMATES`), the data, members (n, g^2)."""
    data = scan.training_data()
    estimate = ESTIMATES[estimates](data, iterations)
    scale = physics.dataset_normalization(data.diffraction_amplitude)
    channels = []
    if kind in ('amplitude', 'both'):
        channels.append(data.diffraction_amplitude * scale)
    if kind in ('estimate', 'both'):
        channels += [estimate.real - 1.0, estimate.imag]
    members = group_members(len(data.positions_px), gridsize)
    per_pattern = np.stack(channels, axis=1).astype(np.float32)
    inputs = per_pattern[members].reshape(len(members), -1, N, N)
    truth = extract_patches(scan.truth, data.positions_px, N)[members]
    return torch.from_numpy(inputs), truth, estimate, data, members


def modulus_misfit(patches: np.ndarray, measured: np.ndarray, probe: np.ndarray) -> float:
    """Mean squared misfit between the moduli of ``probe * patches``'s far fields and
    ``measured``, at the patches' best common scale (the benchmark sets the probe's power from the
    data as if the object's amplitude were 1, so the true patches fit only at a scale)."""
    modulus = np.abs(np.fft.fft2(probe * patches))
    scale = float(np.sum(modulus * measured) / np.sum(modulus**2))
    return float(np.mean((scale * modulus - measured) ** 2))


def what_one_pattern_determines(
    scan, step_counts=(1, 20, 100, 300), group_step_counts=(5, 20, 100), refine_counts=(5, 20, 100)
) -> None:
    """Prints, for the true patches, a flat object and each pattern's own estimate after each
    count of steps, and for each point's patch from the joint fit of its 2 x 2 square
    (:func:`group_estimates`): the modulus misfit to the measured patterns and the stitched
    amplitude / phase SSIM; beside them, the plugin's refinement of the whole scan from a flat
    object after each of ``refine_counts`` iterations (its object's patches, scored the same
    way). An estimate that fits its lone pattern as well as the truth does and still scores far
    from it says that one pattern does not determine its patch."""
    data = scan.training_data()
    measured = measured_moduli(data)
    probe = data.probe.astype(np.complex64)
    truth = extract_patches(scan.truth, data.positions_px, N)
    print('true patches: misfit', round(modulus_misfit(truth, measured, probe)), flush=True)
    flat = np.ones_like(truth)
    print('flat object: misfit', round(modulus_misfit(flat, measured, probe)), flush=True)
    for name, estimates, counts in (
        ('own estimates', single_pattern_estimates, step_counts),
        ('2 x 2 squares fitted jointly', group_estimates, group_step_counts),
    ):
        for steps in counts:
            start = time.perf_counter()
            estimate = estimates(data, steps)
            print(
                f'{name}, {steps} steps ({time.perf_counter() - start:.1f} s): misfit',
                round(modulus_misfit(estimate, measured, probe)),
                'stitched',
                stitched(estimate, data.positions_px, scan, data),
                flush=True,
            )
    start = time.perf_counter()
    refinement = OverlapRefinement(
        np.ones(scan.truth.shape, np.complex64),
        data.positions_px,
        data.diffraction_amplitude,
        data.probe,
        device='cpu',
    )
    done = 0
    for count in refine_counts:
        for _ in range(count - done):
            refinement.step()
        done = count
        seconds = time.perf_counter() - start
        patches = extract_patches(refinement.object_, data.positions_px, N)
        print(
            f'refinement of the whole scan from a flat object, {count} iterations '
            f'({seconds:.1f} s with its set-up): misfit',
            round(modulus_misfit(patches, measured, probe)),
            'stitched',
            stitched(patches, data.positions_px, scan, data),
            flush=True,
        )


def scores(net, scan, kind: str, iterations: int, gridsize: int, estimates: str):
    inputs, _, _, data, members = prepared(scan, kind, iterations, gridsize, estimates)
    return network_scores(net, inputs, members, scan, data)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--input', choices=sorted(INPUT_CHANNELS), default='both')
    parser.add_argument(
        '--iterations',
        type=int,
        default=20,
        help="error-reduction steps of each pattern's own estimate (default 20)",
    )
    parser.add_argument(
        '--estimate',
        choices=sorted(ESTIMATES),
        default='own',
        help="own: each pattern's own estimate; group: its patch from the joint fit of the 2 x 2 "
        'square it starts (default own)',
    )
    parser.add_argument(
        '--gridsize',
        type=int,
        choices=(1, 2),
        default=1,
        help='2: the 2 x 2 raster square each point starts, every member with its own estimate',
    )
    parser.add_argument(
        '--loss',
        choices=('supervised', 'pinn'),
        default='supervised',
        help='supervised: L1 to the true patches; pinn: the measured moduli alone (no truth)',
    )
    parser.add_argument(
        '--what-one-pattern-determines',
        action='store_true',
        help="no network: the modulus misfit and scores of the held-out scan's own estimates "
        'against the true patches',
    )
    add_training_arguments(parser)
    args = parser.parse_args()
    train, test, extra = benchmark_scans(args.extra_scans)
    if args.what_one_pattern_determines:
        what_one_pattern_determines(test)
        return
    size = args.gridsize**2
    parts = []  # the added scans' estimates are dropped once prepared (memory)
    for scan in itertools.chain([train], extra):
        inputs, truth, estimate, data, members = prepared(
            scan, args.input, args.iterations, args.gridsize, args.estimate
        )
        parts.append((inputs, truth, None if parts else estimate, data, members))
    for name, scan, part in (('test', test, None), ('train', train, parts[0])):
        _, _, estimate, data, _ = part or prepared(
            scan, args.input, args.iterations, estimates=args.estimate
        )
        print(
            f'{name} scan, the {args.estimate} estimates ({args.iterations} steps) stitched, '
            'no network:',
            stitched(estimate, data.positions_px, scan, data),
            flush=True,
        )
    inputs = torch.cat([part[0] for part in parts])
    truth = np.concatenate([part[1] for part in parts])
    if args.loss == 'pinn':
        measured = np.concatenate(
            [measured_moduli(part[3])[part[4]] for part in parts]
        )  # (n, g^2, N, N), the groups' members
        loss = amplitude_misfit(torch.from_numpy(measured), parts[0][3].probe, size)
    else:
        target = np.concatenate([truth.real, truth.imag], axis=1).astype(np.float32)
        weight = np.abs(parts[0][3].probe) ** 2
        weight = torch.from_numpy((weight / weight.max()).astype(np.float32))
        loss = weighted_l1(torch.from_numpy(target), weight)
    torch.manual_seed(0)
    net = ResidualUNet(
        args.width, in_channels=size * INPUT_CHANNELS[args.input], out_channels=2 * size
    )
    fit(net, inputs, loss, args.epochs)
    for name, scan in (('held-out test scan', test), ('its own training scan', train)):
        print(
            f'network alone ({args.input}, {args.estimate} estimates, gridsize {args.gridsize}, '
            f'{args.loss}) on {name}, amplitude / phase SSIM:',
            scores(net, scan, args.input, args.iterations, args.gridsize, args.estimate),
            flush=True,
        )


if __name__ == '__main__':
    main()

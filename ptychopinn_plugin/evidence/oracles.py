"""Oracles that say where reconstruction quality is lost on a realistic scan (issue 14, item 2).

``python -m ptychopinn_plugin.evidence.oracles --out DIR`` takes one scan of the realistic
benchmark (``ptychodus_io/realistic.py``: natural-image object, Ptychodus's zone-plate probe,
Ptychodus's simulator), hands it to the plugin's own data preparation (normalisation, count
targets, normalised probe) and asks, with the PyTorch engine's own forward model and Poisson
likelihood and no network:

- ``truth``: the true object patches. Their likelihood is what a perfect model reaches (about
  0.5 per pixel above the saturated likelihood, the Poisson noise), and stitching them scores the
  stitching itself.
- ``single pattern``: every patch fitted freely to its own pattern, in the network's own output
  representation (central N/2 square at full resolution, border at half resolution, sigmoid
  amplitude, ``pi tanh`` phase). No network can do better from one pattern than the best free
  fit, so this is the ceiling of a gridsize-1 model that sees one pattern at a time: if it fits
  the data as well as the truth does while scoring far below it, the single pattern does not
  determine the patch.
- ``gridsize 2 canvas``: the true member patches of every gridsize-2 group merged on the
  engine's group canvas and re-extracted (checks the merge: offset signs, x / y order, support),
  then free member patches fitted through that canvas: the ceiling of a gridsize-2 model, whose
  only overlap is within its group.
- ``overlap``: one free object on the scan's grid, each patch cut from it (bilinear), fitted to
  all patterns at once with the same forward model: what the same physics reaches when the
  overlap between scan points constrains the patches (ptychography by gradient descent).

Each row gives the excess likelihood (truth rows at the truth's best intensity scale), the
median correlation of predicted and true patches (phase after removing each patch's offset, and
amplitude, over the stitching crop) and the stitched object's scores (``benchmark.score_object``;
the plugin's default stitching: global phase synchronisation and the data-fitted ramp). Writes
``DIR/oracles.md`` and ``DIR/oracles.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import ModelConfig, TrainingConfig, default_stitch_crop_px
from ..core.dataset import prepare_training
from ..core.stitching import Stitcher, extract_patches, scanned_region_mask
from ..engines.pytorch_engine.losses import poisson_nll
from ..solver.phase_ramp import apply_phase_ramp, fit_phase_ramp
from .report import command_line, machine_description, markdown_table, prepare_output

logger = logging.getLogger('ptychopinn_plugin.evidence.oracles')

__all__ = ['OracleRow', 'main', 'patch_correlations', 'run_oracles']

LEARNING_RATE = 0.05
"""Adam step of the free fits (in the units of the pre-activation fields); both converge within
a few hundred steps at this rate on the benchmark scan (the excess stops falling)."""
QUICK = {'num_points': 64, 'iterations': 20}
"""``--quick``: a tiny run that checks the command works (its figures mean nothing)."""


@dataclass
class OracleRow:
    """One oracle's figures on the scan."""

    oracle: str
    excess_nll: float
    patch_phase_corr: float
    patch_amplitude_corr: float
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def patch_correlations(
    predicted: np.ndarray, truth: np.ndarray, crop_px: int
) -> tuple[float, float]:
    """Median correlation of phase and of amplitude between predicted and true patches.

    Parameters
    ----------
    predicted, truth : ndarray, shape (n, N, N), complex
        Patches in the convention of ``stitching.extract_patches``.
    crop_px : int
        Side of the central square compared (the stitching crop).

    Returns
    -------
    (phase, amplitude) : float
        Medians over patches of the Pearson correlation of the central squares; each predicted
        patch is first rotated by the global phase that best matches its true patch.
    """
    n_px = predicted.shape[-1]
    part = slice((n_px - crop_px) // 2, (n_px - crop_px) // 2 + crop_px)
    p, t = predicted[:, part, part], truth[:, part, part]
    rotation = np.sum(t * np.conj(p), axis=(1, 2))
    p = p * (rotation / np.maximum(np.abs(rotation), 1e-30))[:, None, None]

    def median_corr(a: np.ndarray, b: np.ndarray) -> float:
        a = a - a.mean(axis=(1, 2), keepdims=True)
        b = b - b.mean(axis=(1, 2), keepdims=True)
        norm = np.sqrt(np.sum(a * a, axis=(1, 2)) * np.sum(b * b, axis=(1, 2)))
        return float(np.median(np.sum(a * b, axis=(1, 2)) / np.maximum(norm, 1e-30)))

    return median_corr(np.angle(p), np.angle(t)), median_corr(np.abs(p), np.abs(t))


class _Problem:
    """The scan as the plugin's training sees it, with the engine's forward model and loss."""

    def __init__(self, data, truth: np.ndarray) -> None:
        import torch

        from ..engines.pytorch_engine.network import ForwardModel, PhysicsParameters

        self.torch = torch
        self.model = ModelConfig()
        prepared = prepare_training([data], self.model, TrainingConfig())
        self.data, self.truth = data, truth
        self.n_px = self.model.pattern_size_px
        self.crop_px = default_stitch_crop_px(self.n_px)
        self.counts = torch.from_numpy(prepared.arrays.count_targets[:, :1])  # (n, 1, N, N)
        self.forward = ForwardModel(self.model)
        self.physics = PhysicsParameters(self.n_px)
        probe = prepared.normalized_probe
        with torch.no_grad():
            self.physics.probe_real.copy_(torch.from_numpy(probe.real.astype(np.float32)))
            self.physics.probe_imag.copy_(torch.from_numpy(probe.imag.astype(np.float32)))
            self.initial_log_scale = math.log(prepared.normalization.initial_intensity_scale)
            self.physics.log_intensity_scale.fill_(self.initial_log_scale)
        self.true_patches = extract_patches(truth, data.positions_px, self.n_px)

    def reset_scale(self) -> None:
        """Start a free fit from the training's initial intensity scale, trainable."""
        with self.torch.no_grad():
            self.physics.log_intensity_scale.fill_(self.initial_log_scale)
        self.physics.log_intensity_scale.requires_grad_(True)

    def excess(self, patches, counts, *, best_scale: bool = False) -> float:
        """Mean Poisson NLL per pixel of complex patches (B, C, N, N) above the saturated one.

        At the trained ``log K``, or with ``best_scale`` at the patches' best intensity scale
        (closed form for the Poisson likelihood: total counts over total intensity).
        """
        torch = self.torch
        with torch.no_grad():
            intensity = self.forward.farfield_intensity(patches, self.physics)
            scale_sq = (
                counts.sum() / intensity.sum()
                if best_scale
                else torch.exp(2 * self.physics.log_intensity_scale)
            )
            nll = poisson_nll(scale_sq * intensity, counts)
            saturated = torch.mean(counts - counts * torch.log(torch.clamp(counts, min=1e-12)))
        return float(nll - saturated)

    def row(
        self,
        name: str,
        patches: np.ndarray,
        excess: float,
        seconds: float,
        *,
        data=None,
        true_patches: np.ndarray | None = None,
    ) -> OracleRow:
        """Score patches (n, N, N) of ``data`` (default: the scan) against ``true_patches``."""
        from .benchmark import score_object

        data = self.data if data is None else data
        true_patches = self.true_patches if true_patches is None else true_patches
        phase_corr, amplitude_corr = patch_correlations(patches, true_patches, self.crop_px)
        stitcher = Stitcher(self.truth.shape, self.n_px, self.crop_px, synchronize_phase=True)
        stitcher.add(patches, data.positions_px)
        object_, weight = stitcher.result()
        ramp = fit_phase_ramp(
            object_, weight, data.positions_px, data.diffraction_amplitude, data.probe
        )
        object_ = apply_phase_ramp(object_, ramp, weight > 0)
        mask = scanned_region_mask(data.positions_px, self.truth.shape, self.n_px, self.crop_px)
        scores = score_object(object_, self.truth, mask)
        return OracleRow(name, excess, phase_corr, amplitude_corr, scores, seconds)

    def fit(self, make_patches, parameters, iterations: int, counts=None):
        """Adam on the NLL of ``make_patches()`` (B, C, N, N) over ``parameters`` and ``log K``.

        ``counts`` (B, C, N, N) default to the scan's own, one pattern per patch. Returns the
        fitted patches (complex64) and their excess NLL.
        """
        torch = self.torch
        counts = self.counts if counts is None else counts
        self.reset_scale()
        optimiser = torch.optim.Adam([*parameters, self.physics.log_intensity_scale], LEARNING_RATE)
        for _ in range(iterations):
            intensity = self.forward.farfield_intensity(make_patches(), self.physics)
            scale_sq = torch.exp(2 * self.physics.log_intensity_scale)
            loss = poisson_nll(scale_sq * intensity, counts)
            optimiser.zero_grad()
            (loss * counts.shape[0]).backward()
            optimiser.step()
        with torch.no_grad():
            patches = make_patches()
        return patches.numpy().astype(np.complex64), self.excess(patches, counts)


def _truth_row(problem: _Problem) -> OracleRow:
    torch = problem.torch
    start = time.perf_counter()
    with torch.no_grad():
        patches = torch.from_numpy(problem.true_patches)[:, None]
        excess = problem.excess(patches, problem.counts, best_scale=True)
    seconds = time.perf_counter() - start
    return problem.row('truth (true patches)', problem.true_patches, excess, seconds)


def _single_pattern_row(problem: _Problem, iterations: int) -> OracleRow:
    torch = problem.torch
    generator = torch.Generator().manual_seed(0)
    count, half, quarter = problem.counts.shape[0], problem.n_px // 2, problem.n_px // 4
    fields = [torch.zeros(count, 1, half, half) for _ in range(4)]
    for phase in fields[2:]:
        phase.normal_(0.0, 0.01, generator=generator)
    for tensor in fields:
        tensor.requires_grad_(True)
    border = torch.ones(problem.n_px, problem.n_px)
    border[quarter : 3 * quarter, quarter : 3 * quarter] = 0.0

    def represented(central, coarse, activation):
        padded = torch.nn.functional.pad(activation(central), (quarter,) * 4)
        upsampled = activation(coarse).repeat_interleave(2, -2).repeat_interleave(2, -1)
        return padded + upsampled * border

    def make_patches():
        amplitude = represented(fields[0], fields[1], torch.sigmoid)
        phase = represented(fields[2], fields[3], lambda x: math.pi * torch.tanh(x))
        return torch.polar(amplitude, phase)

    start = time.perf_counter()
    patches, excess = problem.fit(make_patches, fields, iterations)
    seconds = time.perf_counter() - start
    return problem.row('single pattern (free patch per pattern)', patches[:, 0], excess, seconds)


def _canvas_rows(problem: _Problem, iterations: int) -> list[OracleRow]:
    """Gridsize 2: the truth through the group canvas, then free member patches through it."""
    from ..core.grouping import group_scan_points
    from ..engines.pytorch_engine.network import ForwardModel

    torch = problem.torch
    model = ModelConfig(gridsize=2)
    groups = group_scan_points(
        problem.data.positions_px, 2, num_neighbors=model.num_neighbors, seed=0
    )
    members = groups.member_indices  # (G, C)
    offsets = torch.from_numpy(groups.relative_offsets_px.astype(np.float32))
    forward = ForwardModel(model)
    canvas_px = forward.canvas_size_px(groups.relative_offsets_px)
    counts = problem.counts[members, 0]  # (G, C, N, N)
    positions = problem.data.positions_px[members].reshape(-1, 2)
    truth = problem.true_patches[members]
    n_px = problem.n_px

    def merged(amplitude, phase):
        return forward.object_patches(amplitude, phase, offsets, canvas_px)

    def row(name, patches, excess, seconds):
        flat = patches.reshape(-1, n_px, n_px)
        data = _with_positions(problem.data, positions, members.reshape(-1))
        return problem.row(
            name, flat, excess, seconds, data=data, true_patches=truth.reshape(-1, n_px, n_px)
        )

    start = time.perf_counter()
    with torch.no_grad():
        true = torch.from_numpy(truth)
        through = merged(true.abs(), true.angle())
        excess = problem.excess(through, counts, best_scale=True)
    seconds = time.perf_counter() - start
    rows = [row('truth through the gridsize-2 canvas', through.numpy(), excess, seconds)]

    generator = torch.Generator().manual_seed(0)
    shape = (*members.shape, n_px, n_px)
    amplitude = torch.zeros(shape, requires_grad=True)
    phase = torch.empty(shape).normal_(0.0, 0.01, generator=generator).requires_grad_(True)

    def make_patches():
        return merged(torch.sigmoid(amplitude), math.pi * torch.tanh(phase))

    start = time.perf_counter()
    patches, excess = problem.fit(make_patches, [amplitude, phase], iterations, counts)
    seconds = time.perf_counter() - start
    rows.append(row('gridsize 2 (free member patches on the canvas)', patches, excess, seconds))
    return rows


def _with_positions(data, positions: np.ndarray, indices: np.ndarray):
    """``data`` with one row per (group, member): its pattern and position repeated."""
    from dataclasses import replace

    return replace(
        data,
        positions_px=positions,
        diffraction_amplitude=data.diffraction_amplitude[indices],
        ground_truth_patches=None,
        scan_index=None,
    )


def _overlap_row(problem: _Problem, iterations: int) -> OracleRow:
    torch = problem.torch
    height, width = problem.truth.shape
    n_px = problem.n_px
    fields_ = torch.zeros(1, 2, height, width, requires_grad=True)  # amplitude 0.5, phase 0
    positions = torch.from_numpy(problem.data.positions_px.astype(np.float32))
    index = torch.arange(n_px, dtype=torch.float32) - (n_px - 1) / 2
    # sampling grid of every patch in grid_sample's normalised coordinates (align_corners=True)
    x = (positions[:, 0, None, None] + index[None, None, :]) * 2 / (width - 1) - 1
    y = (positions[:, 1, None, None] + index[None, :, None]) * 2 / (height - 1) - 1
    grid = torch.stack(torch.broadcast_tensors(x, y), dim=-1)  # (n, N, N, 2)

    def make_patches():
        # all patches as one tall sampling grid of the one object: no per-patch object copies
        fields = torch.nn.functional.grid_sample(
            fields_,
            grid.reshape(1, -1, n_px, 2),
            mode='bilinear',
            padding_mode='zeros',
            align_corners=True,
        ).reshape(2, -1, 1, n_px, n_px)
        return torch.polar(torch.sigmoid(fields[0]), math.pi * torch.tanh(fields[1]))

    start = time.perf_counter()
    patches, excess = problem.fit(make_patches, [fields_], iterations)
    seconds = time.perf_counter() - start
    name = 'overlap (one free object for all patterns)'
    return problem.row(name, patches[:, 0], excess, seconds)


def run_oracles(num_points: int, iterations: int, seed: int) -> list[OracleRow]:
    """The oracles' rows on the realistic benchmark's training scan (see the module docstring)."""
    from ptychodus.api.reconstruct import prepare_reconstruct_input

    from ..ptychodus_io.inputs import training_data_from_reconstruct_input
    from ..ptychodus_io.realistic import RealisticSpec, make_realistic_scan

    spec = RealisticSpec(num_points=num_points)
    scan = make_realistic_scan('train', spec, seed=seed).with_probe_power_of_data()
    data = training_data_from_reconstruct_input(
        prepare_reconstruct_input(scan.simulated.assembled, scan.simulated.product)
    )
    problem = _Problem(data, scan.truth)
    rows = [_truth_row(problem)]
    logger.info('fitting one free patch per pattern (%d steps)', iterations)
    rows.append(_single_pattern_row(problem, iterations))
    logger.info('gridsize-2 canvas: the truth, then free member patches (%d steps)', iterations)
    rows += _canvas_rows(problem, iterations)
    logger.info('fitting one free object to all patterns (%d steps)', iterations)
    rows.append(_overlap_row(problem, iterations))
    return rows


def _report(rows: list[OracleRow], command: str, args: argparse.Namespace) -> str:
    table = markdown_table(
        [
            'oracle',
            'excess NLL / px',
            'patch phase corr',
            'patch amp corr',
            'phase SSIM',
            'amp SSIM',
            'seconds',
        ],
        [
            [
                r.oracle,
                f'{r.excess_nll:.3f}',
                f'{r.patch_phase_corr:.2f}',
                f'{r.patch_amplitude_corr:.2f}',
                f'{r.scores["phase_ssim"]:.2f}',
                f'{r.scores["amplitude_ssim"]:.2f}',
                f'{r.seconds:.0f}',
            ]
            for r in rows
        ],
    )
    machine = machine_description()
    return (
        '# Quality oracles on a realistic scan\n\n'
        f'Command: `{command}`\n\n'
        f'Scan: realistic benchmark training scan, {args.num_points} points, seed {args.seed}; '
        f'{args.iterations} Adam steps per free fit. Machine: {machine.get("cpu", "")}.\n\n'
        f'{table}\n\n'
        'Excess NLL: mean Poisson negative log-likelihood per pixel above the saturated one '
        '(Poisson noise alone gives about 0.5). Correlations: medians over patches, stitching '
        'crop. SSIM: stitched with the plugin defaults, over the scanned region.\n'
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.oracles',
        description='Where quality is lost: the single-pattern and the overlap ceilings.',
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--num-points', type=int, default=1024, help='points in the scan')
    parser.add_argument('--iterations', type=int, default=300, help='Adam steps per free fit')
    parser.add_argument('--seed', type=int, default=0, help='seed of the scan')
    parser.add_argument('--quick', action='store_true', help='tiny run (figures mean nothing)')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            setattr(args, key, value)
    prepare_output(args.out)
    command = command_line('ptychopinn_plugin.evidence.oracles', argv)
    rows = run_oracles(args.num_points, args.iterations, args.seed)
    (args.out / 'oracles.md').write_text(_report(rows, command, args))
    (args.out / 'oracles.json').write_text(
        json.dumps({'command': command, 'rows': [asdict(r) for r in rows]}, indent=2)
    )
    print((args.out / 'oracles.md').read_text())
    return 0


if __name__ == '__main__':
    raise SystemExit(main())

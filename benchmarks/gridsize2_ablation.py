"""Ablation (issue 26): what keeps a gridsize-2 network from its canvas ceiling on realistic scans.

Trains a gridsize-2 PINN (PyTorch, CPU) on the realistic benchmark's training scan and examines
the network's own output (no refinement) on that same scan, so that generalisation plays no part:

- the training loss's excess over the saturated Poisson likelihood of the training patterns
  (the oracles' unit: the true patches give 0.50 per pattern, 0.95 through the gridsize-2 canvas);
- network-alone amplitude / phase SSIM of the stitched object (the plugin's stitching);
- median patch correlations with the true patches (``evidence.oracles.patch_correlations``);
- stitched with each patch's phase offset, and offset plus linear ramp, taken from the truth
  (oracles: how much of the error is per-patch offsets or ramps);
- stitched after offsets and ramps synchronised from the overlaps alone (no truth), checked first
  on true patches given random ramps.

``--groups random`` is the plugin's grouping (each point with 3 of its 7 nearest neighbours, in
random order); ``--groups square`` replaces it, for this run only, by g x g squares of the 32-wide
raster in row-major order (a fixed group geometry; ``--gridsize 3`` for 3 x 3). ``--mode
supervised`` trains on the training scan's true patches instead of the patterns: the most any loss
that pins the training object (a loss over neighbouring groups, a whole-scan term) could teach the
network. Every run also scores the network alone on the benchmark's held-out test scan.

Usage: ``python benchmarks/gridsize2_ablation.py --groups square --epochs 8`` (about 5 min on 2
cores at NumFiltersScale 1); ``--groups square --mode supervised --epochs 30`` (about 10 min).
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace

import numpy as np
from object_prior_oracle import library_training_scan
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import lsqr
from scipy.spatial import cKDTree

from ptychopinn_plugin.config import (
    ExecutionConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ptychopinn_plugin.core import grouping, physics
from ptychopinn_plugin.core.dataset import group_inputs, prepare_training
from ptychopinn_plugin.core.stitching import Stitcher, extract_patches, scanned_region_mask
from ptychopinn_plugin.evidence.benchmark import score_object
from ptychopinn_plugin.evidence.oracles import patch_correlations
from ptychopinn_plugin.ptychodus_io.realistic import RealisticSpec, make_realistic_scan
from ptychopinn_plugin.workflow import TrainingRun

RASTER_WIDTH = 32
"""Points per row of the realistic benchmark's 1,024-point raster."""


def square_members(neighbors: np.ndarray, num_channels: int, rng) -> np.ndarray:
    """g x g squares of the raster (g = 2 or 3), members sorted (row-major): replaces the
    random draw. Each point starts its square; squares at the raster's last rows and columns
    shift back inside it."""
    del rng
    side = math.isqrt(num_channels)
    num_points = neighbors.shape[0]
    num_rows = num_points // RASTER_WIDTH
    index = np.arange(num_points)
    row, col = index // RASTER_WIDTH, index % RASTER_WIDTH
    row = np.minimum(row, num_rows - side)
    col = np.minimum(col, RASTER_WIDTH - side)
    step_r, step_c = np.divmod(np.arange(side * side), side)
    rows = row[:, None] + step_r[None]
    cols = col[:, None] + step_c[None]
    return rows * RASTER_WIDTH + cols


def stitched_ssims(patches, positions, truth, mask, n_px, crop_px, *, synchronize=True):
    stitcher = Stitcher(truth.shape, n_px, crop_px, synchronize_phase=synchronize)
    stitcher.add(patches, positions)
    object_, _ = stitcher.result()
    scores = score_object(object_, truth, mask)
    return round(scores['amplitude_ssim'], 3), round(scores['phase_ssim'], 3)


def _planes(n_px: int):
    y, x = np.mgrid[:n_px, :n_px] - n_px / 2
    return x, y


def truth_ramps(patches, truth, crop_px):
    """Each patch rotated by the offset and linear phase ramp that best match its true patch."""
    n_px = patches.shape[-1]
    part = slice((n_px - crop_px) // 2, (n_px + crop_px) // 2)
    x, y = _planes(n_px)
    design = np.stack([x[part, part].ravel(), y[part, part].ravel(), np.ones(crop_px**2)], 1)
    out = np.empty_like(patches)
    for k, (p, t) in enumerate(zip(patches, truth, strict=True)):
        ratio = (t * np.conj(p))[part, part]
        offset = np.angle(np.sum(ratio))
        coef, *_ = np.linalg.lstsq(
            design, np.angle(ratio * np.exp(-1j * offset)).ravel(), rcond=None
        )
        out[k] = p * np.exp(1j * (coef[0] * x + coef[1] * y + coef[2] + offset))
    return out


def overlap_ramp_sync(patches, positions, crop_px):
    """Per-patch offsets and ramps from pairwise overlaps (least squares), removed."""
    n_px = patches.shape[-1]
    part = slice((n_px - crop_px) // 2, (n_px + crop_px) // 2)
    crops = patches[:, part, part]
    origin = np.round(positions).astype(int)
    pairs = cKDTree(positions).query_pairs(crop_px * 0.75, output_type='ndarray')
    y, x = np.mgrid[:crop_px, :crop_px] - crop_px / 2
    rows, cols, values, rhs = [], [], [], []
    for i, j in pairs:
        dx, dy = origin[j] - origin[i]
        x0, x1 = max(0, dx), min(crop_px, crop_px + dx)
        y0, y1 = max(0, dy), min(crop_px, crop_px + dy)
        if x1 - x0 < 6 or y1 - y0 < 6:
            continue
        z = crops[i, y0:y1, x0:x1] * np.conj(crops[j, y0 - dy : y1 - dy, x0 - dx : x1 - dx])
        weight = np.sqrt(np.abs(z).ravel())
        centre = np.angle(np.sum(z))
        xs, ys = x[y0:y1, x0:x1].ravel(), y[y0:y1, x0:x1].ravel()
        design = np.stack([xs, ys, np.ones(xs.size)], 1) * weight[:, None]
        target = np.angle(z * np.exp(-1j * centre)).ravel() * weight
        (gx, gy, c), *_ = np.linalg.lstsq(design, target, rcond=None)
        for k, value in enumerate((gx, gy)):
            equation = len(rhs)
            rows += [equation, equation]
            cols += [3 * i + k, 3 * j + k]
            values += [1.0, -1.0]
            rhs.append(value)
        equation = len(rhs)
        rows += [equation] * 4
        cols += [3 * i + 2, 3 * j + 2, 3 * j, 3 * j + 1]
        values += [1.0, -1.0, float(dx), float(dy)]
        rhs.append(centre + c)
    matrix = coo_matrix((values, (rows, cols)), shape=(len(rhs), 3 * len(crops))).tocsr()
    solution = lsqr(matrix, np.array(rhs), damp=1e-3, iter_lim=2000)[0].reshape(-1, 3)
    px, py = _planes(n_px)
    ramps = solution[:, 0, None, None] * px + solution[:, 1, None, None] * py
    return patches * np.exp(-1j * (ramps + solution[:, 2, None, None]))


def network_alone(run, data, gridsize, num_neighbors, truth):
    """The network's own patches for every group of ``data``, their positions, the true patches
    and the stitched amplitude / phase SSIM over the scanned region."""
    n_px = data.pattern_size_px
    crop = default_stitch_crop_px(n_px)
    groups = grouping.group_scan_points(data.positions_px, gridsize, num_neighbors, seed=0)
    scale = physics.dataset_normalization(data.diffraction_amplitude)
    inputs = group_inputs(data, groups, scale)
    offsets = groups.relative_offsets_px.astype(np.float32)
    patches = run.engine.predict(inputs, offsets).reshape(-1, n_px, n_px)
    positions = data.positions_px[groups.member_indices].reshape(-1, 2)
    mask = scanned_region_mask(data.positions_px, truth.shape, n_px, crop)
    true_patches = extract_patches(truth, positions, n_px)
    return (
        patches,
        positions,
        true_patches,
        stitched_ssims(patches, positions, truth, mask, n_px, crop),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--groups', choices=('random', 'square'), default='random')
    parser.add_argument('--gridsize', type=int, choices=(1, 2, 3), default=2)
    parser.add_argument(
        '--mode',
        choices=('pinn', 'supervised'),
        default='pinn',
        help='supervised: the true patches of the training scan are the targets (an upper '
        'bound of what any loss that pins the training object could teach the network)',
    )
    parser.add_argument(
        '--extra-scans',
        type=int,
        default=0,
        help='train also on this many scans of other photographs (never the test pair; '
        "object_prior_oracle's library), to measure what more data does",
    )
    parser.add_argument('--epochs', type=int, default=8)
    parser.add_argument('--n-filters-scale', type=int, default=1)
    args = parser.parse_args()
    if args.groups == 'square':
        grouping._draw_members = square_members  # this run only: the ablation's grouping
    spec = RealisticSpec(num_points=RASTER_WIDTH**2)
    scan = make_realistic_scan('train', spec, seed=0).with_probe_power_of_data()
    model = ModelConfig(
        gridsize=args.gridsize,
        num_neighbors=max(ModelConfig().num_neighbors, args.gridsize**2 - 1),
        n_filters_scale=args.n_filters_scale,
        mode=Mode(args.mode),
    )
    scans = [scan] + [library_training_scan(spec, seed) for seed in range(args.extra_scans)]
    datasets = [s.training_data() for s in scans]
    if model.mode is Mode.SUPERVISED:
        datasets = [
            replace(
                d, ground_truth_patches=extract_patches(s.truth, d.positions_px, d.pattern_size_px)
            )
            for d, s in zip(datasets, scans, strict=True)
        ]
    data = datasets[0]
    config = PluginConfig(
        model=model,
        training=TrainingConfig(num_epochs=args.epochs),
        execution=ExecutionConfig(backend='pytorch', device='cpu'),
    )
    counts = prepare_training([data], ModelConfig(), TrainingConfig()).arrays.count_targets
    counts = counts.astype(np.float64)
    saturated = float(np.mean(counts - counts * np.log(np.maximum(counts, 1e-12))))
    start = time.perf_counter()
    run = TrainingRun(datasets, config)
    for report in run.epochs():
        loss = report.training_loss
        if model.mode is Mode.PINN:
            loss_text = f'training loss excess over saturated {loss - saturated:.3f}'
        else:
            loss_text = f'training loss {loss:.4f}, validation {report.validation_loss}'
        print(f'epoch {report.epoch}: {loss_text} ({time.perf_counter() - start:.0f} s)')
    n_px, crop = model.pattern_size_px, default_stitch_crop_px(model.pattern_size_px)
    test_scan = make_realistic_scan('test', spec, seed=0).with_probe_power_of_data()
    *_, held_out = network_alone(
        run, test_scan.training_data(), args.gridsize, model.num_neighbors, test_scan.truth
    )
    print('network alone on the held-out test scan, amplitude / phase SSIM:', held_out)
    patches, positions, truth, own = network_alone(
        run, data, args.gridsize, model.num_neighbors, scan.truth
    )
    run.release()
    mask = scanned_region_mask(data.positions_px, scan.truth.shape, n_px, crop)

    def ssims(p, **kw):
        return stitched_ssims(p, positions, scan.truth, mask, n_px, crop, **kw)

    print('network alone on its training scan, amplitude / phase SSIM:', own)
    print('patch correlations phase / amplitude:', patch_correlations(patches, truth, crop))
    rotation = np.sum(truth * np.conj(patches), axis=(1, 2))
    offsets_fixed = patches * (rotation / np.maximum(np.abs(rotation), 1e-30))[:, None, None]
    print('stitched with true offsets:', ssims(offsets_fixed, synchronize=False))
    ramps_fixed = truth_ramps(patches, truth, crop)
    print(
        'patch correlations with true offsets and ramps:',
        patch_correlations(ramps_fixed, truth, crop),
    )
    print('stitched with true offsets and ramps:', ssims(ramps_fixed, synchronize=False))
    rng = np.random.default_rng(0)
    x, y = _planes(n_px)
    g = rng.normal(0.0, 0.02, (len(truth), 3))
    ramped = truth * np.exp(1j * (g[:, :1, None] * x + g[:, 1:2, None] * y + 5 * g[:, 2:, None]))
    print(
        'true patches with random ramps (std 0.02 rad/px):',
        ssims(ramped),
        'after overlap synchronisation:',
        ssims(overlap_ramp_sync(ramped, positions, crop)),
    )
    print(
        'network after overlap synchronisation:', ssims(overlap_ramp_sync(patches, positions, crop))
    )


if __name__ == '__main__':
    main()

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
random order); ``--groups square`` replaces it, for this run only, by 2 x 2 squares of the 32-wide
raster in row-major order (a fixed group geometry).

Usage: ``python benchmarks/gridsize2_ablation.py --groups square --epochs 8`` (about 5 min on 2
cores at NumFiltersScale 1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import lsqr
from scipy.spatial import cKDTree

from ptychopinn_plugin.config import (
    ExecutionConfig,
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
    """2 x 2 squares of the raster, members sorted (row-major): replaces the random draw."""
    del rng
    if num_channels != 4:
        raise ValueError('square groups are gridsize 2 only')
    num_points = neighbors.shape[0]
    index = np.arange(num_points)
    row, col = index // RASTER_WIDTH, index % RASTER_WIDTH
    rows = row[:, None] + np.array([0, 0, 1, 1])[None]
    cols = col[:, None] + np.array([0, 1, 0, 1])[None]
    rows = np.where(row[:, None] == num_points // RASTER_WIDTH - 1, rows - 1, rows)
    cols = np.where(col[:, None] == RASTER_WIDTH - 1, cols - 1, cols)
    return np.sort(rows * RASTER_WIDTH + cols, axis=1)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--groups', choices=('random', 'square'), default='random')
    parser.add_argument('--epochs', type=int, default=8)
    parser.add_argument('--n-filters-scale', type=int, default=1)
    args = parser.parse_args()
    if args.groups == 'square':
        grouping._draw_members = square_members  # this run only: the ablation's grouping
    spec = RealisticSpec(num_points=RASTER_WIDTH**2)
    scan = make_realistic_scan('train', spec, seed=0).with_probe_power_of_data()
    data = scan.training_data()
    model = ModelConfig(gridsize=2, n_filters_scale=args.n_filters_scale)
    config = PluginConfig(
        model=model,
        training=TrainingConfig(num_epochs=args.epochs),
        execution=ExecutionConfig(backend='pytorch', device='cpu'),
    )
    counts = prepare_training([data], ModelConfig(), TrainingConfig()).arrays.count_targets
    counts = counts.astype(np.float64)
    saturated = float(np.mean(counts - counts * np.log(np.maximum(counts, 1e-12))))
    start = time.perf_counter()
    run = TrainingRun([data], config)
    for report in run.epochs():
        print(
            f'epoch {report.epoch}: training loss excess over saturated '
            f'{report.training_loss - saturated:.3f} ({time.perf_counter() - start:.0f} s)'
        )
    n_px, crop = model.pattern_size_px, default_stitch_crop_px(model.pattern_size_px)
    groups = grouping.group_scan_points(data.positions_px, 2, model.num_neighbors, seed=0)
    scale = physics.dataset_normalization(data.diffraction_amplitude)
    inputs = group_inputs(data, groups, scale)
    offsets = groups.relative_offsets_px.astype(np.float32)
    patches = run.engine.predict(inputs, offsets).reshape(-1, n_px, n_px)
    run.release()
    positions = data.positions_px[groups.member_indices].reshape(-1, 2)
    truth = extract_patches(scan.truth, positions, n_px)
    mask = scanned_region_mask(data.positions_px, scan.truth.shape, n_px, crop)

    def ssims(p, **kw):
        return stitched_ssims(p, positions, scan.truth, mask, n_px, crop, **kw)

    print('network alone on its training scan, amplitude / phase SSIM:', ssims(patches))
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

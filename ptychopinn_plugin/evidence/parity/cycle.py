"""Part 2: train -> save -> load -> infer through the real ``ptychodus -b``, and cross-loading.

Each backend trains on one Ptychodus-simulated scan with ``ptychodus -b train``; every archive is
reconstructed by every backend with ``ptychodus -b reconstruct`` on a scan of another object
(``ptychodus_io/simulation.py``, ``ptychodus_io/batch.py``). The two products of one archive must
agree.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...config import Mode, default_stitch_crop_px
from ...core import metrics
from ...core.stitching import scanned_region_mask
from ..report import Status, reconstruction_seconds, save_object_figure
from .cases import Case, relative_error

__all__ = [
    'OBJECT_RTOL',
    'CycleResult',
    'CycleRun',
    'batch_cycle',
    'cycle_settings',
]

OBJECT_RTOL = 1e-4
"""One archive reconstructed by both backends through ``ptychodus -b reconstruct``: the stitched
objects, relative to the peak modulus on the scanned region (stitching averages patches, so the
patch bound carries over; products are stored as complex64)."""


@dataclass
class CycleRun:
    """One ``ptychodus -b`` call of the cycle."""

    action: str
    train_backend: str
    backend: str
    returncode: int
    wall_s: float
    reconstruction_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    note: str = ''


@dataclass
class CycleResult:
    """Train with each backend, reconstruct each archive with each backend."""

    case: Case
    num_patterns: int
    epochs: int
    guess_scores: dict[str, float]
    runs: list[CycleRun]
    cross_rel: dict[str, float]
    """Per training backend: max |object_pytorch - object_tensorflow| / max |object| on the
    scanned region, both reconstructed from that backend's archive."""

    def status(self, train_backend: str) -> Status:
        runs = [r for r in self.runs if r.train_backend == train_backend]
        if not runs or any(r.returncode != 0 or r.note for r in runs):
            return Status.FAIL
        return Status.PASS

    @property
    def cross_status(self) -> Status:
        if len(self.cross_rel) < 2:
            return Status.FAIL
        return Status.PASS if max(self.cross_rel.values()) < OBJECT_RTOL else Status.FAIL


def _cycle_spec(pattern_size_px: int, side: int):
    from ...ptychodus_io.simulation import ScanSpec

    return ScanSpec(
        pattern_size_px=pattern_size_px,
        step_px=round(0.22 * pattern_size_px),
        columns=side,
        rows=side,
        num_photons=1e6,
    )


def cycle_settings(case: Case, backend: str, epochs: int) -> dict[str, dict[str, object]]:
    """``settings.ini`` groups of one cycle run (Ptychodus's names, spec section 7.2)."""
    return {
        'Processing': {'Algorithm': f'ptychopinn_{case.mode.value}'},
        'PtychoPINNModel': {'GridSize': case.gridsize, 'NumFiltersScale': 1},
        'PtychoPINNTraining': {'NumEpochs': epochs, 'BatchSize': 16, 'Seed': 0},
        'PtychoPINNInference': {'NumNearestNeighbors': 4 if case.gridsize > 1 else 7},
        'PtychoPINN': {'Backend': backend, 'Device': 'cpu'},
    }


def batch_cycle(
    case: Case,
    out: Path,
    *,
    epochs: int,
    side: int = 12,
    backends: tuple[str, ...] = ('pytorch', 'tensorflow'),
) -> CycleResult:
    """Train on one Ptychodus-simulated scan and reconstruct another, for every backend pair."""
    from ptychodus.api.io import load_product

    from ...ptychodus_io.batch import run_ptychodus
    from ...ptychodus_io.simulation import make_workflow_scan, write_workflow_scan

    spec = _cycle_spec(case.pattern_size_px, side)
    train_scan, test_scan = make_workflow_scan(0, spec), make_workflow_scan(1, spec)
    crop = default_stitch_crop_px(case.pattern_size_px)
    mask = scanned_region_mask(
        test_scan.positions_px, test_scan.truth.shape, case.pattern_size_px, crop
    )
    guess = metrics.compare_objects(test_scan.initial_guess, test_scan.truth, mask)
    runs: list[CycleRun] = []
    objects: dict[tuple[str, str], np.ndarray] = {}
    supervised = case.mode is Mode.SUPERVISED
    for train_backend in backends:
        base = out / f'train-{train_backend}'
        train_dir = write_workflow_scan(
            base / 'input',
            train_scan,
            cycle_settings(case, train_backend, epochs),
            object_is_truth=supervised,
        )
        trained = run_ptychodus('train', train_dir, base / 'output')
        note = '' if trained.returncode == 0 else _tail(trained.log)
        if not note and f'with the {train_backend} backend' not in trained.log:
            note = f'the training log does not name the {train_backend} backend'
        runs.append(
            CycleRun(
                'train',
                train_backend,
                train_backend,
                trained.returncode,
                trained.seconds,
                note=note,
            )
        )
        model = base / 'output' / 'model.zip'
        if not model.is_file():
            continue
        for backend in backends:
            directory = write_workflow_scan(
                out / f'reconstruct-{train_backend}-on-{backend}' / 'input',
                test_scan,
                cycle_settings(case, backend, epochs),
            )
            shutil.copyfile(model, directory / 'model.zip')
            output = directory.parent / 'output'
            done = run_ptychodus('reconstruct', directory, output)
            run = CycleRun(
                'reconstruct',
                train_backend,
                backend,
                done.returncode,
                done.seconds,
                reconstruction_s=reconstruction_seconds(done.log),
            )
            products = sorted(output.glob('product.*.h5'))
            expected = f'with the {backend} backend on device cpu; model trained by {train_backend}'
            if done.returncode != 0 or not products:
                run.note = _tail(done.log) or 'no product written'
            elif expected not in done.log:
                run.note = f'the log lacks "{expected}"'
            else:
                estimate = np.asarray(load_product(products[-1]).object_.get_layer(0))
                objects[(train_backend, backend)] = estimate
                run.scores = metrics.compare_objects(estimate, test_scan.truth, mask)
            runs.append(run)
    cross = {}
    for train_backend in backends:
        pair = [objects.get((train_backend, b)) for b in backends]
        if len(pair) == 2 and all(p is not None for p in pair):
            cross[train_backend] = relative_error(pair[1][mask], pair[0][mask])
    if objects:
        panels = [('truth', test_scan.truth * mask)]
        panels += [
            (f'{t} model\non {b}', metrics.align_complex(o, test_scan.truth, mask) * mask)
            for (t, b), o in sorted(objects.items())
        ]
        save_object_figure(
            out / 'cycle_objects.png', panels, suptitle=f'ptychodus -b cycle, {case.label}'
        )
    return CycleResult(case, len(test_scan.positions_px), epochs, guess, runs, cross)


def _tail(log: str, lines: int = 3) -> str:
    return ' / '.join(line.strip() for line in log.strip().splitlines()[-lines:])

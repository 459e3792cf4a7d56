"""TensorFlow vs PyTorch parity: same weights, the Ptychodus batch cycle, quality and speed.

``python -m ptychopinn_plugin.evidence.parity --out DIR`` writes ``DIR/parity.md`` (a status table
with every row PASS, FAIL with the measured reason, or NOT RUN), ``DIR/parity.json`` (every number)
and PNG figures. Four parts:

1. Same canonical weights in both engines (``core/weights.py``), same simulated inputs: patches,
   predicted amplitudes, and each engine's forward model against the NumPy oracle
   (``core/physics.py``), for N = 64 and 128, gridsize 1 and 2, PINN and Supervised.
2. The full train -> save -> load -> infer cycle through the real ``ptychodus -b train`` and
   ``ptychodus -b reconstruct`` (``ptychodus_adapter/workflow_dir.py``) for each backend, and
   every archive reconstructed by both backends (cross-loading): the two products of one archive
   must agree.
3. Both backends trained from the same data and seed, several seeds: PSNR / SSIM of each on a
   held-out object and their difference, with the spread.
4. Seconds per training epoch and inference patterns/s side by side (from the runs of part 3).

Defaults finish in well under 30 minutes on two CPU cores; ``--cycle-cases`` and
``--quality-cases`` (e.g. ``64:2:pinn,128:1:supervised``), ``--seeds`` and ``--epochs`` scale up.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import (
    Backend,
    ExecutionConfig,
    InferenceConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ..core import metrics, physics, simulate
from ..core.dataset import prepare_training
from ..core.stitching import scanned_region_mask
from ..core.weights import HEAD_INIT_GAIN, LOG_INTENSITY_SCALE, PROBE_IMAG, PROBE_REAL
from ..core.weights import initial_weights as canonical_initial_weights
from .report import (
    Spread,
    Status,
    load_note,
    machine_description,
    markdown_table,
    pyplot,
    reconstruction_seconds,
    save_object_figure,
    spread,
)

logger = logging.getLogger('ptychopinn_plugin.evidence.parity')

__all__ = [
    'AMPLITUDE_RTOL',
    'FORWARD_RTOL',
    'OBJECT_RTOL',
    'PATCH_RTOL',
    'PSNR_MARGIN_DB',
    'SPEED_RATIO_LIMIT',
    'QUALITY_SEEDS',
    'SSIM_MARGIN',
    'Case',
    'WeightsParity',
    'main',
    'same_weights_parity',
]

FORWARD_RTOL = 1e-5
"""Each engine's float32 forward model (probe, canvas, far field, intensity scale) against the
float64 NumPy oracle applied to the same patches, relative to the peak amplitude: float32 rounding
of an N = 128 FFT accumulates to a few 1e-6 (the engine contract tests use the same bound)."""
PATCH_RTOL = 1e-4
"""Patches of the two engines from the same weights, relative to the peak patch modulus: a dozen
float32 convolution layers whose kernels sum in different orders differ by about 1e-7 per layer
and compound through the ReLUs (measured below 4e-7). The bound is what one real defect moves:
one layer's kernels scaled by 1 + 1e-3 move the patches by 9e-5 (measured at N = 64)."""
AMPLITUDE_RTOL = 1e-5
"""Predicted diffraction amplitudes of the two engines (network plus forward model) from the same
weights, relative to the peak: the patch error (measured below 4e-7) carried through a unitary
far field plus float32 FFT rounding (a few 1e-6 at N = 128). Tighter than the patch bound because
the amplitude is less sensitive: one layer's kernels scaled by 1 + 1e-2 move the patches by 9e-4
but the amplitudes by only 1e-4 (measured at N = 64)."""
OBJECT_RTOL = 1e-4
"""One archive reconstructed by both backends through ``ptychodus -b reconstruct``: the stitched
objects, relative to the peak modulus on the scanned region (stitching averages patches, so the
patch bound carries over; products are stored as complex64)."""
PSNR_MARGIN_DB = 1.0
"""Largest mean PSNR difference (amplitude or phase, over seeds) between the backends trained from
the same data and seed that still counts as parity: the engines visit the same batches in the
same order from the same weights, but training amplifies float rounding, so single runs differ;
1 dB is below what a reader can see in an image
and below the gain of any training change this project reports."""
SSIM_MARGIN = 0.05
"""Largest mean SSIM difference (amplitude or phase, over seeds) that still counts as parity, for
the same reason as :data:`PSNR_MARGIN_DB`; the SSIM scores of this project's short trainings are
reported to two decimals."""
QUALITY_SEEDS = (0, 1, 2, 3, 4)
"""Seeds of the quality comparison. The per-seed phase SSIM difference between the backends
scatters with a standard deviation of 0.068 (measured over these five seeds, N = 64, 8 epochs),
so the mean over three seeds has a standard error of 0.039, close to :data:`SSIM_MARGIN` itself,
and the comparison would mostly measure the seeds; five bring it to 0.030."""
SPEED_RATIO_LIMIT = 2.0
"""Largest ratio of the slower to the faster engine (seconds per epoch, inference patterns/s):
both run the same network, so a larger gap means one engine does extra work (retracing a graph,
copying tensors); timings on a shared CPU scatter by up to 30 %."""
SELF_CHECK = ('encoder.0.conv1.kernel', 1e-2)
"""Canonical weight scaled by 1 + 1e-2 in the TensorFlow engine only, to show the comparison
fails on a real difference (measured: patches 8.9e-4, amplitudes 9.7e-5, both above bound)."""
GROUPS_PER_CASE = 6
"""Groups predicted per same-weights case: enough to cover several scan positions and offsets."""


@dataclass(frozen=True)
class Case:
    """One architecture: pattern size, gridsize and training mode."""

    pattern_size_px: int
    gridsize: int
    mode: Mode

    @classmethod
    def parse(cls, text: str) -> Case:
        """``'64:2:pinn'`` -> Case(64, 2, Mode.PINN)."""
        try:
            size, gridsize, mode = text.split(':')
            return cls(int(size), int(gridsize), Mode(mode))
        except ValueError as exc:
            raise SystemExit(
                f'cannot read the case {text!r}: write N:GRIDSIZE:MODE, e.g. 64:2:pinn or '
                f'128:1:supervised ({exc})'
            ) from exc

    @property
    def label(self) -> str:
        return f'N={self.pattern_size_px}, gridsize {self.gridsize}, {self.mode.value}'

    def model(self, n_filters_scale: int = 2) -> ModelConfig:
        return ModelConfig(
            mode=self.mode,
            pattern_size_px=self.pattern_size_px,
            gridsize=self.gridsize,
            num_neighbors=4 if self.gridsize > 1 else 7,
            n_filters_scale=n_filters_scale,
        )


ALL_CASES = tuple(
    Case(n, g, m) for n in (64, 128) for g in (1, 2) for m in (Mode.PINN, Mode.SUPERVISED)
)


# ----------------------------------------------------------------------------- 1. same weights


@dataclass(frozen=True)
class WeightsParity:
    """Errors between the engines (and against the NumPy oracle) for one case."""

    case: Case
    num_parameters: int
    patch_max_abs: float
    patch_max_rel: float
    amplitude_max_abs: float
    amplitude_max_rel: float
    forward_rel: dict[str, float]
    seconds: float

    @property
    def status(self) -> Status:
        ok = (
            self.patch_max_rel < PATCH_RTOL
            and self.amplitude_max_rel < AMPLITUDE_RTOL
            and all(value < FORWARD_RTOL for value in self.forward_rel.values())
        )
        return Status.PASS if ok else Status.FAIL


def parity_weights(model: ModelConfig, probe: np.ndarray, log_scale: float, seed: int):
    """Canonical initial weights with the output heads at full Glorot scale.

    The shipped initialisation shrinks the heads by ``HEAD_INIT_GAIN`` so that an untrained
    network predicts a nearly flat patch; here they are scaled back so that the patches use the
    whole amplitude and phase range and every layer's error shows in the output.
    """
    weights = canonical_initial_weights(model, probe, log_scale, seed)
    for name, value in weights.items():
        if name.split('.')[0].endswith(('_head', '_border')) and name.endswith('kernel'):
            weights[name] = (value / np.float32(HEAD_INIT_GAIN)).astype(np.float32)
    return weights


def parity_inputs(
    model: ModelConfig, seed: int = 0, num_groups: int = GROUPS_PER_CASE
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Normalised inputs (G, C, N, N), offsets (G, C, 2), normalised probe and log intensity scale
    of a simulated scan, prepared by the same core code as a training."""
    scan = simulate.make_scan(
        'camera', num_patterns=36, pattern_size_px=model.pattern_size_px, seed=seed
    )
    prepared = prepare_training(
        [scan.data], model, TrainingConfig(validation_fraction=0.0, seed=seed)
    )
    arrays = prepared.arrays
    rows = np.linspace(0, arrays.num_groups - 1, num_groups).astype(int)
    return (
        arrays.inputs[rows],
        arrays.offsets_px[rows],
        prepared.normalized_probe,
        math.log(prepared.normalization.initial_intensity_scale),
    )


def same_weights_parity(
    case: Case,
    *,
    seed: int = 0,
    n_filters_scale: int = 2,
    num_groups: int = GROUPS_PER_CASE,
    tensorflow_perturbation: tuple[str, float] | None = None,
) -> WeightsParity:
    """Load the same canonical weights into both engines and compare what they predict.

    ``tensorflow_perturbation = (name, relative_step)`` multiplies one canonical weight by
    ``1 + relative_step`` in the TensorFlow engine only: the self-check that shows the comparison
    detects a real difference.
    """
    from ..core.weights import count_parameters
    from ..engines import get_engine

    start = time.perf_counter()
    model = case.model(n_filters_scale)
    inputs, offsets, probe, log_scale = parity_inputs(model, seed, num_groups)
    weights = parity_weights(model, probe, log_scale, seed)
    chain = model.model_copy(update={'object_big': False})  # predict() already used the canvas
    patches, amplitudes, forward_rel = {}, {}, {}
    for backend in (Backend.PYTORCH, Backend.TENSORFLOW):
        loaded = dict(weights)
        if backend is Backend.TENSORFLOW and tensorflow_perturbation is not None:
            name, step = tensorflow_perturbation
            loaded[name] = (weights[name] * np.float32(1.0 + step)).astype(np.float32)
        engine = get_engine(backend)(model, ExecutionConfig(backend=backend, device='cpu'), loaded)
        try:
            patches[backend] = engine.predict(inputs, offsets)
            amplitudes[backend] = engine.predict_amplitude(inputs, offsets)
            engine_probe = weights[PROBE_REAL] + 1j * weights[PROBE_IMAG]
            oracle = physics.forward_amplitude(
                patches[backend],
                offsets,
                engine_probe,
                chain,
                float(np.exp(weights[LOG_INTENSITY_SCALE])),
            )
            forward_rel[backend.value] = _relative(amplitudes[backend], oracle)
        finally:
            engine.release()
    torch_patches, tf_patches = patches[Backend.PYTORCH], patches[Backend.TENSORFLOW]
    torch_amp, tf_amp = amplitudes[Backend.PYTORCH], amplitudes[Backend.TENSORFLOW]
    return WeightsParity(
        case=case,
        num_parameters=count_parameters(model),
        patch_max_abs=float(np.max(np.abs(torch_patches - tf_patches))),
        patch_max_rel=_relative(torch_patches, tf_patches),
        amplitude_max_abs=float(np.max(np.abs(torch_amp - tf_amp))),
        amplitude_max_rel=_relative(torch_amp, tf_amp),
        forward_rel=forward_rel,
        seconds=time.perf_counter() - start,
    )


def _relative(value: np.ndarray, reference: np.ndarray) -> float:
    """max |value - reference| / max |reference|."""
    peak = float(np.max(np.abs(reference)))
    if peak == 0:
        raise ValueError('the reference is zero everywhere; no relative error can be formed')
    return float(np.max(np.abs(np.asarray(value) - reference)) / peak)


# ------------------------------------------------------------- 2. the Ptychodus batch cycle


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
    from ..ptychodus_io.simulation import ScanSpec

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
        'PtychoPINNTraining': {'NumEpochs': epochs, 'BatchSize': 16},
        'PtychoPINNInference': {'NumNearestNeighbors': 4 if case.gridsize > 1 else 7},
        'PtychoPINN': {'Backend': backend, 'Device': 'cpu', 'Seed': 0},
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

    from ..ptychodus_io.batch import run_ptychodus
    from ..ptychodus_io.simulation import make_workflow_scan
    from ..ptychodus_io.simulation import write_workflow_scan as write_workflow_directory

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
        train_dir = write_workflow_directory(
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
            directory = write_workflow_directory(
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
            cross[train_backend] = _relative(pair[1][mask], pair[0][mask])
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


# ---------------------------------------------------------- 3 + 4. quality and speed, in process


@dataclass
class BackendRun:
    """One in-process training and reconstruction."""

    backend: str
    seed: int
    epoch_s: float
    inference_patterns_per_s: float
    scores: dict[str, float]


@dataclass
class QualityParity:
    case: Case
    epochs: int
    num_train_patterns: int
    num_test_patterns: int
    runs: list[BackendRun]

    def values(self, backend: str, key: str) -> list[float]:
        return [r.scores[key] for r in self.runs if r.backend == backend]

    def difference(self, key: str) -> Spread:
        """PyTorch minus TensorFlow, per seed."""
        torch_values = {r.seed: r.scores[key] for r in self.runs if r.backend == 'pytorch'}
        tf_values = {r.seed: r.scores[key] for r in self.runs if r.backend == 'tensorflow'}
        seeds = sorted(set(torch_values) & set(tf_values))
        return spread([torch_values[s] - tf_values[s] for s in seeds])

    def status(self, key: str) -> Status:
        margin = PSNR_MARGIN_DB if key.endswith('_db') else SSIM_MARGIN
        return Status.PASS if abs(self.difference(key).mean) <= margin else Status.FAIL

    def speed(self, backend: str, attribute: str) -> Spread:
        return spread([getattr(r, attribute) for r in self.runs if r.backend == backend])


QUALITY_KEYS = ('amplitude_psnr_db', 'phase_psnr_db', 'amplitude_ssim', 'phase_ssim')


def quality_parity(
    case: Case,
    *,
    seeds: list[int],
    epochs: int,
    num_train_patterns: int = 256,
    num_test_patterns: int = 144,
    out: Path | None = None,
) -> QualityParity:
    """Train both backends from the same data and seed; score each on a held-out object."""
    from ..workflow import TrainingRun

    model = case.model(n_filters_scale=1)
    runs: list[BackendRun] = []
    for seed in seeds:
        train = simulate.make_scan('smooth', num_train_patterns, case.pattern_size_px, seed=seed)
        test = simulate.make_scan(
            'smooth', num_test_patterns, case.pattern_size_px, seed=1000 + seed
        )
        crop = default_stitch_crop_px(case.pattern_size_px)
        mask = scanned_region_mask(
            test.data.positions_px, test.object_.shape, case.pattern_size_px, crop
        )
        objects = {}
        for backend in ('pytorch', 'tensorflow'):
            config = PluginConfig(
                model=model,
                training=TrainingConfig(num_epochs=epochs, batch_size=16, seed=seed),
                execution=ExecutionConfig(backend=backend, device='cpu'),
            )
            training = TrainingRun([train.data], config)
            reports = list(training.epochs())
            archive = training.archive()
            training.release()
            rate, estimate = _timed_reconstruction(archive, test, config.execution)
            objects[backend] = estimate
            runs.append(
                BackendRun(
                    backend=backend,
                    seed=seed,
                    epoch_s=float(np.median([r.seconds for r in reports])),
                    inference_patterns_per_s=rate,
                    scores=metrics.compare_objects(estimate, test.object_, mask),
                )
            )
            logger.info('%s seed %d %s: %s', case.label, seed, backend, runs[-1].scores)
        if out is not None and seed == seeds[0]:
            panels = [('truth', test.object_ * mask)] + [
                (b, metrics.align_complex(o, test.object_, mask) * mask) for b, o in objects.items()
            ]
            save_object_figure(
                out / f'quality_{case.pattern_size_px}_{case.gridsize}_{case.mode.value}.png',
                panels,
                suptitle=f'{case.label}, seed {seed}, {epochs} epochs, held-out object',
            )
    return QualityParity(case, epochs, num_train_patterns, num_test_patterns, runs)


def _timed_reconstruction(archive, scan, execution: ExecutionConfig) -> tuple[float, np.ndarray]:
    """Patterns/s of a warm full reconstruction (second pass) and the object."""
    from ..workflow import reconstruct

    estimate = None
    rate = float('nan')
    for _ in range(2):  # the first pass builds graphs and warms allocators
        start = time.perf_counter()
        for step in reconstruct(
            archive,
            scan.data,
            execution=execution,
            inference=InferenceConfig(),
            object_shape=scan.object_.shape,
        ):
            if step.finished:
                estimate = step.object_
        rate = scan.data.num_patterns / (time.perf_counter() - start)
    return rate, estimate


# ------------------------------------------------------------------------------------ report


def _fmt(value: float) -> str:
    return f'{value:.2e}'


def weights_rows(results: list[WeightsParity]) -> list[list[object]]:
    rows = []
    for r in results:
        forward = ', '.join(f'{k} {_fmt(v)}' for k, v in r.forward_rel.items())
        reason = '' if r.status is Status.PASS else ' (exceeds the tolerance)'
        rows.append(
            [
                r.case.label,
                f'{r.num_parameters:,}',
                f'{_fmt(r.patch_max_abs)} / {_fmt(r.patch_max_rel)}',
                f'{_fmt(r.amplitude_max_abs)} / {_fmt(r.amplitude_max_rel)}',
                forward,
                f'{PATCH_RTOL:.0e}, {AMPLITUDE_RTOL:.0e}, {FORWARD_RTOL:.0e}',
                f'{r.status.value}{reason}',
            ]
        )
    return rows


def cycle_rows(cycle: CycleResult) -> list[list[object]]:
    rows = []
    for run in cycle.runs:
        if run.action == 'train':
            what = f'ptychodus -b train ({run.backend}, {cycle.epochs} epochs)'
            result = f'exit {run.returncode}, {run.wall_s:.1f} s wall (start-up included)'
        else:
            what = f'ptychodus -b reconstruct: {run.train_backend} model on {run.backend}'
            if run.scores:
                result = (
                    f'exit {run.returncode}; phase SSIM {run.scores["phase_ssim"]:.2f}, '
                    f'amplitude PSNR {run.scores["amplitude_psnr_db"]:.1f} dB; '
                    f'Reconstruction time {run.reconstruction_s or float("nan"):.2f} s'
                )
            else:
                result = f'exit {run.returncode}'
        status = Status.PASS if run.returncode == 0 and not run.note else Status.FAIL
        rows.append(
            [cycle.case.label, what, result, f'{status.value}{": " + run.note if run.note else ""}']
        )
    for train_backend, value in cycle.cross_rel.items():
        status = Status.PASS if value < OBJECT_RTOL else Status.FAIL
        rows.append(
            [
                cycle.case.label,
                f'cross-loading: {train_backend} model, pytorch vs tensorflow product',
                f'max rel. difference {_fmt(value)} (tolerance {OBJECT_RTOL:.0e})',
                status.value,
            ]
        )
    if len(cycle.cross_rel) < 2:
        rows.append(
            [cycle.case.label, 'cross-loading', 'not every pair reconstructed', Status.FAIL.value]
        )
    return rows


def quality_rows(quality: QualityParity) -> list[list[object]]:
    rows = []
    for key in QUALITY_KEYS:
        margin = PSNR_MARGIN_DB if key.endswith('_db') else SSIM_MARGIN
        diff = quality.difference(key)
        status = quality.status(key)
        reason = (
            '' if status is Status.PASS else f' (|mean difference| {abs(diff.mean):.3g} > {margin})'
        )
        rows.append(
            [
                quality.case.label,
                key.replace('_', ' ').replace(' db', ' (dB)'),
                str(spread(quality.values('pytorch', key))),
                str(spread(quality.values('tensorflow', key))),
                str(diff),
                f'{margin}',
                f'{status.value}{reason}',
            ]
        )
    return rows


def speed_rows(quality: QualityParity) -> list[list[object]]:
    rows = []
    for attribute, label in (
        ('epoch_s', 's / epoch'),
        ('inference_patterns_per_s', 'inference patterns/s'),
    ):
        torch_value = quality.speed('pytorch', attribute)
        tf_value = quality.speed('tensorflow', attribute)
        ratio = max(torch_value.mean, tf_value.mean) / min(torch_value.mean, tf_value.mean)
        status = Status.PASS if ratio <= SPEED_RATIO_LIMIT else Status.FAIL
        rows.append(
            [
                quality.case.label,
                label,
                str(torch_value),
                str(tf_value),
                f'{ratio:.2f}',
                f'{SPEED_RATIO_LIMIT}',
                status.value,
            ]
        )
    return rows


def write_report(
    out: Path,
    weights: list[WeightsParity],
    self_check: WeightsParity,
    cycles: list[CycleResult],
    qualities: list[QualityParity],
    *,
    command: str,
    seconds: float,
    load_at_start: str,
) -> Path:
    """``parity.md`` (tables), ``parity.json`` (all numbers) and the figures."""
    machine = machine_description()
    statuses = [w.status for w in weights]
    detected = self_check.status is Status.FAIL
    statuses.append(Status.PASS if detected else Status.FAIL)
    for cycle in cycles:
        statuses += [cycle.status(b) for b in {r.train_backend for r in cycle.runs}]
        statuses.append(cycle.cross_status)
    for quality in qualities:
        statuses += [quality.status(k) for k in QUALITY_KEYS]
        statuses += [Status(row[-1]) for row in speed_rows(quality)]
    failed = sum(s is not Status.PASS for s in statuses)
    lines = [
        '# TensorFlow vs PyTorch parity',
        '',
        f'Command: `{command}`  ',
        f'Finished in {seconds / 60:.1f} min; machine {load_at_start} at the start, '
        f'{load_note()} at the end.  ',
        'Machine: ' + ', '.join(f'{k} {v}' for k, v in machine.items()) + '.',
        '',
        f'**Overall: {len(statuses) - failed} of {len(statuses)} rows PASS'
        + (f', {failed} FAIL.**' if failed else '.**'),
        '',
        '## 1. Same canonical weights -> same patches',
        '',
        'Both engines load one set of canonical weights (`core/weights.py`; initial weights with '
        'the output heads at full Glorot scale so that the patches span the whole amplitude and '
        'phase range) and predict the same groups of a simulated scan. Errors are max |a - b| / '
        'max |b|, patches are complex, amplitudes are the predicted diffraction amplitudes; the '
        'forward model column compares each engine with the float64 NumPy oracle '
        "(`core/physics.py`) applied to that engine's own patches.",
        '',
        markdown_table(
            [
                'case',
                'parameters',
                'patches max abs / rel',
                'amplitudes max abs / rel',
                'forward model vs oracle (rel)',
                'tolerances (patch, amplitude, forward)',
                'status',
            ],
            weights_rows(weights),
        ),
        '',
        f'Self-check (the comparison can fail): `{SELF_CHECK[0]}` scaled by 1 + '
        f'{SELF_CHECK[1]:g} in the TensorFlow engine only gives patches '
        f'{_fmt(self_check.patch_max_rel)} and amplitudes {_fmt(self_check.amplitude_max_rel)} '
        f'relative error: {"detected, PASS" if detected else "NOT detected, FAIL"}.',
        '',
    ]
    if cycles:
        lines += [
            '## 2. train -> save -> load -> infer through `ptychodus -b`, and cross-loading',
            '',
            "Two scans of different smooth random objects simulated by Ptychodus's own forward "
            'model (1e6 photons per pattern); `ptychodus -b train` on the first with each backend, '
            '`ptychodus -b reconstruct` of the second with every archive on every backend. '
            'Scores over the scanned region after removing the global complex scale. '
            '"Reconstruction time" is Ptychodus\'s own log line.',
            '',
            markdown_table(
                ['case', 'step', 'measured', 'status'],
                [row for cycle in cycles for row in cycle_rows(cycle)],
            ),
            '',
        ]
    if qualities:
        lines += [
            '## 3. Quality, trained from the same data and seed',
            '',
            'Per seed: both backends train on one simulated scan (`core/simulate.make_scan`, '
            'smooth random object, aberrated probe, 1e6 photons) with the same seed and '
            'reconstruct a scan of another object; difference = PyTorch - TensorFlow per seed, '
            'mean +- sample standard deviation over seeds. Margins: '
            f'{PSNR_MARGIN_DB} dB PSNR, {SSIM_MARGIN} SSIM (see `evidence/parity.py`).',
            '',
        ]
        for quality in qualities:
            seeds = sorted({r.seed for r in quality.runs})
            lines.append(
                f'- {quality.case.label}: {quality.num_train_patterns} training patterns, '
                f'{quality.epochs} epochs, NumFiltersScale 1, {quality.num_test_patterns} '
                f'held-out patterns, seeds {seeds}.'
            )
        lines += [
            '',
            markdown_table(
                ['case', 'metric', 'PyTorch', 'TensorFlow', 'difference', 'margin', 'status'],
                [row for q in qualities for row in quality_rows(q)],
            ),
            '',
            '## 4. Speed side by side',
            '',
            'Median seconds per training epoch and warm full-inference patterns/s (grouping, '
            'network, stitching; second pass) of the runs above, mean +- std over seeds. '
            f'Status: the slower engine is within {SPEED_RATIO_LIMIT}x of the faster.',
            '',
            markdown_table(
                ['case', 'quantity', 'PyTorch', 'TensorFlow', 'ratio', 'limit', 'status'],
                [row for q in qualities for row in speed_rows(q)],
            ),
            '',
        ]
    lines += ['Figures: ' + ', '.join(sorted(p.name for p in out.glob('*.png'))), '']
    path = out / 'parity.md'
    path.write_text('\n'.join(lines))
    (out / 'parity.json').write_text(
        json.dumps(
            {
                'machine': machine,
                'command': command,
                'seconds': seconds,
                'weights': [_jsonable(asdict(w)) for w in weights],
                'self_check': _jsonable(asdict(self_check)),
                'cycles': [_jsonable(asdict(c)) for c in cycles],
                'quality': [_jsonable(asdict(q)) for q in qualities],
            },
            indent=1,
        )
    )
    return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mode):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def weights_figure(path: Path, results: list[WeightsParity]) -> None:
    """Relative errors per case (log scale) with the tolerances."""
    plt = pyplot()
    if plt is None or not results:
        return
    fig, axis = plt.subplots(figsize=(8, 3.6))
    x = np.arange(len(results))
    for offset, (label, values, tolerance) in enumerate(
        (
            ('patches', [r.patch_max_rel for r in results], PATCH_RTOL),
            ('amplitudes', [r.amplitude_max_rel for r in results], AMPLITUDE_RTOL),
            (
                'forward vs oracle (worst engine)',
                [max(r.forward_rel.values()) for r in results],
                FORWARD_RTOL,
            ),
        )
    ):
        bars = axis.bar(x + (offset - 1) * 0.27, values, 0.27, label=label)
        axis.axhline(tolerance, color=bars.patches[0].get_facecolor(), linestyle='--', linewidth=1)
    axis.set_yscale('log')
    axis.set_xticks(x, [r.case.label.replace(', ', '\n') for r in results], fontsize=7)
    axis.set_ylabel('max relative error')
    axis.set_title('same weights, PyTorch vs TensorFlow (dashed: tolerances)', fontsize=9)
    axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


def quality_figure(path: Path, qualities: list[QualityParity]) -> None:
    """Per-seed phase and amplitude SSIM of both backends."""
    plt = pyplot()
    if plt is None or not qualities:
        return
    fig, axes = plt.subplots(1, len(qualities), figsize=(3.6 * len(qualities), 3.2), squeeze=False)
    for axis, quality in zip(axes[0], qualities, strict=True):
        for marker, key in (('o', 'phase_ssim'), ('s', 'amplitude_ssim')):
            for color, backend in (('tab:red', 'pytorch'), ('tab:blue', 'tensorflow')):
                seeds = [r.seed for r in quality.runs if r.backend == backend]
                axis.plot(
                    seeds,
                    quality.values(backend, key),
                    marker,
                    color=color,
                    label=f'{backend} {key}',
                )
        axis.set_title(quality.case.label, fontsize=8)
        axis.set_xlabel('seed')
        axis.set_ylabel('SSIM')
    axes[0, 0].legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


# -------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.parity', description=__doc__.splitlines()[0]
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument(
        '--weights-cases',
        default=','.join(f'{c.pattern_size_px}:{c.gridsize}:{c.mode.value}' for c in ALL_CASES),
        help='same-weights cases N:GRIDSIZE:MODE (default: N 64, 128, gridsize 1, 2, both modes)',
    )
    parser.add_argument(
        '--cycle-cases',
        default='64:1:pinn,64:2:pinn,64:1:supervised',
        help="ptychodus -b cycle cases ('' to skip; e.g. add 128:1:pinn)",
    )
    parser.add_argument('--cycle-epochs', type=int, default=4, help='epochs of each batch training')
    parser.add_argument(
        '--cycle-side', type=int, default=12, help='scan points per side of the cycle scans'
    )
    parser.add_argument(
        '--quality-cases',
        default='64:1:pinn,64:1:supervised',
        help="in-process quality cases ('' to skip)",
    )
    parser.add_argument(
        '--seeds',
        default=','.join(str(seed) for seed in QUALITY_SEEDS),
        help='seeds of the quality comparison',
    )
    parser.add_argument('--epochs', type=int, default=8, help='epochs of each quality training')
    parser.add_argument(
        '--train-patterns', type=int, default=256, help='patterns per training scan'
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    load_at_start = load_note()

    weights = []
    for text in filter(None, args.weights_cases.split(',')):
        weights.append(same_weights_parity(Case.parse(text)))
        logger.info('same weights, %s: %s', weights[-1].case.label, weights[-1].status.value)
    weights_figure(args.out / 'weights_parity.png', weights)
    self_check = same_weights_parity(
        Case(64, 1, Mode.PINN), num_groups=2, tensorflow_perturbation=SELF_CHECK
    )

    cycles = []
    for text in filter(None, args.cycle_cases.split(',')):
        case = Case.parse(text)
        folder = args.out / 'cycle' / text.replace(':', '-')
        cycles.append(batch_cycle(case, folder, epochs=args.cycle_epochs, side=args.cycle_side))
        figure = folder / 'cycle_objects.png'
        if figure.is_file():
            shutil.copyfile(figure, args.out / f'cycle_{text.replace(":", "_")}.png')

    qualities = []
    seeds = [int(s) for s in args.seeds.split(',') if s]
    for text in filter(None, args.quality_cases.split(',')):
        qualities.append(
            quality_parity(
                Case.parse(text),
                seeds=seeds,
                epochs=args.epochs,
                num_train_patterns=args.train_patterns,
                out=args.out,
            )
        )
    quality_figure(args.out / 'quality_ssim.png', qualities)

    command = 'python -m ptychopinn_plugin.evidence.parity ' + ' '.join(
        argv if argv is not None else sys.argv[1:]
    )
    path = write_report(
        args.out,
        weights,
        self_check,
        cycles,
        qualities,
        command=command,
        seconds=time.perf_counter() - start,
        load_at_start=load_at_start,
    )
    print(path.read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())

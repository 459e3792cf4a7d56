"""The parity report: table rows, ``parity.md``, ``parity.json`` and the figures."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ...config import Mode
from ..report import Status, load_note, machine_description, markdown_table, pyplot, spread
from .cycle import OBJECT_RTOL, CycleResult
from .quality import (
    PSNR_MARGIN_DB,
    QUALITY_KEYS,
    SPEED_RATIO_LIMIT,
    SSIM_MARGIN,
    QualityParity,
)
from .weights import AMPLITUDE_RTOL, FORWARD_RTOL, PATCH_RTOL, SELF_CHECK, WeightsParity

__all__ = [
    'cycle_rows',
    'quality_figure',
    'quality_rows',
    'speed_rows',
    'weights_figure',
    'weights_rows',
    'write_report',
]


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
            f'{PSNR_MARGIN_DB} dB PSNR, {SSIM_MARGIN} SSIM (see `evidence/parity/quality.py`).',
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

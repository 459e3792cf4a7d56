"""Shared pieces of the evidence reports: status words, makers, tables, the machine, figures.

A report row carries a :class:`Status` and the measured reason; tables are plain Markdown in the
style of the parity tables of the project's history (one row per dimension, a status column).
Every quality row also names what made it (:func:`made_by`): the network alone, the network with
the built-in refinement (``solver/overlap.py``) after it, or the refinement alone from a flat
object (:func:`flat_start_refinement`, no network), so that no figure of the solver is read as the
network's. Figures use matplotlib with the Agg backend, imported only when a figure is drawn.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

from ..config import InferenceConfig, RefineStart
from ..core.contract import TrainingData
from ..errors import DataContractError

logger = logging.getLogger(__name__)

__all__ = [
    'MADE_BY_GUESS',
    'MADE_BY_PTYCHI',
    'PTYCHI_VARIANTS',
    'RECONSTRUCTION_TIME_PATTERN',
    'FlatStart',
    'Spread',
    'Status',
    'command_line',
    'flat_start_refinement',
    'machine_description',
    'made_by',
    'markdown_table',
    'prepare_output',
    'pyplot',
    'reconstruction_seconds',
    'spread',
]

RECONSTRUCTION_TIME_PATTERN = re.compile(r'Reconstruction time ([0-9.]+) seconds')
"""The line Ptychodus 1.7 logs after a reconstruction (``model/processing/monitor.py``): the
seconds from the first call of the reconstructor to its last yielded result, product saving
included, application start-up and data loading excluded."""


class Status(StrEnum):
    """Outcome of one row of a report."""

    PASS = 'PASS'
    FAIL = 'FAIL'
    NOT_RUN = 'NOT RUN'


MADE_BY_GUESS = 'nothing: the flat initial guess'
"""Maker of the reference row: no reconstruction at all."""
PTYCHI_VARIANTS: dict[str, str] = {
    'shipped': 'as Ptychodus ships it (probe refined, batches of 100, no momentum)',
    'probe-fixed': 'the probe held fixed, otherwise as shipped',
    'comparable': (
        'as the built-in refinement runs: the probe held fixed, every pattern in one (compact) '
        'batch, momentum acceleration on'
    ),
}
"""pty-chi settings the benchmarks run (``baseline.ptychi_settings(variant=...)``), in words."""


def ptychi_made_by(variant: str) -> str:
    """The "made by" of a pty-chi LSQML row run in ``variant`` (:data:`PTYCHI_VARIANTS`)."""
    return f'pty-chi LSQML, {PTYCHI_VARIANTS[variant]}'


MADE_BY_PTYCHI = ptychi_made_by('shipped')
"""Maker of pty-chi rows run as shipped. pty-chi refines its probe there; the plugin's refinement
holds the probe it is given fixed (on simulated scans, the simulation's exact probe)."""


def made_by(
    refine_iterations: int,
    refine_start: RefineStart | None,
    denoising: float | None = None,
) -> str:
    """What made a reconstruction, in the words every report uses.

    ``refine_start`` None: the built-in refinement alone from a flat object (no network);
    ``refine_iterations`` 0: the network alone; otherwise the network with ``refine_iterations``
    iterations of the refinement after it, started as ``refine_start`` says. ``denoising``: the
    refined amplitude's denoising (``InferenceConfig.amplitude_denoising``; None: the default's),
    named after any refinement that had it.
    """
    if denoising is None:
        denoising = InferenceConfig().amplitude_denoising
    denoised = (
        f', amplitude denoised at {denoising:g} x its shot noise'
        if denoising > 0 and refine_iterations > 0
        else ''
    )
    if refine_start is None:
        return (
            f'refinement alone: {refine_iterations} iterations from a flat object{denoised}, '
            'no network'
        )
    if refine_iterations == 0:
        return 'network alone (RefineIterations 0)'
    start = {
        RefineStart.AMPLITUDE: "the network's amplitude",
        RefineStart.OBJECT: "the network's whole object",
        RefineStart.FLAT: 'a flat object (the network made the partial result only)',
    }[RefineStart(refine_start)]
    return f'network + refinement: {refine_iterations} iterations from {start}{denoised}'


@dataclass(frozen=True, eq=False)
class FlatStart:
    """The built-in refinement from a flat object, no network (:func:`flat_start_refinement`)."""

    object_: np.ndarray
    """(H, W) complex64 refined object; pixels the probe barely lights keep the start."""
    iterations: int
    seconds: float
    median_noise_ratio: float | None
    """Data consistency of the object (``solver/consistency.py``); None when not measurable."""
    median_r_factor: float | None

    @property
    def note(self) -> str:
        if self.median_noise_ratio is None:
            return 'data consistency not measured'
        return (
            f'data consistency {self.median_noise_ratio:.2f} x noise, R-factor '
            f'{self.median_r_factor:.3f}'
        )


def flat_start_refinement(
    data: TrainingData,
    object_shape: tuple[int, int],
    iterations: int,
    *,
    start: np.ndarray | None = None,
    denoising: float | None = None,
    device: str | None = None,
) -> FlatStart:
    """The refinement inference runs after the network (``solver.overlap.OverlapRefinement``, the
    probe in ``data`` held fixed), started from a flat object instead: what the solver reaches
    with no network, the row every network + refinement figure is set beside.

    Parameters
    ----------
    data : the scan (``diffraction_amplitude`` (n, N, N) float32, ``positions_px`` (n, 2) in
        object pixels, ``probe`` (N, N) complex).
    object_shape : (H, W) of the object grid the positions refer to.
    iterations : refinement iterations (the same count as the row it stands beside).
    start : (H, W) complex flat object to start from (Ptychodus's initial guess); ones without it.
        No phase-ramp correction is applied: a flat object has no ramp to fit.
    denoising : the refined amplitude's denoising, as inference applies it after the refinement
        (``InferenceConfig.amplitude_denoising``, ``solver/denoise.py``); None: the default's,
        so that the row stands beside the defaults' output with the same solver stages. 0: the
        refinement's object as it is.
    device : where it runs (``solver/arrays.py``); give the engine's ``solver_device`` so that
        its seconds compare with the network + refinement row's.
    """
    from ..solver.consistency import measure_consistency
    from ..solver.denoise import denoise_refined
    from ..solver.overlap import OverlapRefinement

    begin = time.perf_counter()
    flat = (
        np.ones(object_shape, np.complex64)
        if start is None
        else np.asarray(start, dtype=np.complex64)
    )
    refinement = OverlapRefinement(
        flat, data.positions_px, data.diffraction_amplitude, data.probe, device=device
    )
    for _ in range(iterations):
        refinement.step()
    object_ = np.where(refinement.illuminated, refinement.object_, flat).astype(np.complex64)
    if iterations > 0:
        default = InferenceConfig().amplitude_denoising
        object_ = denoise_refined(refinement, object_, default if denoising is None else denoising)
    seconds = time.perf_counter() - begin
    try:
        consistency = measure_consistency(
            object_, data.positions_px, data.diffraction_amplitude, data.probe, device=device
        )
    except DataContractError as exc:
        logger.warning('data consistency of the flat-start refinement not measured: %s', exc)
        return FlatStart(object_, iterations, seconds, None, None)
    return FlatStart(
        object_,
        iterations,
        seconds,
        consistency.median_noise_ratio,
        consistency.median_r_factor,
    )


@dataclass(frozen=True)
class Spread:
    """Mean and sample standard deviation of a few repeated measurements."""

    mean: float
    std: float
    count: int

    def __str__(self) -> str:
        if self.count < 2:
            return f'{self.mean:.3g}'
        return f'{self.mean:.3g} +- {self.std:.2g}'


def spread(values: Sequence[float]) -> Spread:
    """:class:`Spread` of ``values`` (std 0 for a single value)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError('spread of no values: run at least one seed')
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Spread(statistics.fmean(values), std, len(values))


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats keep 3 significant digits."""
    lines = ['| ' + ' | '.join(header) + ' |', '|' + ' :--- |' * len(header)]
    for row in rows:
        lines.append('| ' + ' | '.join(_cell(value) for value in row) + ' |')
    return '\n'.join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f'{value:.2e}'
        return f'{value:.3g}'
    return str(value).replace('|', '/')


def reconstruction_seconds(log: str) -> float | None:
    """The last "Reconstruction time" Ptychodus logged, in seconds (None if absent)."""
    found = RECONSTRUCTION_TIME_PATTERN.findall(log)
    return float(found[-1]) if found else None


def _cpu_model() -> str:
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> dict[str, str]:
    """CPU, core count, load average and package versions, for the report header."""
    info = {
        'cpu': _cpu_model(),
        'cpus': str(os.cpu_count()),
        'python': platform.python_version(),
    }
    try:
        info['load average (1, 5, 15 min)'] = ', '.join(f'{x:.2f}' for x in os.getloadavg())
    except OSError:
        pass
    for name in ('ptychodus', 'torch', 'tensorflow-cpu', 'tensorflow', 'keras', 'ptychi'):
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            continue
    return info


def prepare_output(out: Path) -> str:
    """Start an evidence command: log at INFO to stderr, create ``out``; the load note at start."""
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(name)s: %(message)s')
    out.mkdir(parents=True, exist_ok=True)
    return load_note()


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command as a reader re-runs it: ``python -m MODULE ARGS`` (``argv`` or sys.argv's)."""
    arguments = list(argv) if argv is not None else sys.argv[1:]
    return ' '.join(['python', '-m', module, *arguments])


def load_note() -> str:
    """'quiet' or 'under load (load average X on N CPUs)' from the 1-minute load average."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 'load unknown'
    cpus = os.cpu_count() or 1
    if load > 0.5 * cpus:
        return f'under load (1-min load average {load:.1f} on {cpus} CPUs)'
    return f'quiet (1-min load average {load:.1f} on {cpus} CPUs)'


def pyplot():
    """matplotlib.pyplot on the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning(
            'matplotlib is not installed, figures are skipped; '
            "pip install 'ptychopinn-plugin[test]'"
        )
        return None
    return plt


def save_object_figure(
    path: Path,
    panels: Sequence[tuple[str, np.ndarray]],
    *,
    suptitle: str | None = None,
) -> Path | None:
    """Amplitude (top) and phase (bottom) of each complex image, one column per panel."""
    plt = pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.2), squeeze=False)
    for column, (title, image) in enumerate(panels):
        axes[0, column].imshow(np.abs(image), cmap='gray')
        axes[0, column].set_title(f'{title}\namplitude', fontsize=8)
        axes[1, column].imshow(np.angle(image), cmap='twilight')
        axes[1, column].set_title('phase', fontsize=8)
    for axis in axes.ravel():
        axis.set_axis_off()
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)
    return path

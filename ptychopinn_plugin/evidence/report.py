"""Shared pieces of the evidence reports: status words, Markdown tables, the machine, figures.

A report row carries a :class:`Status` and the measured reason; tables are plain Markdown in the
style of the parity tables of the project's history (one row per dimension, a status column).
Figures use matplotlib with the Agg backend, imported only when a figure is drawn.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    'RECONSTRUCTION_TIME_PATTERN',
    'Spread',
    'Status',
    'command_line',
    'machine_description',
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

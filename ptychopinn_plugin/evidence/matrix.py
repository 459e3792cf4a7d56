"""The benchmark matrix (issue 26): the realistic benchmark over overlap and dose, one table.

``python -m ptychopinn_plugin.evidence.matrix --out DIR`` runs the realistic benchmark
(``evidence/realistic.py``) once per cell of overlap and dose: for each it simulates a training
scan and a held-out test scan of other images with Ptychodus (its zone-plate probe, natural-image
objects), trains PtychoPINN on the first with the plugin's defaults and reconstructs the second.
Each cell's full report lands in ``DIR/<cell>/realistic.md``; ``DIR/matrix.md`` and
``DIR/matrix.json`` gather, per cell:

- the network alone (``RefineIterations 0``) and the default output (network + the default
  refinement), with the training time beside;
- the built-in refinement from a flat object (no network) at the default's iterations;
- pty-chi LSQML in each setting run (``report.PTYCHI_VARIANTS``), and the best of them;
- the default output's margin over the better of the flat start and pty-chi's best;
- time to quality: the wall time, network inference and stitching included, that the default
  pipeline needs to reach the flat start's phase SSIM at the default iteration count, against the
  flat start's own time. The default pipeline runs at each count of ``--refine-ladder``; the first
  count that reaches the flat start's score gives the time (``None``: no count did).

Other realistic-benchmark options (``--epochs``, ``--n-filters-scale``, ``--gridsize``,
``--backend``, ``--num-points``, ``--quick`` ...) are passed on to every cell; see
``python -m ptychopinn_plugin.evidence.realistic --help``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..config import InferenceConfig
from .realistic import FLAT_START_METHOD
from .realistic import main as realistic_main
from .report import (
    PTYCHI_VARIANTS,
    command_line,
    load_note,
    machine_description,
    markdown_table,
    prepare_output,
)

__all__ = ['CELLS', 'Cell', 'CellSummary', 'main', 'summarise']

DEFAULT_REFINE = InferenceConfig().refine_iterations


@dataclass(frozen=True)
class Cell:
    """One condition of the matrix: linear overlap and mean counts per pattern."""

    overlap: float
    photons: float

    @property
    def name(self) -> str:
        return f'overlap{round(self.overlap * 100):02d}-photons{self.photons:.0e}'.replace('+0', '')

    @classmethod
    def parse(cls, text: str) -> Cell:
        """``OVERLAP:PHOTONS``, e.g. ``0.7:1e6``."""
        try:
            overlap, photons = (float(part) for part in text.split(':'))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f'a cell is OVERLAP:PHOTONS (e.g. 0.7:1e6), got {text!r}'
            ) from None
        return cls(overlap, photons)


CELLS = (
    Cell(0.70, 1e6),
    Cell(0.50, 1e6),
    Cell(0.35, 1e6),
    Cell(0.70, 1e4),
    Cell(0.50, 1e4),
)
"""Issue 26's five cells: the well-sampled one, two sparse scans, two low-dose ones."""
REFINE_LADDER = (0, 10, 20, 30, 50, DEFAULT_REFINE)
"""RefineIterations the default pipeline runs at in each cell (0: the network alone)."""
PTYCHI_ITERATIONS = (100, 200)


@dataclass
class CellSummary:
    """What ``matrix.md`` shows of one cell (SSIMs are amplitude / phase pairs)."""

    cell: str
    overlap: float
    photons: float
    training_s: float | None
    network_alone: tuple[float, float] | None
    network_alone_s: float | None
    default: tuple[float, float] | None
    default_s: float | None
    flat_start: tuple[float, float] | None
    flat_start_s: float | None
    ptychi: dict[str, tuple[float, float, float]]
    """Per pty-chi method, its best run by phase SSIM: amplitude SSIM, phase SSIM, seconds."""
    default_margin: float | None
    """Default output's phase SSIM less the better of the flat start's and pty-chi's best."""
    time_to_quality_s: float | None
    """Wall time of the cheapest default-pipeline run that reaches the flat start's phase SSIM."""
    time_to_quality_iterations: int | None


def _ssims(run: dict) -> tuple[float, float] | None:
    scores = run.get('scores') or {}
    if 'phase_ssim' not in scores:
        return None
    return (float(scores['amplitude_ssim']), float(scores['phase_ssim']))


def summarise(cell: Cell, result: dict, default_iterations: int = DEFAULT_REFINE) -> CellSummary:
    """The matrix row of one cell from its ``realistic.json``."""
    runs = [run for run in result['runs'] if run['status'] == 'PASS']
    pinn = {
        run['iterations']: run
        for run in runs
        if run['method'].startswith('PtychoPINN') and 'fine-tuned' not in run['method']
    }
    flat = {run['iterations']: run for run in runs if run['method'] == FLAT_START_METHOD}
    ptychi: dict[str, tuple[float, float, float]] = {}
    for run in runs:
        ssims = _ssims(run)
        # hand-off rows (pty-chi started from the network's object) are no rival of the network
        handoff = 'from PtychoPINN' in run['method']
        if not run['method'].startswith('pty-chi') or handoff or ssims is None:
            continue
        amplitude, phase = ssims
        best = ptychi.get(run['method'])
        if best is None or phase > best[1]:
            ptychi[run['method']] = (amplitude, phase, float(run['reconstruction_s'] or 0.0))
    network = pinn.get(0)
    default = pinn.get(default_iterations)
    flat_run = flat.get(default_iterations)
    default_ssims = _ssims(default) if default else None
    flat_ssims = _ssims(flat_run) if flat_run else None
    margin = None
    if default_ssims is not None:
        rivals = [phase for _, phase, _ in ptychi.values()]
        if flat_ssims is not None:
            rivals.append(flat_ssims[1])
        if rivals:
            margin = default_ssims[1] - max(rivals)
    time_to_quality, ttq_iterations = None, None
    if flat_ssims is not None:
        for count in sorted(pinn):
            scores = _ssims(pinn[count])
            if scores is not None and scores[1] >= flat_ssims[1]:
                time_to_quality = float(pinn[count]['reconstruction_s'])
                ttq_iterations = count
                break
    training = next((run['training_s'] for run in pinn.values() if run['training_s']), None)
    return CellSummary(
        cell=cell.name,
        overlap=cell.overlap,
        photons=cell.photons,
        training_s=training,
        network_alone=_ssims(network) if network else None,
        network_alone_s=network['reconstruction_s'] if network else None,
        default=default_ssims,
        default_s=default['reconstruction_s'] if default else None,
        flat_start=flat_ssims,
        flat_start_s=flat_run['reconstruction_s'] if flat_run else None,
        ptychi=ptychi,
        default_margin=margin,
        time_to_quality_s=time_to_quality,
        time_to_quality_iterations=ttq_iterations,
    )


def _pair(ssims: tuple[float, float] | None, seconds: float | None = None) -> str:
    if ssims is None:
        return 'not run'
    text = f'{ssims[0]:.3f} / {ssims[1]:.3f}'
    return text if seconds is None else f'{text} ({seconds:.1f} s)'


def _time_to_quality(row: CellSummary) -> str:
    if row.flat_start_s is None:
        return 'no flat start'
    if row.time_to_quality_s is None:
        return f'not reached (flat start {row.flat_start_s:.1f} s)'
    ratio = row.time_to_quality_s / row.flat_start_s if row.flat_start_s else float('nan')
    return (
        f'{row.time_to_quality_s:.1f} s at {row.time_to_quality_iterations} iterations '
        f"({ratio:.2f} x the flat start's {row.flat_start_s:.1f} s)"
    )


def write_report(out: Path, rows: list[CellSummary], command: str, seconds: float, load: str):
    """``out/matrix.md`` and ``out/matrix.json``."""
    methods = sorted({method for row in rows for method in row.ptychi})
    header = [
        'cell (overlap, photons)',
        'training',
        'network alone: amp / phase SSIM',
        f'default output ({DEFAULT_REFINE} refinement iterations)',
        f'flat start, {DEFAULT_REFINE} iterations (no network)',
        *methods,
        'default margin (phase SSIM)',
        'time to quality',
    ]
    table = []
    for row in rows:
        table.append(
            [
                f'{row.overlap:.0%}, {row.photons:.0e}',
                f'{row.training_s / 60:.1f} min' if row.training_s else '',
                _pair(row.network_alone, row.network_alone_s),
                _pair(row.default, row.default_s),
                _pair(row.flat_start, row.flat_start_s),
                *(
                    _pair(row.ptychi[m][:2], row.ptychi[m][2]) if m in row.ptychi else 'not run'
                    for m in methods
                ),
                '' if row.default_margin is None else f'{row.default_margin:+.3f}',
                _time_to_quality(row),
            ]
        )
    lines = [
        '# Benchmark matrix (issue 26): held-out realistic scans over overlap and dose',
        '',
        f'Command: `{command}`  ',
        f'Date: {datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}; finished in '
        f'{seconds / 60:.1f} min; {load} at the start, {load_note()} at the end.  ',
        'Machine: ' + ', '.join(f'{k} {v}' for k, v in machine_description().items()) + '.',
        '',
        'Each cell: PtychoPINN trained on one scan and reconstructing another of other images '
        "(the cell's folder holds the full report). Seconds in brackets: reconstruction wall "
        'time (PtychoPINN: network inference, stitching and refinement; flat start: the '
        "refinement alone; pty-chi: Ptychodus's reconstruction time). pty-chi columns: the best "
        'phase SSIM over the iteration counts run, in each setting: '
        + '; '.join(f'{name}: {what}' for name, what in PTYCHI_VARIANTS.items())
        + ". Default margin: the default output's phase SSIM less the better of the flat start "
        "and pty-chi's best. Time to quality: the cheapest default-pipeline run (network "
        "included) that reaches the flat start's phase SSIM.",
        '',
        markdown_table(header, table),
        '',
    ]
    (out / 'matrix.md').write_text('\n'.join(lines))
    (out / 'matrix.json').write_text(json.dumps([asdict(row) for row in rows], indent=2))
    return out / 'matrix.md'


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.matrix',
        description=(__doc__ or '').splitlines()[0],
        epilog='Any other option is passed on to the realistic benchmark of every cell.',
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument(
        '--cells',
        type=Cell.parse,
        nargs='+',
        default=list(CELLS),
        help='OVERLAP:PHOTONS cells (default: '
        + ' '.join(f'{c.overlap}:{c.photons:.0e}' for c in CELLS)
        + ')',
    )
    parser.add_argument(
        '--refine-ladder',
        type=int,
        nargs='+',
        default=list(REFINE_LADDER),
        help='RefineIterations of the default pipeline in each cell, for the time to quality '
        f'(default {" ".join(map(str, REFINE_LADDER))}; must hold 0 and {DEFAULT_REFINE})',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args, passed_on = _parser().parse_known_args(argv)
    if not {0, DEFAULT_REFINE} <= set(args.refine_ladder):
        _parser().error(f'--refine-ladder must hold 0 and {DEFAULT_REFINE}')
    if not any(a.startswith('--ptychi-iterations') for a in passed_on):
        passed_on += ['--ptychi-iterations', *map(str, PTYCHI_ITERATIONS)]
    load = prepare_output(args.out)
    start = time.perf_counter()
    rows = []
    for cell in args.cells:
        folder = args.out / cell.name
        code = realistic_main(
            [
                '--out',
                str(folder),
                '--overlap',
                str(cell.overlap),
                '--photons',
                str(cell.photons),
                '--refine-iterations',
                *map(str, args.refine_ladder),
                *passed_on,
            ]
        )
        if code != 0:
            return code
        rows.append(summarise(cell, json.loads((folder / 'realistic.json').read_text())))
        # the table so far, so that an interrupted matrix keeps its finished cells
        path = write_report(
            args.out,
            rows,
            command_line('ptychopinn_plugin.evidence.matrix', argv),
            time.perf_counter() - start,
            load,
        )
    print(path.read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())

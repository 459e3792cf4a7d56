"""The realistic quality benchmark (issue 14): PtychoPINN on a held-out scan, against pty-chi.

``python -m ptychopinn_plugin.evidence.realistic --out DIR`` simulates a training scan and a
different test scan with ``ptychodus_io/realistic.py`` (natural-image objects, Ptychodus's
zone-plate preset defocused, Ptychodus's simulator), trains PtychoPINN on the first with the
plugin's default settings (``--epochs``, ``--n-filters-scale`` and ``--gridsize`` override them,
and the report says so) and reconstructs the second, then reconstructs the same test scan with
pty-chi LSQML at 50, 100 and 200 iterations through ``ptychodus -b reconstruct`` from the
benchmark environment (``benchmarks/setup_bench_env.sh`` makes ``.venv-bench``; without it the
rows say NOT RUN and give that command), as Ptychodus ships it, with the probe held fixed, and as
comparably to the built-in refinement as it allows (probe fixed, one batch, momentum;
``report.PTYCHI_VARIANTS``, ``--ptychi-variants`` picks).

PtychoPINN runs in this process through ``workflow.TrainingRun`` / ``workflow.reconstruct`` after
the conversion Ptychodus's reconstructor uses (``ptychodus_io.inputs``), so it runs this
checkout's code; ``--through-ptychodus`` runs ``ptychodus -b train`` / ``-b reconstruct`` instead
(the installed copy of the plugin). Both scans carry the probe at the data's mean counts per
pattern, as Ptychodus's probe builders scale it (see ``baseline.py``).

Who made each row (the report's "made by" column, ``report.made_by``): by default PtychoPINN
reconstructs the test scan twice, with the network alone (``RefineIterations 0``) and with the
plugin's defaults (the network, then 100 iterations of the built-in refinement from the network's
amplitude); beside every refinement count the same refinement also runs from a flat object with no
network (``report.flat_start_refinement``; ``--no-flat-start`` leaves it out). The refinement
holds the test scan's probe fixed (the simulation's exact probe), as do pty-chi's ``probe-fixed``
and ``comparable`` rows, while pty-chi as shipped refines its probe; only the network rows need
the training time.

Scores: amplitude and phase SSIM and PSNR over the scanned region after removing the global
complex scale (so the phase offset), and the FRC resolution (``benchmark.score_object``).
Writes ``DIR/realistic.md``, ``DIR/realistic.json`` and ``DIR/realistic_objects.png``, and in
process also the trained model, ``DIR/model.zip`` (to re-score other inference settings on the
same scans without training again).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ..config import (
    ExecutionConfig,
    InferenceConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    Precision,
    TrainingConfig,
    default_stitch_crop_px,
)
from ..core import metrics, simulate
from ..core.archive import save_archive
from ..core.stitching import extract_patches, scanned_region_mask
from ..engines import solver_device
from .baseline import DEFAULT_BENCH_VENV
from .report import (
    MADE_BY_GUESS,
    PTYCHI_VARIANTS,
    Status,
    command_line,
    flat_start_refinement,
    load_note,
    machine_description,
    made_by,
    markdown_table,
    prepare_output,
    ptychi_made_by,
    save_object_figure,
)

logger = logging.getLogger('ptychopinn_plugin.evidence.realistic')

__all__ = ['MethodRun', 'main', 'ptychi_made_by', 'ptychi_method', 'run_benchmark']

PTYCHI_ITERATIONS = (50, 100, 200)
"""pty-chi LSQML iteration counts (issue 14)."""
SETUP_BENCH_COMMAND = 'bash benchmarks/setup_bench_env.sh'
"""What creates ``.venv-bench`` (pty-chi and its own Ptychodus)."""
REFERENCE = 'reference'
"""Status of the flat initial guess's row: the floor every method should beat."""
QUICK = {'num_points': 64, 'epochs': 1, 'n_filters_scale': 1, 'ptychi_iterations': [10]}
"""``--quick``: a tiny run that checks the command works (its scores mean nothing)."""
DEFAULT_REFINE_COUNTS = (0, InferenceConfig().refine_iterations)
"""RefineIterations of the PtychoPINN rows by default: the network alone, and the plugin's
defaults (the network, then the built-in refinement)."""
FLAT_START_METHOD = 'built-in refinement, flat start (no network)'
"""Method of the rows that run the refinement from a flat object."""


@dataclass
class MethodRun:
    """One reconstruction of the test scan."""

    method: str
    status: str
    iterations: int | None = None
    training_s: float | None = None
    reconstruction_s: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    note: str = ''
    made_by: str = ''
    """What made the object (``report.made_by``): network, refinement, both, or pty-chi."""


def _scans(args: argparse.Namespace):
    from ..ptychodus_io.realistic import RealisticSpec, make_realistic_scan

    spec = RealisticSpec(
        num_points=args.num_points,
        pattern=args.pattern,
        num_photons=args.photons,
        overlap_fraction=args.overlap,
        test_object=args.test_object,
    )
    test_spec = replace(spec, num_points=args.test_points or args.num_points)
    train = None
    if args.model is None:
        train = make_realistic_scan('train', spec, seed=args.seed).with_probe_power_of_data()
    test = make_realistic_scan('test', test_spec, seed=args.seed).with_probe_power_of_data()
    return test_spec, train, test


def _config(args: argparse.Namespace) -> tuple[PluginConfig, dict[str, object]]:
    """The plugin's default configuration with the command's overrides (also returned)."""
    requested = {
        'mode': args.mode,
        'n_filters_scale': args.n_filters_scale,
        'gridsize': args.gridsize,
        'num_epochs': args.epochs,
    }
    defaults = {**ModelConfig().model_dump(), **TrainingConfig().model_dump()}
    overrides = {k: v for k, v in requested.items() if v is not None and v != defaults[k]}
    model = {k: v for k, v in overrides.items() if k in ModelConfig.model_fields}
    training = {k: v for k, v in overrides.items() if k in TrainingConfig.model_fields}
    config = PluginConfig(
        model=ModelConfig(**model),
        training=TrainingConfig(seed=args.seed, **training),
        execution=ExecutionConfig(
            backend=args.backend, device=args.device, precision=args.precision
        ),
    )
    return config, overrides


def _pinn_in_process(
    config: PluginConfig,
    train,
    test,
    out: Path,
    model: Path | None,
    refine_counts: tuple[int, ...],
    tune_epochs: tuple[int, ...] = (0,),
) -> tuple[list[tuple[MethodRun, np.ndarray]], list[dict], np.ndarray | None]:
    """Train on ``train`` (or load ``model``) and reconstruct ``test`` once per fine-tuning epoch
    count and refine count; also the probe the last reconstruction's refinement used (its
    ``probe_choice``; None without a finished reconstruction: the scan's own)."""
    from ..core.archive import load_archive
    from ..workflow import TrainingRun, reconstruct

    # the data as Ptychodus would hand them to the reconstructor (``WorkflowScan.training_data``):
    # the counts with the product as written to the workflow directory (probe at the data's
    # power), not the simulator's own probe scale
    history: list[dict] = []
    training_s = None
    training_warnings: list[str] = []
    if model is None:
        start = time.perf_counter()
        data = train.training_data()
        if config.model.mode is Mode.SUPERVISED:  # the simulation's object is the known truth
            patches = extract_patches(train.truth, data.positions_px, data.pattern_size_px)
            data = replace(data, ground_truth_patches=patches)
        with _warnings_logged() as training_warnings:
            run = TrainingRun([data], config)
            history = [asdict(report) for report in run.epochs()]
            archive = run.archive()
            run.release()
        training_s = time.perf_counter() - start
        out.mkdir(parents=True, exist_ok=True)
        save_archive(out / 'model.zip', archive, overwrite=True)
    else:
        archive = load_archive(model)
    test_data = test.training_data()
    results = []
    probe = None
    for epochs, count in itertools.product(tune_epochs, refine_counts):
        method = f'PtychoPINN {config.execution.backend.value} (in process)'
        if epochs:
            method = (
                f'PtychoPINN {config.execution.backend.value} (in process, fine-tuned {epochs} ep.)'
            )
        start = time.perf_counter()
        with _warnings_logged() as warnings:
            steps = reconstruct(
                archive,
                test_data,
                execution=config.execution,
                inference=InferenceConfig(refine_iterations=count, fine_tune_epochs=epochs),
                object_shape=test.truth.shape,
            )
            final = [step for step in steps if step.finished][-1]
        seconds = time.perf_counter() - start
        estimate = final.object_
        note = f'RefineIterations {count}' + (f'; model {model}' if model else '')
        if epochs:
            note += f'; FineTuneEpochs {epochs}'
        if final.consistency is not None:
            consistency = final.consistency
            note += (
                f'; data consistency {consistency.median_noise_ratio:.2f} x noise, R-factor '
                f'{consistency.median_r_factor:.3f}'
            )
        note = ' / '.join([note, *dict.fromkeys(training_warnings + warnings)])
        maker = made_by(count, InferenceConfig().refine_start)
        run = MethodRun(method, Status.PASS, count, training_s, seconds, note=note, made_by=maker)
        results.append((run, estimate))
        if final.probe_choice is not None:
            probe = final.probe_choice.probe
    return results, history, probe


def _pinn_settings(config: PluginConfig, overrides: dict[str, object]) -> dict:
    settings: dict[str, dict[str, object]] = {
        'Processing': {'Algorithm': 'ptychopinn_pinn'},
        'PtychoPINN': {
            'Backend': config.execution.backend.value,
            'Device': config.execution.device.value,
        },
        'PtychoPINNModel': {},
        'PtychoPINNTraining': {'Seed': config.training.seed},
    }
    names = {'n_filters_scale': 'NumFiltersScale', 'gridsize': 'GridSize'}
    for key, value in overrides.items():
        if key == 'num_epochs':
            settings['PtychoPINNTraining']['NumEpochs'] = value
        else:
            settings['PtychoPINNModel'][names[key]] = value
    return {group: values for group, values in settings.items() if values}


def _pinn_through_ptychodus(out: Path, settings: dict, train, test, truth, mask):
    from ..ptychodus_io.simulation import write_workflow_scan
    from .baseline import reconstruct_in_ptychodus, run_batch

    executable = Path(sys.executable).with_name('ptychodus')
    train_dir = write_workflow_scan(out / 'pinn' / 'train', train, settings)
    trained = run_batch(executable, 'train', train_dir, out / 'pinn' / 'train-output')
    model = out / 'pinn' / 'train-output' / 'model.zip'
    method = 'PtychoPINN (ptychodus -b, installed copy)'
    if trained.returncode != 0 or not model.is_file():
        last = trained.log.strip().splitlines()[-1:] or ['no log']
        return MethodRun(method, Status.FAIL, note='training failed: ' + last[0]), None
    test_dir = write_workflow_scan(out / 'pinn' / 'test', test, settings)
    shutil.copyfile(model, test_dir / 'model.zip')
    run, estimate = reconstruct_in_ptychodus(
        executable, test_dir, out / 'pinn' / 'test-output', method, None, truth, mask
    )
    status = Status.PASS if estimate is not None and run.scores else Status.FAIL
    count = InferenceConfig().refine_iterations
    final = MethodRun(
        method,
        status,
        count,
        trained.seconds,
        run.reconstruction_s,
        note=run.note,
        made_by=made_by(count, InferenceConfig().refine_start),
    )
    network = _network_product(out / 'pinn' / 'test-output')
    if network is None:
        return [(final, estimate)]
    note = 'the product Ptychodus wrote before the refinement (same run as the next row)'
    first = MethodRun(
        method,
        Status.PASS,
        0,
        trained.seconds,
        None,
        note,
        made_by=made_by(0, InferenceConfig().refine_start),
    )
    return [(first, network), (final, estimate)]


def _network_product(output: Path) -> np.ndarray | None:
    """The network's stitched object of a ``ptychodus -b reconstruct`` run that refined: the
    product written before the last (the refined) one; None when there is no such product."""
    from ptychodus.api.io import load_product

    products = sorted(output.glob('product.*.h5'))
    if len(products) < 2:
        return None
    return np.asarray(load_product(products[-2]).object_.get_layer(0))


def _ptychi(
    out: Path,
    bench_venv: Path,
    test,
    truth,
    mask,
    iterations: tuple[int, ...],
    start: np.ndarray | None = None,
    variants: tuple[str, ...] = ('shipped',),
):
    """pty-chi LSQML on the test scan, from a flat object or (hand-off) from ``start``, in each
    of ``variants`` (``report.PTYCHI_VARIANTS``)."""
    from ..ptychodus_io.products import product_with_object
    from ..ptychodus_io.workflow_dir import write_workflow_directory
    from .baseline import ptychi_settings, reconstruct_in_ptychodus

    executable = (bench_venv / 'bin' / 'ptychodus').absolute()
    runs, objects = [], {}
    initial = test.initial_guess if start is None else start
    for variant in variants:
        method = ptychi_method(variant) + ('' if start is None else ' from PtychoPINN')
        maker = ptychi_made_by(variant)
        maker += '' if start is None else ", started from PtychoPINN's object"
        for count in iterations:
            if not executable.is_file():
                note = f'{executable} does not exist; create it with `{SETUP_BENCH_COMMAND}`'
                runs.append(MethodRun(method, Status.NOT_RUN, count, note=note, made_by=maker))
                continue
            name = f'ptychi-lsqml-{count}' + ('' if variant == 'shipped' else f'-{variant}')
            name += '' if start is None else '-from-pinn'
            directory = out / name / 'test'
            settings = ptychi_settings('LSQML', count, variant, len(test.positions_px))
            write_workflow_directory(
                directory,
                product_with_object(test.simulated.product, initial.astype(np.complex64)),
                test.simulated.assembled,
                settings,
            )
            run, estimate = reconstruct_in_ptychodus(
                executable, directory, directory.parent / 'test-output', method, count, truth, mask
            )
            status = Status.PASS if estimate is not None and run.scores else Status.FAIL
            runs.append(
                MethodRun(
                    method,
                    status,
                    count,
                    reconstruction_s=run.reconstruction_s,
                    note=run.note,
                    made_by=maker,
                )
            )
            if estimate is not None:
                objects[f'{method} {count}'] = estimate
    return runs, objects


def ptychi_method(variant: str) -> str:
    """The method name of a pty-chi LSQML row of ``variant`` (``report.PTYCHI_VARIANTS``)."""
    return 'pty-chi LSQML' + ('' if variant == 'shipped' else f' ({variant})')


def _flat_starts(
    test, counts: list[int], probe: np.ndarray | None, device: str | None
) -> list[tuple[MethodRun, np.ndarray]]:
    """The built-in refinement from a flat object, no network, at each refinement count of the
    PtychoPINN rows, with the probe their refinement used, on the device theirs ran on."""
    data = test.training_data()
    if probe is not None:
        data = replace(data, probe=probe)
    rows = []
    for count in counts:
        flat = flat_start_refinement(
            data, test.truth.shape, count, start=test.initial_guess, device=device
        )
        note = 'no network, no training; ' + flat.note
        run = MethodRun(
            FLAT_START_METHOD,
            Status.PASS,
            count,
            None,
            flat.seconds,
            note=note,
            made_by=made_by(count, None),
        )
        rows.append((run, flat.object_))
    return rows


class _WarningList(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextmanager
def _warnings_logged() -> Iterator[list[str]]:
    """The plugin's warnings while the block runs (they go into the report's note)."""
    handler = _WarningList()
    plugin_logger = logging.getLogger('ptychopinn_plugin')
    plugin_logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        plugin_logger.removeHandler(handler)


def run_benchmark(args: argparse.Namespace) -> dict[str, object]:
    """Simulate, train, reconstruct, score; the result that the report and the JSON hold."""
    from ..ptychodus_io.realistic import (
        IMAGES,
        Role,
        scan_step_px,
        zone_plate,
    )
    from .benchmark import score_object

    spec, train, test = _scans(args)
    probe = np.asarray(test.simulated.product.probes.get_array()).reshape(
        -1, spec.pattern_size_px, spec.pattern_size_px
    )[0]
    n = spec.pattern_size_px
    mask = scanned_region_mask(test.positions_px, test.truth.shape, n, default_stitch_crop_px(n))
    config, overrides = _config(args)
    runs = [MethodRun('initial guess (flat)', REFERENCE, made_by=MADE_BY_GUESS)]
    objects: dict[str, np.ndarray] = {}
    history: list = []
    pinn: list[tuple[MethodRun, np.ndarray | None]] = []
    model_probe = None  # the probe the refinement used, when training refined one
    if args.through_ptychodus:
        with _warnings_logged() as warnings:
            pinn = _pinn_through_ptychodus(
                args.out, _pinn_settings(config, overrides), train, test, test.truth, mask
            )
        for run, _ in pinn:
            run.note = ' / '.join([run.note, *dict.fromkeys(warnings)]).strip(' /')
    else:
        counts = tuple(args.refine_iterations or DEFAULT_REFINE_COUNTS)
        tune = tuple(args.fine_tune_epochs or (InferenceConfig().fine_tune_epochs,))
        pinn, history, model_probe = _pinn_in_process(
            config, train, test, args.out, args.model, counts, tune
        )
    for run, estimate in pinn:
        runs.append(run)
        if estimate is not None:
            label = 'PtychoPINN' if len(pinn) == 1 else f'PtychoPINN, {run.iterations} refine'
            if 'fine-tuned' in run.method:
                label += ', ' + run.method.split(', ')[-1].rstrip(')')
            objects[label] = estimate
            run.scores = score_object(estimate, test.truth, mask)
    if not args.no_flat_start:
        counts = sorted({run.iterations for run, _ in pinn if run.iterations})
        device = solver_device(config.execution)
        for run, estimate in _flat_starts(test, counts, model_probe, device):
            runs.append(run)
            objects[f'flat start, {run.iterations} refine'] = estimate
            run.scores = score_object(estimate, test.truth, mask)
    ptychi_runs, ptychi_objects = _ptychi(
        args.out,
        args.bench_venv,
        test,
        test.truth,
        mask,
        tuple(args.ptychi_iterations),
        variants=tuple(args.ptychi_variants),
    )
    if args.handoff_iterations and pinn and pinn[-1][1] is not None:
        handoff_runs, handoff_objects = _ptychi(
            args.out,
            args.bench_venv,
            test,
            test.truth,
            mask,
            tuple(args.handoff_iterations),
            start=pinn[-1][1],
        )
        for run in handoff_runs:
            run.note = ' / '.join(["from the last PtychoPINN row's object", run.note]).strip(' /')
        ptychi_runs += handoff_runs
        ptychi_objects.update(handoff_objects)
    runs += ptychi_runs
    objects.update(ptychi_objects)
    for run in ptychi_runs:
        if run.status == Status.PASS:
            run.scores = score_object(objects[f'{run.method} {run.iterations}'], test.truth, mask)
    runs[0].scores = score_object(test.initial_guess, test.truth, mask)
    panels = [('truth', test.truth * mask)] + [
        (name, metrics.align_complex(o, test.truth, mask) * mask) for name, o in objects.items()
    ]
    save_object_figure(args.out / 'realistic_objects.png', panels)
    plate = zone_plate(spec.zone_plate_preset)
    return {
        'scans': {
            'spec': {
                k: str(v) if not isinstance(v, int | float) else v for k, v in asdict(spec).items()
            },
            'zone_plate': plate.model_dump(),
            'pixel_size_m': spec.pixel_size_m,
            'probe_90pct_diameter_px': simulate.power_diameter_px(probe),
            'step_px': scan_step_px(spec, probe),
            'object_shape': list(test.truth.shape),
            'train_images': asdict(IMAGES[Role.TRAIN]),
            'test_object': spec.test_object.value
            if spec.test_object.value != 'natural'
            else asdict(IMAGES[Role.TEST]),
            'seed': args.seed,
            'train_points': args.num_points,
            'model': str(args.model) if args.model else None,
        },
        'config': json.loads(config.to_json()),
        'overrides_of_defaults': overrides,
        'history': history,
        'runs': [asdict(r) for r in runs],
    }


SCORE_COLUMNS = (
    ('amplitude SSIM', 'amplitude_ssim'),
    ('phase SSIM', 'phase_ssim'),
    ('amplitude PSNR dB', 'amplitude_psnr_db'),
    ('phase PSNR dB', 'phase_psnr_db'),
    ('FRC px', 'frc_px'),
)


def _seconds(value: float | None) -> str:
    return f'{value:.1f}' if value is not None else ''


def _network_share(runs: list[dict]) -> list[str]:
    """One line per refinement count that has both a network + refinement row and a flat-start
    row: what the network adds to the refinement, and what it costs."""
    flat = {r['iterations']: r for r in runs if r['method'] == FLAT_START_METHOD and r['scores']}
    lines = []
    for run in runs:
        count = run['iterations']
        if not run['method'].startswith('PtychoPINN') or not count or count not in flat:
            continue
        if not run['scores']:
            continue
        mine, theirs = run['scores'], flat[count]['scores']
        training = run['training_s']
        cost = f' and {training / 60:.1f} min of training' if training else ''
        lines.append(
            f'- {count} refinement iterations: network + refinement '
            f'{mine["amplitude_ssim"]:.3f} / {mine["phase_ssim"]:.3f} amplitude / phase SSIM '
            f'in {_seconds(run["reconstruction_s"])} s{cost}; refinement alone from a flat object '
            f'{theirs["amplitude_ssim"]:.3f} / {theirs["phase_ssim"]:.3f} in '
            f'{_seconds(flat[count]["reconstruction_s"])} s.'
        )
    return [*lines, ''] if lines else []


def write_report(out: Path, result: dict, command: str, seconds: float, load: str) -> Path:
    """``out/realistic.md`` and ``out/realistic.json`` from :func:`run_benchmark`'s result."""
    scans = result['scans']
    spec = scans['spec']
    plate = scans['zone_plate']
    rows = []
    for run in result['runs']:
        scores = run['scores']
        rows.append(
            [
                run['method'],
                run.get('made_by', ''),
                run['iterations'] if run['iterations'] is not None else '',
                run['status'],
                _seconds(run['training_s']),
                _seconds(run['reconstruction_s']),
                *(f'{scores[key]:.3f}' if key in scores else '' for _, key in SCORE_COLUMNS),
                run['note'],
            ]
        )
    overrides = result['overrides_of_defaults']
    settings = (
        'the plugin defaults except ' + ', '.join(f'{k} = {v}' for k, v in overrides.items())
        if overrides
        else 'the plugin defaults'
    )
    model, training = result['config']['model'], result['config']['training']
    lines = [
        '# Realistic benchmark (issue 14): held-out scan, PtychoPINN against pty-chi',
        '',
        f'Command: `{command}`  ',
        f'Date: {result["date"]}; finished in {seconds / 60:.1f} min; {load} at the start, '
        f'{load_note()} at the end.  ',
        'Machine: ' + ', '.join(f'{k} {v}' for k, v in machine_description().items()) + '.',
        '',
        '## Scans',
        f'- Simulated by Ptychodus (`ptychodus_io/realistic.py`, seed {scans["seed"]}): '
        + (
            f'the model of `{scans["model"]}` (no training here), '
            if scans.get('model')
            else f'{scans.get("train_points", spec["num_points"])} points in the training scan, '
        )
        + f'{spec["num_points"]} in the test scan, {spec["pattern"]}, '
        f'{spec["overlap_fraction"]:.0%} linear overlap (step {scans["step_px"]:.2f} px), '
        f'N = {spec["pattern_size_px"]}, {spec["num_photons"]:.3g} counts per pattern, '
        f'object {scans["object_shape"][0]} x {scans["object_shape"][1]} px of '
        f'{scans["pixel_size_m"] * 1e9:.1f} nm.',
        f'- Probe: Ptychodus zone-plate preset {spec["zone_plate_preset"]} (diameter '
        f'{plate["zone_plate_diameter_m"] * 1e6:.0f} um, outermost zone '
        f'{plate["outermost_zone_width_m"] * 1e9:.0f} nm, central stop '
        f'{plate["central_beamstop_diameter_m"] * 1e6:.0f} um), defocus '
        f'{spec["defocus_m"] * 1e6:.0f} um; 90 % of its power within a diameter of '
        f'{scans["probe_90pct_diameter_px"]:.1f} px.',
        f'- Objects: amplitude [0.5, 1], phase [-1, 1] rad. Training: {scans["train_images"]}; '
        f'test: {scans["test_object"]} (random crops).',
        '',
        '## Settings',
        f'PtychoPINN: {settings} (mode {model["mode"]}, gridsize {model["gridsize"]}, '
        f'NumFiltersScale {model["n_filters_scale"]}, {training["num_epochs"]} epochs, batch '
        f'{training["batch_size"]}, learning rate {training["learning_rate"]}), backend '
        f'{result["config"]["execution"]["backend"]}, device '
        f'{result["config"]["execution"]["device"]}. pty-chi LSQML through `ptychodus -b '
        'reconstruct` from `.venv-bench` (`baseline.ptychi_settings`): '
        + '; '.join(f'{ptychi_method(name)}: {what}' for name, what in PTYCHI_VARIANTS.items())
        + ". The plugin's built-in refinement (after the network, and from a flat "
        'object, with the same probe) holds the probe the reconstruction chose fixed: on these '
        "simulated scans the simulation's exact probe.",
        '',
        '## Results',
        'Scores over the scanned region after removing the global complex scale (the phase '
        'offset); seconds: PtychoPINN training and reconstruction wall time (in process: '
        'engine build, inference and stitching; through `ptychodus -b`: training is the wall '
        "time of `ptychodus -b train` with start-up, reconstruction Ptychodus's "
        '"Reconstruction time"), pty-chi Ptychodus\'s "Reconstruction time". "Made by": '
        '"network alone" is PtychoPINN with `RefineIterations 0`; "network + refinement" the '
        "network's stitched object followed by the built-in iterative refinement "
        '(`solver/overlap.py`, the plugin default); "refinement alone" the same refinement from a '
        'flat object, with no network and no training. Only the network rows need the training '
        'time.',
        '',
        *_network_share(result['runs']),
        markdown_table(
            [
                'method',
                'made by',
                'iterations',
                'status',
                'training s',
                'reconstruction s',
                *(name for name, _ in SCORE_COLUMNS),
                'note',
            ],
            rows,
        ),
        '',
        'Figure: `realistic_objects.png` (truth and each reconstruction, amplitude and phase).',
        '',
    ]
    if result.get('quick'):
        lines[2:2] = [
            '**Quick mode: a check that the command works; its scores mean nothing.**',
            '',
        ]
    path = out / 'realistic.md'
    path.write_text('\n'.join(lines))
    payload = {
        'command': command,
        'seconds': seconds,
        'machine': machine_description(),
        **result,
    }
    (out / 'realistic.json').write_text(json.dumps(payload, indent=1, default=str))
    return path


def _parser() -> argparse.ArgumentParser:
    from ..ptychodus_io.realistic import RealisticSpec

    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.realistic',
        description=(__doc__ or '').splitlines()[0],
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument(
        '--quick',
        action='store_true',
        help='tiny check of the command: 64 points, 1 epoch, NumFiltersScale 1 (unless given)',
    )
    parser.add_argument('--backend', choices=('pytorch', 'tensorflow'), default='pytorch')
    parser.add_argument('--device', default='auto', help="'auto', 'cpu' or 'gpu'")
    parser.add_argument(
        '--precision',
        choices=[p.value for p in Precision],
        default=ExecutionConfig().precision.value,
        help='network precision for training and reconstruction (default: %(default)s)',
    )
    parser.add_argument(
        '--mode',
        choices=[m.value for m in Mode],
        help='training mode (default: the plugin default, pinn); supervised trains on the '
        "training scan's known object (in process only)",
    )
    parser.add_argument('--epochs', type=int, help='training epochs (default: the plugin default)')
    parser.add_argument('--n-filters-scale', type=int, help='NumFiltersScale (default: plugin)')
    parser.add_argument('--gridsize', type=int, help='GridSize (default: the plugin default)')
    parser.add_argument('--num-points', type=int, help='points per scan (default 1024)')
    parser.add_argument('--pattern', choices=('raster', 'spiral'), default='raster')
    parser.add_argument('--photons', type=float, default=5e5, help='counts per pattern')
    parser.add_argument(
        '--overlap',
        type=float,
        default=RealisticSpec.overlap_fraction,
        help='linear overlap of neighbouring probe positions, 1 - step / probe diameter '
        f'(default {RealisticSpec.overlap_fraction})',
    )
    parser.add_argument(
        '--test-object', choices=('natural', 'siemens'), default='natural', help='held-out object'
    )
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument(
        '--test-points', type=int, help='points of the test scan (default: --num-points)'
    )
    parser.add_argument(
        '--model',
        type=Path,
        help="reconstruct with this archive (for example an earlier run's DIR/model.zip) "
        'instead of training; no training scan is simulated',
    )
    parser.add_argument(
        '--refine-iterations',
        type=int,
        nargs='+',
        help='score PtychoPINN at each of these RefineIterations (default: 0, the network '
        f'alone, and the plugin default {InferenceConfig().refine_iterations})',
    )
    parser.add_argument(
        '--no-flat-start',
        action='store_true',
        help='leave out the rows of the built-in refinement from a flat object (no network) at '
        'the same iteration counts',
    )
    parser.add_argument(
        '--fine-tune-epochs',
        type=int,
        nargs='+',
        help='score PtychoPINN after each of these FineTuneEpochs on the test scan (default: the '
        'plugin default)',
    )
    parser.add_argument(
        '--ptychi-iterations',
        type=int,
        nargs='*',
        help='pty-chi LSQML iteration counts (default 50 100 200, --quick 10; none given: no '
        'pty-chi rows)',
    )
    parser.add_argument(
        '--ptychi-variants',
        nargs='+',
        choices=list(PTYCHI_VARIANTS),
        default=list(PTYCHI_VARIANTS),
        help='pty-chi settings to run at each count (default: all): '
        + '; '.join(f'{name}: {what}' for name, what in PTYCHI_VARIANTS.items()),
    )
    parser.add_argument(
        '--handoff-iterations',
        type=int,
        nargs='*',
        default=[],
        help='hand-off (issue 15): pty-chi LSQML at these counts started from the object of the '
        'last PtychoPINN row instead of a flat object',
    )
    parser.add_argument(
        '--through-ptychodus',
        action='store_true',
        help='train and reconstruct with `ptychodus -b` (the installed copy of the plugin)',
    )
    parser.add_argument(
        '--bench-venv',
        type=Path,
        default=DEFAULT_BENCH_VENV,
        help=f'environment with pty-chi ({SETUP_BENCH_COMMAND})',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            if getattr(args, name) is None:
                setattr(args, name, value)
    if args.num_points is None:
        args.num_points = 1024
    if args.ptychi_iterations is None:
        args.ptychi_iterations = list(PTYCHI_ITERATIONS)
    if args.through_ptychodus and (args.model or args.refine_iterations or args.fine_tune_epochs):
        _parser().error('--model, --refine-iterations and --fine-tune-epochs work in process only')
    if args.through_ptychodus and args.mode == Mode.SUPERVISED.value:
        _parser().error('--mode supervised works in process only')
    load = prepare_output(args.out)
    start = time.perf_counter()
    result = run_benchmark(args)
    result['quick'] = args.quick
    result['date'] = datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')
    command = command_line('ptychopinn_plugin.evidence.realistic', argv)
    path = write_report(args.out, result, command, time.perf_counter() - start, load)
    print(path.read_text())
    return 0


if __name__ == '__main__':
    sys.exit(main())

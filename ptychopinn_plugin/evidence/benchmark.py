"""Reconstruction quality: PINN vs Supervised, gridsize, dose, two simulators, a measured scan.

``python -m ptychopinn_plugin.evidence.benchmark --out DIR`` trains on a scan of one object and
reconstructs a scan of another, and reports amplitude / phase PSNR and SSIM and the FRC resolution
(``core/metrics.py``) with the spread over seeds. Scans come from this project's simulator
(``core/simulate.make_scan``) or from Ptychodus's own forward model
(``ptychodus_io/simulation.simulate_with_ptychodus``). The default sweep varies one factor at a
time around PINN, gridsize 1, 1e6 photons, our simulator (``--full`` runs the whole grid).

``--siemens-star`` adds the measured Siemens star of ``shared/data/tike-siemens-star``: PINN
trains on the left part of the scan and reconstructs the right part, compared with an iterative
reconstruction (pty-chi through ``ptychodus -b reconstruct``, see ``baseline.py``) of all the data.

Every setting is reported three times, each row naming its maker (``report.made_by``): the network
alone (``RefineIterations 0``), the plugin's defaults (the network, then the built-in refinement
started as ``InferenceConfig.refine_start`` says), and the same refinement from a flat object with
no network (``report.flat_start_refinement``), with the probe held fixed as the defaults hold it.

Writes ``DIR/benchmark.md``, ``DIR/benchmark.json`` and PNG figures.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import (
    ExecutionConfig,
    InferenceConfig,
    Mode,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ..core import metrics, simulate
from ..core.contract import TrainingData
from ..core.stitching import extract_patches, scanned_region_mask
from ..engines import solver_device
from .report import (
    MADE_BY_GUESS,
    MADE_BY_PTYCHI,
    command_line,
    flat_start_refinement,
    load_note,
    machine_description,
    made_by,
    markdown_table,
    prepare_output,
    pyplot,
    save_object_figure,
    spread,
)

logger = logging.getLogger('ptychopinn_plugin.evidence.benchmark')

__all__ = ['Setting', 'main', 'run_setting', 'score_object']

SCORE_KEYS = ('amplitude_psnr_db', 'phase_psnr_db', 'amplitude_ssim', 'phase_ssim', 'frc_px')
REFINE_ITERATIONS = InferenceConfig().refine_iterations
"""Refinement iterations of the default rows, and of the flat-start rows beside them."""
MAKERS = {
    'network_scores': made_by(0, InferenceConfig().refine_start),
    'scores': made_by(REFINE_ITERATIONS, InferenceConfig().refine_start),
    'flat_scores': made_by(REFINE_ITERATIONS, None),
}
"""The sweep's three rows per setting: :class:`Measured` field -> what made those scores."""


@dataclass(frozen=True)
class Setting:
    """One cell of the sweep."""

    mode: Mode = Mode.PINN
    gridsize: int = 1
    num_photons: float = 1e6
    simulator: str = 'core'
    """'core' (core/simulate.py) or 'ptychodus' (Ptychodus's forward model)."""

    @property
    def label(self) -> str:
        photons = f'{self.num_photons:.0e} photons'
        return f'{self.mode.value}, gridsize {self.gridsize}, {photons}, {self.simulator}'


@dataclass
class Measured:
    setting: Setting
    seed: int
    scores: dict[str, float]
    """The plugin's defaults: the network, then the built-in refinement."""
    train_s: float
    network_scores: dict[str, float]
    """The network alone (``RefineIterations 0``), from the same reconstruction."""
    flat_scores: dict[str, float]
    """The built-in refinement from a flat object, no network, as many iterations."""
    flat_s: float


def simulated_scan(
    setting: Setting, seed: int, num_patterns: int, n: int
) -> tuple[TrainingData, np.ndarray]:
    """(data with ground-truth patches, true object) of one smooth random object."""
    if setting.simulator == 'core':
        scan = simulate.make_scan('smooth', num_patterns, n, setting.num_photons, seed=seed)
        return scan.data, scan.object_
    if setting.simulator != 'ptychodus':
        raise SystemExit(f"unknown simulator {setting.simulator!r}; choose 'core' or 'ptychodus'")
    from ..ptychodus_io.inputs import training_data_from_reconstruct_input
    from ..ptychodus_io.simulation import ScanSpec, make_workflow_scan

    side = int(np.ceil(np.sqrt(num_patterns)))
    spec = ScanSpec(
        pattern_size_px=n, step_px=n / 4, columns=side, rows=side, num_photons=setting.num_photons
    )
    scan = make_workflow_scan(seed, spec)
    data = training_data_from_reconstruct_input(scan.simulated.reconstruct_input)
    patches = extract_patches(scan.truth, data.positions_px, n)
    return replace(data, ground_truth_patches=patches), scan.truth


def score_object(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """PSNR / SSIM over the mask and the FRC resolution (half-bit, pixels) of its bounding box."""
    scores = metrics.compare_objects(estimate, truth, mask)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    scores['frc_px'] = metrics.frc_resolution(estimate[box], truth[box])
    return scores


def run_setting(
    setting: Setting,
    seed: int,
    *,
    epochs: int,
    num_train: int,
    num_test: int,
    n: int,
    backend: str,
    figure: Path | None = None,
) -> Measured:
    """Train on object ``seed``, reconstruct object ``1000 + seed``, score."""
    from ..workflow import TrainingRun

    train, _ = simulated_scan(setting, seed, num_train, n)
    test, truth = simulated_scan(setting, 1000 + seed, num_test, n)
    model = ModelConfig(
        mode=setting.mode,
        pattern_size_px=n,
        gridsize=setting.gridsize,
        num_neighbors=4 if setting.gridsize > 1 else 7,
        n_filters_scale=1,
    )
    config = PluginConfig(
        model=model,
        training=TrainingConfig(num_epochs=epochs, batch_size=16, seed=seed),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    start = time.perf_counter()
    run = TrainingRun([train], config)
    list(run.epochs())
    archive = run.archive()
    run.release()
    train_s = time.perf_counter() - start
    network = _NetworkObject()
    estimate, _ = _reconstructed(archive, test, config.execution, truth.shape, network=network)
    flat = flat_start_refinement(
        _with_probe(test, network.probe),
        truth.shape,
        REFINE_ITERATIONS,
        device=solver_device(config.execution),
    )
    mask = scanned_region_mask(test.positions_px, truth.shape, n, default_stitch_crop_px(n))
    scores = score_object(estimate, truth, mask)
    network_scores = score_object(network.object_, truth, mask)
    flat_scores = score_object(flat.object_, truth, mask)
    logger.info(
        '%s seed %d: defaults %s; network alone %s; flat start %s',
        setting.label,
        seed,
        scores,
        network_scores,
        flat_scores,
    )
    if figure is not None:
        save_object_figure(
            figure,
            [
                ('truth', truth * mask),
                *(
                    (title, metrics.align_complex(image, truth, mask) * mask)
                    for title, image in (
                        ('network alone', network.object_),
                        ('network + refinement', estimate),
                        ('refinement alone (flat start)', flat.object_),
                    )
                ),
            ],
            suptitle=f'{setting.label}, seed {seed}',
        )
    return Measured(setting, seed, scores, train_s, network_scores, flat_scores, flat.seconds)


def default_settings(full: bool) -> list[Setting]:
    if full:
        return [
            Setting(mode, g, photons, simulator)
            for mode, g, photons, simulator in itertools.product(
                (Mode.PINN, Mode.SUPERVISED), (1, 2), (1e4, 1e6, 1e9), ('core', 'ptychodus')
            )
        ]
    centre = Setting()
    return [
        centre,
        Setting(mode=Mode.SUPERVISED),
        Setting(gridsize=2),
        Setting(num_photons=1e4),
        Setting(mode=Mode.SUPERVISED, num_photons=1e4),
        Setting(num_photons=1e9),
        Setting(mode=Mode.SUPERVISED, num_photons=1e9),
        Setting(simulator='ptychodus'),
    ]


def sweep_rows(results: list[Measured]) -> list[list[object]]:
    """Three rows per setting, one per maker (:data:`MAKERS`); training seconds only where the
    network made (part of) the object."""
    rows = []
    for setting in dict.fromkeys(r.setting for r in results):
        mine = [r for r in results if r.setting == setting]
        for field_name, maker in MAKERS.items():
            seconds = f'{np.mean([r.train_s for r in mine]):.0f}'
            if field_name == 'flat_scores':
                seconds = f'0 (refinement {np.mean([r.flat_s for r in mine]):.1f} s)'
            rows.append(
                [
                    setting.mode.value,
                    setting.gridsize,
                    f'{setting.num_photons:.0e}',
                    setting.simulator,
                    maker,
                    *(str(spread([getattr(r, field_name)[k] for r in mine])) for k in SCORE_KEYS),
                    seconds,
                ]
            )
    return rows


def sweep_figure(path: Path, results: list[Measured]) -> None:
    """Phase and amplitude SSIM against dose, PINN and Supervised (gridsize 1, core simulator)."""
    plt = pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    for axis, key in zip(axes, ('amplitude_ssim', 'phase_ssim'), strict=True):
        for mode in (Mode.PINN, Mode.SUPERVISED):
            for field_name, style, maker in (
                ('scores', 'o-', 'network + refinement'),
                ('network_scores', 's--', 'network alone'),
            ):
                points = {}
                for r in results:
                    s = r.setting
                    if s.mode is mode and s.gridsize == 1 and s.simulator == 'core':
                        points.setdefault(s.num_photons, []).append(getattr(r, field_name)[key])
                if not points:
                    continue
                doses = sorted(points)
                means = [np.mean(points[d]) for d in doses]
                stds = [np.std(points[d]) for d in doses]
                axis.errorbar(
                    doses, means, yerr=stds, fmt=style, capsize=3, label=f'{mode.value}, {maker}'
                )
        axis.set_xscale('log')
        axis.set_xlabel('photons per pattern')
        axis.set_title(key.replace('_', ' '), fontsize=9)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=72)
    plt.close(fig)


# ------------------------------------------------------------------ measured: Siemens star

SIEMENS_STAR = Path(__file__).resolve().parents[3] / 'shared' / 'data' / 'tike-siemens-star'
"""``shared/data/tike-siemens-star`` next to the repository (read there, never copied in)."""
STAR_MARGIN_PX = 4
"""Object border beyond the outermost patch, in pixels."""


@dataclass(frozen=True)
class MeasuredScan:
    """The measured scan in our conventions: centred counts, probe, positions, object shape."""

    counts: np.ndarray
    probe: np.ndarray
    positions_px: np.ndarray
    object_shape: tuple[int, int]


def load_siemens_star(folder: Path = SIEMENS_STAR, pattern_size_px: int = 128) -> MeasuredScan:
    """Read ``siemens-star-small.npz.bz2`` (see its README): counts with the zero frequency moved to
    the centre, probe mode 0, and patch centres (x, y) in object pixels of a fitting object.

    ``pattern_size_px`` 64 keeps the central 64 x 64 detector pixels: the object pixel doubles, so
    positions halve and the probe is resampled by keeping the central part of its spectrum (the
    same band the cropped detector sees)."""
    import bz2
    import io

    path = folder / 'siemens-star-small.npz.bz2'
    if not path.is_file():
        raise SystemExit(
            f'{path} not found; the measured Siemens star lives in shared/data/tike-siemens-star '
            'beside the repository (pass --siemens-star-dir)'
        )
    with bz2.open(path) as stream:
        archive = np.load(io.BytesIO(stream.read()))
        counts = np.asarray(archive['data'][0], dtype=np.float32)
        probe = np.asarray(archive['probe']).reshape(-1, *counts.shape[-2:])[0]
        corners = np.asarray(archive['scan'][0], dtype=np.float64)  # (row, column) minimum corner
    n = counts.shape[-1]
    counts = np.fft.fftshift(counts, axes=(-2, -1))
    if pattern_size_px not in (n, n // 2):
        raise SystemExit(f'the Siemens star supports pattern sizes {n} and {n // 2}')
    if pattern_size_px != n:
        low, high = (n - pattern_size_px) // 2, (n + pattern_size_px) // 2
        counts = np.ascontiguousarray(counts[:, low:high, low:high])
        spectrum = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(probe)))[low:high, low:high]
        probe = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(spectrum))) * (pattern_size_px / n)
        corners = corners / (n / pattern_size_px)
        n = pattern_size_px
    offset = STAR_MARGIN_PX - corners.min(axis=0)
    centres = corners + offset + (n - 1) / 2  # patch index (N-1)/2 is the scan point
    positions = np.stack([centres[:, 1], centres[:, 0]], axis=1)
    extent = corners.max(axis=0) + offset + n + STAR_MARGIN_PX
    shape = (int(np.ceil(extent[0])), int(np.ceil(extent[1])))
    return MeasuredScan(counts, probe.astype(np.complex64), positions, shape)


def measured_training_data(scan: MeasuredScan, rows: np.ndarray) -> TrainingData:
    """The chosen scan points of the measured scan as contract data (counts -> amplitude)."""
    from ..core.contract import DiffractionQuantity, ScanMetadata

    counts = scan.counts[rows]
    return TrainingData(
        diffraction_amplitude=np.sqrt(counts).astype(np.float32),
        positions_px=scan.positions_px[rows],
        probe=scan.probe,
        metadata=ScanMetadata(
            source_quantity=DiffractionQuantity.COUNTS,
            num_photons=float(np.mean(np.sum(counts, axis=(1, 2)))),
            source='tike siemens-star-small (measured)',
        ),
    )


def write_measured_workflow(directory: Path, scan: MeasuredScan, settings) -> Path:
    """A Ptychodus workflow directory of the measured scan (flat initial object)."""
    from ptychodus.api.assemble import AssembledDiffractionData
    from ptychodus.api.constants import energy_eV_to_wavelength_m
    from ptychodus.api.geometry import PixelGeometry
    from ptychodus.api.io import StandardFileLayout, save_diffraction_data, save_product

    from ..ptychodus_io.products import (
        DEFAULT_DETECTOR_PIXEL_SIZE_M,
        DEFAULT_PHOTON_ENERGY_EV,
        far_field_object_pixel_size_m,
        make_product,
    )
    from ..ptychodus_io.workflow_dir import write_settings

    n = scan.counts.shape[-1]
    wavelength_m = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
    product = make_product(
        np.ones(scan.object_shape, np.complex64),
        scan.probe,
        scan.positions_px,
        pixel_size_m=far_field_object_pixel_size_m(n, wavelength_m=wavelength_m),
        wavelength_m=wavelength_m,
        name='tike-siemens-star',
    )
    assembled = AssembledDiffractionData(
        indexes=np.arange(len(scan.counts)),
        patterns=scan.counts,
        pixel_geometry=PixelGeometry(DEFAULT_DETECTOR_PIXEL_SIZE_M, DEFAULT_DETECTOR_PIXEL_SIZE_M),
        bad_pixels=np.zeros(scan.counts.shape[1:], dtype=bool),
    )
    directory.mkdir(parents=True, exist_ok=True)
    save_diffraction_data(directory / StandardFileLayout.DIFFRACTION, assembled)
    save_product(directory / StandardFileLayout.PRODUCT, product)
    write_settings(directory / StandardFileLayout.SETTINGS, settings)
    return directory


STAR_PROBES = ('model', 'ptychi')
"""The probe the PINN trains and reconstructs the star with: the file's zone-plate model, or the
probe pty-chi refined in its reconstruction of all points (the measured-data workflow, issue 16)."""


def siemens_star(
    out: Path,
    *,
    folder: Path,
    bench_venv: Path,
    epochs: int,
    backend: str,
    ptychi_algorithm: str,
    ptychi_iterations: int,
    pattern_size_px: int,
    probe_trainable: bool = False,
    probe: str = 'model',
    split: str = 'x',
    n_filters_scale: int = 1,
) -> dict[str, object]:
    """PINN trained on one half of the star, reconstructing the other, against pty-chi.

    ``split`` 'x': train on the points left of the median x, test on the rest; 'y': above and below
    the median y. The reference is pty-chi on all points; pty-chi on the test half alone (from the
    file's probe, as shipped) is the ceiling a half-scan reconstruction can reach against it.
    """
    from ptychodus.api.io import load_product

    from ..workflow import TrainingRun, model_probe, probe_was_refined
    from .baseline import ptychi_settings, reconstruction_seconds, run_batch

    if probe not in STAR_PROBES:
        raise SystemExit(f'--star-probe must be one of {STAR_PROBES}, got {probe!r}')
    scan = load_siemens_star(folder, pattern_size_px)
    n = scan.counts.shape[-1]
    axis = {'x': 0, 'y': 1}[split]
    median = float(np.median(scan.positions_px[:, axis]))
    train_rows = np.flatnonzero(scan.positions_px[:, axis] < median)
    test_rows = np.flatnonzero(scan.positions_px[:, axis] >= median)
    settings = ptychi_settings(ptychi_algorithm, ptychi_iterations)

    def ptychi(name: str, measured: MeasuredScan):
        directory = write_measured_workflow(out / name / 'input', measured, settings)
        done = run_batch(
            bench_venv / 'bin' / 'ptychodus', 'reconstruct', directory, directory.parent / 'output'
        )
        products = sorted((directory.parent / 'output').glob('product.*.h5'))
        if done.returncode != 0 or not products:
            raise SystemExit(f'pty-chi failed on the Siemens star:\n{done.log[-3000:]}')
        return load_product(products[-1]), reconstruction_seconds(done.log)

    product, ptychi_s = ptychi('star-ptychi', scan)
    reference = np.asarray(product.object_.get_layer(0))
    half_scan = MeasuredScan(
        scan.counts[test_rows], scan.probe, scan.positions_px[test_rows], scan.object_shape
    )
    half_product, half_s = ptychi('star-ptychi-test-half', half_scan)
    half = np.asarray(half_product.object_.get_layer(0))
    if probe == 'ptychi':
        refined = np.asarray(product.probes.get_array()).reshape(-1, n, n)[0]
        scan = replace(scan, probe=refined.astype(np.complex64))

    config = PluginConfig(
        model=ModelConfig(pattern_size_px=n, n_filters_scale=n_filters_scale),
        training=TrainingConfig(num_epochs=epochs, batch_size=16, probe_trainable=probe_trainable),
        execution=ExecutionConfig(backend=backend, device='cpu'),
    )
    start = time.perf_counter()
    run = TrainingRun([measured_training_data(scan, train_rows)], config)
    list(run.epochs())
    archive = run.archive()
    run.release()
    train_s = time.perf_counter() - start
    test = measured_training_data(scan, test_rows)
    network, _ = _reconstructed(
        archive, test, config.execution, scan.object_shape, InferenceConfig(refine_iterations=0)
    )
    start = time.perf_counter()
    extras = _NetworkObject()
    estimate, consistency = _reconstructed(
        archive, test, config.execution, scan.object_shape, network=extras
    )
    infer_s = time.perf_counter() - start
    flat = flat_start_refinement(
        _with_probe(test, extras.probe),
        scan.object_shape,
        REFINE_ITERATIONS,
        device=solver_device(config.execution),
    )
    crop = default_stitch_crop_px(n)
    mask = scanned_region_mask(test.positions_px, scan.object_shape, n, crop)
    scores = score_object(estimate, reference, mask)
    deramped = metrics.remove_relative_phase_ramp(estimate, reference, mask)
    ptychi_probe = np.asarray(product.probes.get_array()).reshape(-1, n, n)[0]
    trained_probe = model_probe(archive)
    refined_note = ', refined by the plugin' if probe_was_refined(archive) else ''
    save_object_figure(
        out / 'siemens_star.png',
        [
            ('pty-chi (all data)', reference),
            ('pty-chi, test half', metrics.align_complex(reference, reference, mask) * mask),
            ('pty-chi on the test half alone', metrics.align_complex(half, reference, mask) * mask),
            ('PtychoPINN, test half', metrics.align_complex(deramped, reference, mask) * mask),
            (
                'refinement alone (flat start)',
                metrics.align_complex(
                    metrics.remove_relative_phase_ramp(flat.object_, reference, mask),
                    reference,
                    mask,
                )
                * mask,
            ),
        ],
        suptitle=(
            f'measured Siemens star, N = {n}: PINN trained on one half ({epochs} ep., '
            f'{probe} probe{refined_note})'
        ),
    )
    return {
        'pattern_size_px': n,
        'num_train': int(train_rows.size),
        'num_test': int(test_rows.size),
        'split': split,
        'probe': probe,
        'epochs': epochs,
        'n_filters_scale': n_filters_scale,
        'probe_trainable': probe_trainable,
        'backend': backend,
        'train_s': train_s,
        'inference_s': infer_s,
        'ptychi': f'{ptychi_algorithm} {ptychi_iterations} iterations',
        'ptychi_reconstruction_s': ptychi_s,
        'ptychi_half_reconstruction_s': half_s,
        'scores_vs_ptychi': scores,
        'scores_vs_ptychi_ramp_removed': score_object(deramped, reference, mask),
        'network_vs_ptychi': score_object(network, reference, mask),
        'network_vs_ptychi_ramp_removed': score_object(
            metrics.remove_relative_phase_ramp(network, reference, mask), reference, mask
        ),
        'probe_refinement': archive.training_summary.get('probe_refinement'),
        'probe_correlation_with_ptychi': float(
            abs(np.vdot(ptychi_probe, trained_probe))
            / (np.linalg.norm(ptychi_probe) * np.linalg.norm(trained_probe))
        ),
        'ptychi_half_vs_ptychi': score_object(half, reference, mask),
        'flat_vs_ptychi': score_object(np.ones_like(reference), reference, mask),
        'flat_start_vs_ptychi': score_object(flat.object_, reference, mask),
        'flat_start_vs_ptychi_ramp_removed': score_object(
            metrics.remove_relative_phase_ramp(flat.object_, reference, mask), reference, mask
        ),
        'flat_start_s': flat.seconds,
        'flat_start_note': flat.note,
        'refine_iterations': REFINE_ITERATIONS,
        'consistency': consistency.as_dict() if consistency else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m ptychopinn_plugin.evidence.benchmark', description=__doc__.splitlines()[0]
    )
    parser.add_argument('--out', type=Path, required=True, help='output folder')
    parser.add_argument('--full', action='store_true', help='the whole grid (24 settings)')
    parser.add_argument('--seeds', default='0,1', help='seeds per setting')
    parser.add_argument('--epochs', type=int, default=8)
    parser.add_argument('--train-patterns', type=int, default=256)
    parser.add_argument('--test-patterns', type=int, default=144)
    parser.add_argument('--pattern-size', type=int, default=64)
    parser.add_argument('--backend', default='pytorch')
    parser.add_argument('--no-sweep', action='store_true', help='skip the simulated sweep')
    parser.add_argument('--siemens-star', action='store_true', help='add the measured Siemens star')
    parser.add_argument('--siemens-star-dir', type=Path, default=SIEMENS_STAR)
    parser.add_argument('--star-epochs', type=int, default=10)
    parser.add_argument('--star-size', type=int, default=64, help='64 (cropped) or 128 px')
    parser.add_argument(
        '--star-probe-trainable', action='store_true', help="let PINN refine the star's probe"
    )
    parser.add_argument(
        '--star-probe',
        choices=STAR_PROBES,
        default='model',
        help="the star's probe for the PINN: the file's model, or pty-chi's refined one",
    )
    parser.add_argument(
        '--star-split', choices=('x', 'y'), default='x', help='halves left/right or top/bottom'
    )
    parser.add_argument('--star-n-filters-scale', type=int, default=1)
    parser.add_argument('--bench-venv', type=Path, default=Path('.venv-bench'))
    parser.add_argument('--ptychi-algorithm', default='LSQML')
    parser.add_argument('--ptychi-iterations', type=int, default=100)
    args = parser.parse_args(argv)
    load = prepare_output(args.out)
    start = time.perf_counter()
    seeds = [int(s) for s in args.seeds.split(',') if s]
    results: list[Measured] = []
    if not args.no_sweep:
        for setting in default_settings(args.full):
            for seed in seeds:
                figure = None
                if seed == seeds[0]:
                    name = setting.label.replace(', ', '_').replace(' ', '').replace('+', '')
                    figure = args.out / f'sweep_{name}.png'
                results.append(
                    run_setting(
                        setting,
                        seed,
                        epochs=args.epochs,
                        num_train=args.train_patterns,
                        num_test=args.test_patterns,
                        n=args.pattern_size,
                        backend=args.backend,
                        figure=figure,
                    )
                )
        sweep_figure(args.out / 'sweep_ssim_vs_dose.png', results)
    star = None
    if args.siemens_star:
        star = siemens_star(
            args.out,
            folder=args.siemens_star_dir,
            bench_venv=args.bench_venv.absolute(),
            epochs=args.star_epochs,
            backend=args.backend,
            ptychi_algorithm=args.ptychi_algorithm,
            ptychi_iterations=args.ptychi_iterations,
            pattern_size_px=args.star_size,
            probe_trainable=args.star_probe_trainable,
            probe=args.star_probe,
            split=args.star_split,
            n_filters_scale=args.star_n_filters_scale,
        )
    command = command_line('ptychopinn_plugin.evidence.benchmark', argv)
    lines = [
        '# Reconstruction quality',
        '',
        f'Command: `{command}`  ',
        f'Finished in {(time.perf_counter() - start) / 60:.1f} min; {load} at the start, '
        f'{load_note()} at the end.  ',
        'Machine: ' + ', '.join(f'{k} {v}' for k, v in machine_description().items()) + '.',
        '',
    ]
    if results:
        lines += [
            '## Simulated scans',
            '',
            f'Train on a smooth random object (seed s), reconstruct another (seed 1000 + s); '
            f'{args.train_patterns} training and {args.test_patterns} test patterns of '
            f'{args.pattern_size} px, {args.epochs} epochs, NumFiltersScale 1, backend '
            f'{args.backend}, seeds {seeds}; mean +- std over seeds. Scores over the scanned '
            'region after removing the global complex scale; FRC: half-bit resolution in pixels '
            '(complex object, bounding box of the scanned region; 2 = Nyquist). "Made by": '
            '"network alone" is the trained network with `RefineIterations 0`; "network + '
            'refinement" the plugin\'s defaults (the network, then the built-in iterative '
            f'refinement, {REFINE_ITERATIONS} iterations, the probe held fixed); "refinement '
            'alone" the same refinement from a flat object with no network and no training. '
            'Only the network rows needed the training time.',
            '',
            markdown_table(
                [
                    'mode',
                    'gridsize',
                    'photons',
                    'simulator',
                    'made by',
                    'amplitude PSNR dB',
                    'phase PSNR dB',
                    'amplitude SSIM',
                    'phase SSIM',
                    'FRC px',
                    'train s',
                ],
                sweep_rows(results),
            ),
            '',
        ]
    if star:
        split = {'x': 'left of the median x', 'y': 'above the median y'}[star['split']]
        consistency = star['consistency'] or {}
        lines += [
            '## Measured Siemens star (tike)',
            '',
            f'PINN ({star["backend"]}, N = {star["pattern_size_px"]}, NumFiltersScale '
            f'{star["n_filters_scale"]}, {star["epochs"]} epochs, the {star["probe"]} probe) '
            f'trained on the {star["num_train"]} scan points {split} and '
            f'reconstructing the other {star["num_test"]}; reference: pty-chi '
            f'{star["ptychi"]} on all 516 points through `ptychodus -b reconstruct`, probe '
            f'refined as Ptychodus ships it (Reconstruction time '
            f'{star["ptychi_reconstruction_s"]} s; on the test half alone '
            f'{star["ptychi_half_reconstruction_s"]} s). Scores of the test half against the '
            "pty-chi object (not a ground truth). The plugin's refinement holds its probe fixed "
            '(the probe training used, refined by the plugin when training refined it).',
            '',
            markdown_table(
                ['object', 'made by', *SCORE_KEYS],
                [
                    [name, maker, *(star[key][k] for k in SCORE_KEYS)]
                    for name, maker, key in _star_rows(star)
                ],
            ),
            '',
            f'PtychoPINN training {star["train_s"]:.0f} s, reconstruction of {star["num_test"]} '
            f'patterns {star["inference_s"]:.1f} s (in process); data consistency of its '
            f'object: {consistency.get("median_noise_ratio", float("nan")):.2f} x the Poisson '
            f'noise, R-factor {consistency.get("median_r_factor", float("nan")):.3f}. The '
            f'flat-start refinement ({star["refine_iterations"]} iterations, the same probe, no '
            f'network, no training) took {star["flat_start_s"]:.1f} s; '
            f'{star["flat_start_note"]}. '
            f'{_probe_refinement_sentence(star)} "Ramp removed": the linear phase ramp between '
            "the object and pty-chi's removed first (reconstructions with different probes may "
            'differ by one; `metrics.remove_relative_phase_ramp`).',
            '',
        ]
    path = args.out / 'benchmark.md'
    path.write_text('\n'.join(lines))
    (args.out / 'benchmark.json').write_text(
        json.dumps(
            {
                'command': command,
                'machine': machine_description(),
                'sweep': [
                    {**asdict(r), 'setting': {**asdict(r.setting), 'mode': r.setting.mode.value}}
                    for r in results
                ],
                'siemens_star': star,
            },
            indent=1,
            default=str,
        )
    )
    print(path.read_text())
    return 0


def _star_rows(star: dict) -> list[tuple[str, str, str]]:
    """(row, made by, result key) of the star's table."""
    count = star['refine_iterations']
    start = InferenceConfig().refine_start
    default = made_by(count, start)
    flat = made_by(count, None)
    network = made_by(0, start)
    return [
        ('flat (initial guess)', MADE_BY_GUESS, 'flat_vs_ptychi'),
        ('pty-chi on the test half alone (the ceiling)', MADE_BY_PTYCHI, 'ptychi_half_vs_ptychi'),
        ('PtychoPINN, network only', network, 'network_vs_ptychi'),
        ('PtychoPINN, network only, ramp removed', network, 'network_vs_ptychi_ramp_removed'),
        ('PtychoPINN (default inference)', default, 'scores_vs_ptychi'),
        ('PtychoPINN (default inference), ramp removed', default, 'scores_vs_ptychi_ramp_removed'),
        ('built-in refinement, flat start (no network)', flat, 'flat_start_vs_ptychi'),
        (
            'built-in refinement, flat start (no network), ramp removed',
            flat,
            'flat_start_vs_ptychi_ramp_removed',
        ),
    ]


def _probe_refinement_sentence(star: dict) -> str:
    record = star.get('probe_refinement')
    correlation = star['probe_correlation_with_ptychi']
    if not record:
        return (
            'Training used the probe as given (no probe refinement); its correlation with '
            f"pty-chi's refined probe is {correlation:.3f}."
        )
    before = (record.get('before') or {}).get('median_noise_ratio', float('nan'))
    after = record['after']['median_noise_ratio']
    return (
        f'Probe refinement before training ({record["mode"]}, {record["iterations"]} iterations '
        f'on {record["num_patterns"]} points, {record["seconds"]:.0f} s): {before:.2f} -> '
        f'{after:.2f} x the noise, {"adopted" if record["adopted"] else "not adopted"}; the '
        f"trained probe's correlation with pty-chi's refined probe is {correlation:.3f}."
    )


class _NetworkObject:
    """Receives the network's stitched object of a reconstruction, before any refinement: the
    object ``RefineIterations 0`` returns (same stitching, phase synchronisation and ramp fit);
    and the probe the refinement used (the finished step's ``probe_choice``), when it says."""

    object_: np.ndarray | None = None
    probe: np.ndarray | None = None


def _reconstructed(archive, data, execution, object_shape, inference=None, network=None):
    """The final object of ``data`` (default inference unless given) and its data consistency;
    ``network`` (a :class:`_NetworkObject`) also receives the network's object before refinement."""
    from ..workflow import reconstruct

    steps = reconstruct(
        archive,
        data,
        execution=execution,
        inference=inference or InferenceConfig(),
        object_shape=object_shape,
    )
    final = None
    for step in steps:
        stitched = step.num_done == step.num_groups and step.num_refined == 0
        if network is not None and step.object_ is not None and stitched:
            network.object_ = step.object_
        if step.finished:
            final = step
    if network is not None and final.probe_choice is not None:
        network.probe = final.probe_choice.probe
    return final.object_, final.consistency


def _with_probe(data: TrainingData, probe: np.ndarray | None) -> TrainingData:
    """``data`` with the probe the default reconstruction refined with (its ``probe_choice``;
    None: the scan's own): the probe of the flat-start row, so that only the start differs."""
    return data if probe is None else replace(data, probe=probe)


if __name__ == '__main__':
    sys.exit(main())

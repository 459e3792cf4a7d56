"""Simulated Ptychodus workflow directories and headless ``ptychodus -b`` runs.

A scan is simulated with Ptychodus's own forward model (``core.translate.simulate_with_ptychodus``,
object from ``core.simulate``) and written with Ptychodus's own writers as a standard workflow
directory (``diffraction.h5``, ``product.h5``, ``settings.ini``). ``run_ptychodus`` runs the real
``ptychodus`` console script next to the running interpreter. Used by the demo and the integration
tests.
"""

from __future__ import annotations

import configparser
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.io import StandardFileLayout, save_diffraction_data, save_product

from ..core import simulate
from ..core.translate import (
    DEFAULT_PHOTON_ENERGY_EV,
    SimulatedScan,
    far_field_object_pixel_size_m,
    make_product,
    product_with_object,
    product_with_probe_power,
    simulate_with_ptychodus,
)

__all__ = [
    'BatchRun',
    'ScanSpec',
    'WorkflowScan',
    'make_workflow_scan',
    'run_ptychodus',
    'write_settings',
    'write_workflow_directory',
]

PTYCHODUS = Path(sys.executable).with_name('ptychodus')


@dataclass(frozen=True)
class ScanSpec:
    """What to simulate: a jittered raster over an object of one kind."""

    pattern_size_px: int = 32
    step_px: float = 6.0
    columns: int = 12
    rows: int = 12
    num_photons: float = 1e5
    kind: str = 'smooth'
    aberration_rad: float = 3.0


@dataclass(frozen=True)
class WorkflowScan:
    """A simulated scan: the truth, Ptychodus's simulation and the positions in object pixels."""

    truth: np.ndarray
    simulated: SimulatedScan
    positions_px: np.ndarray

    @property
    def initial_guess(self) -> np.ndarray:
        """Ptychodus's default initial object (all ones)."""
        return np.ones_like(self.truth)

    def with_probe_power_of_data(self) -> WorkflowScan:
        """This scan with the product's probe rescaled to the measured mean counts per pattern.

        The probe an iterative solver with a unitary far-field model expects (see
        ``translate.product_with_probe_power``); the patterns and positions are unchanged.
        """
        counts = self.simulated.assembled.get_patterns()
        photons = float(np.mean(np.sum(counts, axis=(-2, -1), dtype=np.float64)))
        product = product_with_probe_power(self.simulated.product, photons)
        return replace(self, simulated=replace(self.simulated, product=product))


def make_workflow_scan(seed: int = 0, spec: ScanSpec | None = None) -> WorkflowScan:
    """Simulate a far-field scan with Ptychodus's forward model (dose calibrated to the spec)."""
    spec = spec or ScanSpec()
    n = spec.pattern_size_px
    border = n + 4
    shape = (
        math.ceil((spec.rows - 1) * spec.step_px + border),
        math.ceil((spec.columns - 1) * spec.step_px + border),
    )
    rng = np.random.default_rng(seed)
    truth = simulate.make_object(spec.kind, shape, seed=rng)
    positions = simulate.raster_scan(shape, n, spec.step_px, jitter_px=0.1 * spec.step_px, seed=rng)
    probe = simulate.disk_probe(
        n, 0.2 * n, propagation_px2=0.4 * n, aberration_rad=spec.aberration_rad
    )
    wavelength_m = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
    product = make_product(
        truth,
        probe,
        positions,
        pixel_size_m=far_field_object_pixel_size_m(n, wavelength_m=wavelength_m),
        wavelength_m=wavelength_m,
        name=f'simulated-{spec.kind}-{seed}',
    )
    simulated = simulate_with_ptychodus(product, num_photons=spec.num_photons, rng=rng)
    return WorkflowScan(truth=truth, simulated=simulated, positions_px=positions)


def write_workflow_directory(
    directory: Path,
    scan: WorkflowScan,
    settings: dict[str, dict[str, object]],
    *,
    object_is_truth: bool = False,
) -> Path:
    """Write ``diffraction.h5``, ``product.h5`` and ``settings.ini`` with Ptychodus's writers.

    The product holds the calibrated probe, the positions and either the flat initial guess (a
    user's product before reconstruction) or the truth (``object_is_truth``).
    """
    directory.mkdir(parents=True, exist_ok=True)
    save_diffraction_data(directory / StandardFileLayout.DIFFRACTION, scan.simulated.assembled)
    object_ = scan.truth if object_is_truth else scan.initial_guess
    save_product(
        directory / StandardFileLayout.PRODUCT,
        product_with_object(scan.simulated.product, object_),
    )
    write_settings(directory / StandardFileLayout.SETTINGS, settings)
    return directory


def write_settings(path: Path, settings: dict[str, dict[str, object]]) -> Path:
    """Write an INI settings file keeping Ptychodus's CamelCase names."""
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # type: ignore[assignment,method-assign]
    for group, values in settings.items():
        config[group] = {name: str(value) for name, value in values.items()}
    with path.open('w') as stream:
        config.write(stream)
    return path


@dataclass(frozen=True)
class BatchRun:
    returncode: int
    log: str
    seconds: float


def run_ptychodus(
    action: str,
    input_directory: Path,
    output_directory: Path,
    *,
    timeout_s: float = 600,
    python_prelude: str | None = None,
    env: dict[str, str] | None = None,
    executable: Path | None = None,
) -> BatchRun:
    """Run ``ptychodus -b ACTION -i IN -o OUT``; its log is also saved next to ``OUT``.

    ``python_prelude`` runs Python code in the subprocess before Ptychodus starts (through a
    ``sitecustomize`` module on ``PYTHONPATH``), e.g. to make a framework unimportable.
    ``executable``: another environment's ``ptychodus`` script (default: this environment's).
    """
    input_directory, output_directory = input_directory.resolve(), output_directory.resolve()
    environment = {**os.environ, **(env or {})}
    environment.pop('PYTHONPATH', None)
    if python_prelude is not None:
        prelude_dir = output_directory.parent / f'{output_directory.name}-prelude'
        prelude_dir.mkdir(parents=True, exist_ok=True)
        (prelude_dir / 'sitecustomize.py').write_text(python_prelude)
        environment['PYTHONPATH'] = str(prelude_dir)
    command = [
        str(PTYCHODUS if executable is None else executable),
        '-b',
        action,
        '-i',
        str(input_directory),
        '-o',
        str(output_directory),
    ]
    start = time.perf_counter()
    completed = subprocess.run(
        command,
        cwd=input_directory.parent,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    seconds = time.perf_counter() - start
    (output_directory.parent / f'{output_directory.name}-{action}.log').write_text(completed.stdout)
    return BatchRun(completed.returncode, completed.stdout, seconds)

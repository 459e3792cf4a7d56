"""Helpers of the integration tests: simulated Ptychodus workflow directories and batch runs.

A scan is simulated with Ptychodus's own forward model (``core.translate.simulate_with_ptychodus``)
and written with Ptychodus's own writers (``save_product``, ``save_diffraction_data``) as a standard
workflow directory; ``run_ptychodus`` runs the real ``ptychodus`` console script of this virtual
environment in a subprocess (the installed, non-editable package, as a user runs it).
"""

from __future__ import annotations

import configparser
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ptychodus.api.constants import energy_eV_to_wavelength_m
from ptychodus.api.io import StandardFileLayout, save_diffraction_data, save_product

from ptychopinn_plugin.core import simulate
from ptychopinn_plugin.core.translate import (
    DEFAULT_PHOTON_ENERGY_EV,
    SimulatedScan,
    far_field_object_pixel_size_m,
    make_product,
    product_with_object,
    simulate_with_ptychodus,
)

PTYCHODUS = Path(sys.executable).with_name('ptychodus')
PATTERN_SIZE_PX = 32
NUM_PHOTONS = 1e5
"""Mean counts per pattern: a well-exposed scan, so a few epochs suffice to learn it."""
SCAN_STEP_PX = 6.0
"""Raster step (about 60 % linear overlap of the 0.2 N radius probe at N = 32)."""
OBJECT_KIND = 'smooth'
"""Gaussian-filtered random amplitude and phase: structure a tiny network learns in a few epochs."""
SCAN_COLUMNS = 12
SCAN_ROWS = 12
"""144 scan points: a tiny training set that two CPU cores get through in seconds per epoch."""


@dataclass(frozen=True)
class WorkflowScan:
    """A simulated scan: the truth, Ptychodus's simulation and the flat initial guess."""

    truth: np.ndarray
    simulated: SimulatedScan
    positions_px: np.ndarray

    @property
    def initial_guess(self) -> np.ndarray:
        """Ptychodus's default initial object (Random builder, no deviation): all ones."""
        return np.ones_like(self.truth)


def make_workflow_scan(seed: int = 0, kind: str = OBJECT_KIND) -> WorkflowScan:
    """Simulate a small far-field scan with Ptychodus (object from ``core.simulate``)."""
    n = PATTERN_SIZE_PX
    border = n + 4
    shape = (
        math.ceil((SCAN_ROWS - 1) * SCAN_STEP_PX + border),
        math.ceil((SCAN_COLUMNS - 1) * SCAN_STEP_PX + border),
    )
    rng = np.random.default_rng(seed)
    truth = simulate.make_object(kind, shape, seed=rng)
    positions = simulate.raster_scan(shape, n, SCAN_STEP_PX, jitter_px=0.1 * SCAN_STEP_PX, seed=rng)
    probe = simulate.disk_probe(n, 0.2 * n, propagation_px2=0.4 * n, aberration_rad=3.0)
    wavelength_m = energy_eV_to_wavelength_m(DEFAULT_PHOTON_ENERGY_EV)
    product = make_product(
        truth,
        probe,
        positions,
        pixel_size_m=far_field_object_pixel_size_m(n, wavelength_m=wavelength_m),
        wavelength_m=wavelength_m,
        name='simulated',
    )
    simulated = simulate_with_ptychodus(product, num_photons=NUM_PHOTONS, rng=rng)
    return WorkflowScan(truth=truth, simulated=simulated, positions_px=positions)


def write_workflow_directory(
    directory: Path,
    scan: WorkflowScan,
    settings: dict[str, dict[str, object]],
    *,
    object_is_truth: bool = False,
) -> Path:
    """Write ``diffraction.h5``, ``product.h5`` and ``settings.ini`` with Ptychodus's writers.

    The product holds the calibrated probe, the positions and either the flat initial guess (as a
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
    config = configparser.ConfigParser(interpolation=None)
    config.optionxform = str  # keep Ptychodus's CamelCase names
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
) -> BatchRun:
    """Run ``ptychodus -b ACTION -i IN -o OUT``; its log is also saved as ``OUT/../ACTION.log``.

    ``python_prelude`` runs Python code in the subprocess before Ptychodus starts (through a
    ``sitecustomize`` module on ``PYTHONPATH``), e.g. to make a framework unimportable.
    """
    import time

    environment = {**os.environ, **(env or {})}
    environment.pop('PYTHONPATH', None)
    environment.setdefault('OMP_NUM_THREADS', '2')
    if python_prelude is not None:
        prelude_dir = output_directory.parent / f'{output_directory.name}-prelude'
        prelude_dir.mkdir(parents=True, exist_ok=True)
        (prelude_dir / 'sitecustomize.py').write_text(python_prelude)
        environment['PYTHONPATH'] = str(prelude_dir)
    command = [
        str(PTYCHODUS),
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
    )
    seconds = time.perf_counter() - start
    (output_directory.parent / f'{output_directory.name}-{action}.log').write_text(completed.stdout)
    return BatchRun(completed.returncode, completed.stdout, seconds)


def block_frameworks_prelude(*names: str) -> str:
    """A ``sitecustomize`` under which the given top-level packages look uninstalled.

    ``sys.modules[name] = None`` makes ``import name`` raise ``ModuleNotFoundError`` and
    ``importlib.util.find_spec(name)`` return None, exactly as for a package that is not installed.
    """
    return 'import sys\n' + ''.join(f'sys.modules[{name!r}] = None\n' for name in names)

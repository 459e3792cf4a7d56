"""Which probe a reconstruction uses (``[PtychoPINNInference] ReconstructionProbe``), through the
real ``ptychodus -b reconstruct``: with ``auto`` the probe that explains the scan's patterns wins,
whether it is the model's (a new scan that comes with a wrong model probe) or the scan's own (a
model trained with a wrong probe); the log and the output product say which.

The network's weights do not enter the choice, so the models are untrained archives whose probe is
set on purpose; the measured-star version with a trained model is
``tests/examples/test_examples.py`` (``measured_workflow.py``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from ptychodus.api.io import load_product

from ptychopinn_plugin.config import ModelConfig, PluginConfig
from ptychopinn_plugin.core import physics
from ptychopinn_plugin.core.archive import Archive, save_archive
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.ptychodus_io.batch import run_ptychodus
from ptychopinn_plugin.ptychodus_io.layout import product_file
from ptychopinn_plugin.ptychodus_io.products import make_product
from ptychopinn_plugin.ptychodus_io.workflow_dir import write_workflow_directory

pytestmark = pytest.mark.e2e

N = 32
SETTINGS = {
    'Processing': {'Algorithm': 'ptychopinn_pinn'},
    'PtychoPINNModel': {'NumFiltersScale': 1},
    'PtychoPINNInference': {'RefineIterations': 20},
    'PtychoPINN': {'Backend': 'pytorch', 'Device': 'cpu'},
}


def _defocused(probe: np.ndarray) -> np.ndarray:
    """The probe with a quadratic far-field phase: a wrong probe no object can make up for."""
    q = np.fft.fftfreq(N) * N
    spectrum = np.fft.fft2(probe) * np.exp(0.02j * (q[:, None] ** 2 + q[None, :] ** 2))
    return np.fft.ifft2(spectrum).astype(np.complex64)


def _model(path: Path, probe: np.ndarray) -> Path:
    """An untrained model archive whose probe (the one it 'was trained with') is ``probe``."""
    model = ModelConfig(pattern_size_px=N, n_filters_scale=1)
    weights = initial_weights(
        model, physics.normalize_probe(probe, model.probe_scale), math.log(100.0), 0
    )
    archive = Archive(config=PluginConfig(model=model), weights=weights, trained_backend='pytorch')
    return save_archive(path, archive, overwrite=True)


def _reconstruct(root: Path, workflow_scan, scan_probe: np.ndarray, model_probe: np.ndarray):
    product = workflow_scan.simulated.product
    given = make_product(
        workflow_scan.initial_guess,
        scan_probe,
        workflow_scan.positions_px,
        pixel_size_m=product.object_.get_pixel_geometry().width_m,
        wavelength_m=product.metadata.photon_wavelength_m,
    )
    directory = root / 'in'
    write_workflow_directory(directory, given, workflow_scan.simulated.assembled, SETTINGS)
    _model(directory / 'model.zip', model_probe)
    run = run_ptychodus('reconstruct', directory, root / 'out')
    assert run.returncode == 0, run.log[-3000:]
    written = product_file(root / 'out')
    assert written is not None
    return run.log, load_product(written)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.ravel(a).astype(np.complex128), np.ravel(b).astype(np.complex128)
    return float(abs(np.vdot(a, b)) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.fixture(scope='module')
def true_probe(workflow_scan) -> np.ndarray:
    probes = workflow_scan.simulated.product.probes.get_probe_no_opr()
    return np.asarray(probes.get_incoherent_mode(0), dtype=np.complex64)


def test_a_new_scan_with_a_wrong_probe_is_reconstructed_with_the_models(
    tmp_path, workflow_scan, true_probe, installed_copy
) -> None:
    log, product = _reconstruct(tmp_path, workflow_scan, _defocused(true_probe), true_probe)
    assert 'PtychoPINN reconstruction probe: model (' in log, log[-3000:]
    assert 'PtychoPINN reconstruction probe: model (' in product.metadata.comments
    used = np.asarray(product.probes.get_probe_no_opr().get_incoherent_mode(0))
    assert _correlation(used, true_probe) > 0.999


def test_a_scan_whose_own_probe_is_better_keeps_it(
    tmp_path, workflow_scan, true_probe, installed_copy
) -> None:
    log, product = _reconstruct(tmp_path, workflow_scan, true_probe, _defocused(true_probe))
    assert 'PtychoPINN reconstruction probe: scan (' in log, log[-3000:]
    assert 'PtychoPINN reconstruction probe: scan (' in product.metadata.comments
    used = np.asarray(product.probes.get_probe_no_opr().get_incoherent_mode(0))
    assert _correlation(used, true_probe) > 0.999

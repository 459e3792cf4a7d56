"""Helpers shared by the robustness tests (imported by name; the conftest puts this folder on
``sys.path``): a small scan, untrained model archives, a configured library, bad-data builders."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
from ptychodus.api.assemble import AssembledDiffractionData
from ptychodus.api.reconstruct import ReconstructInput
from ptychodus.api.settings import SettingsRegistry

from ptychopinn_plugin.config import ModelConfig, PluginConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.archive import Archive, save_archive
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.ptychodus_adapter.library import PtychoPINNLibrary
from ptychopinn_plugin.ptychodus_io.products import product_with_object
from ptychopinn_plugin.ptychodus_io.simulation import ScanSpec, WorkflowScan, make_workflow_scan

PATTERN_SIZE_PX = 32
SMALL_SCAN = ScanSpec(pattern_size_px=PATTERN_SIZE_PX, step_px=6.0, columns=6, rows=6)
"""36 points at N = 32: the smallest scan that still has neighbours on every side."""
TINY_MODEL = ModelConfig(pattern_size_px=PATTERN_SIZE_PX, n_filters_scale=1)


def make_small_scan(seed: int = 0) -> WorkflowScan:
    return make_workflow_scan(seed, SMALL_SCAN)


def untrained_archive(model: ModelConfig = TINY_MODEL, *, seed: int = 0) -> Archive:
    """An archive of initial weights for ``model`` (what a zero-epoch training would save)."""
    probe = physics.normalize_probe(
        simulate.disk_probe(model.pattern_size_px, model.pattern_size_px / 4), model.probe_scale
    )
    weights = initial_weights(model, probe, math.log(100.0), seed)
    return Archive(
        config=PluginConfig(model=model),
        weights=weights,
        normalization={'num_photons': 1e5},
        training_summary={'epochs_completed': 0},
        trained_backend='pytorch',
    )


def save_untrained(path: Path, model: ModelConfig = TINY_MODEL) -> Path:
    return save_archive(path, untrained_archive(model), overwrite=True)


def library(**plugin: object) -> PtychoPINNLibrary:
    """The PtychoPINN library as Ptychodus builds it, set up for tiny, fast CPU runs."""
    result = PtychoPINNLibrary(SettingsRegistry())
    settings = result.settings
    settings.model_settings.n_filters_scale.set_value(1)
    settings.training_settings.nepochs.set_value(1)
    settings.training_settings.batch_size.set_value(8)
    settings.plugin_settings.device.set_value('cpu')
    settings.plugin_settings.inference_batch_size.set_value(16)
    for name, value in plugin.items():
        getattr(settings.plugin_settings, name).set_value(value)
    return result


def reconstruct_input(
    scan: WorkflowScan, *, counts: np.ndarray | None = None, product=None
) -> ReconstructInput:
    """What Ptychodus hands a reconstructor, with the counts or the product replaced."""
    given = scan.simulated.reconstruct_input
    product = product or product_with_object(given.product, scan.initial_guess)
    patterns = given.diffraction_patterns if counts is None else counts
    return ReconstructInput(patterns, given.bad_pixels, product)


def with_counts(scan: WorkflowScan, counts: np.ndarray) -> WorkflowScan:
    """The scan with other detector counts (for writing a workflow directory)."""
    assembled = scan.simulated.assembled
    replaced = AssembledDiffractionData(
        np.arange(counts.shape[0], dtype=np.int64),
        counts,
        assembled.get_pixel_geometry(),
        np.zeros(counts.shape[1:], dtype=bool),
    )
    simulated = dataclasses.replace(scan.simulated, assembled=replaced)
    return dataclasses.replace(scan, simulated=simulated)

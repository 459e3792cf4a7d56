"""Helpers shared by the engine tests (imported by name; pytest puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np

from ptychopinn_plugin.config import Backend, ExecutionConfig, ModelConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.engines import get_engine


def make_probe(n_px: int) -> np.ndarray:
    return simulate.disk_probe(n_px, radius_px=n_px / 4, propagation_px2=0.4 * n_px)


def build_engine(
    backend: Backend,
    model: ModelConfig,
    *,
    seed: int = 0,
    log_intensity_scale: float = 3.0,
):
    probe = physics.normalize_probe(make_probe(model.pattern_size_px), model.probe_scale)
    weights = initial_weights(model, probe, log_intensity_scale, seed)
    factory = get_engine(backend)
    return factory(model, ExecutionConfig(backend=backend, device='cpu'), weights), weights

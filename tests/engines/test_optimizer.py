"""Both engines train with the same Adam (``core.schedule``), not each framework's own defaults."""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import ModelConfig, Precision, TrainingConfig
from ptychopinn_plugin.core.schedule import ADAM_BETAS, ADAM_EPSILON

MODEL = ModelConfig(pattern_size_px=32, n_filters_scale=1)


def test_pytorch_adam_uses_the_shared_settings() -> None:
    pytest.importorskip('lightning')
    from ptychopinn_plugin.engines.pytorch_engine import training
    from ptychopinn_plugin.engines.pytorch_engine.network import PtychoPINNNetwork

    module = training.PtychoPINNModule(
        PtychoPINNNetwork(MODEL),
        MODEL,
        TrainingConfig(learning_rate=2e-3),
        canvas_px=32,
        channels_last=True,
    )
    optimizer = module.configure_optimizers()
    assert optimizer.defaults['eps'] == ADAM_EPSILON != 1e-8  # not torch's default
    assert optimizer.defaults['betas'] == ADAM_BETAS
    assert optimizer.defaults['lr'] == 2e-3


def test_tensorflow_adam_uses_the_shared_settings() -> None:
    pytest.importorskip('tensorflow')
    from ptychopinn_plugin.engines.tensorflow_engine.training import make_optimizer

    optimizer = make_optimizer(2e-3, Precision.FP32)
    assert optimizer.epsilon == pytest.approx(ADAM_EPSILON)
    assert (optimizer.beta_1, optimizer.beta_2) == pytest.approx(ADAM_BETAS)
    assert float(optimizer.learning_rate) == pytest.approx(2e-3)

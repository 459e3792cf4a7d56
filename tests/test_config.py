"""Strict configuration: unknown keys rejected, ranges enforced, JSON round trip exact."""

from __future__ import annotations

import pydantic
import pytest

from ptychopinn_plugin.config import (
    Backend,
    ExecutionConfig,
    ModelConfig,
    PluginConfig,
    TrainingConfig,
    default_stitch_crop_px,
)
from ptychopinn_plugin.errors import ConfigurationError


def test_config_round_trips_through_json_unchanged() -> None:
    config = PluginConfig(
        model=ModelConfig(pattern_size_px=128, gridsize=2, amp_activation='swish'),
        training=TrainingConfig(num_epochs=3, num_photons=1e6, early_stopping_patience=4),
        execution=ExecutionConfig(backend='tensorflow', device='cpu'),
    )
    assert PluginConfig.from_json(config.to_json()) == config
    assert PluginConfig.from_json(PluginConfig().to_json()) == PluginConfig()


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match='extra'):
        ModelConfig(gridsize=2, grid_size=2)
    with pytest.raises(ConfigurationError):
        PluginConfig.from_json('{"model": {"nfilters": 3}}')


@pytest.mark.parametrize(
    ('cls', 'values'),
    [
        (ModelConfig, {'pattern_size_px': 100}),
        (ModelConfig, {'gridsize': 4}),
        (ModelConfig, {'gridsize': 2, 'num_neighbors': 2}),
        (ModelConfig, {'probe_scale': 0.0}),
        (TrainingConfig, {'mae_weight': 1.5}),
        (TrainingConfig, {'learning_rate': 1e-5, 'min_learning_rate': 1e-4}),
        (TrainingConfig, {'validation_fraction': 1.0}),
        (ExecutionConfig, {'backend': 'jax'}),
    ],
)
def test_out_of_range_values_are_rejected(cls, values) -> None:
    with pytest.raises(pydantic.ValidationError):
        cls(**values)


def test_configs_are_immutable() -> None:
    config = ModelConfig()
    with pytest.raises(pydantic.ValidationError):
        config.gridsize = 2  # type: ignore[misc]


def test_every_field_is_documented() -> None:
    for cls in (ModelConfig, TrainingConfig, ExecutionConfig):
        for name, field in cls.model_fields.items():
            assert field.description, f'{cls.__name__}.{name} has no description'


def test_default_stitch_crop_is_twenty_pixels_at_n64_and_scales() -> None:
    assert default_stitch_crop_px(64) == 20
    assert default_stitch_crop_px(128) == 40
    assert Backend('pytorch') is Backend.PYTORCH

"""Prediction chunking shared by both engines (``engines/chunking.py``), without a framework."""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import ModelConfig
from ptychopinn_plugin.engines.chunking import predict_chunk_groups


@pytest.mark.parametrize(
    ('pattern_size_px', 'gridsize', 'patterns', 'groups'),
    [
        (64, 1, 128, 128),  # the budget counts patterns of 64 px
        (32, 1, 128, 128),  # smaller patterns do not enlarge the chunk
        (64, 2, 128, 32),  # four patterns per group
        (128, 1, 256, 64),  # (64 / 128)**2 of the budget
        (128, 2, 256, 16),
        (256, 2, 32, 1),  # never below one group
    ],
)
def test_the_chunk_is_the_pattern_budget_scaled_by_area_and_shared_by_the_group(
    pattern_size_px, gridsize, patterns, groups
) -> None:
    model = ModelConfig(pattern_size_px=pattern_size_px, gridsize=gridsize, num_neighbors=4)
    assert predict_chunk_groups(model, patterns) == groups


def test_a_budget_of_groups_times_channels_keeps_that_many_groups() -> None:
    """How the TensorFlow engine keeps its chunk in groups at every gridsize."""
    for gridsize in (1, 2, 3):
        model = ModelConfig(pattern_size_px=64, gridsize=gridsize, num_neighbors=9)
        assert predict_chunk_groups(model, 32 * model.num_channels) == 32

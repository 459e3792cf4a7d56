"""Streaming reconstruction: batching, partial results and stitching of a whole scan.

The engine here is an oracle that returns the true patch of each pattern (it reads the pattern's
index, encoded in one detector pixel), so the test isolates grouping, batching and stitching.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ptychopinn_plugin.config import InferenceConfig, ModelConfig
from ptychopinn_plugin.core import physics, simulate
from ptychopinn_plugin.core.metrics import psnr
from ptychopinn_plugin.core.stitching import scanned_region_mask
from ptychopinn_plugin.errors import DataContractError
from ptychopinn_plugin.inference import reconstruct_object

EXACT_PSNR_DB = 40.0
"""Perfect patches stitched back: limited only by float32 rounding of the Fourier shifts."""


class OracleEngine:
    solver_device = None  # the refinement runs with NumPy

    def __init__(self, data, scale: float) -> None:
        self.truth = data.ground_truth_patches
        self.scale = scale
        self.batch_sizes: list[int] = []

    def predict(self, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(inputs.shape[0])
        index = np.rint(inputs[..., 0, 0] / self.scale).astype(int) - 1
        return self.truth[index]


def _scan():
    scan = simulate.make_scan('camera', num_patterns=120, pattern_size_px=32, seed=3)
    amplitude = scan.data.diffraction_amplitude.copy()
    amplitude[:, 0, 0] = np.arange(1, scan.data.num_patterns + 1)  # the oracle's index
    data = replace(scan.data, diffraction_amplitude=amplitude)
    return scan, data, physics.dataset_normalization(amplitude)


@pytest.mark.parametrize('gridsize', [1, 2])
def test_perfect_patches_reconstruct_the_object_batch_by_batch(gridsize) -> None:
    scan, data, scale = _scan()
    engine = OracleEngine(data, scale)
    model = ModelConfig(pattern_size_px=32, gridsize=gridsize, num_neighbors=4)
    # the oracle's index in pixel (0, 0) moves every pattern's centre of mass: no ramp fit here,
    # and no refinement against those patterns (this test is about batching and stitching)
    inference = InferenceConfig(
        batch_size=25, num_partial_results=3, phase_ramp_correction=False, refine_iterations=0
    )
    steps = list(
        reconstruct_object(engine, data, model, inference, object_shape=scan.object_.shape)
    )
    total = data.num_patterns
    assert [s.num_done for s in steps] == [25, 50, 75, 100, total]
    partial = [s.num_done for s in steps if s.object_ is not None]
    assert len(partial) == 3
    assert partial[-1] == total
    assert steps[-1].finished
    assert max(engine.batch_sizes) == 25
    mask = scanned_region_mask(data.positions_px, scan.object_.shape, 32, 10)
    score = psnr(steps[-1].object_, scan.object_, mask=mask, part='complex')
    assert score > EXACT_PSNR_DB


def test_uncovered_pixels_keep_the_fill() -> None:
    scan, data, scale = _scan()
    fill = np.full(scan.object_.shape, 0.25 + 0.5j, np.complex64)
    last = list(
        reconstruct_object(
            OracleEngine(data, scale),
            data,
            ModelConfig(pattern_size_px=32),
            InferenceConfig(),
            object_shape=scan.object_.shape,
            fill=fill,
        )
    )[-1]
    assert last.object_[0, 0] == fill[0, 0]
    assert np.all(last.weight[last.object_ == fill] == 0)


def test_a_pattern_size_the_model_was_not_trained_for_is_refused() -> None:
    scan, data, scale = _scan()
    with pytest.raises(DataContractError, match='trained on 64 px'):
        next(
            reconstruct_object(
                OracleEngine(data, scale),
                data,
                ModelConfig(pattern_size_px=64),
                InferenceConfig(),
                object_shape=scan.object_.shape,
            )
        )

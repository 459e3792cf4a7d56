"""Streaming reconstruction of a whole scan: groups -> engine batches -> stitched object.

Used identically with both engines. Groups are predicted batch by batch and stitched as they come
(``stitching.Stitcher``), so memory stays bounded by one batch plus the object, whatever the number
of scan points. The caller receives a handful of partial objects (for Ptychodus's progress display)
and the final one. Grouping is in ``grouping.py``; the input normalisation in ``physics.py``.

By default every scan point is reconstructed (one group per point). A network determines each patch
only up to a global phase; ``InferenceConfig.phase_alignment`` chooses how stitching reconciles
the patches' phases (none, greedy in an overlap order, or global phase synchronisation). The network
input is normalised per scan (``physics.dataset_normalization``), as during training, so scans of a
different dose than the training data still present the network with unit-power inputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..config import InferenceConfig, ModelConfig, PhaseAlignment, default_stitch_crop_px
from ..errors import DataContractError
from . import physics
from .contract import TrainingData
from .dataset import group_inputs
from .grouping import group_scan_points, overlap_order
from .stitching import Stitcher

logger = logging.getLogger(__name__)

__all__ = ['InferenceProgress', 'reconstruct_object']


@dataclass(frozen=True, eq=False)
class InferenceProgress:
    """One step of a reconstruction: how far it is and, at checkpoints, the object so far."""

    num_done: int
    """Groups predicted so far."""
    num_groups: int
    object_: np.ndarray | None
    """(H, W) complex64 object stitched so far (at checkpoints and at the end), else None."""
    weight: np.ndarray | None
    """(H, W) float32 number of patch crops covering each pixel, alongside ``object_``."""

    @property
    def finished(self) -> bool:
        return self.num_done == self.num_groups


def reconstruct_object(
    engine,
    data: TrainingData,
    model: ModelConfig,
    inference: InferenceConfig,
    *,
    object_shape: tuple[int, int],
    fill: np.ndarray | None = None,
    seed: int = 0,
) -> Iterator[InferenceProgress]:
    """Predict every group of ``data`` with ``engine`` and stitch the patches onto the object grid.

    Parameters
    ----------
    engine : an ``engines.Engine`` holding trained weights.
    data : the scan; ``positions_px`` refer to the object grid of shape ``object_shape``.
    model, inference : the model's configuration and how to run it.
    object_shape : (H, W) of the output object (the input product's object grid).
    fill : (H, W) complex values for pixels no patch covers (for example the object guess).
    seed : seed of the neighbour draws for gridsize > 1.

    Yields
    ------
    InferenceProgress
        After every batch; ``object_`` is set at ``inference.num_partial_results`` evenly spaced
        checkpoints, the last one when every group is done.
    """
    if data.pattern_size_px != model.pattern_size_px:
        raise DataContractError(
            f'the scan has {data.pattern_size_px} px patterns but the model was trained on '
            f'{model.pattern_size_px} px patterns; crop or bin the patterns to '
            f'{model.pattern_size_px} px, or train a model for this size'
        )
    groups = group_scan_points(
        data.positions_px,
        model.gridsize,
        num_neighbors=model.num_neighbors,
        seed=seed,
        num_groups=inference.num_groups,
    )
    input_scale = physics.dataset_normalization(data.diffraction_amplitude)
    crop = inference.stitch_crop_px or default_stitch_crop_px(model.pattern_size_px)
    alignment = inference.phase_alignment
    stitcher = Stitcher(
        object_shape,
        model.pattern_size_px,
        crop,
        align_phase=alignment is PhaseAlignment.GREEDY,
        synchronize_phase=alignment is PhaseAlignment.GLOBAL,
    )
    # with phase alignment, visit groups so that each one follows an already-stitched neighbour
    order = (
        overlap_order(groups.centroids_px)
        if alignment is PhaseAlignment.GREEDY
        else np.arange(groups.num_groups, dtype=np.int64)
    )
    total = groups.num_groups
    checkpoints = _checkpoints(total, inference.batch_size, inference.num_partial_results)
    logger.info('reconstructing %d groups in batches of %d', total, inference.batch_size)
    for begin in range(0, total, inference.batch_size):
        rows = order[begin : begin + inference.batch_size]
        inputs = group_inputs(data, groups, input_scale, rows)
        patches = engine.predict(inputs, groups.relative_offsets_px[rows].astype(np.float32))
        members = groups.member_indices[rows]
        stitcher.add(
            patches.reshape(-1, model.pattern_size_px, model.pattern_size_px),
            data.positions_px[members].reshape(-1, 2),
        )
        done = begin + rows.size
        if done in checkpoints:
            object_, weight = stitcher.result(fill)
            yield InferenceProgress(done, total, object_, weight)
        else:
            yield InferenceProgress(done, total, None, None)


def _checkpoints(total: int, batch_size: int, count: int) -> set[int]:
    """Group counts after which a partial object is produced (batch ends; always the last)."""
    batch_ends = np.minimum(np.arange(batch_size, total + batch_size, batch_size), total)
    wanted = np.linspace(total / count, total, count)
    chosen = {int(batch_ends[np.searchsorted(batch_ends, value)]) for value in wanted}
    chosen.add(total)
    return chosen

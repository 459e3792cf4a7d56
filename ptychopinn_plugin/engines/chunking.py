"""Prediction in fixed-size chunks, shared by both engines, with a back-off on out-of-memory.

:func:`prediction_arrays` checks and converts what a caller hands to ``predict``;
:func:`predict_chunk_groups` sizes the chunk from a budget of patterns; :func:`predict_in_chunks`
runs the framework call chunk by chunk.

Every call into the framework sees exactly ``chunk`` groups (the last chunk zero-padded):
convolution kernels (oneDNN, cuDNN) choose their algorithm, and so their float32 rounding, by batch
shape, so a fixed shape makes a group's prediction independent of its batch and batch mates.

Because of that padding, a smaller batch from the caller does not lower the device memory of a
call; only a smaller chunk does. When the framework runs out of memory, the chunk is halved and
the failed chunk predicted again, down to one group; the engine keeps the smaller chunk for later
calls. Predictions after a halving may differ from before by float32 rounding, since the kernels
see another batch shape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from ..config import ModelConfig
from ..errors import DataContractError, is_out_of_memory

__all__ = ['CHUNK_REFERENCE_PX', 'predict_chunk_groups', 'predict_in_chunks', 'prediction_arrays']

logger = logging.getLogger(__name__)


CHUNK_REFERENCE_PX = 64
"""Chunk budgets count patterns of this side; larger patterns shrink the chunk by the area ratio."""


def predict_chunk_groups(model: ModelConfig, patterns: int) -> int:
    """Groups per prediction call for a budget of ``patterns`` patterns of side 64 px (at least 1).

    For N > 64 the budget shrinks by ``(64 / N)**2`` (memory grows with the pattern area); it is
    then shared among the C patterns of each group.
    """
    reference = CHUNK_REFERENCE_PX
    scaled = int(patterns) * reference**2 // max(reference, model.pattern_size_px) ** 2
    return max(1, scaled // model.num_channels)


def prediction_arrays(
    model: ModelConfig, inputs: np.ndarray, offsets_px: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` (B, C, N, N) and ``offsets_px`` (B, C, 2) as float32, checked against ``model``.

    Raises
    ------
    DataContractError
        When either shape does not fit the model's channels and pattern size.
    """
    inputs = np.asarray(inputs, dtype=np.float32)
    offsets_px = np.asarray(offsets_px, dtype=np.float32)
    n_px, channels = model.pattern_size_px, model.num_channels
    if inputs.ndim != 4 or inputs.shape[1:] != (channels, n_px, n_px):
        raise DataContractError(
            f'inputs must have shape (B, {channels}, {n_px}, {n_px}), got {inputs.shape}'
        )
    if offsets_px.shape != (inputs.shape[0], channels, 2):
        raise DataContractError(
            f'offsets must have shape ({inputs.shape[0]}, {channels}, 2), got {offsets_px.shape}'
        )
    return inputs, offsets_px


def predict_in_chunks(
    run_chunk: Callable[[np.ndarray, np.ndarray], np.ndarray],
    inputs: np.ndarray,
    offsets_px: np.ndarray,
    chunk: int,
    *,
    free_memory: Callable[[], None] | None = None,
) -> tuple[list[np.ndarray], int]:
    """Predict ``inputs`` in calls of exactly ``chunk`` groups, halving ``chunk`` on out-of-memory.

    Parameters
    ----------
    run_chunk : callable
        ``run_chunk(inputs, offsets)`` on arrays of exactly ``chunk`` groups returns one NumPy
        array whose first axis is the group.
    inputs : ndarray (B, C, N, N) float32
    offsets_px : ndarray (B, C, 2) float32
    chunk : groups per call (at least 1).
    free_memory : called after an out-of-memory error, before the retry (release cached blocks).

    Returns
    -------
    outputs : list of ndarray
        Per-call results trimmed of padding, in order (concatenate them).
    chunk : int
        The chunk the last call used: the caller keeps it for its next predictions.

    Raises
    ------
    The framework's out-of-memory error unchanged when a single group does not fit, and any other
    error unchanged.
    """
    chunk = max(1, int(chunk))
    total = inputs.shape[0]
    outputs: list[np.ndarray] = []
    start = 0
    while start < total:
        count = min(chunk, total - start)
        batch_inputs = np.zeros((chunk, *inputs.shape[1:]), np.float32)
        batch_offsets = np.zeros((chunk, *offsets_px.shape[1:]), np.float32)
        batch_inputs[:count] = inputs[start : start + count]
        batch_offsets[:count] = offsets_px[start : start + count]
        failure = None
        try:
            result = run_chunk(batch_inputs, batch_offsets)
        except Exception as exc:
            if chunk <= 1 or not is_out_of_memory(exc):
                raise
            failure = type(exc).__name__
        if failure is None:
            outputs.append(result[:count])
            start += count
            continue
        # outside the except block: the traceback and its device tensors are gone by now
        if free_memory is not None:
            free_memory()
        halved = chunk // 2
        logger.warning(
            'out of memory predicting %d groups per call (%s); predicting %d groups per call '
            'from now on',
            chunk,
            failure,
            halved,
        )
        chunk = halved
    return outputs, chunk

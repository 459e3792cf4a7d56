"""Streaming reconstruction of a whole scan: groups -> engine batches -> stitched object.

Used identically with both engines. Groups are predicted batch by batch and stitched as they come
(``stitching.Stitcher``), so memory stays bounded by one batch plus the object, whatever the number
of scan points. The caller receives a handful of partial objects (for Ptychodus's progress display)
and the final one. Grouping is in ``grouping.py``; the input normalisation in ``physics.py``.

By default every scan point is reconstructed (one group per point). A network determines each patch
only up to a global phase; ``InferenceConfig.phase_alignment`` chooses how stitching reconciles
the patches' phases (none, greedy in an overlap order, or global phase synchronisation, the
default), and ``phase_ramp_correction`` removes the object-wide phase ramp that the data, not
the overlaps, determine (``solver/phase_ramp.py``). Last, ``refine_iterations`` iterations of the
iterative solver refine the stitched object against the measured patterns through their overlap,
probe and positions fixed (``solver/overlap.py``), and ``amplitude_denoising`` denoises the
refined amplitude at its shot-noise level (``solver/denoise.py``). The refinement is the same code
for both engines, on the engine's ``solver_device`` (``solver/arrays.py``).

The network input is normalised per scan (``physics.dataset_normalization``), as during training,
so scans of a different dose than the training data still present the network with unit-power
inputs.

Robustness: a scan whose patches all miss the object grid, or whose groups span more than one
pattern (stray positions), is refused before any prediction. The engines halve their own chunk when
the device runs out of memory (``engines/chunking.py``); an out-of-memory error that still reaches
this module (a single group does not fit) becomes a :class:`DeviceOutOfMemoryError` saying what to
change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import (
    InferenceConfig,
    ModelConfig,
    PhaseAlignment,
    RefineStart,
    default_stitch_crop_px,
)
from .core import physics
from .core.contract import TrainingData
from .core.dataset import group_inputs
from .core.grouping import Groups, group_scan_points, overlap_order
from .core.protocol import Engine
from .core.stitching import Stitcher, checked_fill
from .errors import DataContractError, DeviceOutOfMemoryError, is_out_of_memory
from .solver.consistency import DataConsistency, consistency_of, measure_consistency
from .solver.denoise import denoise_refined
from .solver.overlap import OverlapRefinement
from .solver.phase_ramp import apply_phase_ramp, fit_phase_ramp
from .solver.probe import ProbeChoice

logger = logging.getLogger(__name__)

__all__ = [
    'InferenceProgress',
    'check_group_extent',
    'check_positions_on_object',
    'reconstruct_object',
]


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
    num_refined: int = 0
    """Refinement iterations done so far (they start once every group is stitched)."""
    num_refine_iterations: int = 0
    """Refinement iterations asked for (``InferenceConfig.refine_iterations``)."""
    consistency: DataConsistency | None = None
    """How well the final object explains the measured patterns (``solver/consistency.py``); set on
    the finished step only."""
    num_tuned: int = 0
    """Fine-tuning epochs done before the groups (``InferenceConfig.fine_tune_epochs``)."""
    num_tune_epochs: int = 0
    """Fine-tuning epochs asked for."""
    tuned_archive: Any = None
    """The fine-tuned model (a ``core.archive.Archive``), on the finished step of a fine-tuned
    reconstruction; the caller saves it only when the user asks."""
    probe_choice: ProbeChoice | None = None
    """The probe the refinement and the data consistency used, and why
    (``workflow.reconstruction_probe``); the output product carries it."""

    @property
    def finished(self) -> bool:
        return (
            self.num_done == self.num_groups
            and self.num_refined == self.num_refine_iterations
            and self.num_tuned == self.num_tune_epochs
        )

    @property
    def num_steps_done(self) -> int:
        """Fine-tuning epochs, groups predicted and refinement iterations done (the unit of
        progress bars)."""
        return self.num_tuned + self.num_done + self.num_refined

    @property
    def num_steps(self) -> int:
        """Fine-tuning epochs, groups and refinement iterations: the goal of
        :attr:`num_steps_done`."""
        return self.num_tune_epochs + self.num_groups + self.num_refine_iterations


def reconstruct_object(
    engine: Engine,
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
    engine : an :class:`~ptychopinn_plugin.core.protocol.Engine` holding trained weights.
    data : the scan; ``positions_px`` refer to the object grid of shape ``object_shape``.
    model, inference : the model's configuration and how to run it.
    object_shape : (H, W) of the output object (the input product's object grid).
    fill : (H, W) complex values for pixels no patch covers (for example the object guess).
    seed : seed of the neighbour draws for gridsize > 1.

    Yields
    ------
    InferenceProgress
        After every batch; ``object_`` is set at ``inference.num_partial_results`` evenly spaced
        checkpoints, the last one when every group is done. Then, with refinement, one per
        iteration (``num_refined``), the last holding the refined object (``finished``).
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
    on_grid = check_positions_on_object(data.positions_px, object_shape, model.pattern_size_px)
    # the solver's stages (refinement, consistency) use only the points stitching can use
    solver_rows = None if on_grid.all() else np.flatnonzero(on_grid)
    check_group_extent(groups, model.pattern_size_px)
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
    iterations = inference.refine_iterations
    stitched: tuple[np.ndarray, np.ndarray] | None = None
    checkpoints = sorted(_checkpoints(total, inference.batch_size, inference.num_partial_results))
    logger.info('reconstructing %d groups in batches of %d', total, inference.batch_size)
    begin = 0
    while begin < total:
        rows = order[begin : begin + inference.batch_size]
        inputs = group_inputs(data, groups, input_scale, rows)
        patches = _predict(engine, inputs, groups.relative_offsets_px[rows].astype(np.float32))
        members = groups.member_indices[rows]
        stitcher.add(
            patches.reshape(-1, model.pattern_size_px, model.pattern_size_px),
            data.positions_px[members].reshape(-1, 2),
        )
        begin += rows.size
        if checkpoints and begin >= checkpoints[0]:
            while checkpoints and checkpoints[0] <= begin:
                checkpoints.pop(0)
            stitched = _stitched(stitcher, data, inference, fill)
            final = begin == total and not iterations
            consistency = (
                _consistency(stitched[0], data, solver_rows, engine.solver_device)
                if final
                else None
            )
            yield InferenceProgress(begin, total, *stitched, 0, iterations, consistency)
        else:
            yield InferenceProgress(begin, total, None, None, 0, iterations)
    # the stitcher keeps every crop until the end (3.2 kB a pattern at N = 64 with global phase
    # synchronisation): free it before the refinement allocates its own arrays
    del stitcher
    if iterations and stitched is not None:
        yield from _refined(
            *stitched,
            data,
            total,
            iterations,
            solver_rows,
            filled=fill is not None,
            start=inference.refine_start,
            denoising=inference.amplitude_denoising,
            device=engine.solver_device,
        )


def _refined(
    object_: np.ndarray,
    weight: np.ndarray,
    data: TrainingData,
    total: int,
    iterations: int,
    rows: np.ndarray | None,
    *,
    filled: bool,
    start: RefineStart,
    denoising: float = 0.0,
    device: str | None = None,
) -> Iterator[InferenceProgress]:
    """Refine the stitched object against the data (``solver/overlap.py``), one step a yield.

    The probe windows reach beyond the stitched crops, so the refinement also updates pixels no
    crop covers: it starts them from the fill, or from free space (1) without one. Pixels no
    window reaches, and the barely lit ones at the border (``solver.overlap.LIT_FRACTION``), keep
    the value they were stitched with. ``start`` (``InferenceConfig.refine_start``): with
    ``AMPLITUDE`` the covered pixels start from the network's amplitude with a flat phase; with
    ``FLAT`` they start from 1 instead of the network's object, and keep 1 where the refinement is
    not kept: with a flat fill (Ptychodus's initial guess) this is the refinement alone from a
    flat object (``evidence.report.flat_start_refinement``). ``denoising``
    (``InferenceConfig.amplitude_denoising``): then the refined amplitude is denoised by total
    variation at this many times its shot-noise level (``solver/denoise.py``; 0: not).
    ``rows``: the scan points whose patch touches the object grid (all when None). ``device``:
    where the refinement runs (the engine's ``solver_device``, ``solver/arrays.py``).
    """
    covered = weight > 0
    if start is RefineStart.FLAT:  # the network's pixels become 1; the fill stays
        object_ = np.where(covered, np.complex64(1), object_)
    initial = object_ if filled else np.where(covered, object_, np.complex64(1))
    if start is RefineStart.AMPLITUDE:
        initial = np.where(covered, np.abs(initial), initial)
    refinement = OverlapRefinement(
        initial, data.positions_px, data.diffraction_amplitude, data.probe, rows=rows, device=device
    )
    logger.info(
        'refining the stitched object against the patterns: %d iterations (%r)',
        iterations,
        refinement.arrays,
    )
    errors = []
    for count in range(1, iterations + 1):
        errors.append(refinement.step())
        if count < iterations:
            yield InferenceProgress(total, total, None, None, count, iterations)
    logger.info(
        'refinement: mean squared amplitude misfit %.4g -> %.4g (counts) over %d iterations',
        errors[0],
        errors[-1],
        iterations,
    )
    refined = np.where(refinement.illuminated, refinement.object_, object_)
    refined = denoise_refined(refinement, refined, denoising)
    refinement.set_object(refined)  # measure what is returned, with the same solver
    consistency = _reported(consistency_of(refinement), refined=True)
    yield InferenceProgress(total, total, refined, weight, iterations, iterations, consistency)


def _consistency(
    object_: np.ndarray, data: TrainingData, rows: np.ndarray | None, device: str | None
) -> DataConsistency | None:
    """Measure how well the network's stitched ``object_`` (not refined) explains the patterns
    of the scan points ``rows`` (all when None); log it, and warn when poor."""
    try:
        consistency = measure_consistency(
            object_,
            data.positions_px,
            data.diffraction_amplitude,
            data.probe,
            rows=rows,
            device=device,
        )
    except DataContractError as exc:  # a zero far field: nothing to compare
        logger.warning('data consistency not measured: %s', exc)
        return None
    return _reported(consistency, refined=False)


def _reported(consistency: DataConsistency, *, refined: bool) -> DataConsistency:
    """Log ``consistency`` and, when the data are not explained, warn in words."""
    logger.info('%s', consistency.summary())
    warning = consistency.warning(refined=refined)
    if warning:
        logger.warning('%s', warning)
    return consistency


def _predict(engine: Engine, inputs: np.ndarray, offsets_px: np.ndarray) -> np.ndarray:
    """``engine.predict``; the framework's out-of-memory error becomes a user-facing one.

    Retrying with a smaller batch would not help: the engines pad every call to their chunk and
    already halve it down to one group before the error reaches here.
    """
    try:
        return engine.predict(inputs, offsets_px)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        raise DeviceOutOfMemoryError(
            f'the device ran out of memory predicting a single group ({exc}); free device memory '
            '(close other programs using the GPU), lower [PtychoPINN] Precision to bf16-mixed, or '
            'set [PtychoPINN] Device = cpu'
        ) from exc


def check_positions_on_object(
    positions_px: np.ndarray, object_shape: tuple[int, int], pattern_size_px: int
) -> np.ndarray:
    """Refuse a scan none of whose patches touches the object grid; warn about stray points.

    Parameters
    ----------
    positions_px : ndarray, shape (n, 2), float64
        Scan positions (x, y) in object pixels.
    object_shape : (H, W) of the object grid.
    pattern_size_px : side N of the patch stitched at each position.

    Returns
    -------
    ndarray, shape (n,), bool
        Whether each point's patch touches the grid: the points stitching, the refinement and
        the consistency check use.

    Raises
    ------
    DataContractError
        When every N x N patch lies wholly outside the object grid.
    """
    height, width = object_shape
    half = (pattern_size_px - 1) / 2
    x_px, y_px = positions_px[:, 0], positions_px[:, 1]
    outside = (x_px + half < -0.5) | (x_px - half > width - 0.5)
    outside |= (y_px + half < -0.5) | (y_px - half > height - 0.5)
    num_outside = int(np.count_nonzero(outside))
    if num_outside == 0:
        return ~outside
    spans = f'x {x_px.min():.4g} .. {x_px.max():.4g} px, y {y_px.min():.4g} .. {y_px.max():.4g} px'
    if num_outside == positions_px.shape[0]:
        raise DataContractError(
            f'all {num_outside} scan positions ({spans}) put their {pattern_size_px} px patch '
            f'wholly outside the {width} x {height} px object grid, so nothing can be '
            'reconstructed; check the position units (metres vs pixels) and the object geometry '
            '(rebuild the object in Ptychodus so that it covers the scan)'
        )
    stray = np.flatnonzero(outside)
    named = ', '.join(
        f'{index} at ({x_px[index]:.4g}, {y_px[index]:.4g}) px' for index in stray[:5]
    ) + (', ...' if stray.size > 5 else '')
    logger.warning(
        '%d of %d scan positions put their patch wholly outside the %d x %d px object grid '
        '(scan point %s; all positions span %s); they are skipped when stitching, refining and '
        'measuring the data consistency. A corrupt position reading is the usual cause; enlarge '
        'the object grid to keep them',
        num_outside,
        positions_px.shape[0],
        width,
        height,
        named,
        spans,
    )
    return ~outside


MAX_GROUP_OFFSET_PATTERNS = 1.0
"""Largest distance, in pattern sizes N, of a group member from its group's centroid. Farther
members share no overlap with the rest of the group, and the overlap canvas (side N + 2 x offset)
grows quadratically with it: one stray position could otherwise ask for gigabytes."""


def check_group_extent(groups: Groups, pattern_size_px: int, source: str = 'the scan') -> None:
    """Refuse groups whose members lie farther apart than the overlap constraint can use.

    Raises
    ------
    DataContractError
        When a member lies more than ``MAX_GROUP_OFFSET_PATTERNS * N`` pixels from its centroid.
    """
    if groups.num_channels == 1:
        return
    largest = groups.max_offset_px()
    limit = MAX_GROUP_OFFSET_PATTERNS * pattern_size_px
    if largest > limit:
        far = np.max(np.abs(groups.relative_offsets_px), axis=(1, 2)) > limit
        raise DataContractError(
            f'{int(np.count_nonzero(far))} groups of {source} have a member {largest:.4g} px from '
            f'its group centre, more than the {limit:.4g} px (one pattern) a group may span; some '
            'scan positions are far from all others (outliers, or positions in the wrong units). '
            'Remove those positions, or use gridsize 1'
        )


def _stitched(
    stitcher: Stitcher, data: TrainingData, inference: InferenceConfig, fill: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The object so far, its phase ramp fitted to the data when asked, then the fill."""
    object_, weight = stitcher.result()
    covered = weight > 0
    if inference.phase_ramp_correction:
        ramp = fit_phase_ramp(
            object_, weight, data.positions_px, data.diffraction_amplitude, data.probe
        )
        object_ = apply_phase_ramp(object_, ramp, covered)
    if fill is not None:
        object_ = np.where(covered, object_, checked_fill(fill, object_.shape)).astype(np.complex64)
    return object_, weight


def _checkpoints(total: int, batch_size: int, count: int) -> set[int]:
    """Group counts after which a partial object is produced (batch ends; always the last)."""
    batch_ends = np.minimum(np.arange(batch_size, total + batch_size, batch_size), total)
    wanted = np.linspace(total / count, total, count)
    chosen = {int(batch_ends[np.searchsorted(batch_ends, value)]) for value in wanted}
    chosen.add(total)
    return chosen

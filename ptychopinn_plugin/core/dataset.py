"""From contract data to the grouped, normalised arrays both engines train and predict on.

This is where the data meet the model: grouping (``grouping.py``), the per-dataset input
normalisation, the count targets of the Poisson likelihood and the intensity scale (``physics.py``),
and the train / validation split. Engines receive :class:`.protocol.TrainingArrays` and never
see a :class:`TrainingData`. Streaming inference over a whole scan is in ``inference.py``.

Several training files: each file is grouped and normalised on its own (positions refer to its own
object). The count targets share one photon count so that one intensity scale fits them all: the
configured ``num_photons``, else the mean of the files' measured photon counts.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..config import ModelConfig, TrainingConfig
from ..errors import DataContractError
from . import physics
from .contract import DiffractionQuantity, TrainingData
from .grouping import Groups, group_scan_points
from .protocol import TrainingArrays, needs_truth

logger = logging.getLogger(__name__)

__all__ = [
    'Normalization',
    'PreparedTraining',
    'group_inputs',
    'prepare_training',
    'resolve_photons',
]


@dataclass(frozen=True)
class Normalization:
    """Scalars that tie the data to the model; stored in the model archive."""

    num_photons: float
    """Mean photons per pattern the count targets are expressed in."""
    initial_intensity_scale: float
    """K at the start of training: predicted counts are K^2 |F(probe * object)|^2."""
    input_scales: tuple[float, ...]
    """Per training file: factor a that gives the network input a * amplitude unit mean power."""
    num_photons_measured: bool
    """True when ``num_photons`` was measured from detector counts rather than configured."""


@dataclass(frozen=True, eq=False)
class PreparedTraining:
    """Everything a training run needs besides the configuration."""

    arrays: TrainingArrays
    normalization: Normalization
    normalized_probe: np.ndarray
    groups: tuple[Groups, ...]


def resolve_photons(
    datasets: Sequence[TrainingData], training: TrainingConfig
) -> tuple[float, bool]:
    """The photon count of the count targets and whether it was measured.

    Raises :class:`DataContractError` when the data hold amplitudes of unknown dose and no
    ``num_photons`` is configured.
    """
    if training.num_photons is not None:
        return float(training.num_photons), False
    measured = []
    for data in datasets:
        if data.metadata.source_quantity is not DiffractionQuantity.COUNTS:
            raise DataContractError(
                f'{data.metadata.source or "a dataset"} holds amplitudes of unknown dose; set '
                'num_photons (Ptychodus: [PtychoPINNTraining] NumPhotons) to the mean photons per '
                'pattern, or provide detector counts'
            )
        measured.append(data.metadata.num_photons or data.mean_total_counts())
    return float(np.mean(measured)), True


def group_inputs(
    data: TrainingData, groups: Groups, input_scale: float, indices: np.ndarray | None = None
) -> np.ndarray:
    """Network inputs (B, C, N, N) float32 for ``groups`` (all, or the rows ``indices``)."""
    members = groups.member_indices if indices is None else groups.member_indices[indices]
    return (data.diffraction_amplitude[members] * np.float32(input_scale)).astype(np.float32)


def prepare_training(
    datasets: Sequence[TrainingData], model: ModelConfig, training: TrainingConfig
) -> PreparedTraining:
    """Group, normalise and split ``datasets`` for training ``model``.

    The probe of the first dataset is the model's probe (all datasets must share the pattern size).
    """
    if not datasets:
        raise DataContractError('no training data: give at least one dataset')
    _check_compatible(datasets, model, training)
    num_photons, measured = resolve_photons(datasets, training)
    probe = physics.normalize_probe(datasets[0].probe, model.probe_scale)
    scale = physics.initial_intensity_scale(num_photons, probe, model.probe_mask)

    inputs, targets, offsets, truths, all_groups, input_scales = [], [], [], [], [], []
    for number, data in enumerate(datasets):
        groups = group_scan_points(
            data.positions_px,
            model.gridsize,
            num_neighbors=model.num_neighbors,
            seed=training.seed + number,
        )
        input_scale = physics.dataset_normalization(data.diffraction_amplitude)
        members = groups.member_indices
        amplitude = data.diffraction_amplitude[members]
        inputs.append((amplitude * np.float32(input_scale)).astype(np.float32))
        targets.append(
            physics.count_targets(
                amplitude, num_photons, mean_power=data.mean_total_counts(), dtype=np.float32
            )
        )
        offsets.append(groups.relative_offsets_px.astype(np.float32))
        if data.ground_truth_patches is not None:
            truths.append(data.ground_truth_patches[members])
        all_groups.append(groups)
        input_scales.append(float(input_scale))

    truth = np.concatenate(truths) if len(truths) == len(datasets) else None
    if truths and truth is None:
        logger.warning('only some training files carry ground truth; real-space terms are off')
    num_groups = sum(g.num_groups for g in all_groups)
    train_indices, validation_indices = split_groups(
        num_groups, training.validation_fraction, training.seed
    )
    arrays = TrainingArrays(
        inputs=np.concatenate(inputs),
        count_targets=np.concatenate(targets),
        offsets_px=np.concatenate(offsets),
        truth_patches=truth,
        train_indices=train_indices,
        validation_indices=validation_indices,
    )
    normalization = Normalization(
        num_photons=num_photons,
        initial_intensity_scale=float(scale),
        input_scales=tuple(input_scales),
        num_photons_measured=measured,
    )
    logger.info(
        'prepared %d groups (%d training, %d validation) of %d pattern(s), %.3g photons/pattern',
        num_groups,
        train_indices.size,
        validation_indices.size,
        model.num_channels,
        num_photons,
    )
    return PreparedTraining(arrays, normalization, probe.astype(np.complex64), tuple(all_groups))


def split_groups(
    num_groups: int, validation_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded disjoint (train, validation) group indices; at least one training group."""
    order = np.random.default_rng(seed).permutation(num_groups)
    num_validation = min(num_groups - 1, math.floor(validation_fraction * num_groups))
    return np.sort(order[num_validation:]), np.sort(order[:num_validation])


def _check_compatible(
    datasets: Sequence[TrainingData], model: ModelConfig, training: TrainingConfig
) -> None:
    for data in datasets:
        if data.pattern_size_px != model.pattern_size_px:
            raise DataContractError(
                f'{data.metadata.source or "training data"} has {data.pattern_size_px} px '
                f'patterns but the model is configured for {model.pattern_size_px} px; crop or '
                'bin the patterns, or set the model pattern size to match'
            )
        if data.num_patterns < model.num_channels:
            raise DataContractError(
                f'{data.num_patterns} scan positions are too few for gridsize {model.gridsize} '
                f'(each group needs {model.num_channels}); use gridsize 1 or more positions'
            )
    if needs_truth(model, training) and not all(d.has_ground_truth for d in datasets):
        raise DataContractError(
            'Supervised training (and the real-space loss terms) need ground-truth object '
            'patches, which these training data do not carry; train in PINN mode, or export '
            'training data whose product holds a known object (simulated, or reconstructed by an '
            'iterative solver) so the patches can be cut from it'
        )

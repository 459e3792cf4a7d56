"""Both backends trained from the same data and seed reconstruct equally well (slow).

The margins are the parity report's named constants (``evidence.parity``): over the five
seeds of ``QUALITY_SEEDS`` the mean PSNR difference stays within ``PSNR_MARGIN_DB`` and the mean
SSIM difference within ``SSIM_MARGIN``, and the trained models beat an untrained guess, so
equality is not the equality of two failures.
"""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import Mode
from ptychopinn_plugin.evidence.parity import (
    PSNR_MARGIN_DB,
    QUALITY_KEYS,
    QUALITY_SEEDS,
    SSIM_MARGIN,
    Case,
    quality_parity,
)

MIN_AMPLITUDE_SSIM = 0.3
"""Trained models must reach at least this amplitude SSIM on the held-out object (measured
0.43-0.46 after 8 epochs on 256 patterns; a flat guess scores about 0.35 on this kind of object,
an untrained network less)."""


@pytest.mark.slow
# 5 seeds x 2 backends x 8 epochs on 256 patterns (~2 s each at NumFiltersScale 1) plus start-up
# and inference: ~5 min alone, ~10 at half speed
@pytest.mark.timeout(1200)
@pytest.mark.parametrize('mode', [Mode.PINN, Mode.SUPERVISED])
def test_backends_trained_from_the_same_data_and_seed_reconstruct_equally_well(mode) -> None:
    result = quality_parity(Case(64, 1, mode), seeds=list(QUALITY_SEEDS), epochs=8)
    for key in QUALITY_KEYS:
        margin = PSNR_MARGIN_DB if key.endswith('_db') else SSIM_MARGIN
        difference = result.difference(key)
        assert abs(difference.mean) <= margin, f'{key}: {difference}'
    for backend in ('pytorch', 'tensorflow'):
        assert min(result.values(backend, 'amplitude_ssim')) >= MIN_AMPLITUDE_SSIM

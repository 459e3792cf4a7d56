"""``ptychopinn evaluate``: score a reconstructed object against the truth (PSNR, SSIM, FRC).

The estimate and the truth are each an ``object.npz`` from ``ptychopinn reconstruct``, a contract
NPZ (its ``objectGuess``; a simulated scan's is the truth) or a Ptychodus product (``.h5``), on one
object grid. Scores (``core.metrics``) are computed after removing the global complex scale, over
the scanned region (the pixels the stitched patch crops cover; ``--region all`` for every pixel):
amplitude and phase PSNR and SSIM, complex PSNR, and the FRC resolution (half-bit) of the complex
object on the region's bounding box. ``--min METRIC=VALUE`` makes the command exit with status 7
when a score falls below VALUE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._common import ExitCode, say

__all__ = ['register', 'score']

FRC_KEY = 'frc_resolution_px'


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand

    parser = add_subcommand(
        subparsers,
        'evaluate',
        help='score a reconstruction against the truth (PSNR, SSIM, FRC)',
        description=__doc__,
    )
    parser.add_argument('estimate', type=Path, help='object.npz, contract NPZ or product .h5')
    parser.add_argument('truth', type=Path, help='object.npz, contract NPZ or product .h5')
    parser.add_argument(
        '--region',
        choices=('scanned', 'all'),
        default='scanned',
        help='pixels to score (default: %(default)s)',
    )
    parser.add_argument(
        '--stitch-crop',
        type=int,
        default=None,
        metavar='PX',
        help='crop side defining the scanned region (default: the one used to reconstruct, or '
        'about 0.31 N)',
    )
    parser.add_argument(
        '--min',
        dest='minimums',
        action='append',
        default=[],
        metavar='METRIC=VALUE',
        help='require a score, e.g. phase_ssim=0.5 (repeatable); exit status 7 when not met',
    )
    parser.add_argument('--json', action='store_true', help='print JSON instead of a table')
    parser.set_defaults(handler=run)


def score(estimate: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """PSNR / SSIM (``core.metrics.compare_objects``) and the FRC resolution in pixels."""
    from ..core import metrics

    scores = metrics.compare_objects(estimate, truth, mask)
    if mask is not None:
        rows = np.flatnonzero(np.any(mask, axis=1))
        columns = np.flatnonzero(np.any(mask, axis=0))
        box = (slice(rows[0], rows[-1] + 1), slice(columns[0], columns[-1] + 1))
        estimate, truth = estimate[box], truth[box]
    scores[FRC_KEY] = metrics.frc_resolution(estimate, truth)
    return scores


def _parse_minimums(pairs: list[str]) -> dict[str, float]:
    from ..core.metrics import MetricName
    from ..errors import ConfigurationError

    known = [m.value for m in MetricName]
    minimums = {}
    for pair in pairs:
        name, equals, text = pair.partition('=')
        try:
            value = float(text)
        except ValueError:
            value = None
        if not equals or name not in known or value is None:
            raise ConfigurationError(
                f'--min expects METRIC=NUMBER with METRIC one of {", ".join(known)}; got {pair!r}'
            )
        minimums[name] = value
    return minimums


def run(args: argparse.Namespace) -> int:
    from ..config import default_stitch_crop_px
    from ..core.stitching import scanned_region_mask
    from ..errors import DataContractError
    from ._io import load_object_file

    minimums = _parse_minimums(args.minimums)
    estimate = load_object_file(args.estimate)
    truth = load_object_file(args.truth)
    if estimate.object_.shape != truth.object_.shape:
        raise DataContractError(
            f'the estimate {args.estimate} is {estimate.object_.shape} px but the truth '
            f'{args.truth} is {truth.object_.shape} px; compare objects on one grid (reconstruct '
            'the scan whose truth you hold)'
        )
    mask = None
    if args.region == 'scanned':
        positions = (
            estimate.positions_px if estimate.positions_px is not None else truth.positions_px
        )
        size = estimate.pattern_size_px or truth.pattern_size_px
        if positions is None or size is None:
            raise DataContractError(
                f'neither {args.estimate} nor {args.truth} records the scan positions, so the '
                'scanned region is unknown; pass --region all'
            )
        crop = args.stitch_crop or estimate.stitch_crop_px or default_stitch_crop_px(size)
        mask = scanned_region_mask(positions, truth.object_.shape, size, crop)
    scores = score(estimate.object_, truth.object_, mask)
    failed = {name: value for name, value in minimums.items() if not scores[name] >= value}
    if args.json:
        print(json.dumps({'scores': scores, 'failed_minimums': failed}, indent=2))
    else:
        print('| metric | value |\n| --- | --- |')
        for name, value in scores.items():
            print(f'| {name} | {value:.4g} |')
    if failed:
        for name, value in failed.items():
            say(f'{name} = {scores[name]:.4g} is below the required {value:g}')
        return ExitCode.BELOW_THRESHOLD
    return 0

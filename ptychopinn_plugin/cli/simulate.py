"""``ptychopinn simulate``: a synthetic scan as a contract NPZ, optionally a workflow directory.

The scan comes from ``core.simulate.make_scan`` (object, aberrated defocused disk probe, jittered
raster or Fermat spiral, Poisson counts). The NPZ carries the true object (``objectGuess``) and the
true patches (``Y``), so it serves as training data, as a test scan and as the truth for
``ptychopinn evaluate``. ``--workflow-dir`` also writes the same scan with Ptychodus's writers
(``product.h5``, ``diffraction.h5``, ``settings.ini``) for ``ptychodus -b train|reconstruct``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..config import Backend, Mode
from ..core.simulate import ObjectKind, ScanKind
from ._common import add_overwrite_option, check_outputs, say

__all__ = ['parse_settings', 'register']


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand

    parser = add_subcommand(
        subparsers,
        'simulate',
        help='simulate a scan (contract NPZ, optionally a Ptychodus workflow directory)',
        description=__doc__,
    )
    parser.add_argument('output', type=Path, help='contract NPZ file to write (.npz)')
    parser.add_argument(
        '--object',
        dest='object_kind',
        choices=[k.value for k in ObjectKind],
        default=ObjectKind.CAMERA.value,
        help='synthetic object (default: %(default)s)',
    )
    parser.add_argument(
        '--num-patterns', type=int, default=256, help='scan points (default: %(default)s)'
    )
    parser.add_argument(
        '--pattern-size',
        type=int,
        default=64,
        help='side N of the diffraction patterns in pixels (default: %(default)s)',
    )
    parser.add_argument(
        '--photons',
        type=float,
        default=1e6,
        help='mean photons per pattern before Poisson noise (default: %(default)g)',
    )
    parser.add_argument(
        '--scan',
        choices=[k.value for k in ScanKind],
        default=ScanKind.RASTER.value,
        help='scan pattern (default: %(default)s)',
    )
    parser.add_argument(
        '--step-px', type=float, default=None, help='scan step in object pixels (default: N/4)'
    )
    parser.add_argument('--seed', type=int, default=0, help='random seed (default: %(default)s)')
    parser.add_argument(
        '--no-noise', action='store_true', help='expected counts instead of a Poisson draw'
    )
    parser.add_argument(
        '--workflow-dir',
        type=Path,
        default=None,
        help='also write a Ptychodus workflow directory (product.h5, diffraction.h5, settings.ini)',
    )
    parser.add_argument(
        '--product-object',
        choices=('flat', 'truth'),
        default='flat',
        help="object in the workflow directory's product.h5: a flat initial guess (as a user's "
        'product before reconstruction) or the true object (needed to train Supervised) '
        '(default: %(default)s)',
    )
    parser.add_argument(
        '--mode',
        choices=[m.value for m in Mode],
        default=Mode.PINN.value,
        help='reconstructor named in settings.ini (default: %(default)s)',
    )
    parser.add_argument(
        '--backend',
        choices=[b.value for b in Backend],
        default=Backend.PYTORCH.value,
        help='backend named in settings.ini (default: %(default)s)',
    )
    parser.add_argument(
        '--setting',
        action='append',
        default=[],
        metavar='GROUP.NAME=VALUE',
        help='extra Ptychodus setting for settings.ini, e.g. PtychoPINNTraining.NumEpochs=5 '
        '(repeatable)',
    )
    add_overwrite_option(parser)
    parser.set_defaults(handler=run)


def parse_settings(pairs: list[str]) -> dict[str, dict[str, object]]:
    """``['Group.Name=value', ...]`` as ``{'Group': {'Name': 'value'}}``."""
    from ..errors import ConfigurationError

    settings: dict[str, dict[str, object]] = {}
    for pair in pairs:
        key, equals, value = pair.partition('=')
        group, dot, name = key.strip().partition('.')
        if not equals or not dot or not group or not name:
            raise ConfigurationError(
                f'--setting expects GROUP.NAME=VALUE (e.g. PtychoPINNTraining.NumEpochs=5), '
                f'got {pair!r}'
            )
        settings.setdefault(group, {})[name] = value.strip()
    return settings


def run(args: argparse.Namespace) -> int:
    from ..core.contract import write_training_data
    from ..core.simulate import make_scan
    from ..errors import ConfigurationError
    from ..ptychodus_io.layout import DIFFRACTION_FILE, PRODUCT_FILE, SETTINGS_FILE

    if args.output.suffix != '.npz':
        raise ConfigurationError(f'the output must be an .npz file, got {str(args.output)!r}')
    extra = parse_settings(args.setting)
    outputs = [args.output]
    if args.workflow_dir is not None:
        outputs += [args.workflow_dir / f for f in (PRODUCT_FILE, DIFFRACTION_FILE, SETTINGS_FILE)]
    check_outputs(outputs, args.overwrite)

    scan = make_scan(
        args.object_kind,
        num_patterns=args.num_patterns,
        pattern_size_px=args.pattern_size,
        num_photons=args.photons,
        seed=args.seed,
        scan=args.scan,
        step_px=args.step_px,
        poisson=not args.no_noise,
    )
    data = scan.data
    write_training_data(args.output, data, overwrite=args.overwrite)
    written = [args.output]
    if args.workflow_dir is not None:
        from ..ptychodus_io.products import product_from_data
        from ..ptychodus_io.workflow_dir import diffraction_from_data, write_workflow_directory

        settings: dict[str, dict[str, object]] = {
            'Processing': {'Algorithm': f'ptychopinn_{args.mode}'},
            'PtychoPINN': {'Backend': args.backend, 'Device': 'auto'},
        }
        for group, values in extra.items():
            settings.setdefault(group, {}).update(values)
        product_object = (
            scan.object_ if args.product_object == 'truth' else np.ones_like(scan.object_)
        )
        product = product_from_data(
            data, product_object, name=f'simulated-{args.object_kind}-{args.seed}'
        )
        written += write_workflow_directory(
            args.workflow_dir, product, diffraction_from_data(data), settings
        )
    if not args.quiet:
        say(
            f'simulated {data.num_patterns} patterns of {data.pattern_size_px} px '
            f'({args.object_kind} object {scan.object_.shape[1]} x {scan.object_.shape[0]} px, '
            f'{data.mean_total_counts():.3g} mean counts per pattern)'
        )
    for path in written:
        print(path)
    return 0

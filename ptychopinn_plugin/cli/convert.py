"""``ptychopinn convert``: Ptychodus files <-> contract NPZ, chosen by the input and output.

- workflow directory (``product.h5`` + ``diffraction.h5``) -> ``.npz``: the patterns paired with
  their positions by scan index, as Ptychodus hands them to a reconstructor, converted by
  ``ptychodus_io`` (counts to amplitude, bad pixels inpainted, probe mode 0).
- ``.npz`` -> directory: ``product.h5``, ``diffraction.h5`` (counts: the squared amplitudes) and
  ``settings.ini`` selecting PtychoPINN, written with Ptychodus's writers.
- ``.npz`` -> ``.npz``: rewrite a PtychoPINN NPZ or Ptychodus's own NPZ export in the contract form
  (``--quantity`` says what ``diff3d`` holds when the file does not).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..config import Backend
from ..core.contract import DiffractionQuantity
from ._common import add_overwrite_option, check_outputs, say

__all__ = ['register']


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand

    parser = add_subcommand(
        subparsers,
        'convert',
        help='convert between Ptychodus workflow directories and contract NPZ files',
        description=__doc__,
    )
    parser.add_argument('input', type=Path, help='Ptychodus workflow directory, or an NPZ file')
    parser.add_argument(
        'output',
        type=Path,
        help='contract NPZ file (.npz), or a directory for a Ptychodus workflow directory',
    )
    parser.add_argument(
        '--quantity',
        choices=[q.value for q in DiffractionQuantity],
        default=None,
        help="what an input NPZ's diff3d holds when the file does not say (default: inferred)",
    )
    parser.add_argument(
        '--flat-object',
        action='store_true',
        help="NPZ -> directory: put a flat object (Ptychodus's initial guess) in product.h5 "
        "instead of the NPZ's objectGuess",
    )
    parser.add_argument(
        '--backend',
        choices=[b.value for b in Backend],
        default=Backend.PYTORCH.value,
        help='NPZ -> directory: backend named in settings.ini (default: %(default)s)',
    )
    add_overwrite_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..core.contract import read_training_data, write_training_data
    from ..errors import ConfigurationError
    from ..ptychodus_io.layout import DIFFRACTION_FILE, PRODUCT_FILE, SETTINGS_FILE
    from . import _io

    source, target = args.input, args.output
    if source.is_dir():
        if target.suffix != '.npz':
            raise ConfigurationError(
                f'a workflow directory converts to an .npz file; got output {str(target)!r}'
            )
        if args.quantity is not None:
            raise ConfigurationError('--quantity applies to NPZ input only')
        check_outputs([target], args.overwrite)
        data = _io.load_scan(source).data
        write_training_data(target, data, overwrite=args.overwrite)
        written = [target]
    elif source.suffix == '.npz':
        quantity = None if args.quantity is None else DiffractionQuantity(args.quantity)
        if target.suffix == '.npz':
            check_outputs([target], args.overwrite)
            data = read_training_data(source, quantity=quantity)
            write_training_data(target, data, overwrite=args.overwrite)
            written = [target]
        elif target.suffix:
            raise ConfigurationError(
                f'an NPZ file converts to a workflow directory or another .npz; got output '
                f'{str(target)!r} (a directory name has no suffix)'
            )
        else:
            check_outputs(
                [target / n for n in (PRODUCT_FILE, DIFFRACTION_FILE, SETTINGS_FILE)],
                args.overwrite,
            )
            data = read_training_data(source, quantity=quantity)
            object_ = data.object_guess
            if object_ is None or args.flat_object:
                object_ = np.ones(_io.object_shape_for(data), np.complex64)
            settings = {
                'Processing': {'Algorithm': 'ptychopinn_pinn'},
                'PtychoPINN': {'Backend': args.backend, 'Device': 'auto'},
            }
            from ..ptychodus_io.products import product_from_data
            from ..ptychodus_io.workflow_dir import diffraction_from_data, write_workflow_directory

            written = write_workflow_directory(
                target,
                product_from_data(data, object_, name=source.stem),
                diffraction_from_data(data),
                settings,
            )
    elif not source.exists():
        raise FileNotFoundError(f'no such file or directory: {source}')
    else:
        raise ConfigurationError(
            f'cannot convert {source}: give a Ptychodus workflow directory or an .npz file'
        )
    if not args.quiet:
        say(f'converted {source} -> {target}')
    for path in written:
        print(path)
    return 0

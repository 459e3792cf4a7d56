"""The ``ptychopinn`` command: simulate, train, reconstruct, convert, inspect and evaluate.

``main`` builds one ``argparse`` parser from the subcommand modules listed in
:data:`SUBCOMMANDS`; each module has a ``register(subparsers)`` function that adds its parser and
sets ``handler`` to a function taking the parsed arguments and returning an exit status. A new
subcommand is one module with a ``register`` function plus one entry in :data:`SUBCOMMANDS`.

Errors raised on purpose (:class:`~ptychopinn_plugin.errors.PtychoPINNError` and file errors) end
the command with one message on stderr and a documented exit status (``_common.ExitCode``);
``--debug`` adds the traceback. Importing this package imports neither TensorFlow nor PyTorch: the
subcommand modules import frameworks, Ptychodus and matplotlib only inside their handlers.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from .. import __version__
from ._common import EXIT_CODE_TABLE, ExitCode, exit_code_for

__all__ = ['SUBCOMMANDS', 'ExitCode', 'build_parser', 'main']

SUBCOMMANDS: tuple[str, ...] = (
    'simulate',
    'train',
    'reconstruct',
    'convert',
    'inspect',
    'evaluate',
)
"""Modules of this package, each defining ``register(subparsers)``, in ``--help`` order."""

EPILOG = f"""exit status:
{EXIT_CODE_TABLE}

Run 'ptychopinn COMMAND --help' for the options of a command. Documentation: docs/user-guide.md.
"""


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """``--debug``, ``--verbose`` and ``--quiet``; on subcommands too (after the command name)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        '--debug',
        action='store_true',
        default=default if suppress else False,
        help='show the full traceback of an error',
    )
    parser.add_argument(
        '-v',
        '--verbose',
        action='count',
        default=default if suppress else 0,
        help="log more (-v: the library's INFO messages, -vv: DEBUG)",
    )
    parser.add_argument(
        '-q',
        '--quiet',
        action='store_true',
        default=default if suppress else False,
        help='print only warnings and errors (no progress lines)',
    )


def build_parser() -> argparse.ArgumentParser:
    """The full ``ptychopinn`` parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog='ptychopinn',
        description=(
            'PtychoPINN (physics-informed neural network ptychography) without the Ptychodus '
            'GUI: simulate scans, train models, reconstruct scans, convert files, inspect '
            'archives and datasets, and score reconstructions.'
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument('--version', action='version', version=f'ptychopinn {__version__}')
    _add_global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _add_global_options(common, suppress=True)
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    subparsers.common_parents = [common]  # type: ignore[attr-defined]
    for name in SUBCOMMANDS:
        importlib.import_module(f'{__name__}.{name}').register(subparsers)
    return parser


def add_subcommand(
    subparsers: argparse._SubParsersAction, name: str, *, help: str, description: str
) -> argparse.ArgumentParser:
    """Add a subcommand parser carrying the global options; used by every ``register``."""
    return subparsers.add_parser(
        name,
        help=help,
        description=description.replace('``', ''),
        parents=getattr(subparsers, 'common_parents', []),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _log_level(verbose: int, quiet: bool) -> int:
    if quiet or verbose <= 0:
        return logging.WARNING
    return logging.INFO if verbose == 1 else logging.DEBUG


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ptychopinn`` command; returns the exit status (see ``ExitCode``)."""
    # TensorFlow's C++ start-up chatter is noise on a command line; the user can still ask for it.
    os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    parser = build_parser()
    args = parser.parse_args(argv)  # exits with status 2 on a usage error
    level = _log_level(args.verbose, args.quiet)
    logging.basicConfig(level=level, format='%(levelname)s %(name)s: %(message)s')
    package_logger = logging.getLogger('ptychopinn_plugin')
    previous_level = package_logger.level
    package_logger.setLevel(level)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print(f'ptychopinn {args.command}: interrupted; no output was written', file=sys.stderr)
        return ExitCode.INTERRUPTED
    except Exception as error:  # every error ends here with a message and an exit status
        code = exit_code_for(error)
        if args.debug:
            traceback.print_exc()
        print(f'ptychopinn {args.command}: {type(error).__name__}: {error}', file=sys.stderr)
        if code is ExitCode.INTERNAL and not args.debug:
            print('(unexpected: run again with --debug and report the traceback)', file=sys.stderr)
        return code
    finally:
        package_logger.setLevel(previous_level)  # main() may run inside another program

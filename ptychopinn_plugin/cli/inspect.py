"""``ptychopinn inspect``: what a model archive or a dataset holds, as text or JSON.

A model archive (``.zip``) shows its manifest (read and checked without loading the weights or a
framework) plus the file's size and sha256. A dataset (contract NPZ or Ptychodus workflow
directory) shows its number of patterns, pattern size, positions, dose, probe and what else it
carries.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ['archive_summary', 'dataset_summary', 'register']


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand

    parser = add_subcommand(
        subparsers,
        'inspect',
        help="print a model archive's manifest or a dataset's summary",
        description=__doc__,
    )
    parser.add_argument(
        'path', type=Path, help='model archive (.zip), contract NPZ or workflow directory'
    )
    parser.add_argument('--json', action='store_true', help='print JSON instead of text')
    parser.set_defaults(handler=run)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open('rb') as stream:
        for block in iter(lambda: stream.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def archive_summary(path: Path) -> dict[str, Any]:
    """The archive's manifest with its file size and sha256 (weights not loaded)."""
    from ..core.archive import read_manifest

    manifest = read_manifest(path)
    return {
        'kind': 'model archive',
        'path': str(path),
        'file_bytes': path.stat().st_size,
        'file_sha256': file_sha256(path),
        **manifest,
    }


def dataset_summary(path: Path) -> dict[str, Any]:
    """Facts about a scan (contract NPZ or workflow directory)."""
    from ._io import load_scan

    scan = load_scan(path)
    data = scan.data
    positions = data.positions_px
    amplitude = data.diffraction_amplitude
    return {
        'kind': 'workflow directory' if scan.product is not None else 'contract NPZ',
        'path': str(path),
        'num_patterns': data.num_patterns,
        'pattern_size_px': data.pattern_size_px,
        'mean_total_counts': data.mean_total_counts(),
        'max_amplitude': float(np.max(amplitude)),
        'positions_px': {
            'x_min': float(positions[:, 0].min()),
            'x_max': float(positions[:, 0].max()),
            'y_min': float(positions[:, 1].min()),
            'y_max': float(positions[:, 1].max()),
        },
        'object_shape': None if data.object_guess is None else list(data.object_guess.shape),
        'has_ground_truth_patches': data.has_ground_truth,
        'probe_power': float(np.sum(np.abs(data.probe) ** 2)),
        'metadata': json.loads(data.metadata.to_json()),
    }


def _text(summary: dict[str, Any]) -> str:
    if summary['kind'] == 'model archive':
        config = summary.get('config', {})
        model = config.get('model', {})
        training = summary.get('training_summary', {})
        losses = training.get('training_loss') or []
        lines = [
            f'{summary["path"]}: ptychopinn-plugin model archive '
            f'(format {summary.get("format_version")})',
            f'  mode {summary.get("mode")}, N = {summary.get("pattern_size_px")}, gridsize '
            f'{summary.get("gridsize")}, n_filters_scale {model.get("n_filters_scale")}',
            f'  trained by {summary.get("trained_backend") or "unknown"} on '
            f'{training.get("num_patterns")} patterns, {training.get("epochs_completed")} of '
            f'{training.get("epochs_requested")} epochs in {training.get("seconds", 0):.0f} s'
            + (f', final loss {losses[-1]:.5g}' if losses else ''),
            f'  created {summary.get("created")}, {summary["file_bytes"]} bytes, sha256 '
            f'{summary["file_sha256"]}',
            '  frameworks: '
            + ', '.join(f'{k} {v}' for k, v in summary.get('framework_versions', {}).items()),
        ]
        return '\n'.join(lines)
    positions = summary['positions_px']
    metadata = summary['metadata']
    return '\n'.join(
        [
            f'{summary["path"]}: {summary["kind"]}',
            f'  {summary["num_patterns"]} patterns of {summary["pattern_size_px"]} px, '
            f'{summary["mean_total_counts"]:.4g} mean counts per pattern '
            f'(recorded as {metadata.get("source_quantity")})',
            f'  positions x {positions["x_min"]:.1f} .. {positions["x_max"]:.1f}, '
            f'y {positions["y_min"]:.1f} .. {positions["y_max"]:.1f} px',
            f'  object {summary["object_shape"]}, ground-truth patches: '
            f'{"yes" if summary["has_ground_truth_patches"] else "no"}',
            f'  source: {metadata.get("source") or "unknown"}',
        ]
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import DataContractError

    path: Path = args.path
    if path.is_file() and path.suffix == '.zip':
        summary = archive_summary(path)
    elif path.suffix == '.npz' or path.is_dir():
        summary = dataset_summary(path)
    elif not path.exists():
        raise DataContractError(f'no such file or directory: {path}')
    else:
        raise DataContractError(
            f'cannot inspect {path}: give a model archive (.zip), a contract NPZ file or a '
            'Ptychodus workflow directory'
        )
    print(json.dumps(summary, indent=2, sort_keys=True) if args.json else _text(summary))
    return 0

"""``ptychopinn reconstruct``: a model archive and a scan -> product, object NPZ and figures.

The scan is a contract NPZ file or a Ptychodus workflow directory; it is streamed through
``workflow.reconstruct`` on the chosen backend, whichever backend trained the archive. The output
directory receives ``product.h5`` (Ptychodus's writer: the input product with the reconstructed
object, or for an NPZ a far-field product built from the scan), ``object.npz`` (``object``,
``coverage``, ``positions_px``, ``pattern_size_px``, ``stitch_crop_px``, ``info_json``) and
``amplitude.png`` / ``phase.png``. The object lies on the input's object grid; pixels no patch
covers keep the product's object (workflow directory) or 1 (NPZ).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..config import (
    ExecutionConfig,
    InferenceConfig,
    PhaseAlignment,
    Precision,
    ReconstructionProbe,
    RefineStart,
)
from ._common import add_overwrite_option, check_outputs, progress_bar, say

__all__ = ['OBJECT_NPZ', 'register']

OBJECT_NPZ = 'object.npz'
CONSISTENCY_NPZ = 'consistency.npz'
"""Per-pattern data consistency (``solver/consistency.py``): positions, R-factors, noise ratios."""
FIGURES = ('amplitude.png', 'phase.png', 'consistency.png')


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand
    from .train import add_execution_options

    parser = add_subcommand(
        subparsers,
        'reconstruct',
        help='reconstruct a scan with a trained model',
        description=__doc__,
    )
    parser.add_argument('model', type=Path, help='model archive (.zip) from training')
    parser.add_argument(
        'data', type=Path, help='scan: contract NPZ file or Ptychodus workflow directory'
    )
    parser.add_argument(
        '-o', '--output', type=Path, required=True, help='output directory (created if needed)'
    )
    add_execution_options(parser)
    parser.add_argument(
        '--precision',
        choices=[p.value for p in Precision],
        default=ExecutionConfig().precision.value,
        help='numeric precision of the network (default: %(default)s)',
    )
    parser.add_argument(
        '--batch-size',
        type=int,
        default=InferenceConfig().batch_size,
        help='groups per inference batch (default: %(default)s)',
    )
    parser.add_argument(
        '--num-groups',
        type=int,
        default=None,
        help='reconstruct only this many groups (default: every scan point)',
    )
    parser.add_argument(
        '--stitch-crop',
        type=int,
        default=None,
        metavar='PX',
        help='side of the central patch square kept when stitching (default: about 0.31 N)',
    )
    parser.add_argument(
        '--phase-alignment',
        choices=[p.value for p in PhaseAlignment],
        default=None,
        help='reconcile the free global phase of each patch before stitching: none, greedy or '
        f'global phase synchronisation (default: {InferenceConfig().phase_alignment.value})',
    )
    parser.add_argument(
        '--phase-ramp-correction',
        action=argparse.BooleanOptionalAction,
        default=None,
        help='remove the object-wide phase ramp fitted to the diffraction centres of mass '
        f'(default: {"on" if InferenceConfig().phase_ramp_correction else "off"})',
    )
    parser.add_argument(
        '--refine-iterations',
        type=int,
        default=None,
        help='iterations refining the stitched object against the measured patterns through '
        f'their overlap, 0 for none (default: {InferenceConfig().refine_iterations})',
    )
    parser.add_argument(
        '--refine-start',
        choices=[s.value for s in RefineStart],
        default=None,
        help="start of the refinement: the network's amplitude with a flat phase, its whole "
        'object, or a flat object (the refinement alone) '
        f'(default: {InferenceConfig().refine_start.value})',
    )
    parser.add_argument(
        '--amplitude-denoising',
        type=float,
        default=None,
        metavar='FACTOR',
        help='total-variation denoising of the refined amplitude at FACTOR times its shot-noise '
        'level, the phase kept; 0 turns it off '
        f'(default: {InferenceConfig().amplitude_denoising:g})',
    )
    parser.add_argument(
        '--reconstruction-probe',
        choices=[s.value for s in ReconstructionProbe],
        default=None,
        help="probe of the refinement and the data consistency: the model's (the one it was "
        "trained with), the scan's own, or auto: the one explaining the patterns better, "
        'refined on the scan when neither does '
        f'(default: {InferenceConfig().reconstruction_probe.value})',
    )
    parser.add_argument(
        '--num-neighbors',
        type=int,
        default=None,
        help="nearest neighbours of a group (gridsize > 1; default: the model's)",
    )
    parser.add_argument(
        '--fine-tune-epochs',
        type=int,
        default=None,
        metavar='K',
        help='train the model K epochs on this scan before reconstructing it (PINN loss, no '
        'ground truth; the model file is not changed; default: '
        f'{InferenceConfig().fine_tune_epochs})',
    )
    parser.add_argument(
        '--save-tuned',
        type=Path,
        default=None,
        metavar='MODEL.zip',
        help='also save the fine-tuned model there (with --fine-tune-epochs)',
    )
    parser.add_argument('--no-figures', action='store_true', help='write no PNG figures')
    add_overwrite_option(parser)
    parser.set_defaults(handler=run)


def output_paths(directory: Path, figures: bool) -> list[Path]:
    """The files ``reconstruct`` writes into ``directory``."""
    names = ['product.h5', OBJECT_NPZ, CONSISTENCY_NPZ] + (list(FIGURES) if figures else [])
    return [directory / name for name in names]


def build_inference_config(args: argparse.Namespace) -> InferenceConfig:
    """The :class:`InferenceConfig` of a reconstruction from the command line.

    Raises
    ------
    ConfigurationError
        For an invalid value, naming the field, the value and the valid range.
    """
    from ..config import build_config

    chosen = {
        'phase_alignment': args.phase_alignment,
        'phase_ramp_correction': args.phase_ramp_correction,
        'refine_iterations': args.refine_iterations,
        'refine_start': args.refine_start,
        'amplitude_denoising': args.amplitude_denoising,
        'reconstruction_probe': args.reconstruction_probe,
        'fine_tune_epochs': args.fine_tune_epochs,
    }
    return build_config(
        InferenceConfig,
        batch_size=args.batch_size,
        num_groups=args.num_groups,
        stitch_crop_px=args.stitch_crop,
        num_partial_results=1,
        **{key: value for key, value in chosen.items() if value is not None},
    )


def run(args: argparse.Namespace) -> int:
    from ..config import ExecutionConfig, build_config, default_stitch_crop_px
    from ..core.archive import Archive, load_archive, save_archive
    from ..errors import ConfigurationError, ReconstructionError
    from ..workflow import reconstruct
    from . import _io

    if args.save_tuned is not None and not args.fine_tune_epochs:
        raise ConfigurationError('--save-tuned needs --fine-tune-epochs K (K > 0)')
    if args.save_tuned is not None and args.save_tuned.suffix != '.zip':
        raise ConfigurationError(f'the tuned model must end in .zip, got {str(args.save_tuned)!r}')
    tuned_output = [] if args.save_tuned is None else [args.save_tuned]
    check_outputs(output_paths(args.output, not args.no_figures) + tuned_output, args.overwrite)
    archive = load_archive(args.model)
    scan = _io.load_scan(args.data)
    data = scan.data
    model = archive.config.model
    if data.num_patterns < model.num_channels:
        raise ReconstructionError(
            f'the model has gridsize {model.gridsize} (groups of {model.num_channels} scan points) '
            f'but {args.data} has only {data.num_patterns} points; use a gridsize-1 model'
        )
    if args.num_neighbors is not None and model.gridsize > 1:
        new_model = build_config(
            type(model), **{**model.model_dump(), 'num_neighbors': args.num_neighbors}
        )
        archive = Archive(
            config=archive.config.model_copy(update={'model': new_model}),
            weights=archive.weights,
            normalization=archive.normalization,
            training_summary=archive.training_summary,
            trained_backend=archive.trained_backend,
            framework_versions=archive.framework_versions,
        )
    execution = build_config(
        ExecutionConfig, backend=args.backend, device=args.device, precision=args.precision
    )
    inference = build_inference_config(args)
    if scan.product is not None:
        object_shape = (scan.product.object_.height_px, scan.product.object_.width_px)
        fill = scan.product.object_.get_layer(0)
    else:
        object_shape = _io.object_shape_for(data)
        fill = np.ones(object_shape, np.complex64)
    start = time.perf_counter()
    final = None
    with progress_bar(0, 'reconstructing', 'step', shown=not args.quiet) as bar:
        for step in reconstruct(
            archive,
            data,
            execution=execution,
            inference=inference,
            object_shape=object_shape,
            fill=fill,
        ):
            bar.total = step.num_steps
            stage = 'fine-tuning' if step.num_tuned < step.num_tune_epochs else 'reconstructing'
            bar.set_description('refining' if step.num_refined else stage, refresh=False)
            bar.update(step.num_steps_done - bar.n)
            if step.finished:
                final = step
    seconds = time.perf_counter() - start
    if final is None or final.object_ is None:
        raise ReconstructionError(f'the reconstruction of {args.data} produced no object')
    object_ = final.object_

    from ..ptychodus_io.products import (
        product_from_data,
        product_with_object,
        product_with_used_probe,
        write_product,
    )

    if scan.product is not None:
        product = product_with_object(scan.product, object_)
    else:
        product = product_from_data(data, object_, name=f'ptychopinn {args.data.stem}')
    if final.probe_choice is not None:
        # the probe the object belongs to (at the scan probe's power), and why
        choice = final.probe_choice
        product = product_with_used_probe(
            product, choice.probe, choice.note(), replaces=choice.source != 'scan'
        )
    args.output.mkdir(parents=True, exist_ok=True)
    written = [write_product(args.output / 'product.h5', product)]
    crop = inference.stitch_crop_px or default_stitch_crop_px(model.pattern_size_px)
    written.append(
        _io.write_object_npz(
            args.output / OBJECT_NPZ,
            object_,
            coverage=final.weight,
            positions_px=data.positions_px,
            pattern_size_px=model.pattern_size_px,
            stitch_crop_px=crop,
            info={
                'model': str(args.model),
                'data': str(args.data),
                'backend': execution.backend.value,
                'trained_backend': archive.trained_backend,
                'num_groups': final.num_groups,
                'inference': inference.model_dump(mode='json'),
                'seconds': seconds,
                'consistency': final.consistency.as_dict() if final.consistency else None,
                'probe': final.probe_choice.as_dict() if final.probe_choice else None,
            },
        )
    )
    if final.consistency is not None:
        written.append(final.consistency.save(args.output / CONSISTENCY_NPZ))
    if not args.no_figures:
        written += _io.write_figures(args.output, object_)
        if final.consistency is not None:
            figure = _io.write_consistency_figure(
                args.output / 'consistency.png', final.consistency, object_.shape
            )
            written += [figure] if figure else []
    if not args.quiet:
        say(
            f'reconstructed {final.num_groups} groups of {data.num_patterns} scan points with '
            f'{execution.backend.value}, refined over {inference.refine_iterations} iterations, '
            f'in {seconds:.2f} s '
            f'({data.num_patterns / max(seconds, 1e-9):.0f} patterns/s)'
        )
        if final.probe_choice is not None:
            say(final.probe_choice.note())
        if final.consistency is not None:
            say(final.consistency.summary())
            warning = final.consistency.warning(refined=inference.refine_iterations > 0)
            if warning:
                say(f'warning: {warning}')
    if args.save_tuned is not None and final.tuned_archive is not None:
        save_archive(args.save_tuned, final.tuned_archive, overwrite=args.overwrite)
        written.append(args.save_tuned)
    for path in written:
        print(path)
    return 0

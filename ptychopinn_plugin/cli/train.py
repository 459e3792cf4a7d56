"""``ptychopinn train``: contract NPZ files or a Ptychodus workflow directory -> model archive.

Inputs are read as the Ptychodus plugin reads them (``ptychodus_adapter.training_io``): an NPZ
file, a directory of NPZ files, or a workflow directory (``product.h5`` + ``diffraction.h5``).
Training is ``workflow.TrainingRun`` on the chosen backend; each finished epoch prints one line to
stderr (loss, validation loss, learning rate, seconds per epoch). ``--init-model`` fine-tunes a
trained archive: its network weights (and architecture) are the starting point, while the probe and
the initial intensity scale come from the new data. Distributed training passes ``--devices``,
``--num-nodes`` and ``--strategy`` to the framework (Lightning's ``Trainer`` for PyTorch,
``tf.distribute`` for TensorFlow); only rank 0 prints and writes.

After every epoch the training writes a checkpoint beside the output (``model.zip`` ->
``model.checkpoint.zip``, replaced atomically) and removes it once the model is written. A
training that was killed or preempted continues from its last finished epoch with ``--resume``
and the same inputs and settings (``core/checkpoint.py``); ``--epochs`` may be raised.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import (
    Backend,
    Device,
    ExecutionConfig,
    Mode,
    ModelConfig,
    Precision,
    ProbeRefinement,
    TrainingConfig,
)
from ._common import (
    OutputExistsError,
    add_overwrite_option,
    check_outputs,
    global_rank,
    progress_bar,
    say,
)

__all__ = ['add_execution_options', 'register']


def add_execution_options(parser: argparse.ArgumentParser) -> None:
    """``--backend`` and ``--device`` (shared with ``reconstruct``)."""
    execution = ExecutionConfig()  # the same defaults as the Ptychodus settings
    parser.add_argument(
        '--backend',
        choices=[b.value for b in Backend],
        default=execution.backend.value,
        help='framework that runs the network (default: %(default)s)',
    )
    parser.add_argument(
        '--device',
        choices=[d.value for d in Device],
        default=execution.device.value,
        help='compute device; auto takes a GPU when the framework sees one (default: %(default)s)',
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    from . import add_subcommand

    parser = add_subcommand(
        subparsers,
        'train',
        help='train a model on NPZ files or a workflow directory',
        description=__doc__,
    )
    parser.add_argument(
        'inputs',
        type=Path,
        nargs='+',
        help='contract NPZ files, directories of NPZ files, or Ptychodus workflow directories',
    )
    parser.add_argument(
        '-o', '--output', type=Path, required=True, help='model archive to write (.zip)'
    )
    parser.add_argument(
        '--history', type=Path, default=None, help='also write the per-epoch losses as CSV'
    )
    add_execution_options(parser)
    _add_model_options(parser)
    _add_training_options(parser)
    _add_hardware_options(parser)
    parser.add_argument(
        '--resume',
        action='store_true',
        help="continue an interrupted training from the output's checkpoint "
        '(OUTPUT stem + .checkpoint.zip), with the same inputs and settings',
    )
    add_overwrite_option(parser)
    parser.set_defaults(handler=run)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    model = ModelConfig()  # None below: the config's default, shown in the help
    group = parser.add_argument_group('model (taken from --init-model when fine-tuning)')
    group.add_argument(
        '--mode',
        choices=[m.value for m in Mode],
        default=None,
        help='pinn (physics loss, no ground truth needed) or supervised '
        f'(default: {model.mode.value})',
    )
    group.add_argument(
        '--gridsize',
        type=int,
        default=None,
        help=f'groups of gridsize x gridsize points (default {model.gridsize})',
    )
    group.add_argument(
        '--n-filters-scale',
        type=int,
        default=None,
        help='multiplier of the convolution filter counts, 1 to 4 '
        f'(default {model.n_filters_scale})',
    )
    group.add_argument(
        '--num-neighbors',
        type=int,
        default=None,
        help='nearest neighbours a group is drawn from when gridsize > 1 '
        f'(default {model.num_neighbors})',
    )
    group.add_argument(
        '--init-model',
        type=Path,
        default=None,
        help='fine-tune this archive instead of starting from random weights',
    )


def _add_training_options(parser: argparse.ArgumentParser) -> None:
    defaults = TrainingConfig()  # the same defaults as the Ptychodus settings
    group = parser.add_argument_group('training')
    group.add_argument(
        '--epochs', type=int, default=defaults.num_epochs, help='epochs (default: %(default)s)'
    )
    group.add_argument(
        '--batch-size',
        type=int,
        default=defaults.batch_size,
        help='groups per optimiser step (default: %(default)s)',
    )
    group.add_argument(
        '--learning-rate',
        type=float,
        default=defaults.learning_rate,
        help='initial Adam rate (default: %(default)g)',
    )
    group.add_argument(
        '--min-learning-rate',
        type=float,
        default=None,
        help=f'floor of the reduce-on-plateau schedule (default: {defaults.min_learning_rate:g}, '
        'or the learning rate if lower)',
    )
    group.add_argument(
        '--validation-fraction',
        type=float,
        default=defaults.validation_fraction,
        help='fraction of groups held out for validation (default: %(default)s)',
    )
    group.add_argument(
        '--early-stopping',
        type=int,
        default=None,
        metavar='PATIENCE',
        help='stop after this many epochs without improvement (default: off)',
    )
    group.add_argument(
        '--num-photons',
        type=float,
        default=None,
        help='mean photons per pattern; needed only for amplitude data of unknown dose',
    )
    group.add_argument(
        '--seed', type=int, default=defaults.seed, help='seed (default: %(default)s)'
    )
    group.add_argument(
        '--probe-refinement',
        choices=[mode.value for mode in ProbeRefinement],
        default=defaults.probe_refinement.value,
        help="refine the scan's probe with a flat object before training and train with it: "
        'auto (when the given probe cannot explain the patterns), on, off (default: %(default)s)',
    )
    group.add_argument(
        '--set',
        dest='overrides',
        action='append',
        default=[],
        metavar='SECTION.FIELD=VALUE',
        help='any configuration field, e.g. training.nll_weight=0.5 or model.probe_scale=4 '
        '(sections: model, training, execution; values are JSON or plain strings; repeatable)',
    )


def _add_hardware_options(parser: argparse.ArgumentParser) -> None:
    execution = ExecutionConfig()
    group = parser.add_argument_group('hardware and distribution')
    group.add_argument(
        '--precision',
        choices=[p.value for p in Precision],
        default=execution.precision.value,
        help='numeric precision (default: %(default)s)',
    )
    group.add_argument(
        '--devices',
        type=int,
        default=execution.devices,
        help='devices (GPUs or CPU processes) per node (default: %(default)s)',
    )
    group.add_argument(
        '--num-nodes', type=int, default=execution.num_nodes, help='nodes (default: %(default)s)'
    )
    group.add_argument(
        '--strategy',
        default=execution.strategy,
        help="distribution strategy, Lightning's name for PyTorch (ddp, ddp_spawn, fsdp, ...); "
        'TensorFlow mirrors the devices itself (default: %(default)s)',
    )


def _parse_overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    from ..errors import ConfigurationError

    sections: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, equals, text = pair.partition('=')
        section, dot, field = key.strip().partition('.')
        if not equals or not dot or section not in ('model', 'training', 'execution', 'inference'):
            raise ConfigurationError(
                '--set expects SECTION.FIELD=VALUE with SECTION model, training, execution or '
                f'inference (e.g. training.nll_weight=0.5), got {pair!r}'
            )
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        sections.setdefault(section, {})[field] = value
    return sections


def build_training_config(args: argparse.Namespace, pattern_size_px: int, base_model=None):
    """The :class:`PluginConfig` of a training run from the command line (and a fine-tuned model).

    Raises
    ------
    ConfigurationError
        For an invalid value, naming the field, the value and the valid range.
    """
    from ..config import (
        ExecutionConfig,
        InferenceConfig,
        ModelConfig,
        PluginConfig,
        TrainingConfig,
        build_config,
    )
    from ..errors import ConfigurationError

    overrides = _parse_overrides(args.overrides)
    explicit = {
        'mode': args.mode,
        'gridsize': args.gridsize,
        'n_filters_scale': args.n_filters_scale,
        'num_neighbors': args.num_neighbors,
    }
    explicit = {key: value for key, value in explicit.items() if value is not None}
    if base_model is not None:
        model_values = base_model.model_dump()
        conflicts = {
            key: value
            for key, value in {**explicit, **overrides.get('model', {})}.items()
            if key != 'mode' and model_values.get(key) != value
        }
        if conflicts or pattern_size_px != base_model.pattern_size_px:
            raise ConfigurationError(
                f'--init-model fixes the architecture (N = {base_model.pattern_size_px}, '
                f'gridsize {base_model.gridsize}, n_filters_scale {base_model.n_filters_scale}); '
                f'got {conflicts or {"pattern_size_px": pattern_size_px}}. Drop those options, or '
                'train from scratch for another architecture'
            )
        model_values.update({k: v for k, v in explicit.items() if k == 'mode'})
    else:
        model_values = {
            'pattern_size_px': pattern_size_px,
            **explicit,
            **overrides.get('model', {}),
        }
    min_rate = args.min_learning_rate
    if min_rate is None:
        min_rate = min(TrainingConfig().min_learning_rate, args.learning_rate)
    training_values = {
        'num_epochs': args.epochs,
        'batch_size': args.batch_size,
        'learning_rate': args.learning_rate,
        'min_learning_rate': min_rate,
        'validation_fraction': args.validation_fraction,
        'early_stopping_patience': args.early_stopping,
        'num_photons': args.num_photons,
        'seed': args.seed,
        'probe_refinement': args.probe_refinement,
        **overrides.get('training', {}),
    }
    execution_values = {
        'backend': args.backend,
        'device': args.device,
        'precision': args.precision,
        'devices': args.devices,
        'num_nodes': args.num_nodes,
        'strategy': args.strategy,
        **overrides.get('execution', {}),
    }
    return PluginConfig(
        model=build_config(ModelConfig, **model_values),
        training=build_config(TrainingConfig, **training_values),
        execution=build_config(ExecutionConfig, **execution_values),
        inference=build_config(InferenceConfig, **overrides.get('inference', {})),
    )


def _read_inputs(paths: list[Path]):
    from ..ptychodus_adapter import training_io

    datasets = []
    for path in paths:
        datasets += training_io.read_training_inputs(path)
    return datasets


def run(args: argparse.Namespace) -> int:
    from ..config import Mode as ModeEnum
    from ..core.archive import load_archive, save_archive
    from ..core.checkpoint import checkpoint_path, discard_checkpoint
    from ..errors import ConfigurationError
    from ..ptychodus_adapter import training_io
    from ..workflow import TrainingRun

    rank_zero = global_rank() == 0
    if args.output.suffix != '.zip':
        raise ConfigurationError(f'the model archive must end in .zip, got {str(args.output)!r}')
    outputs = [args.output] + ([args.history] if args.history else [])
    if rank_zero:
        check_outputs(outputs, args.overwrite)
    checkpoint = checkpoint_path(args.output)
    _check_resume(args, checkpoint)
    base = load_archive(args.init_model) if args.init_model is not None else None
    datasets = _read_inputs(args.inputs)
    config = build_training_config(
        args, datasets[0].pattern_size_px, None if base is None else base.config.model
    )
    if config.model.mode is ModeEnum.SUPERVISED:
        datasets = training_io.with_ground_truth(datasets, 'Supervised training')
    elif config.training.realspace_mae_weight > 0 or config.training.realspace_weight > 0:
        datasets = training_io.with_ground_truth(datasets, 'the real-space loss terms')
    show = rank_zero and not args.quiet
    if show:
        say(
            f'training {config.model.mode.value} (N = {config.model.pattern_size_px}, gridsize '
            f'{config.model.gridsize}, n_filters_scale {config.model.n_filters_scale}) on '
            f'{sum(d.num_patterns for d in datasets)} patterns with '
            f'{config.execution.backend.value} on {config.execution.device.value} for '
            f'{config.training.num_epochs} epochs'
            + ('' if base is None else f', starting from {args.init_model}')
        )
    run = TrainingRun(datasets, config, checkpoint=checkpoint if rank_zero else None)
    if args.resume:
        try:
            run.resume_from(load_archive(checkpoint), checkpoint)
        except BaseException:
            run.release()
            raise
        if show:
            say(
                f'resuming from {checkpoint} after epoch {len(run.history)}'
                + (' (nothing left to train)' if run.finished else '')
            )
    if show and run.probe_refinement is not None:
        refined = run.probe_refinement
        say(
            f'probe refined before training ({refined.result.seconds:.1f} s): misfit '
            f'{refined.result.after.median_noise_ratio:.2f} x the Poisson noise'
            + (
                f' (the given probe: {refined.result.before.median_noise_ratio:.2f})'
                if refined.result.before is not None
                else ''
            )
            + ('; training with it' if refined.adopted else '; not better, not used')
        )
    try:
        if base is not None:
            run.start_from(base)
        with progress_bar(config.training.num_epochs, 'training', 'epoch', shown=show) as bar:
            bar.update(len(run.history))
            for report in run.epochs():
                bar.update(1)
                bar.set_postfix(loss=f'{report.training_loss:.4g}', refresh=False)
                if show:
                    bar.write(_epoch_line(report), file=sys.stderr)
        archive = run.archive()
    finally:
        run.release()
    if base is not None:
        archive.training_summary['fine_tuned_from'] = {
            'path': str(args.init_model),
            'epochs_completed': base.training_summary.get('epochs_completed'),
            'trained_backend': base.trained_backend,
        }
    if not rank_zero:
        return 0
    save_archive(args.output, archive, overwrite=args.overwrite)
    discard_checkpoint(checkpoint)
    if args.history is not None:
        training_io.write_loss_csv(args.history, run.history)
    if show:
        seconds = archive.training_summary.get('seconds', 0.0)
        say(f'trained {len(run.history)} epochs in {seconds:.1f} s')
    print(args.output)
    return 0


def _check_resume(args: argparse.Namespace, checkpoint: Path) -> None:
    """``--resume`` needs a checkpoint; without it an existing one is replaced only on
    ``--overwrite`` (it holds the epochs of an interrupted training)."""
    from ..errors import ConfigurationError

    if args.resume and args.init_model is not None:
        raise ConfigurationError(
            '--resume continues a training from its checkpoint and --init-model starts a new one '
            'from a model; pass one of them'
        )
    if args.resume and not checkpoint.is_file():
        raise ConfigurationError(
            f'--resume: there is no checkpoint {checkpoint} to continue (a training writes it '
            'after every epoch and removes it when it finishes); run without --resume to train '
            'from the start'
        )
    if not args.resume and checkpoint.is_file() and not args.overwrite:
        raise OutputExistsError(
            f'{checkpoint} holds an interrupted training of {args.output}; pass --resume to '
            'continue it, or --overwrite to start over (the checkpoint is then replaced)'
        )


def _epoch_line(report) -> str:
    validation = '' if report.validation_loss is None else f'  val {report.validation_loss:.5g}'
    return (
        f'epoch {report.epoch:>3}/{report.num_epochs}  loss {report.training_loss:.5g}{validation}'
        f'  lr {report.learning_rate:.2g}  {report.seconds:.2f} s/epoch'
    )

"""The ``ptychopinn`` command's contract with scripts: help, exit statuses, messages, outputs."""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pytest
from cli_helpers import run_script
from suite_helpers import BACKEND_NAMES

from ptychopinn_plugin.cli import SUBCOMMANDS, ExitCode
from ptychopinn_plugin.cli._common import EXIT_MEANINGS

FRAMEWORKS = ('torch', 'tensorflow', 'keras', 'lightning')


@pytest.mark.e2e
def test_importing_the_cli_and_building_its_parser_loads_no_framework() -> None:
    code = (
        'import sys\n'
        'from ptychopinn_plugin.cli import build_parser\n'
        'build_parser()\n'
        f'print(",".join(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules)))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == '', f'frameworks loaded: {result.stdout.strip()}'


def test_main_help_lists_every_subcommand_and_the_exit_statuses(run_cli) -> None:
    result = run_cli('--help')
    assert result.code == 0
    for name in SUBCOMMANDS:
        assert name in result.stdout
    for code in ExitCode:
        assert f'{code.value:>3}  {EXIT_MEANINGS[code]}' in result.stdout
    assert len(set(EXIT_MEANINGS.values())) == len(ExitCode)


@pytest.mark.parametrize('command', SUBCOMMANDS)
def test_every_option_of_every_subcommand_has_help_text(run_cli, command: str) -> None:
    from ptychopinn_plugin.cli import build_parser

    parser = build_parser()
    subparser = parser._subparsers._group_actions[0].choices[command]
    undocumented = [
        action.option_strings or action.dest
        for action in subparser._actions
        if not action.help and action.dest != 'help'
    ]
    assert undocumented == []
    assert run_cli(command, '--help').code == 0


def test_reconstruct_passes_the_inference_options_into_its_config() -> None:
    from ptychopinn_plugin.cli import build_parser
    from ptychopinn_plugin.cli.reconstruct import build_inference_config
    from ptychopinn_plugin.config import InferenceConfig

    parser = build_parser()
    base = ['reconstruct', 'model.zip', 'data.npz', '-o', 'out']
    default = build_inference_config(parser.parse_args(base))
    assert default.amplitude_denoising == InferenceConfig().amplitude_denoising
    assert default.refine_iterations == InferenceConfig().refine_iterations
    chosen = parser.parse_args(
        [
            *base,
            '--refine-iterations',
            '3',
            '--refine-start',
            'object',
            '--amplitude-denoising',
            '0',
        ]
    )
    inference = build_inference_config(chosen)
    assert (inference.refine_iterations, inference.refine_start) == (3, 'object')
    assert inference.amplitude_denoising == 0.0  # off


def test_train_help_explains_the_distribution_options(run_cli) -> None:
    text = run_cli('train', '--help').stdout
    for option in ('--devices', '--num-nodes', '--strategy', '--precision', '--init-model'):
        assert option in text


def test_an_unknown_option_is_a_usage_error(run_cli) -> None:
    result = run_cli('train', 'x.npz', '-o', 'm.zip', '--no-such-option')
    assert result.code == ExitCode.USAGE
    assert 'unrecognized arguments: --no-such-option' in result.stderr


def test_an_invalid_setting_is_a_usage_error_naming_field_and_value(run_cli, cli_data) -> None:
    result = run_cli(
        'train',
        cli_data['train'],
        '-o',
        cli_data['model'].with_name('never.zip'),
        '--gridsize',
        '7',
    )
    assert result.code == ExitCode.USAGE
    assert 'gridsize' in result.stderr
    assert '7' in result.stderr
    assert 'Traceback' not in result.stderr
    assert not cli_data['model'].with_name('never.zip').exists()


def test_a_malformed_set_override_is_a_usage_error(run_cli, cli_data, tmp_path) -> None:
    result = run_cli('train', cli_data['train'], '-o', tmp_path / 'm.zip', '--set', 'nll_weight')
    assert result.code == ExitCode.USAGE
    assert "'nll_weight'" in result.stderr
    assert 'SECTION.FIELD=VALUE' in result.stderr


def test_missing_input_is_bad_input_with_a_message_and_no_traceback(run_cli, tmp_path) -> None:
    result = run_cli('inspect', tmp_path / 'absent.npz')
    assert result.code == ExitCode.BAD_INPUT
    assert 'absent.npz' in result.stderr
    assert 'Traceback' not in result.stderr


def test_debug_shows_the_traceback(run_cli, tmp_path) -> None:
    result = run_cli('inspect', tmp_path / 'absent.npz', '--debug')
    assert result.code == ExitCode.BAD_INPUT
    assert 'Traceback' in result.stderr


def test_a_foreign_zip_is_refused_as_a_bad_archive(run_cli, cli_data, tmp_path) -> None:
    foreign = tmp_path / 'foreign.zip'
    with zipfile.ZipFile(foreign, 'w') as archive:
        archive.writestr('readme.txt', 'not a model')
    result = run_cli('reconstruct', foreign, cli_data['test'], '-o', tmp_path / 'out')
    assert result.code == ExitCode.BAD_INPUT
    assert 'ArchiveError' in result.stderr
    assert 'foreign.zip' in result.stderr
    assert not (tmp_path / 'out' / 'object.npz').exists()


def test_existing_outputs_are_kept_unless_overwrite(run_cli, tmp_path) -> None:
    output = tmp_path / 'scan.npz'
    output.write_bytes(b'precious')
    refused = run_cli('simulate', output, '--num-patterns', '16')
    assert refused.code == ExitCode.OUTPUT_EXISTS
    assert '--overwrite' in refused.stderr
    assert output.read_bytes() == b'precious'
    replaced = run_cli('simulate', output, '--num-patterns', '16', '--overwrite')
    assert replaced.code == ExitCode.OK
    assert zipfile.is_zipfile(output)
    assert [p.name for p in tmp_path.iterdir()] == ['scan.npz']  # no temporary files left


@pytest.mark.e2e
@pytest.mark.parametrize('backend', BACKEND_NAMES)
def test_a_backend_that_is_not_installed_exits_4_naming_the_extra(cli_data, tmp_path, backend):
    hidden = ('torch', 'lightning') if backend == 'pytorch' else ('tensorflow', 'keras')
    code = (
        'import sys\n'
        f'for name in {hidden!r}:\n'
        '    sys.modules[name] = None\n'
        'from ptychopinn_plugin.cli import main\n'
        f'sys.exit(main(["reconstruct", {str(cli_data["model"])!r}, {str(cli_data["test"])!r},'
        f' "-o", {str(tmp_path / "out")!r}, "--backend", {backend!r}]))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], capture_output=True, text=True, timeout=120, check=False
    )
    extra = 'torch' if backend == 'pytorch' else 'tensorflow'
    assert result.returncode == ExitCode.UNAVAILABLE, result.stderr
    assert f"pip install 'ptychopinn-plugin[{extra}]'" in result.stderr
    assert 'Traceback' not in result.stderr


def test_a_cuda_request_without_a_gpu_exits_4(run_cli, cli_data, tmp_path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip('this machine has a CUDA GPU: the request is valid here')
    result = run_cli(
        'reconstruct',
        cli_data['model'],
        cli_data['test'],
        '-o',
        tmp_path / 'out',
        '--device',
        'cuda',
    )
    assert result.code == ExitCode.UNAVAILABLE
    assert 'cuda' in result.stderr
    assert 'auto or cpu' in result.stderr


@pytest.mark.e2e
def test_the_console_script_returns_the_documented_status(
    cli_data, tmp_path, installed_copy
) -> None:
    ok = run_script('inspect', cli_data['model'], '--json')
    assert ok.code == 0
    assert '"format": "ptychopinn-plugin-model"' in ok.stdout
    missing = run_script('inspect', tmp_path / 'absent.zip')
    assert missing.code == ExitCode.BAD_INPUT
    assert missing.stderr.startswith('ptychopinn inspect: ')

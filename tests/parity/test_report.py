"""The report helpers: Ptychodus's timing line, tables, case names and the pty-chi headline."""

from __future__ import annotations

import pytest

from ptychopinn_plugin.config import Mode
from ptychopinn_plugin.evidence import report
from ptychopinn_plugin.evidence.baseline import (
    PTYCHI_VARIANTS,
    BaselineRun,
    headlines,
    ptychi_settings,
)
from ptychopinn_plugin.evidence.parity import Case
from ptychopinn_plugin.evidence.report import markdown_table, reconstruction_seconds, spread

PTYCHODUS_LOG = (
    '2026-11-25 21:02:18,039 [INFO] ptychodus.model.processing.api: Preparing input data...\n'
    '2026-11-25 21:03:40,689 [INFO] ptychodus.model.processing.monitor: '
    'Reconstruction time 82.5932 seconds.\n'
)


def test_reconstruction_time_is_read_from_the_ptychodus_log() -> None:
    assert reconstruction_seconds(PTYCHODUS_LOG) == pytest.approx(82.5932)
    assert reconstruction_seconds('no such line') is None


def test_cases_parse_from_their_short_form_and_reject_nonsense() -> None:
    assert Case.parse('128:2:supervised') == Case(128, 2, Mode.SUPERVISED)
    with pytest.raises(SystemExit, match='N:GRIDSIZE:MODE'):
        Case.parse('64-2-pinn')


def test_tables_and_spreads_print_numbers() -> None:
    table = markdown_table(['a', 'b'], [[1.23456, 'PASS'], [1e-6, 'x|y']])
    assert table.splitlines()[2] == '| 1.23 | PASS |'
    assert '1.00e-06' in table
    assert 'x/y' in table
    assert str(spread([1.0, 3.0])) == '2 +- 1.4'


def test_ptychi_runs_yield_once_at_the_end() -> None:
    settings = ptychi_settings('LSQML', 30)
    assert settings['Processing']['Algorithm'] == 'pty-chi_lsqml'
    assert settings['PtyChi'] == {'NumEpochs': 30, 'NumSyncEpochs': 30}


def _run(method: str, iterations, seconds: float, phase: float, amplitude: float) -> BaselineRun:
    scores = {'phase_ssim': phase, 'amplitude_ssim': amplitude}
    return BaselineRun(method, iterations, 0, seconds, seconds, scores=scores)


def test_the_headline_takes_the_cheapest_iterative_run_at_least_as_good_in_both_ssims() -> None:
    pinn = _run('PtychoPINN pytorch', None, 2.0, 0.4, 0.5)
    runs = [
        pinn,
        _run('pty-chi LSQML', 1, 10.0, 0.5, 0.3),  # better phase, worse amplitude: not equal
        _run('pty-chi LSQML', 5, 30.0, 0.6, 0.6),
        _run('pty-chi LSQML', 10, 50.0, 0.9, 0.9),
        _run('pty-chi ePIE', 5, 20.0, 0.2, 0.2),
    ]
    by_algorithm = {h.algorithm: h for h in headlines(runs, pinn)}
    assert by_algorithm['pty-chi LSQML'].iterations == 5
    assert by_algorithm['pty-chi LSQML'].ratio == pytest.approx(15.0)
    assert by_algorithm['pty-chi ePIE'].ratio is None
    assert 'did not reach' in by_algorithm['pty-chi ePIE'].sentence()


def test_the_command_line_reads_as_a_reader_re_runs_it(tmp_path) -> None:
    assert (
        report.command_line('ptychopinn_plugin.evidence.baseline', ['--out', 'dir'])
        == 'python -m ptychopinn_plugin.evidence.baseline --out dir'
    )
    out = tmp_path / 'new' / 'folder'
    note = report.prepare_output(out)
    assert out.is_dir()
    assert note.startswith(('quiet', 'under load', 'load unknown'))


@pytest.mark.parametrize('variant', list(PTYCHI_VARIANTS))
def test_every_ptychi_variant_sets_settings_that_ptychodus_knows(variant) -> None:
    """Each group and name exists in Ptychodus's pty-chi settings (a misspelt name would be
    ignored with a log line, and the variant would silently run as shipped)."""
    from ptychodus.api.settings import SettingsRegistry
    from ptychodus.model.ptychi import settings as ptychi_groups

    registry = SettingsRegistry()
    for group in (
        ptychi_groups.PtyChiSettings,
        ptychi_groups.PtyChiProbeSettings,
        ptychi_groups.PtyChiLSQMLSettings,
    ):
        group(registry)
    known = {
        name: set(group.parameters()) for name, group in registry._parameter_group.groups().items()
    }
    settings = ptychi_settings('LSQML', 30, variant, num_patterns=1024)
    for group, values in settings.items():
        if group == 'Processing':
            continue
        assert set(values) <= known[group], (group, set(values) - known[group])
    probe_fixed = settings.get('PtyChiProbe', {}).get('IsOptimizable', True) is False
    assert probe_fixed == (variant != 'shipped')
    if variant == 'comparable':
        assert settings['PtyChi']['BatchSize'] == 1024
        assert settings['PtyChiLSQML']['MomentumAccelerationGain'] > 0


def test_the_comparable_ptychi_variant_needs_the_pattern_count() -> None:
    with pytest.raises(ValueError, match='num_patterns'):
        ptychi_settings('LSQML', 30, 'comparable')

"""The settings-panel hook: it swaps in our panel factory, waits for the GUI, and degrades gently.

These tests need no display and no PyQt5: they drive ``gui_hook``'s hook on stand-in controller
modules, and check in a subprocess that a ``ModelCore`` start-up (batch mode) loads nothing of Qt.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from ptychopinn_plugin.ptychodus_adapter import gui_hook


class _ProcessingApi:
    """Stands in for Ptychodus's ``ProcessingAPI`` (the key of the library registry)."""


class _Factory:
    def __init__(self, name: str) -> None:
        self.name = name


def _controller_module(init: Any) -> types.ModuleType:
    """A stand-in ``ptychodus.controller.core`` whose ``ProcessingController.__init__`` is init."""
    module = types.ModuleType('stand_in_controller_core')
    module.ProcessingController = type('ProcessingController', (), {'__init__': init})
    return module


def _recording_init(
    self: Any,
    algorithm_parameter: Any,
    processing_api: Any,
    file_dialog_factory: Any,
    view_controller_factories: Any,
) -> None:
    self.factories = list(view_controller_factories)


@pytest.fixture
def our_library(monkeypatch: pytest.MonkeyPatch) -> tuple[_ProcessingApi, Any]:
    """A processing API registered with one library named PtychoPINN, panel factory stubbed."""
    api = _ProcessingApi()
    library = types.SimpleNamespace(name='PtychoPINN')
    monkeypatch.setitem(gui_hook._libraries_by_processing_api, api, [library])
    monkeypatch.setattr(
        gui_hook, '_view_controller_factory', lambda lib, dialogs: _Factory(lib.name)
    )
    return api, library


def test_the_hooked_controller_gets_our_factory_in_place_of_the_built_in_one(
    our_library: tuple[_ProcessingApi, Any],
) -> None:
    api, _ = our_library
    module = _controller_module(_recording_init)
    assert gui_hook._hook_processing_controller(module)
    assert not gui_hook._hook_processing_controller(module), 'installed once only'
    built_in = [_Factory('pty-chi'), _Factory('PtychoPINN'), _Factory('PtychoNN')]
    controller = module.ProcessingController(
        'algorithm', api, 'dialogs', view_controller_factories=built_in
    )
    assert [factory.name for factory in controller.factories] == [
        'pty-chi',
        'PtychoPINN',
        'PtychoNN',
    ]
    assert controller.factories[1] is not built_in[1]
    assert controller.factories[0] is built_in[0]
    assert controller.factories[2] is built_in[2]


def test_a_panel_that_fails_to_build_leaves_the_built_in_one(
    our_library: tuple[_ProcessingApi, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api, _ = our_library

    def broken(library: Any, dialogs: Any) -> Any:
        raise RuntimeError('no Qt here')

    monkeypatch.setattr(gui_hook, '_view_controller_factory', broken)
    built_in = [_Factory('PtychoPINN')]
    assert gui_hook.with_entry_point_views(built_in, api, 'dialogs') == built_in
    assert 'the built-in panel stays' in caplog.text


def test_an_unexpected_controller_module_is_left_alone_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=gui_hook.__name__)
    assert not gui_hook._hook_processing_controller(types.ModuleType('no_controller'))
    assert 'has no ProcessingController' in caplog.text

    def other_init(self: Any, view: Any, factories: Any) -> None:
        pass

    module = _controller_module(other_init)
    original = module.ProcessingController
    assert not gui_hook._hook_processing_controller(module)
    assert module.ProcessingController is original
    assert 'takes no processing_api, file_dialog_factory, view_controller_factories' in caplog.text


@pytest.mark.e2e
@pytest.mark.timeout(120)
def test_a_model_core_start_up_loads_no_qt_and_leaves_the_hook_waiting(
    tmp_path: Path, installed_copy: Path
) -> None:
    code = (
        'import logging, sys\n'
        'from ptychodus.model import ModelCore\n'
        'model = ModelCore(log_level=logging.WARNING)\n'
        'waiting = [type(f).__name__ for f in sys.meta_path\n'
        '           if type(f).__module__.startswith("ptychopinn_plugin")]\n'
        'loaded = sorted(m for m in sys.modules if m.startswith(("PyQt5", "ptychodus.controller",'
        ' "ptychopinn_plugin.ptychodus_adapter.view")))\n'
        'print("WAITING", waiting, "LOADED", loaded)\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=100
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WAITING ['_PostImportHook'] LOADED []" in result.stdout, result.stdout

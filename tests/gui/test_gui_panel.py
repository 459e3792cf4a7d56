"""The real Ptychodus main window shows our PtychoPINN panel, and its controls edit our settings.

Starts Ptychodus the way ``ptychodus`` (its ``__main__``) does — ``ModelCore``, ``QApplication``,
``ViewCore``, ``ControllerCore`` — on Qt's offscreen platform, then acts as a user would: opens the
reconstructor view, picks ``ptychopinn_pinn`` in the Algorithm combo box with the keyboard, and
changes the Backend combo box of the panel. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip('PyQt5.QtWidgets', reason='the gui extra (PyQt5) is not installed')

from PyQt5.QtCore import Qt
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import (
    QApplication,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

from ptychopinn_plugin.config import Backend
from ptychopinn_plugin.ptychodus_adapter.library import PtychoPINNLibrary
from ptychopinn_plugin.ptychodus_adapter.settings import build_config

PANEL_OBJECT_NAME = 'ptychopinn_plugin_panel'
"""``view.PANEL_OBJECT_NAME``, repeated so that this module imports nothing of ours from Qt."""

PINN_LABELS = {
    'Backend:',
    'Device:',
    'Precision:',
    'Grid Size:',
    'Filters Scale:',
    'Amplitude Activation:',
    'Object Big',
    'Probe Big',
    'Probe Mask',
    'Pad Object',
    'Probe Scale:',
    'Gaussian Smoothing [px]:',
    'Photons per Pattern:',
    'Batch Size:',
    'Number of Epochs:',
    'Learning Rate:',
    'Min. Learning Rate:',
    'Plateau Patience:',
    'Early Stopping Patience:',
    'Poisson NLL Weight:',
    'Diffraction MAE Weight:',
    'Real-Space MAE Weight:',
    'Real-Space Weight:',
    'Validation Fraction:',
    'Seed:',
    'Probe Refinement:',
    'Probe Refinement Iterations:',
    'Probe Trainable',
    'Intensity Scale Trainable',
    'Model File:',
    'Nearest Neighbors:',
    'Inference Batch Size:',
    'Number of Groups:',
    'Stitch Crop [px]:',
    'Partial Results:',
    'Refine Iterations:',
    'Refine Start:',
    'Fine-Tune Epochs:',
}


@dataclass
class MainWindow:
    model: Any  # ptychodus.model.ModelCore
    view: Any  # ptychodus.view.ViewCore (the QMainWindow)
    app: QApplication


@pytest.fixture
def main_window(installed_copy: Path) -> Iterator[MainWindow]:
    """Ptychodus's main window, built in ``ptychodus.__main__``'s order, closed afterwards."""
    from ptychodus.model import ModelCore

    with ModelCore(None, log_level=logging.WARNING) as model:
        app = QApplication.instance() or QApplication(['ptychodus'])
        from ptychodus.view import ViewCore

        view = ViewCore(is_developer_mode_enabled=model.is_developer_mode_enabled)
        from ptychodus.controller import ControllerCore

        controller = ControllerCore(
            model, view, is_developer_mode_enabled=model.is_developer_mode_enabled
        )
        controller.show_main_window('Ptychodus (GUI test)')
        view.resize(1400, 1100)
        app.processEvents()
        try:
            yield MainWindow(model, view, app)
        finally:
            view.close()
            view.deleteLater()
            del controller  # also ends its one-second task timer
            app.processEvents()


def _choose(combo: QComboBox, text: str) -> None:
    """Pick ``text`` as a user does: open the list, arrow keys to the item, Return.

    Qt then emits ``activated`` / ``textActivated`` (which Ptychodus's combo boxes listen to) even
    when the item was already shown, as after start-up, when the Algorithm box shows its first
    entry while the algorithm is still ``none_none``.
    """
    target = combo.findText(text)
    assert target >= 0, f'{text!r} not in {_items(combo)}'
    combo.showPopup()
    popup_list = combo.view()
    steps = target - combo.currentIndex()
    for _ in range(abs(steps)):
        QTest.keyClick(popup_list, Qt.Key.Key_Down if steps > 0 else Qt.Key.Key_Up)
    QTest.keyClick(popup_list, Qt.Key.Key_Return)
    assert combo.currentText() == text
    assert not popup_list.isVisible()


def _items(combo: QComboBox) -> list[str]:
    return [combo.itemText(index) for index in range(combo.count())]


def _backend_combo(panel: QWidget) -> QComboBox:
    backends = [member.value for member in Backend]
    found = [c for c in panel.findChildren(QComboBox) if sorted(_items(c)) == sorted(backends)]
    assert len(found) == 1, 'the panel needs exactly one combo box listing the backends'
    return found[0]


def _panels(view: Any) -> dict[str, QWidget]:
    return {
        panel.property('reconstructor'): panel
        for panel in view.processing_view.findChildren(QWidget, PANEL_OBJECT_NAME)
    }


@pytest.mark.timeout(120)
def test_selecting_ptychopinn_shows_our_panel_whose_backend_choice_edits_the_setting(
    main_window: MainWindow, artifact_dir: Path, tmp_path: Path
) -> None:
    model, view, app = main_window.model, main_window.view, main_window.app
    library = next(
        lib for lib in model.processing_core.algorithm_libraries if lib.name == 'PtychoPINN'
    )
    assert isinstance(library, PtychoPINNLibrary)
    backend = library.plugin_settings.backend
    assert backend.get_value() == Backend.PYTORCH.value

    view.processing_action.trigger()  # the Reconstructor view, as a click on its tool button
    algorithm_combo = next(
        c for c in view.processing_view.findChildren(QComboBox) if 'ptychopinn_pinn' in _items(c)
    )
    _choose(algorithm_combo, 'ptychopinn_pinn')
    app.processEvents()
    assert model.processing_core.algorithm_parameter.get_value() == 'ptychopinn_pinn'

    panels = _panels(view)
    assert set(panels) == {'pinn', 'supervised'}, 'our panels replace the built-in ones'
    panel = panels['pinn']
    assert panel.isVisible(), 'selecting ptychopinn_pinn must show our PINN panel'
    assert not panels['supervised'].isVisible()
    titles = [box.title() for box in panel.findChildren(QGroupBox)]
    assert titles == ['Execution', 'Model', 'Training', 'Inference']
    labels = {label.text() for label in panel.findChildren(QLabel)}
    assert PINN_LABELS <= labels, f'missing controls: {sorted(PINN_LABELS - labels)}'

    # the Supervised panel says how much data Supervised needs; the PINN panel does not
    def tips(widget: QWidget) -> set[str]:
        return {child.toolTip() for child in widget.findChildren(QWidget)}

    assert any('4,096 patterns' in tip for tip in tips(panels['supervised']))
    assert not any('4,096 patterns' in tip for tip in tips(panel))

    backend_combo = _backend_combo(panel)
    assert backend_combo.isVisible()
    assert backend_combo.currentText() == 'pytorch'
    _choose(backend_combo, 'tensorflow')
    assert backend.get_value() == 'tensorflow'
    assert build_config(library.settings, 'pinn').execution.backend is Backend.TENSORFLOW
    assert _backend_combo(panels['supervised']).currentText() == 'tensorflow', 'same parameter'

    model_file = tmp_path / 'model.zip'
    path_edit = next(e for e in panel.findChildren(QLineEdit) if e.text() == '/path/to/model.zip')
    path_edit.clear()
    QTest.keyClicks(path_edit, str(model_file))
    QTest.keyClick(path_edit, Qt.Key.Key_Return)
    assert library.inference_settings.model_path.get_value() == model_file

    app.processEvents()
    assert view.grab().save(str(artifact_dir / 'gui_ptychopinn_window.png'))
    assert panel.grab().save(str(artifact_dir / 'gui_ptychopinn_panel.png'))

    backend.set_value('pytorch')  # a setting changed elsewhere (a settings file) shows up
    assert backend_combo.currentText() == 'pytorch'

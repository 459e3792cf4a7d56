"""The real Ptychodus main window shows our PtychoPINN panel, and its controls edit our settings.

Starts Ptychodus the way ``ptychodus`` (its ``__main__``) does — ``ModelCore``, ``QApplication``,
``ViewCore``, ``ControllerCore`` — on Qt's offscreen platform, then acts as a user would: opens the
reconstructor view, picks ``ptychopinn_pinn`` in the Algorithm combo box with the keyboard, and
changes the Backend combo box of the panel. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import logging
import re
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
    QCheckBox,
    QComboBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QSpinBox,
    QWidget,
)

from ptychopinn_plugin.config import Backend, PluginConfig
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
    'Amplitude Denoising:',
    'Reconstruction Probe:',
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


def _shown_defaults() -> dict[str, object]:
    """Label of each value-bearing control -> the plugin default it must show (from the configs)."""
    config = PluginConfig()
    model, training, inference = config.model, config.training, config.inference
    execution = config.execution
    return {
        'Backend:': execution.backend.value,
        'Device:': execution.device.value,
        'Precision:': execution.precision.value,
        'Grid Size:': model.gridsize,
        'Filters Scale:': model.n_filters_scale,
        'Amplitude Activation:': model.amp_activation.value,
        'Object Big': model.object_big,
        'Probe Big': model.probe_big,
        'Probe Mask': model.probe_mask,
        'Pad Object': model.pad_object,
        'Probe Scale:': model.probe_scale,
        'Gaussian Smoothing [px]:': model.gaussian_smoothing_sigma_px,
        'Photons per Pattern:': 1e6,  # only for data of unknown dose (the config measures it)
        'Batch Size:': training.batch_size,
        'Number of Epochs:': training.num_epochs,
        'Learning Rate:': training.learning_rate,
        'Min. Learning Rate:': training.min_learning_rate,
        'Plateau Patience:': training.plateau_patience,
        'Early Stopping Patience:': training.early_stopping_patience or 0,
        'Poisson NLL Weight:': training.nll_weight,
        'Diffraction MAE Weight:': training.mae_weight,
        'Real-Space MAE Weight:': training.realspace_mae_weight,
        'Real-Space Weight:': training.realspace_weight,
        'Validation Fraction:': training.validation_fraction,
        'Seed:': training.seed,
        'Probe Refinement:': training.probe_refinement.value,
        'Probe Refinement Iterations:': training.probe_refinement_iterations,
        'Probe Trainable': training.probe_trainable,
        'Intensity Scale Trainable': training.intensity_scale_trainable,
        'Nearest Neighbors:': model.num_neighbors,
        'Inference Batch Size:': inference.batch_size,
        'Number of Groups:': inference.num_groups or 0,
        'Stitch Crop [px]:': inference.stitch_crop_px or 0,
        'Phase Alignment:': inference.phase_alignment.value,
        'Phase Ramp Correction': inference.phase_ramp_correction,
        'Refine Iterations:': inference.refine_iterations,
        'Refine Start:': inference.refine_start.value,
        'Amplitude Denoising:': inference.amplitude_denoising,
        'Reconstruction Probe:': inference.reconstruction_probe.value,
        'Fine-Tune Epochs:': inference.fine_tune_epochs,
        'Partial Results:': inference.num_partial_results,
    }


SLIDER_RESOLUTION = 1e-3
"""Ptychodus's decimal sliders snap to 1,000 ticks of their range (0 to 1 at most here)."""


def _shown(control: QWidget) -> object:
    """The value a control shows, as its parameter holds it."""
    if isinstance(control, QSpinBox):
        return control.value()
    if isinstance(control, QComboBox):
        return control.currentText()
    if isinstance(control, QCheckBox):
        return control.isChecked()
    get_value = getattr(control, 'get_value', None)  # Ptychodus's decimal line edit and slider
    assert get_value is not None, f'cannot read a {type(control).__name__}'
    return pytest.approx(float(get_value()), abs=SLIDER_RESOLUTION)


@pytest.mark.timeout(120)
def test_the_panel_shows_the_plugin_defaults(main_window: MainWindow) -> None:
    """What a new user sees is what ``ptychopinn`` and the configs use (issue 28, item 6)."""
    main_window.view.processing_action.trigger()
    main_window.app.processEvents()
    expected = _shown_defaults()
    panels = _panels(main_window.view)
    shown: dict[str, object] = {}
    for panel in panels.values():
        for label in panel.findChildren(QLabel):
            control = label.buddy()
            if control is not None and label.text() != 'Model File:':
                shown[label.text()] = _shown(control)
    assert set(shown) == set(expected), 'a control without an expected default, or one missing'
    wrong = {label: value for label, value in shown.items() if value != expected[label]}
    defaults = {label: expected[label] for label in wrong}
    assert wrong == {}, f'the panel shows {wrong}; the plugin defaults are {defaults}'


FIGURE = re.compile(r'\b\d+\.\d+\b|\b\d+ ?(s|ms|min)\b|\b\d+x\b|%')
"""A quality or speed figure in a tool tip: a decimal, a duration, a speed-up (9x, not 2 x 2) or a
percentage."""
PRODUCERS = (
    'the network alone (RefineIterations = 0)',
    'the built-in refinement from',
    'both (the network, then the built-in refinement',
)
"""What a figure must name as its producer (``view.py``'s rule)."""
FLAT_START = 'the built-in refinement from a flat object (no network)'


@pytest.mark.timeout(120)
def test_every_figure_in_a_tool_tip_names_what_produced_it(main_window: MainWindow) -> None:
    tips = {
        child.toolTip()
        for panel in _panels(main_window.view).values()
        for child in panel.findChildren(QWidget)
        if FIGURE.search(child.toolTip())
    }
    assert tips, 'the Supervised note quotes measured figures'
    for tip in tips:
        assert any(producer in tip for producer in PRODUCERS), f'no producer named: {tip!r}'
        if 'built-in refinement' in tip:
            assert FLAT_START in tip, f'a refinement figure without the flat start: {tip!r}'

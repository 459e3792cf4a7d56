"""The PtychoPINN settings panel of the Ptychodus GUI (PyQt5; needs the ``gui`` extra).

Ptychodus shows one settings panel per reconstructor, made by the
``ReconstructorViewControllerFactory`` whose ``name`` matches the library name.
:class:`PtychoPINNViewControllerFactory` builds ours with Ptychodus's ``ParameterViewBuilder``,
bound to the very ``Parameter`` objects of our library's settings (``settings.py``): editing a
control changes the setting, and a setting changed elsewhere (a settings file, the other
reconstructor's panel) shows up in the control.

A tool tip that quotes a quality or speed figure names what produced it: "the network alone
(RefineIterations = 0)", "the built-in refinement from <start>" or "both (the network, then the
built-in refinement ...)"; a refinement figure has the refinement from a flat object (no network)
with the same iterations beside it (``tests/gui/test_gui_panel.py`` checks every tool tip). The
figures come from ``docs/results.md``.

This is the only module of the package that imports PyQt5 or ``ptychodus.controller``; it is
imported only by the GUI hook in ``gui_hook.py`` while Ptychodus builds its main window, never in
batch mode and never by ``import ptychopinn_plugin``.
"""

from __future__ import annotations

import logging

from ptychodus.controller.data import FileDialogFactory
from ptychodus.controller.parameters import ParameterViewBuilder
from ptychodus.controller.processing import ReconstructorViewControllerFactory
from PyQt5.QtWidgets import QWidget

from ..config import Mode
from .library import PtychoPINNLibrary
from .reconstructor import MODEL_FILE_FILTER

logger = logging.getLogger(__name__)

__all__ = ['PANEL_OBJECT_NAME', 'PtychoPINNViewControllerFactory']

PANEL_OBJECT_NAME = 'ptychopinn_plugin_panel'
"""Qt object name of every panel we build (``QWidget.findChild`` finds it; tests use it)."""

SUPERVISED_DATA_NOTE = (
    'Supervised mode learns from a known object (a simulation or an iterative reconstruction) and '
    "needs much data. On the realistic benchmark's held-out scan, 50 epochs on 1,024 patterns give "
    'a phase SSIM of 0.22 and on 4,096 patterns 0.28, from the network alone (RefineIterations = '
    '0); PINN needs no known object. From both (the network, then the built-in refinement from its '
    'amplitude, 100 iterations) either model reaches phase SSIM 0.974, and the built-in refinement '
    'from a flat object (no network) with the same 100 iterations 0.971: the refinement makes the '
    'final quality either way.'
)
"""Tool tip of the Supervised panel's epoch count: how much data Supervised needs. Figures from
docs/results.md, the same held-out test scan: "Supervised at 1,024 and 4,096 patterns" (network
alone, and the defaults) and "Where the start matters: an ablation" (flat object, 100 iterations).
"""

_EXECUTION = 'Execution'
_MODEL = 'Model'
_TRAINING = 'Training'
_INFERENCE = 'Inference'


class PtychoPINNViewControllerFactory(ReconstructorViewControllerFactory):
    """Settings panels of the ``PtychoPINN`` library, one per reconstructor (PINN, Supervised).

    Both panels edit the same parameters. The Supervised panel leaves out what only the physics
    loss uses (loss weights, photon count, trainable probe and intensity scale).
    """

    def __init__(self, library: PtychoPINNLibrary, file_dialog_factory: FileDialogFactory) -> None:
        super().__init__()
        self._library = library
        self._file_dialog_factory = file_dialog_factory

    @property
    def name(self) -> str:
        return self._library.name

    def create_view_controller(self, reconstructor_name: str) -> QWidget:
        is_pinn = reconstructor_name.casefold() == Mode.PINN.value
        builder = ParameterViewBuilder(self._file_dialog_factory)
        self._add_execution(builder)
        self._add_model(builder)
        self._add_training(builder, is_pinn=is_pinn)
        self._add_inference(builder)
        widget = builder.build_widget()
        widget.setObjectName(PANEL_OBJECT_NAME)
        widget.setProperty('reconstructor', reconstructor_name)
        return widget

    def _add_execution(self, builder: ParameterViewBuilder) -> None:
        plugin = self._library.plugin_settings
        choices = self._library.enumerators
        builder.add_combo_box(
            plugin.backend,
            choices.get_backends(),
            'Backend:',
            tool_tip='Framework that trains and runs the network. An archive trained by one '
            'backend loads under the other.',
            group=_EXECUTION,
        )
        builder.add_combo_box(
            plugin.device,
            choices.get_devices(),
            'Device:',
            tool_tip='auto: a GPU when the selected framework sees one, else the CPU.',
            group=_EXECUTION,
        )
        builder.add_combo_box(
            plugin.precision,
            choices.get_precisions(),
            'Precision:',
            tool_tip=(
                'Numeric precision of the network; auto: bf16-mixed where the GPU or CPU '
                'computes bfloat16 natively, else 32-true.'
            ),
            group=_EXECUTION,
        )

    def _add_model(self, builder: ParameterViewBuilder) -> None:
        model = self._library.model_settings
        builder.add_spin_box(
            model.gridsize,
            'Grid Size:',
            tool_tip='Neighbouring patterns solved together: gridsize 2 groups 2 x 2 = 4. '
            "A loaded model's own grid size wins at reconstruction.",
            group=_MODEL,
        )
        builder.add_spin_box(
            model.n_filters_scale,
            'Filters Scale:',
            tool_tip='Multiplies the number of convolution filters of every layer.',
            group=_MODEL,
        )
        builder.add_combo_box(
            model.amp_activation,
            self._library.enumerators.get_amp_activations(),
            'Amplitude Activation:',
            tool_tip='Output activation of the amplitude decoder.',
            group=_MODEL,
        )
        for parameter, label, tool_tip in (
            (model.object_big, 'Object Big', 'Solve one object patch per pattern of a group.'),
            (model.probe_big, 'Probe Big', 'Also reconstruct the outer, low-resolution region.'),
            (model.probe_mask, 'Probe Mask', 'Apply a circular mask to the probe.'),
            (model.pad_object, 'Pad Object', 'Restrict the object to the central N/2 x N/2.'),
        ):
            builder.add_check_box(parameter, label, tool_tip=tool_tip, group=_MODEL)
        builder.add_decimal_line_edit(
            model.probe_scale,
            'Probe Scale:',
            tool_tip='Scale factor of the probe amplitude.',
            group=_MODEL,
        )
        builder.add_decimal_line_edit(
            model.gaussian_smoothing_sigma,
            'Gaussian Smoothing [px]:',
            tool_tip='Standard deviation of the smoothing of the probe illumination (0: off).',
            group=_MODEL,
        )

    def _add_training(self, builder: ParameterViewBuilder, *, is_pinn: bool) -> None:
        training = self._library.training_settings
        if is_pinn:
            builder.add_decimal_line_edit(
                training.nphotons,
                'Photons per Pattern:',
                tool_tip='Used only for amplitude data of unknown dose; data with detector '
                'counts (all data from Ptychodus) use their measured dose.',
                group=_TRAINING,
            )
        builder.add_spin_box(training.batch_size, 'Batch Size:', group=_TRAINING)
        builder.add_spin_box(
            training.nepochs,
            'Number of Epochs:',
            tool_tip='' if is_pinn else SUPERVISED_DATA_NOTE,
            group=_TRAINING,
        )
        builder.add_decimal_line_edit(
            training.learning_rate, 'Learning Rate:', tool_tip='Initial Adam step.', group=_TRAINING
        )
        builder.add_decimal_line_edit(
            training.min_learning_rate,
            'Min. Learning Rate:',
            tool_tip='Floor of the reduce-on-plateau schedule.',
            group=_TRAINING,
        )
        builder.add_spin_box(
            training.plateau_patience,
            'Plateau Patience:',
            tool_tip='Epochs without improvement before the learning rate drops.',
            group=_TRAINING,
        )
        builder.add_spin_box(
            training.early_stopping_patience,
            'Early Stopping Patience:',
            tool_tip='Epochs without improvement before training stops (0: never).',
            group=_TRAINING,
        )
        if is_pinn:
            for parameter, label in (
                (training.nll_weight, 'Poisson NLL Weight:'),
                (training.mae_weight, 'Diffraction MAE Weight:'),
                (training.realspace_mae_weight, 'Real-Space MAE Weight:'),
                (training.realspace_weight, 'Real-Space Weight:'),
            ):
                builder.add_decimal_slider(parameter, label, group=_TRAINING)
        builder.add_decimal_slider(
            training.validation_fraction,
            'Validation Fraction:',
            tool_tip='Share of the groups held out for the validation loss.',
            group=_TRAINING,
        )
        builder.add_spin_box(
            training.seed, 'Seed:', tool_tip='Seeds weights, split and shuffling.', group=_TRAINING
        )
        builder.add_combo_box(
            training.probe_refinement,
            self._library.enumerators.get_probe_refinements(),
            'Probe Refinement:',
            tool_tip="Refine the scan's probe with a flat object before training and train with "
            'it: auto (when the given probe cannot explain the patterns, e.g. a model of the '
            'optics), on, or off.',
            group=_TRAINING,
        )
        builder.add_spin_box(
            training.probe_refinement_iterations,
            'Probe Refinement Iterations:',
            tool_tip='Iterations of the probe refinement on up to 1,024 central scan points.',
            group=_TRAINING,
        )
        if is_pinn:
            builder.add_check_box(
                training.probe_trainable,
                'Probe Trainable',
                tool_tip='Refine the probe during training (experimental).',
                group=_TRAINING,
            )
            builder.add_check_box(
                training.intensity_scale_trainable,
                'Intensity Scale Trainable',
                tool_tip='Learn the intensity scale of the forward model.',
                group=_TRAINING,
            )

    def _add_inference(self, builder: ParameterViewBuilder) -> None:
        inference = self._library.inference_settings
        builder.add_file_opener(
            inference.model_path,
            'Model File:',
            caption='Open PtychoPINN Model',
            name_filters=[MODEL_FILE_FILTER],
            selected_name_filter=MODEL_FILE_FILTER,
            tool_tip='Model archive loaded at the first reconstruction when no model is loaded.',
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.n_nearest_neighbors,
            'Nearest Neighbors:',
            tool_tip='Candidates for grouping scan points (grid size > 1).',
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.inference_batch_size, 'Inference Batch Size:', group=_INFERENCE
        )
        builder.add_spin_box(
            inference.num_groups,
            'Number of Groups:',
            tool_tip='Groups to reconstruct (0: every scan point).',
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.stitch_crop_px,
            'Stitch Crop [px]:',
            tool_tip='Border cut from each patch before stitching (0: automatic).',
            group=_INFERENCE,
        )
        builder.add_combo_box(
            inference.phase_alignment,
            self._library.enumerators.get_phase_alignments(),
            'Phase Alignment:',
            tool_tip='How the free global phases of the patches are made to agree: global '
            '(phase synchronisation, recommended), greedy, or none.',
            group=_INFERENCE,
        )
        builder.add_check_box(
            inference.phase_ramp_correction,
            'Phase Ramp Correction',
            tool_tip='Remove the object-wide phase ramp, fitted to the measured diffraction.',
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.refine_iterations,
            'Refine Iterations:',
            tool_tip='Iterations refining the stitched object against the measured patterns '
            '(their overlap; probe and positions fixed). 0: the network output as stitched.',
            group=_INFERENCE,
        )
        builder.add_combo_box(
            inference.refine_start,
            self._library.enumerators.get_refine_starts(),
            'Refine Start:',
            tool_tip='What the refinement starts from: a flat object (recommended: on the '
            "benchmark matrix the network's starts never did better after 100 iterations), the "
            "network's amplitude with a flat phase, or its whole object.",
            group=_INFERENCE,
        )
        builder.add_decimal_line_edit(
            inference.amplitude_denoising,
            'Amplitude Denoising:',
            tool_tip='Strength of the total-variation denoising of the refined amplitude, in '
            "units of its shot-noise level (from the patterns' counts and the probe's "
            'illumination): 1 sets the weight to that level, 0: off. The phase is kept; applied '
            'after the refinement only. At high dose it changes almost nothing; at low dose it '
            'removes the noise the refinement fitted.',
            group=_INFERENCE,
        )
        builder.add_combo_box(
            inference.reconstruction_probe,
            self._library.enumerators.get_reconstruction_probes(),
            'Reconstruction Probe:',
            tool_tip="Probe of the refinement and the data consistency: the model's (the one it "
            "was trained with), the scan's own, or auto (recommended): the one that explains "
            "the scan's patterns better, refined on the scan when neither does. The log and "
            "the product's comments say which was used.",
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.fine_tune_epochs,
            'Fine-Tune Epochs:',
            tool_tip='Epochs of PINN training on the scan itself before reconstructing it (no '
            'ground truth needed; the loaded model is not changed). 0: off.',
            group=_INFERENCE,
        )
        builder.add_spin_box(
            inference.num_partial_results,
            'Partial Results:',
            tool_tip='Intermediate products shown while reconstructing.',
            group=_INFERENCE,
        )

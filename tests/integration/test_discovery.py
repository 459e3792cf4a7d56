"""Discovery: a plain install makes Ptychodus list PtychoPINN, and any entry point of the group.

The bridge module must be in Ptychodus's own ``ptychodus/plugins`` directory (regular install);
``ModelCore`` must then list ``ptychopinn_pinn`` and ``ptychopinn_supervised`` backed by our
library in place of the built-in one, with every other library unchanged; existing settings files
must load into our parameters; a third-party entry point is picked up the same way, and a broken one
is skipped without stopping Ptychodus.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from ptychodus.model import ModelCore

from ptychopinn_plugin.config import Backend, Mode
from ptychopinn_plugin.ptychodus_adapter.discovery import ENTRY_POINT_GROUP, bridge_path
from ptychopinn_plugin.ptychodus_adapter.library import PtychoPINNLibrary
from ptychopinn_plugin.ptychodus_adapter.reconstructor import PtychoPINNReconstructor
from ptychopinn_plugin.ptychodus_adapter.settings import build_config

BUILT_IN_LIBRARIES = ['pty-chi', 'PtychoNN', 'PtychoPINN', 'PtychoPINN-Torch', 'PtychoFM']
"""Ptychodus 1.7's libraries in ModelCore's order; ours takes the built-in PtychoPINN's place."""


def _model_core(settings_file: Path | None = None) -> ModelCore:
    return ModelCore(settings_file, log_level=logging.WARNING)


def test_the_bridge_module_is_installed_where_ptychodus_looks(installed_copy: Path) -> None:
    found = bridge_path()
    assert found is not None, 'bridge not in ptychodus/plugins: install with pip install .'
    assert found.parent == installed_copy / 'ptychodus' / 'plugins'


def test_model_core_lists_the_ptychopinn_reconstructors(installed_copy: Path) -> None:
    model = _model_core()
    keys = list(model.processing_core.processing_api.available_reconstructors())
    assert 'ptychopinn_pinn' in keys
    assert 'ptychopinn_supervised' in keys
    parameter = model.processing_core.algorithm_parameter
    for key, mode in (('ptychopinn_pinn', Mode.PINN), ('ptychopinn_supervised', Mode.SUPERVISED)):
        parameter.set_value(key)
        assert parameter.get_value() == key
        reconstructor = parameter.get_current_reconstructor()
        assert isinstance(reconstructor, PtychoPINNReconstructor)
        assert reconstructor.mode is mode
        assert model.processing_core.processing_api.get_model_file_extension() == '.zip'


def test_our_library_replaces_the_built_in_one_and_nothing_else_changes(
    installed_copy: Path,
) -> None:
    libraries = _model_core().processing_core.algorithm_libraries
    assert [library.name for library in libraries] == BUILT_IN_LIBRARIES
    ours = [library for library in libraries if library.name == 'PtychoPINN']
    assert len(ours) == 1
    assert isinstance(ours[0], PtychoPINNLibrary)
    others = [library for library in libraries if library.name != 'PtychoPINN']
    assert all(type(library).__module__.startswith('ptychodus.model.') for library in others)


def test_an_existing_ptychodus_settings_file_loads_into_our_settings(
    tmp_path: Path, installed_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings_file = tmp_path / 'settings.ini'
    settings_file.write_text(
        textwrap.dedent(
            """\
            [Processing]
            Algorithm = ptychopinn_supervised
            [PtychoPINNModel]
            GridSize = 2
            NumFiltersScale = 1
            AmpActivation = swish
            [PtychoPINNTraining]
            NumEpochs = 7
            NumPhotons = 1000000.0
            [PtychoPINNInference]
            ModelPath = /path/to/model.zip
            NumNearestNeighbors = 4
            NumSamples = 1
            [PtychoPINN]
            Backend = tensorflow
            """
        )
    )
    with caplog.at_level(logging.WARNING, logger='ptychodus.api.settings'):
        model = _model_core(settings_file)
    assert 'unrecognized setting' not in caplog.text
    assert model.processing_core.algorithm_parameter.get_value() == 'ptychopinn_supervised'
    library = next(
        lib for lib in model.processing_core.algorithm_libraries if lib.name == 'PtychoPINN'
    )
    config = build_config(library.settings, Mode.SUPERVISED)
    assert (config.model.gridsize, config.model.n_filters_scale) == (2, 1)
    assert config.model.amp_activation.value == 'swish'
    assert (config.model.num_neighbors, config.training.num_epochs) == (4, 7)
    assert config.execution.backend is Backend.TENSORFLOW
    assert config.inference.num_groups is None


THIRD_PARTY_MODULE = """
from ptychodus.api.reconstruct import NullReconstructor, ReconstructorLibrary


class AcmeLibrary(ReconstructorLibrary):
    def __init__(self, settings_registry):
        super().__init__('acme')
        self.group = settings_registry.create_group('Acme')
        self._reconstructors = [NullReconstructor('Fast')]

    @property
    def name(self):
        return 'Acme'

    def __iter__(self):
        return iter(self._reconstructors)


def create(settings_registry):
    return AcmeLibrary(settings_registry)


def broken(settings_registry):
    raise RuntimeError('this plugin is broken on purpose')
"""


@pytest.mark.e2e
def test_third_party_entry_points_are_picked_up_and_broken_ones_skipped(
    tmp_path: Path, installed_copy: Path
) -> None:
    (tmp_path / 'acme_reconstructors.py').write_text(THIRD_PARTY_MODULE)
    dist_info = tmp_path / 'acme_reconstructors-1.0.dist-info'
    dist_info.mkdir()
    (dist_info / 'METADATA').write_text(
        'Metadata-Version: 2.1\nName: acme-reconstructors\nVersion: 1.0\n'
    )
    (dist_info / 'entry_points.txt').write_text(
        f'[{ENTRY_POINT_GROUP}]\n'
        'acme = acme_reconstructors:create\n'
        'zz_broken = acme_reconstructors:broken\n'
    )
    code = (
        'import logging\n'
        'from ptychodus.model import ModelCore\n'
        'model = ModelCore(log_level=logging.WARNING)\n'
        'print("KEYS", sorted(model.processing_core.processing_api.available_reconstructors()))\n'
        'print("LIBS", [lib.name for lib in model.processing_core.algorithm_libraries])\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code],
        cwd=tmp_path,
        env={**os.environ, 'PYTHONPATH': str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "'acme_fast'" in output, output
    assert "'ptychopinn_pinn'" in output, output
    assert "LIBS ['pty-chi', 'PtychoNN', 'PtychoPINN', 'PtychoPINN-Torch', 'PtychoFM', 'Acme']" in (
        output
    )
    assert 'zz_broken' in output
    assert 'broken on purpose' in output  # logged, then skipped


@pytest.mark.e2e
def test_ptychodus_start_up_imports_no_framework(tmp_path: Path, installed_copy: Path) -> None:
    code = (
        'import logging, sys\n'
        'from ptychodus.model import ModelCore\n'
        'model = ModelCore(log_level=logging.WARNING)\n'
        'api = model.processing_core.processing_api\n'
        'assert "ptychopinn_pinn" in api.available_reconstructors()\n'
        'print("LOADED", sorted(m for m in ("torch", "tensorflow", "keras", "lightning") '
        'if m in sys.modules))\n'
    )
    result = subprocess.run(
        [sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'LOADED []' in result.stdout, result.stdout

"""The one reader and the one writer of a Ptychodus workflow directory."""

from __future__ import annotations

import numpy as np
import pytest
from ptychodus.api.io import StandardFileLayout

from ptychopinn_plugin.errors import DataContractError
from ptychopinn_plugin.ptychodus_io import layout
from ptychopinn_plugin.ptychodus_io.inputs import training_data_from_reconstruct_input
from ptychopinn_plugin.ptychodus_io.products import product_from_data
from ptychopinn_plugin.ptychodus_io.simulation import ScanSpec, make_workflow_scan
from ptychopinn_plugin.ptychodus_io.workflow_dir import (
    diffraction_from_data,
    read_workflow_directory,
    write_workflow_directory,
)

SPEC = ScanSpec(pattern_size_px=32, step_px=8.0, columns=4, rows=4, num_photons=1e4)


def test_the_layout_names_are_ptychodus_standard_names() -> None:
    assert layout.PRODUCT_FILE == StandardFileLayout.PRODUCT
    assert layout.DIFFRACTION_FILE == StandardFileLayout.DIFFRACTION
    assert layout.SETTINGS_FILE == StandardFileLayout.SETTINGS


def test_contract_data_round_trip_through_a_workflow_directory(tmp_path) -> None:
    scan = make_workflow_scan(3, SPEC)
    data = training_data_from_reconstruct_input(scan.simulated.reconstruct_input)
    written = write_workflow_directory(
        tmp_path,
        product_from_data(data, scan.truth, name='round-trip'),
        diffraction_from_data(data),
        {'PtychoPINN': {'Backend': 'pytorch'}},
    )
    assert [path.name for path in written] == ['product.h5', 'diffraction.h5', 'settings.ini']
    assert layout.is_workflow_directory(tmp_path)
    assert '[PtychoPINN]\nBackend = pytorch' in (tmp_path / 'settings.ini').read_text()

    read = read_workflow_directory(tmp_path)
    np.testing.assert_array_equal(read.data.diffraction_amplitude, data.diffraction_amplitude)
    np.testing.assert_allclose(read.data.positions_px, data.positions_px, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(read.data.scan_index, data.scan_index)
    assert read.product.metadata.name == 'round-trip'
    assert str(tmp_path) in read.data.metadata.source


def test_an_unreadable_workflow_directory_is_a_data_contract_error(tmp_path) -> None:
    (tmp_path / 'product.h5').write_bytes(b'not hdf5')
    (tmp_path / 'diffraction.h5').write_bytes(b'not hdf5')
    with pytest.raises(DataContractError, match='cannot read the Ptychodus workflow files'):
        read_workflow_directory(tmp_path)

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


def test_a_batch_output_directory_is_read_through_its_latest_numbered_product(tmp_path) -> None:
    """Ptychodus 1.7 batch reconstruction writes product.NNNNNN.h5; the reader takes the last."""
    import shutil

    scan = make_workflow_scan(3, SPEC)
    data = training_data_from_reconstruct_input(scan.simulated.reconstruct_input)
    write_workflow_directory(
        tmp_path / 'first',
        product_from_data(data, scan.truth, name='first'),
        diffraction_from_data(data),
        {},
    )
    write_workflow_directory(
        tmp_path / 'last',
        product_from_data(data, 0.5 * scan.truth, name='last'),
        diffraction_from_data(data),
        {},
    )
    out = tmp_path / 'out'
    out.mkdir()
    assert layout.product_file(out) is None
    assert not layout.is_workflow_directory(out)
    shutil.copy(tmp_path / 'first' / 'product.h5', out / 'product.000016.h5')
    shutil.copy(tmp_path / 'last' / 'product.h5', out / 'product.000116.h5')
    assert layout.product_file(out) == out / 'product.000116.h5'  # by number, not by name
    assert not layout.is_workflow_directory(out)  # no diffraction file yet
    shutil.copy(tmp_path / 'first' / 'diffraction.h5', out / 'diffraction.h5')
    assert layout.is_workflow_directory(out)
    read = read_workflow_directory(out)
    assert read.product.metadata.name == 'last'
    assert 'product.000116.h5' in read.data.metadata.source
    np.testing.assert_allclose(read.product.object_.get_layer(0), 0.5 * scan.truth, atol=1e-6)
    shutil.copy(tmp_path / 'first' / 'product.h5', out / 'product.h5')
    assert layout.product_file(out) == out / 'product.h5'  # an explicit product.h5 wins


def test_the_command_names_the_missing_diffraction_file_of_a_batch_output(tmp_path) -> None:
    from ptychopinn_plugin.cli import _io

    scan = make_workflow_scan(3, SPEC)
    data = training_data_from_reconstruct_input(scan.simulated.reconstruct_input)
    write_workflow_directory(
        tmp_path, product_from_data(data, scan.truth, name='x'), diffraction_from_data(data), {}
    )
    (tmp_path / 'product.h5').rename(tmp_path / 'product.000016.h5')
    (tmp_path / 'diffraction.h5').unlink()
    with pytest.raises(DataContractError, match=r'copy the diffraction\.h5'):
        _io.load_scan(tmp_path)

"""Model archives: exact round trip, atomic saves, and refusal of anything unexpected."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from ptychopinn_plugin.config import ModelConfig, PluginConfig
from ptychopinn_plugin.core.archive import Archive, load_archive, read_manifest, save_archive
from ptychopinn_plugin.core.simulate import disk_probe
from ptychopinn_plugin.core.weights import initial_weights
from ptychopinn_plugin.errors import ArchiveError

MODEL = ModelConfig(pattern_size_px=32, n_filters_scale=1, gridsize=2, num_neighbors=4)


def _archive(seed: int = 0) -> Archive:
    weights = initial_weights(MODEL, disk_probe(32), 2.5, seed)
    return Archive(
        config=PluginConfig(model=MODEL),
        weights=weights,
        normalization={'num_photons': 1e6},
        training_summary={'epochs': 3},
        trained_backend='pytorch',
        framework_versions={'torch': 'x'},
    )


def test_save_then_load_returns_the_same_config_and_weights_exactly(tmp_path: Path) -> None:
    original = _archive()
    path = save_archive(tmp_path / 'model.zip', original)
    loaded = load_archive(path)
    assert loaded.config == original.config
    assert loaded.trained_backend == 'pytorch'
    assert loaded.normalization == {'num_photons': 1e6}
    assert sorted(loaded.weights) == sorted(original.weights)
    for name, value in original.weights.items():
        np.testing.assert_array_equal(loaded.weights[name], value)
    manifest = read_manifest(path)
    assert manifest['pattern_size_px'] == 32
    assert manifest['gridsize'] == 2


def test_saving_never_overwrites_silently_and_replaces_whole_when_asked(tmp_path: Path) -> None:
    path = save_archive(tmp_path / 'model.zip', _archive(0))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        save_archive(path, _archive(1))
    assert path.read_bytes() == before
    save_archive(path, _archive(1), overwrite=True)
    assert load_archive(path).weights['encoder.0.conv1.kernel'].tolist() == (
        _archive(1).weights['encoder.0.conv1.kernel'].tolist()
    )
    assert [p.name for p in tmp_path.iterdir()] == ['model.zip']


def test_an_interrupted_save_leaves_the_previous_archive_intact(
    tmp_path: Path, monkeypatch
) -> None:
    path = save_archive(tmp_path / 'model.zip', _archive(0))
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr('ptychopinn_plugin.core.files.os.replace', fail)
    with pytest.raises(KeyboardInterrupt):
        save_archive(path, _archive(1), overwrite=True)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ['model.zip']


def _rewrite(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, 'w') as zf:
        for name, payload in members.items():
            zf.writestr(name, payload)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def test_corrupt_foreign_and_tampered_files_raise_archive_error(tmp_path: Path) -> None:
    good = save_archive(tmp_path / 'model.zip', _archive())
    members = _members(good)

    not_zip = tmp_path / 'a.zip'
    not_zip.write_bytes(b'hello')
    with pytest.raises(ArchiveError, match='not a readable zip'):
        load_archive(not_zip)

    truncated = tmp_path / 'truncated.zip'
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    with pytest.raises(ArchiveError):
        load_archive(truncated)

    foreign = tmp_path / 'foreign.zip'
    _rewrite(foreign, {'saved_model.pb': b'x', 'variables/data': b'y'})
    with pytest.raises(ArchiveError, match='not the members'):
        load_archive(foreign)

    tampered = tmp_path / 'tampered.zip'
    weights = bytearray(members['weights.npz'])
    weights[-20] ^= 0xFF
    _rewrite(tampered, {'manifest.json': members['manifest.json'], 'weights.npz': bytes(weights)})
    with pytest.raises(ArchiveError, match='checksum'):
        load_archive(tampered)

    newer = tmp_path / 'newer.zip'
    manifest = json.loads(members['manifest.json'])
    manifest['format_version'] = 99
    _rewrite(
        newer,
        {'manifest.json': json.dumps(manifest).encode(), 'weights.npz': members['weights.npz']},
    )
    with pytest.raises(ArchiveError, match='newer'):
        load_archive(newer)


def test_members_with_unsafe_paths_or_pickles_are_refused(tmp_path: Path) -> None:
    members = _members(save_archive(tmp_path / 'model.zip', _archive()))
    for name in ('../manifest.json', '/etc/manifest.json', 'model.pkl'):
        bad = tmp_path / 'bad.zip'
        _rewrite(bad, {name: members['manifest.json'], 'weights.npz': members['weights.npz']})
        with pytest.raises(ArchiveError):
            load_archive(bad)


def test_weights_of_the_wrong_shape_are_refused(tmp_path: Path) -> None:
    archive = _archive()
    weights = dict(archive.weights)
    weights['encoder.0.conv1.kernel'] = np.zeros((3, 3, 1, 1), np.float32)
    with pytest.raises(ArchiveError, match='shape'):
        Archive(config=archive.config, weights=weights)

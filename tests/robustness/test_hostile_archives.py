"""Hostile model archives: loading never runs code, never writes a file, bounds its memory.

Every file here is built by hand to attack one check of ``core/archive.py``: pickles, unsafe
member paths, symbolic links, decompression bombs, manifests that lie about the network, the sizes
or the checksum, and truncation at any point. Each must end in :class:`ArchiveError`.
"""

from __future__ import annotations

import io
import json
import pickle
import stat
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from robustness_helpers import save_untrained

from ptychopinn_plugin.core.archive import _sha256, load_archive, read_manifest
from ptychopinn_plugin.errors import ArchiveError

MAX_LOAD_PEAK_BYTES = 16 * 1024**2
"""Python-heap peak while refusing a bomb that expands to 128 MiB: the refusal must come from the
declared sizes, before decompression (the good archive itself is about 1.2 MB)."""
BOMB_CHUNKS = 8


@pytest.fixture(scope='module')
def good(tmp_path_factory) -> dict[str, bytes]:
    """The members of a valid archive (tiny untrained model)."""
    path = save_untrained(tmp_path_factory.mktemp('good') / 'model.zip')
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _zip(path: Path, members: list[tuple[zipfile.ZipInfo | str, bytes]], **options) -> Path:
    with zipfile.ZipFile(path, 'w', **options) as zf:
        for name, payload in members:
            zf.writestr(name, payload)
    return path


def _archive(path: Path, manifest: dict, weights: bytes) -> Path:
    return _zip(path, [('manifest.json', json.dumps(manifest).encode()), ('weights.npz', weights)])


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _weights(good) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(good['weights.npz'])) as npz:
        return {name: npz[name] for name in npz.files}


def _manifest_for(good, weights: bytes, **changes) -> dict:
    manifest = json.loads(good['manifest.json'])
    manifest['members']['weights.npz'] = {'sha256': _sha256(weights), 'bytes': len(weights)}
    manifest.update(changes)
    return manifest


class _Marker:
    """Unpickling this touches a file: proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickle_in_the_weights_is_never_executed(good, tmp_path) -> None:
    marker = tmp_path / 'code-ran'
    payload = pickle.dumps(np.array([_Marker(marker)], dtype=object))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {'descr': '|O', 'fortran_order': False, 'shape': (1,)}
    )
    weights = dict(_weights(good))
    name = next(iter(weights))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as npz:
        for other, value in weights.items():
            if other == name:
                npz.writestr(f'{name}.npy', header.getvalue() + payload)
            else:
                stream = io.BytesIO()
                np.lib.format.write_array(stream, value)
                npz.writestr(f'{other}.npy', stream.getvalue())
    hostile = buffer.getvalue()
    path = _archive(tmp_path / 'pickle.zip', _manifest_for(good, hostile), hostile)
    with pytest.raises(ArchiveError, match=f'weight {name}.npy is object'):
        load_archive(path)
    assert not marker.exists()


def test_a_pickle_member_beside_the_manifest_is_refused(good, tmp_path) -> None:
    members = [(name, payload) for name, payload in good.items()]
    members.append(('model.pkl', pickle.dumps(_Marker(tmp_path / 'code-ran'))))
    with pytest.raises(ArchiveError, match='not the members of a ptychopinn-plugin model'):
        load_archive(_zip(tmp_path / 'extra.zip', members))
    assert not (tmp_path / 'code-ran').exists()


@pytest.mark.parametrize(
    'name', ['../weights.npz', '/tmp/weights.npz', 'sub/../../weights.npz', 'weights.npz/']
)
def test_unsafe_member_paths_are_refused_and_nothing_is_written(good, tmp_path, name) -> None:
    inner = tmp_path / 'inner'
    inner.mkdir()
    path = _zip(
        inner / 'unsafe.zip',
        [('manifest.json', good['manifest.json']), (name, good['weights.npz'])],
    )
    before = sorted(tmp_path.rglob('*'))
    with pytest.raises(ArchiveError, match='not the members of a ptychopinn-plugin model'):
        load_archive(path)
    assert sorted(tmp_path.rglob('*')) == before


def test_a_symbolic_link_member_is_refused(good, tmp_path) -> None:
    link = zipfile.ZipInfo('weights.npz')
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path / 'link.zip', [('manifest.json', good['manifest.json']), (link, b'/etc')])
    with pytest.raises(ArchiveError, match='symbolic link'):
        load_archive(path)


def test_duplicate_member_names_are_refused(good, tmp_path) -> None:
    members = [(name, payload) for name, payload in good.items()]
    members.append(('weights.npz', good['weights.npz']))
    with pytest.warns(UserWarning, match='Duplicate name'):
        path = _zip(tmp_path / 'twice.zip', members)
    with pytest.raises(ArchiveError, match='not the members'):
        load_archive(path)


def test_loading_never_extracts_to_disk(good, tmp_path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError('the archive reader extracted a member to disk')

    monkeypatch.setattr(zipfile.ZipFile, 'extract', refuse)
    monkeypatch.setattr(zipfile.ZipFile, 'extractall', refuse)
    path = _zip(tmp_path / 'model.zip', list(good.items()))
    before = sorted(tmp_path.iterdir())
    archive = load_archive(path)
    assert archive.config.model.pattern_size_px == 32
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize('member', ['manifest.json', 'weights.npz'])
def test_a_decompression_bomb_is_refused_before_it_expands(good, tmp_path, member) -> None:
    bomb = tmp_path / 'bomb.zip'
    with zipfile.ZipFile(bomb, 'w', compression=zipfile.ZIP_BZIP2) as zf:
        for name, payload in good.items():
            if name != member:
                zf.writestr(name, payload, compress_type=zipfile.ZIP_STORED)
        with zf.open(member, 'w', force_zip64=True) as stream:
            chunk = bytes(16 * 1024**2)
            for _ in range(BOMB_CHUNKS):  # 128 MiB of zeros in a few hundred bytes
                stream.write(chunk)
    assert bomb.stat().st_size < len(good['weights.npz']) + 64 * 1024
    tracemalloc.start()
    try:
        with pytest.raises(ArchiveError, match='refusing to decompress it'):
            load_archive(bomb)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_LOAD_PEAK_BYTES, f'peak {peak / 1e6:.1f} MB'


def test_a_manifest_that_lies_about_the_network_is_refused(good, tmp_path) -> None:
    manifest = _manifest_for(good, good['weights.npz'])
    manifest['config']['model']['n_filters_scale'] = 2
    path = _archive(tmp_path / 'wider.zip', manifest, good['weights.npz'])
    with pytest.raises(ArchiveError, match=r'expected float32 of shape .*manifest lies'):
        load_archive(path)

    manifest = _manifest_for(good, good['weights.npz'], pattern_size_px=64)
    path = _archive(tmp_path / 'summary.zip', manifest, good['weights.npz'])
    with pytest.raises(ArchiveError, match='manifest says pattern_size_px = 64 but its config'):
        read_manifest(path)


def test_a_manifest_that_lies_about_sizes_or_checksum_is_refused(good, tmp_path) -> None:
    weights = good['weights.npz']
    manifest = _manifest_for(good, weights)
    manifest['members']['weights.npz']['bytes'] = 10**12
    with pytest.raises(ArchiveError, match='declares 1000000000000 bytes of weights'):
        load_archive(_archive(tmp_path / 'huge.zip', manifest, weights))

    manifest['members']['weights.npz']['bytes'] = len(weights) - 1
    with pytest.raises(ArchiveError, match=r'refusing to decompress|holds .* bytes but'):
        load_archive(_archive(tmp_path / 'short.zip', manifest, weights))

    manifest = _manifest_for(good, weights)
    manifest['members']['weights.npz']['sha256'] = '0' * 64
    with pytest.raises(ArchiveError, match='does not match its checksum'):
        load_archive(_archive(tmp_path / 'sha.zip', manifest, weights))


@pytest.mark.parametrize(
    ('change', 'message'),
    [
        (lambda w, k: {**w, k: w[k].astype(np.float64)}, 'is float64 .* expected float32'),
        (lambda w, k: {**w, k: w[k].ravel()[1:]}, 'expected float32 of shape'),
        (lambda w, k: {**w, 'bogus': np.zeros(3, np.float32)}, "holds 'bogus.npy'"),
        (lambda w, k: {n: v for n, v in w.items() if n != k}, 'missing'),
        (lambda w, k: {**w, k: np.full_like(w[k], np.nan)}, 'must be finite'),
    ],
    ids=['float64', 'shape', 'extra-weight', 'missing-weight', 'nan'],
)
def test_weights_that_do_not_fit_the_manifest_are_refused(good, tmp_path, change, message) -> None:
    weights = _weights(good)
    hostile = _npz(change(weights, sorted(weights)[0]))
    path = _archive(tmp_path / 'weights.zip', _manifest_for(good, hostile), hostile)
    with pytest.raises(ArchiveError, match=message):
        load_archive(path)


@pytest.mark.parametrize('fraction', [0.0, 0.01, 0.3, 0.6, 0.9, 0.999])
def test_a_truncated_archive_is_refused(good, tmp_path, fraction) -> None:
    whole = _zip(tmp_path / 'whole.zip', list(good.items())).read_bytes()
    path = tmp_path / 'truncated.zip'
    path.write_bytes(whole[: int(fraction * len(whole))])
    with pytest.raises(ArchiveError):
        load_archive(path)

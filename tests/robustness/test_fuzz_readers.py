"""Property-based fuzzing of the two file readers: whatever the bytes, only our typed error.

``load_archive`` and ``read_training_data`` read files that come from elsewhere. For any input,
each must either return a value that passed its checks or raise its typed error
(:class:`ArchiveError`, :class:`DataContractError`); any other exception is a defect (a crash
with a framework's or the standard library's message instead of ours). Examples are kept moderate
so the default run takes a few seconds; ``--hypothesis-seed`` reproduces a failure.
"""

from __future__ import annotations

import io
import json
import os
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from robustness_helpers import save_untrained

from ptychopinn_plugin.core.archive import Archive, _sha256, load_archive
from ptychopinn_plugin.core.contract import TrainingData, read_training_data, write_training_data
from ptychopinn_plugin.core.simulate import make_scan
from ptychopinn_plugin.errors import ArchiveError, DataContractError

FUZZ_EXAMPLES = int(os.environ.get('PTYCHOPINN_FUZZ_EXAMPLES', '60'))
"""Examples per property: 60 keeps the default run to seconds; set the variable higher (e.g. 2000)
for a deeper search."""
FUZZ = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope='module')
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp('fuzz')


@pytest.fixture(scope='module')
def good_archive(workdir) -> dict[str, bytes]:
    path = save_untrained(workdir / 'good.zip')
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@pytest.fixture(scope='module')
def deflated_archive(good_archive) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for name, payload in good_archive.items():
            zf.writestr(name, payload)
    return buffer.getvalue()


def _paths(manifest: dict) -> list[tuple[str, ...]]:
    """Every key path of a nested manifest (where a mutation may land)."""
    found: list[tuple[str, ...]] = []
    for key, value in manifest.items():
        found.append((key,))
        if isinstance(value, dict):
            found += [(key, *rest) for rest in _paths(value)]
    return found


def _load_or_archive_error(path: Path) -> None:
    try:
        archive = load_archive(path)
    except ArchiveError:
        return
    assert isinstance(archive, Archive)


@FUZZ
@given(data=st.data())
def test_any_manifest_loads_or_raises_archive_error(good_archive, workdir, data) -> None:
    manifest = json.loads(good_archive['manifest.json'])
    for _ in range(data.draw(st.integers(1, 3), label='mutations')):
        path = data.draw(st.sampled_from(_paths(manifest)), label='path')
        parent = manifest
        for key in path[:-1]:
            parent = parent[key]
        if data.draw(st.booleans(), label='delete'):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSON, label='value')
        if not manifest:
            break
    text = json.dumps(manifest, allow_nan=True).encode()
    target = workdir / 'manifest-fuzz.zip'
    with zipfile.ZipFile(target, 'w') as zf:
        zf.writestr('manifest.json', text)
        zf.writestr('weights.npz', good_archive['weights.npz'])
    _load_or_archive_error(target)


@FUZZ
@given(payload=st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200)))
def test_any_manifest_bytes_load_or_raise_archive_error(good_archive, workdir, payload) -> None:
    target = workdir / 'manifest-bytes.zip'
    with zipfile.ZipFile(target, 'w') as zf:
        zf.writestr('manifest.json', payload)
        zf.writestr('weights.npz', good_archive['weights.npz'])
    _load_or_archive_error(target)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_any_corruption_of_an_archive_raises_archive_error(
    deflated_archive, workdir, flips, cut
) -> None:
    target = workdir / 'corrupt.zip'
    raw = bytearray(deflated_archive)
    for where, mask in flips:
        raw[int(where * len(raw))] ^= mask
    if cut is not None:
        raw = raw[: int(cut * len(raw))]
    target.write_bytes(bytes(raw))
    _load_or_archive_error(target)


@FUZZ
@given(data=st.data())
def test_weights_npz_with_any_members_raise_archive_error(good_archive, workdir, data) -> None:
    with np.load(io.BytesIO(good_archive['weights.npz'])) as npz:
        weights = {name: npz[name] for name in npz.files}
    name = data.draw(st.sampled_from(sorted(weights)), label='weight')
    dtype = data.draw(st.sampled_from(['<f4', '>f4', '<f8', '<i4', '|b1', '<c8', '<U2']))
    shape = data.draw(st.lists(st.integers(0, 4), max_size=3).map(tuple), label='shape')
    assume(dtype != '<f4' or shape != weights[name].shape)  # otherwise the weight is valid
    weights[name] = np.zeros(shape, dtype=dtype)
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    payload = buffer.getvalue()
    manifest = json.loads(good_archive['manifest.json'])
    manifest['members']['weights.npz'] = {'sha256': _sha256(payload), 'bytes': len(payload)}
    target = workdir / 'weights-fuzz.zip'
    with zipfile.ZipFile(target, 'w') as zf:
        zf.writestr('manifest.json', json.dumps(manifest))
        zf.writestr('weights.npz', payload)
    with pytest.raises(ArchiveError):
        load_archive(target)


# --- contract NPZ files --------------------------------------------------------------------------


@pytest.fixture(scope='module')
def good_npz(workdir) -> dict[str, np.ndarray]:
    scan = make_scan('smooth', num_patterns=12, pattern_size_px=32, seed=0)
    path = write_training_data(workdir / 'good.npz', scan.data)
    with np.load(path) as npz:
        return {name: npz[name] for name in npz.files}


DTYPES = ['<f4', '<f8', '>f8', '<i2', '<u1', '|b1', '<c8', '<U3', '<M8[s]', '|S2']


def _array(data, like: np.ndarray) -> np.ndarray:
    """A replacement for ``like``: another dtype, shape, or values (NaN, negative, huge)."""
    kind = data.draw(st.sampled_from(['dtype', 'shape', 'values', 'scalar']), label='kind')
    if kind == 'dtype':
        dtype = data.draw(st.sampled_from(DTYPES), label='dtype')
        try:
            with warnings.catch_warnings():  # lossy casts warn; they are the point here
                warnings.simplefilter('ignore', np.exceptions.ComplexWarning)  # complex -> real
                warnings.filterwarnings(  # NaN, inf or out-of-range values to a narrower type
                    'ignore', '(invalid value|overflow) encountered in cast', RuntimeWarning
                )
                return like.astype(dtype)
        except Exception:
            return np.zeros(like.shape, dtype)
    if kind == 'shape':
        shape = data.draw(st.lists(st.integers(0, 5), max_size=4).map(tuple), label='shape')
        return np.ones(shape, like.dtype if like.dtype.kind != 'U' else '<U3')
    if kind == 'scalar':
        return np.array(data.draw(JSON.map(json.dumps), label='scalar'))
    value = data.draw(st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1e300]), label='value')
    changed = np.array(like, copy=True)
    if changed.size and changed.dtype.kind in 'fc':
        with warnings.catch_warnings():  # 1e300 overflows float32 to inf: wanted here
            warnings.filterwarnings('ignore', 'overflow encountered in cast', RuntimeWarning)
            changed.flat[data.draw(st.integers(0, changed.size - 1), label='at')] = value
    return changed


@FUZZ
@given(data=st.data())
def test_any_contract_npz_reads_or_raises_data_contract_error(good_npz, workdir, data) -> None:
    arrays = dict(good_npz)
    for _ in range(data.draw(st.integers(1, 3), label='mutations')):
        action = data.draw(st.sampled_from(['replace', 'delete', 'rename', 'add']), label='do')
        key = data.draw(st.sampled_from(sorted(arrays)), label='key') if arrays else None
        if key is None:
            break
        if action == 'replace':
            arrays[key] = _array(data, arrays[key])
        elif action == 'delete':
            del arrays[key]
        elif action == 'rename':
            arrays[key.upper() + '_'] = arrays.pop(key)
        else:
            arrays[data.draw(st.text('abcxyz_', min_size=1, max_size=8))] = np.zeros(2)
    target = workdir / 'contract-fuzz.npz'
    np.savez(target, **arrays)
    quantity = data.draw(st.sampled_from([None, 'counts', 'amplitude']), label='quantity')
    try:
        result = read_training_data(target, quantity=quantity)
    except DataContractError:
        return
    assert isinstance(result, TrainingData)


@FUZZ
@given(
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), max_size=4),
    cut=st.one_of(st.none(), st.floats(0, 1)),
)
def test_any_corruption_of_an_npz_raises_data_contract_error(good_npz, workdir, flips, cut) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **good_npz)
    raw = bytearray(buffer.getvalue())
    for where, mask in flips:
        raw[int(where * len(raw))] ^= mask
    if cut is not None:
        raw = raw[: int(cut * len(raw))]
    target = workdir / 'corrupt.npz'
    target.write_bytes(bytes(raw))
    try:
        result = read_training_data(target)
    except DataContractError:
        return
    assert isinstance(result, TrainingData)

"""The two engine packages mirror each other: same modules, same public names, same signatures.

Module by module (``network``, ``losses``, ``training``, ``engine``, ``weights``), ``__all__`` must
hold the same names, and every shared function and every method a shared class defines must take
the same parameters. What may differ is listed below with the reason, and every listed difference
must still exist (a stale entry fails too).
"""

from __future__ import annotations

import importlib
import inspect

import pytest

pytest.importorskip('lightning')
pytest.importorskip('tensorflow')

MODULES = ('network', 'losses', 'training', 'engine', 'weights')
PACKAGES = {
    'pytorch': 'ptychopinn_plugin.engines.pytorch_engine',
    'tensorflow': 'ptychopinn_plugin.engines.tensorflow_engine',
}
CALL_HOOKS = {'pytorch': 'forward', 'tensorflow': 'call'}
"""The framework's call method of a module / layer, compared as one method ``<call>``."""
KERAS_TRAINING_FLAG = 'training'
"""Keras hands its ``training`` flag to ``call``; PyTorch keeps it in the module state."""
PRIVATE_SEAMS = {'_live_network', '_run', '_predict_chunk', '_free_memory'}
"""Private engine methods kept alike: the network or an error once released, one prediction
through the chunks, one call of the chunk size (tests replace it), the out-of-memory clean-up."""

ONLY_IN = {
    ('engine', 'pytorch'): {'PyTorchEngine'},
    ('engine', 'tensorflow'): {'TensorFlowEngine', 'JIT_COMPILE'},  # XLA for the compiled steps
    # Lightning runs the loop: a LightningModule, a callback, loaders and a worker thread
    ('training', 'pytorch'): {
        'EpochOrderSampler',
        'EpochReporter',
        'GroupDataset',
        'PtychoPINNModule',
        'build_trainer',
        'iterate_epochs',
        'make_dataloaders',
    },
    # the loop is written out: compiled steps over per-group losses, Keras's Adam, loss scaling
    ('training', 'tensorflow'): {'LOSS_SCALE', 'make_optimizer', 'per_group_losses'},
}
"""Public names of one engine that have no counterpart in the other."""

KNOWN_DIFFERENCES = {
    ('network', 'Generator.__init__'): 'Keras layers take their dtype policy when built',
    ('network', 'PtychoPINNNetwork.__init__'): 'Keras layers take their dtype policy when built',
    ('network', 'Generator.<call>'): 'Keras convolutions take channels-last inputs',
    ('training', 'fit_network'): 'placement: Lightning Trainer settings vs tf.distribute strategy',
}
"""Signatures that differ, with the reason."""


def _module(backend: str, name: str):
    return importlib.import_module(f'{PACKAGES[backend]}.{name}')


def _parameters(function, *, drop: set[str] = frozenset()) -> list[tuple[str, str]]:
    signature = inspect.signature(function)
    return [
        (name, parameter.kind.name)
        for name, parameter in signature.parameters.items()
        if name not in drop
    ]


def _methods(cls: type, backend: str) -> dict[str, object]:
    """Methods ``cls`` itself defines: public ones, ``__init__``, the seams and the call hook."""
    methods = {}
    for name, value in vars(cls).items():
        if not inspect.isfunction(value):
            continue
        if name == CALL_HOOKS[backend]:
            methods['<call>'] = value
        elif name == '__init__' or name in PRIVATE_SEAMS or not name.startswith('_'):
            methods[name] = value
    return methods


def _signatures(module_name: str, backend: str) -> dict[str, list[tuple[str, str]]]:
    """Parameters of every shared public function and class method of one engine's module."""
    module = _module(backend, module_name)
    result = {}
    for name in module.__all__:
        if name in ONLY_IN.get((module_name, backend), set()):
            continue
        value = getattr(module, name)
        if inspect.isclass(value):
            for method, function in _methods(value, backend).items():
                drop = {KERAS_TRAINING_FLAG} if method == '<call>' else set()
                result[f'{name}.{method}'] = _parameters(function, drop=drop)
        elif callable(value):
            result[name] = _parameters(value)
        else:
            result[name] = [(type(value).__name__, 'VALUE')]
    return result


@pytest.mark.parametrize('module_name', MODULES)
def test_both_engines_export_the_same_names(module_name) -> None:
    exported = {}
    for backend in PACKAGES:
        names = set(_module(backend, module_name).__all__)
        only = ONLY_IN.get((module_name, backend), set())
        assert only <= names, f'{backend} {module_name}: stale ONLY_IN entries {only - names}'
        exported[backend] = names - only
    assert exported['pytorch'] == exported['tensorflow']


@pytest.mark.parametrize('module_name', MODULES)
def test_shared_names_have_the_same_signatures(module_name) -> None:
    pytorch = _signatures(module_name, 'pytorch')
    tensorflow = _signatures(module_name, 'tensorflow')
    assert sorted(pytorch) == sorted(tensorflow), 'the classes define different methods'
    for name in pytorch:
        known = (module_name, name) in KNOWN_DIFFERENCES
        same = pytorch[name] == tensorflow[name]
        assert same != known, (
            f'{module_name}.{name}: pytorch {pytorch[name]} vs tensorflow {tensorflow[name]}'
            if not same
            else f'{module_name}.{name} is listed in KNOWN_DIFFERENCES but no longer differs'
        )


def test_every_known_difference_names_a_shared_callable() -> None:
    for module_name, name in KNOWN_DIFFERENCES:
        assert name in _signatures(module_name, 'pytorch'), (module_name, name)


def test_the_engine_classes_are_exported_as_engine_class() -> None:
    for backend, own in (('pytorch', 'PyTorchEngine'), ('tensorflow', 'TensorFlowEngine')):
        engine = _module(backend, 'engine')
        assert engine.ENGINE_CLASS is getattr(engine, own)
        assert own in ONLY_IN[('engine', backend)]


@pytest.mark.parametrize('module_name', MODULES)
@pytest.mark.parametrize('backend', PACKAGES)
def test_every_public_class_and_function_is_exported(backend, module_name) -> None:
    """A public name outside ``__all__`` would escape the comparison above."""
    module = _module(backend, module_name)
    defined = {
        name
        for name, value in vars(module).items()
        if not name.startswith('_')
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == module.__name__
    }
    assert defined <= set(module.__all__), defined - set(module.__all__)


def test_the_engine_packages_export_nothing_themselves() -> None:
    """Importing a package loads no framework (PyTorch) or only selects Keras's backend."""
    for package in PACKAGES.values():
        assert importlib.import_module(package).__all__ == []

"""A repro is its model module's source with data set in it: ``CONFIG`` and, where an adapter sets them, the
module's constants (Keras: ``KERAS``, which Keras the module imports), never import lines written as strings.
Composing needs no framework."""

from __future__ import annotations

import ast

import pytest

from dropspec.adapters.base import compose_repro
from dropspec.registry import load_adapter

SOURCE = '''"""A model module."""

import os

KIND = "a"  # "a" or "b"

if KIND == "b":
    import json as codec
else:
    os.environ["KIND"] = KIND
    import pickle as codec


def build(config, seed):
    import math  # a lazy import in a function is no part of the import block

    return codec, math
'''


def test_a_constant_is_set_as_data_and_config_follows_the_import_block() -> None:
    text = compose_repro(SOURCE, "a title", {"x": 1}, {"KIND": "b"})
    assert 'KIND = "b"  # "a" or "b"\n' in text and 'KIND = "a"' not in text
    lines = text.splitlines()
    # CONFIG after the `if` that chooses the import, before the first function
    assert lines.index("    import pickle as codec") < lines.index("# a title") < lines.index('CONFIG = {"x": 1}')
    assert lines.index('CONFIG = {"x": 1}') < lines.index("def build(config, seed):")
    namespace: dict[str, object] = {}
    exec(compile(text, "<repro>", "exec"), namespace)
    assert namespace["KIND"] == "b" and namespace["codec"].__name__ == "json"


def test_without_constants_the_module_keeps_its_own_values() -> None:
    text = compose_repro(SOURCE, "a title", {"x": 1})
    assert 'KIND = "a"  # "a" or "b"\n' in text


def test_a_constant_the_module_does_not_define_is_refused() -> None:
    with pytest.raises(ValueError, match=r"has 0 top-level assignments `MISSING = \.\.\.`"):
        compose_repro(SOURCE, "a title", {}, {"MISSING": 1})


@pytest.mark.parametrize(
    ("name", "keras"),
    [("keras_tf", "tensorflow"), ("keras_jax", "jax"), ("keras_torch", "torch"), ("tf_keras", "tf_keras")],
)
def test_each_keras_adapter_sets_which_keras_as_data(name: str, keras: str) -> None:
    """The four Keras adapters' repros of a case differ in the value of ``KERAS`` only; none writes an import."""
    adapter = load_adapter(name)
    case = next(c for c in adapter.cases() if c.id == "lstm-layer-both-impl2")
    text = adapter.repro(case)
    tree = ast.parse(text)
    values = [
        n.value.value
        for n in tree.body
        if isinstance(n, ast.Assign) and [getattr(t, "id", None) for t in n.targets] == ["KERAS"]
    ]
    assert values == [keras]
    other = load_adapter("keras_tf")
    theirs = other.repro(next(c for c in other.cases() if c.id == case.id))
    assert text.replace(f'KERAS = "{keras}"', 'KERAS = "tensorflow"', 1) == theirs

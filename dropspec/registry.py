"""Finding adapters: the built-in ones, any a third party registers through the entry point group
``dropspec.adapters`` (``name = "package.module:AdapterClass"``), and any listed in the environment
variable DROPSPEC_ADAPTERS. Loading an adapter imports its module only; the framework itself is
imported when the adapter runs."""

from __future__ import annotations

import os
import sys
from importlib import import_module
from importlib.metadata import entry_points

from .adapter import Adapter

ENTRY_POINT_GROUP = "dropspec.adapters"
BUILTIN: dict[str, str] = {
    "reference": "dropspec.adapters.reference:ReferenceAdapter",
    "keras_tf": "dropspec.adapters.keras3:KerasTFAdapter",
    "keras_jax": "dropspec.adapters.keras3:KerasJaxAdapter",
    "keras_torch": "dropspec.adapters.keras3:KerasTorchAdapter",
    "tf_keras": "dropspec.adapters.tf_keras:TFKerasAdapter",
    "dropout_wrapper": "dropspec.adapters.dropout_wrapper:DropoutWrapperAdapter",
    "flax_linen": "dropspec.adapters.flax_jax:FlaxLinenAdapter",
    "flax_nnx": "dropspec.adapters.flax_jax:FlaxNNXAdapter",
    "jax_rnn": "dropspec.adapters.flax_jax:JaxRNNAdapter",
    "haiku": "dropspec.adapters.haiku_jax:HaikuAdapter",
    "equinox": "dropspec.adapters.equinox_jax:EquinoxAdapter",
    "torch": "dropspec.adapters.pytorch:TorchAdapter",
    "torchnlp": "dropspec.adapters.pytorch:TorchNLPAdapter",
    "fastai": "dropspec.adapters.pytorch:FastaiAdapter",
    "paddle": "dropspec.adapters.paddle_rnn:PaddleAdapter",
}


class UnknownAdapter(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def adapter_targets() -> dict[str, str]:
    """Every known adapter name with the ``module:attribute`` that provides it."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    found.update(from_environment())
    return found


def from_environment() -> dict[str, str]:
    """DROPSPEC_ADAPTERS="name=module:Class;other=module:Class" tries a cell without packaging it."""
    found = {}
    for item in filter(None, os.environ.get("DROPSPEC_ADAPTERS", "").split(";")):
        name, sep, target = item.partition("=")
        if not sep or ":" not in target:
            raise UnknownAdapter(f"DROPSPEC_ADAPTERS entry {item!r} must read name=module:Class")
        found[name.strip()] = target.strip()
    return found


def load_adapter(name: str) -> Adapter:
    targets = adapter_targets()
    if name not in targets:
        known = ", ".join(sorted(targets))
        raise UnknownAdapter(
            f"unknown adapter {name!r}; known adapters: {known}. "
            f"`dropspec adapters` lists them; a third-party adapter registers under the entry point group "
            f"{ENTRY_POINT_GROUP!r}."
        )
    module_name, _, attribute = targets[name].partition(":")
    if name in from_environment() and os.getcwd() not in sys.path:
        # "name it in DROPSPEC_ADAPTERS" is for a module beside you: the `dropspec` command does not put the
        # working directory on sys.path as `python -m` does; worker processes inherit sys.path
        sys.path.insert(0, os.getcwd())
    try:
        adapter = getattr(import_module(module_name), attribute)()
    except (ImportError, AttributeError) as exc:
        raise UnknownAdapter(
            f"adapter {name!r} names {targets[name]!r}, which cannot be loaded ({type(exc).__name__}: {exc}); "
            "check the module is importable from here and the class name"
        ) from None
    if not adapter.name:
        adapter.name = name
    return adapter


if __name__ == "__main__":  # `python -m dropspec.registry NAME`: why NAME cannot run here, or nothing when it can
    reason = load_adapter(sys.argv[1]).unavailable_reason()
    sys.stdout.write("" if reason is None else reason)

"""JAX adapters: Flax linen (``flax_linen``), Flax NNX (``flax_nnx``) and ``jax.experimental.rnn`` (``jax_rnn``).

Each runs its model module (``models/flax_linen_model.py``, ``models/flax_nnx_model.py``,
``models/jax_rnn_model.py``: framework-only code, Flax's ``DropoutCell`` wrappers included) with a case's
CONFIG; the cases, with the documentation their claims rest on, are in ``flax_cases.py``.

JAX, Flax and jaxlib are imported inside methods and model modules only, so this module imports without them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Case, ModelAdapter, UnrepresentableParams
from .flax_cases import jax_rnn_cases, linen_cases, nnx_cases

__all__ = ["FlaxLinenAdapter", "FlaxNNXAdapter", "JaxRNNAdapter", "UnrepresentableParams"]

INSTALL = "`pip install jax==0.10.2 jaxlib==0.10.2 flax==0.12.8`, or run `tox -e jax`"


class _JaxAdapter(ModelAdapter):
    """What the three JAX adapters share: float32, the JAX versions, the backend JAX runs on."""

    dtype = np.float32
    packages = ("jax", "jaxlib", "flax")
    install = INSTALL

    def device(self) -> str:
        import jax

        return jax.default_backend()


class FlaxLinenAdapter(_JaxAdapter):
    """Flax linen: nn.RNN over LSTMCell / OptimizedLSTMCell / GRUCell, with nn.Dropout where users put it."""

    name = "flax_linen"
    framework = "flax.linen"
    model_module = "flax_linen_model.py"
    requires = ("flax.linen",)
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): nn.Dropout(rate) before nn.RNN, and the rates of
    # the DropoutCell wrapper's two nn.Dropout
    rate_keys, keep_keys = frozenset({"rate", "input_dropout", "recurrent_dropout"}), frozenset()

    def catalogue(self) -> Sequence[Case]:
        return linen_cases(self)


class FlaxNNXAdapter(_JaxAdapter):
    """Flax NNX: nnx.RNN over nnx.LSTMCell / OptimizedLSTMCell / GRUCell with nnx.Dropout in a cell."""

    name = "flax_nnx"
    framework = "flax.nnx"
    model_module = "flax_nnx_model.py"
    requires = ("flax.nnx",)
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): the DropoutCell wrapper's two nnx.Dropout
    rate_keys, keep_keys = frozenset({"input_dropout", "recurrent_dropout"}), frozenset()

    def catalogue(self) -> Sequence[Case]:
        return nnx_cases(self)


class JaxRNNAdapter(_JaxAdapter):
    """jax.experimental.rnn.lstm_ref, the pure-JAX reference of the cuDNN LSTM (CPU), and rnn.lstm on a GPU."""

    name = "jax_rnn"
    framework = "jax.experimental.rnn"
    model_module = "jax_rnn_model.py"
    requires = ("jax.experimental.rnn",)
    rate_keys, keep_keys = frozenset({"dropout"}), frozenset()  # rnn.lstm's dropout_prob, as CONFIG names it

    def catalogue(self) -> Sequence[Case]:
        return jax_rnn_cases()

    def case_unavailable(self, case: Case) -> str | None:
        if case.config["function"] != "lstm":
            return None
        import jax

        if jax.default_backend() not in ("gpu", "cuda", "rocm"):
            backend = jax.default_backend()
            return f"needs a GPU: jax.experimental.rnn.lstm runs on cuDNN, and JAX's backend here is {backend}"
        return None

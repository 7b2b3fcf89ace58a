"""Haiku (``haiku``): hk.LSTM / hk.GRU in hk.dynamic_unroll or hk.static_unroll with hk.dropout where users put
it; the model module is ``models/haiku_model.py``, the cases with the documentation behind their claims are in
``haiku_cases.py``.

Named haiku_jax, not haiku, so that it never shadows the package. JAX and Haiku are imported inside methods and
the model module only, so this module imports without them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Case, ModelAdapter
from .haiku_cases import haiku_cases

__all__ = ["HaikuAdapter"]


class HaikuAdapter(ModelAdapter):
    """Haiku's recurrent cores with hk.dropout in a wrapping core: a key per step, or a mask per sequence."""

    name = "haiku"
    framework = "haiku"
    model_module = "haiku_model.py"
    requires = ("haiku",)
    packages = ("dm-haiku", "jax", "jaxlib")
    install = "`pip install jax==0.10.2 jaxlib==0.10.2 dm-haiku==0.0.17`, or run `tox -e jax`"
    dtype = np.float32
    rate_keys, keep_keys = frozenset({"rate"}), frozenset()  # hk.dropout's rate (dropspec.modes.declared_rates)

    def catalogue(self) -> Sequence[Case]:
        return haiku_cases(self)

    def device(self) -> str:
        import jax

        return jax.default_backend()

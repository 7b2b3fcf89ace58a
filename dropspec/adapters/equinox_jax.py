"""Equinox (``equinox``): eqx.nn.LSTMCell / GRUCell in a jax.lax.scan with eqx.nn.Dropout where users put it;
the model module is ``models/equinox_model.py``, the cases with the documentation behind their claims are in
``equinox_cases.py``.

Named equinox_jax, not equinox, so that it never shadows the package. JAX and Equinox are imported inside methods
and the model module only, so this module imports without them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .base import Case, ModelAdapter
from .equinox_cases import equinox_cases

__all__ = ["EquinoxAdapter"]


class EquinoxAdapter(ModelAdapter):
    """Equinox's cells in a lax.scan with eqx.nn.Dropout: the key split per step, or one key per sequence."""

    name = "equinox"
    framework = "equinox"
    model_module = "equinox_model.py"
    requires = ("equinox",)
    packages = ("equinox", "jax", "jaxlib")
    install = "`pip install jax==0.10.2 jaxlib==0.10.2 equinox==0.13.8`, or run `tox -e jax`"
    dtype = np.float32
    rate_keys, keep_keys = frozenset({"p"}), frozenset()  # eqx.nn.Dropout's p (dropspec.modes.declared_rates)

    def catalogue(self) -> Sequence[Case]:
        return equinox_cases(self)

    def device(self) -> str:
        import jax

        return jax.default_backend()

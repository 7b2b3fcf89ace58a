"""Keras 3 (``keras==3.15.1``) on the backend chosen by ``KERAS_BACKEND``: tensorflow, jax or torch.

Keras picks its backend once, when it is first imported, from the ``KERAS_BACKEND`` environment
variable. So there is one adapter class per backend (``keras_tf``, ``keras_jax``, ``keras_torch``),
each of which needs ``KERAS_BACKEND`` to name its backend: it sets the variable itself only when
Keras has not been imported yet and the variable is unset; otherwise ``unavailable_reason`` says
that the running Keras uses another backend.

The model is ``models/keras_model.py``, which tf-keras shares (``tf_keras.py``); the cases are
``keras_cases.py``'s. A repro's ``KERAS`` names the backend: the module sets ``KERAS_BACKEND`` to it before
it imports Keras.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from .base import Case, ModelAdapter
from .keras_cases import PORTABLE_MODES, RATE_KEYS, keras_cases, with_modes

# the call modes measured per backend (dropspec.modes); the compiled mode is the backend's own. torch has none:
# torch.compile of a Keras layer spends 50-100 s in dynamo per freshly built layer on a CPU (every run builds one)
# and hits dynamo's recompile limit (8) in Keras' step function, falling back to eager for what it would measure
BACKEND_MODES = {
    "tensorflow": ("tf_function", "jit_compile", *PORTABLE_MODES),
    "jax": ("jax_jit", *PORTABLE_MODES),
    "torch": PORTABLE_MODES,
}
BACKEND_PACKAGES = {  # backend -> (what to pip install, the distributions whose versions a result records)
    "tensorflow": ("tensorflow-cpu==2.21.0", ("tensorflow",)),
    "jax": ("jax==0.10.2 jaxlib==0.10.2", ("jax", "jaxlib")),
    "torch": ("torch==2.13.0", ("torch",)),
}


class Keras3Adapter(ModelAdapter):
    """Keras 3 on one backend; the backend comes from ``KERAS_BACKEND``, read by Keras at import."""

    framework = "keras"
    dtype = np.float32
    model_module = "keras_model.py"
    backend = "tensorflow"
    env = "keras_tf"  # the tox environment that runs this backend
    rate_keys, keep_keys = RATE_KEYS, frozenset()  # the CONFIG keys of its rates (dropspec.modes.declared_rates)

    def catalogue(self) -> Sequence[Case]:
        return with_modes(keras_cases(use_cudnn=True), BACKEND_MODES[self.backend], self)

    def constants(self) -> dict[str, Any]:
        return {"KERAS": self.backend}  # the model module sets KERAS_BACKEND to it before it imports Keras

    def device(self) -> str:
        """Where Keras puts its tensors: a GPU when the backend sees one (its cuDNN path is then the default)."""
        if self.backend == "torch":
            import torch

            return "cuda" if torch.cuda.is_available() else "cpu"
        if self.backend == "jax":
            import jax

            return jax.default_backend()
        import tensorflow as tf

        return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"

    def unavailable_reason(self) -> str | None:
        pip, _ = BACKEND_PACKAGES[self.backend]
        if "keras" not in sys.modules:
            # Keras has not chosen a backend yet: choose ours through the documented variable
            os.environ.setdefault("KERAS_BACKEND", self.backend)
        wanted = os.environ.get("KERAS_BACKEND", self.backend)
        if wanted != self.backend:
            return (
                f"KERAS_BACKEND={wanted!r}, but adapter {self.name!r} tests Keras 3 on {self.backend!r}: Keras reads "
                f"the backend once at import; run with KERAS_BACKEND={self.backend} (or `tox -e {self.env}`)"
            )
        try:
            import keras
        except Exception as exc:  # ImportError, or a backend that fails to load
            return (
                f"keras 3 with the {self.backend} backend cannot be imported ({type(exc).__name__}: {exc}): "
                f"`pip install keras==3.15.1 {pip}`, or run `tox -e {self.env}`"
            )
        if not keras.__version__.startswith("3.") or keras.backend.backend() != self.backend:
            return (
                f"keras {keras.__version__} runs on the {keras.backend.backend()!r} backend, not {self.backend!r}: "
                f"set KERAS_BACKEND={self.backend} before Keras is imported (or `tox -e {self.env}`)"
            )
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in ("keras", *BACKEND_PACKAGES[self.backend][1]):
            for dist in (pkg, f"{pkg}-cpu"):  # TensorFlow's CPU build is the distribution tensorflow-cpu
                try:
                    out[pkg] = version(dist)
                    break
                except PackageNotFoundError:
                    out[pkg] = "missing"
        out["keras_backend"] = self.backend
        return out


class KerasTFAdapter(Keras3Adapter):
    """Keras 3 on TensorFlow: needs KERAS_BACKEND=tensorflow."""

    name = "keras_tf"
    backend = "tensorflow"
    env = "keras_tf"


class KerasJaxAdapter(Keras3Adapter):
    """Keras 3 on JAX: needs KERAS_BACKEND=jax."""

    name = "keras_jax"
    backend = "jax"
    env = "keras_jax"


class KerasTorchAdapter(Keras3Adapter):
    """Keras 3 on PyTorch: needs KERAS_BACKEND=torch."""

    name = "keras_torch"
    backend = "torch"
    env = "keras_torch"

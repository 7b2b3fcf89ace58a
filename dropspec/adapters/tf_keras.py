"""tf-keras (``tf-keras==2.21.0``): Keras 2 as shipped for TensorFlow, ``import tf_keras``.

The model (``models/keras_model.py``) and the cases (``keras_cases.py``) are Keras 3's: the layers, cells
and weights used here have the same names and layouts. tf-keras has no ``use_cudnn`` argument; it picks
its fused (cuDNN-compatible) LSTM/GRU path by itself when ``recurrent_dropout == 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import Case, ModelAdapter
from .keras_cases import PORTABLE_MODES, RATE_KEYS, keras_cases, with_modes


class TFKerasAdapter(ModelAdapter):
    """tf.keras 2 (tf-keras) LSTM, GRU and SimpleRNN with ``dropout`` / ``recurrent_dropout``."""

    name = "tf_keras"
    framework = "tf_keras"
    dtype = np.float32
    model_module = "keras_model.py"
    requires = ("tf_keras",)
    packages = ("tf-keras", "tensorflow", "tensorflow-cpu")
    install = "`pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0`, or run `tox -e tf_keras`"
    rate_keys, keep_keys = RATE_KEYS, frozenset()  # the CONFIG keys of its rates (dropspec.modes.declared_rates)

    def catalogue(self) -> Sequence[Case]:
        # tf-keras' recurrent layers take no seed= argument (Keras 3's do): only its Dropout layer is seeded
        modes = ("tf_function", "jit_compile", *PORTABLE_MODES)
        return with_modes(keras_cases(use_cudnn=False), modes, self, seeded_rnn=False)

    def constants(self) -> dict[str, Any]:
        return {"KERAS": "tf_keras"}  # the model module then imports tf_keras as keras

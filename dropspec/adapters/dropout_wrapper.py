"""TensorFlow's DropoutWrapper around LSTM and GRU cells (``tensorflow-cpu==2.21.0``, ``tf-keras==2.21.0``).

Two ways users still write it in TF 2.21:

- ``keras2``: the public TF2 API ``tf.nn.RNNCellDropoutWrapper`` around a ``tf_keras.layers.LSTMCell`` /
  ``GRUCell``, run by ``tf_keras.layers.RNN``.
- ``v1``: ``tf.compat.v1.nn.rnn_cell.DropoutWrapper`` around ``tf.compat.v1.nn.rnn_cell.LSTMCell`` /
  ``GRUCell`` (state ``LSTMStateTuple(c, h)``; the GRU is reset-before), run by
  ``tf.compat.v1.nn.dynamic_rnn``. With Keras 3 installed these names exist only with
  ``TF_USE_LEGACY_KERAS=1``, which this adapter sets when TensorFlow is not imported yet.

The model is ``models/dropout_wrapper_model.py``; the cases are ``dropout_wrapper_cases.py``'s. The outputs are
what the wrapper emits (output dropout applied) and the state it returns (state dropout applied).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from .base import Case, ModelAdapter
from .dropout_wrapper_cases import dropout_wrapper_cases


class DropoutWrapperAdapter(ModelAdapter):
    """TensorFlow's DropoutWrapper (TF2 ``tf.nn.RNNCellDropoutWrapper`` and TF1 ``compat.v1``)."""

    name = "dropout_wrapper"
    framework = "tensorflow"
    dtype = np.float32
    model_module = "dropout_wrapper_model.py"
    requires = ("tensorflow", "tf_keras")
    packages = ("tensorflow", "tensorflow-cpu", "tf-keras")
    install = "`pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0`, or run `tox -e tf_keras`"
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): the wrapper takes keep probabilities, 1 - p
    rate_keys, keep_keys = frozenset(), frozenset({"input_keep_prob", "state_keep_prob", "output_keep_prob"})

    def catalogue(self) -> Sequence[Case]:
        return dropout_wrapper_cases(self)

    def unavailable_reason(self) -> str | None:
        if "tensorflow" not in sys.modules:
            # the TF1 cells and wrapper are served by tf_keras only in legacy-Keras mode
            os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        reason = super().unavailable_reason()
        if reason:
            return reason
        import tensorflow as tf

        try:
            tf.compat.v1.nn.rnn_cell.DropoutWrapper  # noqa: B018
        except Exception as exc:
            return (
                f"tf.compat.v1.nn.rnn_cell.DropoutWrapper is unavailable ({exc}): set TF_USE_LEGACY_KERAS=1 "
                f"before TensorFlow is imported (or `tox -e tf_keras`)"
            )
        return None

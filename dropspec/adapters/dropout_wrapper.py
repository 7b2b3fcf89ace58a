"""TensorFlow's DropoutWrapper around LSTM and GRU cells (``tensorflow-cpu==2.21.0``, ``tf-keras==2.21.0``).

Two ways users still write it in TF 2.21:

- ``keras2``: the public TF2 API ``tf.nn.RNNCellDropoutWrapper`` around a ``tf_keras.layers.LSTMCell`` /
  ``GRUCell``, run by ``tf_keras.layers.RNN``.
- ``v1``: ``tf.compat.v1.nn.rnn_cell.DropoutWrapper`` around ``tf.compat.v1.nn.rnn_cell.LSTMCell`` /
  ``GRUCell`` (state ``LSTMStateTuple(c, h)``; the GRU is reset-before), run by
  ``tf.compat.v1.nn.dynamic_rnn``. With Keras 3 installed these names exist only with
  ``TF_USE_LEGACY_KERAS=1``, which this adapter sets when TensorFlow is not imported yet.

A case's ``config``: ``api`` (``keras2`` or ``v1``), ``cell`` and ``cell_args`` (the cell's class in that API
and its constructor arguments), ``wrapper_args`` (the DropoutWrapper's constructor arguments, verbatim;
``dtype`` is written as its name). The outputs are what the wrapper emits (output dropout applied) and the
state it returns (state dropout applied).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from ..reference import Cell, Params, Trace
from .base import Adapter, CallInputs, Case, Claim
from .keras3 import keras_weights

KEEP = 0.75
P = 1.0 - KEEP
# 64 units: a mask shared by the batch must be wide enough that a repeat by chance is far below 1e-6
STEPS, BATCH, WIDTH = 8, 16, 64
INSTALL = "`pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0`, or run `tox -e dropout_wrapper`"
URL = "https://www.tensorflow.org/api_docs/python/tf/compat/v1/nn/rnn_cell/DropoutWrapper"
DOC_VARIATIONAL = (
    'DropoutWrapper: "If `variational_recurrent` is set to `True` (**NOT** the default behavior), then the same '
    "dropout mask is applied at every step, as described in: A Theoretically Grounded Application of Dropout in "
    "Recurrent Neural Networks. Y. Gal, Z. Ghahramani [...] Otherwise a different dropout mask is applied at every "
    'time step." variational_recurrent: "If `True`, then the same dropout pattern is applied across all time '
    f'steps per run call." {URL}'
)
DOC_STATE = (
    'state_keep_prob: "State dropout is performed on the outgoing states of the cell. **Note** the state '
    "components to which dropout is applied when `state_keep_prob` is in `(0, 1)` are also determined by the "
    "argument `dropout_state_filter_visitor` (e.g. by default dropout is never applied to the `c` component of an "
    '`LSTMStateTuple`)." '
)
DOC_INPUT = 'input_keep_prob: "unit Tensor or float between 0 and 1, input keep probability" '
DOC_OUTPUT = 'output_keep_prob: "unit Tensor or float between 0 and 1, output keep probability" '

SITE_CLAIMS = {  # keep-prob argument -> (scheme without / with variational_recurrent, site, doc)
    "input_keep_prob": (("zaremba", "variational"), "input", DOC_INPUT),
    "state_keep_prob": (("carried_state", "carried_state_variational"), "carry_h", DOC_STATE),
    # with variational_recurrent the docs promise one pattern for every step; the spec has no per-sequence
    # output scheme, so both claim output_dropout and the fingerprint tells which it is
    "output_keep_prob": (("output_dropout", "output_dropout"), "output", DOC_OUTPUT),
}


def dropout_wrapper_cases(steps: int = STEPS, batch: int = BATCH, width: int = WIDTH) -> list[Case]:
    out = []
    for api in ("keras2", "v1"):
        for kind in ("lstm", "gru"):
            # tf_keras' GRUCell defaults to reset_after=True; the TF1 GRUCell is reset-before
            cell = Cell(kind, width, width, reset_after=api == "keras2")
            cls = {"lstm": "LSTMCell", "gru": "GRUCell"}[kind]
            prefix = "tf.nn.RNNCellDropoutWrapper" if api == "keras2" else "tf.compat.v1.nn.rnn_cell.DropoutWrapper"
            cell_label = f"tf_keras.layers.{cls}" if api == "keras2" else f"tf.compat.v1.nn.rnn_cell.{cls}"
            # one keep probability at a time: with output and state dropout together, a dropped output hides the
            # state mask of the same step, and recovery cannot tell the two apart (see recovery._select)
            combos = [(arg,) for arg in SITE_CLAIMS]
            for variational in (False, True):
                for args in combos:
                    about = "state_keep_prob" if len(args) > 1 else args[0]
                    schemes, site, doc = SITE_CLAIMS[about]
                    scheme = schemes[int(variational)]
                    rates = {SITE_CLAIMS[a][1]: P for a in args}
                    if scheme == "variational":
                        rates.setdefault("recurrent", 0.0)
                    wargs: dict[str, Any] = {a: KEEP for a in args}
                    if variational:
                        wargs.update(variational_recurrent=True, dtype="float32")
                        if "input_keep_prob" in args:
                            wargs["input_size"] = width
                    doc_all = (DOC_VARIATIONAL if variational else "") + " " + doc + URL
                    name = "+".join(a.split("_")[0] for a in args) if len(args) > 1 else args[0].split("_")[0]
                    cid = f"{api}-{cell.name}-{name}" + ("-variational" if variational else "")
                    units = {"units": width} if api == "keras2" else {"num_units": width}
                    config = {"api": api, "cell": cls, "cell_args": units, "wrapper_args": wargs}
                    shown = ", ".join(f"{k}={v!r}" for k, v in wargs.items())
                    out.append(
                        Case(
                            cid,
                            cell,
                            config,
                            Claim(scheme, rates, doc=doc_all.strip()),
                            steps=steps,
                            batch=batch,
                            label=f"{prefix}({cell_label}({width}), {shown})",
                        )
                    )
    return out


class DropoutWrapperAdapter(Adapter):
    """TensorFlow's DropoutWrapper (TF2 ``tf.nn.RNNCellDropoutWrapper`` and TF1 ``compat.v1``)."""

    name = "dropout_wrapper"
    framework = "tensorflow"
    dtype = np.float32

    def __init__(self, cases: Sequence[Case] | None = None) -> None:
        self._cases = list(cases) if cases is not None else None

    def unavailable_reason(self) -> str | None:
        if "tensorflow" not in sys.modules:
            # the TF1 cells and wrapper are served by tf_keras only in legacy-Keras mode
            os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
        try:
            import tensorflow as tf
            import tf_keras  # noqa: F401
        except Exception as exc:
            return f"tensorflow and tf_keras cannot be imported ({type(exc).__name__}: {exc}): {INSTALL}"
        try:
            tf.compat.v1.nn.rnn_cell.DropoutWrapper  # noqa: B018
        except Exception as exc:
            return (
                f"tf.compat.v1.nn.rnn_cell.DropoutWrapper is unavailable ({exc}): set TF_USE_LEGACY_KERAS=1 "
                f"before TensorFlow is imported (or `tox -e dropout_wrapper`)"
            )
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in ("tensorflow", "tensorflow-cpu", "tf-keras"):
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                pass
        return out

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = dropout_wrapper_cases()
        return self._cases

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        import tensorflow as tf
        import tf_keras

        cfg, cell = case.config, case.cell
        tf_keras.utils.set_random_seed(seed)  # python, numpy and TF's global seed; the wrapper's ops use it
        wargs = dict(cfg["wrapper_args"])
        if "dtype" in wargs:
            wargs["dtype"] = tf.as_dtype(wargs["dtype"])
        batch = calls[0].x.shape[1]
        if cfg["api"] == "keras2":
            inner = getattr(tf_keras.layers, cfg["cell"])(**cfg["cell_args"])
            wrapper = tf.nn.RNNCellDropoutWrapper(inner, **wargs)
            rnn = tf_keras.layers.RNN(wrapper, return_sequences=True, return_state=True)
            # the wrapper's build builds the cell (again, with new weights if it was built before): build it once
            wrapper.build(tf.TensorShape([batch, cell.input_size]))
            rnn.build((batch, case.steps, cell.input_size))
            for name, value in keras_weights(cell, params).items():
                getattr(inner, name).assign(np.asarray(value, np.float32))
        else:
            inner = getattr(tf.compat.v1.nn.rnn_cell, cfg["cell"])(**cfg["cell_args"])
            wrapper = tf.compat.v1.nn.rnn_cell.DropoutWrapper(inner, **wargs)
            inner.build(tf.TensorShape([batch, cell.input_size]))
            self._load_v1(inner, cell, params)

        traces = []
        for call in calls:
            x = tf.constant(np.transpose(call.x, (1, 0, 2)), tf.float32)
            h0 = tf.constant(call.h0, tf.float32)
            c0 = tf.constant(call.c0, tf.float32) if cell.kind == "lstm" else None
            if cfg["api"] == "keras2":
                # Keras cells take the training flag; the wrapper drops whatever it is told (see notes)
                y, *final = rnn(x, initial_state=[h0] if c0 is None else [h0, c0], training=training)
                h, c = final[0], final[1] if c0 is not None else None
            elif training:
                init = h0 if c0 is None else tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c0, h0)
                y, state = tf.compat.v1.nn.dynamic_rnn(wrapper, x, initial_state=init)
                h, c = (state, None) if c0 is None else (state.h, state.c)
            else:
                # TF1 has no training flag: inference is the unwrapped cell, as users build their eval graph
                init = h0 if c0 is None else tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c0, h0)
                y, state = tf.compat.v1.nn.dynamic_rnn(inner, x, initial_state=init)
                h, c = (state, None) if c0 is None else (state.h, state.c)
            traces.append(
                Trace(
                    y=np.transpose(np.asarray(y, np.float64), (1, 0, 2)),
                    h=np.asarray(h, np.float64),
                    c=None if c is None else np.asarray(c, np.float64),
                )
            )
        return traces

    @staticmethod
    def _load_v1(inner: Any, cell: Cell, params: Params) -> None:
        """TF1 cells keep one kernel over the concatenation [x, h] and one bias.

        LSTMCell: kernel (I+H, 4H) in gate order i, j (= g), f, o, and ``forget_bias`` (1.0 by default) is added
        to f at run time, so the stored f bias is b_if + b_hf - forget_bias. GRUCell: ``gates`` (I+H, 2H) for
        r, u (u = z) and ``candidate`` (I+H, H), reset before the matmul: c = tanh(W [x, r h] + b)."""
        h = cell.hidden_size

        def rows(gate: str) -> slice:
            return params.rows(cell, gate)

        def stacked(gates: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
            w = np.concatenate([np.concatenate([params.w_ih[rows(g)], params.w_hh[rows(g)]], axis=1) for g in gates])
            b = np.concatenate([params.b_ih[rows(g)] + params.b_hh[rows(g)] for g in gates])
            return w.T.astype(np.float32), b.astype(np.float32)

        if cell.kind == "lstm":
            kernel, bias = stacked(["i", "g", "f", "o"])
            bias[2 * h : 3 * h] -= inner._forget_bias
            inner._kernel.assign(kernel)
            inner._bias.assign(bias)
        else:
            kernel, bias = stacked(["r", "z"])
            inner._gate_kernel.assign(kernel)
            inner._gate_bias.assign(bias)
            kernel, bias = stacked(["n"])
            inner._candidate_kernel.assign(kernel)
            inner._candidate_bias.assign(bias)

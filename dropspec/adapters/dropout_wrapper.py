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
from .keras3 import keras_load_lines

KEEP = 0.75
P = 1.0 - KEEP
# 64 units: a mask shared by the batch must be wide enough that a repeat by chance is far below 1e-6
STEPS, BATCH, WIDTH = 8, 16, 64
INSTALL = "`pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0`, or run `tox -e tf_keras`"
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
            # state mask of the same step, and recovery cannot tell them apart (recovery.probes.Recoverer._select)
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
        self._snippets: dict[str, dict[str, Any]] = {}

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
                f"before TensorFlow is imported (or `tox -e tf_keras`)"
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

    def repro(self, case: Case) -> str | None:
        return dropout_wrapper_snippet(case)

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        # the run executes the case's repro snippet, so the bug report and the suite cannot drift
        if case.id not in self._snippets:
            namespace: dict[str, Any] = {"__name__": f"dropspec_repro_{case.id}"}
            exec(compile(dropout_wrapper_snippet(case), f"<repro dropout_wrapper {case.id}>", "exec"), namespace)
            self._snippets[case.id] = namespace
        fns = self._snippets[case.id]
        model = fns["build"](seed)
        fns["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
        traces = []
        for c in calls:
            y, h, c_n = fns["call"](model, c.x, c.h0, c.c0, training)
            traces.append(Trace(y=y, h=h, c=c_n if case.cell.kind == "lstm" else None))
        return traces


def dropout_wrapper_snippet(case: Case) -> str:
    """The case as a user writes it with TensorFlow only: ``build(seed)``, ``load(...)``, ``call(...)``."""
    cfg, cell = case.config, case.cell
    wargs = ", ".join(f"{k}=tf.{v}" if k == "dtype" else f"{k}={v!r}" for k, v in cfg["wrapper_args"].items())
    cargs = ", ".join(f"{k}={v!r}" for k, v in cfg["cell_args"].items())
    shape = f"[{case.batch}, {cell.input_size}]"
    lines = [
        "import os",
        "",
        'os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the TF1 cells and DropoutWrapper live in legacy Keras',
        "import numpy as np",
        "import tensorflow as tf",
        "import tf_keras",
        "",
        "",
        "def build(seed):",
        "    tf_keras.utils.set_random_seed(seed)  # python, numpy and TF's global seed; the wrapper's ops use it",
    ]
    if cfg["api"] == "keras2":
        lines += [
            f"    cell = tf_keras.layers.{cfg['cell']}({cargs})",
            f"    wrapper = tf.nn.RNNCellDropoutWrapper(cell, {wargs})",
            "    rnn = tf_keras.layers.RNN(wrapper, return_sequences=True, return_state=True)",
            "    # the wrapper's build builds the cell (again, with new weights if it was built before): build it once",
            f"    wrapper.build(tf.TensorShape({shape}))",
            f"    rnn.build(({case.batch}, {case.steps}, {cell.input_size}))",
            '    return {"cell": cell, "wrapper": wrapper, "rnn": rnn}',
            "",
            "",
            *keras_load_lines(cell),
            "",
            "",
            "def call(model, x, h0, c0, training):",
            '    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64."""',
            "    x = tf.constant(np.transpose(x, (1, 0, 2)), tf.float32)",
            "    state = [tf.constant(h0, tf.float32)] + ([] if c0 is None else [tf.constant(c0, tf.float32)])",
            '    y, *final = model["rnn"](x, initial_state=state, training=training)',
        ]
    else:
        canonical = "ifgo" if cell.kind == "lstm" else "rzn"  # PyTorch's gate order
        lines += [
            f"    cell = tf.compat.v1.nn.rnn_cell.{cfg['cell']}({cargs})",
            f"    wrapper = tf.compat.v1.nn.rnn_cell.DropoutWrapper(cell, {wargs})",
            f"    cell.build(tf.TensorShape({shape}))",
            '    return {"cell": cell, "wrapper": wrapper}',
            "",
            "",
            "def load(model, w_ih, w_hh, b_ih, b_hh):",
            '    """TF1 cells keep one kernel over [x, h] and one bias (b_ih + b_hh), gates in their own order."""',
            '    cell, H = model["cell"], w_hh.shape[1]',
            f"    rows = {{g: slice(k * H, (k + 1) * H) for k, g in enumerate({canonical!r})}}",
            "",
            "    def stacked(gates):",
            "        w = np.concatenate([np.concatenate([w_ih[rows[g]], w_hh[rows[g]]], axis=1) for g in gates])",
            "        b = np.concatenate([b_ih[rows[g]] + b_hh[rows[g]] for g in gates])",
            '        return w.T.astype("float32"), b.astype("float32")',
            "",
        ]
        if cell.kind == "lstm":
            lines += [
                '    kernel, bias = stacked("igfo")  # LSTMCell: i, j (= g), f, o',
                "    bias[2 * H : 3 * H] -= cell._forget_bias  # added to f at run time",
                "    cell._kernel.assign(kernel)",
                "    cell._bias.assign(bias)",
            ]
        else:
            lines += [
                '    kernel, bias = stacked("rz")  # GRUCell: gates r, u (= z), then the candidate (reset before)',
                "    cell._gate_kernel.assign(kernel)",
                "    cell._gate_bias.assign(bias)",
                '    kernel, bias = stacked("n")',
                "    cell._candidate_kernel.assign(kernel)",
                "    cell._candidate_bias.assign(bias)",
            ]
        init = "h0" if cell.kind != "lstm" else "tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c0, h0)"
        lines += [
            "",
            "",
            "def call(model, x, h0, c0, training):",
            '    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64. TF1 has no training flag: inference',
            '    runs the unwrapped cell, as users build their eval graph."""',
            "    x = tf.constant(np.transpose(x, (1, 0, 2)), tf.float32)",
            "    h0 = tf.constant(h0, tf.float32)",
            "    c0 = None if c0 is None else tf.constant(c0, tf.float32)",
            '    rnn_cell = model["wrapper"] if training else model["cell"]',
            f"    y, state = tf.compat.v1.nn.dynamic_rnn(rnn_cell, x, initial_state={init})",
            "    final = [state] if c0 is None else [state.h, state.c]",
        ]
    lines += [
        "    y = np.transpose(np.asarray(y, float), (1, 0, 2))",
        "    return y, np.asarray(final[0], float), None if c0 is None else np.asarray(final[1], float)",
        "",
    ]
    return "\n".join(lines)

"""The cases of TensorFlow's DropoutWrapper, with the documentation each claim rests on.

The product: two APIs (``keras2``: ``tf.nn.RNNCellDropoutWrapper`` around a ``tf_keras.layers`` cell; ``v1``:
``tf.compat.v1.nn.rnn_cell.DropoutWrapper`` around a TF1 cell) x two cells (LSTM, GRU) x two values of
``variational_recurrent`` x three keep probabilities, one at a time: with output and state dropout together, a
dropped output hides the state mask of the same step, and recovery cannot tell them apart
(``recovery.probes.Recoverer._select``). A case's ``config`` is ``models/dropout_wrapper_model.py``'s CONFIG.
"""

from __future__ import annotations

from typing import Any

from ..adapter import Adapter
from ..case import Case, Claim
from ..modes import RATE_MODES, expand
from ..reference import Cell

KEEP = 0.75
P = 1.0 - KEEP
# 64 units: a mask shared by the batch must be wide enough that a repeat by chance is far below 1e-6
STEPS, BATCH, WIDTH = 8, 16, 64
URL = "https://www.tensorflow.org/api_docs/python/tf/compat/v1/nn/rnn_cell/DropoutWrapper"

# --- documentation the claims rest on (quotes, verbatim) -----------------------------------------
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
DOC_VISITOR = (
    'dropout_state_filter_visitor: "Function that takes any hierarchical level of the state and returns a scalar or '
    'depth=1 structure of Python booleans describing which terms in the state should be dropped out." '
)
DOC_OUTPUT = 'output_keep_prob: "unit Tensor or float between 0 and 1, output keep probability" '

# --- the axes ----------------------------------------------------------------------------------------
APIS = {  # api -> (the wrapper as written, the cells' module as written, the cell's size argument)
    "keras2": ("tf.nn.RNNCellDropoutWrapper", "tf_keras.layers", "units"),
    "v1": ("tf.compat.v1.nn.rnn_cell.DropoutWrapper", "tf.compat.v1.nn.rnn_cell", "num_units"),
}
CELLS = {"lstm": "LSTMCell", "gru": "GRUCell"}
SITE_CLAIMS = {  # keep-prob argument -> (scheme without / with variational_recurrent, site, doc)
    "input_keep_prob": (("zaremba", "variational"), "input", DOC_INPUT),
    "state_keep_prob": (("carried_state", "carried_state_variational"), "carry_h", DOC_STATE),
    # with variational_recurrent the docs promise one pattern for every step, as Gal's: locked_output (one output
    # mask per sequence)
    "output_keep_prob": (("output_dropout", "locked_output"), "output", DOC_OUTPUT),
}


# Call modes (dropspec.modes), on a few configurations each: when the wrapper draws its masks could change with the
# mode (eager variational masks are drawn once and reused, tensorflow#7927), so a compiled call is measured on a
# per-step and a variational configuration of each API; static_rnn (TF1, v1 only: it takes the v1 wrapper, and TF 2.21
# still runs it eagerly) and keras2's RNN(unroll=True) on a per-step and a variational input mask and on the state
# mask; a batch of one on a batch-shared variational mask and a per-sample state mask. The training flag sequence
# (common.flags.training) runs on every case.
MODE_CASES = {
    "tf_function": ("keras2-lstm-input", "keras2-lstm-state-variational", "v1-lstm-state", "v1-lstm-input-variational"),
    "jit_compile": ("keras2-lstm-input", "v1-lstm-input-variational"),
    "static_rnn": ("v1-lstm-input", "v1-lstm-input-variational", "v1-gru_reset_before-state"),
    "unroll": ("keras2-lstm-input", "keras2-lstm-input-variational", "keras2-gru_reset_after-state"),
    "batch_one": ("keras2-lstm-input-variational", "v1-lstm-state"),
    # the wrapper's seed= argument, and the keras2 layer's config round trip (the v1 API has no config)
    "seed_argument": ("keras2-lstm-input", "v1-lstm-input-variational"),
    "reload_config": ("keras2-lstm-input", "keras2-gru_reset_after-input"),
    # the boundary rates as keep probabilities (1, 0.99, 0.1, 0) on the per-step input mask
    **{mode: ("keras2-lstm-input",) for mode in RATE_MODES},
}


def dropout_wrapper_cases(adapter: Adapter) -> list[Case]:
    out = []
    for api, (wrapper, module, size) in APIS.items():
        for kind, cls in CELLS.items():
            # tf_keras' GRUCell defaults to reset_after=True; the TF1 GRUCell is reset-before
            cell = Cell(kind, WIDTH, WIDTH, reset_after=api == "keras2")
            for variational in (False, True):
                for arg, (schemes, site, doc) in SITE_CLAIMS.items():
                    scheme = schemes[int(variational)]
                    rates = {site: P} | ({"recurrent": 0.0} if scheme == "variational" else {})
                    wargs: dict[str, Any] = {arg: KEEP}
                    if variational:
                        wargs.update(variational_recurrent=True, dtype="float32")
                        wargs |= {"input_size": WIDTH} if arg == "input_keep_prob" else {}
                    config = {"api": api, "cell": cls, "cell_args": {size: WIDTH}, "wrapper_args": wargs}
                    config["input_shape"] = [BATCH, STEPS, WIDTH]
                    shown = ", ".join(f"{k}={v!r}" for k, v in wargs.items())
                    label = f"{wrapper}({module}.{cls}({WIDTH}), {shown})"
                    doc_all = ((DOC_VARIATIONAL if variational else "") + " " + doc + URL).strip()
                    cid = f"{api}-{cell.name}-{arg.split('_')[0]}" + ("-variational" if variational else "")
                    out.append(
                        Case(
                            cid, cell, config, Claim(scheme, rates, doc=doc_all), steps=STEPS, batch=BATCH, label=label
                        )
                    )
    # state dropout on the LSTM's c alone (issue 17, item 6: the carry_c scheme): a visitor that selects c, not h
    for api, (wrapper, module, size) in APIS.items():
        cell = Cell("lstm", WIDTH, WIDTH)
        wargs = {"state_keep_prob": KEEP}
        config = {"api": api, "cell": "LSTMCell", "cell_args": {size: WIDTH}, "wrapper_args": wargs}
        config |= {"input_shape": [BATCH, STEPS, WIDTH], "state_filter": "c"}
        selects = "LSTMStateTuple(c=True, h=False)" if api == "v1" else "[False, True] for the [h, c] state"
        label = (
            f"{wrapper}({module}.LSTMCell({WIDTH}), state_keep_prob={KEEP!r}, "
            f"dropout_state_filter_visitor=<returns {selects}>)"
        )
        claim = Claim("carry_c", {"carry_c": P}, doc=(DOC_STATE + DOC_VISITOR + URL))
        out.append(Case(f"{api}-lstm-state-c", cell, config, claim, steps=STEPS, batch=BATCH, label=label))
    return expand(out, {mode: lambda c, ids=ids: c.id in ids for mode, ids in MODE_CASES.items()}, adapter)

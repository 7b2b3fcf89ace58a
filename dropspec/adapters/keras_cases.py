"""The cases of Keras' recurrent dropout, shared by Keras 3 (``keras3.py``) and tf-keras (``tf_keras.py``), with
the documentation each claim rests on.

The product: four cells (SimpleRNN, LSTM, GRU reset after and before) x three ways to set the rates
(``dropout``, ``recurrent_dropout``, both) x four harnesses (the layer, under every ``implementation`` and
``use_cudnn`` value, which are performance flags; the cell inside ``keras.layers.RNN``; the cell in a Python
loop; the same loop resetting its masks, rates both only), then five Dropout layers around a plain LSTM.
A case's ``config`` is ``models/keras_model.py``'s CONFIG: the model as a user writes it.

Call modes (``dropspec.modes``; ``config["mode"]`` drives the model module) run on a few configurations where
bugs live (``MODE_CASES``), not on every case: the LSTM and GRU layers with both rates at the default
implementation, the LSTM cell inside ``keras.layers.RNN``, a Dropout layer before an LSTM, and (compiled only)
the LSTM with ``dropout`` alone, the configuration tf-keras runs on its fused path. Each adapter names the modes
its framework has.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from ..adapter import Adapter
from ..case import Case, Claim
from ..modes import expand
from ..reference import Cell

P = 0.25  # every rate; 1/(1-p) = 4/3 is far from 1, so kept units are easy to tell apart
STEPS, BATCH, WIDTH = 8, 16, 8

# --- documentation the claims rest on (quotes, verbatim) -----------------------------------------
KERAS_RNN_DOC = (
    'Keras documents `dropout` as "Float between 0 and 1. Fraction of the units to drop for the linear '
    'transformation of the inputs." and `recurrent_dropout` as "Float between 0 and 1. Fraction of the units '
    'to drop for the linear transformation of the recurrent state." One fraction for the one linear '
    "transformation of the inputs (and one for the recurrent state), nothing about gates or steps: read as tied "
    "variational dropout (Gal and Ghahramani 2016; their code's README credits Keras with this scheme)."
)
KERAS_URLS = {
    "rnn": "https://keras.io/api/layers/recurrent_layers/simple_rnn/",
    "lstm": "https://keras.io/api/layers/recurrent_layers/lstm/",
    "gru": "https://keras.io/api/layers/recurrent_layers/gru/",
}
DROPOUT_URL = "https://keras.io/api/layers/regularization_layers/dropout/"
# what the API asks of a hand-written loop over a cell: the docstring of reset_dropout_mask(), verbatim, keyed by
# use_cudnn (True: Keras 3, keras/src/layers/rnn/dropout_rnn_cell.py; False: tf-keras, which has no use_cudnn,
# tf_keras/src/layers/rnn/dropout_rnn_cell_mixin.py)
LOOP_ASKS = {
    True: 'DropoutRNNCell.reset_dropout_mask(): "Reset the cached dropout mask if any. The RNN layer invokes this in '
    "the `call()` method so that the cached mask is cleared after calling `cell.call()`. The mask should be cached "
    "across all timestep within the same batch, but shouldn't be cached between batches.\" "
    "https://github.com/keras-team/keras/blob/master/keras/src/layers/rnn/dropout_rnn_cell.py",
    False: 'DropoutRNNCellMixin.reset_dropout_mask(): "Reset the cached dropout masks if any. This is important for '
    "the RNN layer to invoke this in it `call()` method so that the cached mask is cleared before calling the "
    "`cell.call()`. The mask should be cached across the timestep within the same batch, but shouldn't be cached "
    "between batches. Otherwise it will introduce unreasonable bias against certain index of data within the "
    'batch." https://github.com/keras-team/tf-keras/blob/master/tf_keras/src/layers/rnn/dropout_rnn_cell_mixin.py',
}
DROPOUT_DOC = (
    'keras.layers.Dropout: "The Dropout layer randomly sets input units to 0 with a frequency of rate at each '
    'step during training time [...] Inputs not set to 0 are scaled up by 1 / (1 - rate)". Before a recurrent '
    "layer its input is (batch, timesteps, features), so every element, every step, draws its own mask: "
    f"Zaremba et al.'s non-recurrent dropout. {DROPOUT_URL}"
)
NOISE_DOC = (
    'keras.layers.Dropout, noise_shape: "if your inputs have shape (batch_size, timesteps, features) and you '
    "want the dropout mask to be the same for all timesteps, you can use noise_shape=(batch_size, 1, "
    f'features)." One mask per sample and sequence on the inputs: variational dropout of the input only. {DROPOUT_URL}'
)
FEATURE_DOC = (
    'keras.layers.Dropout, noise_shape: "1D integer tensor representing the shape of the binary dropout mask that '
    'will be multiplied with the input." With (1, 1, features) one mask is shared by every sample and step. '
    f"{DROPOUT_URL}"
)
SPATIAL_DOC = (
    'keras.layers.SpatialDropout1D: "This version performs the same function as Dropout, however, it drops '
    'entire 1D feature maps instead of individual elements." A feature map of a (batch, timesteps, features) '
    "input is one feature over all steps of one sample: variational dropout of the input only. "
    "https://keras.io/api/layers/regularization_layers/spatial_dropout1d/"
)
AFTER_DOC = (
    "keras.layers.Dropout after a layer with return_sequences=True drops the emitted sequence, element by element "
    "and step by step (Zaremba et al. drop the output of a layer as the input of the next one): claimed as "
    f"output_dropout, spec/schemes/output_dropout.yaml. {DROPOUT_URL}"
)

# --- the axes ----------------------------------------------------------------------------------------
CELLS = (
    Cell("rnn", WIDTH, WIDTH),
    Cell("lstm", WIDTH, WIDTH),
    Cell("gru", WIDTH, WIDTH, reset_after=True),
    Cell("gru", WIDTH, WIDTH, reset_after=False),
)
LAYER = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
DROPS = {  # case suffix -> (constructor rates, claimed rates)
    "dropout": ({"dropout": P}, {"input": P, "recurrent": 0.0}),
    "recurrent": ({"recurrent_dropout": P}, {"input": 0.0, "recurrent": P}),
    "both": ({"dropout": P, "recurrent_dropout": P}, {"input": P, "recurrent": P}),
}
SEQ = {"return_sequences": True, "return_state": True}
LOOPS = {  # harness -> (the drops it runs, how the loop is written)
    "loop": (tuple(DROPS), "cell(x_t, states, training=True) for each t, no reset between sequences"),
    "loop_reset": (
        ("both",),
        "cell(x_t, states, training=True) for each t; "
        "cell.reset_dropout_mask() and cell.reset_recurrent_dropout_mask() after each sequence",
    ),
}
# Dropout layers around a plain LSTM (the user questions): case suffix -> (where, layer, claim)
AROUND = {
    "dropout_before": (
        "before",
        {"layer": "Dropout", "args": {"rate": P}},
        Claim("zaremba", {"input": P}, DROPOUT_DOC),
    ),
    "spatial_dropout_before": (
        "before",
        {"layer": "SpatialDropout1D", "args": {"rate": P}},
        Claim("variational", {"input": P, "recurrent": 0.0}, SPATIAL_DOC),
    ),
    "dropout_noise_b1f_before": (
        "before",
        {"layer": "Dropout", "args": {"rate": P, "noise_shape": [BATCH, 1, WIDTH]}},
        Claim("variational", {"input": P, "recurrent": 0.0}, NOISE_DOC),
    ),
    "dropout_noise_11f_before": (
        "before",
        {"layer": "Dropout", "args": {"rate": P, "noise_shape": [1, 1, WIDTH]}},
        Claim("feature_dropout", {"input": P}, FEATURE_DOC),
    ),
    "dropout_after": (
        "after",
        {"layer": "Dropout", "args": {"rate": P}},
        Claim("output_dropout", {"output": P}, AFTER_DOC),
    ),
}


# --- call modes --------------------------------------------------------------------------------------------
LSTM_BOTH, GRU_BOTH = "lstm-layer-both-impl2", "gru_reset_after-layer-both-impl2"
RNN_CELL, BEFORE, FUSED = "lstm-rnn_cell-both-impl2", "lstm-dropout_before", "lstm-layer-dropout-impl2"
MODE_CASES: dict[str, tuple[str, ...]] = {  # mode -> the configurations that run in it
    "tf_function": (LSTM_BOTH, GRU_BOTH, RNN_CELL, BEFORE, FUSED),
    "jit_compile": (LSTM_BOTH, BEFORE),  # XLA compiles every run afresh (about 4x an eager case): two configurations
    "jax_jit": (LSTM_BOTH, GRU_BOTH, RNN_CELL, BEFORE),
    "unroll": (LSTM_BOTH, GRU_BOTH),
    "stateful": (LSTM_BOTH,),
    "masked": (LSTM_BOTH, GRU_BOTH),
    "seed_argument": (LSTM_BOTH, BEFORE),
    "reload_saved": (LSTM_BOTH, BEFORE),
    "reload_config": (RNN_CELL,),
    "batch_one": (LSTM_BOTH,),
    # the boundary rates: the LSTM layer's own dropout= and recurrent_dropout=, and the Dropout layer before it (a
    # separate code path: keras.random.dropout on the whole sequence); 1.0 also on the GRU, whose cell has its own
    # mask code. Not every case: each adds a Keras case per backend, and these two paths are where the rate is read
    "rate_zero": (LSTM_BOTH, BEFORE),
    "rate_tiny": (LSTM_BOTH, BEFORE),
    "rate_large": (LSTM_BOTH, BEFORE),
    "rate_one": (LSTM_BOTH, GRU_BOTH, BEFORE),
}
# the modes every backend has; the compiled ones are the backend's own
PORTABLE_MODES = (
    "unroll",
    "stateful",
    "masked",
    "seed_argument",
    "reload_saved",
    "reload_config",
    "batch_one",
    "rate_zero",
    "rate_tiny",
    "rate_large",
    "rate_one",
)


# the CONFIG keys that hold a drop probability (dropspec.modes: the boundary-rate modes rewrite them), for Keras 3 and
# tf-keras alike: the recurrent layer's dropout= and recurrent_dropout=, and the rate= of a Dropout before or after it
RATE_KEYS = frozenset({"dropout", "recurrent_dropout", "rate"})


def with_modes(cases: Sequence[Case], modes: Sequence[str], adapter: Adapter, *, seeded_rnn: bool = True) -> list[Case]:
    """``adapter``'s ``cases`` and their variants in each of ``modes`` (on ``MODE_CASES``' configurations).
    ``seeded_rnn``: the recurrent layers take ``seed=`` (Keras 3); tf-keras' do not, so there only the Dropout
    layer is seeded."""
    selects: dict[str, Callable[[Case], bool]] = {m: (lambda c, ids=MODE_CASES[m]: c.id in ids) for m in modes}
    if "seed_argument" in selects and not seeded_rnn:
        selects["seed_argument"] = lambda c: c.id in MODE_CASES["seed_argument"] and "before" in c.config
    return expand(cases, selects, adapter)


def signature(name: str, args: dict[str, Any]) -> str:
    """``keras.layers.NAME(units, key=value, ...)``, as a user writes it."""
    parts = [repr(v) for k, v in args.items() if k == "units"]
    parts += [f"{k}={v!r}" for k, v in args.items() if k != "units"]
    return f"keras.layers.{name}({', '.join(parts)})"


def keras_cases(*, use_cudnn: bool) -> list[Case]:
    """Every case; ``use_cudnn``: the LSTM and GRU take that argument (Keras 3; tf-keras has none)."""
    out: list[Case] = []
    for cell in CELLS:
        for drop in DROPS:
            out += _cell_cases(cell, drop, use_cudnn)
    lstm = CELLS[1]
    plain = {"units": WIDTH, **SEQ}
    for suffix, (where, extra, claim) in AROUND.items():
        main = signature("LSTM", plain)
        wrapped = f"keras.layers.{extra['layer']}({', '.join(f'{k}={v!r}' for k, v in extra['args'].items())})"
        label = f"{wrapped} -> {main}" if where == "before" else f"{main} -> {wrapped}"
        config = {"layer": "LSTM", "args": dict(plain), "harness": "layer", where: extra, **_shape(lstm)}
        out.append(_case(lstm, f"lstm-{suffix}", config, claim, label))
    return out


def _cell_cases(cell: Cell, drop: str, use_cudnn: bool) -> list[Case]:
    """One cell and one way to set the rates, under every harness."""
    rates, claimed = DROPS[drop]
    # inferred, not documented: Keras' dropout/recurrent_dropout say "Fraction of the units to drop for the linear
    # transformation of the inputs/recurrent state", nothing about gates or steps; tied per-sequence masks (Gal's
    # tied-weights LSTM) is the usual reading, and Gal's untied per-gate masks would be as variational. Keras 3 no
    # longer documents `implementation` (the "performance profiles" sentence is tf.keras 2.x's), and a hand-written
    # loop that never calls reset_dropout_mask() skips what the RNN layer is documented to do for it.
    claim = Claim("variational", claimed, doc=f"{KERAS_RNN_DOC} {KERAS_URLS[cell.kind]}", basis="inferred")
    gru = {"reset_after": cell.reset_after} if cell.kind == "gru" else {}
    impls = [None] if cell.kind == "rnn" else [1, 2]
    # use_cudnn only changes the code path when recurrent_dropout is 0 (cuDNN cannot do it)
    cudnns = [None, False] if use_cudnn and cell.kind != "rnn" and drop == "dropout" else [None]
    out = []
    # the layer: every implementation and use_cudnn value is a performance flag
    for impl in impls:
        for cudnn in cudnns:
            args: dict[str, Any] = {"units": WIDTH, **rates, **gru, **SEQ}
            args |= {"implementation": impl} if impl is not None else {}
            args |= {"use_cudnn": cudnn} if cudnn is not None else {}
            tag = (f"-impl{impl}" if impl is not None else "") + ("-nocudnn" if cudnn is not None else "")
            config = {"layer": LAYER[cell.kind], "args": args, "harness": "layer", **_shape(cell)}
            label = signature(LAYER[cell.kind], args)
            groups = {"flag_group": f"{cell.name}-layer-{drop}", "rate_group": f"{cell.name}-layer{tag}"}
            out.append(_case(cell, f"{cell.name}-layer-{drop}{tag}", config, claim, label, **groups))
    # the cell inside keras.layers.RNN, with the default implementation
    name, impl = LAYER[cell.kind] + "Cell", impls[-1]
    args = {"units": WIDTH, **rates, **gru} | ({"implementation": impl} if impl is not None else {})
    tag = f"-impl{impl}" if impl is not None else ""
    config = {"layer": name, "args": args, "harness": "rnn", "rnn_args": dict(SEQ), **_shape(cell)}
    label = f"keras.layers.RNN({signature(name, args)}, return_sequences=True, return_state=True)"
    groups = {"flag_group": f"{cell.name}-rnn_cell-{drop}", "rate_group": f"{cell.name}-rnn_cell{tag}"}
    out.append(_case(cell, f"{cell.name}-rnn_cell-{drop}{tag}", config, claim, label, **groups))
    # the cell called step by step in a Python loop, over several batches
    for harness, (drops, how) in LOOPS.items():
        if drop in drops:
            args = {"units": WIDTH, **rates, **gru}
            config = {"layer": name, "args": args, "harness": harness, **_shape(cell)}
            label = f"cell = {signature(name, args)}; {how}"
            group = f"{cell.name}-loop" if harness == "loop" else None
            asked = replace(claim, asks=LOOP_ASKS[use_cudnn])
            out.append(_case(cell, f"{cell.name}-{harness}-{drop}", config, asked, label, rate_group=group))
    return out


def _shape(cell: Cell) -> dict[str, list[int]]:
    return {"input_shape": [BATCH, STEPS, cell.input_size]}


def _case(cell: Cell, cid: str, config: dict, claim: Claim, label: str, **groups: str | None) -> Case:
    return Case(cid, cell, config, claim, steps=STEPS, batch=BATCH, label=label, **groups)

"""The cases of the JAX adapters (``flax_linen``, ``flax_nnx``, ``jax_rnn``), as data, with the documentation
their claims rest on.

No JAX cell has built-in recurrent dropout: users compose a Dropout layer with the RNG plumbing of a scan. The
cases therefore build the model a user writes after Flax's own documentation (FLIP 2396 "Recurrent Dropout", the
``nn.scan`` / ``nn.RNN`` / ``nn.Dropout`` API docs, the NNX randomness guide) and let the suite measure which of
those spellings give a fresh mask per step or one per sequence, per sample or shared. Each catalogue is the
product of the cells and the spellings. Users jit their train step, so most configurations are called under
jax.jit / nnx.jit; a few are called eagerly and get the ``flax_jit`` call mode (``dropspec.modes``), which must
keep their masks, and a few get ``flax_vmap``, ``batch_one`` and ``reload_state_dict`` (``LINEN_MODES``,
``NNX_MODES``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from string import Template
from typing import Any

from ..adapter import Adapter
from ..case import Case, Claim
from ..modes import RATE_MODES, expand
from ..reference import Cell

P = 0.25
STEPS, BATCH, WIDTH = 16, 32, 8

# --- the documentation the claims rest on (quotes, verbatim) ------------------------------------------
FLIP = "https://github.com/google/flax/blob/main/docs/flip/2396-rnn.md"
FLIP_INPUT = (
    "Flax FLIP 2396 (RNN), 'Recurrent Dropout': \"Input dropout: regular dropout applied to the inputs, "
    'different for every step." ... "Flax\'s nn.scan can easily express both types of dropout via split_rns, '
    f'input dropout would split rngs while recurrent dropout would not." {FLIP}'
)
FLIP_RECURRENT = (
    "Flax FLIP 2396 (RNN), 'Recurrent Dropout': \"Recurrent dropout: applies dropout to a recurrent input/output, "
    'same for every step." ... "self.recurrent_dropout = nn.Dropout(..., rng_collection=\'recurrent_dropout\')" '
    "... \"nn.scan(scan_fn, ..., split_rngs={'dropout': True, 'recurrent_dropout': False})\" " + FLIP
)
SCAN_DOC = (
    'flax.linen.scan: "split_rngs: Split PRNG sequences will be different for each loop iterations. If split is '
    'False the PRNGs will be the same across iterations." '
    "https://flax.readthedocs.io/en/latest/api_reference/flax.linen/transformations.html#flax.linen.scan"
)
RNN_DOC = (
    "flax.linen.RNN: \"split_rngs: a mapping from PRNGSequenceFilter to bool specifying whether a collection's PRNG "
    "key should be split such that its values are different at each step, or replicated such that its values remain "
    'the same at each step"; "by default they are set to work with cells like LSTMCell and GRUCell" '
    "https://flax.readthedocs.io/en/latest/api_reference/flax.linen/layers.html#flax.linen.RNN"
)
DROPOUT_DOC = (
    'flax.linen.Dropout: "broadcast_dims: dimensions that will share the same dropout mask"; "deterministic: if '
    'false the inputs are scaled by 1 / (1 - rate) and masked" '
    "https://flax.readthedocs.io/en/latest/api_reference/flax.linen/layers.html#flax.linen.Dropout"
)
SHARP_BITS = (
    "Flax sharp bits: \"add the 'dropout' PRNGkey only during the forward pass ... During the forward pass with "
    "flax.linen.apply(), pass in rngs={'dropout': dropout_key}.\" "
    "https://flax.readthedocs.io/en/latest/guides/flax_sharp_bits.html"
)
NNX_GUIDE = (
    'Flax NNX randomness guide, "Recurrent dropout": "You will apply dropout (drop) to the hidden state h of the '
    'RNNCell." ... "The key ingredient of recurrent dropout is to apply the same dropout mask across all time steps. '
    "Therefore, to achieve this you will pass nnx.StateAxes to nnx.scan's in_axes, specifying that the cell's "
    "recurrent_dropout PRNG stream will be broadcast, and the rest of the RNNCell's state will be carried over.\" "
    "https://flax.readthedocs.io/en/latest/guides/randomness.html"
)
NNX_SCAN = (
    'Flax NNX randomness guide, "Recurrent dropout": "The key ingredient of recurrent dropout is to apply the same '
    "dropout mask across all time steps. Therefore, to achieve this you will pass nnx.StateAxes to nnx.scan's "
    "in_axes, specifying that the cell's recurrent_dropout PRNG stream will be broadcast, and the rest of the "
    "RNNCell's state will be carried over.\" ... \"state_axes = nnx.StateAxes({'recurrent_dropout': None, ...: "
    'nnx.Carry})" "@nnx.scan(in_axes=(state_axes, nnx.Carry, 1), out_axes=(nnx.Carry, 1))" '
    "https://flax.readthedocs.io/en/latest/guides/randomness.html"
)
NNX_DROPOUT_DOC = (
    'flax.nnx.Dropout: "broadcast_dims: dimensions that will share the same dropout mask"; "deterministic: if '
    'false the inputs are scaled by 1 / (1 - rate) and masked" '
    "https://flax.readthedocs.io/en/latest/api_reference/flax.nnx/nn/stochastic.html"
)
JAX_RNN_DOC = (
    'jax.experimental.rnn: "We use notations and variable names similar to '
    'https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html" (torch: dropout "introduces a Dropout layer on '
    'the outputs of each LSTM layer except the last layer", so none in a one-layer LSTM); lstm_ref: "Reference '
    'implementation of LSTM." https://docs.jax.dev/en/latest/jax.experimental.rnn.html'
)


@dataclass(frozen=True)
class Spelling:
    """One way users write dropout around a cell: ``label`` is a template (``$cell``: the cell as written,
    ``$p``: the rate), ``config`` the CONFIG keys it sets, ``flag_group`` whether it has performance-only twins."""

    name: str
    claim: Claim
    label: str
    config: dict[str, Any]
    flag_group: bool = False
    cells: tuple[str, ...] | None = None  # the cells it is written for; None: every cell of the catalogue


ZAREMBA_IN = {"input": P}
VARIATIONAL_IN = {"input": P, "recurrent": 0.0}
VARIATIONAL_REC = {"input": 0.0, "recurrent": P}
FLIP_BOTH = {"input": P, "recurrent": P}  # spec/schemes/flip_recurrent.yaml

# ====================================================================================================
# Flax linen: nn.RNN over each cell, times each spelling
# ====================================================================================================
LINEN_CELLS = {"LSTMCell": "lstm", "OptimizedLSTMCell": "optlstm", "GRUCell": "gru"}  # the case-id prefix
# The flag group is the prefix + the spelling's name. The old code meant LSTMCell and OptimizedLSTMCell to share
# "lstm-<name>" (OptimizedLSTMCell is documented as LSTMCell, "more efficient"), but built these; they are kept
# as the baseline has them, since changing a group changes which flag clauses are judged.
LINEN_FLAG_PREFIX = {"LSTMCell": "lstm-lstm-", "OptimizedLSTMCell": "lstm-", "GRUCell": "lstm-gru-"}

IN = {"input_dropout": P, "recurrent_dropout": 0.0, "recurrent_rng_collection": "recurrent_dropout"}
REC = {"input_dropout": 0.0, "recurrent_dropout": P, "recurrent_rng_collection": "recurrent_dropout"}
WRAP_IN = "nn.RNN(DropoutCell($cell, input_dropout=$p)"
WRAP_REC = "nn.RNN(DropoutCell($cell, recurrent_dropout=$p, rng_collection='recurrent_dropout')"
NO_SPLIT = {"params": False, "dropout": True}
REC_SPLIT = {"params": False, "dropout": True, "recurrent_dropout": False}

LINEN_SPELLINGS = (
    # -- nn.Dropout on the whole (B, T, F) sequence, before nn.RNN
    Spelling(
        "dropout_before_rnn",
        Claim("zaremba", ZAREMBA_IN, doc=f"{FLIP_INPUT} | {DROPOUT_DOC}"),
        "nn.RNN($cell)(nn.Dropout($p)(x)); apply(rngs={'dropout': k})",
        {"dropout_before_rnn": {"rate": P, "broadcast_dims": []}, "apply_rngs": ["dropout"]},
        flag_group=True,
    ),
    Spelling(
        "dropout_before_rnn-broadcast_time",
        Claim("variational", VARIATIONAL_IN, doc=DROPOUT_DOC),
        "nn.RNN($cell)(nn.Dropout($p, broadcast_dims=(1,))(x)); apply(rngs={'dropout': k})",
        {"dropout_before_rnn": {"rate": P, "broadcast_dims": [1]}, "apply_rngs": ["dropout"]},
        flag_group=True,
    ),
    # -- input dropout inside a cell wrapper, i.e. inside nn.scan
    Spelling(
        "cell_input-split_default-rngs_dropout",
        Claim("zaremba", ZAREMBA_IN, doc=f"{FLIP_INPUT} | {RNN_DOC} | {SHARP_BITS}"),
        WRAP_IN + "); apply(rngs={'dropout': k})",
        {"cell_wrapper": IN, "apply_rngs": ["dropout"]},
    ),
    Spelling(
        "cell_input-split_default-rngs_params_dropout",
        Claim("zaremba", ZAREMBA_IN, doc=f"{FLIP_INPUT} | {RNN_DOC}"),
        WRAP_IN + "); apply(rngs={'params': k1, 'dropout': k2})",
        {"cell_wrapper": IN, "apply_rngs": ["params", "dropout"]},
    ),
    Spelling(
        "cell_input-split_dropout_true",
        Claim("zaremba", ZAREMBA_IN, doc=f"{FLIP_INPUT} | {SCAN_DOC}"),
        WRAP_IN + ", split_rngs={'params': False, 'dropout': True}); apply(rngs={'dropout': k})",
        {"cell_wrapper": IN, "split_rngs": NO_SPLIT, "apply_rngs": ["dropout"]},
        flag_group=True,
    ),
    Spelling(
        "cell_input-split_dropout_false",
        Claim("variational", VARIATIONAL_IN, doc=SCAN_DOC),
        WRAP_IN + ", split_rngs={'params': False, 'dropout': False}); apply(rngs={'dropout': k})",
        {"cell_wrapper": IN, "split_rngs": {"params": False, "dropout": False}, "apply_rngs": ["dropout"]},
    ),
    # -- recurrent dropout on h inside the wrapper, its own 'recurrent_dropout' collection
    Spelling(
        "cell_recurrent-split_default-rngs_dropout_recurrent",
        Claim("variational", VARIATIONAL_REC, doc=FLIP_RECURRENT),
        WRAP_REC + "); apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
        {"cell_wrapper": REC, "apply_rngs": ["dropout", "recurrent_dropout"]},
    ),
    Spelling(
        "cell_recurrent-split_default-rngs_params_dropout_recurrent",
        Claim("variational", VARIATIONAL_REC, doc=FLIP_RECURRENT),
        WRAP_REC + "); apply(rngs={'params': k1, 'dropout': k2, 'recurrent_dropout': k3})",
        {"cell_wrapper": REC, "apply_rngs": ["params", "dropout", "recurrent_dropout"]},
    ),
    Spelling(
        "cell_recurrent-split_flip",
        Claim("variational", VARIATIONAL_REC, doc=f"{FLIP_RECURRENT} | {SCAN_DOC}"),
        WRAP_REC + ", split_rngs={'dropout': True, 'recurrent_dropout': False}); "
        "apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
        {
            "cell_wrapper": REC,
            "split_rngs": {"dropout": True, "recurrent_dropout": False},
            "apply_rngs": ["dropout", "recurrent_dropout"],
        },
    ),
    Spelling(
        "cell_recurrent-split_recurrent_false",
        Claim("variational", VARIATIONAL_REC, doc=f"{FLIP_RECURRENT} | {SCAN_DOC}"),
        WRAP_REC + ", split_rngs={'params': False, 'dropout': True, 'recurrent_dropout': False}); "
        "apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
        {"cell_wrapper": REC, "split_rngs": REC_SPLIT, "apply_rngs": ["dropout", "recurrent_dropout"]},
        flag_group=True,
    ),
    # -- the FLIP's combination: input dropout split per step, recurrent dropout not split. FLIP 2396's literal
    # split_rngs leaves 'params' out and crashes (see *-cell_recurrent-split_flip), so this keeps 'params': False
    Spelling(
        "cell_input_recurrent-split_recurrent_false",
        Claim("flip_recurrent", FLIP_BOTH, doc=f"{FLIP_INPUT} | {FLIP_RECURRENT} | {SCAN_DOC}"),
        "nn.RNN(DropoutCell($cell, input_dropout=$p, recurrent_dropout=$p, rng_collection='recurrent_dropout'), "
        "split_rngs={'params': False, 'dropout': True, 'recurrent_dropout': False}); "
        "apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
        {
            "cell_wrapper": IN | {"recurrent_dropout": P},
            "split_rngs": REC_SPLIT,
            "apply_rngs": ["dropout", "recurrent_dropout"],
        },
    ),
)
# Called eagerly, with the flax_jit mode: jax.jit is documented as a pure performance transformation, so the
# masks must agree. Eager nn.scan recompiles its body on every apply (~2 s), so only a few cases are eager.
LINEN_EAGER = ("lstm-cell_input-split_dropout_true", "lstm-cell_recurrent-split_recurrent_false")
# vmap (one key per example), a batch of one, a checkpoint round trip: the FLIP combination (both sites, in the
# scan) and a time-broadcast mask before nn.RNN, where a per-example key or a missing batch axis could share masks
LINEN_VMAP = ("lstm-cell_input_recurrent-split_recurrent_false", "lstm-dropout_before_rnn-broadcast_time")
LINEN_RATES = ("lstm-dropout_before_rnn", "lstm-cell_input_recurrent-split_recurrent_false")
LINEN_MODES = {
    "flax_jit": lambda c: c.id in LINEN_EAGER,
    "flax_vmap": lambda c: c.id in LINEN_VMAP,
    "batch_one": lambda c: c.id in LINEN_VMAP,
    "reload_state_dict": lambda c: c.id == "lstm-cell_input_recurrent-split_recurrent_false",
    # nn.RNN(unroll=T) and nn.RNN(...)(x, seq_lengths=T) with every sequence full length change how the scan
    # runs, not what it computes: on the FLIP combination, whose recurrent mask is broadcast over the steps
    "scan_unroll": lambda c: c.id == "lstm-cell_input_recurrent-split_recurrent_false",
    "masked": lambda c: c.id == "lstm-cell_input_recurrent-split_recurrent_false",
    # the boundary rates on nn.Dropout's two uses: on the sequence before nn.RNN, and inside the scan on both sites
    # (the FLIP combination); every other spelling reads its rate through the same nn.Dropout
    **{mode: (lambda c: c.id in LINEN_RATES) for mode in RATE_MODES},
}

# ====================================================================================================
# Flax NNX: nnx.RNN over each cell wrapped in the randomness guide's DropoutCell, times each spelling
# ====================================================================================================
NNX_CELLS = {"LSTMCell": "lstm", "OptimizedLSTMCell": "optlstm", "GRUCell": "gru"}
# the guide's own loop on LSTMCell and GRUCell (OptimizedLSTMCell would repeat LSTMCell's masks, at ~25 s a case)
SCAN_CELLS = ("LSTMCell", "GRUCell")
NNX_SPELLINGS = (
    Spelling(
        "input",
        Claim("zaremba", ZAREMBA_IN, doc=f"{FLIP_INPUT} | {NNX_GUIDE}"),
        "nnx.RNN(DropoutCell($cell, nnx.Dropout($p, rngs=rngs)))",
        {"cell_wrapper": {"input_dropout": P, "recurrent_dropout": 0.0}, "rnn": {}},
    ),
    Spelling(
        "input-broadcast_rngs",
        Claim("variational", VARIATIONAL_IN, doc=f"{NNX_GUIDE} | {NNX_DROPOUT_DOC}"),
        "nnx.RNN(DropoutCell($cell, nnx.Dropout($p, rngs=rngs)), broadcast_rngs='dropout')",
        {"cell_wrapper": {"input_dropout": P, "recurrent_dropout": 0.0}, "rnn": {"broadcast_rngs": "dropout"}},
    ),
    Spelling(
        "recurrent-broadcast_rngs",
        Claim("variational", VARIATIONAL_REC, doc=NNX_GUIDE),
        "nnx.RNN(DropoutCell($cell, nnx.Dropout($p, rngs=rngs, rng_collection='recurrent_dropout')), "
        "broadcast_rngs='recurrent_dropout')",
        {
            "cell_wrapper": {"input_dropout": 0.0, "recurrent_dropout": P},
            "rnn": {"broadcast_rngs": "recurrent_dropout"},
        },
    ),
    # -- the randomness guide's own loop: nnx.scan with the recurrent_dropout stream broadcast by nnx.StateAxes
    Spelling(
        "scan_state_axes-recurrent",
        Claim("variational", VARIATIONAL_REC, doc=NNX_SCAN),
        "nnx.scan(in_axes=(nnx.StateAxes({'recurrent_dropout': None, ...: nnx.Carry}), nnx.Carry, 1))"
        "(DropoutCell($cell, nnx.Dropout($p, rngs=rngs, rng_collection='recurrent_dropout')))",
        {"cell_wrapper": {"input_dropout": 0.0, "recurrent_dropout": P}, "scan": "state_axes"},
        cells=SCAN_CELLS,
    ),
    # -- the same loop with the FLIP's combination: input dropout drawn per step from the carried 'dropout' stream
    Spelling(
        "scan_state_axes-input_recurrent",
        Claim("flip_recurrent", FLIP_BOTH, doc=f"{FLIP_INPUT} | {FLIP_RECURRENT} | {NNX_SCAN}"),
        "nnx.scan(in_axes=(nnx.StateAxes({'recurrent_dropout': None, ...: nnx.Carry}), nnx.Carry, 1))"
        "(DropoutCell($cell, nnx.Dropout($p, rngs=rngs), nnx.Dropout($p, rngs=rngs, "
        "rng_collection='recurrent_dropout')))",
        {"cell_wrapper": {"input_dropout": P, "recurrent_dropout": P}, "scan": "state_axes"},
        cells=("LSTMCell",),  # on GRUCell it drops state_in, as gru-scan_state_axes-recurrent shows
    ),
)
# one configuration called eagerly (eager nnx.scan retraces on every call, ~3 s), with the flax_jit mode
NNX_EAGER = ("lstm-recurrent-broadcast_rngs",)
NNX_VMAP = ("lstm-input", "lstm-scan_state_axes-input_recurrent")
NNX_RATES = "lstm-scan_state_axes-input_recurrent"
NNX_MODES = {  # batch_one is measured on linen only: it keeps the masks there and costs ~25 s a case here
    "flax_jit": lambda c: c.id in NNX_EAGER,
    "flax_vmap": lambda c: c.id in NNX_VMAP,
    "reload_state_dict": lambda c: c.id == "lstm-input",
    # the boundary rates on nnx.Dropout, on both of the cell wrapper's uses (input and recurrent), in the guide's loop
    **{mode: (lambda c: c.id == NNX_RATES) for mode in RATE_MODES},
}

# ====================================================================================================
# jax.experimental.rnn: the op's own dropout argument, which a one-layer LSTM does not use
# ====================================================================================================
JAX_RNN = (  # id, function, dropout, label
    ("lstm_ref-dropout_0", "lstm_ref", 0.0, "jax.experimental.rnn.lstm_ref(..., num_layers=1, dropout=0)"),
    ("lstm_ref-dropout_0.25", "lstm_ref", P, "jax.experimental.rnn.lstm_ref(..., num_layers=1, dropout=0.25)"),
    # rnn.lstm is cuDNN's LSTM: it runs only on a GPU backend, so without one its case is skipped with the reason
    ("lstm_cudnn-dropout_0.25", "lstm", P, "jax.experimental.rnn.lstm(..., num_layers=1, dropout=0.25) on a GPU"),
)
JAX_RNN_CLAIM = Claim("none", {}, doc=JAX_RNN_DOC)


def _cell(cell_type: str, b_hn: bool = True) -> Cell:
    return Cell("gru" if cell_type == "GRUCell" else "lstm", WIDTH, WIDTH, reset_after=True, b_hn=b_hn)


def _case(case_id: str, cell: Cell, config: dict, claim: Claim, label: str, flag_group: str | None = None) -> Case:
    return Case(
        id=case_id, cell=cell, config=config, claim=claim, steps=STEPS, batch=BATCH, flag_group=flag_group, label=label
    )


def _eager(case: Case, label: str) -> Case:
    """``case`` called without jit: the eager member of its flax_jit mode group."""
    return replace(case, config=dict(case.config, jit=False), label=label)


def linen_cases(adapter: Adapter) -> list[Case]:
    cases = []
    for cell_type, prefix in LINEN_CELLS.items():
        for s in LINEN_SPELLINGS:
            config = {"cell": {"type": cell_type, "features": WIDTH}} | copy.deepcopy(s.config)
            config["jit"] = True  # users jit their train step; the eager twins check jit changes nothing
            label = Template(s.label).substitute(cell=f"nn.{cell_type}({WIDTH})", p=P)
            group = LINEN_FLAG_PREFIX[cell_type] + s.name if s.flag_group else None
            cases.append(_case(f"{prefix}-{s.name}", _cell(cell_type), config, s.claim, label, group))
    cases = [_eager(c, c.label) if c.id in LINEN_EAGER else c for c in cases]
    return expand(cases, LINEN_MODES, adapter)


def nnx_cases(adapter: Adapter) -> list[Case]:
    cases = []
    for cell_type, prefix in NNX_CELLS.items():
        for s in NNX_SPELLINGS:
            if s.cells is not None and cell_type not in s.cells:
                continue
            config = {"cell": {"type": cell_type, "in_features": WIDTH, "hidden_features": WIDTH}}
            config |= copy.deepcopy(s.config) | {"jit": True}  # users nnx.jit their step
            label = Template(s.label).substitute(cell=f"nnx.{cell_type}({WIDTH}, {WIDTH}, rngs=rngs)", p=P)
            cell = _cell(cell_type, b_hn=cell_type != "GRUCell")  # nnx.GRUCell: dense_h has no bias
            # OptimizedLSTMCell is documented as LSTMCell, "more efficient": the same masks are expected
            group = f"lstm-{s.name}" if cell_type != "GRUCell" else None
            cases.append(_case(f"{prefix}-{s.name}", cell, config, s.claim, label + " under nnx.jit", group))
    cases = [
        _eager(c, c.label.replace(" under nnx.jit", ", called eagerly")) if c.id in NNX_EAGER else c for c in cases
    ]
    return expand(cases, NNX_MODES, adapter)


def jax_rnn_cases() -> list[Case]:
    return [
        _case(
            case_id,
            Cell("lstm", WIDTH, WIDTH),
            {"function": f, "num_layers": 1, "dropout": p, "bidirectional": False},
            JAX_RNN_CLAIM,
            label,
        )
        for case_id, f, p, label in JAX_RNN
    ]

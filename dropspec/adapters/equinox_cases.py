"""The cases of the ``equinox`` adapter, as data, with the documentation their claims rest on.

Equinox documents no recurrent dropout. eqx.nn.LSTMCell and eqx.nn.GRUCell are single steps with no dropout
argument, "often used by wrapping it into a jax.lax.scan" (the GRUCell docs); eqx.nn.Dropout takes an explicit
key; Equinox's RNN example (examples/train_rnn.ipynb) has no dropout, and no example or guide (read at
patrick-kidger/equinox@9336d820) puts Dropout inside a scan. The cases therefore measure the two ways users write
it, at the input and at the state fed to the cell: the key split per step (one key per scan step) and one key per
sequence (the same key at every step). Each claim is the scheme the code's author evidently means: a fresh input
mask per step is Zaremba et al.'s dropout, a mask per sequence Gal and Ghahramani's variational dropout, and
dropout on the recurrent state is meant as recurrent (variational) dropout, whichever way its key is drawn.
"""

from __future__ import annotations

from dataclasses import replace

from ..adapter import Adapter
from ..case import Case, Claim
from ..modes import RATE_MODES, expand
from ..reference import Cell

P = 0.25
STEPS, BATCH, WIDTH = 8, 16, 8

DOCS = "https://docs.kidger.site/equinox"
NO_RECIPE = (
    "Equinox documents no recurrent dropout (no dropout argument on eqx.nn.LSTMCell / GRUCell, no guide or example "
    "with eqx.nn.Dropout inside a scan): no documented claim exists, so this claims what the code's author "
    "evidently means"
)
CELL_DOC = f'eqx.nn.GRUCell: "This is often used by wrapping it into a jax.lax.scan." {DOCS}/api/nn/rnn/'
DROPOUT_DOC = (
    'eqx.nn.Dropout: "During training then dropout is randomly applied; during inference this layer does '
    'nothing." ... "key: A jax.random.PRNGKey used to provide randomness for calculating which elements to '
    f'dropout." {DOCS}/api/nn/dropout/'
)
VMAP_DOC = f'Equinox "Train RNN" example: "pred_y = jax.vmap(model)(x)" {DOCS}/examples/train_rnn/'

# (site, keys): the claim, and how a user writes it ($cell: the cell as written)
SPELLINGS = {
    ("input", "per_step"): (
        Claim("zaremba", {"input": P}, doc=f"{NO_RECIPE}: a fresh input mask per step (Zaremba et al.)."),
        "lax.scan over (x, jax.random.split(key, T)) with x = eqx.nn.Dropout($p)(x, key=k) before $cell",
    ),
    ("input", "per_sequence"): (
        Claim(
            "variational",
            {"input": P, "recurrent": 0.0},
            doc=f"{NO_RECIPE}: one input mask per sequence (Gal and Ghahramani's variational dropout).",
        ),
        "lax.scan with x = eqx.nn.Dropout($p)(x, key=key), the same key at every step, before $cell",
    ),
    ("state", "per_step"): (
        Claim(
            "variational",
            {"input": 0.0, "recurrent": P},
            doc=f"{NO_RECIPE}: dropout on the recurrent state, i.e. recurrent dropout, whose specified form is "
            "variational (a per-step key on the state is the naive recurrent dropout it replaces).",
        ),
        "lax.scan over (x, jax.random.split(key, T)) with h = eqx.nn.Dropout($p)(h, key=k) before $cell",
    ),
    ("state", "per_sequence"): (
        Claim(
            "variational",
            {"input": 0.0, "recurrent": P},
            doc=f"{NO_RECIPE}: one mask per sequence on the recurrent state (Gal and Ghahramani's variational "
            "dropout).",
        ),
        "lax.scan with h = eqx.nn.Dropout($p)(h, key=key), the same key at every step, before $cell",
    ),
}
CELLS = {"LSTMCell": "lstm", "GRUCell": "gru"}  # the case-id prefix
# Call modes (dropspec.modes). One configuration is called eagerly, with the eqx_filter_jit mode (documented as
# jax.jit for a model, a performance transformation, so the masks must agree); every other one is jitted, as users
# jit their step. A batch of one on a key per step at the input and a key per sequence at the input of a GRU, and a
# checkpoint round trip (eqx.tree_serialise_leaves, the documented way to save a model) on the former, where the
# Dropout layer's own fields travel through the file; these are jitted (eagerly, the scan recompiles on every
# call). Not measured, and why (README, Call modes): jax.vmap (every case is vmapped over the batch already:
# Equinox's cells take one sample), an explicit seed (every call already takes its key).
EAGER = ("lstm-state-key_per_sequence",)
MODES = {
    "eqx_filter_jit": lambda c: c.id in EAGER,
    "batch_one": lambda c: c.id in ("lstm-input-key_per_step", "gru-input-key_per_sequence"),
    "eqx_serialise": lambda c: c.id == "lstm-input-key_per_step",
    # the boundary rates on eqx.nn.Dropout in the jitted step loop
    **{mode: (lambda c: c.id == "lstm-input-key_per_step") for mode in RATE_MODES},
}


def equinox_cases(adapter: Adapter) -> list[Case]:
    cases = []
    for cell, prefix in CELLS.items():
        for (site, keys), (claim, label) in SPELLINGS.items():
            config = {
                "cell": cell,
                "input_size": WIDTH,
                "hidden_size": WIDTH,
                "dropout": {"site": site, "keys": keys, "p": P},
                "jit": True,
            }
            written = label.replace("$cell", f"eqx.nn.{cell}({WIDTH}, {WIDTH})").replace("$p", str(P))
            case_id = f"{prefix}-{site}-key_{keys}"
            cases.append(
                Case(
                    id=case_id,
                    cell=Cell("lstm" if cell == "LSTMCell" else "gru", WIDTH, WIDTH),  # GRUCell: PyTorch's, b_hn kept
                    config=config,
                    claim=replace(claim, doc=f"{claim.doc} | {CELL_DOC} | {DROPOUT_DOC} | {VMAP_DOC}"),
                    steps=STEPS,
                    batch=BATCH,
                    label=f"{written}, jax.vmap over the batch (a key per sample), eqx.filter_jit",
                )
            )
    cases = [
        replace(c, config=dict(c.config, jit=False), label=c.label.replace(", eqx.filter_jit", ", called eagerly"))
        if c.id in EAGER
        else c
        for c in cases
    ]
    # the jitted variant of the eager case reads as the user writes it, without "called eagerly"
    expanded = expand(cases, MODES, adapter)
    return [
        replace(c, label=c.label.replace(", called eagerly", "")) if c.mode == "eqx_filter_jit" else c for c in expanded
    ]

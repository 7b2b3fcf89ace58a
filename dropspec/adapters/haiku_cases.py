"""The cases of the ``haiku`` adapter, as data, with the documentation their claims rest on.

Haiku documents no recurrent dropout. hk.LSTM and hk.GRU take no dropout argument; hk.dropout is a function of
an explicit key; no Haiku guide or example (examples/rnn, examples/haiku_lstms.ipynb, examples/rnn_state, read at
google-deepmind/dm-haiku@f4d858a5) puts it inside an unroll, and docs/references.bib lists Gal and Ghahramani
(2016) without any page citing it. The cases therefore measure the two ways users write it in a core that wraps
the stock one, at the input and at the state fed to the core: a key per step (``hk.next_rng_key()`` inside the
step) and a key per sequence (one mask drawn before the unroll). Each claim is the scheme the code's author
evidently means: a fresh input mask per step is Zaremba et al.'s dropout (hk.LSTM's own docstring cites that
paper), a mask per sequence is Gal and Ghahramani's variational dropout, and dropout on the recurrent state is
meant as recurrent (variational) dropout, whichever way its key is drawn.
"""

from __future__ import annotations

from dataclasses import replace

from ..adapter import Adapter
from ..case import Case, Claim
from ..modes import RATE_MODES, expand
from ..reference import Cell

P = 0.25
STEPS, BATCH, WIDTH = 8, 16, 8

API = "https://dm-haiku.readthedocs.io/en/latest/api.html"
NO_RECIPE = (
    "Haiku documents no recurrent dropout (no dropout argument on hk.LSTM / hk.GRU, no guide or example with "
    "hk.dropout inside an unroll): no documented claim exists, so this claims what the code's author evidently means"
)
DROPOUT_DOC = (
    'hk.dropout: "Randomly drop units in the input at a given rate." ... "rng: A JAX random key." ... "Returns: x, '
    f'but dropped out and scaled by 1 / (1 - rate)." {API}#haiku.dropout'
)
NEXT_RNG_DOC = (
    'hk.next_rng_key: "Returns a unique JAX random key split from the current global key." ... "A unique (within a '
    f'call to init or apply) JAX rng key" {API}#haiku.next_rng_key'
)
LSTM_DOC = f'hk.LSTM: "The implementation is based on [Zaremba et al. 2014]" {API}#haiku.LSTM'
UNROLL_DOC = (
    'hk.dynamic_unroll: "A *dynamic* unroll preserves the loop structure when executed inside jax.jit. See '
    'static_unroll for an unroll function which replaces a loop with its body repeated multiple times." '
    f"{API}#haiku.dynamic_unroll"
)

# (site, keys): the claim, and how a user writes it ($core: the core as written)
SPELLINGS = {
    ("input", "per_step"): (
        Claim(
            "zaremba",
            {"input": P},
            doc=f"{NO_RECIPE}: a fresh input mask per step (Zaremba et al.). | "
            f"{LSTM_DOC} | {NEXT_RNG_DOC} | {DROPOUT_DOC}",
        ),
        "a core wrapping $core whose step does x = hk.dropout(hk.next_rng_key(), $p, x)",
    ),
    ("input", "per_sequence"): (
        Claim(
            "variational",
            {"input": P, "recurrent": 0.0},
            doc=f"{NO_RECIPE}: one input mask per sequence (Gal and Ghahramani's variational dropout). | {DROPOUT_DOC}",
        ),
        "m = hk.dropout(hk.next_rng_key(), $p, ones((B, I))) before the unroll; a core wrapping $core does x = x * m",
    ),
    ("state", "per_step"): (
        Claim(
            "variational",
            {"input": 0.0, "recurrent": P},
            doc=f"{NO_RECIPE}: dropout on the recurrent state, i.e. recurrent dropout, whose specified form is "
            f"variational (a per-step key on the state is the naive recurrent dropout it replaces). | {NEXT_RNG_DOC} | "
            f"{DROPOUT_DOC}",
        ),
        "a core wrapping $core whose step does h = hk.dropout(hk.next_rng_key(), $p, h) before the core",
    ),
    ("state", "per_sequence"): (
        Claim(
            "variational",
            {"input": 0.0, "recurrent": P},
            doc=f"{NO_RECIPE}: one mask per sequence on the recurrent state (Gal and Ghahramani's variational "
            f"dropout). | {DROPOUT_DOC}",
        ),
        "m = hk.dropout(hk.next_rng_key(), $p, ones((B, H))) before the unroll; a core wrapping $core does h = h * m",
    ),
}
CORES = {"LSTM": "lstm", "GRU": "gru"}  # the case-id prefix
UNROLLS = ("dynamic", "static")
# Call modes (dropspec.modes). One configuration is called eagerly, with the haiku_jit mode (jax.jit is documented
# as a pure performance transformation, so the masks must agree); every other one is jitted, as users jit their
# step. jax.vmap of the apply (one key per example) and a batch of one on a key per step at the input (in the
# static unroll) and a key per sequence at the state: where a per-example key or a missing batch axis could share
# or drop masks. The unrolls are configurations of their own (hk.dynamic_unroll and hk.static_unroll in one flag
# group: common.flags.performance_only holds them to the same masks). Not measured, and why (README, Call modes):
# a reload (Haiku has no serialisation API: params are a plain mapping of arrays the user saves, and keys are
# explicit), an explicit seed (every call already takes its key), hk.vmap inside the transform (its split_rng=
# decides the keys, as the user's jax.random.split does here).
EAGER = ("lstm-input-key_per_step-dynamic_unroll",)
VMAP = ("lstm-input-key_per_step-static_unroll", "lstm-state-key_per_sequence-dynamic_unroll")
MODES = {
    "haiku_jit": lambda c: c.id in EAGER,
    "haiku_vmap": lambda c: c.id in VMAP,
    "batch_one": lambda c: c.id in VMAP,
    # the boundary rates on hk.dropout inside a jitted unroll
    **{mode: (lambda c: c.id == "lstm-input-key_per_step-static_unroll") for mode in RATE_MODES},
}


def _cell(core: str) -> Cell:
    # hk.GRU applies its reset gate before the matmul, (r * h) @ w_h_a (Cho et al. 2014)
    return Cell("lstm", WIDTH, WIDTH) if core == "LSTM" else Cell("gru", WIDTH, WIDTH, reset_after=False)


def haiku_cases(adapter: Adapter) -> list[Case]:
    cases = []
    for core, prefix in CORES.items():
        for (site, keys), (claim, label) in SPELLINGS.items():
            group = f"{prefix}-{site}-key_{keys}"
            for unroll in UNROLLS:
                config = {
                    "core": core,
                    "hidden_size": WIDTH,
                    "unroll": unroll,
                    "dropout": {"site": site, "keys": keys, "rate": P},
                    "jit": True,
                }
                written = label.replace("$core", f"hk.{core}({WIDTH})").replace("$p", str(P))
                cases.append(
                    Case(
                        id=f"{group}-{unroll}_unroll",
                        cell=_cell(core),
                        config=config,
                        claim=replace(claim, doc=f"{claim.doc} | {UNROLL_DOC}"),
                        steps=STEPS,
                        batch=BATCH,
                        # dynamic and static unrolls are documented as the same loop, compiled differently
                        flag_group=group,
                        label=f"hk.{unroll}_unroll over {written}, jitted apply",
                    )
                )
    eager = ", apply called eagerly"
    cases = [
        replace(c, config=dict(c.config, jit=False), label=c.label.replace(", jitted apply", eager))
        if c.id in EAGER
        else c
        for c in cases
    ]
    # the jitted variant of the eager case reads as the user writes it, without "called eagerly"
    return [
        replace(c, label=c.label.replace(eager, "")) if c.mode == "haiku_jit" else c
        for c in expand(cases, MODES, adapter)
    ]

"""JAX adapters: Flax linen (``flax_linen``), Flax NNX (``flax_nnx``) and ``jax.experimental.rnn`` (``jax_rnn``).

No JAX cell has built-in recurrent dropout: users compose a Dropout layer with the RNG plumbing of a
scan. The cases therefore build the model a user writes after Flax's own documentation (FLIP 2396
"Recurrent Dropout", the ``nn.scan`` / ``nn.RNN`` / ``nn.Dropout`` API docs, the NNX randomness
guide) and let the suite measure which of those spellings give a fresh mask per step or one per
sequence, per sample or shared. Each Flax model is written once, as the framework-only repro snippet
of its case (``linen_snippet``, ``nnx_snippet``), and the adapters' ``run`` executes that very text.

JAX, Flax and jaxlib are imported inside methods and snippets only, so this module imports without them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from ..reference import Cell, Params, Trace
from .base import Adapter, CallInputs, Case, Claim

P = 0.25
STEPS, BATCH, WIDTH = 16, 32, 8
INSTALL = "`pip install jax==0.10.2 jaxlib==0.10.2 flax==0.12.8`, or run `tox -e jax`"

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

CELL_KIND = {"LSTMCell": "lstm", "OptimizedLSTMCell": "lstm", "GRUCell": "gru"}


class UnrepresentableParams(ValueError):
    """The framework's cell has no parameter for a canonical one that is not zero."""


def _cell(cell_type: str, b_hn: bool = True) -> Cell:
    return Cell(CELL_KIND[cell_type], WIDTH, WIDTH, reset_after=True, b_hn=b_hn)


def _jax_versions() -> dict[str, str]:
    out = {}
    for package in ("jax", "jaxlib", "flax"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def _missing(module: str) -> str | None:
    try:
        __import__(module)
    except ImportError as exc:
        return f"{module} is not installed ({exc}): {INSTALL}"
    return None


def _f32(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


# ====================================================================================================
# Flax linen
# ====================================================================================================


def _linen_case(
    name: str,
    cell_type: str,
    claim: Claim,
    label: str,
    *,
    before: dict | None = None,
    input_rate: float = 0.0,
    recurrent_rate: float = 0.0,
    split_rngs: dict | None = None,
    apply_rngs: Sequence[str] = ("dropout",),
    flag_group: str | None = None,
) -> Case:
    config: dict[str, Any] = {"cell": {"type": cell_type, "features": WIDTH}}
    if before:
        config["dropout_before_rnn"] = before
    if input_rate or recurrent_rate:
        config["cell_wrapper"] = {
            "input_dropout": input_rate,
            "recurrent_dropout": recurrent_rate,
            "recurrent_rng_collection": "recurrent_dropout",
        }
    if split_rngs is not None:
        config["split_rngs"] = split_rngs
    config["apply_rngs"] = list(apply_rngs)
    config["jit"] = True  # users jit their train step; the eager twins below check jit changes nothing
    kind = "optlstm" if cell_type == "OptimizedLSTMCell" else CELL_KIND[cell_type]
    return Case(
        id=f"{kind}-{name}",
        cell=_cell(cell_type),
        config=config,
        claim=claim,
        steps=STEPS,
        batch=BATCH,
        label=label,
        flag_group=flag_group,
    )


def linen_cases() -> list[Case]:
    cases: list[Case] = []
    for cell_type in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        kind = "optlstm" if cell_type == "OptimizedLSTMCell" else CELL_KIND[cell_type]
        c = f"nn.{cell_type}({WIDTH})"
        # -- nn.Dropout on the whole (B, T, F) sequence, before nn.RNN --------------------------
        cases.append(
            _linen_case(
                "dropout_before_rnn",
                cell_type,
                Claim("zaremba", {"input": P}, doc=f"{FLIP_INPUT} | {DROPOUT_DOC}"),
                f"nn.RNN({c})(nn.Dropout({P})(x)); apply(rngs={{'dropout': k}})",
                before={"rate": P, "broadcast_dims": []},
                flag_group=f"{kind}-dropout_before_rnn",
            )
        )
        cases.append(
            _linen_case(
                "dropout_before_rnn-broadcast_time",
                cell_type,
                Claim("variational", {"input": P, "recurrent": 0.0}, doc=DROPOUT_DOC),
                f"nn.RNN({c})(nn.Dropout({P}, broadcast_dims=(1,))(x)); apply(rngs={{'dropout': k}})",
                before={"rate": P, "broadcast_dims": [1]},
                flag_group=f"{kind}-dropout_before_rnn-broadcast_time",
            )
        )
        # -- input dropout inside a cell wrapper, i.e. inside nn.scan -----------------------------
        wrap_in = f"nn.RNN(DropoutCell({c}, input_dropout={P})"
        cases.append(
            _linen_case(
                "cell_input-split_default-rngs_dropout",
                cell_type,
                Claim("zaremba", {"input": P}, doc=f"{FLIP_INPUT} | {RNN_DOC} | {SHARP_BITS}"),
                f"{wrap_in}); apply(rngs={{'dropout': k}})",
                input_rate=P,
            )
        )
        cases.append(
            _linen_case(
                "cell_input-split_default-rngs_params_dropout",
                cell_type,
                Claim("zaremba", {"input": P}, doc=f"{FLIP_INPUT} | {RNN_DOC}"),
                f"{wrap_in}); apply(rngs={{'params': k1, 'dropout': k2}})",
                input_rate=P,
                apply_rngs=("params", "dropout"),
            )
        )
        cases.append(
            _linen_case(
                "cell_input-split_dropout_true",
                cell_type,
                Claim("zaremba", {"input": P}, doc=f"{FLIP_INPUT} | {SCAN_DOC}"),
                f"{wrap_in}, split_rngs={{'params': False, 'dropout': True}}); apply(rngs={{'dropout': k}})",
                input_rate=P,
                split_rngs={"params": False, "dropout": True},
                flag_group=f"{kind}-cell_input-split_dropout_true",
            )
        )
        cases.append(
            _linen_case(
                "cell_input-split_dropout_false",
                cell_type,
                Claim("variational", {"input": P, "recurrent": 0.0}, doc=SCAN_DOC),
                f"{wrap_in}, split_rngs={{'params': False, 'dropout': False}}); apply(rngs={{'dropout': k}})",
                input_rate=P,
                split_rngs={"params": False, "dropout": False},
            )
        )
        # -- recurrent dropout on h inside the wrapper, its own 'recurrent_dropout' collection -----
        wrap_rec = f"nn.RNN(DropoutCell({c}, recurrent_dropout={P}, rng_collection='recurrent_dropout')"
        variational = Claim("variational", {"input": 0.0, "recurrent": P}, doc=FLIP_RECURRENT)
        cases.append(
            _linen_case(
                "cell_recurrent-split_default-rngs_dropout_recurrent",
                cell_type,
                variational,
                f"{wrap_rec}); apply(rngs={{'dropout': k1, 'recurrent_dropout': k2}})",
                recurrent_rate=P,
                apply_rngs=("dropout", "recurrent_dropout"),
            )
        )
        cases.append(
            _linen_case(
                "cell_recurrent-split_default-rngs_params_dropout_recurrent",
                cell_type,
                variational,
                f"{wrap_rec}); apply(rngs={{'params': k1, 'dropout': k2, 'recurrent_dropout': k3}})",
                recurrent_rate=P,
                apply_rngs=("params", "dropout", "recurrent_dropout"),
            )
        )
        cases.append(
            _linen_case(
                "cell_recurrent-split_flip",
                cell_type,
                Claim("variational", {"input": 0.0, "recurrent": P}, doc=f"{FLIP_RECURRENT} | {SCAN_DOC}"),
                f"{wrap_rec}, split_rngs={{'dropout': True, 'recurrent_dropout': False}}); "
                "apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
                recurrent_rate=P,
                split_rngs={"dropout": True, "recurrent_dropout": False},
                apply_rngs=("dropout", "recurrent_dropout"),
            )
        )
        cases.append(
            _linen_case(
                "cell_recurrent-split_recurrent_false",
                cell_type,
                Claim("variational", {"input": 0.0, "recurrent": P}, doc=f"{FLIP_RECURRENT} | {SCAN_DOC}"),
                f"{wrap_rec}, split_rngs={{'params': False, 'dropout': True, 'recurrent_dropout': False}}); "
                "apply(rngs={'dropout': k1, 'recurrent_dropout': k2})",
                recurrent_rate=P,
                split_rngs={"params": False, "dropout": True, "recurrent_dropout": False},
                apply_rngs=("dropout", "recurrent_dropout"),
                flag_group=f"{kind}-cell_recurrent-split_recurrent_false",
            )
        )
    # eager twins: jax.jit is documented as a pure performance transformation, so the masks must agree.
    # Eager nn.scan recompiles its body on every apply (~2 s), so only a few cases get a twin.
    eager = ("lstm-cell_input-split_dropout_true", "lstm-cell_recurrent-split_recurrent_false")
    twins = [
        replace(case, id=case.id + "-nojit", config=dict(case.config, jit=False), label=case.label + " without jax.jit")
        for case in cases
        if case.id in eager
    ]
    # LSTMCell and OptimizedLSTMCell share flag groups: OptimizedLSTMCell is documented as the same
    # cell, "more efficient", with "parameters compatible with LSTMCell"
    return [
        replace(case, flag_group="lstm-" + case.flag_group.removeprefix("optlstm-")) if case.flag_group else case
        for case in cases + twins
    ]


class _JaxAdapter(Adapter):
    """What the three JAX adapters share: float32, the JAX versions, the backend JAX runs on."""

    dtype = np.float32

    def versions(self) -> dict[str, str]:
        return _jax_versions()

    def device(self) -> str:
        import jax

        return jax.default_backend()


class _SnippetAdapter(_JaxAdapter):
    """An adapter whose ``run`` executes the case's repro snippet, so the bug report and the suite cannot drift."""

    def __init__(self) -> None:
        self._cases: list[Case] | None = None
        self._snippets: dict[str, dict[str, Any]] = {}

    def snippet(self, case: Case) -> str:
        raise NotImplementedError

    def repro(self, case: Case) -> str | None:
        return self.snippet(case)

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case.id not in self._snippets:  # executed once per case: its jit and its init are reused by each run
            # dont_inherit: compiled as the standalone script is, without this module's __future__ annotations
            # (which would turn the snippet's dataclass fields into strings that linen cannot resolve)
            code = compile(self.snippet(case), f"<repro {self.name} {case.id}>", "exec", dont_inherit=True)
            namespace: dict[str, Any] = {"__name__": f"dropspec_repro_{case.id}"}
            exec(code, namespace)
            self._snippets[case.id] = namespace
        fns = self._snippets[case.id]
        model = fns["build"](seed)
        try:
            fns["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
        except ValueError as exc:
            # the snippet refuses parameters the framework's cell cannot hold (nnx.GRUCell has no b_hn: its
            # cases declare Cell(b_hn=False), so the core keeps it 0; this guards a case that forgets to)
            raise UnrepresentableParams(str(exc)) from exc
        return [Trace(*fns["call"](model, c.x, c.h0, c.c0, training)) for c in calls]


class FlaxLinenAdapter(_SnippetAdapter):
    """Flax linen: nn.RNN over LSTMCell / OptimizedLSTMCell / GRUCell, with nn.Dropout where users put it."""

    name = "flax_linen"
    framework = "flax.linen"

    def snippet(self, case: Case) -> str:
        return linen_snippet(case)

    def unavailable_reason(self) -> str | None:
        return _missing("flax.linen")

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = linen_cases()
        return self._cases


# ====================================================================================================
# Flax NNX
# ====================================================================================================


def _nnx_case(
    name: str,
    cell_type: str,
    claim: Claim,
    label: str,
    *,
    input_rate: float = 0.0,
    recurrent_rate: float = 0.0,
    broadcast: str | None = None,
) -> Case:
    kind = "optlstm" if cell_type == "OptimizedLSTMCell" else CELL_KIND[cell_type]
    config: dict[str, Any] = {
        "cell": {"type": cell_type, "in_features": WIDTH, "hidden_features": WIDTH},
        "cell_wrapper": {"input_dropout": input_rate, "recurrent_dropout": recurrent_rate},
        "rnn": {"broadcast_rngs": broadcast} if broadcast else {},
        "jit": True,  # users nnx.jit their train step; the eager twin checks jit changes nothing
    }
    return Case(
        id=f"{kind}-{name}",
        cell=_cell(cell_type, b_hn=cell_type != "GRUCell"),  # nnx.GRUCell: dense_h has no bias
        config=config,
        claim=claim,
        steps=STEPS,
        batch=BATCH,
        label=label + " under nnx.jit",
        # OptimizedLSTMCell is documented as LSTMCell, "more efficient": the same masks are expected
        flag_group=f"lstm-{name}" if kind in ("lstm", "optlstm") else None,
    )


def nnx_cases() -> list[Case]:
    cases = []
    for cell_type in ("LSTMCell", "OptimizedLSTMCell", "GRUCell"):
        c = f"nnx.{cell_type}({WIDTH}, {WIDTH}, rngs=rngs)"
        cases += [
            _nnx_case(
                "input",
                cell_type,
                Claim("zaremba", {"input": P}, doc=f"{FLIP_INPUT} | {NNX_GUIDE}"),
                f"nnx.RNN(DropoutCell({c}, nnx.Dropout({P}, rngs=rngs)))",
                input_rate=P,
            ),
            _nnx_case(
                "input-broadcast_rngs",
                cell_type,
                Claim("variational", {"input": P, "recurrent": 0.0}, doc=f"{NNX_GUIDE} | {NNX_DROPOUT_DOC}"),
                f"nnx.RNN(DropoutCell({c}, nnx.Dropout({P}, rngs=rngs)), broadcast_rngs='dropout')",
                input_rate=P,
                broadcast="dropout",
            ),
            _nnx_case(
                "recurrent-broadcast_rngs",
                cell_type,
                Claim("variational", {"input": 0.0, "recurrent": P}, doc=NNX_GUIDE),
                f"nnx.RNN(DropoutCell({c}, nnx.Dropout({P}, rngs=rngs, rng_collection='recurrent_dropout')), "
                "broadcast_rngs='recurrent_dropout')",
                recurrent_rate=P,
                broadcast="recurrent_dropout",
            ),
        ]
    # one eager twin (eager nnx.scan retraces on every call, ~3 s): jit must not change the masks
    twin = next(c for c in cases if c.id == "lstm-recurrent-broadcast_rngs")
    cases.append(
        replace(
            twin,
            id=twin.id + "-nojit",
            config=dict(twin.config, jit=False),
            label=twin.label.replace(" under nnx.jit", " without nnx.jit"),
        )
    )
    return cases


class FlaxNNXAdapter(_SnippetAdapter):
    """Flax NNX: nnx.RNN over nnx.LSTMCell / OptimizedLSTMCell / GRUCell with nnx.Dropout in a cell."""

    name = "flax_nnx"
    framework = "flax.nnx"

    def snippet(self, case: Case) -> str:
        return nnx_snippet(case)

    def unavailable_reason(self) -> str | None:
        return _missing("flax.nnx")

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = nnx_cases()
        return self._cases


# ====================================================================================================
# jax.experimental.rnn
# ====================================================================================================


def jax_rnn_cases() -> list[Case]:
    cell = Cell("lstm", WIDTH, WIDTH)
    out = []
    for rate in (0.0, P):
        out.append(
            Case(
                id=f"lstm_ref-dropout_{rate:g}",
                cell=cell,
                config={"function": "lstm_ref", "num_layers": 1, "dropout": rate, "bidirectional": False},
                claim=Claim("none", {}, doc=JAX_RNN_DOC),
                steps=STEPS,
                batch=BATCH,
                label=f"jax.experimental.rnn.lstm_ref(..., num_layers=1, dropout={rate:g})",
            )
        )
    # rnn.lstm is cuDNN's LSTM: it runs only on a GPU backend, so without one its case is skipped with the reason
    out.append(
        Case(
            id=f"lstm_cudnn-dropout_{P:g}",
            cell=cell,
            config={"function": "lstm", "num_layers": 1, "dropout": P, "bidirectional": False},
            claim=Claim("none", {}, doc=JAX_RNN_DOC),
            steps=STEPS,
            batch=BATCH,
            label=f"jax.experimental.rnn.lstm(..., num_layers=1, dropout={P:g}) on a GPU",
        )
    )
    return out


def _trace(cell: Cell, y: Any, carry: Any) -> Trace:
    y = np.swapaxes(np.asarray(y, dtype=np.float64), 0, 1)
    if cell.kind == "lstm":
        c, h = carry
        return Trace(y=y, h=np.asarray(h, np.float64), c=np.asarray(c, np.float64))
    return Trace(y=y, h=np.asarray(carry, np.float64))


class JaxRNNAdapter(_JaxAdapter):
    """jax.experimental.rnn.lstm_ref, the pure-JAX reference of the cuDNN LSTM (CPU)."""

    name = "jax_rnn"
    framework = "jax.experimental.rnn"

    def repro(self, case: Case) -> str | None:
        return jax_rnn_snippet(case)

    def unavailable_reason(self) -> str | None:
        return _missing("jax.experimental.rnn")

    def cases(self) -> Sequence[Case]:
        return jax_rnn_cases()

    def case_unavailable(self, case: Case) -> str | None:
        if case.config["function"] != "lstm":
            return None
        import jax

        if jax.default_backend() not in ("gpu", "cuda", "rocm"):
            backend = jax.default_backend()
            return f"needs a GPU: jax.experimental.rnn.lstm runs on cuDNN, and JAX's backend here is {backend}"
        return None

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        import jax.numpy as jnp
        from jax.experimental import rnn

        cfg, cell = case.config, case.cell
        # one pseudo-layer: torch's (4H, I), (4H, H), b_ih, b_hh, gate order i, f, g, o, two biases
        w_ih, w_hh = {0: jnp.asarray(_f32(params.w_ih))}, {0: jnp.asarray(_f32(params.w_hh))}
        b_ih, b_hh = {0: jnp.asarray(_f32(params.b_ih))}, {0: jnp.asarray(_f32(params.b_hh))}
        # the op has neither a key nor a training flag: ``seed`` and ``training`` cannot reach it
        out = []
        for call in calls:
            x = jnp.asarray(np.swapaxes(call.x, 0, 1), jnp.float32)  # batch-first
            lengths = jnp.full((x.shape[0],), x.shape[1], jnp.int32)
            if cfg["function"] == "lstm":  # cuDNN's flat layout: W_ih, W_hh, then b_ih, b_hh (unpack_lstm_weights)
                flat = jnp.concatenate([w_ih[0].ravel(), w_hh[0].ravel(), b_ih[0], b_hh[0]])
                h0, c0 = jnp.asarray(call.h0, jnp.float32)[None], jnp.asarray(call.c0, jnp.float32)[None]
                args = (cell.input_size, cell.hidden_size, cfg["num_layers"], cfg["dropout"], cfg["bidirectional"])
                y, h_n, c_n = rnn.lstm(x, h0, c0, flat, lengths, *args)
                out.append(_trace(cell, y, (c_n[0], h_n[0])))
                continue
            y, h_n, c_n = rnn.lstm_ref(
                x,
                jnp.asarray(call.h0, jnp.float32)[None],
                jnp.asarray(call.c0, jnp.float32)[None],
                w_ih,
                w_hh,
                b_ih,
                b_hh,
                lengths,
                cell.input_size,
                cell.hidden_size,
                cfg["num_layers"],
                cfg["dropout"],
                cfg["bidirectional"],
            )
            out.append(_trace(cell, y, (c_n[0], h_n[0])))
        return out


# --- the models, framework only: the repro snippets, which the flax adapters' run() executes -------
LINEN_CELL_WRAPPER = '''

class DropoutCell(nn.RNNCellBase):
    """Input dropout on x_t and recurrent dropout on the h fed to the cell, each with its own rng stream."""

    cell: nn.RNNCellBase
    lstm: bool
    input_rate: float = 0.0
    recurrent_rate: float = 0.0
    recurrent_rng: str = "recurrent_dropout"
    deterministic: bool = True

    @nn.compact
    def __call__(self, carry, x):
        if self.input_rate:
            x = nn.Dropout(self.input_rate, deterministic=self.deterministic)(x)
        if self.recurrent_rate:
            drop = nn.Dropout(self.recurrent_rate, deterministic=self.deterministic, rng_collection=self.recurrent_rng)
            carry = (carry[0], drop(carry[1])) if self.lstm else drop(carry)
        return self.cell(carry, x)

    @property
    def num_feature_axes(self):
        return 1
'''


def linen_snippet(case: Case) -> str:
    """``build(seed)``, ``load(...)``, ``call(...)`` for a flax_linen case, with flax only. ``FlaxLinenAdapter.run``
    executes this text: it is the model the suite measures. It is executed once per case, so the jit (at module
    level) and the init (cached) are done once, as in a user's training loop."""
    cfg, cell = case.config, case.cell
    lstm = cell.kind == "lstm"
    before, wrapper, split = cfg.get("dropout_before_rnn"), cfg.get("cell_wrapper"), cfg.get("split_rngs")
    body = []
    if before:
        body.append(
            f"        x = nn.Dropout({before['rate']!r}, broadcast_dims={tuple(before.get('broadcast_dims', ()))!r}, "
            "deterministic=not train)(x)"
        )
    body.append(f"        cell = nn.{cfg['cell']['type']}({cfg['cell']['features']})")
    if wrapper:
        body.append(
            f"        cell = DropoutCell(cell, {lstm}, {wrapper['input_dropout']!r}, {wrapper['recurrent_dropout']!r}, "
            f"{wrapper['recurrent_rng_collection']!r}, deterministic=not train)"
        )
    body.append("        carry0 = (c0, h0)  # Flax's LSTM carry is (c, h)" if lstm else "        carry0 = h0")
    kwargs = "" if split is None else f", split_rngs={split!r}"
    body.append(f"        return nn.RNN(cell, return_carry=True{kwargs})(x, initial_carry=carry0)")
    if cfg.get("jit"):
        apply = "apply = jax.jit(net.apply, static_argnums=(4,))  # users jit their train step"
    else:
        apply = "apply = net.apply  # eager: no jax.jit"
    if lstm:
        load_body = [
            "    # per gate: input kernel (I, H), hidden kernel (H, H) with the one bias b_ih + b_hh",
            '    target = find(model["variables"]["params"], {"ii", "hi", "if", "hf"})',
            '    for k, g in enumerate("ifgo"):',
            "        rows = slice(k * H, (k + 1) * H)",
            '        target[f"i{g}"] = {"kernel": f32(w_ih[rows].T)}',
            '        target[f"h{g}"] = {"kernel": f32(w_hh[rows].T), "bias": f32(b_ih[rows] + b_hh[rows])}',
        ]
    else:
        load_body = [
            "    # GRUCell: ir, iz, in carry the bias; hr, hz none; hn its own (b_hn sits inside r * (...))",
            '    target = find(model["variables"]["params"], {"ir", "iz", "in", "hr", "hz", "hn"})',
            '    for k, g in enumerate("rzn"):',
            "        rows = slice(k * H, (k + 1) * H)",
            '        bias = b_ih[rows] + (b_hh[rows] if g != "n" else 0.0)',
            '        target[f"i{g}"] = {"kernel": f32(w_ih[rows].T), "bias": f32(bias)}',
            '        target[f"h{g}"] = {"kernel": f32(w_hh[rows].T)}',
            '    target["hn"]["bias"] = f32(b_hh[2 * H :])',
        ]
    lines = [
        "import functools",
        "",
        "import flax.linen as nn",
        "import jax",
        "import jax.numpy as jnp",
        "import numpy as np",
        *([LINEN_CELL_WRAPPER.rstrip()] if wrapper else []),
        "",
        "",
        "class Model(nn.Module):",
        "    @nn.compact",
        "    def __call__(self, x, h0, c0, train):",
        *body,
        "",
        "",
        "net = Model()",
        apply,
        "",
        "",
        "def plain(tree):",
        '    return {k: plain(v) for k, v in tree.items()} if hasattr(tree, "items") else tree',
        "",
        "",
        "@functools.cache",
        "def init():",
        '    """The variables tree, init\'ed once: linen modules are stateless, and load overwrites every weight."""',
        f"    x = jnp.zeros(({case.batch}, {case.steps}, {cell.input_size}))",
        f"    h = jnp.zeros(({case.batch}, {cell.hidden_size}))",
        "    return plain(net.init(jax.random.key(0), x, h, h, False))",
        "",
        "",
        "def build(seed):",
        "    # a copy of the variables for load to fill; a user's training loop: one root key, split once per step",
        '    return {"variables": plain(init()), "key": jax.random.key(seed)}',
        "",
        "",
        "def find(tree, names):",
        '    """The sub-dict of the params holding the cell\'s own Dense modules (wherever wrappers put it)."""',
        "    if names <= set(tree):",
        "        return tree",
        "    for value in tree.values():",
        "        found = find(value, names) if isinstance(value, dict) else None",
        "        if found is not None:",
        "            return found",
        "",
        "",
        "def f32(a):",
        "    return np.asarray(a, np.float32)",
        "",
        "",
        "def load(model, w_ih, w_hh, b_ih, b_hh):",
        "    H = w_hh.shape[1]",
        *load_body,
        "",
        "",
        "def call(model, x, h0, c0, training):",
        '    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; nn.RNN is batch-major."""',
        "    x, h0 = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32), jnp.asarray(h0, jnp.float32)",
        "    c0 = jnp.asarray(c0 if c0 is not None else h0, jnp.float32)",
        '    model["key"], step_key = jax.random.split(model["key"])',
        "    if training:",
        f"        streams = {list(cfg['apply_rngs'])!r}",
        "        rngs = dict(zip(streams, jax.random.split(step_key, len(streams))))",
        '        carry, y = apply(model["variables"], x, h0, c0, True, rngs=rngs)',
        "    else:  # inference: deterministic, no rng passed, as users evaluate",
        '        carry, y = apply(model["variables"], x, h0, c0, False)',
        "    y = np.swapaxes(np.asarray(y, float), 0, 1)",
    ]
    if lstm:
        lines += ["    c, h = carry", "    return y, np.asarray(h, float), np.asarray(c, float)", ""]
    else:
        lines += ["    return y, np.asarray(carry, float), None", ""]
    return "\n".join(lines)


NNX_CELL_WRAPPER = '''

class DropoutCell(nnx.Module):
    """The NNX randomness guide's recurrent-dropout cell around a stock cell: nnx.Dropout on x_t
    ('dropout' stream) and on the h fed to the cell ('recurrent_dropout' stream)."""

    def __init__(self, cell, lstm, input_rate, recurrent_rate, rngs):
        self.cell, self.lstm = cell, lstm
        self.drop_in = nnx.Dropout(input_rate, rngs=rngs) if input_rate else None
        self.drop_h = (
            nnx.Dropout(recurrent_rate, rngs=rngs, rng_collection="recurrent_dropout") if recurrent_rate else None
        )

    def __call__(self, carry, x):
        if self.drop_in is not None:
            x = self.drop_in(x)
        if self.drop_h is not None:
            carry = (carry[0], self.drop_h(carry[1])) if self.lstm else self.drop_h(carry)
        return self.cell(carry, x)

    def initialize_carry(self, input_shape, rngs=None):
        return self.cell.initialize_carry(input_shape, rngs)

    @property
    def num_feature_axes(self):
        return 1
'''


def nnx_snippet(case: Case) -> str:
    """``build(seed)``, ``load(...)``, ``call(...)`` for a flax_nnx case, with flax only. ``FlaxNNXAdapter.run``
    executes this text (once per case, so its nnx.jit is reused by every run): it is the model the suite measures."""
    cfg, cell = case.config, case.cell
    lstm = cell.kind == "lstm"
    cell_type, wrapper = cfg["cell"]["type"], cfg["cell_wrapper"]
    rates = f"{wrapper['input_dropout']!r}, {wrapper['recurrent_dropout']!r}"
    rnn_kwargs = "".join(f", {k}={v!r}" for k, v in cfg["rnn"].items())
    if cell_type == "LSTMCell":
        load_body = [
            "    # per-gate Linear: ii, if_, ig, io (no bias), hi, hf, hg, ho (bias b_ih + b_hh)",
            '    for k, g in enumerate("ifgo"):',
            "        rows = slice(k * H, (k + 1) * H)",
            '        put(getattr(cell, "if_" if g == "f" else f"i{g}"), w_ih[rows].T)',
            '        put(getattr(cell, f"h{g}"), w_hh[rows].T, b_ih[rows] + b_hh[rows])',
        ]
    elif cell_type == "OptimizedLSTMCell":
        load_body = [
            "    # dense_i (I, 4H) no bias, dense_h (H, 4H) with the bias b_ih + b_hh; gate order i, f, g, o",
            "    put(cell.dense_i, w_ih.T)",
            "    put(cell.dense_h, w_hh.T, b_ih + b_hh)",
        ]
    else:
        load_body = [
            "    # dense_i (I, 3H) with bias, dense_h (H, 3H) WITHOUT bias: nnx.GRUCell has no b_hn",
            "    if np.any(b_hh[2 * H :] != 0):",
            "        raise ValueError(",
            '            "flax.nnx.GRUCell has no b_hn (its dense_h has use_bias=False, though its docstring shows "',
            '            "r * (W_hn h + b_hn)): a nonzero b_hh of the n gate cannot be loaded"',
            "        )",
            "    put(cell.dense_i, w_ih.T, b_ih + b_hh)",
            "    put(cell.dense_h, w_hh.T)",
        ]
    if cfg["jit"]:
        forward = ["forward = nnx.jit(forward)  # users nnx.jit their step"]
    else:
        forward = ["# eager: no nnx.jit"]
    carry = "(jnp.asarray(c0, jnp.float32), h0)" if lstm else "h0"  # Flax's LSTM carry is (c, h)
    lines = [
        "import jax",
        "import jax.numpy as jnp",
        "import numpy as np",
        "from flax import nnx",
        NNX_CELL_WRAPPER.rstrip(),
        "",
        "",
        "def forward(rnn, x, carry0):",
        "    return rnn(x, initial_carry=carry0)",
        "",
        "",
        *forward,
        "",
        "",
        "def build(seed):",
        "    # NNX streams are stateful: each call draws new keys from the same module",
        "    k_params, k_drop, k_rec = jax.random.split(jax.random.key(seed), 3)",
        "    rngs = nnx.Rngs(params=k_params, dropout=k_drop, recurrent_dropout=k_rec)",
        f"    cell = nnx.{cell_type}({cfg['cell']['in_features']}, {cfg['cell']['hidden_features']}, rngs=rngs)",
        f"    wrapped = DropoutCell(cell, {lstm}, {rates}, rngs)",
        f'    return {{"cell": cell, "rnn": nnx.RNN(wrapped, return_carry=True{rnn_kwargs})}}',
        "",
        "",
        "def put(linear, kernel, bias=None):",
        "    linear.kernel[...] = jnp.asarray(np.asarray(kernel, np.float32))",
        "    if bias is not None:",
        "        linear.bias[...] = jnp.asarray(np.asarray(bias, np.float32))",
        "",
        "",
        "def load(model, w_ih, w_hh, b_ih, b_hh):",
        '    cell, H = model["cell"], w_hh.shape[1]',
        *load_body,
        "",
        "",
        "def call(model, x, h0, c0, training):",
        '    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; nnx.RNN is batch-major."""',
        '    rnn = model["rnn"]',
        "    if training:",
        "        rnn.train()",
        "    else:  # inference: nnx.Dropout deterministic",
        "        rnn.eval()",
        "    x, h0 = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32), jnp.asarray(h0, jnp.float32)",
        f"    carry, y = forward(rnn, x, {carry})",
        "    y = np.swapaxes(np.asarray(y, float), 0, 1)",
    ]
    if lstm:
        lines += ["    c, h = carry", "    return y, np.asarray(h, float), np.asarray(c, float)", ""]
    else:
        lines += ["    return y, np.asarray(carry, float), None", ""]
    return "\n".join(lines)


def jax_rnn_snippet(case: Case) -> str:
    """``build``, ``load``, ``call`` for a jax_rnn case, with jax only, as ``JaxRNNAdapter.run`` calls it."""
    cfg, cell = case.config, case.cell
    return "\n".join(
        [
            "import jax.numpy as jnp",
            "import numpy as np",
            "from jax.experimental import rnn",
            "",
            "",
            "def build(seed):",
            "    return {}  # lstm_ref takes neither a key nor a training flag: the seed cannot reach it",
            "",
            "",
            "def load(model, w_ih, w_hh, b_ih, b_hh):",
            "    # one layer: PyTorch's (4H, I), (4H, H), b_ih, b_hh, gates i, f, g, o, as dicts by layer",
            '    model["weights"] = [{0: jnp.asarray(np.asarray(a, np.float32))} for a in (w_ih, w_hh, b_ih, b_hh)]',
            "",
            "",
            "def call(model, x, h0, c0, training):",
            "    x = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32)  # batch-first",
            "    lengths = jnp.full((x.shape[0],), x.shape[1], jnp.int32)",
            "    h0, c0 = jnp.asarray(h0, jnp.float32)[None], jnp.asarray(c0, jnp.float32)[None]",
            f"    input_size, hidden_size, num_layers = {cell.input_size}, {cell.hidden_size}, {cfg['num_layers']}",
            f"    dropout, bidirectional = {cfg['dropout']!r}, {cfg['bidirectional']!r}",
            "    y, h_n, c_n = rnn.lstm_ref(",
            '        x, h0, c0, *model["weights"], lengths, input_size, hidden_size, num_layers, dropout,',
            "        bidirectional,",
            "    )",
            "    y = np.swapaxes(np.asarray(y, float), 0, 1)",
            "    return y, np.asarray(h_n[0], float), np.asarray(c_n[0], float)",
            "",
        ]
    )

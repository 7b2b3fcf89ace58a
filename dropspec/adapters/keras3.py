"""Keras 3 (``keras==3.15.1``) on the backend chosen by ``KERAS_BACKEND``: tensorflow, jax or torch.

Keras picks its backend once, when it is first imported, from the ``KERAS_BACKEND`` environment
variable. So there is one adapter class per backend (``keras_tf``, ``keras_jax``, ``keras_torch``),
each of which needs ``KERAS_BACKEND`` to name its backend: it sets the variable itself only when
Keras has not been imported yet and the variable is unset; otherwise ``unavailable_reason`` says
that the running Keras uses another backend.

The same case list and run logic serve tf-keras (Keras 2 as shipped for TensorFlow), see
``tf_keras.py``: the two APIs agree on everything used here (``keras.layers.LSTM``, ``LSTMCell``,
``RNN``, ``Dropout``, a cell's ``kernel``, ``recurrent_kernel`` and ``bias`` variables).

A case's ``config`` is the model as a user writes it:

- ``layer``: the recurrent class in ``keras.layers`` (``"LSTM"`` or ``"LSTMCell"``)
- ``args``: its constructor arguments, verbatim
- ``harness``: ``"layer"`` (the layer itself), ``"rnn"`` (the cell inside ``keras.layers.RNN``,
  whose constructor arguments are ``rnn_args``), ``"loop"`` (the cell called step by step in a
  Python loop, as a custom training loop does) or ``"loop_reset"`` (the same loop, calling the
  cell's documented ``reset_dropout_mask()`` / ``reset_recurrent_dropout_mask()`` after every
  sequence, as ``keras.layers.RNN`` does)
- ``before`` / ``after``: an optional ``{"layer": name, "args": {...}}`` applied to the inputs
  before the recurrent layer, or to the output sequence it returns.
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
    "and step by step (Zaremba et al. drop the output of a layer as the input of the next one). dropspec has no "
    f"scheme for the output site alone; claimed as zaremba at the output site, see notes/keras.md. {DROPOUT_URL}"
)
IMPLEMENTATION_DOC = (
    'implementation: "Implementation mode, either 1 or 2. Mode 1 will structure its operations as a larger number '
    "of smaller dot products and additions, whereas mode 2 will batch them into fewer, larger operations. These "
    'modes will have different performance profiles on different hardware and for different applications." '
    "(tf.keras 2.x docstring; Keras 3 accepts the argument without documenting it)"
)

# Keras GRU gates are (z, r, h); the canonical order is (r, z, n)
GRU_ORDER = (1, 0, 2)
LAYER = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
DROPS = {  # case suffix -> (constructor rates, claimed rates)
    "dropout": ({"dropout": P}, {"input": P, "recurrent": 0.0}),
    "recurrent": ({"recurrent_dropout": P}, {"input": 0.0, "recurrent": P}),
    "both": ({"dropout": P, "recurrent_dropout": P}, {"input": P, "recurrent": P}),
}


def cells(width: int = WIDTH) -> list[Cell]:
    return [
        Cell("rnn", width, width),
        Cell("lstm", width, width),
        Cell("gru", width, width, reset_after=True),
        Cell("gru", width, width, reset_after=False),
    ]


def _cell_args(cell: Cell) -> dict[str, Any]:
    return {"reset_after": cell.reset_after} if cell.kind == "gru" else {}


def _signature(name: str, args: dict[str, Any]) -> str:
    parts = [repr(v) for k, v in args.items() if k == "units"]
    parts += [f"{k}={v!r}" for k, v in args.items() if k != "units"]
    return f"keras.layers.{name}({', '.join(parts)})"


def keras_cases(
    *, use_cudnn: bool, steps: int = STEPS, batch: int = BATCH, width: int = WIDTH, prefix: str = "keras"
) -> list[Case]:
    """Every case of Keras' recurrent dropout, shared by Keras 3 (``use_cudnn`` exists) and tf-keras."""
    out: list[Case] = []
    seq = {"return_sequences": True, "return_state": True}

    def add(cell: Cell, cid: str, config: dict, claim: Claim, label: str, **groups: str | None) -> None:
        out.append(Case(cid, cell, config, claim, steps=steps, batch=batch, label=label, **groups))

    for cell in cells(width):
        url = KERAS_URLS[cell.kind]
        impls = [None] if cell.kind == "rnn" else [1, 2]
        for drop, (rates, claimed) in DROPS.items():
            # use_cudnn only changes the code path when recurrent_dropout is 0 (cuDNN cannot do it)
            cudnns = [None, False] if use_cudnn and cell.kind != "rnn" and drop == "dropout" else [None]
            claim = Claim("variational", claimed, doc=f"{KERAS_RNN_DOC} {url}")
            # the layer: every implementation and use_cudnn value is a performance flag
            for impl in impls:
                for cudnn in cudnns:
                    args: dict[str, Any] = {"units": width, **rates, **_cell_args(cell), **seq}
                    tag = ""
                    if impl is not None:
                        args["implementation"] = impl
                        tag += f"-impl{impl}"
                    if cudnn is not None:
                        args["use_cudnn"] = cudnn
                        tag += "-nocudnn"
                    add(
                        cell,
                        f"{cell.name}-layer-{drop}{tag}",
                        {"layer": LAYER[cell.kind], "args": args, "harness": "layer"},
                        claim,
                        _signature(LAYER[cell.kind], args),
                        flag_group=f"{cell.name}-layer-{drop}",
                        rate_group=f"{cell.name}-layer{tag}",
                    )
            # the cell inside keras.layers.RNN, with the default implementation
            for impl in impls[-1:]:
                args = {"units": width, **rates, **_cell_args(cell)}
                tag = ""
                if impl is not None:
                    args["implementation"] = impl
                    tag = f"-impl{impl}"
                name = LAYER[cell.kind] + "Cell"
                add(
                    cell,
                    f"{cell.name}-rnn_cell-{drop}{tag}",
                    {"layer": name, "args": args, "harness": "rnn", "rnn_args": dict(seq)},
                    claim,
                    f"keras.layers.RNN({_signature(name, args)}, return_sequences=True, return_state=True)",
                    flag_group=f"{cell.name}-rnn_cell-{drop}",
                    rate_group=f"{cell.name}-rnn_cell{tag}",
                )
            # the cell called step by step in a Python loop, over several batches
            for harness in ("loop", "loop_reset"):
                if harness == "loop_reset" and drop != "both":
                    continue
                args = {"units": width, **rates, **_cell_args(cell)}
                name = LAYER[cell.kind] + "Cell"
                how = "cell(x_t, states, training=True) for each t" + (
                    "; cell.reset_dropout_mask() and cell.reset_recurrent_dropout_mask() after each sequence"
                    if harness == "loop_reset"
                    else ", no reset between sequences"
                )
                add(
                    cell,
                    f"{cell.name}-{harness}-{drop}",
                    {"layer": name, "args": args, "harness": harness},
                    claim,
                    f"cell = {_signature(name, args)}; {how}",
                    rate_group=f"{cell.name}-loop" if harness == "loop" else None,
                )

    # The user questions: a Dropout layer around an LSTM instead of its own arguments
    lstm = Cell("lstm", width, width)
    plain = {"units": width, **seq}
    around = [
        (
            "dropout_before",
            "before",
            {"layer": "Dropout", "args": {"rate": P}},
            Claim("zaremba", {"input": P}, DROPOUT_DOC),
        ),
        (
            "spatial_dropout_before",
            "before",
            {"layer": "SpatialDropout1D", "args": {"rate": P}},
            Claim("variational", {"input": P, "recurrent": 0.0}, SPATIAL_DOC),
        ),
        (
            "dropout_noise_b1f_before",
            "before",
            {"layer": "Dropout", "args": {"rate": P, "noise_shape": [batch, 1, width]}},
            Claim("variational", {"input": P, "recurrent": 0.0}, NOISE_DOC),
        ),
        (
            "dropout_noise_11f_before",
            "before",
            {"layer": "Dropout", "args": {"rate": P, "noise_shape": [1, 1, width]}},
            Claim("feature_dropout", {"input": P}, FEATURE_DOC),
        ),
        (
            "dropout_after",
            "after",
            {"layer": "Dropout", "args": {"rate": P}},
            Claim("output_dropout", {"output": P}, AFTER_DOC),
        ),
    ]
    for cid, where, extra, claim in around:
        config = {"layer": "LSTM", "args": dict(plain), "harness": "layer", where: extra}
        wrapped = f"keras.layers.{extra['layer']}({', '.join(f'{k}={v!r}' for k, v in extra['args'].items())})"
        main = _signature("LSTM", plain)
        label = f"{wrapped} -> {main}" if where == "before" else f"{main} -> {wrapped}"
        add(lstm, f"lstm-{cid}", config, claim, label)
    return out


def keras_weights(cell: Cell, params: Params) -> dict[str, np.ndarray]:
    """The canonical parameters as Keras' ``kernel`` (I, G*H), ``recurrent_kernel`` (H, G*H) and ``bias``.

    SimpleRNN and LSTM (gate order i, f, c, o = canonical i, f, g, o) have one bias, b_ih + b_hh. The GRU
    orders its gates z, r, h; with reset_after=True it keeps both biases as ``bias`` of shape (2, 3H) because
    b_hn sits inside r * (W_hn h + b_hn); with reset_after=False one bias of (3H,) holds b_ih + b_hh, which is
    exact because the reset gate multiplies h before the matmul, not the bias."""
    w_ih, w_hh, b_ih, b_hh = params.w_ih, params.w_hh, params.b_ih, params.b_hh
    if cell.kind == "gru":
        h = cell.hidden_size
        rows = np.concatenate([np.arange(k * h, (k + 1) * h) for k in GRU_ORDER])
        w_ih, w_hh, b_ih, b_hh = w_ih[rows], w_hh[rows], b_ih[rows], b_hh[rows]
        bias = np.stack([b_ih, b_hh]) if cell.reset_after else b_ih + b_hh
    else:
        bias = b_ih + b_hh
    return {"kernel": w_ih.T, "recurrent_kernel": w_hh.T, "bias": bias}


def _layer_expr(spec: dict[str, Any]) -> str:
    args = dict(spec["args"])
    if "noise_shape" in args:
        args["noise_shape"] = tuple(args["noise_shape"])
    return _signature(spec["layer"], args)


def keras_load_lines(cell: Cell) -> list[str]:
    """``load`` for a Keras cell: canonical parameters -> kernel, recurrent_kernel, bias (as keras_weights)."""
    lines = ["def load(model, w_ih, w_hh, b_ih, b_hh):"]
    lines += ['    """PyTorch layout and gate order -> kernel, recurrent_kernel, bias."""']
    if cell.kind == "gru":
        lines += [
            "    H = w_hh.shape[1]",
            "    order = np.r_[H : 2 * H, 0:H, 2 * H : 3 * H]  # Keras orders the GRU gates z, r, h",
            "    w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]",
        ]
        if cell.reset_after:
            lines.append("    bias = np.stack([b_ih, b_hh])  # reset_after keeps both biases: b_hn is inside r * (.)")
        else:
            lines.append("    bias = b_ih + b_hh")
    else:
        lines.append("    bias = b_ih + b_hh  # one bias; LSTM gates i, f, c, o = PyTorch's i, f, g, o")
    return lines + [
        '    cell = model["cell"]',
        '    cell.kernel.assign(np.asarray(w_ih, float).T.astype("float32"))',
        '    cell.recurrent_kernel.assign(np.asarray(w_hh, float).T.astype("float32"))',
        '    cell.bias.assign(np.asarray(bias, float).astype("float32"))',
    ]


def keras_snippet(case: Case, header: str, tensor: str, numpy: str, stack: str) -> str:
    """The case as a user writes it, framework only: ``build(seed)``, ``load(...)``, ``call(...)``.
    ``header`` imports the framework as ``keras``; ``tensor``/``numpy``/``stack`` are its conversions.
    The adapter's ``run`` executes this same text, so the repro and the suite cannot drift."""
    cfg, cell = case.config, case.cell
    harness = cfg["harness"]
    lines = [header.strip("\n"), "import numpy as np", "", "", "def build(seed):"]
    # the seed first: layers draw their dropout seeds when constructed
    lines.append("    keras.utils.set_random_seed(seed)")
    lines.append(f"    before = {_layer_expr(cfg['before'])}" if "before" in cfg else "    before = None")
    main = _layer_expr(cfg)
    if harness == "rnn":
        rnn_args = ", ".join(f"{k}={v!r}" for k, v in cfg.get("rnn_args", {}).items())
        main = f"keras.layers.RNN({main}, {rnn_args})"
    lines.append(f"    layer = {main}")
    lines.append(f"    after = {_layer_expr(cfg['after'])}" if "after" in cfg else "    after = None")
    if harness in ("layer", "rnn"):
        lines += [f"    layer.build(({case.batch}, {case.steps}, {cell.input_size}))", "    cell = layer.cell"]
    else:
        lines += [f"    layer.build(({case.batch}, {cell.input_size}))", "    cell = layer"]
    lines += ['    return {"before": before, "layer": layer, "cell": cell, "after": after}', "", ""]
    lines += keras_load_lines(cell)
    lines += [
        "",
        "",
        "def call(model, x, h0, c0, training):",
        '    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64."""',
        "    x = " + tensor.format('np.transpose(x, (1, 0, 2)).astype("float32")'),
        "    state = [" + tensor.format('h0.astype("float32")') + "]",
    ]
    if cell.kind == "lstm":
        lines.append("    state.append(" + tensor.format('c0.astype("float32")') + ")")
    lines += ['    if model["before"] is not None:', '        x = model["before"](x, training=training)']
    if harness in ("layer", "rnn"):
        lines.append('    y, *final = model["layer"](x, initial_state=state, training=training)')
    else:
        lines += [
            '    cell, ys = model["cell"], []',
            "    for t in range(x.shape[1]):  # the cell step by step, the returned state fed to the next step",
            "        y_t, state = cell(x[:, t, :], state, training=training)",
            "        state = list(state) if isinstance(state, (list, tuple)) else [state]",
            "        ys.append(y_t)",
        ]
        if harness == "loop_reset":
            lines += ["    cell.reset_dropout_mask()", "    cell.reset_recurrent_dropout_mask()"]
        lines += [f"    y, final = {stack.format('ys')}, state"]
    lines += [
        '    if model["after"] is not None:',
        '        y = model["after"](y, training=training)',
        f"    y = np.transpose(np.asarray({numpy.format('y')}, float), (1, 0, 2))",
        f"    final = [np.asarray({numpy.format('s')}, float) for s in final]",
        "    return y, final[0], final[1] if len(final) > 1 else None",
        "",
    ]
    return "\n".join(lines)


class KerasFamily(Adapter):
    """What Keras 3 and tf-keras share: cases, and a run that executes the case's repro snippet."""

    dtype = np.float32
    use_cudnn_flag = True  # Keras 3 LSTM and GRU take use_cudnn; tf-keras has no such argument

    def __init__(self, cases: Sequence[Case] | None = None) -> None:
        self._cases = list(cases) if cases is not None else None
        self._snippets: dict[str, dict[str, Any]] = {}

    # -- framework hooks -----------------------------------------------------------------------
    def _keras(self) -> Any:
        raise NotImplementedError

    def snippet(self, case: Case) -> str:
        raise NotImplementedError

    # -- the adapter ---------------------------------------------------------------------------
    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = keras_cases(use_cudnn=self.use_cudnn_flag)
        return self._cases

    def repro(self, case: Case) -> str | None:
        return self.snippet(case)

    def _functions(self, case: Case) -> dict[str, Any]:
        """build, load and call, from executing the case's snippet once."""
        if case.id not in self._snippets:
            namespace: dict[str, Any] = {"__name__": f"dropspec_repro_{case.id}"}
            exec(compile(self.snippet(case), f"<repro {self.name} {case.id}>", "exec"), namespace)
            self._snippets[case.id] = namespace
        return self._snippets[case.id]

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        self._keras()  # raises with the reason when the framework cannot run here
        fns = self._functions(case)
        model = fns["build"](seed)
        fns["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
        traces = []
        for c in calls:
            y, h, c_n = fns["call"](model, c.x, c.h0, c.c0, training)
            traces.append(Trace(y=y, h=h, c=c_n if case.cell.kind == "lstm" else None))
        return traces


# --- Keras 3, one adapter per backend ----------------------------------------------------------------
BACKEND_PACKAGES = {
    "tensorflow": ("tensorflow-cpu==2.21.0", ("tensorflow",)),
    "jax": ("jax==0.10.2 jaxlib==0.10.2", ("jax", "jaxlib")),
    "torch": ("torch==2.13.0", ("torch",)),
}


class Keras3Adapter(KerasFamily):
    """Keras 3 on one backend; the backend comes from ``KERAS_BACKEND``, read by Keras at import."""

    backend = "tensorflow"
    framework = "keras"

    def _env(self) -> str:
        return {"tensorflow": "keras_tf", "jax": "keras_jax", "torch": "keras_torch"}[self.backend]

    def unavailable_reason(self) -> str | None:
        pip, _ = BACKEND_PACKAGES[self.backend]
        if "keras" not in sys.modules:
            # Keras has not chosen a backend yet: choose ours through the documented variable
            os.environ.setdefault("KERAS_BACKEND", self.backend)
        wanted = os.environ.get("KERAS_BACKEND", self.backend)
        if wanted != self.backend:
            return (
                f"KERAS_BACKEND={wanted!r}, but adapter {self.name or self._env()!r} tests Keras 3 on "
                f"{self.backend!r}: Keras reads the backend once at import; run with KERAS_BACKEND={self.backend} "
                f"(or `tox -e {self._env()}`)"
            )
        try:
            import keras
        except Exception as exc:  # ImportError, or a backend that fails to load
            return (
                f"keras 3 with the {self.backend} backend cannot be imported ({type(exc).__name__}: {exc}): "
                f"`pip install keras==3.15.1 {pip}`, or run `tox -e {self._env()}`"
            )
        if not keras.__version__.startswith("3.") or keras.backend.backend() != self.backend:
            return (
                f"keras {keras.__version__} runs on the {keras.backend.backend()!r} backend, not {self.backend!r}: "
                f"set KERAS_BACKEND={self.backend} before Keras is imported (or `tox -e {self._env()}`)"
            )
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in ("keras", *BACKEND_PACKAGES[self.backend][1]):
            for dist in (pkg, f"{pkg}-cpu"):  # TensorFlow's CPU build is the distribution tensorflow-cpu
                try:
                    out[pkg] = version(dist)
                    break
                except PackageNotFoundError:
                    out[pkg] = "missing"
        out["keras_backend"] = self.backend
        return out

    def _keras(self) -> Any:
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        import keras

        return keras

    def snippet(self, case: Case) -> str:
        header = f'import os\n\nos.environ["KERAS_BACKEND"] = "{self.backend}"  # read once, when Keras is imported\n'
        ops = "keras.ops."
        tensor, numpy, stack = ops + "convert_to_tensor({})", ops + "convert_to_numpy({})", ops + "stack({}, axis=1)"
        return keras_snippet(case, header + "import keras", tensor, numpy, stack)


class KerasTFAdapter(Keras3Adapter):
    """Keras 3 on TensorFlow: needs KERAS_BACKEND=tensorflow."""

    name = "keras_tf"
    backend = "tensorflow"


class KerasJaxAdapter(Keras3Adapter):
    """Keras 3 on JAX: needs KERAS_BACKEND=jax."""

    name = "keras_jax"
    backend = "jax"


class KerasTorchAdapter(Keras3Adapter):
    """Keras 3 on PyTorch: needs KERAS_BACKEND=torch."""

    name = "keras_torch"
    backend = "torch"

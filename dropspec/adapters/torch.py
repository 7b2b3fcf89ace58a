"""The PyTorch adapter: ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and the cells driven by user loops.

The module is named ``torch`` (adapter name ``torch``); the framework is imported only inside
functions, through ``importlib.import_module("torch")``, so this file never shadows the real
package and ``import dropspec.adapters.torch`` works without torch installed.

PyTorch's parameter layout *is* the canonical layout (``weight_ih_l0`` etc.), so the mapping is
a copy under ``torch.no_grad()``. Besides the modules' own ``dropout=`` argument (a single-layer
module has none: the documentation says it only acts between layers), the cases include the
dropout users write around the cells and modules: ``nn.Dropout`` on the input at each step
(Zaremba et al. 2014) and a locked mask drawn once per sequence (AWD-LSTM's ``LockedDropout``,
Gal and Ghahramani 2016). Those user loops are ordinary functions below; each case records their
source in ``config["user_code"]``.

Stacks of two and three layers and bidirectional layers are measured; the CUDA cases (cuDNN, and CUDA
with cuDNN disabled) are skipped with the reason where no GPU is present. The third-party adapters also run the
weight-drop wrappers (PyTorch-NLP's WeightDrop, fastai's WeightDropout: DropConnect on ``weight_hh_l0``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..reference import Cell, Params, Trace
from .base import Adapter, CallInputs, Case, Claim

P = 0.25
STEPS, BATCH, WIDTH = 16, 32, 16
MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
CELLS = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}

DOCS = "https://docs.pytorch.org/docs/stable/generated/torch.nn.{}.html"
DROPOUT_DOC = (
    "'dropout: If non-zero, introduces a Dropout layer on the outputs of each {name} layer except the last "
    "layer, with dropout probability equal to dropout. Default: 0' and, for num_layers=1, the constructor "
    "warns 'dropout option adds dropout after all but last recurrent layer, so non-zero dropout expects "
    "num_layers greater than 1' ({url}): a single layer has no layer after it, so nothing is dropped"
)
NN_DROPOUT_DOC = (
    "torch.nn.Dropout: 'During training, randomly zeroes some of the elements of the input tensor with "
    "probability p. The zeroed elements are chosen independently for each forward call ... the outputs are "
    "scaled by a factor of 1/(1-p) during training' (https://docs.pytorch.org/docs/stable/generated/"
    "torch.nn.Dropout.html); applied to x_t at every step it is Zaremba et al. (2014), arXiv:1409.2329"
)
LOCKED_DOC = (
    "AWD-LSTM LockedDropout: 'm = x.data.new(1, x.size(1), x.size(2)).bernoulli_(1 - dropout); mask = m / "
    "(1 - dropout); mask = mask.expand_as(x)' (https://github.com/salesforce/awd-lstm-lm/blob/master/"
    "locked_dropout.py): one mask per sequence, per sample, shared over time (Gal and Ghahramani 2016)"
)
GAL_DOC = (
    LOCKED_DOC + "; the recurrent mask on h_{t-1}, drawn once per sequence and shared by the gates, is the tied "
    "variational LSTM of Gal and Ghahramani (2016), arXiv:1512.05287, written around torch's cell"
)


def _torch() -> Any:
    return importlib.import_module("torch")


# -- user code: dropout as PyTorch users write it around the cells and modules --------------------------------
# These are run verbatim by the adapter; their source is recorded in each case's config.


def locked_dropout(x: Any, p: float, training: bool) -> Any:
    """AWD-LSTM's LockedDropout (salesforce/awd-lstm-lm locked_dropout.py), in today's tensor API:
    one mask of shape (1, B, F) on a time-major (T, B, F) tensor, drawn anew at each call."""
    if not training or not p:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return mask.expand_as(x) * x


def zaremba_cell_loop(cell: Any, drop: Any, x: Any, state: Any) -> tuple[list, Any]:
    """Zaremba et al. (2014): nn.Dropout on the cell's input, a fresh mask at every step."""
    ys = []
    for x_t in x:  # x is time-major (T, B, I)
        state = cell(drop(x_t), state)
        ys.append(state[0] if isinstance(state, tuple) else state)
    return ys, state


def variational_cell_loop(cell: Any, x: Any, state: Any, p_input: float, p_recurrent: float, training: bool):
    """Gal and Ghahramani (2016), tied: one input mask per sequence (LockedDropout) and one mask on the
    h_{t-1} fed to the cell, drawn once per sequence; the carried and returned state stay undropped."""
    x = locked_dropout(x, p_input, training)
    h = state[0] if isinstance(state, tuple) else state
    mask_h = None
    if training and p_recurrent:
        mask_h = h.new_empty(h.shape).bernoulli_(1 - p_recurrent) / (1 - p_recurrent)
    ys = []
    for x_t in x:
        if isinstance(state, tuple):  # LSTMCell: (h, c)
            h, c = state
            state = cell(x_t, (h if mask_h is None else h * mask_h, c))
            ys.append(state[0])
        else:
            state = cell(x_t, state if mask_h is None else state * mask_h)
            ys.append(state)
    return ys, state


USER_CODE = {
    "zaremba_cell": inspect.getsource(zaremba_cell_loop),
    "variational_cell": inspect.getsource(locked_dropout) + "\n\n" + inspect.getsource(variational_cell_loop),
    "locked_module": inspect.getsource(locked_dropout)
    + "\n\ny, (h_n, c_n) = lstm(locked_dropout(x, p, lstm.training))",
    "dropout_module": "drop = nn.Dropout(p)\ny, (h_n, c_n) = lstm(drop(x))",
}


# -- cases -------------------------------------------------------------------------------------------------------


def _cell(kind: str) -> Cell:
    return Cell(kind, WIDTH, WIDTH, reset_after=True)  # torch's GRU is the reset-after (cuDNN) form


def _module_case(kind: str, p: float, variant: str = "") -> Case:
    """``nn.RNN/LSTM/GRU(num_layers=1, dropout=p)`` through one CPU path; ``variant`` toggles one flag."""
    name = MODULES[kind]
    args = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": 1, "dropout": p, "batch_first": False}
    config: dict[str, Any] = {"module": f"torch.nn.{name}", "args": args}
    config.update({"torch.backends.mkldnn.enabled": True, "input": "tensor", "dtype": "float32"})
    if variant == "batch_first":
        args["batch_first"] = True
    elif variant == "native":
        config["torch.backends.mkldnn.enabled"] = False
    elif variant == "packed":
        config["input"] = "PackedSequence"
    elif variant == "float64":
        config["dtype"] = "float64"
    label = f"nn.{name}({WIDTH}, {WIDTH}, num_layers=1, dropout={p}"
    label += ", batch_first=True)" if variant == "batch_first" else ")"
    if variant == "native":
        label = f"with torch.backends.mkldnn.flags(enabled=False): {label}"
    elif variant == "packed":
        label += "(pack_padded_sequence(x, [T] * B))"
    elif variant == "float64":
        label += ".double()"
    url = DOCS.format(name)
    return Case(
        id=f"{kind}-L1-dropout{p}" + (f"-{variant}" if variant else ""),
        cell=_cell(kind),
        config=config,
        claim=Claim("none", {}, doc=DROPOUT_DOC.format(name=name, url=url) if p else f"no dropout argument ({url})"),
        steps=STEPS,
        batch=BATCH,
        # batch_first, PackedSequence with equal lengths and the oneDNN switch change only the layout or the
        # kernel; float64 changes the numbers, so it is not in the group
        flag_group=None if variant == "float64" else f"{kind}-L1-dropout{p}",
        label=label,
        dtype="float64" if variant == "float64" else None,  # judged at float64's tolerance
    )


def _pre_dropout_case(kind: str, pre: str, variant: str = "") -> Case:
    """A user's dropout on the input sequence before a one-layer module (how AWD-LSTM uses LockedDropout)."""
    name = MODULES[kind]
    args = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": 1}
    config: dict[str, Any] = {"module": f"torch.nn.{name}", "args": args, "user_dropout": pre, "p": P}
    config.update({"torch.backends.mkldnn.enabled": variant != "native", "input": "tensor", "dtype": "float32"})
    config["user_code"] = USER_CODE["dropout_module" if pre == "nn.Dropout" else "locked_module"]
    if pre == "nn.Dropout":
        claim = Claim("zaremba", {"input": P}, doc=NN_DROPOUT_DOC)
        label = f"nn.{name}({WIDTH}, {WIDTH})(nn.Dropout({P})(x))"
    else:
        claim = Claim("variational", {"input": P, "recurrent": 0.0}, doc=LOCKED_DOC)
        label = f"nn.{name}({WIDTH}, {WIDTH})(LockedDropout()(x, dropout={P}))"
    if variant == "native":
        label = f"with torch.backends.mkldnn.flags(enabled=False): {label}"
    tag = "dropout" if pre == "nn.Dropout" else "locked"
    return Case(
        id=f"{kind}-{tag}-then-module" + (f"-{variant}" if variant else ""),
        cell=_cell(kind),
        config=config,
        claim=claim,
        steps=STEPS,
        batch=BATCH,
        flag_group=f"{kind}-{tag}-then-module",
        label=label,
    )


def _cell_loop_case(kind: str, loop: str, p_recurrent: float = 0.0, dtype: str = "float32") -> Case:
    """A cell driven step by step by a user loop (see ``zaremba_cell_loop`` and ``variational_cell_loop``)."""
    name = CELLS[kind]
    config: dict[str, Any] = {"module": f"torch.nn.{name}", "args": {"input_size": WIDTH, "hidden_size": WIDTH}}
    config.update({"loop": loop, "p_input": P, "dtype": dtype, "user_code": USER_CODE[loop]})
    if loop == "zaremba_cell":
        claim = Claim("zaremba", {"input": P}, doc=NN_DROPOUT_DOC)
        label = f"for x_t in x: state = nn.{name}({WIDTH}, {WIDTH})(nn.Dropout({P})(x_t), state)"
        case_id, rate_group = f"{kind}cell-zaremba-loop", None
    else:
        config["p_recurrent"] = p_recurrent
        rates = {"input": P, "recurrent": p_recurrent}
        claim = Claim("variational", rates, doc=GAL_DOC if p_recurrent else LOCKED_DOC)
        rec = f", h * mask_h (p={p_recurrent})" if p_recurrent else ""
        label = f"for x_t in LockedDropout()(x, {P}): state = nn.{name}({WIDTH}, {WIDTH})(x_t{rec}, state)"
        case_id = f"{kind}cell-locked-loop" + ("-recurrent" if p_recurrent else "-input_only")
        rate_group = f"{kind}cell-locked-loop"
    if dtype != "float32":
        case_id += f"-{dtype}"
        label += f" in {dtype}"
    return Case(
        id=case_id,
        cell=_cell(kind),
        config=config,
        claim=claim,
        steps=STEPS,
        batch=BATCH,
        rate_group=rate_group,
        label=label,
        dtype="float64" if dtype == "float64" else None,
    )


def torch_cases() -> list[Case]:
    cases = []
    for kind in MODULES:
        for p in (0.0, P):
            # oneDNN is only taken by the float32 LSTM (measured with the profiler: aten::mkldnn_rnn_layer);
            # nn.RNN and nn.GRU run the native kernel whatever torch.backends.mkldnn says
            variants = ["", "batch_first", "packed"] + (["native"] if kind == "lstm" else [])
            cases += [_module_case(kind, p, v) for v in variants]
        cases.append(_module_case(kind, P, "float64"))
        for pre in ("nn.Dropout", "LockedDropout"):
            cases += [_pre_dropout_case(kind, pre, v) for v in ([""] + (["native"] if kind == "lstm" else []))]
        cases.append(_cell_loop_case(kind, "zaremba_cell"))
        cases.append(_cell_loop_case(kind, "variational_cell"))
        if kind != "gru":
            # nn.GRUCell uses the h it is given for the recurrent matmul *and* for z * h_{t-1}, so a user's
            # cell(x_t, h * mask_h) also drops the memory path and the initial state: not representable in this
            # core (the initial state would need a mask), measured and described in /work/notes/torch.md
            cases.append(_cell_loop_case(kind, "variational_cell", p_recurrent=P))
    cases.append(_cell_loop_case("lstm", "zaremba_cell", dtype="float64"))
    cases += _stack_cases()
    return cases


def _stack_case(kind: str, layers: int = 2, bidirectional: bool = False, variant: str = "") -> Case:
    """``nn.RNN/LSTM/GRU(num_layers=L, dropout=p[, bidirectional=True])``: where ``dropout=`` is documented
    to act. ``variant``: ``batch_first``, or ``cuda-cudnn`` / ``cuda-native`` (skipped without a GPU)."""
    name = MODULES[kind]
    args = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": layers, "dropout": P}
    args.update({"batch_first": variant == "batch_first", "bidirectional": bidirectional})
    config = {"module": f"torch.nn.{name}", "args": args, "torch.backends.mkldnn.enabled": True}
    config.update({"input": "tensor", "dtype": "float32"})
    if variant.startswith("cuda"):
        config.update({"device": "cuda", "torch.backends.cudnn.enabled": variant == "cuda-cudnn"})
    directions = 2 if bidirectional else 1
    doc = DROPOUT_DOC.format(name=name, url=DOCS.format(name)).split("' and, for num_layers=1")[0] + "'"
    if layers == 1:
        claim = Claim("none", {}, doc=DROPOUT_DOC.format(name=name, url=DOCS.format(name)))
    else:
        doc += ": a fresh standard Dropout on each layer's outputs but the last's, i.e. on the input of the layers"
        doc += " above (Zaremba et al. 2014)"
        rates = {f"input@{n}{r}": P for n in range(2, layers + 1) for r in ("", "r")[:directions]}
        claim = Claim("zaremba", rates, doc=doc)
    bi = ", bidirectional=True" if bidirectional else ""
    label = f"nn.{name}({WIDTH}, {WIDTH}, num_layers={layers}, dropout={P}{bi}"
    label += ", batch_first=True)" if variant == "batch_first" else ")"
    if variant.startswith("cuda"):
        label = f"{label}.cuda()" + (
            "" if variant == "cuda-cudnn" else " under torch.backends.cudnn.flags(enabled=False)"
        )
    return Case(
        id=f"{kind}-L{layers}{'-bi' if bidirectional else ''}-dropout{P}" + (f"-{variant}" if variant else ""),
        cell=Cell(kind, WIDTH, WIDTH, reset_after=True, layers=layers, directions=directions),
        config=config,
        claim=claim,
        steps=STEPS,
        batch=BATCH,
        flag_group=f"{kind}-L{layers}-stack" if variant in ("", "batch_first") and not bidirectional else None,
        label=label,
    )


def _stack_cases() -> list[Case]:
    """Stacks of 2 and 3 layers, bidirectional layers, batch_first, and the CUDA kernels (skipped without a GPU)."""
    cases = []
    for kind in MODULES:
        cases += [_stack_case(kind), _stack_case(kind, 3), _stack_case(kind, 1, bidirectional=True)]
        cases.append(_stack_case(kind, 2, bidirectional=True))
    cases.append(_stack_case("lstm", variant="batch_first"))
    cases += [_stack_case("lstm", variant=v) for v in ("cuda-cudnn", "cuda-native")]
    return cases


# -- third-party dropout layers, each its own adapter so a missing package never breaks the torch run -----------
# name -> (module, attribute, whether the layer expects batch-first (B, T, F) tensors)
THIRD_PARTY = {
    "torchnlp.nn.LockedDropout": ("torchnlp.nn", "LockedDropout", False),
    "fastai.text.models.awdlstm.RNNDropout": ("fastai.text.models.awdlstm", "RNNDropout", True),
}
TORCHNLP_DOC = (
    "torchnlp.nn.LockedDropout: 'LockedDropout applies the same dropout mask to every time step' "
    "(https://pytorchnlp.readthedocs.io/en/latest/source/torchnlp.nn.html); source: mask = x.new_empty(1, "
    "x.size(1), x.size(2)).bernoulli_(1 - p).div_(1 - p) on (seq, batch, features)"
)
FASTAI_DOC = (
    "fastai RNNDropout: 'Dropout with probability p that is consistent on the seq_len dimension' "
    "(https://docs.fast.ai/text.models.awdlstm.html#rnndropout); source: x * dropout_mask(x.data, "
    "(x.size(0), 1, *x.shape[2:]), p) on batch-first (batch, seq, features)"
)


def third_party_cases(layer: str) -> list[Case]:
    """The third-party locked dropout on the input, then a one-layer module, as AWD-LSTM code uses it."""
    package, attribute, batch_first = THIRD_PARTY[layer]
    doc, tag = (FASTAI_DOC, "fastai") if package.startswith("fastai") else (TORCHNLP_DOC, "torchnlp")
    cases = []
    for kind, name in MODULES.items():
        args = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": 1, "batch_first": batch_first}
        config = {"module": f"torch.nn.{name}", "args": args, "user_dropout": layer, "p": P}
        config.update({"torch.backends.mkldnn.enabled": True, "input": "tensor", "dtype": "float32"})
        layout = "x_bf" if batch_first else "x"
        cases.append(
            Case(
                id=f"{kind}-{tag}-{attribute}-then-module",
                cell=_cell(kind),
                config=config,
                claim=Claim("variational", {"input": P, "recurrent": 0.0}, doc=doc),
                steps=STEPS,
                batch=BATCH,
                label=f"nn.{name}({WIDTH}, {WIDTH}, batch_first={batch_first})({attribute}({P})({layout}))",
            )
        )
    return cases


# -- weight drop (DropConnect on weight_hh_l0, Merity et al. 2017): the AWD-LSTM regularizer as PyPI ships it ------
WEIGHT_DROP_DOCS = {
    "torchnlp.nn.WeightDrop": (
        "torchnlp.nn.WeightDrop: 'The weight-dropped module applies recurrent regularization through a DropConnect "
        "mask on the hidden-to-hidden recurrent weights. ... dropout (float): The probability a weight will be "
        "dropped.' (https://pytorchnlp.readthedocs.io/en/latest/source/torchnlp.nn.html#torchnlp.nn.WeightDrop); "
        "source: w = torch.nn.functional.dropout(raw_w, p=dropout, training=module.training) before every forward"
    ),
    "torchnlp.nn.WeightDropLSTM": (
        "torchnlp.nn.WeightDropLSTM / WeightDropGRU: 'Wrapper around torch.nn.LSTM that adds weight_dropout named "
        "argument. weight_dropout (float): The probability a weight will be dropped.' "
        "(https://pytorchnlp.readthedocs.io/en/latest/source/torchnlp.nn.html); it applies WeightDrop's "
        "F.dropout to every weight_hh_l{k}"
    ),
    "fastai.text.models.awdlstm.WeightDropout": (
        "fastai WeightDropout: 'A module that wraps another layer in which some weights will be replaced by 0 during "
        "training.' weight_p: 'Weight dropout probability', layer_names default 'weight_hh_l0' "
        "(https://docs.fast.ai/text.models.awdlstm.html#weightdropout); source: if self.training: "
        "w = F.dropout(raw_w, p=self.weight_p), the AWD-LSTM weight drop (Merity et al. 2017, arXiv:1708.02182)"
    ),
}
# adapter -> (case tag, wrapper, the kinds it wraps)
WEIGHT_DROP = {
    "torchnlp": [
        ("WeightDrop", "torchnlp.nn.WeightDrop", ("rnn", "lstm", "gru")),
        ("WeightDropLSTM", "torchnlp.nn.WeightDropLSTM", ("lstm",)),
        ("WeightDropGRU", "torchnlp.nn.WeightDropGRU", ("gru",)),
    ],
    "fastai": [("WeightDropout", "fastai.text.models.awdlstm.WeightDropout", ("rnn", "lstm", "gru"))],
}


def weight_drop_cases(adapter: str) -> list[Case]:
    """The package's weight-drop wrapper around a one-layer module, as AWD-LSTM code builds it."""
    cases = []
    for tag, wrapper, kinds in WEIGHT_DROP[adapter]:
        for kind in kinds:
            name = MODULES[kind]
            args = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": 1}
            config: dict[str, Any] = {"module": f"torch.nn.{name}", "args": args, "weight_drop": wrapper, "p": P}
            config.update({"torch.backends.mkldnn.enabled": True, "input": "tensor", "dtype": "float32"})
            if tag == "WeightDrop":
                label = f"WeightDrop(nn.{name}({WIDTH}, {WIDTH}), ['weight_hh_l0'], dropout={P})"
            elif tag == "WeightDropout":
                label = f"WeightDropout(nn.{name}({WIDTH}, {WIDTH}), {P})"
            else:
                label = f"{tag}({WIDTH}, {WIDTH}, weight_dropout={P})"
            own_class = tag in ("WeightDropLSTM", "WeightDropGRU")
            doc = WEIGHT_DROP_DOCS["torchnlp.nn.WeightDropLSTM" if own_class else wrapper]
            cases.append(
                Case(
                    id=f"{kind}-{adapter}-{tag}",
                    cell=_cell(kind),
                    config=config,
                    claim=Claim("weight_drop", {"weight_hh": P}, doc=doc),
                    steps=STEPS,
                    batch=BATCH,
                    label=label,
                )
            )
    return cases


def _build_weight_drop(torch: Any, case: Case) -> tuple[Any, Any, Any]:
    """(what the user calls, the torch module inside, the object holding ``weight_hh_l0_raw``)."""
    cfg = case.config
    package, _, attribute = cfg["weight_drop"].rpartition(".")
    cls = getattr(importlib.import_module(package), attribute)
    if attribute in ("WeightDropLSTM", "WeightDropGRU"):
        module = cls(**cfg["args"], weight_dropout=cfg["p"])
        return module, module, module
    module = getattr(torch.nn, cfg["module"].rsplit(".", 1)[1])(**cfg["args"])
    if attribute == "WeightDrop":  # torchnlp: the raw weight is registered on the wrapped module
        return cls(module, ["weight_hh_l0"], dropout=cfg["p"]), module, module
    wrapper = cls(module, cfg["p"])  # fastai: the raw weight is the wrapper's parameter
    return wrapper, module, wrapper


# -- the adapter ---------------------------------------------------------------------------------------------------


class TorchAdapter(Adapter):
    """PyTorch 2.13 on the CPU: the fused modules through every CPU kernel, and the cells in user loops."""

    name = "torch"
    framework = "pytorch"
    dtype = np.float32

    def __init__(self, cases: Sequence[Case] | None = None) -> None:
        self._cases = list(cases) if cases is not None else None

    def unavailable_reason(self) -> str | None:
        try:
            _torch()
        except ImportError as exc:
            return f"torch is not installed ({exc}): `pip install torch==2.13.0` (the CPU wheel), or run `tox -e torch`"
        return None

    def versions(self) -> dict[str, str]:
        torch = _torch()
        found = re.findall(r"(?:MKL-DNN|oneDNN) v([\d.]+)", torch.__config__.show())
        return {
            "torch": torch.__version__,
            "onednn": found[0] if found and torch.backends.mkldnn.is_available() else "unavailable",
            "numpy": np.__version__,
        }

    def device(self) -> str:
        return "cpu"

    def repro(self, case: Case) -> str | None:
        return torch_snippet(case)

    def case_unavailable(self, case: Case) -> str | None:
        if case.config.get("device") == "cuda" and not _torch().cuda.is_available():
            return "needs a CUDA device: torch.cuda.is_available() is False here"
        return None

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = torch_cases()
        return self._cases

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        torch = _torch()
        dtype = getattr(torch, case.config.get("dtype", "float32"))
        mkldnn = bool(case.config.get("torch.backends.mkldnn.enabled", True))
        with warnings.catch_warnings():
            # the documented num_layers=1 warning, and oneDNN's note about Intel GPUs, on every build
            warnings.filterwarnings("ignore", message="dropout option adds dropout after all but last")
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            cudnn = bool(case.config.get("torch.backends.cudnn.enabled", True))
            with torch.backends.mkldnn.flags(enabled=mkldnn), torch.backends.cudnn.flags(enabled=cudnn):
                torch.manual_seed(seed)  # before building: the init draws, then every mask, come from this seed
                module = self._build(torch, case, dtype)
                self._load(torch, case, module, params)
                module.train(training)
                # a user trains with autograd on and evaluates under no_grad
                grad = torch.enable_grad() if training else torch.no_grad()
                with grad:
                    return [self._call(torch, case, module, c, dtype, training) for c in calls]

    # -- building and loading -------------------------------------------------------------------------------------
    @staticmethod
    def _build(torch: Any, case: Case, dtype: Any) -> Any:
        cls = getattr(torch.nn, case.config["module"].rsplit(".", 1)[1])
        module = cls(**case.config["args"]).to(dtype)
        if "num_layers" in case.config["args"]:
            assert module.num_layers == case.cell.layers and module.bidirectional == (case.cell.directions == 2)
        return module.to(case.config.get("device", "cpu"))

    @staticmethod
    def _load(torch: Any, case: Case, module: Any, params: Params) -> None:
        """Canonical parameters are torch's own layout: copy them, no transpose, no reordering."""
        stack = params if isinstance(params, list) else [params]
        with torch.no_grad():
            for part, p in enumerate(stack):  # parts in torch's own order: l0, l0_reverse, l1, ...
                layer, reverse = divmod(part, case.cell.directions)
                suffix = f"_l{layer}{'_reverse' if reverse else ''}" if "num_layers" in case.config["args"] else ""
                for name, value in (
                    ("weight_ih", p.w_ih),
                    ("weight_hh", p.w_hh),
                    ("bias_ih", p.b_ih),
                    ("bias_hh", p.b_hh),
                ):
                    getattr(module, name + suffix).copy_(torch.as_tensor(value))

    # -- one call -----------------------------------------------------------------------------------------------------
    def _call(self, torch: Any, case: Case, module: Any, call: CallInputs, dtype: Any, training: bool) -> Trace:
        device = case.config.get("device", "cpu")
        x = torch.as_tensor(np.asarray(call.x), dtype=dtype, device=device)
        h0 = torch.as_tensor(np.asarray(call.h0), dtype=dtype, device=device)
        c0 = None if call.c0 is None else torch.as_tensor(np.asarray(call.c0), dtype=dtype, device=device)
        if "loop" in case.config:
            y, h, c = self._cell_loop(torch, case, module, x, h0, c0, training)
        else:
            y, h, c = self._module(torch, case, module, x, h0, c0, training)

        def out(t: Any) -> np.ndarray | None:
            return None if t is None else t.detach().to("cpu", torch.float64).numpy()

        return Trace(y=out(y), h=out(h), c=out(c))

    @staticmethod
    def _module(torch: Any, case: Case, module: Any, x: Any, h0: Any, c0: Any, training: bool) -> tuple:
        cfg = case.config
        pre = cfg.get("user_dropout")
        if pre == "nn.Dropout":
            drop = torch.nn.Dropout(cfg["p"])
            drop.train(training)
            x = drop(x)
        elif pre == "LockedDropout":
            x = locked_dropout(x, cfg["p"], module.training)
        elif pre in THIRD_PARTY:  # a third-party dropout layer, built once per call as a user's model holds it
            package, attribute, batch_first_layer = THIRD_PARTY[pre]
            drop = getattr(importlib.import_module(package), attribute)(cfg["p"])
            drop.train(training)
            x = drop(x.transpose(0, 1)).transpose(0, 1) if batch_first_layer else drop(x)
        stacked = h0.dim() == 3  # a stack's states arrive as (num_layers, B, H), as torch takes them
        hx = (h0 if stacked else h0[None]) if c0 is None else ((h0, c0) if stacked else (h0[None], c0[None]))
        batch_first = cfg["args"].get("batch_first", False)
        if cfg.get("input") == "PackedSequence":
            lengths = [x.shape[0]] * x.shape[1]
            packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=False)
            y, state = module(packed, hx)
            y = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=False)[0]
        elif batch_first:
            y, state = module(x.transpose(0, 1).contiguous(), hx)
            y = y.transpose(0, 1)
        else:
            y, state = module(x, hx)
        h, c = (state, None) if c0 is None else state
        if stacked:
            return y, h, c
        return y, h[0], None if c is None else c[0]

    @staticmethod
    def _cell_loop(torch: Any, case: Case, cell: Any, x: Any, h0: Any, c0: Any, training: bool) -> tuple:
        cfg = case.config
        state = h0 if c0 is None else (h0, c0)
        if cfg["loop"] == "zaremba_cell":
            drop = torch.nn.Dropout(cfg["p_input"])
            drop.train(training)
            ys, state = zaremba_cell_loop(cell, drop, x, state)
        else:
            ys, state = variational_cell_loop(cell, x, state, cfg["p_input"], cfg["p_recurrent"], cell.training)
        h, c = (state, None) if c0 is None else state
        return torch.stack(ys), h, c


class _ThirdPartyAdapter(TorchAdapter):
    """torch plus one third-party package; its own adapter (and tox env) so the torch run never needs it."""

    package, pip, layer = "", "", ""

    def unavailable_reason(self) -> str | None:
        reason = super().unavailable_reason()
        if reason:
            return reason
        try:
            importlib.import_module(THIRD_PARTY[self.layer][0])
        except ImportError as exc:
            return f"{self.package} is not importable ({exc}): `pip install {self.pip}`, or run `tox -e {self.name}`"
        return None

    def versions(self) -> dict[str, str]:
        own = importlib.import_module(self.package)
        return {**super().versions(), self.package: getattr(own, "__version__", "unknown")}

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = third_party_cases(self.layer) + weight_drop_cases(self.name)
        return self._cases

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if "weight_drop" not in case.config:
            return super().run(case, params, calls, seed=seed, training=training)
        torch = _torch()
        with warnings.catch_warnings():
            # the wrappers swap weight_hh_l0 for a plain tensor, so torch warns the weights are not contiguous
            warnings.filterwarnings("ignore", message="RNN module weights are not part of single contiguous")
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            torch.manual_seed(seed)  # before building: the init draws, then every weight mask, come from this seed
            wrapper, module, raw = _build_weight_drop(torch, case)
            with torch.no_grad():  # canonical layout; w_hh goes into the raw weight the wrapper drops from
                module.weight_ih_l0.copy_(torch.as_tensor(params.w_ih))
                module.bias_ih_l0.copy_(torch.as_tensor(params.b_ih))
                module.bias_hh_l0.copy_(torch.as_tensor(params.b_hh))
                raw.weight_hh_l0_raw.copy_(torch.as_tensor(params.w_hh))
            # the user switches modes on the object they hold, as model.train()/model.eval() reaches it
            wrapper.train(training)
            with torch.enable_grad() if training else torch.no_grad():
                return [self._call(torch, case, wrapper, c, torch.float32, training) for c in calls]


class TorchNLPAdapter(_ThirdPartyAdapter):
    """pytorch-nlp 0.5.0: LockedDropout before torch's modules, and WeightDrop / WeightDropLSTM / WeightDropGRU."""

    name, framework = "torchnlp", "pytorch-nlp"
    package, pip, layer = "torchnlp", "pytorch-nlp==0.5.0", "torchnlp.nn.LockedDropout"


class FastaiAdapter(_ThirdPartyAdapter):
    """fastai: RNNDropout before torch's modules, and WeightDropout around them."""

    name, framework = "fastai", "fastai"
    package, pip, layer = "fastai", "fastai==2.8.12", "fastai.text.models.awdlstm.RNNDropout"


# -- repro snippets: the case as a user writes it, torch only -----------------------------------------------------
def torch_snippet(case: Case) -> str | None:
    """``build(seed)``, ``load(...)`` and ``call(...)`` for a one-layer module, plain or inside a weight-drop
    wrapper; None for stacks, user loops and third-party dropout layers (not scripted yet)."""
    cfg = case.config
    if case.cell.stacked or "loop" in cfg or "user_dropout" in cfg or cfg.get("input") != "tensor":
        return None
    cls = cfg["module"].rsplit(".", 1)[1]
    args = ", ".join(f"{k}={v!r}" for k, v in cfg["args"].items())
    dtype = cfg.get("dtype", "float32")
    lines = ["import numpy as np", "import torch"]
    wrapper = cfg.get("weight_drop")
    if wrapper:
        package, _, attribute = wrapper.rpartition(".")
        lines.append(f"from {package} import {attribute}")
    lines += [
        "",
        "",
        "class Model:",
        "    pass",
        "",
        "",
        "def build(seed):",
        "    torch.manual_seed(seed)",
        "    m = Model()",
    ]
    if wrapper and attribute in ("WeightDropLSTM", "WeightDropGRU"):
        lines += [f"    m.module = m.user = m.raw = {attribute}({args}, weight_dropout={cfg['p']!r})"]
    elif wrapper:
        lines += [f"    m.module = torch.nn.{cls}({args})"]
        if attribute == "WeightDrop":  # the raw weight stays on the wrapped module
            lines += [
                f"    m.user = WeightDrop(m.module, ['weight_hh_l0'], dropout={cfg['p']!r})",
                "    m.raw = m.module",
            ]
        else:
            lines += [f"    m.user = m.raw = {attribute}(m.module, {cfg['p']!r})"]
    else:
        lines += [f"    m.module = m.user = torch.nn.{cls}({args}).to(torch.{dtype})"]
    lines += ["    return m", "", "", "def load(m, w_ih, w_hh, b_ih, b_hh):"]
    lines += ["    # torch's layout is the canonical one: a copy", "    with torch.no_grad():"]
    hh = "m.raw.weight_hh_l0_raw" if wrapper else "m.module.weight_hh_l0"
    for target, value in (("m.module.weight_ih_l0", "w_ih"), (hh, "w_hh"), ("m.module.bias_ih_l0", "b_ih")):
        lines.append(f"        {target}.copy_(torch.as_tensor({value}))")
    lines.append("        m.module.bias_hh_l0.copy_(torch.as_tensor(b_hh))")
    batch_first = cfg["args"].get("batch_first", False)
    lines += [
        "",
        "",
        "def call(m, x, h0, c0, training):",
        "    m.user.train(training)  # as model.train() / model.eval() reaches it",
        f"    as_t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.{dtype})",
        "    x = as_t(x)" + (".transpose(0, 1)" if batch_first else "") + "  # x arrives time-major (T, B, I)",
        f"    lstm = {case.cell.kind == 'lstm'!r}",
        "    state = (as_t(h0)[None], as_t(c0)[None]) if lstm else as_t(h0)[None]",
        "    with torch.enable_grad() if training else torch.no_grad():",
        "        y, state = m.user(x, state)",
        "    h, c = state if lstm else (state, None)",
        "    out = lambda t: None if t is None else t.detach().to(torch.float64).numpy()",
        "    return out(y.transpose(0, 1) if "
        + repr(batch_first)
        + " else y), out(h[0]), out(None if c is None else c[0])",
    ]
    return "\n".join(lines) + "\n"

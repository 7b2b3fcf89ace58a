"""The PyTorch cases as data: each a configuration of ``models/torch_model.py`` (its ``CONFIG``), the claim
the documentation makes for it, and how a user writes it. The axes:

- ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` with one layer, ``dropout=`` 0 and 0.25, through every CPU path
  (``LAYOUTS``, ``KERNELS``) and in float64: a single-layer module is documented to drop nothing;
- a user's dropout on the input sequence before a one-layer module (``PRE_DROPOUT``): ``nn.Dropout`` (Zaremba
  et al. 2014) or AWD-LSTM's ``LockedDropout`` (Gal and Ghahramani 2016), and, in their own adapters,
  PyTorch-NLP's ``LockedDropout`` and fastai's ``RNNDropout`` (``THIRD_PARTY``);
- the cells in user loops (``LOOPS``): ``nn.Dropout`` on x_t at every step, or a locked input mask with
  and without a mask on the h_{t-1} fed to the cell; and ESPnet's ``ZoneOutCell`` around each cell (zoneout);
- stacks (``STACKS``), where ``dropout=`` acts between layers: two and three layers, bidirectional layers,
  batch_first, and the CUDA kernels (skipped with the reason where no GPU is present);
- the weight-drop wrappers (``WEIGHT_DROP``): DropConnect on ``weight_hh_l0``, the AWD-LSTM regularizer
  as PyTorch-NLP and fastai ship it.

torch's GRU is the reset-after (cuDNN) form. Ids, labels, claims and groups are what results are keyed by:
change them only with the results.
"""

from __future__ import annotations

from typing import Any

from ..modes import expand
from ..reference import Cell
from .base import Adapter, Case, Claim

P = 0.25
STEPS, BATCH, WIDTH = 16, 32, 16
MODULES = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
CELLS = {"rnn": "RNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}

# -- the documentation the claims rest on (quotes, verbatim) ------------------------------------------------------
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
ZONEOUT_DOC = (
    "ESPnet's Tacotron 2 ZoneOutCell around a torch cell: ':param float zoneout_rate: probability of zoneout'; "
    "'if self.training: mask = h.new(*h.size()).bernoulli_(prob); return mask * h + (1 - mask) * next_h; "
    "else: return prob * h + (1 - prob) * next_h', each part of an LSTM's (h, c) with a mask of its own "
    "(https://github.com/espnet/espnet/blob/056a9ad22936761053243403f1a0ed0a5e09079b/espnet/nets/pytorch_backend/"
    "tacotron2/decoder.py#L20-L54): zoneout, Krueger et al. (2016), arXiv:1606.01305"
)
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
WD_DOC = (
    "torchnlp.nn.WeightDrop: 'The weight-dropped module applies recurrent regularization through a DropConnect "
    "mask on the hidden-to-hidden recurrent weights. ... dropout (float): The probability a weight will be "
    "dropped.' (https://pytorchnlp.readthedocs.io/en/latest/source/torchnlp.nn.html#torchnlp.nn.WeightDrop); "
    "source: w = torch.nn.functional.dropout(raw_w, p=dropout, training=module.training) before every forward"
)
WD_CLASS_DOC = (
    "torchnlp.nn.WeightDropLSTM / WeightDropGRU: 'Wrapper around torch.nn.LSTM that adds weight_dropout named "
    "argument. weight_dropout (float): The probability a weight will be dropped.' "
    "(https://pytorchnlp.readthedocs.io/en/latest/source/torchnlp.nn.html); it applies WeightDrop's "
    "F.dropout to every weight_hh_l{k}"
)
WDO_DOC = (
    "fastai WeightDropout: 'A module that wraps another layer in which some weights will be replaced by 0 during "
    "training.' weight_p: 'Weight dropout probability', layer_names default 'weight_hh_l0' "
    "(https://docs.fast.ai/text.models.awdlstm.html#weightdropout); source: if self.training: "
    "w = F.dropout(raw_w, p=self.weight_p), the AWD-LSTM weight drop (Merity et al. 2017, arXiv:1708.02182)"
)

# -- the axes -------------------------------------------------------------------------------------------------------
LAYOUTS = ("", "batch_first", "packed")  # a time-major tensor, a batch-first one, a PackedSequence
# oneDNN is only taken by the float32 LSTM (measured with the profiler: aten::mkldnn_rnn_layer); nn.RNN and
# nn.GRU run the native kernel whatever torch.backends.mkldnn says, so only the LSTM gets the "native" variant
KERNELS = {"rnn": ("",), "lstm": ("", "native"), "gru": ("",)}
PRE_DROPOUT = {"nn.Dropout": "dropout", "LockedDropout": "locked"}  # layer -> id tag
# (loop, rate of the mask on h_{t-1}). nn.GRUCell uses the h it is given for the recurrent matmul *and* for
# z * h_{t-1}, so a user's cell(x_t, h * mask_h) also drops the memory path and the initial state: not
# representable in this core (the initial state would need a mask), so the GRU has no recurrent-mask loop;
# tests/test_adapter_torch.py measures what it does
LOOPS = {
    "rnn": [("zaremba_cell", 0.0), ("variational_cell", 0.0), ("variational_cell", P)],
    "lstm": [("zaremba_cell", 0.0), ("variational_cell", 0.0), ("variational_cell", P)],
    "gru": [("zaremba_cell", 0.0), ("variational_cell", 0.0)],
}
# kind, layers, bidirectional, variant
STACKS = [(kind, layers, bi, "") for kind in MODULES for layers, bi in ((2, False), (3, False), (1, True), (2, True))]
STACKS += [("lstm", 2, False, v) for v in ("batch_first", "cuda-cudnn", "cuda-native")]
# layer -> (id tag, batch-first layer, documentation)
THIRD_PARTY = {
    "torchnlp.nn.LockedDropout": ("torchnlp", False, TORCHNLP_DOC),
    "fastai.text.models.awdlstm.RNNDropout": ("fastai", True, FASTAI_DOC),
}
# adapter -> (wrapper, the kinds it wraps, how a user writes it, documentation)
WEIGHT_DROP = {
    "torchnlp": [
        ("torchnlp.nn.WeightDrop", MODULES, "WeightDrop(nn.{name}({w}, {w}), ['weight_hh_l0'], dropout={p})", WD_DOC),
        ("torchnlp.nn.WeightDropLSTM", ("lstm",), "WeightDropLSTM({w}, {w}, weight_dropout={p})", WD_CLASS_DOC),
        ("torchnlp.nn.WeightDropGRU", ("gru",), "WeightDropGRU({w}, {w}, weight_dropout={p})", WD_CLASS_DOC),
    ],
    "fastai": [
        ("fastai.text.models.awdlstm.WeightDropout", MODULES, "WeightDropout(nn.{name}({w}, {w}), {p})", WDO_DOC)
    ],
}


# the boundary rates (dropspec.modes, kind "rate") on torch's own dropout code: the stack's dropout= (F.dropout between
# layers, in the fused kernel) and nn.Dropout on the sequence before a module; 1.0 also on the GRU stack. Not every
# case: the other configurations read their rate through the same two calls
RATE_CASES = {
    "rate_zero": ("lstm-L2-dropout0.25", "lstm-dropout-then-module"),
    "rate_tiny": ("lstm-L2-dropout0.25", "lstm-dropout-then-module"),
    "rate_large": ("lstm-L2-dropout0.25", "lstm-dropout-then-module"),
    "rate_one": ("lstm-L2-dropout0.25", "gru-L2-dropout0.25", "lstm-dropout-then-module"),
}

# call modes on the modules whose dropout acts: between the layers of a stack, in both directions; torch.jit.script
# on one-layer modules (it crashes on any nn.LSTM/GRU in torch 2.13, see deviations/torch.yaml, and a one-layer
# case keeps its repro a short script). Not measured, and why (README, Call modes): torch.compile recompiles each
# freshly built module (tens of seconds per case on CPU); torch.jit.trace freezes the traced call's training flag
# into the graph, as its documentation warns; autocast runs in bfloat16, beyond the float32 precision the mask
# probes need
MODE_STACKS = ("lstm-L2-dropout0.25", "gru-L2-dropout0.25", "lstm-L2-bi-dropout0.25")
MODE_CASES = {
    "torch_script": ("lstm-L1-dropout0.25", "gru-L1-dropout0.25"),
    "reload_state_dict": MODE_STACKS,
    "batch_one": MODE_STACKS,
    **RATE_CASES,
}


def _cell(kind: str, layers: int = 1, directions: int = 1) -> Cell:
    return Cell(kind, WIDTH, WIDTH, reset_after=True, layers=layers, directions=directions)


def _module(kind: str, around: dict[str, Any] | None = None, **args: Any) -> dict[str, Any]:
    """A module's CONFIG on the default CPU path (a float32 time-major tensor, oneDNN allowed); ``around``:
    the dropout the user puts around the module."""
    return {
        "module": f"torch.nn.{MODULES[kind]}",
        "args": {"input_size": WIDTH, "hidden_size": WIDTH, **args},
        **(around or {}),
        "torch.backends.mkldnn.enabled": True,
        "input": "tensor",
        "dtype": "float32",
    }


def _case(case_id: str, kind: str, config: dict[str, Any], claim: Claim, label: str, **more: Any) -> Case:
    return Case(case_id, more.pop("cell", _cell(kind)), config, claim, STEPS, BATCH, label=label, **more)


def module_case(kind: str, p: float, variant: str = "") -> Case:
    """``nn.RNN/LSTM/GRU(num_layers=1, dropout=p)`` through one CPU path; ``variant`` toggles one flag."""
    name, url = MODULES[kind], DOCS.format(MODULES[kind])
    config = _module(kind, num_layers=1, dropout=p, batch_first=variant == "batch_first")
    if variant == "native":
        config["torch.backends.mkldnn.enabled"] = False
    elif variant == "packed":
        config["input"] = "PackedSequence"
    elif variant == "float64":
        config["dtype"] = "float64"
    label = f"nn.{name}({WIDTH}, {WIDTH}, num_layers=1, dropout={p}"
    label += ", batch_first=True)" if variant == "batch_first" else ")"
    label = {
        "native": f"with torch.backends.mkldnn.flags(enabled=False): {label}",
        "packed": f"{label}(pack_padded_sequence(x, [T] * B))",
        "float64": f"{label}.double()",
    }.get(variant, label)
    claim = Claim("none", {}, doc=DROPOUT_DOC.format(name=name, url=url) if p else f"no dropout argument ({url})")
    return _case(
        f"{kind}-L1-dropout{p}" + (f"-{variant}" if variant else ""),
        kind,
        config,
        claim,
        label,
        # batch_first, PackedSequence with equal lengths and the oneDNN switch change only the layout or the
        # kernel; float64 changes the numbers, so it is not in the group
        flag_group=None if variant == "float64" else f"{kind}-L1-dropout{p}",
        dtype="float64" if variant == "float64" else None,  # judged at float64's tolerance
    )


def pre_dropout_case(kind: str, layer: str, variant: str = "") -> Case:
    """A user's dropout on the input sequence before a one-layer module (how AWD-LSTM uses LockedDropout)."""
    name, tag = MODULES[kind], PRE_DROPOUT[layer]
    config = _module(kind, {"user_dropout": layer, "p": P}, num_layers=1)
    config["torch.backends.mkldnn.enabled"] = variant != "native"
    if layer == "nn.Dropout":
        claim = Claim("zaremba", {"input": P}, doc=NN_DROPOUT_DOC)
        label = f"nn.{name}({WIDTH}, {WIDTH})(nn.Dropout({P})(x))"
    else:
        claim = Claim("variational", {"input": P, "recurrent": 0.0}, doc=LOCKED_DOC)
        label = f"nn.{name}({WIDTH}, {WIDTH})(LockedDropout()(x, dropout={P}))"
    if variant == "native":
        label = f"with torch.backends.mkldnn.flags(enabled=False): {label}"
    case_id = f"{kind}-{tag}-then-module" + (f"-{variant}" if variant else "")
    return _case(case_id, kind, config, claim, label, flag_group=f"{kind}-{tag}-then-module")


def loop_case(kind: str, loop: str, p_recurrent: float = 0.0, dtype: str = "float32") -> Case:
    """A cell driven step by step by a user loop (``zaremba_cell_loop`` or ``variational_cell_loop``)."""
    name = CELLS[kind]
    config = {"module": f"torch.nn.{name}", "args": {"input_size": WIDTH, "hidden_size": WIDTH}}
    config |= {"loop": loop, "p_input": P, "dtype": dtype}
    if loop == "zaremba_cell":
        claim = Claim("zaremba", {"input": P}, doc=NN_DROPOUT_DOC)
        label = f"for x_t in x: state = nn.{name}({WIDTH}, {WIDTH})(nn.Dropout({P})(x_t), state)"
        case_id, rate_group = f"{kind}cell-zaremba-loop", None
    else:
        config["p_recurrent"] = p_recurrent
        claim = Claim("variational", {"input": P, "recurrent": p_recurrent}, doc=GAL_DOC if p_recurrent else LOCKED_DOC)
        rec = f", h * mask_h (p={p_recurrent})" if p_recurrent else ""
        label = f"for x_t in LockedDropout()(x, {P}): state = nn.{name}({WIDTH}, {WIDTH})(x_t{rec}, state)"
        case_id = f"{kind}cell-locked-loop" + ("-recurrent" if p_recurrent else "-input_only")
        rate_group = f"{kind}cell-locked-loop"
    if dtype != "float32":
        case_id, label = f"{case_id}-{dtype}", f"{label} in {dtype}"
    return _case(
        case_id, kind, config, claim, label, rate_group=rate_group, dtype="float64" if dtype == "float64" else None
    )


def zoneout_case(kind: str) -> Case:
    """ESPnet's ``ZoneOutCell`` (``models/torch_model.py``: ``zoneout_cell_loop``) around a torch cell, called
    step by step by the decoder's loop, as ESPnet's Tacotron 2 and the many tutorials copied from it write it."""
    name = CELLS[kind]
    config = {"module": f"torch.nn.{name}", "args": {"input_size": WIDTH, "hidden_size": WIDTH}}
    config |= {"loop": "zoneout_cell", "p_zoneout": P, "dtype": "float32"}
    rates = {"zone_h": P, "zone_c": P} if kind == "lstm" else {"zone_h": P}
    label = f"for x_t in x: state = ZoneOutCell(nn.{name}({WIDTH}, {WIDTH}), zoneout_rate={P})(x_t, state)"
    return _case(f"{kind}cell-zoneout-loop", kind, config, Claim("zoneout", rates, doc=ZONEOUT_DOC), label)


def stack_case(kind: str, layers: int, bidirectional: bool, variant: str = "") -> Case:
    """``nn.RNN/LSTM/GRU(num_layers=L, dropout=p[, bidirectional=True])``: where ``dropout=`` is documented
    to act. ``variant``: ``batch_first``, or ``cuda-cudnn`` / ``cuda-native`` (skipped without a GPU)."""
    name, directions = MODULES[kind], 2 if bidirectional else 1
    config = _module(kind, num_layers=layers, dropout=P, batch_first=variant == "batch_first")
    config["args"]["bidirectional"] = bidirectional
    if variant.startswith("cuda"):
        config |= {"device": "cuda", "torch.backends.cudnn.enabled": variant == "cuda-cudnn"}
    documented = DROPOUT_DOC.format(name=name, url=DOCS.format(name))
    if layers == 1:
        claim = Claim("none", {}, doc=documented)
    else:
        doc = documented.split("' and, for num_layers=1")[0] + "'"
        doc += ": a fresh standard Dropout on each layer's outputs but the last's, i.e. on the input of the layers"
        doc += " above (Zaremba et al. 2014)"
        claim = Claim(
            "zaremba", {f"input@{n}{r}": P for n in range(2, layers + 1) for r in ("", "r")[:directions]}, doc=doc
        )
    bi = ", bidirectional=True" if bidirectional else ""
    label = f"nn.{name}({WIDTH}, {WIDTH}, num_layers={layers}, dropout={P}{bi}"
    label += ", batch_first=True)" if variant == "batch_first" else ")"
    if variant.startswith("cuda"):
        label += ".cuda()" + ("" if variant == "cuda-cudnn" else " under torch.backends.cudnn.flags(enabled=False)")
    return _case(
        f"{kind}-L{layers}{'-bi' if bidirectional else ''}-dropout{P}" + (f"-{variant}" if variant else ""),
        kind,
        config,
        claim,
        label,
        cell=_cell(kind, layers, directions),
        flag_group=f"{kind}-L{layers}-stack" if variant in ("", "batch_first") and not bidirectional else None,
    )


def torch_cases() -> list[Case]:
    """The ``torch`` adapter's cases: per cell kind the one-layer modules, the pre-dropout layers and the
    loops; one float64 loop; then the stacks."""
    cases = []
    for kind in MODULES:
        variants = LAYOUTS + KERNELS[kind][1:]
        cases += [module_case(kind, p, v) for p in (0.0, P) for v in variants]
        cases.append(module_case(kind, P, "float64"))
        cases += [pre_dropout_case(kind, layer, v) for layer in PRE_DROPOUT for v in KERNELS[kind]]
        cases += [loop_case(kind, loop, p_recurrent) for loop, p_recurrent in LOOPS[kind]]
        cases.append(zoneout_case(kind))
    cases.append(loop_case("lstm", "zaremba_cell", dtype="float64"))
    return cases + [stack_case(*axes) for axes in STACKS]


def torch_catalogue(adapter: Adapter) -> list[Case]:
    """The torch adapter's cases: ``torch_cases()`` and their variants in each of ``MODE_CASES``' modes."""
    return expand(torch_cases(), {mode: lambda c, ids=ids: c.id in ids for mode, ids in MODE_CASES.items()}, adapter)


def third_party_cases(layer: str) -> list[Case]:
    """A third-party locked dropout on the input, then a one-layer module, as AWD-LSTM code uses it."""
    tag, batch_first, doc = THIRD_PARTY[layer]
    attribute, layout = layer.rpartition(".")[2], "x_bf" if batch_first else "x"
    claim = Claim("variational", {"input": P, "recurrent": 0.0}, doc=doc)
    return [
        _case(
            f"{kind}-{tag}-{attribute}-then-module",
            kind,
            _module(kind, {"user_dropout": layer, "p": P}, num_layers=1, batch_first=batch_first),
            claim,
            f"nn.{name}({WIDTH}, {WIDTH}, batch_first={batch_first})({attribute}({P})({layout}))",
        )
        for kind, name in MODULES.items()
    ]


def third_party_after_cases(layer: str) -> list[Case]:
    """A third-party locked dropout on the outputs of a one-layer module, as AWD-LSTM applies its final
    LockedDropout (salesforce/awd-lstm-lm model.py: 'output = self.lockdrop(raw_output, self.dropout)')."""
    tag, batch_first, doc = THIRD_PARTY[layer]
    attribute = layer.rpartition(".")[2]
    claim = Claim("locked_output", {"output": P}, doc=doc)
    return [
        _case(
            f"{kind}-{tag}-module-then-{attribute}",
            kind,
            _module(kind, {"dropout_after": layer, "p": P}, num_layers=1, batch_first=batch_first),
            claim,
            f"{attribute}({P})(nn.{name}({WIDTH}, {WIDTH}, batch_first={batch_first})(x)[0])",
        )
        for kind, name in MODULES.items()
    ]


def weight_drop_cases(adapter: str) -> list[Case]:
    """The package's weight-drop wrappers around a one-layer module, as AWD-LSTM code builds them."""
    return [
        _case(
            f"{kind}-{adapter}-{wrapper.rpartition('.')[2]}",
            kind,
            _module(kind, {"weight_drop": wrapper, "p": P}, num_layers=1),
            Claim("weight_drop", {"weight_hh": P}, doc=doc),
            label.format(name=MODULES[kind], w=WIDTH, p=P),
        )
        for wrapper, kinds, label, doc in WEIGHT_DROP[adapter]
        for kind in kinds
    ]

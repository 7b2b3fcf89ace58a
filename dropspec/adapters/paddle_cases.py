"""The PaddlePaddle cases as data: each a configuration of ``models/paddle_model.py`` (its ``CONFIG``), the claim
the documentation makes for it, and how a user writes it. The axes:

- ``paddle.nn.SimpleRNN`` / ``LSTM`` / ``GRU`` with ``dropout=``, ``num_layers`` 1 to 3, ``direction="bidirect"``
  and ``time_major`` both ways (``LAYERS``). The documentation says dropout is applied to the input of each layer
  except the first, so a one-layer layer drops nothing and a stack drops the inputs of layers 2 and up;
- float64 (``FLOAT64``): stacks built in it, or a layer cast to it with ``layer.to(dtype="float64")``;
- the cells (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``) in a user's loop (``LOOPS``): ``paddle.nn.Dropout`` on
  x_t at every step (Zaremba et al. 2014), or ``paddle.nn.Dropout(p, axis=[1, 2])`` once on the time-major
  sequence, whose mask is shared by the steps (the input mask of Gal and Ghahramani 2016).

Paddle's GRU is the reset-after form (r * (W_hc h + b_hc)), as torch's. Sizes are small (T=8, B=16, width 8):
CI runs every environment on two cores. Ids, labels, claims and groups are what results are keyed by: change
them only with the results.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..modes import RATE_MODES, expand
from ..reference import Cell
from .base import Adapter, Case, Claim

P = 0.25
STEPS, BATCH, WIDTH = 8, 16, 8
LAYERS_OF = {"rnn": "SimpleRNN", "lstm": "LSTM", "gru": "GRU"}
CELLS = {"rnn": "SimpleRNNCell", "lstm": "LSTMCell", "gru": "GRUCell"}

# -- the documentation the claims rest on (quotes, verbatim, from the docstrings the pages are built from) ----------
DOCS = "https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/{}_en.html"
DROPOUT_DOC = (
    "'dropout (float, optional): The dropout probability. Dropout is applied to the input of each layer except "
    "for the first layer. The range of dropout from 0 to 1. Defaults to 0.' ({url})"
)
DROPOUT_LAYER_DOC = (
    "paddle.nn.Dropout: 'The dropout operator randomly sets the outputs of some units to zero, while upscale "
    "others according to the given dropout probability.' mode 'upscale_in_train (default), upscale the output "
    "at training time - train: out = input * mask / (1.0 - p) - inference: out = input' "
    "(https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/Dropout_en.html)"
)
ZAREMBA_DOC = DROPOUT_LAYER_DOC + "; applied to x_t at every step it is Zaremba et al. (2014), arXiv:1409.2329"
LOCKED_DOC = (
    DROPOUT_LAYER_DOC + "; 'axis (int|list|tuple|None, optional): The axis along which the dropout is performed.' "
    "and paddle.nn.functional.dropout: 'When axis!=None , this is useful for dropping whole channels from an "
    "image or sequence.' (https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/functional/"
    "dropout_en.html): axis=[1, 2] on a time-major (T, B, I) sequence draws one mask per sample and feature, "
    "shared by the steps: the input mask of Gal and Ghahramani (2016), arXiv:1512.05287"
)

# -- the axes -------------------------------------------------------------------------------------------------------
# kind, num_layers, bidirect, time_major: every kind at 1 to 3 layers and bidirectional, batch-major as Paddle's
# default; time_major=True (a layout flag only) for each kind's two-layer stack and one-layer LSTM
LAYERS = [(kind, layers, False, False) for kind in LAYERS_OF for layers in (1, 2, 3)]
LAYERS += [(kind, 2, True, False) for kind in LAYERS_OF] + [("lstm", 1, True, False)]
LAYERS += [(kind, 2, False, True) for kind in LAYERS_OF] + [("lstm", 1, False, True)]
LOOPS = [(kind, "zaremba_cell") for kind in CELLS] + [(kind, "locked_cell") for kind in ("lstm", "gru")]
# kind, num_layers, how: float64 the two ways the documentation offers: two-layer stacks built under
# paddle.set_default_dtype("float64") (float64's tolerance pins the GRU's reset-after form tighter), or a layer
# cast afterwards with layer.to(dtype="float64") (one layer: the cast crashes whatever the layers, and a
# one-layer case gets a short repro script)
FLOAT64 = [("gru", 2, "paddle.set_default_dtype"), ("lstm", 2, "paddle.set_default_dtype"), ("gru", 1, "to")]
# Call modes (dropspec.modes), on the configurations whose dropout acts: the two-layer LSTM and GRU stacks (the
# fused kernel's dropout between layers), the bidirectional stack (both directions' masks) where a compiled or
# reloaded layer could lose a direction, and a user's loop where the mode reaches it (to_static compiles the loop
# with its Dropout; in a batch of one the axis-[1, 2] mask, shared by the steps, has an axis of size one). Not
# measured, and why (README, Call modes): an explicit seed (the layers take no seed=: rnn.py passes
# seed 0 to the fused kernel, which draws from the global generator that paddle.seed, set in every case, seeds).
STACKS = ("lstm-L2-dropout0.25", "gru-L2-dropout0.25", "lstm-L2-bi-dropout0.25")
MODE_CASES = {
    "paddle_to_static": (*STACKS, "lstmcell-zaremba-loop", "grucell-locked-loop"),
    "reload_state_dict": STACKS,
    "sequence_length": STACKS[:2],
    "batch_one": (STACKS[0], "lstmcell-locked-loop"),
    # the boundary rates on the fused layer's dropout between layers
    **{mode: STACKS[:1] for mode in RATE_MODES},
}


def _cell(kind: str, layers: int = 1, directions: int = 1) -> Cell:
    return Cell(kind, WIDTH, WIDTH, reset_after=True, layers=layers, directions=directions)


def layer_case(kind: str, layers: int, bidirect: bool, time_major: bool) -> Case:
    """``paddle.nn.SimpleRNN/LSTM/GRU(num_layers=L, dropout=p[, direction="bidirect"][, time_major=True])``."""
    name, directions = LAYERS_OF[kind], 2 if bidirect else 1
    args: dict[str, Any] = {"input_size": WIDTH, "hidden_size": WIDTH, "num_layers": layers}
    args |= {"direction": "bidirect" if bidirect else "forward", "time_major": time_major, "dropout": P}
    doc = DROPOUT_DOC.format(url=DOCS.format(name))
    if layers == 1:
        claim = Claim("none", {}, doc=doc + ": a single layer has only the first layer, so nothing is dropped")
    else:
        doc += ": a fresh standard dropout on the input of layers 2 and up (Zaremba et al. 2014)"
        claim = Claim(
            "zaremba", {f"input@{n}{r}": P for n in range(2, layers + 1) for r in ("", "r")[:directions]}, doc=doc
        )
    extra = (", direction='bidirect'" if bidirect else "") + (", time_major=True" if time_major else "")
    label = f"paddle.nn.{name}({WIDTH}, {WIDTH}, num_layers={layers}{extra}, dropout={P})"
    case_id = f"{kind}-L{layers}{'-bi' if bidirect else ''}-dropout{P}" + ("-time_major" if time_major else "")
    return Case(
        case_id,
        _cell(kind, layers, directions),
        {"layer": f"paddle.nn.{name}", "args": args},
        claim,
        STEPS,
        BATCH,
        label=label,
        # time_major only changes the layout: a case and its time-major twin must draw the same masks
        flag_group=None if bidirect else f"{kind}-L{layers}",
    )


def float64_case(kind: str, layers: int, how: str) -> Case:
    """A layer in float64: built under ``paddle.set_default_dtype("float64")`` or cast with ``.to``."""
    case = layer_case(kind, layers, False, False)
    if how == "to":
        config = {**case.config, "to": {"dtype": "float64"}}
        label, case_id = f"{case.label}.to(dtype='float64')", f"{case.id}-float64-to"
    else:
        config = {**case.config, how: "float64"}
        label, case_id = f"{how}('float64'); {case.label}", f"{case.id}-float64"
    # float64 changes the numbers, so it is in no flag group; its results are judged at float64's tolerance
    return replace(case, id=case_id, config=config, label=label, flag_group=None, dtype="float64")


def loop_case(kind: str, loop: str) -> Case:
    """A cell driven step by step by a user loop, with paddle.nn.Dropout where the loop puts it."""
    name = CELLS[kind]
    config = {"cell": f"paddle.nn.{name}", "args": {"input_size": WIDTH, "hidden_size": WIDTH}}
    config |= {"loop": loop, "p_input": P}
    if loop == "zaremba_cell":
        claim = Claim("zaremba", {"input": P}, doc=ZAREMBA_DOC)
        label = f"for x_t in x: y, state = paddle.nn.{name}({WIDTH}, {WIDTH})(paddle.nn.Dropout({P})(x_t), state)"
        case_id = f"{kind}cell-zaremba-loop"
    else:
        claim = Claim("variational", {"input": P, "recurrent": 0.0}, doc=LOCKED_DOC)
        label = (
            f"for x_t in paddle.nn.Dropout({P}, axis=[1, 2])(x): "
            f"y, state = paddle.nn.{name}({WIDTH}, {WIDTH})(x_t, state)"
        )
        case_id = f"{kind}cell-locked-loop"
    return Case(case_id, _cell(kind), config, claim, STEPS, BATCH, label=label)


def paddle_cases(adapter: Adapter) -> list[Case]:
    """The ``paddle`` adapter's cases: the layers, then the cells in user loops, each followed by its call modes."""
    layers = [layer_case(*axes) for axes in LAYERS] + [float64_case(*axes) for axes in FLOAT64]
    cases = layers + [loop_case(*axes) for axes in LOOPS]
    return expand(cases, {mode: lambda case, ids=ids: case.id in ids for mode, ids in MODE_CASES.items()}, adapter)

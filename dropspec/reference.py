"""The float64 NumPy reference: SimpleRNN, LSTM and GRU with a mask at every site.

This module is the oracle. Every framework is compared against it, so it is written
for clarity first: one function per cell, the equations in the order of the papers,
names that match the math (``h_tm1``, ``c_tm1``).

Canonical parameter layout (PyTorch's): ``w_ih`` is ``(G*H, I)``, ``w_hh`` is
``(G*H, H)``, with two biases ``b_ih`` and ``b_hh`` of ``(G*H,)``. Gate order:
LSTM ``i, f, g, o``; GRU ``r, z, n``; SimpleRNN one gate ``h``.

Mask sites (see ``spec/cells.yaml``), each optional, for one call over a sequence:

- ``input``      ``(G, T, B, I)``  multiplies ``x_t`` before gate ``k``'s input matmul
- ``recurrent``  ``(G, T, B, H)``  multiplies the state fed to gate ``k``'s recurrent matmul
- ``output``     ``(T, B, H)``     multiplies the emitted output ``y_t`` only
- ``carry_h``    ``(T, B, H)``     multiplies ``h_t`` as carried to step ``t+1`` and returned
- ``carry_c``    ``(T, B, H)``     the same for the LSTM cell state ``c_t``
- ``state_in``   ``(T, B, H)``     multiplies ``h_{t-1}`` (``h0`` at ``t = 0``) as step ``t`` receives it, at
  every use inside the step: what a wrapper does that drops ``h`` before calling a stock cell. The
  state carried on and returned is undropped. For SimpleRNN and LSTM, whose ``h_{t-1}`` feeds only
  the recurrent matmul, it equals a gate-shared ``recurrent`` mask, so only the GRU lists it (there it
  also multiplies the memory path ``z * h_{t-1}``)
- ``candidate``  ``(T, B, H)``     multiplies the candidate update (Semeniuta et al. 2016)
- ``cell``       ``(T, B, H)``     multiplies the LSTM cell state inside the step (Moon et al. 2015)
- ``weight_hh``  ``(G*H, H)``      multiplies ``w_hh`` for the whole call (DropConnect); a mask
  that changes per step or per sample (a wrong implementation) is ``(T, B, G*H, H)``
- ``zone_h``     ``(T, B, H)``     zoneout (Krueger et al. 2016) on ``h``: the update mask ``u = 1 - d``. Step
  ``t`` computes ``h~_t`` as usual and keeps ``h_t = h_{t-1} + u_t * (h~_t - h_{t-1})``: where ``u`` is 0
  the unit keeps its previous value (it is "zoned out"), where it is 1 it takes the new one. A 0 is a
  zoned unit, so a site's drop rate is the zoneout probability; a kept value other than 1 (a scaled
  mask) mixes the two. ``h_{t-1}`` is the state the step received (``h0`` at ``t = 0``)
- ``zone_c``     ``(T, B, H)``     the same for the LSTM cell state: ``c_t = c_{t-1} + u^c_t * (c~_t - c_{t-1})``,
  and ``h~_t = o_t * tanh(c~_t)`` reads the unzoned ``c~_t``, as the paper's equations and its authors'
  code do
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Literal

import numpy as np

CellKind = Literal["rnn", "lstm", "gru"]
GATES: dict[str, tuple[str, ...]] = {"rnn": ("h",), "lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}
GATED_SITES = ("input", "recurrent")
STEP_SITES = ("output", "carry_h", "carry_c", "candidate", "cell", "state_in", "zone_h", "zone_c")
ZONE_SITES = ("zone_h", "zone_c")  # zoneout's update masks: a 0 keeps the previous value (see the docstring)
SITES_OF: dict[str, tuple[str, ...]] = {
    "rnn": ("input", "recurrent", "output", "carry_h", "zone_h"),
    "lstm": ("input", "recurrent", "output", "carry_h", "carry_c", "candidate", "cell", "zone_h", "zone_c"),
    "gru": ("input", "recurrent", "output", "carry_h", "candidate", "state_in", "zone_h"),
}


def batch_axis(site: str) -> int:
    """The batch axis of one call's mask at ``site``: ``(G, T, B, ...)`` for the gated sites, ``(T, B, ...)`` else
    (``weight_hh`` too, in its full per-step, per-sample form)."""
    return 2 if site in GATED_SITES else 1


@dataclass(frozen=True)
class Cell:
    """Which cell, and its sizes. ``reset_after`` only matters for the GRU. With ``layers > 1`` it
    is a stack: layer ``l`` reads the outputs of layer ``l - 1`` (see ``forward_stack``). With
    ``directions=2`` every layer is bidirectional: a second cell reads the sequence backwards and
    the layer emits both cells' outputs side by side, ``(T, B, 2H)``, as PyTorch and Keras do."""

    kind: CellKind
    input_size: int
    hidden_size: int
    reset_after: bool = True
    layers: int = 1
    directions: int = 1
    # a GRU whose reset product has no hidden bias, r * (W_hn h) (Flax NNX's GRUCell): b_hh of the n gate
    # stays 0 in every probe and replay, since the framework cannot represent it
    b_hn: bool = True
    # a SimpleRNN cell users write themselves (Keras' RNNCellWithDropout test cell): "linear" emits the
    # pre-activation as it is, and ``bias=False`` has no biases (both stay 0 in every probe and replay);
    # the probes then drive the units through the input instead (``recovery.probes``)
    activation: Literal["tanh", "linear"] = "tanh"
    bias: bool = True

    def __post_init__(self) -> None:
        if self.kind not in GATES:
            raise ValueError(f"cell kind {self.kind!r} is unknown; use one of {sorted(GATES)}")
        if self.directions not in (1, 2) or self.layers < 1:
            raise ValueError(f"a cell has layers >= 1 and directions 1 or 2, not {self.layers} and {self.directions}")
        if self.activation not in ("tanh", "linear"):
            raise ValueError(f"Cell(activation={self.activation!r}) is unknown; use 'tanh' or 'linear'")
        if (self.activation != "tanh" or not self.bias) and (self.kind != "rnn" or self.stacked):
            # LSTM and GRU gates are read by saturating them with biases, and a stack's probes pass
            # constants through its layers by their biases: neither has probes without them
            raise ValueError(
                f"Cell(activation={self.activation!r}, bias={self.bias}) is supported for a one-layer, "
                f"one-direction SimpleRNN ('rnn') only, not {self.kind!r} with {self.layers} layer(s) and "
                f"{self.directions} direction(s); use the defaults activation='tanh', bias=True"
            )

    @property
    def parts(self) -> int:
        """One-direction layers, in PyTorch's order: layer 0 forward, layer 0 reverse, layer 1, ..."""
        return self.layers * self.directions

    @property
    def stacked(self) -> bool:
        """Whether parameters, masks and states come as one entry per part (see ``parts``)."""
        return self.parts > 1

    @property
    def output_size(self) -> int:
        return self.directions * self.hidden_size

    @property
    def gates(self) -> tuple[str, ...]:
        return GATES[self.kind]

    @property
    def sites(self) -> tuple[str, ...]:
        return SITES_OF[self.kind]

    @property
    def name(self) -> str:
        base = self.kind
        if self.kind == "gru":
            base = "gru_reset_after" if self.reset_after else "gru_reset_before"
        base += ("_linear" if self.activation == "linear" else "") + ("" if self.bias else "_nobias")
        return base + (f"_x{self.layers}" if self.layers > 1 else "") + ("_bi" if self.directions == 2 else "")

    def layer(self, index: int) -> Cell:
        """Part ``index`` of a stack (see ``parts``), as a one-layer, one-direction cell."""
        size = self.input_size if index < self.directions else self.output_size
        return replace(self, input_size=size, layers=1, directions=1)

    def is_reverse(self, index: int) -> bool:
        """Whether part ``index`` reads the sequence backwards (its masks are then in its own time order)."""
        return index % self.directions == 1

    def gate_index(self, gate: str) -> int:
        return self.gates.index(gate)


@dataclass
class Params:
    """Canonical parameters. ``gate(k)`` views give one gate's rows."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray

    @classmethod
    def zeros(cls, cell: Cell) -> Params:
        g, h, i = len(cell.gates), cell.hidden_size, cell.input_size
        return cls(np.zeros((g * h, i)), np.zeros((g * h, h)), np.zeros(g * h), np.zeros(g * h))

    @classmethod
    def random(cls, cell: Cell, rng: np.random.Generator, scale: float = 1.0) -> Params:
        """Random parameters with the usual 1/sqrt(H) spread, for replay checks."""
        p = cls.zeros(cell)
        bound = scale / np.sqrt(cell.hidden_size)
        for array in (p.w_ih, p.w_hh, p.b_ih, p.b_hh):
            array[...] = rng.uniform(-bound, bound, array.shape)
        if cell.kind == "gru" and not cell.b_hn:
            p.b_hh[p.rows(cell, "n")] = 0.0
        if not cell.bias:
            p.b_ih[...], p.b_hh[...] = 0.0, 0.0
        return p

    def rows(self, cell: Cell, gate: str) -> slice:
        k, h = cell.gate_index(gate), cell.hidden_size
        return slice(k * h, (k + 1) * h)

    def astype(self, dtype: np.dtype | type) -> Params:
        return Params(*(getattr(self, f.name).astype(dtype) for f in fields(self)))


@dataclass
class Masks:
    """The masks of one call. ``None`` means the site is not dropped (all ones)."""

    input: np.ndarray | None = None
    recurrent: np.ndarray | None = None
    output: np.ndarray | None = None
    carry_h: np.ndarray | None = None
    carry_c: np.ndarray | None = None
    candidate: np.ndarray | None = None
    cell: np.ndarray | None = None
    state_in: np.ndarray | None = None
    weight_hh: np.ndarray | None = None
    zone_h: np.ndarray | None = None
    zone_c: np.ndarray | None = None

    def get(self, site: str) -> np.ndarray | None:
        return getattr(self, site)

    def active_sites(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def with_site(self, site: str, value: np.ndarray | None) -> Masks:
        return replace(self, **{site: value})


@dataclass
class Trace:
    """What a run of a cell over a sequence shows: outputs and the returned state."""

    y: np.ndarray  # (T, B, H)
    h: np.ndarray  # (B, H), the returned final hidden state
    c: np.ndarray | None = None  # (B, H), the returned final cell state (LSTM)
    extras: dict = field(default_factory=dict)


def sigmoid(a: np.ndarray) -> np.ndarray:
    # tanh form: no overflow warnings, and exactly 0 or 1 when saturated in float64
    return _sigmoid_in_place(np.asarray(0.5 * a))  # asarray: 0.5 times a 0-d array is a scalar


def _sigmoid_in_place(half: np.ndarray) -> np.ndarray:
    """``sigmoid(a)`` from ``half = 0.5 * a``, written over ``half``: the same values as ``0.5 * (1 + tanh(half))``
    without a temporary array per operation (the oracle's steps are many operations on small arrays)."""
    np.tanh(half, out=half)
    half += 1.0
    half *= 0.5
    return half


def _shared_over_gates(mask: np.ndarray | None) -> bool:
    return mask is None or all(np.array_equal(mask[0], mask[k]) for k in range(1, mask.shape[0]))


def _input_projections(cell: Cell, p: Params, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``W_ih[k] (x_t * m_k) + b_ih[k]`` for every step at once: ``(T, B, G*H)``."""
    if _shared_over_gates(mask):
        xm = x if mask is None else x * mask[0]
        return xm @ p.w_ih.T + p.b_ih
    h = cell.hidden_size
    parts = [(x * mask[k]) @ p.w_ih[k * h : (k + 1) * h].T for k in range(len(cell.gates))]
    return np.concatenate(parts, axis=-1) + p.b_ih


def _matvec(s: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``s @ w.T``; ``w`` is ``(rows, H)``, or ``(B, rows, H)`` when a weight mask differs per sample."""
    return s @ w.T if w.ndim == 2 else np.einsum("bj,bij->bi", s, w)


def _recurrent_projection(
    cell: Cell, w_hh: np.ndarray, b_hh: np.ndarray | None, s: np.ndarray, mask_t: np.ndarray | None, shared: bool
) -> np.ndarray:
    """``W_hh[k] (s * m_k) + b_hh[k]`` for one step: ``(B, G*H)``; without ``b_hh`` where the caller has added it
    to the input projections already."""
    if mask_t is None:
        out = _matvec(s, w_hh)
    elif shared:
        out = _matvec(s * mask_t[0], w_hh)
    else:
        h = cell.hidden_size
        out = np.concatenate(
            [_matvec(s * mask_t[k], w_hh[..., k * h : (k + 1) * h, :]) for k in range(len(cell.gates))], axis=-1
        )
    return out if b_hh is None else out + b_hh


def _gate_views(a: np.ndarray, gates: int) -> list[np.ndarray]:
    """``np.split(a, gates, axis=-1)`` as plain slices: the same views, without its per-call overhead,
    which dominates a step at small widths."""
    width = a.shape[-1] // gates
    return [a[..., k * width : (k + 1) * width] for k in range(gates)]


def _at(mask: np.ndarray | None, t: int) -> np.ndarray | float:
    return 1.0 if mask is None else mask[t]


def _times(mask: np.ndarray | None, t: int, v: np.ndarray) -> np.ndarray:
    """``mask[t] * v``, and ``v`` itself where no mask is set: a step is a few dozen operations on small arrays,
    so the multiplications by 1 it skips are much of its cost (the values are the same: ``1.0 * v == v``)."""
    return v if mask is None else mask[t] * v


def forward(
    cell: Cell,
    p: Params,
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None = None,
    masks: Masks | None = None,
) -> Trace:
    """Run ``cell`` over ``x`` of shape ``(T, B, I)`` from ``(h0, c0)``, applying ``masks``."""
    m = masks or Masks()
    if not cell.bias and (np.any(p.b_ih) or np.any(p.b_hh)):
        # the framework's cell has no bias to load them into: a probe or replay that sets one would measure
        # a different function from the one the oracle runs
        raise ValueError(f"cell {cell.name} has no bias (Cell(bias=False)), but Params.b_ih/b_hh are not all 0")
    x, h_tm1 = np.asarray(x, np.float64), np.asarray(h0, np.float64)
    steps, hidden = x.shape[0], cell.hidden_size
    c_tm1 = np.zeros_like(h_tm1) if c0 is None else np.asarray(c0, np.float64)
    # (G*H, H) for one mask per call, (T, B, G*H, H) when the weight mask changes per step or sample
    w_hh = p.w_hh if m.weight_hh is None else p.w_hh * np.asarray(m.weight_hh)
    x_proj = _input_projections(cell, p, x, m.input)
    # SimpleRNN and LSTM add b_hh to the recurrent projection: added once to every step's input projection
    # instead (the GRU's b_hn sits inside the reset product, so it keeps its own)
    b_step = p.b_hh if cell.kind == "gru" else None
    if b_step is None:
        x_proj += p.b_hh
    rec_shared = _shared_over_gates(m.recurrent)
    ys = np.empty((steps, x.shape[1], hidden))
    h, c = h_tm1, c_tm1
    for t in range(steps):
        h_tm1 = _times(m.state_in, t, h_tm1)
        rec_t = None if m.recurrent is None else m.recurrent[:, t]
        w_t = w_hh if w_hh.ndim == 2 else w_hh[t]
        if cell.kind == "rnn":
            a = x_proj[t] + _recurrent_projection(cell, w_t, b_step, h_tm1, rec_t, rec_shared)
            h = np.tanh(a) if cell.activation == "tanh" else a
        elif cell.kind == "lstm":
            a = _recurrent_projection(cell, w_t, b_step, h_tm1, rec_t, rec_shared)  # a fresh array, changed in place
            a += x_proj[t]
            g = np.tanh(a[:, 2 * hidden : 3 * hidden])
            # the sigmoid of all four gates in one call (g's is unused): per-call overhead dominates at small H
            a *= 0.5
            i, f, _, o = _gate_views(_sigmoid_in_place(a), 4)
            c = f * c_tm1
            c += i * _times(m.candidate, t, g)
            c = _times(m.cell, t, c)
            h = np.tanh(c)
            h *= o
            if m.zone_c is not None:  # zoneout: h~_t above reads the unzoned c~_t
                c = m.zone_c[t] * c + (1.0 - m.zone_c[t]) * c_tm1  # exactly c or c_tm1 where u is 1 or 0
        else:
            h, _ = _gru_step(cell, p, w_t, x_proj[t], h_tm1, rec_t, rec_shared, _at(m.candidate, t))
        if m.zone_h is not None:
            h = m.zone_h[t] * h + (1.0 - m.zone_h[t]) * h_tm1
        ys[t] = _times(m.output, t, h)
        h_tm1 = _times(m.carry_h, t, h)
        c_tm1 = _times(m.carry_c, t, c)
    return Trace(y=ys, h=h_tm1, c=c_tm1 if cell.kind == "lstm" else None)


def _gru_step(
    cell: Cell,
    p: Params,
    w_hh: np.ndarray,
    x_proj_t: np.ndarray,
    h_tm1: np.ndarray,
    rec_t: np.ndarray | None,
    rec_shared: bool,
    m_candidate: np.ndarray | float,
) -> tuple[np.ndarray, np.ndarray]:
    hid = cell.hidden_size
    x_r, x_z, x_n = _gate_views(x_proj_t, 3)
    if cell.reset_after:  # PyTorch, Keras reset_after=True (CuDNN-compatible)
        rec = _recurrent_projection(cell, w_hh, p.b_hh, h_tm1, rec_t, rec_shared)
        h_r, h_z, h_n = _gate_views(rec, 3)
        r, z = sigmoid(x_r + h_r), sigmoid(x_z + h_z)
        n = np.tanh(x_n + r * h_n)
    else:  # Cho et al. 2014, Keras reset_after=False: the reset gate acts before the matmul
        s_r = h_tm1 if rec_t is None else h_tm1 * rec_t[0]
        s_z = h_tm1 if rec_t is None else h_tm1 * rec_t[1]
        s_n = h_tm1 if rec_t is None else h_tm1 * rec_t[2]
        r = sigmoid(x_r + _matvec(s_r, w_hh[..., :hid, :]) + p.b_hh[:hid])
        z = sigmoid(x_z + _matvec(s_z, w_hh[..., hid : 2 * hid, :]) + p.b_hh[hid : 2 * hid])
        n = np.tanh(x_n + _matvec(r * s_n, w_hh[..., 2 * hid :, :]) + p.b_hh[2 * hid :])
    h = z * h_tm1 + (1.0 - z) * (m_candidate * n)
    return h, n


def forward_stack(
    cell: Cell,
    params: list[Params],
    x: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray | None = None,
    masks: list[Masks] | None = None,
) -> Trace:
    """A stack of ``cell.layers`` layers: layer ``l`` reads layer ``l - 1``'s outputs ``y``, so
    dropout between layers is the input mask of the upper layer. ``params``, ``masks`` and the
    states ``h0``/``c0`` ``(L*D, B, H)`` have one entry per part (``Cell.parts``). A reverse part
    runs on the time-reversed sequence, so its masks are indexed by its own steps (its step 0 is
    the last time point); its outputs are flipped back before the directions are concatenated.
    The returned state is every part's, ``(L*D, B, H)``, as PyTorch returns it."""
    masks = masks or [Masks() for _ in range(cell.parts)]
    hs, cs = [], []
    for layer in range(cell.layers):
        outputs = []
        for index in range(layer * cell.directions, (layer + 1) * cell.directions):
            c_init = None if c0 is None else c0[index]
            reverse = cell.is_reverse(index)
            trace = forward(
                cell.layer(index), params[index], x[::-1] if reverse else x, h0[index], c_init, masks[index]
            )
            outputs.append(trace.y[::-1] if reverse else trace.y)
            hs.append(trace.h)
            cs.append(trace.c)
        x = np.concatenate(outputs, axis=-1)
    return Trace(y=x, h=np.stack(hs), c=np.stack(cs) if cell.kind == "lstm" else None)


def run_cell(cell: Cell, params, x: np.ndarray, h0: np.ndarray, c0: np.ndarray | None = None, masks=None) -> Trace:
    """``forward`` for one layer, ``forward_stack`` for a stack (``params`` and ``masks`` then lists)."""
    if not cell.stacked:
        return forward(cell, params, x, h0, c0, masks)
    return forward_stack(cell, params, x, h0, c0, masks)


def run_calls(
    cell: Cell,
    params,
    inputs: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    masks: Sequence,
) -> list[Trace]:
    """``run_cell`` for several calls ``(x, h0, c0)`` with their masks, in one pass over the steps: the
    calls sit side by side on the batch axis, since the oracle's cost is per step far more than per
    sample. Calls with a weight mask (one per call, not per sample) run one by one."""
    joined = _join_masks(cell, masks)
    if joined is None:
        return [run_cell(cell, params, x, h0, c0, m) for (x, h0, c0), m in zip(inputs, masks)]
    sizes = np.cumsum([x.shape[1] for x, _, _ in inputs])[:-1]
    c0s = [c0 for _, _, c0 in inputs]
    trace = run_cell(
        cell,
        params,
        np.concatenate([x for x, _, _ in inputs], axis=1),
        np.concatenate([h0 for _, h0, _ in inputs], axis=-2),
        None if c0s[0] is None else np.concatenate(c0s, axis=-2),
        joined,
    )
    ys, hs = np.split(trace.y, sizes, axis=1), np.split(trace.h, sizes, axis=-2)
    cs = [None] * len(ys) if trace.c is None else np.split(trace.c, sizes, axis=-2)
    return [Trace(y=y, h=h, c=c) for y, h, c in zip(ys, hs, cs)]


def _join_masks(cell: Cell, masks: Sequence):
    """The calls' masks joined on the batch axis (per part for a stack), or None when a weight mask is set."""
    if cell.stacked:
        parts = [_join_masks(cell.layer(i), [None if m is None else m[i] for m in masks]) for i in range(cell.parts)]
        return None if any(p is None for p in parts) else parts
    masks = [m or Masks() for m in masks]
    joined = Masks()
    for f in fields(Masks):
        values = [m.get(f.name) for m in masks]
        present = next((v for v in values if v is not None), None)
        if present is None:
            continue
        if f.name == "weight_hh":
            return None
        filled = [np.ones_like(present) if v is None else np.asarray(v) for v in values]
        joined = joined.with_site(f.name, np.concatenate(filled, axis=batch_axis(f.name)))
    return joined

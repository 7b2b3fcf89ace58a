"""Recovery in a stack of layers (any depth, either direction): probe one layer at a time through the others."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from ..case import CallInputs
from ..reference import Cell, Params, Trace
from .probes import ALPHA, BETA, ORDER, SAT, TOL, Recovered, Recoverer, Runner, atanh, div

# In a stack, the probed layer's input comes from layers that emit a known constant whatever their
# masks (bias only), and its output reaches the top through "transparent" layers that pass each
# unit on through one gate, inverted from the top down with the input masks already recovered.
# Each direction of a bidirectional layer is its own chain: the forward part of every layer above
# reads the forward half of the features, the reverse part the reverse half, and both directions
# of the probed layer get the same probe, so one run reads both.
# Where a layer above drops unit u at step t, the probed layer's unit u is unseen there. Its input
# masks are then read again through other units (``Recoverer.input_probe``'s shift), so masks on
# the inputs of every layer (dropout between layers) are exact at any depth. Recurrent masks below
# the top layer are measured where seen, and the replay checks the rest.
_SOURCE = {
    "rnn": {"h": BETA},
    "lstm": {"i": SAT, "f": -SAT, "g": BETA, "o": SAT},
    "gru": {"r": SAT, "z": -SAT, "n": BETA},
}
_THROUGH = {"rnn": "h", "lstm": "g", "gru": "n"}


def _source_output(kind: str) -> float:
    return float(np.tanh(np.tanh(BETA)) if kind == "lstm" else np.tanh(BETA))


def _natural(values: np.ndarray, reverse: bool) -> np.ndarray:
    """A reverse part's per-step array in forward time order (and back: flipping is its own inverse)."""
    return values[::-1] if reverse else values


class _StackProbe:
    """Runs a one-layer probe of part ``index`` inside the whole stack."""

    def __init__(self, cell: Cell, index: int, found: list, top_step: dict, runner: Runner, floor: float, cache: dict):
        self.cell, self.index, self.found, self.top_step = cell, index, found, top_step
        self.runner, self.floor, self.cache = runner, floor, cache
        self.level, self.direction = divmod(index, cell.directions)
        self.through = cell.gates.index(_THROUGH[cell.kind])
        self.weights = {}
        for upper in range((self.level + 1) * cell.directions, cell.parts):
            scales = [np.nanmax(np.abs(m.input[self.through])) for m in found[upper] if m.input is not None]
            self.weights[upper] = 0.5 / max([1.0, *scales])

    def params(self, probe: Params) -> list[Params]:
        out, hid = [], self.cell.hidden_size
        for i in range(self.cell.parts):
            layer, level = self.cell.layer(i), i // self.cell.directions
            if level == self.level:
                out.append(probe)
                continue
            p = Params.zeros(layer)
            for gate, value in _SOURCE[self.cell.kind].items():
                p.b_ih[p.rows(layer, gate)] = value
            if level > self.level:  # transparent: i = 1, f = 0, o = 1 (LSTM), z = 0, r = 1 (GRU)
                half = (i % self.cell.directions) * hid
                p.b_ih[p.rows(layer, _THROUGH[self.cell.kind])] = 0.0
                p.w_ih[p.rows(layer, _THROUGH[self.cell.kind]), half : half + hid] = self.weights[i] * np.eye(hid)
            out.append(p)
        return out

    def __call__(self, name: str, probe: Params, calls: Sequence[CallInputs]) -> list[Trace]:
        cell, here = self.cell, range(self.level * self.cell.directions, (self.level + 1) * self.cell.directions)
        stacked = []
        for c in calls:
            h0 = np.zeros((cell.parts, *c.h0.shape))
            h0[list(here)] = c.h0
            c0 = None
            if c.c0 is not None:
                c0 = np.zeros((cell.parts, *c.c0.shape))
                c0[list(here)] = c.c0
            x = c.x if self.level == 0 else np.full((*c.x.shape[:2], cell.input_size), ALPHA)
            stacked.append(CallInputs(x=x, h0=h0, c0=c0))
        params = self.params(probe)
        key = hashlib.sha1()
        for array in [a for p in params for a in (p.w_ih, p.w_hh, p.b_ih, p.b_hh)] + [
            a for c in stacked for a in (c.x, c.h0, c.c0) if a is not None
        ]:
            key.update(np.ascontiguousarray(array, dtype=float).tobytes())
        if key.digest() not in self.cache:  # both directions of a layer get the same probe: one run reads both
            self.cache[key.digest()] = self.runner(name, params, stacked)
        reverse = cell.is_reverse(self.index)
        return [
            Trace(
                y=_natural(self.down(call, t.y), reverse),
                h=t.h[self.index],
                c=None if t.c is None else t.c[self.index],
            )
            for call, t in enumerate(self.cache[key.digest()])
        ]

    def down(self, call: int, y: np.ndarray) -> np.ndarray:
        """The probed part's outputs (forward time), from the top's, through the transparent layers above."""
        cell, hid = self.cell, self.cell.hidden_size
        half = self.direction * hid
        v = np.asarray(y, dtype=float)[..., half : half + hid]
        top = cell.layers - 1
        for level in range(top, self.level, -1):
            part = level * cell.directions + self.direction
            reverse = cell.is_reverse(part)
            ones = np.ones_like(v)
            step = {s: _natural(m, reverse) for s, m in self.top_step[part][call].items()} if level == top else {}
            h = div(v, step.get("output", ones))
            inside = step.get("cell", ones) * step.get("candidate", ones)
            if cell.kind == "lstm":
                a = atanh(div(atanh(h), inside))
            elif cell.kind == "gru":
                a = atanh(div(h, inside))
            else:
                a = atanh(h)
            m_in = self.found[part][call].input
            m = 1.0 if m_in is None else _natural(m_in[self.through][..., half : half + hid], reverse)
            v = div(a, self.weights[part] * m, self.floor)
        return v


def recover_stack(cell: Cell, steps: int, batch: int, calls: int, runner: Runner, eps: float) -> Recovered:
    found: list = [None] * cell.parts
    top_step: dict = {}
    cache: dict = {}
    runs, notes = 0, []
    counted = _CountingRunner(runner)
    for index in reversed(range(cell.parts)):
        level = index // cell.directions
        probe = _StackProbe(cell, index, found, top_step, counted, 10 * float(np.sqrt(eps)), cache)
        r = Recoverer(cell.layer(index), steps, batch, calls, probe, eps)
        if level > 0:
            r.alpha = _source_output(cell.kind)
        if level < cell.layers - 1:
            r.tol = max(TOL, r.floor)
        if level == cell.layers - 1:
            r.base()  # sites inside the step and the carried state are measured on the top layer
            top_step[index] = r.step
        r.gates()
        if level < cell.layers - 1:
            _reroute_inputs(r)
        result = r.result()
        found[index] = result.masks
        notes += [f"{site_name(cell, index)}: {n}" for n in result.notes]
    runs = counted.runs
    masks = [[found[i][call] for i in range(cell.parts)] for call in range(calls)]
    if cell.layers > 1:
        notes.append("below the top layer recurrent masks are measured where seen; the replay checks the rest")
    return Recovered(masks=masks, runs=runs, notes=notes)


def site_name(cell: Cell, index: int) -> str:
    level, direction = divmod(index, cell.directions)
    return f"layer {level + 1}" + (" reverse" if direction else "")


def _reroute_inputs(r: Recoverer) -> None:
    """Read the input masks still unknown through shifted units until none is left, or two more
    routings read nothing new (those elements have no effect on any output)."""
    stalled = 0
    for shift in range(1, r.cell.hidden_size):
        before = r.unknown_inputs()
        if before == 0 or stalled == 2:
            return
        for gate in ORDER[r.cell.kind]:
            if any(np.isnan(a[r.cell.gate_index(gate)]).any() for a in r.input):
                r.input_probe(gate, shift)
        stalled = stalled + 1 if r.unknown_inputs() == before else 0


class _CountingRunner:
    """Counts the framework runs a stack's recovery makes (cached probes are not runs)."""

    def __init__(self, runner: Runner) -> None:
        self.runner, self.runs = runner, 0

    def __call__(self, name: str, params, inputs: Sequence[CallInputs]) -> list[Trace]:
        self.runs += 1
        return self.runner(name, params, inputs)

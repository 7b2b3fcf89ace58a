"""Recovery in a stack of layers (any depth, either direction): probe one layer at a time through the others."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..case import CallInputs
from ..reference import Cell, Masks, Params, Trace
from .probes import ALPHA, BETA, ORDER, SAT, TOL, Recovered, Recoverer, Runner, atanh, div, dropped, split_batch

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


class _LevelProbe:
    """Runs a one-layer probe of level ``level`` inside the whole stack. Both directions of the level get the same
    probe, so one run reads both: the probed layer sees them as one call of ``directions * batch`` samples, the
    forward part's first, each in its own time order."""

    def __init__(self, cell: Cell, level: int, found: list, top_step: list, runner: Runner, floor: float) -> None:
        self.cell, self.level, self.found, self.top_step = cell, level, found, top_step
        self.runner, self.floor = runner, floor
        self.here = range(level * cell.directions, (level + 1) * cell.directions)
        self.through = cell.gates.index(_THROUGH[cell.kind])
        self.weights = {}
        for upper in range((level + 1) * cell.directions, cell.parts):
            scales = [np.nanmax(np.abs(m.input[self.through])) for m in found[upper] if m.input is not None]
            self.weights[upper] = 0.5 / max([1.0, *scales])
        self.paths: dict[int, list] = {}  # per direction, see ``_path``
        self.others: list[Params] = []  # every part's parameters where no probe sits, see ``params``

    def params(self, probe: Params) -> list[Params]:
        """Every part's parameters for one probe of this level: the probe in this level's parts, the same constant
        sources below and transparent layers above for every probe (built once)."""
        if not self.others:
            hid = self.cell.hidden_size
            for i in range(self.cell.parts):
                layer, level = self.cell.layer(i), i // self.cell.directions
                p = Params.zeros(layer)
                for gate, value in _SOURCE[self.cell.kind].items():
                    p.b_ih[p.rows(layer, gate)] = value
                if level > self.level:  # transparent: i = 1, f = 0, o = 1 (LSTM), z = 0, r = 1 (GRU)
                    half = (i % self.cell.directions) * hid
                    p.b_ih[p.rows(layer, _THROUGH[self.cell.kind])] = 0.0
                    p.w_ih[p.rows(layer, _THROUGH[self.cell.kind]), half : half + hid] = self.weights[i] * np.eye(hid)
                self.others.append(p)
        return [probe if i in self.here else p for i, p in enumerate(self.others)]

    def __call__(self, name: str, probe: Params, calls: Sequence[CallInputs]) -> list[Trace]:
        cell, here = self.cell, list(self.here)
        (joined,) = calls
        batch = joined.x.shape[1] // cell.directions
        x = joined.x[:, :batch]
        if not all(np.array_equal(x, joined.x[:, d * batch : (d + 1) * batch]) for d in range(1, cell.directions)):
            raise ValueError(
                f"probe {name!r} gave the directions of stack level {self.level + 1} different inputs; a level's "
                "directions are read by one run, so a probe must give them the same input"
            )
        h0 = np.zeros((cell.parts, batch, cell.hidden_size))
        h0[here] = joined.h0.reshape(cell.directions, batch, cell.hidden_size)
        c0 = None
        if joined.c0 is not None:
            c0 = np.zeros_like(h0)
            c0[here] = joined.c0.reshape(cell.directions, batch, cell.hidden_size)
        if self.level > 0:
            x = np.full((x.shape[0], batch, cell.input_size), ALPHA)
        (t,) = self.runner(name, self.params(probe), [CallInputs(x=np.ascontiguousarray(x), h0=h0, c0=c0)])
        return [
            Trace(
                y=np.concatenate([_natural(self.down(d, t.y), cell.is_reverse(i)) for d, i in enumerate(here)], axis=1),
                h=np.concatenate([t.h[i] for i in here]),
                c=None if t.c is None else np.concatenate([t.c[i] for i in here]),
            )
        ]

    def down(self, direction: int, y: np.ndarray) -> np.ndarray:
        """The outputs of the probed level's part in ``direction`` (forward time), from the top's, through the
        transparent layers above."""
        hid = self.cell.hidden_size
        v = np.asarray(y, dtype=float)[..., direction * hid : (direction + 1) * hid]
        for output, inside, weight in self._path(direction, v.shape[1]):
            h = v if output is None else div(v, output)
            if self.cell.kind == "lstm":
                a = atanh(atanh(h) if inside is None else div(atanh(h), inside))
            elif self.cell.kind == "gru":
                a = atanh(h if inside is None else div(h, inside))
            else:
                a = atanh(h)
            v = div(a, weight, self.floor)
        return v

    def _path(self, direction: int, batch: int) -> list:
        """Per level above, from the top down: the masks a unit passes through on its way up, the same for every
        probe of this level (the output mask, the masks inside the step, and its weight times its input mask)."""
        if direction not in self.paths:
            cell, hid, top = self.cell, self.cell.hidden_size, self.cell.layers - 1
            half, path = direction * hid, []
            for level in range(top, self.level, -1):
                part = level * cell.directions + direction
                reverse = cell.is_reverse(part)
                step = {}
                if level == top:  # the top's step masks, in this part's own time order: this direction's samples
                    # (a mask of exact ones is left out: multiplying and dividing by it changes nothing)
                    step = {
                        s: _natural(m[:, direction * batch : (direction + 1) * batch], reverse)
                        for s, m in self.top_step[0].items()
                        if not (m == 1.0).all()
                    }
                inside = None
                if "cell" in step or "candidate" in step:
                    inside = step.get("cell", 1.0) * step.get("candidate", 1.0)
                m_in = self.found[part][0].input
                m = 1.0 if m_in is None else _natural(m_in[self.through][..., half : half + hid], reverse)
                path.append((step.get("output"), inside, self.weights[part] * m))
            self.paths[direction] = path
        return self.paths[direction]


def recover_stack(cell: Cell, steps: int, batch: int, runner: Runner, eps: float) -> Recovered:
    """The masks of one call of a stack (``recover`` joins the calls along the batch), read a level at a time from
    the top: ``Recovered.masks`` holds one list, a ``Masks`` per part."""
    found: list = [None] * cell.parts
    top_step: list = []
    notes: list[str] = []
    runs = 0
    floor = 10 * float(np.sqrt(eps))
    for level in reversed(range(cell.layers)):
        probe = _LevelProbe(cell, level, found, top_step, runner, floor)
        r = Recoverer(cell.layer(level * cell.directions), steps, cell.directions * batch, 1, probe, eps)
        if level > 0:
            r.alpha = _source_output(cell.kind)
        if level < cell.layers - 1:
            r.tol = max(TOL, r.floor)
        if level == cell.layers - 1:
            r.base()  # sites inside the step and the carried state are measured on the top layer
            top_step.append(r.step[0])
        r.gates()
        if level < cell.layers - 1:
            _reroute_inputs(r)
        result = r.result()
        runs += result.runs
        (joined,) = result.masks
        for index, masks in zip(probe.here, split_batch(joined, cell.directions)):
            # a site is reported where its direction drops it (result() saw both directions as one)
            found[index] = [Masks(**{s: masks.get(s) for s in masks.active_sites() if dropped(masks.get(s), r.tol)})]
        notes += [f"layer {level + 1}: {n}" for n in result.notes]
    if cell.layers > 1:
        notes.append("below the top layer recurrent masks are measured where seen; the replay checks the rest")
    return Recovered(masks=[[found[i][0] for i in range(cell.parts)]], runs=runs, notes=notes)


def _reroute_inputs(r: Recoverer) -> None:
    """Read the input masks still unknown through shifted units until none is left, or two more
    routings read nothing new (those elements have no effect on any output)."""
    stalled, rerouted = 0, set()
    for shift in range(1, r.cell.hidden_size):
        before = r.unknown_inputs()
        if before == 0 or stalled == 2:
            break
        for gate in ORDER[r.cell.kind]:
            if any(np.isnan(a[r.cell.gate_index(gate)]).any() for a in r.input):
                r.input_probe(gate, shift)
                rerouted.add(gate)
        stalled = stalled + 1 if r.unknown_inputs() == before else 0
    for gate in (g for g in ORDER[r.cell.kind] if g in rerouted):  # the new readings, with the first (snapped)
        r.snap_inputs(gate)

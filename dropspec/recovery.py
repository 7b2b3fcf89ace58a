"""Black-box mask recovery: probe parameters under which a cell's outputs reveal its masks.

No framework internals are touched, so fused and cuDNN kernels are measured the same way.
Each probe run keeps every unit decoupled (diagonal weights) and saturates the gates it does
not read (a pre-activation of +-40 makes a float sigmoid exactly 0 or 1). What is left is a
closed-form function of one gate's pre-activation per unit and step, which we invert, using
the outputs of the same run at the previous step where the cell has memory. All steps are
inverted at once, so the cost does not grow with T or width, and errors do not accumulate.

The number of runs is fixed per cell: SimpleRNN 2, LSTM 10, GRU 8 (one more per input gate
for every further ``H`` input units when the input is wider than the state).

What cannot be seen is ``NaN``: a mask element with no effect on any output of its probe
(a unit whose output was dropped, a reset gate whose recurrent input was dropped). Two sites
that act at the same place are separated only where the data allow; see ``_select``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .adapters.base import CallInputs
from .masks import merges_carry_into_recurrent, site_shape
from .reference import STEP_SITES, Cell, Masks, Params, Trace

Runner = Callable[[str, Params, Sequence[CallInputs]], list[Trace]]

SAT = 40.0  # saturates a sigmoid to exactly 0 or 1, in float32 and float64
BETA = 0.5  # a tanh pre-activation away from 0 and from saturation
GAMMA = 0.5  # initial state of probes that need one
ALPHA = 1.0  # probe input value
W_IN = 0.1  # probe input weight: a kept unit with scale s moves the pre-activation by 0.1 s
W_REC = 0.2  # probe recurrent weight
W_NR = 0.5  # GRU reset-before r probe: n_t = tanh(0.2 + 0.5 r s_{t-1})
MEMORY = -2.0  # forget / update gate pre-activation of the memory probes (0.12)
TOL = 1e-3  # relative tolerance of "equal" between recovered mask values
GRU_MEMORY_SITES = ("carry_h", "state_in")  # the masks that multiply a GRU's memory path z * h_{t-1}


@dataclass
class Readout:
    """A probe that reads one gate: the biases that saturate the others, the inverse
    ``(call, y, h0, c0) -> pre-activation of the gate``, and the gate's own bias."""

    biases: dict[str, float]
    inverse: Callable[[int, np.ndarray, float, float], np.ndarray]
    center: float
    hidden_biases: dict[str, float] = field(default_factory=dict)
    hidden_weights: dict[str, float] = field(default_factory=dict)
    recurrent_weight: float = W_REC  # what the recurrent probe puts on the gate's diagonal


@dataclass
class Recovered:
    """The masks of every call (canonical form, ``None`` where a site is not dropped)."""

    masks: list[Masks]
    runs: int
    notes: list[str] = field(default_factory=list)


def _div(a: np.ndarray, b: np.ndarray | float, floor: float = 1e-300) -> np.ndarray:
    """``a / b``, and NaN (unobservable) where ``|b|`` is below ``floor``."""
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=float) / b
    small = np.abs(b) < floor
    if small.any():
        out = np.where(small, np.nan, out)
    return out


def _atanh(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctanh(v)


def _logit(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(v) - np.log1p(-v)


def _previous(first: np.ndarray | float, seq: np.ndarray) -> np.ndarray:
    """``[first, seq[0], ..., seq[T-2]]``: the value each step received from the one before."""
    head = np.broadcast_to(np.asarray(first, dtype=float), seq.shape[1:])[None]
    return np.concatenate([head, seq[:-1]], axis=0)


def plausible_mask(values: np.ndarray, tol: float = TOL) -> bool:
    """True when the finite values are 0 or one common keep value, and that value is 1 when
    nothing is dropped (a constant rescale of every unit is not a mask)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return True
    zero = np.abs(v) <= tol
    kept = v[~zero]
    if kept.size == 0:
        return True
    scale = float(np.median(kept))
    if not np.all(np.abs(kept - scale) <= tol * max(1.0, abs(scale))):
        return False
    return bool(zero.any()) or abs(scale - 1.0) <= tol


def snap(arrays: list[np.ndarray], tol: float = TOL) -> list[np.ndarray]:
    """Round a site's recovered values to the mask they measure: 0, or the one keep value (1 when
    within ``tol`` of it). Values that are not 0-or-one-value are left as measured."""
    sample = np.concatenate([a.ravel()[:100_000] for a in arrays])
    sample = sample[np.isfinite(sample) & (np.abs(sample) > tol)]
    scale = float(np.median(sample)) if sample.size else 1.0  # all kept values agree, or nothing is snapped
    limit = tol * max(1.0, abs(scale))
    for a in arrays:
        with np.errstate(invalid="ignore"):
            wrong = (np.abs(a) > tol) & (np.abs(a - scale) > limit)  # NaN compares False: not wrong
        if wrong.any():
            return arrays
    scale = 1.0 if abs(scale - 1.0) <= tol else scale
    return [np.where(np.isfinite(a), np.where(np.abs(a) <= tol, 0.0, scale), np.nan) for a in arrays]


class _Recoverer:
    def __init__(self, cell: Cell, steps: int, batch: int, calls: int, runner: Runner, eps: float) -> None:
        self.cell, self.steps, self.batch, self.calls, self.runner = cell, steps, batch, calls, runner
        # an effect smaller than this is lost in the framework's rounding: the element is unobservable
        self.floor = 10 * float(np.sqrt(eps))
        self.alpha = ALPHA  # the probed layer's input value (in a stack: the constant the layer below emits)
        # how close to 0 or the keep value a mask reading must be; in a stack, readings of lower layers pass
        # through the layers above and keep only about half the framework's digits, so it widens to the floor
        self.tol = TOL
        self.runs = 0
        self.notes: list[str] = []
        ones = np.ones((steps, batch, cell.hidden_size))
        # step sites of every call, filled in by the base probes
        self.step = [{site: ones.copy() for site in STEP_SITES} for _ in range(calls)]
        self.input = [np.full(site_shape(cell, "input", steps, batch), np.nan) for _ in range(calls)]
        self.recurrent = [np.full(site_shape(cell, "recurrent", steps, batch), np.nan) for _ in range(calls)]

    # -- running probes -------------------------------------------------------------------
    def params(self, **biases: float) -> Params:
        p = Params.zeros(self.cell)
        for gate, value in biases.items():
            p.b_ih[p.rows(self.cell, gate)] = value
        return p

    def run(self, name: str, p: Params, h0: float = 0.0, c0: float = 0.0, x: float = ALPHA) -> list[np.ndarray]:
        shape = (self.batch, self.cell.hidden_size)
        inputs = [
            CallInputs(
                x=np.full((self.steps, self.batch, self.cell.input_size), x),
                h0=np.full(shape, h0),
                c0=np.full(shape, c0) if self.cell.kind == "lstm" else None,
            )
            for _ in range(self.calls)
        ]
        traces = self.runner(name, p, inputs)
        self.runs += 1
        self.last_traces = traces
        return [np.asarray(t.y, dtype=float) for t in traces]

    def h_seen(self, call: int, y: np.ndarray) -> np.ndarray:
        """``h_t`` behind the emitted output: ``y_t`` divided by the output mask."""
        return _div(y, self.step[call]["output"])

    def state_fed(self, call: int, h: np.ndarray, h0: float) -> np.ndarray:
        """The state each step received: ``h_{t-1}``, times the carried mask where it is separable,
        times the mask on the state fed to the step (GRU)."""
        prev = _previous(h0, h)
        if merges_carry_into_recurrent(self.cell):
            return prev
        return prev * _previous(1.0, self.step[call]["carry_h"]) * self.step[call]["state_in"]

    # -- base probes: output, candidate, cell and carried state ----------------------------
    def base(self) -> None:
        getattr(self, f"_base_{self.cell.kind}")()
        for site in STEP_SITES:
            for call, values in enumerate(snap([self.step[c][site] for c in range(self.calls)])):
                self.step[call][site] = values

    def _base_rnn(self) -> None:
        ys = self.run("output", self.params(h=BETA))
        for call, (y, trace) in enumerate(zip(ys, self.last_traces)):
            self.step[call]["output"] = y / np.tanh(BETA)
            self.step[call]["carry_h"][-1] = trace.h / np.tanh(BETA)

    def _base_lstm(self) -> None:
        g0 = np.tanh(BETA)
        y1s = self.run("output", self.params(i=SAT, f=-SAT, g=BETA, o=SAT))
        y2s = self.run("memory", self.params(i=SAT, f=MEMORY, g=BETA, o=SAT), c0=GAMMA)
        finals = self.last_traces
        phi = 0.5 * (1 + np.tanh(0.5 * MEMORY))
        for call, (y1, y2) in enumerate(zip(y1s, y2s)):
            hypotheses = {}
            for where in ("output", "candidate", "cell"):
                m = _atanh(y1) / g0 if where != "output" else y1 / np.tanh(g0)
                m_out = m if where == "output" else 1.0
                c = _atanh(_div(y2, m_out))
                c_prev = _previous(GAMMA, c)
                if where == "output":
                    carried = _div(c - g0, phi * c_prev)
                elif where == "candidate":
                    carried = _div(c - m * g0, phi * c_prev)
                else:
                    carried = _div(_div(c, m) - g0, phi * c_prev)
                carry_c = np.ones_like(y1)
                carry_c[:-1] = carried[1:]
                carry_c[-1] = _div(finals[call].c, c[-1])
                zeros_agree = where != "output" or bool(np.all((np.abs(y1) > 0) | (np.abs(y2) <= 1e-7)))
                hypotheses[where] = (m, carry_c, carried[0], zeros_agree)
            where = self._select(hypotheses)
            m, carry_c, _, _ = hypotheses[where]
            self.step[call][where] = m
            self.step[call]["carry_c"] = carry_c
            h_last = _div(y2[-1], self.step[call]["output"][-1])
            self.step[call]["carry_h"][-1] = _div(finals[call].h, h_last)

    def _base_gru(self) -> None:
        n0 = np.tanh(BETA)
        zeta = 0.5 * (1 + np.tanh(0.5 * MEMORY))
        y1s = self.run("output", self.params(r=SAT, z=-SAT, n=BETA))
        y2s = self.run("memory", self.params(r=SAT, z=MEMORY, n=BETA), h0=GAMMA)
        finals = self.last_traces
        for call, (y1, y2) in enumerate(zip(y1s, y2s)):
            hypotheses = {}
            for where in ("output", "candidate"):
                m = y1 / n0
                h = _div(y2, m) if where == "output" else y2
                m_cand = 1.0 if where == "output" else m
                # what multiplied h_{t-1} on the memory path of step t: a carried mask of step t-1 (never
                # h0, and the returned state too), or a mask on the state fed to step t (h0 too, and the
                # returned state stays undropped)
                received = _div(h - (1 - zeta) * m_cand * n0, zeta * _previous(GAMMA, h))
                returned = _div(finals[call].h, h[-1])
                zeros_agree = where != "output" or bool(np.all((np.abs(y1) > 0) | (np.abs(y2) <= 1e-7)))
                carry_h = np.concatenate([received[1:], returned[None]])
                hypotheses[where, "carry_h"] = (m, carry_h, received[0], zeros_agree)
                hypotheses[where, "state_in"] = (m, received, returned, zeros_agree)
            where, memory = self._select(hypotheses)
            m, mask, _, _ = hypotheses[where, memory]
            self.step[call][where] = m
            self.step[call][memory] = mask

    def _select(self, hypotheses: dict) -> str | tuple[str, str]:
        """Which in-step site (and, for the GRU, which memory-path site) explains the base probes. A
        right hypothesis gives masks that are 0 or one keep value, leaves undropped what its sites
        leave undropped (the initial state for a carried mask, the returned state for a mask on the
        state fed to the step), and (for the output site) has no output where the output mask is 0;
        among those the fewest dropped units wins."""
        valid = []
        for key, (m, carried, undropped, zeros_agree) in hypotheses.items():
            undropped_ok = bool(np.all(~np.isfinite(undropped) | (np.abs(undropped - 1.0) <= TOL)))
            if zeros_agree and undropped_ok and plausible_mask(m) and plausible_mask(carried):
                dropped = int(np.sum(np.abs(m[np.isfinite(m)]) <= TOL))
                dropped += int(np.sum(np.abs(carried[np.isfinite(carried)]) <= TOL))
                valid.append((dropped, key))
        if not valid:
            self.notes.append(
                "the output, candidate and cell-state masks could not be told apart "
                "(more than one acts); they are recorded as output masks"
            )
            return next(iter(hypotheses))
        return min(valid)[1]

    # -- gate probes: input and recurrent masks, gate by gate ------------------------------
    def gates(self) -> None:
        for gate in _ORDER[self.cell.kind]:
            self.input_probe(gate)
            self.recurrent_probe(gate)

    def _readout(self, gate: str) -> Readout:
        kind = self.cell.kind
        if kind == "rnn":
            return Readout({"h": BETA}, lambda call, y, h0, c0: _atanh(self.h_seen(call, y)), BETA)
        return self._readout_lstm(gate) if kind == "lstm" else self._readout_gru(gate)

    def _memory(self, *sites: str) -> float:
        """A forget (LSTM) or update (GRU) gate value that keeps some memory, so the state fed to
        the next step never vanishes because one step's candidate was dropped, yet cannot grow:
        times the largest keep scale of the sites that multiply the memory, it stays below 1/2."""
        scale = max(float(np.nanmax(np.abs(self.step[c][s]))) for c in range(self.calls) for s in sites)
        return min(0.5, 0.5 / max(scale, 1.0))

    def _readout_lstm(self, gate: str) -> Readout:
        g0 = np.tanh(BETA)
        phi = self._memory("cell", "carry_c")
        kept = {"i": SAT, "f": float(_logit(np.array(phi))), "g": BETA, "o": SAT}  # o = i = 1, f = phi

        def k(call: int) -> np.ndarray:  # what multiplies the candidate inside the step
            return self.step[call]["cell"] * self.step[call]["candidate"]

        def memory(call: int, c_prev: np.ndarray) -> np.ndarray:  # m_cell * phi * c'_{t-1}
            s = self.step[call]
            return s["cell"] * phi * c_prev * _previous(1.0, s["carry_c"])

        def update(call: int, y: np.ndarray, c0: float) -> np.ndarray:
            """i_t g_t, from c_t = m_cell (phi c'_{t-1}) + k i_t g_t, with c read off h_t = tanh(c_t)."""
            c = _atanh(self.h_seen(call, y))
            return _div(c - memory(call, _previous(c0, c)), k(call))

        if gate == "g":
            return Readout(kept, lambda call, y, h0, c0: _atanh(update(call, y, c0)), BETA)
        if gate == "i":
            return Readout({**kept, "i": 0.0}, lambda call, y, h0, c0: _logit(update(call, y, c0) / g0), 0.0)
        if gate == "o":

            def output_gate(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
                # every mask on c is known by now, so c_t follows from c0 without reading o
                c, cs = np.full(y.shape[1:], c0), np.empty_like(y)
                kg = k(call) * g0
                for t in range(y.shape[0]):
                    c = self._cell_step(call, t, phi, c, kg[t])
                    cs[t] = c
                return _logit(_div(self.h_seen(call, y), np.tanh(cs)))

            return Readout({**kept, "o": 0.0}, output_gate, 0.0)

        def forget(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
            # c_t = m_cell (f_t c'_{t-1} + m_cand g0), read from h_t = tanh(c_t) at t and t-1
            s = self.step[call]
            c = _atanh(self.h_seen(call, y))
            carried = _previous(c0, c) * _previous(1.0, s["carry_c"])
            return _logit(_div(_div(c, s["cell"]) - s["candidate"] * g0, carried, self.floor))

        return Readout({**kept, "f": -1.0}, forget, -1.0)

    def _cell_step(self, call: int, t: int, phi: float, c_prev: np.ndarray, kg: np.ndarray) -> np.ndarray:
        s = self.step[call]
        carried = c_prev * (s["carry_c"][t - 1] if t > 0 else 1.0)
        return s["cell"][t] * phi * carried + kg

    def _readout_gru(self, gate: str) -> Readout:
        zeta = self._memory(*GRU_MEMORY_SITES)
        kept = {"r": SAT, "z": float(_logit(np.array(zeta))), "n": BETA}  # r = 1, z = zeta

        def cand(call: int) -> np.ndarray:
            return self.step[call]["candidate"]

        def m_n(call: int) -> np.ndarray:  # the recurrent mask of the n gate, recovered first
            return self.recurrent[call][2]

        def candidate(call: int, y: np.ndarray, h0: float) -> np.ndarray:
            """n_t, from h_t = zeta s_{t-1} + (1 - zeta) m_cand n_t."""
            h = self.h_seen(call, y)
            return _div(h - zeta * self.state_fed(call, h, h0), (1 - zeta) * cand(call))

        if gate == "n":
            return Readout(kept, lambda call, y, h0, c0: _atanh(candidate(call, y, h0)), BETA)
        if gate == "r" and self.cell.reset_after and self.cell.b_hn:  # n = tanh(r * b_hn) with b_hn = 1
            return Readout(
                {**kept, "r": 0.0, "n": 0.0},
                lambda call, y, h0, c0: _logit(_atanh(candidate(call, y, h0))),
                0.0,
                hidden_biases={"n": 1.0},
            )
        if gate == "r":  # n = tanh(0.2 + 0.5 (r * s_{t-1} * m_n)): reset before, or after without b_hn

            def reset(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
                fed = self.state_fed(call, self.h_seen(call, y), h0) * m_n(call)
                return _logit(_div(_atanh(candidate(call, y, h0)) - 0.2, W_NR * fed, self.floor))

            return Readout({**kept, "r": 0.0, "n": 0.2}, reset, 0.0, hidden_weights={"n": W_NR})

        # h_t = z_t s_{t-1} with n = 0: z is read as a ratio of consecutive states. z times the keep
        # scale of the masks on the memory path is centred near 1 - 1/(2T), so the state fades by at
        # most e^-1/2 over the sequence and a recurrent mask keeps its effect on z at every step,
        # whatever the other masks are. Where a mask on the memory path scales the state up, z sits
        # mid-slope, and a positive recurrent weight would feed back (larger h, larger z, z * scale
        # above 1: the state runs away); a negative one makes the state settle instead.
        scale = max(
            1.0, *(float(np.nanmax(np.abs(self.step[c][s]))) for c in range(self.calls) for s in GRU_MEMORY_SITES)
        )
        center = float(_logit(np.array((1 - 1 / (2 * self.steps)) / scale)))

        def update(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
            h = self.h_seen(call, y)
            return _logit(_div(h, self.state_fed(call, h, h0), self.floor))

        weight = -W_REC if scale > 1.0 else W_REC
        return Readout({**kept, "z": center, "n": 0.0}, update, center, recurrent_weight=weight)

    def _probe_params(self, gate: str) -> tuple[Params, Readout]:
        readout = self._readout(gate)
        p = self.params(**readout.biases)
        eye = np.eye(self.cell.hidden_size)
        for g, value in readout.hidden_biases.items():
            p.b_hh[p.rows(self.cell, g)] = value
        for g, value in readout.hidden_weights.items():
            p.w_hh[p.rows(self.cell, g)] = value * eye
        return p, readout

    def input_probe(self, gate: str, shift: int = 0) -> None:
        """Read gate ``gate``'s input masks: unit ``j`` reads input unit ``j + shift`` (within each
        block of ``H`` inputs). A nonzero shift only fills elements still unknown: in a stack, an
        element whose unit is dropped above is seen again through another unit."""
        k, hid, width = self.cell.gate_index(gate), self.cell.hidden_size, self.cell.input_size
        for start in range(0, width, hid):
            n = min(hid, width - start)
            columns = start + (np.arange(n) + shift) % n
            p, readout = self._probe_params(gate)
            p.w_ih[p.rows(self.cell, gate).start + np.arange(n), columns] = W_IN
            ys = self.run(f"input.{gate}", p, h0=GAMMA, c0=GAMMA)
            for call, y in enumerate(ys):
                a = readout.inverse(call, y, GAMMA, GAMMA)
                read = (a[..., :n] - readout.center) / (W_IN * self.alpha)
                known = self.input[call][k][..., columns]
                self.input[call][k][..., columns] = np.where(np.isfinite(known), known, read)
        for call, values in enumerate(snap([self.input[c][k] for c in range(self.calls)], self.tol)):
            self.input[call][k] = values

    def unknown_inputs(self) -> int:
        return int(sum(np.isnan(a).sum() for a in self.input))

    def recurrent_probe(self, gate: str) -> None:
        k = self.cell.gate_index(gate)
        p, readout = self._probe_params(gate)
        p.w_hh[p.rows(self.cell, gate)] += readout.recurrent_weight * np.eye(self.cell.hidden_size)
        ys = self.run(f"recurrent.{gate}", p, h0=GAMMA, c0=GAMMA)
        for call, y in enumerate(ys):
            a = readout.inverse(call, y, GAMMA, GAMMA)
            fed = self.state_fed(call, self.h_seen(call, y), GAMMA)
            self.recurrent[call][k] = _div(a - readout.center, readout.recurrent_weight * fed, self.floor)
        for call, values in enumerate(snap([self.recurrent[c][k] for c in range(self.calls)], self.tol)):
            self.recurrent[call][k] = values

    # -- result ---------------------------------------------------------------------------
    def result(self) -> Recovered:
        masks = []
        for call in range(self.calls):
            sites = {"input": self.input[call], "recurrent": self.recurrent[call], **self.step[call]}
            kept = {}
            for site in self.cell.sites:
                values = sites[site]
                finite = values[np.isfinite(values)]
                active = not np.all(np.abs(finite - 1.0) <= self.tol)
                kept[site] = values if active else None
            masks.append(Masks(**kept))
        # a site dropped in one call is reported for every call, so calls stay comparable
        for site in self.cell.sites:
            if any(m.get(site) is not None for m in masks):
                for call, m in enumerate(masks):
                    if m.get(site) is None:
                        sites = {"input": self.input[call], "recurrent": self.recurrent[call], **self.step[call]}
                        masks[call] = m.with_site(site, sites[site])
        return Recovered(masks=masks, runs=self.runs, notes=self.notes)


def recover(
    cell: Cell,
    steps: int,
    batch: int,
    calls: int,
    runner: Runner,
    eps: float = float(np.finfo(np.float64).eps),
    weight_hh: bool = False,
) -> Recovered:
    """Recover every mask a cell draws over ``calls`` consecutive calls, by probing ``runner``
    (which runs the framework in training mode with a fixed seed). ``eps`` is the framework's
    float resolution: effects below about its square root count as unobservable. For a stack,
    ``Recovered.masks`` holds per call a list of ``Masks``, one per layer. With ``weight_hh`` (a
    claim that drops the recurrent weights; one-layer cells) the weight mask is read too, by the
    probes of ``recovery_weights``."""
    if cell.stacked:
        return _recover_stack(cell, steps, batch, calls, runner, eps)
    r = _Recoverer(cell, steps, batch, calls, runner, eps)
    r.base()
    r.gates()
    if weight_hh:
        from .recovery_weights import recover_weight_hh  # it builds on this module's probes

        return recover_weight_hh(r, r.result())
    return r.result()


# In a stack, the probed layer's input comes from layers that emit a known constant whatever their
# masks (bias only), and its output reaches the top through "transparent" layers that pass each
# unit on through one gate, inverted from the top down with the input masks already recovered.
# Each direction of a bidirectional layer is its own chain: the forward part of every layer above
# reads the forward half of the features, the reverse part the reverse half, and both directions
# of the probed layer get the same probe, so one run reads both.
# Where a layer above drops unit u at step t, the probed layer's unit u is unseen there. Its input
# masks are then read again through other units (``_Recoverer.input_probe``'s shift), so masks on
# the inputs of every layer (dropout between layers) are exact at any depth. Recurrent masks below
# the top layer are measured where seen, and the replay checks the rest.
_SOURCE = {
    "rnn": {"h": BETA},
    "lstm": {"i": SAT, "f": -SAT, "g": BETA, "o": SAT},
    "gru": {"r": SAT, "z": -SAT, "n": BETA},
}
_THROUGH = {"rnn": "h", "lstm": "g", "gru": "n"}
_ORDER = {"rnn": ["h"], "lstm": ["g", "i", "o", "f"], "gru": ["n", "r", "z"]}


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
            h = _div(v, step.get("output", ones))
            inside = step.get("cell", ones) * step.get("candidate", ones)
            if cell.kind == "lstm":
                a = _atanh(_div(_atanh(h), inside))
            elif cell.kind == "gru":
                a = _atanh(_div(h, inside))
            else:
                a = _atanh(h)
            m_in = self.found[part][call].input
            m = 1.0 if m_in is None else _natural(m_in[self.through][..., half : half + hid], reverse)
            v = _div(a, self.weights[part] * m, self.floor)
        return v


def _recover_stack(cell: Cell, steps: int, batch: int, calls: int, runner: Runner, eps: float) -> Recovered:
    found: list = [None] * cell.parts
    top_step: dict = {}
    cache: dict = {}
    runs, notes = 0, []
    counted = _CountingRunner(runner)
    for index in reversed(range(cell.parts)):
        level = index // cell.directions
        probe = _StackProbe(cell, index, found, top_step, counted, 10 * float(np.sqrt(eps)), cache)
        r = _Recoverer(cell.layer(index), steps, batch, calls, probe, eps)
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


def _reroute_inputs(r: _Recoverer) -> None:
    """Read the input masks still unknown through shifted units until none is left, or two more
    routings read nothing new (those elements have no effect on any output)."""
    stalled = 0
    for shift in range(1, r.cell.hidden_size):
        before = r.unknown_inputs()
        if before == 0 or stalled == 2:
            return
        for gate in _ORDER[r.cell.kind]:
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


def probe_runs(cell: Cell) -> int:
    """How many framework runs ``recover`` makes for a one-layer ``cell``; for a stack the fewest it
    makes (both directions of a layer read by the same runs, no unit read again through another)."""
    base = {"rnn": 1, "lstm": 2, "gru": 2}[cell.kind]
    runs = base
    for index in range(0, cell.parts, cell.directions):
        layer = cell.layer(index)
        chunks = -(-layer.input_size // layer.hidden_size)
        runs += len(cell.gates) * (chunks + 1)
    return runs

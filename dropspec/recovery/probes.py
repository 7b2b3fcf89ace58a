"""Black-box mask recovery: probe parameters under which a cell's outputs reveal its masks.

No framework internals are touched, so fused and cuDNN kernels are measured the same way.
Each probe run keeps every unit decoupled (diagonal weights) and saturates the gates it does
not read (a pre-activation of +-40 makes a float sigmoid exactly 0 or 1). What is left is a
closed-form function of one gate's pre-activation per unit and step, which we invert, using
the outputs of the same run at the previous step where the cell has memory. All steps are
inverted at once, so the cost does not grow with T or width, and errors do not accumulate.

The number of runs is fixed per cell (``recovery.probe_runs``): SimpleRNN 4, LSTM 13, GRU 9, the zone
probes of ``recovery.zone`` included (one more per input gate for every further ``H`` input units when the
input is wider than the state).

What cannot be seen is ``NaN``: a mask element with no effect on any output of its probe
(a unit whose output was dropped, a reset gate whose recurrent input was dropped). Two sites
that act at the same place are separated only where the data allow; see ``_select``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..case import CallInputs
from ..masks import merges_carry_into_recurrent, site_shape
from ..reference import STEP_SITES, Cell, Masks, Params, Trace, batch_axis

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
# kept values a keep scale is the median of: they agree to TOL (every value is checked against it), so more only
# moves the scale in digits past the framework's precision
SAMPLE = 4096
GRU_MEMORY_SITES = ("carry_h", "state_in")  # the masks that multiply a GRU's memory path z * h_{t-1}
DRIVE = 0.5  # a SimpleRNN without bias: what all inputs together add to a unit's pre-activation (about BETA)


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
    # a cell without bias: the weight on every input of the gate that the recurrent probe adds, so a unit whose
    # recurrent mask is 0 does not fall to 0 for good; its term is taken out with the input masks already read
    input_drive: float = 0.0


@dataclass
class Recovered:
    """The masks of every call (canonical form, ``None`` where a site is not dropped)."""

    masks: list[Masks]
    runs: int
    notes: list[str] = field(default_factory=list)


def dropped(values: np.ndarray, tol: float = TOL) -> bool:
    """Whether a site's recovered values drop anything: some finite value is not 1 (within ``tol``)."""
    with np.errstate(invalid="ignore"):
        off = np.abs(values - 1.0) > tol  # NaN compares False
    return bool(off.any() and np.isfinite(values[off]).any())


def split_batch(masks: Masks, pieces: int) -> list[Masks]:
    """``masks`` of ``pieces * B`` samples, as the masks of each run of ``B`` samples, in order: the runs of calls or
    the directions that a probe read as one batch (the inverse of ``reference.run_calls``' joining)."""
    out: list[dict[str, np.ndarray]] = [{} for _ in range(pieces)]
    for site in masks.active_sites():
        for piece, part in zip(out, np.split(masks.get(site), pieces, axis=batch_axis(site))):
            piece[site] = np.ascontiguousarray(part)
    return [Masks(**piece) for piece in out]


def div(a: np.ndarray, b: np.ndarray | float, floor: float = 1e-300) -> np.ndarray:
    """``a / b``, and NaN (unobservable) where ``|b|`` is below ``floor``."""
    b = np.asarray(b, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.asarray(a, dtype=float) / b
    small = np.abs(b) < floor
    if small.any():
        out = np.where(small, np.nan, out)
    return out


def atanh(v: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arctanh(v)


def logit(v: np.ndarray) -> np.ndarray:
    # one logarithm instead of log(v) - log1p(-v): 1 - v is exact where v is near 1 (Sterbenz), so the ratio loses
    # nothing that matters, and the log is much of an LSTM readout's cost
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - v
        if not isinstance(out, np.ndarray):  # a scalar
            return np.log(v / out)
        np.divide(v, out, out=out)  # in place: no temporary array per operation
        return np.log(out, out=out)


def previous(first: np.ndarray | float, seq: np.ndarray) -> np.ndarray:
    """``[first, seq[0], ..., seq[T-2]]``: the value each step received from the one before."""
    head = np.broadcast_to(np.asarray(first, dtype=float), seq.shape[1:])[None]
    return np.concatenate([head, seq[:-1]], axis=0)


def median(values: np.ndarray) -> float:
    """``np.median`` of a 1-d array without NaN, bit for bit, less its search for NaN: a partition less (medians of
    recovered readings are much of a small case's recovery), and no import of ``numpy.ma``, which that search makes
    the first time (8 ms, charged to whichever case comes first)."""
    half = values.size // 2
    if values.size % 2:
        return float(np.partition(values, half)[half])
    part = np.partition(values, (half - 1, half))
    return float((part[half - 1] + part[half]) / 2)


def first_kept(values: np.ndarray, tol: float = TOL, n: int = SAMPLE) -> np.ndarray:
    """The first ``n`` finite values of ``values`` that are not 0, read from a prefix where it holds them: the
    sample a keep scale is the median of, without a pass over a long mask (its every value is checked against
    the scale after)."""
    flat = values.ravel()
    head = flat[: 4 * n]
    kept = head[np.isfinite(head) & (np.abs(head) > tol)]
    if kept.size < n and head.size < flat.size:
        kept = flat[np.isfinite(flat) & (np.abs(flat) > tol)]
    return kept[:n]


def plausible_mask(values: np.ndarray, tol: float = TOL) -> bool:
    """True when the finite values are 0 or one common keep value, and that value is 1 when
    nothing is dropped (a constant rescale of every unit is not a mask)."""
    finite = np.isfinite(values)
    v = values if finite.all() else values[finite]  # no copy of a site observed whole
    sample = first_kept(v, tol)
    if sample.size == 0:  # no value, or all of them 0
        return True
    scale = median(sample)
    zero = np.abs(v) <= tol
    with np.errstate(invalid="ignore"):
        wrong = np.abs(v - scale) > tol * max(1.0, abs(scale))
    wrong &= ~zero
    if wrong.any():
        return False
    return bool(zero.any()) or abs(scale - 1.0) <= tol


def snap(arrays: list[np.ndarray], tol: float = TOL) -> list[np.ndarray]:
    """Round a site's recovered values to the mask they measure: 0, or the one keep value (1 when
    within ``tol`` of it). Values that are not 0-or-one-value are left as measured."""
    return snap_to(arrays, tol)[0]


def snap_to(arrays: list[np.ndarray], tol: float = TOL) -> tuple[list[np.ndarray], float | None]:
    """``snap``, and the keep value it rounded the kept values to; None where it left them as measured (some
    value is neither 0 nor the keep value: not a mask)."""
    if all(a.flat[0] == 1.0 and (a == 1.0).all() for a in arrays):  # a site no probe wrote to (or all 1)
        return arrays, 1.0
    sample = np.concatenate([first_kept(a, tol) for a in arrays])
    scale = median(sample) if sample.size else 1.0  # all kept values agree, or nothing is snapped
    limit = tol * max(1.0, abs(scale))
    zeros = []
    for a in arrays:
        with np.errstate(invalid="ignore"):
            zero = np.abs(a) <= tol  # NaN compares False: not zero, and not wrong below
            wrong = np.abs(a - scale) > limit
        wrong &= ~zero
        if wrong.any():  # an infinite value is wrong: none is left below
            return arrays, None
        zeros.append(zero)
    scale = 1.0 if abs(scale - 1.0) <= tol else scale
    out = [np.where(zero, 0.0, scale) for zero in zeros]
    for a, snapped in zip(arrays, out):
        snapped[np.isnan(a)] = np.nan
    return out, scale


class Recoverer:
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
        self.zoned_y: dict[int, np.ndarray] = {}  # per call, the outputs of the last probe read under zoneout
        self.zoned: dict[str, bool] = {}  # per zone site, whether ``zones`` found it (never run in a stack)
        self.largest: dict[tuple[str, ...], float] = {}  # see ``_largest``
        self.ones: dict[str, bool] = {}  # per step site, whether it is 1 everywhere (see ``mask``)

    # -- running probes -------------------------------------------------------------------
    def params(self, **biases: float) -> Params:
        p = Params.zeros(self.cell)
        for gate, value in biases.items():
            p.b_ih[p.rows(self.cell, gate)] = value
        return p

    def run(self, name: str, p: Params, h0: float = 0.0, c0: float = 0.0, x: float = ALPHA) -> list[np.ndarray]:
        shape = (self.batch, self.cell.hidden_size)
        # constant inputs as read-only views of one value: the runner copies what it hands the framework
        inputs = [
            CallInputs(
                x=np.broadcast_to(float(x), (self.steps, self.batch, self.cell.input_size)),
                h0=np.broadcast_to(float(h0), shape),
                c0=np.broadcast_to(float(c0), shape) if self.cell.kind == "lstm" else None,
            )
            for _ in range(self.calls)
        ]
        traces = self.runner(name, p, inputs)
        self.runs += 1
        self.last_traces = traces
        return [np.asarray(t.y, dtype=float) for t in traces]

    def h_seen(self, call: int, y: np.ndarray) -> np.ndarray:
        """``h_t`` behind the emitted output: ``y_t`` divided by the output mask."""
        out = self.mask(call, "output")
        return np.asarray(y, dtype=float) if out is None else div(y, out)

    def mask(self, call: int, site: str) -> np.ndarray | None:
        """The step mask at ``site``, or None where it is exactly 1 everywhere (no probe found it dropped): the
        readouts then skip multiplying or dividing by it, which gives the same values at a fraction of the cost."""
        if site not in self.ones:
            self.ones[site] = all((self.step[c][site] == 1.0).all() for c in range(self.calls))
        return None if self.ones[site] else self.step[call][site]

    def _step_written(self) -> None:
        """The step masks changed: what was kept of them (``mask``, ``_largest``) is computed again."""
        self.ones.clear()
        self.largest.clear()

    def state_fed(self, call: int, h: np.ndarray, h0: float) -> np.ndarray:
        """The state each step received: ``h_{t-1}``, times the carried mask where it is separable,
        times the mask on the state fed to the step (GRU). Under zoneout the zoned state, whatever ``h``."""
        if self.zoning("zone_h") and call in self.zoned_y:
            h = self.h_seen(call, self.zoned_y[call])
        prev = previous(h0, h)
        if merges_carry_into_recurrent(self.cell):
            return prev
        carried, fed = self.mask(call, "carry_h"), self.mask(call, "state_in")
        if carried is not None:
            prev = prev * previous(1.0, carried)
        return prev if fed is None else prev * fed

    # -- zoneout: read first (recovery.zone), then every other probe sees through it ------------
    def zoning(self, site: str) -> bool:
        """Whether the zone probes found zone masks at ``site`` (``zone_h`` or ``zone_c``)."""
        return self.zoned.get(site, False)

    def unzone(self, call: int, y: np.ndarray, h0: float) -> np.ndarray:
        """The values the steps computed, ``h~_t``, behind outputs ``y`` of zoned states (``y`` itself without
        zoneout): ``h_{t-1} + (h_t - h_{t-1}) / u_t``, NaN where the unit was zoned out. Keeps ``y`` for the
        states the probes read next (``state_fed``)."""
        if not self.zoning("zone_h"):
            return y
        self.zoned_y[call] = y
        prev = previous(h0, y)
        return prev + div(y - prev, self.step[call]["zone_h"])

    def zoned_c(self, call: int, c_new: np.ndarray, c0: float) -> np.ndarray:
        """The LSTM cell states carried on, from the values ``c~_t`` the steps computed: ``c_{t-1} + u^c_t (c~_t -
        c_{t-1})`` from ``c0`` (``c_new`` itself without zoneout on c)."""
        if not self.zoning("zone_c"):
            return c_new
        u, out = self.step[call]["zone_c"], np.empty_like(c_new)
        c = np.full(c_new.shape[1:], float(c0))
        for t in range(c_new.shape[0]):
            c = np.where(u[t] == 0.0, c, c + u[t] * (c_new[t] - c))
            out[t] = c
        return out

    def c_before(self, call: int, c_new: np.ndarray, c0: float) -> np.ndarray:
        """The cell state each step received: ``c0``, then the carried (zoned) states."""
        return previous(c0, self.zoned_c(call, c_new, c0))

    # -- base probes: output, candidate, cell and carried state ----------------------------
    def base(self) -> None:
        getattr(self, f"_base_{self.cell.kind}")()
        for site in STEP_SITES:
            for call, values in enumerate(snap([self.step[c][site] for c in range(self.calls)])):
                self.step[call][site] = values
        self._step_written()

    def act(self, a: np.ndarray | float) -> np.ndarray:
        """The SimpleRNN's activation (``Cell.activation``), and its inverse below."""
        return np.tanh(a) if self.cell.activation == "tanh" else np.asarray(a, dtype=float)

    def act_inverse(self, v: np.ndarray) -> np.ndarray:
        return atanh(v) if self.cell.activation == "tanh" else np.asarray(v, dtype=float)

    def _base_rnn(self) -> None:
        if not self.cell.bias:
            return self._base_rnn_without_bias()
        zoned = self.run("output", self.params(h=BETA))
        ys = [self.unzone(call, y, 0.0) for call, y in enumerate(zoned)]
        level = float(self.act(BETA))
        for call, (y, trace) in enumerate(zip(ys, self.last_traces)):
            self.step[call]["output"] = y / level
            self.step[call]["carry_h"][-1] = trace.h / level
        if self.zoning("zone_h"):  # the returned state is the zoned one, which a scaled zone mask moves off level
            for call, (y, trace) in enumerate(zip(zoned, self.last_traces)):
                self.step[call]["carry_h"][-1] = div(trace.h, y[-1])

    def _base_rnn_without_bias(self) -> None:
        """Without a bias nothing drives a unit past the input and recurrent masks, so every unit reads all
        the inputs at once (``DRIVE / I`` on each, no recurrent weight): at step ``t`` all units of a sample
        share one activation ``act(a_t)``, the largest output of the step is ``s * act(a_t)`` with ``s`` the
        output mask's kept scale, and the output mask reads 0 or 1 against it. The returned state escapes the
        output mask: it reads the carried mask over ``s``, so where nothing drops the returned state (it reads
        one value for every unit) that value is ``1 / s``. Where both drop, how the scale splits between them
        cannot be told: the output mask's kept units stay 1, and a note says so."""
        p = self.params()
        p.w_ih[...] = DRIVE / self.cell.input_size
        ys = self.run("output", p)
        outputs, returned = [], []
        for y, trace in zip(ys, self.last_traces):
            level = np.max(np.abs(y), axis=-1, keepdims=True)  # s * act(a_t); 0 where every input was dropped
            outputs.append(div(y, level))
            returned.append(div(trace.h, level[-1]))
        values = np.concatenate([r[np.isfinite(r)] for r in returned])
        scale = 1.0
        if values.size and abs(values[0]) > TOL and np.all(np.abs(values - values[0]) <= TOL * abs(values[0])):
            scale = 1.0 / float(values[0])  # the returned state is not dropped: its one value is 1 / s
        elif any(np.nanmin(np.abs(o), initial=1.0) <= TOL for o in outputs):
            self.notes.append(
                "a cell without bias whose output and returned state are both dropped: the output mask's kept "
                "scale cannot be told apart from the carried and input masks' (the outputs are their product); "
                "its kept units are read as 1"
            )
        outputs, returned = [o * scale for o in outputs], [r * scale for r in returned]
        # a step whose outputs are all 0 had every input dropped, or every output: where a mask drops no unit
        # anywhere else it is not dropped, and reads 1 there too (else _settle_without_bias decides, or NaN)
        for values in (outputs, returned):
            if not np.any(np.abs(np.concatenate([v[np.isfinite(v)] for v in values])) <= TOL):
                for v in values:
                    v[~np.isfinite(v)] = 1.0
        for call in range(self.calls):
            self.step[call]["output"] = outputs[call]
            self.step[call]["carry_h"][-1] = returned[call]

    def _settle_without_bias(self) -> None:
        """The steps ``_base_rnn_without_bias`` left unknown (every output 0, and the output mask drops
        elsewhere): where the input masks drop no unit, the inputs reached every unit there, so every output
        was dropped. Where the inputs drop too, those steps stay unobservable (NaN)."""
        inputs = np.concatenate([a[np.isfinite(a)] for c in range(self.calls) for a in self.input[c]])
        if np.any(np.abs(inputs) <= TOL):
            return
        for call in range(self.calls):
            out = self.step[call]["output"]
            self.step[call]["output"] = np.where(np.all(np.isnan(out), axis=-1, keepdims=True), 0.0, out)
        self._step_written()

    def _base_lstm(self) -> None:
        g0 = np.tanh(BETA)
        y1s = self.run("output", self.params(i=SAT, f=-SAT, g=BETA, o=SAT))
        y2s = self.run("memory", self.params(i=SAT, f=MEMORY, g=BETA, o=SAT), c0=GAMMA)
        finals = self.last_traces
        phi = 0.5 * (1 + np.tanh(0.5 * MEMORY))
        for call, (y1, y2) in enumerate(zip(y1s, y2s)):
            hypotheses = {}
            new1, new2 = self.unzone(call, y1, 0.0), self.unzone(call, y2, 0.0)  # y1, y2 without zoneout
            for where in ("output", "candidate", "cell"):
                m = atanh(new1) / g0 if where != "output" else new1 / np.tanh(g0)
                m_out = m if where == "output" else 1.0
                c = atanh(div(new2, m_out))
                c_prev = self.c_before(call, c, GAMMA)
                if where == "output":
                    carried = div(c - g0, phi * c_prev)
                elif where == "candidate":
                    carried = div(c - m * g0, phi * c_prev)
                else:
                    carried = div(div(c, m) - g0, phi * c_prev)
                carry_c = np.ones_like(y1)
                carry_c[:-1] = carried[1:]
                carry_c[-1] = div(finals[call].c, self.zoned_c(call, c, GAMMA)[-1])
                zeros_agree = where != "output" or bool(np.all((np.abs(y1) > 0) | (np.abs(y2) <= 1e-7)))
                hypotheses[where] = (m, carry_c, carried[0], zeros_agree)
            where = self._select(hypotheses)
            m, carry_c, _, _ = hypotheses[where]
            self.step[call][where] = m
            self.step[call]["carry_c"] = carry_c
            h_last = div(y2[-1], self.step[call]["output"][-1])
            self.step[call]["carry_h"][-1] = div(finals[call].h, h_last)

    def _base_gru(self) -> None:
        n0 = np.tanh(BETA)
        zeta = 0.5 * (1 + np.tanh(0.5 * MEMORY))
        y1s = self.run("output", self.params(r=SAT, z=-SAT, n=BETA))
        y2s = self.run("memory", self.params(r=SAT, z=MEMORY, n=BETA), h0=GAMMA)
        finals = self.last_traces
        for call, (y1, y2) in enumerate(zip(y1s, y2s)):
            hypotheses = {}
            new2 = self.unzone(call, y2, GAMMA)  # y2 without zoneout (itself without it)
            for where in ("output", "candidate"):
                m = self.unzone(call, y1, 0.0) / n0
                h = div(new2, m) if where == "output" else new2
                zoned = div(y2, m) if where == "output" else y2  # the state carried on
                m_cand = 1.0 if where == "output" else m
                # what multiplied h_{t-1} on the memory path of step t: a carried mask of step t-1 (never
                # h0, and the returned state too), or a mask on the state fed to step t (h0 too, and the
                # returned state stays undropped)
                received = div(h - (1 - zeta) * m_cand * n0, zeta * previous(GAMMA, zoned))
                returned = div(finals[call].h, zoned[-1])
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
        for gate in ORDER[self.cell.kind]:
            self.input_probe(gate)
            if not self.cell.bias:  # the recurrent probe reads h through the output mask
                self._settle_without_bias()
            self.recurrent_probe(gate)

    def _readout(self, gate: str) -> Readout:
        kind = self.cell.kind
        if kind == "rnn":

            def inverse(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
                return self.act_inverse(self.h_seen(call, y))

            if not self.cell.bias:  # no bias to centre the unit on: the probed weight alone drives it
                return Readout({}, inverse, 0.0, input_drive=DRIVE / self.cell.input_size)
            return Readout({"h": BETA}, inverse, BETA)
        return self._readout_lstm(gate) if kind == "lstm" else self._readout_gru(gate)

    def _memory(self, *sites: str) -> float:
        """A forget (LSTM) or update (GRU) gate value that keeps some memory, so the state fed to
        the next step never vanishes because one step's candidate was dropped, yet cannot grow:
        times the largest keep scale of the sites that multiply the memory, it stays below 1/2."""
        return min(0.5, 0.5 / max(self._largest(sites), 1.0))

    def _largest(self, sites: tuple[str, ...]) -> float:
        """The largest ``|value|`` of the step masks at ``sites``, over every call. Every gate probe asks for it,
        and the step masks change only in ``base`` and ``_settle_without_bias`` (see ``_step_written``)."""
        if sites not in self.largest:
            self.largest[sites] = max(
                float(np.nanmax(np.abs(self.step[c][s]))) for c in range(self.calls) for s in sites
            )
        return self.largest[sites]

    def _readout_lstm(self, gate: str) -> Readout:
        g0 = np.tanh(BETA)
        phi = self._memory("cell", "carry_c")
        kept = {"i": SAT, "f": float(logit(np.array(phi))), "g": BETA, "o": SAT}  # o = i = 1, f = phi

        def k(call: int) -> np.ndarray:  # what multiplies the candidate inside the step
            return self.step[call]["cell"] * self.step[call]["candidate"]

        def memory(call: int, c_prev: np.ndarray) -> np.ndarray:  # m_cell * phi * c'_{t-1}
            cell, carried = self.mask(call, "cell"), self.mask(call, "carry_c")
            out = phi * c_prev if cell is None else cell * phi * c_prev
            return out if carried is None else out * previous(1.0, carried)

        def update(call: int, y: np.ndarray, c0: float) -> np.ndarray:
            """i_t g_t, from c_t = m_cell (phi c'_{t-1}) + k i_t g_t, with c read off h_t = tanh(c_t)."""
            c = atanh(self.h_seen(call, y))
            written = c - memory(call, self.c_before(call, c, c0))
            if self.mask(call, "cell") is None and self.mask(call, "candidate") is None:
                return written
            return div(written, k(call))

        if gate == "g":
            return Readout(kept, lambda call, y, h0, c0: atanh(update(call, y, c0)), BETA)
        if gate == "i":
            return Readout({**kept, "i": 0.0}, lambda call, y, h0, c0: logit(update(call, y, c0) / g0), 0.0)
        if gate == "o":

            def output_gate(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
                # every mask on c is known by now, so c_t follows from c0 without reading o
                c, cs = np.full(y.shape[1:], c0), np.empty_like(y)
                kg = k(call) * g0
                for t in range(y.shape[0]):
                    new = self._cell_step(call, t, phi, c, kg[t])
                    cs[t] = new  # h~_t reads the unzoned c~_t; the zoned c is carried on
                    c = c + self.step[call]["zone_c"][t] * (new - c) if self.zoning("zone_c") else new
                return logit(div(self.h_seen(call, y), np.tanh(cs)))

            return Readout({**kept, "o": 0.0}, output_gate, 0.0)

        def forget(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
            # c_t = m_cell (f_t c'_{t-1} + m_cand g0), read from h_t = tanh(c_t) at t and t-1
            cell, cand, carry = (self.mask(call, site) for site in ("cell", "candidate", "carry_c"))
            c = atanh(self.h_seen(call, y))
            carried = self.c_before(call, c, c0)
            if carry is not None:
                carried = carried * previous(1.0, carry)
            inside = c if cell is None else div(c, cell)
            return logit(div(inside - (g0 if cand is None else cand * g0), carried, self.floor))

        return Readout({**kept, "f": -1.0}, forget, -1.0)

    def _cell_step(self, call: int, t: int, phi: float, c_prev: np.ndarray, kg: np.ndarray) -> np.ndarray:
        s = self.step[call]
        carried = c_prev * (s["carry_c"][t - 1] if t > 0 else 1.0)
        return s["cell"][t] * phi * carried + kg

    def _readout_gru(self, gate: str) -> Readout:
        zeta = self._memory(*GRU_MEMORY_SITES)
        kept = {"r": SAT, "z": float(logit(np.array(zeta))), "n": BETA}  # r = 1, z = zeta

        def cand(call: int) -> np.ndarray:
            return self.step[call]["candidate"]

        def m_n(call: int) -> np.ndarray:  # the recurrent mask of the n gate, recovered first
            return self.recurrent[call][2]

        def candidate(call: int, y: np.ndarray, h0: float) -> np.ndarray:
            """n_t, from h_t = zeta s_{t-1} + (1 - zeta) m_cand n_t."""
            h = self.h_seen(call, y)
            return div(h - zeta * self.state_fed(call, h, h0), (1 - zeta) * cand(call))

        if gate == "n":
            return Readout(kept, lambda call, y, h0, c0: atanh(candidate(call, y, h0)), BETA)
        if gate == "r" and self.cell.reset_after and self.cell.b_hn:  # n = tanh(r * b_hn) with b_hn = 1
            return Readout(
                {**kept, "r": 0.0, "n": 0.0},
                lambda call, y, h0, c0: logit(atanh(candidate(call, y, h0))),
                0.0,
                hidden_biases={"n": 1.0},
            )
        if gate == "r":  # n = tanh(0.2 + 0.5 (r * s_{t-1} * m_n)): reset before, or after without b_hn

            def reset(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
                fed = self.state_fed(call, self.h_seen(call, y), h0) * m_n(call)
                return logit(div(atanh(candidate(call, y, h0)) - 0.2, W_NR * fed, self.floor))

            return Readout({**kept, "r": 0.0, "n": 0.2}, reset, 0.0, hidden_weights={"n": W_NR})

        # h_t = z_t s_{t-1} with n = 0: z is read as a ratio of consecutive states. z times the keep
        # scale of the masks on the memory path is centred near 1 - 1/(2T), so the state fades by at
        # most e^-1/2 over the sequence and a recurrent mask keeps its effect on z at every step,
        # whatever the other masks are. Where a mask on the memory path scales the state up, z sits
        # mid-slope, and a positive recurrent weight would feed back (larger h, larger z, z * scale
        # above 1: the state runs away); a negative one makes the state settle instead.
        scale = max(1.0, self._largest(GRU_MEMORY_SITES))
        center = float(logit(np.array((1 - 1 / (2 * self.steps)) / scale)))

        def update(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
            h = self.h_seen(call, y)
            return logit(div(h, self.state_fed(call, h, h0), self.floor))

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
        element whose unit is dropped above is seen again through another unit; the caller snaps
        the readings once all shifts are read (``snap_inputs``)."""
        k, hid, width = self.cell.gate_index(gate), self.cell.hidden_size, self.cell.input_size
        for start in range(0, width, hid):
            n = min(hid, width - start)
            columns = start + (np.arange(n) + shift) % n
            p, readout = self._probe_params(gate)
            p.w_ih[p.rows(self.cell, gate).start + np.arange(n), columns] = W_IN
            ys = self.run(f"input.{gate}", p, h0=GAMMA, c0=GAMMA)
            for call, y in enumerate(ys):
                a = readout.inverse(call, self.unzone(call, y, GAMMA), GAMMA, GAMMA)
                read = (a[..., :n] - readout.center) / (W_IN * self.alpha)
                if shift == 0:  # the first reading of these columns: nothing is known yet
                    self.input[call][k][..., start : start + n] = read
                    continue
                known = self.input[call][k][..., columns]
                unknown = ~np.isfinite(known)
                known[unknown] = read[unknown]
                self.input[call][k][..., columns] = known
        if shift == 0:
            self.snap_inputs(gate)

    def snap_inputs(self, gate: str) -> None:
        k = self.cell.gate_index(gate)
        for call, values in enumerate(snap([self.input[c][k] for c in range(self.calls)], self.tol)):
            self.input[call][k] = values

    def unknown_inputs(self) -> int:
        return int(sum(np.isnan(a).sum() for a in self.input))

    def recurrent_probe(self, gate: str) -> None:
        k = self.cell.gate_index(gate)
        p, readout = self._probe_params(gate)
        p.w_hh[p.rows(self.cell, gate)] += readout.recurrent_weight * np.eye(self.cell.hidden_size)
        p.w_ih[p.rows(self.cell, gate)] += readout.input_drive
        ys = self.run(f"recurrent.{gate}", p, h0=GAMMA, c0=GAMMA)
        for call, y in enumerate(ys):
            a = readout.inverse(call, self.unzone(call, y, GAMMA), GAMMA, GAMMA)
            if readout.input_drive:  # the drive's term, from the input masks this seed's input probe read
                a = a - readout.input_drive * self.alpha * np.sum(self.input[call][k], axis=-1, keepdims=True)
            fed = self.state_fed(call, self.h_seen(call, y), GAMMA)
            self.recurrent[call][k] = div(a - readout.center, readout.recurrent_weight * fed, self.floor)
        for call, values in enumerate(snap([self.recurrent[c][k] for c in range(self.calls)], self.tol)):
            self.recurrent[call][k] = values

    # -- result ---------------------------------------------------------------------------
    def result(self) -> Recovered:
        masks = []
        for call in range(self.calls):
            sites = {"input": self.input[call], "recurrent": self.recurrent[call], **self.step[call]}
            kept = {}
            for site in self.cell.sites:
                untouched = site in STEP_SITES and self.mask(call, site) is None  # exact ones: known not dropped
                kept[site] = None if untouched or not dropped(sites[site], self.tol) else sites[site]
            masks.append(Masks(**kept))
        # a site dropped in one call is reported for every call, so calls stay comparable
        for site in self.cell.sites:
            if any(m.get(site) is not None for m in masks):
                for call, m in enumerate(masks):
                    if m.get(site) is None:
                        sites = {"input": self.input[call], "recurrent": self.recurrent[call], **self.step[call]}
                        masks[call] = m.with_site(site, sites[site])
        return Recovered(masks=masks, runs=self.runs, notes=self.notes)


# the order gates are probed in: the gate read without memory first
ORDER = {"rnn": ["h"], "lstm": ["g", "i", "o", "f"], "gru": ["n", "r", "z"]}

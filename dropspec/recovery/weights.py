"""Black-box recovery of DropConnect on the hidden-to-hidden weights (site ``weight_hh``).

The probes of ``recovery.probes`` keep every unit decoupled: the recurrent probe of gate ``k`` puts
``W_REC`` on the diagonal of that gate's rows, so it reads ``M[kH + r, r]``, the diagonal of a
weight mask ``M`` (times a recurrent mask, if any). Here probe ``s`` of gate ``k`` instead puts
``W_REC`` on a shifted permutation, ``w_hh[kH + r, (r + s) % H]``, with the other gates saturated
as in ``recovery.probes``' readouts. Unit ``r``'s pre-activation is then

    center + W_REC * M[kH + r, (r + s) % H] * h_{t-1, (r + s) % H}

and ``h_{t-1}`` of the neighbour is read off the same run's outputs. So each probe reads one
element of every row, at every step and for every sample: ``H - 1`` probes per gate read the
off-diagonal elements, the diagonal comes from the recurrent probe already run. That is the least
a probe can do: a unit emits one number per step, so it reads one pre-activation, so one weight,
per run, and one gate per run; reading two gates of a unit in one run would need two outputs.
LSTM: 4 (H - 1) more runs, GRU 3 (H - 1) + 1, SimpleRNN H - 1.

Every step and sample gives its own reading of ``M``, stored as ``(T, B, G*H, H)`` per call, so
the fingerprint measures, and never assumes, that the mask is drawn once per call and shared by
the batch. Elements with no effect on the probe's output are ``NaN``.

These probes run only when a case's claim has a ``weight_hh`` rate: they cost ``G (H - 1)`` runs,
and a framework that drops weights without claiming it is caught anyway, by
``common.replay.explained``, because its replay with dense random weights is not explained by
any activation mask.

Limits, by construction:
- A mask on the state fed to the recurrent matmul multiplies whole columns of ``M``: the two are
  told apart only by structure, so under a weight-drop claim it is folded into ``weight_hh``
  (``recurrent`` is then reported as not dropped). A recurrent mask is per sample, so a framework
  that adds one shows a per-sample weight mask and fails ``weight_drop.weight_hh.batch``,
  and the replay is still exact.
- In a reset-before GRU the reset gate acts only through ``W_hh^n (r * s)``, so its row ``u`` is
  read through one kept element of column ``u`` of the n gate's weights: a matching of units to n
  rows whose weight is kept in every call. A unit with no such row (rare) stays ``NaN``.
"""

from __future__ import annotations

import numpy as np

from ..reference import Cell, Params
from .probes import GAMMA, ORDER, TOL, W_NR, W_REC, Readout, Recovered, Recoverer, atanh, div, dropped, logit, snap


def weight_probe_runs(cell: Cell) -> int:
    """The runs ``recover_weight_hh`` adds to ``recovery.recover`` (one-layer cells)."""
    hidden, gates = cell.hidden_size, len(cell.gates)
    extra = 1 if cell.kind == "gru" and not cell.reset_after else 0  # the reset gate's diagonal, read again
    return gates * (hidden - 1) + extra


def shifted(hidden: int, shift: int) -> np.ndarray:
    """``P[r, (r + shift) % H] = 1``: row ``r`` reads state unit ``r + shift``."""
    out = np.zeros((hidden, hidden))
    rows = np.arange(hidden)
    out[rows, (rows + shift) % hidden] = 1.0
    return out


def match_units(kept: np.ndarray) -> np.ndarray:
    """A row for every column with ``kept[row, column]``, no row used twice (Kuhn's augmenting
    paths); ``-1`` for a column left without one."""
    rows, cols = kept.shape
    owner = np.full(rows, -1)

    def augment(col: int, seen: np.ndarray) -> bool:
        for row in np.flatnonzero(kept[:, col]):
            if not seen[row]:
                seen[row] = True
                if owner[row] < 0 or augment(int(owner[row]), seen):
                    owner[row] = col
                    return True
        return False

    for col in range(cols):
        augment(col, np.zeros(rows, dtype=bool))
    match = np.full(cols, -1)
    for row, col in enumerate(owner):
        if col >= 0:
            match[col] = row
    return match


class _WeightProbes:
    def __init__(self, r: Recoverer) -> None:
        self.r, self.cell = r, r.cell
        self.hidden = self.cell.hidden_size
        steps, batch, gates = r.steps, r.batch, len(self.cell.gates)
        # per call, the readings by probe: [t, b, gate, shift, unit] is M[gate*H + unit, (unit + shift) % H], shift 0
        # the diagonal. A probe writes one slice of it; the (T, B, G*H, H) mask is gathered once (``weight``), where
        # a write through paired row and column indices into it cost 100 us a probe (numpy's scatter)
        self.readings = [np.full((steps, batch, gates, self.hidden, self.hidden), np.nan) for _ in range(r.calls)]

    def rows(self, gate: str) -> slice:
        return Params.zeros(self.cell).rows(self.cell, gate)

    def weight(self) -> list[np.ndarray]:
        """Every call's readings as the ``(T, B, G*H, H)`` mask: ``[t, b, gate*H + unit, column]`` from shift
        ``(column - unit) % H``, by one gather along the flattened last three axes."""
        hid, gates = self.hidden, len(self.cell.gates)
        gate, unit, column = np.meshgrid(np.arange(gates), np.arange(hid), np.arange(hid), indexing="ij")
        source = (gate * hid + (column - unit) % hid) * hid + unit  # flat index of [gate, shift, unit]
        out = []
        for values in self.readings:
            lead = values.shape[:2]
            flat = values.reshape(*lead, -1)
            out.append(np.take(flat, source.ravel(), axis=-1).reshape(*lead, gates * hid, hid))
        return out

    def read(self, gate: str, shift: int, p: Params, readout: Readout) -> None:
        """Run one probe and store its element of every row of ``gate``, per call, step and sample."""
        r, k = self.r, self.cell.gate_index(gate)
        ys = r.run(f"weight_hh.{gate}.{shift}", p, h0=GAMMA, c0=GAMMA)
        cols = (np.arange(self.hidden) + shift) % self.hidden
        for call, y in enumerate(ys):
            a = readout.inverse(call, y, GAMMA, GAMMA)
            fed = np.take(r.state_fed(call, r.h_seen(call, y), GAMMA), cols, axis=-1)  # the neighbour's h_{t-1}
            read = div(a - readout.center, readout.recurrent_weight * fed, r.floor)
            stored = self.readings[call][:, :, k, shift, :]
            seen = np.isfinite(read)
            if not seen.all():  # keep what is known where this probe saw nothing
                read = np.where(seen, read, stored)
            stored[...] = read

    def gate(self, gate: str) -> None:
        k = self.cell.gate_index(gate)
        for call in range(self.r.calls):  # the recurrent probe read the diagonal
            self.readings[call][:, :, k, 0, :] = self.r.recurrent[call][k]
        if self.cell.kind == "gru" and not self.cell.reset_after and gate == "r":
            self.reset_before_r()
            return
        for shift in range(1, self.hidden):
            p, readout = self.r._probe_params(gate)
            p.w_hh[self.rows(gate)] += readout.recurrent_weight * shifted(self.hidden, shift)
            self.read(gate, shift, p, readout)

    def reset_before_r(self) -> None:
        """The reset gate of a reset-before GRU, read through the n gate: ``n_v = tanh(0.2 + W_NR
        M_n[v, u] r_u s_u)`` with ``v`` matched to ``u`` among the n rows whose weight is kept."""
        r, n_rows, hid = self.r, self.rows("n"), self.hidden
        with np.errstate(invalid="ignore"):
            m_n = [w[:, :, n_rows, :] for w in self.weight()]  # (T, B, H, H), read before r
            kept = np.all([np.all(np.isfinite(m) & (np.abs(m) > 1e-3), axis=(0, 1)) for m in m_n], axis=0)
        match = match_units(kept)  # unit u is read at n unit match[u]
        units = np.flatnonzero(match >= 0)
        if units.size < hid:
            r.notes.append(f"weight_hh: {hid - units.size} reset-gate row(s) have no kept n weight to be read through")
        base = r._readout_gru("r")
        zeta = float(1.0 / (1.0 + np.exp(-base.biases["z"])))

        def inverse(call: int, y: np.ndarray, h0: float, c0: float) -> np.ndarray:
            h = r.h_seen(call, y)
            n = div(h - zeta * r.state_fed(call, h, h0), (1 - zeta) * r.step[call]["candidate"])
            out = np.full(y.shape, np.nan)
            fed = r.state_fed(call, h, h0)[..., units]
            weight = m_n[call][:, :, match[units], units]
            pre = atanh(n[..., match[units]]) - 0.2
            out[..., units] = logit(div(pre, W_NR * weight * fed, r.floor))
            return out

        readout = Readout(base.biases, inverse, 0.0)
        for shift in range(hid):
            p = r.params(**base.biases)
            p.w_hh[n_rows.start + match[units], units] = W_NR
            p.w_hh[self.rows("r")] += W_REC * shifted(hid, shift)
            self.read("r", shift, p, readout)

    def run(self) -> list[np.ndarray]:
        for gate in ORDER[self.cell.kind]:
            self.gate(gate)
        return snap(self.weight())


def recover_weight_hh(r: Recoverer, result: Recovered) -> Recovered:
    """Read the ``weight_hh`` mask of every call with the shifted-permutation probes, after
    ``r``'s own probes, and fold the recurrent probe's readings (the diagonal) into it."""
    weight = _WeightProbes(r).run()
    active = any(dropped(w, TOL) for w in weight)
    result.masks = [
        m.with_site("recurrent", None).with_site("weight_hh", w if active else None)
        for m, w in zip(result.masks, weight)
    ]
    result.runs = r.runs
    result.notes.append("weight_hh read with shifted-permutation probes; any recurrent mask is folded into it")
    return result

"""Zoneout probes: read the update masks ``zone_h`` and ``zone_c`` (see ``reference``) before any other probe.

A zone mask shows only where the state a step received and the value it computes differ, so the probes keep
them apart at every step: the probed state feeds back through a recurrent weight of ``-W_ZONE`` on its own
unit, so the new value ``h~_t`` has the sign opposite to ``h_{t-1}``, whether the unit was zoned out at the
step before or not. The update mask is then ``u_t = (h_t - h_{t-1}) / (h~_t - h_{t-1})``, with ``h_{t-1}``
read off the output of the step before (the initial state at ``t = 0``).

The LSTM cell state shows only through the memory of the next step: with ``i = o = 1``, ``f = 1/2`` and
``g_t = tanh(x_t)`` driven by the input, ``h~_{t+1} = tanh(c_t / 2 + g_{t+1})`` reads ``c_t``, so ``u^c_t``
follows from ``c_{t-1}`` and ``c_t``. Where ``h`` zoned out at ``t + 1`` hides ``h~_{t+1}``, ``c_t`` is unseen;
the next ``c`` seen is then matched against every way the steps in between can have zoned (``g`` differs at
every step, so different ways give different cell states). The returned ``c`` closes the sequence. Two such
probes with different inputs cover the rare step where ``c~_t`` happens to equal ``c_{t-1}`` in one of them.
Measured: exact on the reference (T=200, B=32, H=128) and on ESPnet's ZoneOutCell around torch's LSTMCell in
float32 (T=16, B=32, H=16), where one probe alone left 5 elements unresolved.

A layer that does not zone out reads 1 everywhere here; one that drops something else reads values that are
not 0 or one keep value, and is then taken not to zone out (``accept``): other sites are the other probes'.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np

from ..case import CallInputs
from ..masks import site_shape
from .probes import GAMMA, SAT, TOL, atanh, div, median, previous, snap_to

if TYPE_CHECKING:
    from .probes import Recoverer  # the probes of the other sites, which read through what is found here

W_ZONE = 2.0  # the probed unit's recurrent weight is -W_ZONE: h~_t has the sign opposite to h_{t-1}
LONGEST = 12  # the most consecutive unseen cell states resolved by matching (2^LONGEST ways)
# the c probes: c~_t = c_{t-1} / 2 + g_t with g_t = tanh(x_t), an input of alternating sign and a magnitude that
# differs at every step: c~_t stays away from c_{t-1} (c follows the last g, of the other sign), whether h zoned out
# or not, and the cell state never settles into a cycle (where it would, two updates in a row could bring c back).
# Two probes with different inputs: where a cell state happens to sit at c~_t = c_{t-1} in one, the other reads it
PHASES = ((0, 0.7, 2.1), (1, 1.9, 1.3))  # (sign, phase, pace) of each probe's input


def _inputs(steps: int, sign: int, phase: float, pace: float) -> np.ndarray:
    """Per-step input values of a c probe: alternating sign, magnitudes between 0.5 and 1.5, all different."""
    t = np.arange(steps)
    return (-1.0) ** (t + sign) * (1.0 + 0.5 * np.cos(phase + pace * t))


def _run(r: Recoverer, name: str, p, xs: np.ndarray | float) -> list[tuple[np.ndarray, np.ndarray | None]]:
    shape = (r.batch, r.cell.hidden_size)
    x = np.broadcast_to(np.asarray(xs, dtype=float).reshape(-1, 1, 1), (r.steps, r.batch, r.cell.input_size))
    inputs = [
        CallInputs(
            x=np.array(x),
            h0=np.full(shape, GAMMA),
            c0=np.full(shape, GAMMA) if r.cell.kind == "lstm" else None,
        )
        for _ in range(r.calls)
    ]
    traces = r.runner(name, p, inputs)
    r.runs += 1
    return [(np.asarray(t.y, dtype=float), None if t.c is None else np.asarray(t.c, dtype=float)) for t in traces]


def _diagonal(r: Recoverer, p, gate: str, weight: float) -> None:
    p.w_hh[p.rows(r.cell, gate)] += weight * np.eye(r.cell.hidden_size)


def accept(values: list[np.ndarray]) -> list[np.ndarray] | None:
    """The snapped masks when every call's reading is a zone mask (0 or one keep value, some finite, and some 0
    unless the keep value is 1: a rescale of every unit is not a mask), else None."""
    snapped, scale = snap_to(values)
    if scale is None or not any(np.isfinite(v).any() for v in snapped):
        return None
    return snapped if scale == 1.0 or any((v == 0.0).any() for v in snapped) else None


def read_zones(r: Recoverer) -> None:
    """Fill ``r.step[call]['zone_h']`` (and ``'zone_c'`` for an LSTM); ones where the layer does not zone out."""
    cell = r.cell
    linear = getattr(cell, "activation", "tanh") != "tanh"  # a linear SimpleRNN: -1 keeps |h| constant
    w = 1.0 if linear else W_ZONE
    p = r.params(**{"lstm": {"i": SAT, "f": -SAT, "o": SAT}, "gru": {"r": SAT, "z": -SAT}}.get(cell.kind, {}))
    _diagonal(r, p, {"rnn": "h", "lstm": "g", "gru": "n"}[cell.kind], -w)
    runs = _run(r, "zone.h", p, 0.0)
    readings = []
    for y, _ in runs:
        s = previous(GAMMA, y)  # the state each step received: the zoned h of the step before
        new = -w * s if linear else np.tanh(-w * s)
        if cell.kind == "lstm":
            new = np.tanh(new)  # h~ = o tanh(c~), c~ = i g with f = 0
        readings.append(div(y - s, new - s, r.floor))
    zone_h = accept(readings)
    if zone_h is not None:
        for call, values in enumerate(zone_h):
            r.step[call]["zone_h"] = values
    if cell.kind == "lstm":
        _read_zone_c(r)
    for site in ("zone_h", "zone_c"):  # what Recoverer.zoning reports to the other probes
        r.zoned[site] = any(not np.all(np.abs(r.step[c][site] - 1.0) <= TOL) for c in range(r.calls))


def _read_zone_c(r: Recoverer) -> None:
    cell, hid = r.cell, r.cell.hidden_size
    p = r.params(i=SAT, f=0.0, o=SAT)  # f = 1/2 exactly
    rows = p.rows(cell, "g")
    p.w_ih[rows.start + np.arange(hid), np.arange(hid) % cell.input_size] = 1.0
    readings = [np.full(site_shape(cell, "zone_c", r.steps, r.batch), np.nan) for _ in range(r.calls)]
    for n, phase in enumerate(PHASES):
        xs = _inputs(r.steps, *phase)
        for call, (y, final_c) in enumerate(_run(r, f"zone.c{n}", p, xs)):
            u = r.step[call]["zone_h"]
            s = previous(GAMMA, y)
            g = np.broadcast_to(np.tanh(xs)[:, None, None], y.shape)
            fresh = s + div(y - s, u)  # h~_t, NaN where h zoned out
            seen = np.full(y.shape, np.nan)  # c_t, from h~_{t+1} = tanh(c_t / 2 + g_{t+1}), and the returned c
            seen[:-1] = 2.0 * (atanh(fresh[1:]) - g[1:])
            seen[-1] = final_c
            readings[call] = np.where(np.isfinite(readings[call]), readings[call], _decode(seen, g, r.floor))
    zone_c = accept(readings)
    if zone_c is not None:
        for call, values in enumerate(zone_c):
            r.step[call]["zone_c"] = values


def _decode(seen: np.ndarray, g: np.ndarray, floor: float) -> np.ndarray:
    """The cell state's update masks from the cell states ``seen`` (NaN where unseen), with ``c~_t = c_{t-1}/2 +
    g_t``: directly where ``c_{t-1}`` and ``c_t`` are both seen, else by matching the next seen ``c`` against
    every way the unseen steps can have zoned (0 or the keep value read directly)."""
    if np.isfinite(seen).all():  # no h zoned out, so every step reads directly: the loop below, in one pass
        known = np.concatenate([np.full((1, *seen.shape[1:]), GAMMA), seen[:-1]])
        return div(seen - known, (0.5 * known + g) - known, floor)
    v = np.full(seen.shape, np.nan)
    known = np.full(seen.shape[1:], GAMMA)  # c_{t-1}; NaN where unseen
    anchor, since = known.copy(), np.full(seen.shape[1:], -1)  # the last c seen, and its step
    for t in range(seen.shape[0]):
        direct = np.isfinite(known) & np.isfinite(seen[t])
        v[t][direct] = div(seen[t] - known, (0.5 * known + g[t]) - known, floor)[direct]
        late = ~np.isfinite(known) & np.isfinite(seen[t])
        if late.any():
            _match(v, seen[t], g, anchor, since, t, late, floor)
        ok = np.isfinite(seen[t])
        anchor, since = np.where(ok, seen[t], anchor), np.where(ok, t, since)
        known = np.where(ok, seen[t], np.nan)
    return v


def _match(
    v: np.ndarray,
    seen_t: np.ndarray,
    g: np.ndarray,
    anchor: np.ndarray,
    since: np.ndarray,
    t: int,
    late: np.ndarray,
    floor: float,
) -> None:
    """Fill ``v`` over the unseen run before step ``t`` where exactly one way of zoning leads from the last
    cell state seen (``anchor`` at step ``since``) to the one seen at ``t``; more than one, or none: NaN."""
    finite = v[:t][np.isfinite(v[:t]) & (np.abs(v[:t]) > 0.5)]
    keep = median(finite) if finite.size else 1.0
    for first in sorted(set(since[late].tolist())):  # np.unique's first call imports numpy.ma (8 ms)
        k = t - int(first)  # the steps first+1 .. t, whose masks are unknown
        where = late & (since == first)
        if k > LONGEST:
            continue
        g_run = g[int(first) + 1 : t + 1][:, where]  # (k, n)
        ways = np.array(list(itertools.product((0.0, keep), repeat=k)))  # (2^k, k)
        finals = np.broadcast_to(anchor[where], (len(ways), int(where.sum())))
        for j in range(k):
            finals = finals + ways[:, j : j + 1] * (0.5 * finals + g_run[j] - finals)
        error = np.sort(np.abs(finals - seen_t[where]), axis=0)
        choice = np.argmin(np.abs(finals - seen_t[where]), axis=0)
        # a cell state is read to about the framework's precision, far below the floor of an effect (float32: 1e-6
        # against 3e-3): a tenth of the square root of eps tells the ways apart without taking a wrong one
        near = floor / 100
        unique = (error[0] <= near) & (error[1] > near)
        block = v[int(first) + 1 : t + 1]
        block[:, where] = np.where(unique[None, :], ways[choice].T, np.nan)

"""Black-box mask recovery: probe parameters under which a cell's outputs reveal its masks.

``probes`` holds the probes of one layer, ``stacks`` reads a stack through them, ``weights`` the
DropConnect mask on the recurrent weights; ``recover`` chooses among them.
"""

from __future__ import annotations

import numpy as np

from ..reference import Cell
from .probes import GAMMA, SAT, TOL, Recovered, Recoverer, Runner
from .stacks import recover_stack
from .weights import recover_weight_hh
from .zone import read_zones

__all__ = ["GAMMA", "SAT", "TOL", "Recovered", "Runner", "probe_runs", "recover"]


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
    probes of ``recovery.weights``."""
    if cell.stacked:
        return recover_stack(cell, steps, batch, calls, runner, eps)
    r = Recoverer(cell, steps, batch, calls, runner, eps)
    read_zones(r)  # first: the other probes read through the zone masks found
    r.base()
    r.gates()
    if weight_hh:
        return recover_weight_hh(r, r.result())
    return r.result()


def probe_runs(cell: Cell) -> int:
    """How many framework runs ``recover`` makes for a one-layer ``cell``; for a stack the fewest it
    makes (both directions of a layer read by the same runs, no unit read again through another)."""
    base = {"rnn": 1, "lstm": 2, "gru": 2}[cell.kind]
    # the zone probes (recovery.zone), for one-layer cells: h, and twice the LSTM's c
    runs = base + (0 if cell.stacked else 3 if cell.kind == "lstm" else 1)
    for index in range(0, cell.parts, cell.directions):
        layer = cell.layer(index)
        chunks = -(-layer.input_size // layer.hidden_size)
        runs += len(cell.gates) * (chunks + 1)
    return runs

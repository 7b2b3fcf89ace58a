"""Black-box mask recovery: probe parameters under which a cell's outputs reveal its masks.

``probes`` holds the probes of one layer, ``stacks`` reads a stack through them, ``weights`` the
DropConnect mask on the recurrent weights; ``recover`` chooses among them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..case import CallInputs
from ..reference import Cell, Trace
from .probes import GAMMA, SAT, TOL, Recovered, Recoverer, Runner, first_kept, median, split_batch
from .stacks import recover_stack
from .weights import recover_weight_hh
from .zone import read_zones

__all__ = ["GAMMA", "SAT", "TOL", "Recovered", "Runner", "first_kept", "median", "probe_runs", "recover"]


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
    # every probe reads all calls at once, as one call of calls * batch samples: the readouts are elementwise per
    # sample, so this gives the masks of the calls one by one, at a fraction of the numpy calls
    joined = _CallsAsBatch(runner, calls)
    if cell.stacked:
        return joined.split(recover_stack(cell, steps, calls * batch, joined, eps))
    r = Recoverer(cell, steps, calls * batch, 1, joined, eps)
    read_zones(r)  # first: the other probes read through the zone masks found
    r.base()
    r.gates()
    return joined.split(recover_weight_hh(r, r.result()) if weight_hh else r.result())


class _CallsAsBatch:
    """A runner for probes of one call of ``calls * batch`` samples: it runs them as ``calls`` consecutive calls of
    ``batch`` samples, as the framework must see them, and joins the traces along the batch axis; ``split`` cuts the
    masks recovered back into the calls'."""

    def __init__(self, runner: Runner, calls: int) -> None:
        self.runner, self.calls = runner, calls

    def __call__(self, name: str, params, inputs: Sequence[CallInputs]) -> list[Trace]:
        (joined,) = inputs
        batch = joined.x.shape[1] // self.calls

        def split(values: np.ndarray | None, axis: int) -> list:
            if values is None:
                return [None] * self.calls
            before = (slice(None),) * (axis % values.ndim)
            return [
                np.ascontiguousarray(values[(*before, slice(n * batch, (n + 1) * batch))]) for n in range(self.calls)
            ]

        # the batch axis: x is (T, B, I); h0 and c0 are (B, H), or (parts, B, H) in a stack
        parts = zip(split(joined.x, 1), split(joined.h0, -2), split(joined.c0, -2))
        calls = [CallInputs(x=x, h0=h0, c0=c0) for x, h0, c0 in parts]
        traces = self.runner(name, params, calls)
        return [
            Trace(
                y=np.concatenate([np.asarray(t.y) for t in traces], axis=1),
                h=np.concatenate([np.asarray(t.h) for t in traces], axis=-2),
                c=None if traces[0].c is None else np.concatenate([np.asarray(t.c) for t in traces], axis=-2),
            )
        ]

    def split(self, recovered: Recovered) -> Recovered:
        """``recovered`` of the one joined call, as the masks of each call."""
        (joined,) = recovered.masks
        if isinstance(joined, list):  # a stack: per call, one Masks per part
            parts = [split_batch(m, self.calls) for m in joined]
            recovered.masks = [[p[call] for p in parts] for call in range(self.calls)]
        else:
            recovered.masks = split_batch(joined, self.calls)
        return recovered


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

"""How a dropped carried state grows: the state's norm over time, and its growth factor per step.

TF's DropoutWrapper drops the state it carries to the next step, so a GRU, whose new state is
``z * h_{t-1} + (1 - z) * n``, carries ``h_{t-1} / keep`` wherever the update gate holds the
memory: the kept units grow by ``1 / keep`` at every step. A wrapper that drops ``h`` before a
stock GRU cell (Flax's recipe) does the same through ``z * (m * h_{t-1})``. This module measures that growth on
the framework itself, black-box, with two probes whose cell only carries its state:

- GRU: ``z = 1`` (bias +SAT), so ``h_t = h_{t-1}`` as carried;
- LSTM: ``f = 1``, ``i = 0``, ``o = 1``, so ``c_t = c_{t-1}`` as carried, read as ``atanh(y_t)``.

Run in training and in inference mode from the same initial state, the mean norm of the state per
step gives the curve, and the geometric mean of its step-to-step ratio in training (from the first
step on, once the first mask has acted) gives the growth factor. Undropped carrying gives 1;
DropoutWrapper's per-sequence state dropout gives ``1 / keep``. A SimpleRNN cannot carry its state
unchanged (``tanh`` bounds it), so it has no probe. The same curves are also taken with the
replay's random parameters, where the framework runs as a user would run it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .case import CallInputs
from .recovery import GAMMA, SAT
from .reference import Cell, Params, Trace

Runner = Callable[[Params, Sequence[CallInputs], bool], list[Trace]]


@dataclass
class StateGrowth:
    """Mean state norm per step (relative to the initial state's), in training and in inference."""

    state: str  # "h" (GRU) or "c" (LSTM)
    probe_training: list[float]
    probe_inference: list[float]
    growth_per_step: float
    random_training: list[float] | None = None
    random_inference: list[float] | None = None

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def carry_params(cell: Cell) -> Params | None:
    """Parameters under which the cell carries its state unchanged, or None (SimpleRNN)."""
    p = Params.zeros(cell)
    biases = {"gru": {"r": SAT, "z": SAT, "n": 0.0}, "lstm": {"i": -SAT, "f": SAT, "g": 0.0, "o": SAT}}.get(cell.kind)
    if biases is None:
        return None
    for gate, value in biases.items():
        p.b_ih[p.rows(cell, gate)] = value
    return p


def _norms(states: np.ndarray, initial: float) -> list[float]:
    """Mean over the batch of ``|state_t| / |state_{-1}|``, per step."""
    width = states.shape[-1]
    return [float(v) for v in np.linalg.norm(states, axis=-1).mean(axis=-1) / (abs(initial) * np.sqrt(width))]


def _state(cell: Cell, y: np.ndarray) -> np.ndarray:
    y = np.asarray(y, dtype=float)
    return np.arctanh(np.clip(y, -1 + 1e-7, 1 - 1e-7)) if cell.kind == "lstm" else y


def growth_factor(norms: Sequence[float]) -> float:
    """The geometric mean of the step-to-step ratio from step 1 (the first state carried through a
    mask) to the last step; NaN when the state vanished or there are fewer than three steps."""
    if len(norms) < 3 or float(norms[1]) <= 0 or float(norms[-1]) <= 0:
        return float("nan")
    return float((float(norms[-1]) / float(norms[1])) ** (1.0 / (len(norms) - 2)))


def state_growth(cell: Cell, steps: int, batch: int, run: Runner) -> StateGrowth | None:
    """The probe curves of a one-layer cell, from two framework runs; None for a SimpleRNN or a stack."""
    params = None if cell.stacked else carry_params(cell)
    if params is None:
        return None
    shape = (batch, cell.hidden_size)
    calls = [
        CallInputs(
            x=np.zeros((steps, batch, cell.input_size)),
            h0=np.full(shape, GAMMA),
            c0=np.full(shape, GAMMA) if cell.kind == "lstm" else None,
        )
    ]
    training = _norms(_state(cell, run(params, calls, True)[0].y), GAMMA)
    inference = _norms(_state(cell, run(params, calls, False)[0].y), GAMMA)
    return StateGrowth("c" if cell.kind == "lstm" else "h", training, inference, growth_factor(training))


def output_norms(cell: Cell, traces: Sequence[Trace]) -> list[float]:
    """Mean norm of the emitted outputs per step, for the curves with random parameters."""
    y = np.asarray(traces[0].y, dtype=float)
    return [float(v) for v in np.linalg.norm(y, axis=-1).mean(axis=-1) / np.sqrt(y.shape[-1])]

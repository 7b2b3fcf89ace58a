"""What an adapter is: capabilities, cases, a parameter mapping and a run. Nothing else.

An adapter never recovers masks, judges clauses or writes results: the core does that, the
same way for every framework. It only builds the framework's layer from a case's own
constructor arguments, loads the canonical parameters into it, seeds it, and runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..reference import Cell, Params, Trace


@dataclass(frozen=True)
class Claim:
    """What the framework's documentation says a case does: a spec scheme and its rates per site."""

    scheme: str
    rates: dict[str, float] = field(default_factory=dict)
    doc: str = ""  # a quote of, or a link to, the documentation the claim rests on


@dataclass(frozen=True)
class Case:
    """One configuration of one framework layer, run with a seed.

    ``config`` is the framework's own constructor arguments, verbatim, as a user would write them.
    Cases that share a ``flag_group`` differ only in flags documented as performance-only; cases
    that share a ``rate_group`` differ only in the rate of one site.
    """

    id: str
    cell: Cell
    config: dict[str, Any]
    claim: Claim
    steps: int = 16
    batch: int = 32
    seed: int = 7
    flag_group: str | None = None
    rate_group: str | None = None
    label: str = ""  # how a user would write it, e.g. "keras.layers.LSTM(8, dropout=0.25)"
    dtype: str | None = None  # "float64" for a case that runs in double precision; None: the adapter's dtype

    @property
    def title(self) -> str:
        return self.label or f"{self.cell.name}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"


@dataclass
class CallInputs:
    """The inputs of one call: ``x`` is ``(T, B, I)``; ``c0`` only for the LSTM."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None = None


class FrameworkMissing(RuntimeError):
    """The adapter's framework cannot be imported here; the message says how to install it."""


class Adapter(ABC):
    """Subclass this to put a framework under test; see README 'Test your own cell'."""

    name: str = ""
    framework: str = ""
    #: float32 frameworks are compared at float32 tolerance, the reference at float64's
    dtype: type = np.float32

    def unavailable_reason(self) -> str | None:
        """``None`` when the framework can run here, else why not and how to fix it."""
        return None

    def versions(self) -> dict[str, str]:
        """Framework and backend names with their versions."""
        return {}

    def device(self) -> str:
        return "cpu"

    def case_unavailable(self, case: Case) -> str | None:
        """``None`` when this case can run here, else why not (e.g. "needs a CUDA device"): its
        clauses are then reported as ``skip`` with that reason, never as a pass."""
        return None

    def repro(self, case: Case) -> str | None:
        """A self-contained script, using only the framework, that builds ``case`` as a user would;
        bug reports embed it. ``None`` when the adapter offers none."""
        return None

    @abstractmethod
    def cases(self) -> Sequence[Case]:
        """Every configuration to test, each with the claim its documentation makes."""

    @abstractmethod
    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        """Seed the framework with ``seed``, build ``case``'s layer with ``params`` (canonical
        layout), and call it once per entry of ``calls``, in order, returning what each call
        emitted (outputs ``(T, B, H)`` and the returned state) as float64 arrays."""

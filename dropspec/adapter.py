"""The adapter contract: capabilities, cases, a parameter mapping and a run. Nothing else.

An adapter never recovers masks, judges clauses or writes results: the core does that, the
same way for every framework. It only builds the framework's layer from a case's own
constructor arguments, loads the canonical parameters into it, seeds it, and runs it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from .case import CallInputs, Case
from .reference import Params, Trace


class Adapter(ABC):
    """Subclass this to put a framework under test; see README 'Test your own cell'."""

    name: str = ""
    framework: str = ""
    #: float32 frameworks are compared at float32 tolerance, the reference at float64's
    dtype: type = np.float32
    #: known deviations as data (see ``dropspec/adapters/deviations/``); a third-party adapter names its own
    #: file here, the built-in ones live in that folder under the adapter's name
    deviations_file: str | None = None
    #: whether ``run`` honours each call's own ``CallInputs.training`` (a model built once, then called in
    #: training and in inference mode): the engine then checks that every call's flag is honoured
    per_call_training: bool = False

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

"""Adapters with one fault each, on the middle one of three cases: what real frameworks and broken
adapters do. ``tests/test_faults.py`` runs each through ``dropspec run`` (registered with
DROPSPEC_ADAPTERS) and checks the fault's verdict, and that the other two cases are judged exactly as
the same cases of a faultless run."""

from __future__ import annotations

import ctypes
import os
import re
import time
from collections.abc import Sequence

import numpy as np

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.reference import Params, Trace

CASE_IDS = ("rnn-variational", "rnn-zaremba", "rnn-output_dropout")
FAULTY = CASE_IDS[1]


def three_cases() -> list[Case]:
    by_id = {c.id: c for c in reference_cases()}
    return [by_id[i] for i in CASE_IDS]


class Faultless(ReferenceAdapter):
    """The reference on the three cases: what every faulty adapter's other cases must match."""

    name = "faultless"

    def __init__(self) -> None:
        super().__init__(three_cases())

    def fault(self, case: Case, training: bool) -> None:
        """Misbehave here, on the faulty case."""

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case.id == FAULTY:
            self.fault(case, training)
        return super().run(case, params, calls, seed=seed, training=training)


class Raises(Faultless):
    name = "fault_raises"

    def fault(self, case: Case, training: bool) -> None:
        raise RuntimeError("cuDNN kernel refused this configuration")


class HangsHoldingTheGil(Faultless):
    """A native call that never returns the GIL: a catastrophic regular expression runs in C."""

    name = "fault_hangs_gil"

    def fault(self, case: Case, training: bool) -> None:
        re.match(r"(a+)+$", "a" * 64 + "b")


class Segfaults(Faultless):
    name = "fault_segfaults"

    def fault(self, case: Case, training: bool) -> None:
        ctypes.string_at(0)


class Exits(Faultless):
    """``os._exit(0)``: the process ends with status 0, and no Python handler runs."""

    name = "fault_exits"

    def fault(self, case: Case, training: bool) -> None:
        os._exit(0)


class RaisesSystemExit(Faultless):
    name = "fault_system_exit"

    def fault(self, case: Case, training: bool) -> None:
        raise SystemExit(3)


class RaisesKeyboardInterrupt(Faultless):
    name = "fault_keyboard_interrupt"

    def fault(self, case: Case, training: bool) -> None:
        raise KeyboardInterrupt


class ReturnsNaN(Faultless):
    name = "fault_nan"

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        traces = super().run(case, params, calls, seed=seed, training=training)
        if case.id == FAULTY:
            return [Trace(y=np.full_like(t.y, np.nan), h=np.full_like(t.h, np.nan), c=t.c) for t in traces]
        return traces


class WrongShape(Faultless):
    name = "fault_wrong_shape"

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        traces = super().run(case, params, calls, seed=seed, training=training)
        if case.id == FAULTY:  # batch-major by mistake: (B, T, H)
            return [Trace(y=np.swapaxes(t.y, 0, 1), h=t.h, c=t.c) for t in traces]
        return traces


class MissingTrace(Faultless):
    """Returns one trace for two calls: once this produced the false finding "masks reused by the next call"."""

    name = "fault_missing_trace"

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        traces = super().run(case, params, calls, seed=seed, training=training)
        return traces[:1] if case.id == FAULTY else traces


class IgnoresTheSeed(Faultless):
    name = "fault_ignores_seed"

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case.id == FAULTY:
            seed = int.from_bytes(os.urandom(4), "little")
        return super().run(case, params, calls, seed=seed, training=training)


class GlobalRNG(Faultless):
    """Draws its masks from NumPy's process-global RNG, seeded per run, as many frameworks' global seeds
    work. The faulty case hangs while it keeps drawing from that RNG: in a thread that the timeout
    abandons, it went on disturbing the cases after it (a false ``common.seed.reproducible`` failure)."""

    name = "fault_global_rng"

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list:
        return super().masks(case, calls, np.random.default_rng(np.random.randint(0, 2**31)))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        np.random.seed(seed)
        if case.id == FAULTY:
            end = time.monotonic() + 120
            while time.monotonic() < end:
                np.random.random()  # the abandoned work goes on touching the global state
        return super().run(case, params, calls, seed=seed, training=training)


class SlowLastCase(Faultless):
    """The last case takes a minute: the run is killed while it is in flight."""

    name = "slow_last_case"

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case.id == CASE_IDS[-1]:
            time.sleep(60)
        return super().run(case, params, calls, seed=seed, training=training)

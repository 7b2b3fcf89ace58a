"""Adapters that misbehave the way real frameworks can: missing, crashing, hanging."""

from __future__ import annotations

import time
from collections.abc import Sequence

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.reference import Params, Trace


def few_cases() -> list[Case]:
    return [c for c in reference_cases() if c.cell.name == "rnn" and c.claim.scheme in ("variational", "zaremba")][:2]


class MissingFramework(ReferenceAdapter):
    name = "missing_framework"

    def __init__(self) -> None:
        super().__init__(few_cases())

    def unavailable_reason(self) -> str | None:
        return "notaframework is not installed: `pip install notaframework==1.0`, or run `tox -e notaframework`"


class CrashesOnOneCase(ReferenceAdapter):
    name = "crashes_on_one_case"

    def __init__(self) -> None:
        super().__init__(few_cases())

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case is self.cases()[0] and training:
            raise RuntimeError("cuDNN kernel refused this configuration")
        return super().run(case, params, calls, seed=seed, training=training)


class HangsOnOneCase(ReferenceAdapter):
    name = "hangs_on_one_case"

    def __init__(self) -> None:
        super().__init__(few_cases())

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case is self.cases()[0]:
            time.sleep(5)
        return super().run(case, params, calls, seed=seed, training=training)


class NeedsCuda(ReferenceAdapter):
    name = "needs_cuda"

    def __init__(self) -> None:
        super().__init__(few_cases())

    def case_unavailable(self, case: Case) -> str | None:
        return "needs a CUDA device (cuDNN kernel)" if case is self.cases()[0] else None

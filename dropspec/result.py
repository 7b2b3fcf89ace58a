"""One verdict: a clause judged on a case."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Result:
    clause: str
    case: str
    status: str
    message: str
    error: dict[str, str] | None = None
    expected: bool = False  # an error listed as a known crash in the adapter's deviations

"""One test per (clause, case). The verdict is the engine's; this only reports it to pytest."""

from __future__ import annotations

import pytest

from dropspec.engine import Suite


def test_clause(dropspec_suite: Suite, clause_id: str | None, case_id: str | None) -> None:
    if clause_id is None:
        pytest.skip(f"adapter {dropspec_suite.adapter.name!r} cannot run here: {dropspec_suite.unavailable}")
    result = dropspec_suite.evaluate(clause_id, case_id)
    if result.status == "not_applicable":
        pytest.skip(f"not applicable: {result.message}")
    if result.status == "skip":
        pytest.skip(result.message)
    if result.status == "not_measured":  # the case crashed: one error on the runs clause, not one per clause
        pytest.skip(result.message)
    if result.status == "xfail":
        pytest.xfail(result.message)
    if result.status == "error" and result.expected:
        pytest.xfail(f"known crash: {result.message}")
    if result.status == "error":
        trace = (result.error or {}).get("traceback", "")
        pytest.fail(f"error: {result.message}\n{trace}", pytrace=False)
    if result.status == "fail":
        pytest.fail(result.message, pytrace=False)
    if result.status != "pass":  # a status this test does not know must never read as a pass
        pytest.fail(f"unknown status {result.status!r}: {result.message}", pytrace=False)

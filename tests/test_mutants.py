"""The suite can see: every mutant is flagged by the clause naming its deviation, and the
reference passes every clause that applies to it."""

from __future__ import annotations

import pytest

from dropspec.adapters.reference import ReferenceAdapter
from dropspec.engine import Suite

from .mutants import EXPECTED


@pytest.fixture(scope="module")
def reference_results():
    return Suite(ReferenceAdapter()).run()


def test_reference_passes_every_applicable_clause(reference_results) -> None:
    bad = [
        f"{r.clause} [{r.case}]: {r.status}: {r.message}"
        for r in reference_results
        if r.status not in ("pass", "not_applicable")
    ]
    assert not bad, "\n".join(bad)
    assert sum(r.status == "pass" for r in reference_results) > 400


def test_every_clause_is_exercised_by_the_reference(reference_results) -> None:
    from dropspec.spec import default_spec

    passed = {r.clause for r in reference_results if r.status == "pass"}
    never = [c.id for _, c in default_spec().clauses() if c.id not in passed]
    assert not never, f"clauses no reference case checks: {never}"


@pytest.mark.parametrize("mutant", list(EXPECTED), ids=lambda m: m.name)
def test_mutant_is_flagged_by_its_clause(mutant) -> None:
    results = Suite(mutant()).run()
    failed = {r.clause for r in results if r.status == "fail"}
    errors = [r for r in results if r.status == "error"]
    assert not errors, errors[0].message
    clause, exactly = EXPECTED[mutant]
    assert clause in failed, f"{mutant.name}: expected {clause} to fail; failed: {sorted(failed)}"
    if exactly is not None:
        assert failed == exactly

"""pytest options and parametrization for the conformance tests.

Run through ``dropspec run --adapter NAME``, or directly:
``pytest --pyargs dropspec.conformance --dropspec-adapter NAME``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dropspec.deviations import Deviations
from dropspec.engine import Suite
from dropspec.registry import UnknownAdapter, load_adapter
from dropspec.results import ResultsFile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dropspec")
    group.addoption("--dropspec-adapter", default=os.environ.get("DROPSPEC_ADAPTER"), help="adapter to test")
    group.addoption("--dropspec-out", default=os.environ.get("DROPSPEC_OUT", "results"), help="results directory")
    group.addoption(
        "--dropspec-timeout",
        type=float,
        default=float(os.environ.get("DROPSPEC_CASE_TIMEOUT", "600")),
        help="seconds before a case is recorded as hung",
    )
    group.addoption(
        "--dropspec-no-deviations",
        action="store_true",
        help="ignore the adapter's deviations file: every result keeps its raw status (runs of older releases)",
    )


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("--dropspec-adapter")
    if not name:
        raise pytest.UsageError("no adapter given: pass --dropspec-adapter NAME (`dropspec adapters` lists them)")
    try:
        adapter = load_adapter(name)
    except UnknownAdapter as exc:
        raise pytest.UsageError(str(exc)) from None
    raw = config.getoption("--dropspec-no-deviations")
    # an empty list, not None: the Suite would load the adapter's file for None
    deviations = Deviations([], "none (--dropspec-no-deviations)") if raw else None
    # every case is observed in a worker process that a crash, an exit or a hang cannot take down with the run
    suite = Suite(adapter, deviations=deviations, timeout=config.getoption("--dropspec-timeout"), isolate=True)
    out = Path(config.getoption("--dropspec-out")) / f"{adapter.name}.json"
    results = ResultsFile(out, suite, selection=config.getoption("keyword") or None)
    if raw:  # so a report can tell raw verdicts from ones judged against the deviations file
        results.data["deviations"] = "ignored"
    suite.on_result = lambda r: results.add(r, suite._observations.get(r.case))
    suite.on_observe = results.observing
    config._dropspec = (suite, results)  # type: ignore[attr-defined]
    # a clause of a scheme the case does not claim is not a test: recorded as not applicable, with its
    # reason, without a pytest item (most pairs are; collecting and printing them cost more than judging)
    for clause_id, case_id in _pairs(suite, applicable=False):
        suite.evaluate(clause_id, case_id)


def _pairs(suite: Suite, applicable: bool) -> list[tuple[str, str]]:
    return [
        (clause.id, case.id)
        for clause, case in suite.pairs()
        if (suite.applies(suite.spec.clause(clause.id)[0], case) is None) == applicable
    ]


def pytest_runtestloop(session: pytest.Session) -> None:
    state = getattr(session.config, "_dropspec", None)
    if state is None:
        return
    pairs = [tuple(item.callspec.params.values()) for item in session.items if hasattr(item, "callspec")]
    state[1].select([(clause, case) for clause, case in pairs if clause is not None])


def pytest_unconfigure(config: pytest.Config) -> None:
    state = getattr(config, "_dropspec", None)
    if state:
        suite, results = state
        suite.close()
        results.finish()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "clause_id" not in metafunc.fixturenames:
        return
    suite: Suite = metafunc.config._dropspec[0]  # type: ignore[attr-defined]
    if suite.unavailable:
        metafunc.parametrize(("clause_id", "case_id"), [(None, None)], ids=[f"{suite.adapter.name}-unavailable"])
        return
    pairs = _pairs(suite, applicable=True)
    metafunc.parametrize(("clause_id", "case_id"), pairs, ids=[f"{a}::{b}" for a, b in pairs])


@pytest.fixture
def dropspec_suite(request: pytest.FixtureRequest) -> Suite:
    return request.config._dropspec[0]  # type: ignore[attr-defined]

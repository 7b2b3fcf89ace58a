"""Repros: the dropspec command that reruns one (clause, case), and the framework-only script.

The script is composed (``dropspec.repro_script``) from the snippet the adapter returned at run time,
stored in the results file, so reports built without the framework still show it.

A framework-only script comes from the adapter, through an optional method on the Adapter base
class::

    def repro(self, case: Case) -> str | None:
        '''A self-contained script that uses only the framework (no dropspec) and shows what
        ``case`` does with its masks; None when the adapter has none for this case.'''

Adapters without the method (or whose framework is not installed where the report is built)
simply have no snippet; the dropspec command is always available.
"""

from __future__ import annotations

import shlex
from typing import Any

NO_REPRO = "no repro available for this adapter yet"


def run_command(adapter: str, case_id: str, clause_id: str | None = None) -> str:
    """The command that reruns one case (and one clause of it) of an adapter's suite."""
    selector = f"{clause_id}::{case_id}]" if clause_id else f"::{case_id}]"
    return f"dropspec run --adapter {shlex.quote(adapter)} --out results -k {shlex.quote(selector)}"


def repros_for(adapter_name: str, case_ids: list[str]) -> dict[str, tuple[str | None, str]]:
    """CASE -> (snippet, why not) for an adapter: its framework-only repro, or None and the reason."""
    from ..registry import load_adapter

    def none(why: str) -> dict[str, tuple[str | None, str]]:
        return {case_id: (None, why) for case_id in case_ids}

    try:
        adapter = load_adapter(adapter_name)
    except Exception as exc:  # an unknown or broken adapter must not stop a report
        return none(f"{NO_REPRO} (the adapter cannot be loaded here: {exc})")
    method = getattr(adapter, "repro", None)
    if method is None:
        return none(NO_REPRO)
    try:
        reason = adapter.unavailable_reason()
        cases = {} if reason else {c.id: c for c in adapter.cases()}
    except Exception as exc:
        return none(f"{NO_REPRO}: the adapter's cases cannot be listed here ({type(exc).__name__}: {exc})")
    if reason:
        return none(f"{NO_REPRO} here: {reason}")
    out: dict[str, tuple[str | None, str]] = {}
    for case_id in case_ids:
        if case_id not in cases:
            out[case_id] = (None, f"{NO_REPRO}: the adapter has no case {case_id!r} any more")
            continue
        try:
            snippet = method(cases[case_id])
        except Exception as exc:  # a broken snippet is reported, not raised
            out[case_id] = (None, f"{NO_REPRO}: its repro() raised {type(exc).__name__}: {exc}")
            continue
        out[case_id] = (str(snippet), "") if snippet else (None, NO_REPRO)
    return out


def adapter_repro(adapter_name: str, case_id: str) -> tuple[str | None, str]:
    """(snippet, why not) for one case."""
    return repros_for(adapter_name, [case_id])[case_id]


RUNS_CLAUSE = "common.runs.documented_configuration"


def with_snippets(run: dict[str, Any]) -> dict[str, Any]:
    """The results of a run whose cases all carry their snippet: the ones stored at run time, else (older
    results) the installed adapter's."""
    cases = run.get("cases", {})
    missing = [c for c, rec in cases.items() if "repro" not in rec and "repro_missing" not in rec]
    if not missing:
        return run
    filled = {c: dict(rec) for c, rec in cases.items()}
    for case_id, (snippet, why) in repros_for(run["adapter"], missing).items():
        filled[case_id].update({"repro": snippet} if snippet else {"repro_missing": why})
    return {**run, "cases": filled}


def case_script(run: dict[str, Any], case_id: str, clause_id: str | None = None) -> tuple[str | None, str]:
    """(script, why not): the self-contained framework-only script for one case of a run, checking
    ``clause_id`` (default: the first clause the case breaks; a crash: the 'runs' clause). A case that
    breaks nothing, or whose clause has no short script, gets its bare snippet."""
    from ..repro_script import first_bad_clause, script_from_results

    run = with_snippets(run)
    record = run.get("cases", {}).get(case_id) or {}
    clause_id = clause_id or first_bad_clause(run, case_id)
    crashed = bool((record.get("observation") or {}).get("error"))
    why = ""
    if clause_id:
        script, why = script_from_results(run, case_id, RUNS_CLAUSE if crashed else clause_id)
        if script:
            return script, ""
    snippet = record.get("repro")
    if snippet:
        return snippet, ""
    return None, record.get("repro_missing") or why or NO_REPRO


def collect_repros(runs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """ADAPTER -> CASE -> framework-only script (for the case's first broken clause), where there is one."""
    found: dict[str, dict[str, str]] = {}
    for run in runs:
        run = with_snippets(run)
        for case_id in run.get("cases", {}):
            script, _ = case_script(run, case_id)
            if script:
                found.setdefault(run["adapter"], {})[case_id] = script
    return found

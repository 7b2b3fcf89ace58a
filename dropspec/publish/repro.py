"""Repros: the dropspec command that reruns one (clause, case), and the framework-only script.

The script is composed (``dropspec.repro``) from the case's repro, the model module with its CONFIG that
the adapter's ``repro(case)`` returned when the suite ran and that the results file stores, so reports
built without the framework still show it. This module never loads an adapter. The dropspec command is
always available.
"""

from __future__ import annotations

import shlex
from typing import Any

from ..repro import first_bad_clause, script_from_results
from ..results import NO_REPRO


def run_command(adapter: str, case_id: str, clause_id: str | None = None) -> str:
    """The command that reruns one case (and one clause of it) of an adapter's suite."""
    selector = f"{clause_id}::{case_id}]" if clause_id else f"::{case_id}]"
    return f"dropspec run --adapter {shlex.quote(adapter)} --out results -k {shlex.quote(selector)}"


RUNS_CLAUSE = "common.runs.documented_configuration"


def with_snippets(run: dict[str, Any]) -> dict[str, Any]:
    """The results of a run whose cases all carry their snippet, or why there is none: the report reads
    results only and never loads an adapter, so older results without a stored snippet have none."""
    cases = run.get("cases", {})
    missing = [c for c, rec in cases.items() if "repro" not in rec and "repro_missing" not in rec]
    if not missing:
        return run
    filled = {c: dict(rec) for c, rec in cases.items()}
    for case_id in missing:
        filled[case_id]["repro_missing"] = f"{NO_REPRO}: the results file stores no snippet for this case"
    return {**run, "cases": filled}


def case_script(run: dict[str, Any], case_id: str, clause_id: str | None = None) -> tuple[str | None, str]:
    """(script, why not): the self-contained framework-only script for one case of a run, checking
    ``clause_id`` (default: the first clause the case breaks; a crash: the 'runs' clause). A case that
    breaks nothing, or whose clause has no short script, gets its bare repro (the model module)."""
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

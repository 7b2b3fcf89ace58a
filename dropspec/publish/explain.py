"""``dropspec explain ADAPTER CASE CLAUSE``: a ready bug report in Markdown for one result.

What the clause says, what was observed (message, fingerprint, numbers), the framework and
backend versions from the results file, and a repro: the dropspec command, and a script that
uses only the framework when the adapter provides one (``Adapter.repro(case) -> str | None``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..spec import Spec, default_spec
from .repro import case_script, run_command
from .specdoc import check_text


class ExplainError(LookupError):
    """The adapter, case or clause asked for is not in the results; the message says what is."""


def _load(results_dir: Path, adapter: str) -> dict[str, Any]:
    path = results_dir / f"{adapter}.json"
    if not path.is_file():
        known = sorted(p.stem for p in results_dir.glob("*.json"))
        raise ExplainError(
            f"no results for adapter {adapter!r} in {results_dir}/ (found: {', '.join(known) or 'none'}); "
            f"run `dropspec run --adapter {adapter} --out {results_dir}` first"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ExplainError(f"{path}: not a dropspec results file ({exc})") from exc


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def explain(
    adapter: str,
    case_id: str,
    clause_id: str,
    results_dir: Path,
    spec: Spec | None = None,
    snippet: str | None = None,
    snippet_reason: str | None = None,
) -> str:
    """The Markdown bug report. ``snippet`` overrides the adapter's repro (None: ask the adapter)."""
    spec = spec or default_spec()
    try:
        scheme, clause = spec.clause(clause_id)
    except KeyError as exc:
        raise ExplainError(str(exc.args[0])) from None
    data = _load(results_dir, adapter)
    record = data.get("cases", {}).get(case_id)
    if record is None:
        known = ", ".join(data.get("cases", {})) or "none"
        raise ExplainError(f"adapter {adapter!r} has no case {case_id!r} in {results_dir}/; its cases: {known}")
    result = next((r for r in data.get("results", []) if r["case"] == case_id and r["clause"] == clause_id), None)
    obs = record.get("observation") or {}
    label = record.get("label") or case_id
    framework = data.get("framework") or adapter
    status = result["status"] if result else "no data"

    lines = [
        f"# `{clause_id}`: {status} for {framework} `{label}`",
        "",
        "## What the spec says",
        "",
        f"- **Clause:** `{clause.id}` ({clause.level})",
        f"- **Rule:** {clause.text}",
        f"- **Source:** {clause.source}",
        f"- **Scheme:** {scheme.title} (`{scheme.id}`): {scheme.summary}",
    ]
    if scheme.equations:
        lines.append(f"- **Equations:** `{' '.join(scheme.equations.split())}`")
    lines += [f"- **Checked by:** {check_text(clause.check)}", ""]

    lines += ["## What was observed", ""]
    if result is None:
        lines += ["No result for this (clause, case) in the results file: the run did not reach it.", ""]
    else:
        lines += [f"**Status:** {result['status']}", "", "```", result["message"], "```", ""]
    claim = record.get("claim") or {}
    lines += [
        f"- **Case:** `{case_id}`: `{label}` (cell `{record.get('cell')}`)",
        f"- **Configuration:** `{json.dumps(record.get('config'), default=str)}`",
        f"- **Documented as:** `{claim.get('scheme')}` with rates {json.dumps(claim.get('rates', {}))}"
        + (f" ({claim['doc']})" if claim.get("doc") else ""),
        f"- **Behaves as:** {', '.join(obs.get('behaves_as') or []) or 'no scheme in the spec'}",
        f"- **Seed:** {record.get('seed')}; sizes {json.dumps(record.get('sizes'))}",
        f"- **Inference error:** {_fmt(obs.get('inference_error'))} tolerances; **replay error:** "
        f"{_fmt(obs.get('replay_error'))} tolerances ({obs.get('replay_unknown', 0)} unobservable mask elements)",
    ]
    fp = (result or {}).get("fingerprint") or obs.get("fingerprint")
    if fp and fp.get("sites"):
        lines += [
            "",
            "Fingerprint of the recovered masks:",
            "",
            "| site | resample | gates | batch | scale | drop rate | draws | observed |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, s in fp["sites"].items():
            lines.append(
                f"| {name} | {s.get('resample')} | {_fmt(s.get('gates'))} | {_fmt(s.get('batch'))} | "
                f"{_fmt(s.get('scale'))} | {_fmt(s.get('rate'))} | {s.get('draws')} | {_fmt(s.get('observed'))} |"
            )
        lines += ["", f"Carried state dropped: {fp.get('carried_state_dropped')}"]
    elif fp:
        lines += ["", f"No site is dropped. Carried state dropped: {fp.get('carried_state_dropped')}"]
    error = (result or {}).get("error") or obs.get("error")
    if error:
        lines += ["", f"The framework raised `{error.get('type')}`: {error.get('message')}"]
        if error.get("traceback"):
            lines += [
                "",
                "<details><summary>traceback</summary>",
                "",
                "```",
                error["traceback"].rstrip(),
                "```",
                "",
                "</details>",
            ]
    for note in obs.get("notes") or []:
        lines.append(f"- note: {note}")
    lines.append("")

    versions = data.get("versions") or {}
    lines += ["## Environment", "", f"- **Adapter:** `{adapter}` ({framework})"]
    lines += [f"- **{k}:** {v}" for k, v in versions.items()] or ["- versions: not recorded"]
    lines += [
        f"- **Device:** {data.get('device')}",
        f"- **Python:** {data.get('python')}",
        f"- **Run started:** {data.get('started')}",
    ]
    if data.get("unavailable"):
        lines.append(f"- **Unavailable:** {data['unavailable']}")
    lines.append("")

    if snippet is None and snippet_reason is None:
        snippet, snippet_reason = case_script(data, case_id, clause_id)
    lines += [
        "## Repro",
        "",
        "With dropspec (`pip install dropspec`), rerun this clause on this case:",
        "",
        "```sh",
        run_command(adapter, case_id, clause_id),
        f"dropspec explain {adapter} {case_id} {clause_id} --results results",
        "```",
        "",
    ]
    if snippet:
        lines += [
            "With the framework only (exits 1 while the deviation is present, 0 once the rule holds):",
            "",
            "```python",
            snippet.rstrip(),
            "```",
            "",
        ]
    else:
        lines += [f"Framework-only script: {snippet_reason}.", ""]
    lines += [f"Spec: the clause `{clause.id}` in dropspec's spec/schemes/{scheme.id}.yaml.", ""]
    return "\n".join(lines)

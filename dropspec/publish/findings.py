"""'What we found': every deviation in the results, with the clauses it breaks, the versions and a
repro, as Markdown for the README (between markers) and for reports/findings.md."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
BAD = ("fail", "xfail", "error")


def _repro(run: dict[str, Any], case_id: str) -> str | None:
    """The framework-only script for the case's first broken clause: from the snippet stored in the
    results, else from the installed adapter."""
    try:
        from .repro import case_script

        return case_script(run, case_id)[0]
    except Exception:  # findings are written whether or not a script can be composed here
        return None


def findings(runs: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    for run in runs:
        versions = ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items()) or "versions unknown"
        by_case: dict[str, list[dict[str, Any]]] = {}
        for r in run["results"]:
            if r["status"] in BAD:
                by_case.setdefault(r["case"], []).append(r)
        if not by_case:
            continue
        lines += [f"### {run['adapter']} ({versions})", ""]
        for case_id, results in by_case.items():
            record = run["cases"].get(case_id, {})
            observation = record.get("observation") or {}
            documented = record.get("claim", {}).get("scheme", "?")
            label = record.get("label", case_id)
            error = observation.get("error")
            if error:
                first_line = next((x for x in error["message"].splitlines() if x.strip()), "")
                lines.append(f"- `{label}`: documented as **{documented}**; **crashes** with {error['type']}.")
                lines.append(f"  {first_line[:300]}")
            else:
                behaves = ", ".join(observation.get("behaves_as") or []) or "no scheme in the spec"
                clauses = sorted({r["clause"] for r in results})
                lines.append(f"- `{label}`: documented as **{documented}**, behaves as **{behaves}**.")
                lines.append("  Breaks " + ", ".join(f"`{c}`" for c in clauses) + ".")
                first = next(r for r in results if r["status"] != "error")
                lines.append(f"  Observed: {first['message'].split(' [')[0][:300]}")
            script = _repro(run, case_id)
            if script:
                body = ["  ```python", *("  " + s if s else "" for s in script.strip().splitlines()), "  ```"]
                lines += ["", "  <details><summary>repro (framework only)</summary>", "", *body, "", "  </details>", ""]
        lines.append("")
    if not lines:
        return "No deviations in the results: every adapter run so far conforms to every clause that applies.\n"
    return "\n".join(lines)


def summary(runs: list[dict[str, Any]]) -> str:
    """The README's short form: per adapter, how many cases deviate and which clauses they break."""
    lines = []
    for run in runs:
        bad = [r for r in run["results"] if r["status"] in BAD]
        if not bad:
            continue
        versions = ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items())
        crashed = {c for c, rec in run["cases"].items() if (rec.get("observation") or {}).get("error")}
        counts: dict[str, set[str]] = {}
        for r in bad:
            if r["case"] not in crashed:
                counts.setdefault(r["clause"], set()).add(r["case"])
        cases = len({r["case"] for r in bad})
        head = f"- **{run['adapter']}** ({versions}): {cases} of {len(run['cases'])} cases deviate"
        head += f"; {len(crashed)} crash" if crashed else ""
        broken = ", ".join(f"`{c}` ({len(v)})" for c, v in sorted(counts.items())) or "nothing besides the crashes"
        lines.append(f"{head}. Broken: {broken}.")
    if not lines:
        return "No deviations in the results.\n"
    return (
        "\n".join(lines)
        + "\n\nEvery case, with what it was documented as, what it behaves as and the message: `reports/findings.md`.\n"
    )


def update_readme(readme: Path, text: str) -> bool:
    """Replace the README's findings block (between the markers); False when it has none."""
    if not readme.exists():
        return False
    content = readme.read_text()
    if START not in content or END not in content:
        return False
    block = f"{START}\n{text.rstrip()}\n{END}"
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, content, flags=re.S))
    return True

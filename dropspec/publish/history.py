"""Behaviour across releases: ``results/history/RELEASE/ADAPTER.json`` -> ``reports/history.{json,md}``.

``tox -m history`` runs an adapter's suite under several releases of its framework, each into its own
directory (``results/history/keras-3.0.5/keras_torch.json``), with ``dropspec run --no-deviations``:
the deviations files describe the newest release, so older runs keep their raw verdicts. This module
lines the runs of one adapter up by release and says, per (clause, case), the status under each
release and the releases where it changed. Only statuses are compared, never messages: measured
rates and replay errors move with any change of a framework's random stream, which is not a change
of the dropout scheme.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ..spec import Spec, default_spec
from .statuses import behaviour_text, cell_summary, load_results, verdict, word

# statuses that are a measurement of the release; a transition from or to anything else (a case the
# release did not run) is not a change of behaviour
MEASURED = ("pass", "fail", "error", "not_applicable")
# the package whose version names a release, per adapter framework (``versions`` keys of a results file)
RELEASE_PACKAGE = {"keras": "keras", "tf_keras": "tf-keras"}


def release_key(label: str) -> tuple[int, ...]:
    """Sort key of a release label such as ``keras-3.10.0``: its numbers, so 3.10 comes after 3.9."""
    return tuple(int(n) for n in re.findall(r"\d+", label))


def raw_status(result: dict[str, Any]) -> str:
    """The status a run without the deviations file would have given: a known deviation is a fail."""
    status = result["status"]
    return "fail" if status == "xfail" else status


def release_version(run: dict[str, Any], label: str) -> str:
    """The framework's version as the run recorded it, else the directory name."""
    package = RELEASE_PACKAGE.get(run.get("framework") or "", run.get("framework") or "")
    return (run.get("versions") or {}).get(package) or label


def load_history(root: Path) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Every run under ``root/RELEASE/*.json``, grouped by adapter, oldest release first."""
    series: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    if not root.is_dir():
        return series
    for directory in sorted((d for d in root.iterdir() if d.is_dir()), key=lambda d: (release_key(d.name), d.name)):
        for run in load_results(directory):
            series.setdefault(run["adapter"], []).append((directory.name, run))
    return series


def _changes(statuses: list[str], labels: list[str]) -> list[dict[str, str]]:
    """Where a status differs from the last measured one before it: ``{release, before, after, since}``."""
    out, last, last_label = [], None, None
    for status, label in zip(statuses, labels, strict=True):
        if status not in MEASURED:
            continue
        if last is not None and status != last:
            out.append({"release": label, "before": last, "after": status, "since": last_label})
        last, last_label = status, label
    return out


def build_history(series: dict[str, list[tuple[str, dict[str, Any]]]], spec: Spec) -> dict[str, Any]:
    """Per adapter: its releases, and per clause the verdict under each release, the releases where any
    of its cases changed status, and those cases with their statuses per release."""
    order = {c.id: (n, s.id) for n, (s, c) in enumerate(spec.clauses())}
    out = []
    for adapter, runs in sorted(series.items()):
        labels = [label for label, _ in runs]
        releases = [
            {
                "label": label,
                "version": release_version(run, label),
                "versions": run.get("versions", {}),
                "started": run.get("started"),
                "deviations": run.get("deviations", "applied"),
                "unavailable": run.get("unavailable"),
                "totals": dict(Counter(raw_status(r) for r in run["results"])),
            }
            for label, run in runs
        ]
        table: dict[str, dict[str, list[str]]] = {}  # clause -> case -> status per release
        titles: dict[str, str] = {}
        # per case and release: the schemes it behaves as, or the crash that kept it from running
        behaviour: dict[str, list[dict[str, Any] | None]] = {}
        for n, (_, run) in enumerate(runs):
            for case_id, record in run.get("cases", {}).items():
                titles.setdefault(case_id, record.get("label") or case_id)
                behaviour.setdefault(case_id, [None] * len(runs))[n] = _behaviour(record)
            for r in run["results"]:
                row = table.setdefault(r["clause"], {}).setdefault(r["case"], ["no_data"] * len(runs))
                row[n] = raw_status(r)
        clauses = []
        for clause_id in sorted(table, key=lambda c: (order.get(c, (len(order), ""))[0], c)):
            cases = []
            for case_id, statuses in sorted(table[clause_id].items()):
                if all(s in ("not_applicable", "no_data") for s in statuses):
                    continue  # the clause never applies to this case: nothing to follow
                changes = _changes(statuses, labels)
                cases.append(
                    {
                        "case": case_id,
                        "label": titles.get(case_id, case_id),
                        "statuses": statuses,
                        "changes": changes,
                    }
                )
            if not cases:
                continue
            verdicts = []
            for n in range(len(runs)):
                statuses = [c["statuses"][n] for c in cases]
                verdicts.append({"verdict": verdict(statuses), "counts": dict(Counter(statuses))})
            changed_in = sorted({ch["release"] for c in cases for ch in c["changes"]}, key=lambda lb: labels.index(lb))
            clauses.append(
                {
                    "clause": clause_id,
                    "scheme": order.get(clause_id, (0, "?"))[1],
                    "verdicts": verdicts,
                    "changed_in": changed_in,
                    "cases": cases,
                }
            )
        followed = {c["case"] for clause in clauses for c in clause["cases"]}
        out.append(
            {
                "adapter": adapter,
                "framework": runs[-1][1].get("framework"),
                "releases": releases,
                "clauses": clauses,
                "cases": {
                    c: {"label": titles.get(c, c), "behaviour": behaviour.get(c, [None] * len(runs))}
                    for c in sorted(followed)
                },
            }
        )
        out[-1]["changes"] = release_changes(out[-1])
    return {"generated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "series": out}


def _behaviour(record: dict[str, Any]) -> dict[str, Any]:
    """What a case did under one release: ``{"behaves_as": [...], "behaviour": name}`` or
    ``{"error": "Type: first line"}``."""
    obs = record.get("observation") or {}
    error = obs.get("error")
    if error:
        first = next((line for line in str(error.get("message", "")).splitlines() if line.strip()), "")
        return {"error": f"{error.get('type', 'Error')}: {first[:200]}"}
    return {"behaves_as": list(obs.get("behaves_as") or []), "behaviour": behaviour_text(record)}


def verdict_text(cell: dict[str, Any]) -> str:
    """What a history cell shows, in the matrix's words: ``3 deviate · 5 pass``."""
    return cell_summary(cell.get("counts", {}))


def _schemes(b: dict[str, Any] | None) -> str:
    if b is None:
        return "not run"
    if "error" in b:
        return "crash"
    # the behaviour's name; a history.json of older code has only the schemes matched, and matched none where
    # a site was at rate 0: its fingerprint is not kept, so the name waits for the next `tox -m history`
    return b.get("behaviour") or ", ".join(b["behaves_as"]) or "unnamed in this older run (`tox -m history` names it)"


def release_changes(series: dict[str, Any]) -> list[dict[str, Any]]:
    """Per release that changed something, compared with the release before it: the cases that stopped
    crashing (``fixed``), that started (``broke``: label and error), and each case that ran under both with
    a clause that changed status (``changed``: label, schemes before and after, and the clauses per
    ``before -> after`` turn)."""
    releases = series["releases"]
    out = []
    for n, release in enumerate(releases):
        moved: dict[str, list[tuple[str, str, str]]] = {}  # case -> (clause, before, after) landing here
        for clause in series["clauses"]:
            for c in clause["cases"]:
                for ch in c["changes"]:
                    if ch["release"] == release["label"]:
                        moved.setdefault(c["case"], []).append((clause["clause"], ch["before"], ch["after"]))
        if not moved:
            continue
        entry: dict[str, Any] = {
            "release": release["label"],
            "version": release["version"],
            "since": releases[n - 1]["version"],  # a change is never on the first release
            "fixed": [],
            "broke": [],
            "changed": [],
        }
        for case_id, items in sorted(moved.items()):
            info = series["cases"].get(case_id, {"label": case_id, "behaviour": [None] * len(releases)})
            was, now = info["behaviour"][n - 1], info["behaviour"][n]
            if was is not None and "error" in was and not (now and "error" in now):
                entry["fixed"].append(case_id)
            elif now is not None and "error" in now and not (was and "error" in was):
                entry["broke"].append({"case": case_id, "label": info["label"], "error": now["error"]})
            else:
                turns: dict[str, list[str]] = {}
                for clause_id, b, a in items:
                    turns.setdefault(f"{word(b)} -> {word(a)}", []).append(clause_id)
                entry["changed"].append(
                    {
                        "case": case_id,
                        "label": info["label"],
                        "was": _schemes(was),
                        "now": _schemes(now),
                        "turns": turns,
                    }
                )
        out.append(entry)
    return out


def change_lines(series: dict[str, Any]) -> list[str]:
    """``release_changes`` as Markdown, one block per release."""
    lines: list[str] = []
    for entry in series.get("changes") or release_changes(series):
        lines += [f"#### {entry['version']} (compared with {entry['since']})", ""]
        if entry["fixed"]:
            cases = ", ".join(f"`{c}`" for c in entry["fixed"])
            lines.append(f"- Runs now, crashed in {entry['since']} ({len(entry['fixed'])} cases): {cases}")
        lines += [f"- `{b['label']}` crashes now: {b['error']}" for b in entry["broke"]]
        for c in entry["changed"]:
            turns = "; ".join(f"{k}: {', '.join(f'`{x}`' for x in v)}" for k, v in c["turns"].items())
            lines.append(f"- `{c['label']}`: behaves as {c['was']} -> {c['now']}. {turns}")
        lines.append("")
    return lines


def render_history_markdown(history: dict[str, Any]) -> str:
    lines = [
        "<!-- generated by `dropspec report`; do not edit -->",
        "# dropspec across releases",
        "",
        f"Generated {history['generated']} from `results/history/` (`tox -m history`). Each run is one release of the",
        "framework with the adapter's suite of today, judged without the deviations files (they describe the",
        "newest release): statuses are raw. A cell counts the cases the clause applies to by status;",
        "**bold** marks a release where at least one case changed status from the release before.",
    ]
    for series in history["series"]:
        releases = series["releases"]
        lines += ["", f"## {series['adapter']} ({series['framework']})", "", "| release | versions | results |"]
        lines.append("|---|---|---|")
        for r in releases:
            versions = ", ".join(f"{k} {v}" for k, v in r["versions"].items()) or "-"
            totals = ", ".join(f"{k} {v}" for k, v in sorted(r["totals"].items())) or r.get("unavailable") or "-"
            lines.append(f"| {r['label']} | {versions} | {totals} |")
        changes = change_lines(series)
        lines += ["", "### What changed", ""] + (changes or ["Nothing: every clause has the same statuses.", ""])
        lines.pop()  # the blank line after the last release
        lines += ["", "### Clauses", ""]
        lines.append("| clause | " + " | ".join(r["version"] for r in releases) + " | changed in |")
        lines.append("|---|" + "---|" * (len(releases) + 1))
        versions = {r["label"]: r["version"] for r in releases}
        for clause in series["clauses"]:
            cells = []
            for r, cell in zip(releases, clause["verdicts"], strict=True):
                text = verdict_text(cell)
                cells.append(f"**{text}**" if r["label"] in clause["changed_in"] else text)
            changed = ", ".join(versions[lb] for lb in clause["changed_in"]) or "-"
            lines.append(f"| `{clause['clause']}` | " + " | ".join(cells) + f" | {changed} |")
    return "\n".join(lines) + "\n"


def write_history(root: Path, out_dir: Path, spec: Spec | None = None) -> dict[str, Any] | None:
    """``history.json`` and ``history.md`` in ``out_dir`` from the runs under ``root``; ``None`` (and
    nothing written) when ``root`` holds no runs."""
    series = load_history(root)
    if not series:
        return None
    history = build_history(series, spec or default_spec())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "history.json").write_text(json.dumps(history, indent=1, default=str) + "\n")
    (out_dir / "history.md").write_text(render_history_markdown(history))
    return history

"""Statuses and results files: the words a status is shown in, and reading ``results/*.json``.

One vocabulary for every published view (matrix.md, the page, history, findings): the raw statuses
are test-runner words (``xfail``, ``error``); a reader sees what the case did.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..paths import UnsafeName, safe_name
from ..results import SCHEMA_VERSION

# a status as a word for people: what the case did on that clause
WORDS = {
    "pass": "pass",
    "fail": "deviates",
    "xfail": "deviates (known)",
    "error": "crash",
    "not_applicable": "n/a",
    "skip": "skipped",
    "not_measured": "not measured",
    "no_data": "no data",
}
# the order counts are listed in a cell: what a reader looks for first
ORDER = ("fail", "xfail", "error", "pass", "not_measured", "skip")
# "1 case passes", "5 cases pass": the word after a count, singular and plural
_COUNTED = {
    "fail": ("deviates", "deviate"),
    "xfail": ("deviates (known)", "deviate (known)"),
    "error": ("crashes", "crash"),
    "pass": ("passes", "pass"),
    "not_measured": ("not measured", "not measured"),
    "skip": ("skipped", "skipped"),
}
SEPARATOR = " · "


def judges_the_rate(clause: str) -> bool:
    """Whether a clause checks the rate itself (``*.rate``, ``common.rates.*``). Frameworks document their rate
    ("Fraction of the units to drop"), so a verdict on it holds against the documentation even where the case's
    scheme is only the usual reading of it (an inferred claim)."""
    return clause.startswith("common.rates.") or clause.endswith(".rate")


def word(status: str) -> str:
    """The word for one status; an unknown status is shown as it is rather than hidden."""
    return WORDS.get(status, status)


def cell_summary(counts: Mapping[str, int]) -> str:
    """A matrix cell in words: every status's count except n/a, in ``ORDER``, e.g.
    ``27 deviate (known) · 3 crash · 5 pass``; ``n/a`` when the clause applies to none of the cases,
    ``no data`` when there are no results at all (never a pass)."""
    shown = [s for s in ORDER if counts.get(s, 0) > 0]
    # a status this vocabulary does not know yet still counts, after the known ones
    shown += sorted(s for s, n in counts.items() if n > 0 and s not in ORDER and s not in ("not_applicable", "no_data"))
    if not shown:
        return WORDS["not_applicable"] if counts.get("not_applicable", 0) > 0 else WORDS["no_data"]
    parts = []
    for s in shown:
        n = counts[s]
        one, many = _COUNTED.get(s, (s, s))
        parts.append(f"{n} {one if n == 1 else many}")
    return SEPARATOR.join(parts)


def warn(message: str) -> None:
    """A problem with the inputs of a report that does not stop it: said once, on stderr."""
    print(f"dropspec: warning: {message}", file=sys.stderr)


def _read_run(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a dropspec results file ({exc}); delete it or rerun `dropspec run`") from exc
    if not isinstance(data, dict) or "adapter" not in data or "results" not in data:
        raise ValueError(f"{path}: not a dropspec results file (no 'adapter' or 'results'); delete it or rerun")
    try:
        safe_name(data["adapter"], f"{path}: adapter name")
        for case_id in data.get("cases", {}):
            safe_name(case_id, f"{path}: case id")
    except UnsafeName as exc:
        raise ValueError(f"{exc}; this results file cannot be published") from None
    data["_file"] = path.name
    if data.get("device") not in (None, "cpu"):  # a GPU run of an adapter sits beside its CPU run in the matrix
        data["adapter"] = safe_name(f"{data['adapter']}_{data['device']}", f"{path}: adapter name")
    data["_dir"] = str(path.parent)  # where its masks files are
    return data


def behaviour_text(record: Mapping[str, Any]) -> str:
    """What a case behaves as, in words: the name the run gave it (``observation.behaviour``), else one
    named now from its fingerprint (results written before cases carried a name). Takes a results file's
    case record or a ``reports/matrix.json`` case. A crashed case 'crashed'; a case with no measurement
    'not measured' (never 'no scheme in the spec', which says nothing about what was measured)."""
    obs = record.get("observation") or record
    if obs.get("error"):
        return f"crashed ({obs['error'].get('type', 'error')})"
    if obs.get("behaviour"):
        return str(obs["behaviour"])
    fingerprint, cell = obs.get("fingerprint"), record.get("cell")
    if fingerprint and cell:
        from ..naming import behaviour_from_record

        claim = (record.get("claim") or {}).get("scheme") or record.get("documented_as")
        return behaviour_from_record(fingerprint, cell, prefer=claim).text
    if obs.get("behaves_as"):
        return ", ".join(obs["behaves_as"])
    return WORDS["not_measured"]


def load_results(directory: Path | Sequence[Path]) -> list[dict[str, Any]]:
    """Every run in ``directory`` (or in several, as separate CI jobs or machines leave them; each file is
    judged by its own versions and device): ``ADAPTER.json``, and a run that was cut short
    (``ADAPTER.json.PID.partial``, see ``dropspec.results``) where no finished run of that adapter exists,
    or where it is newer than the finished one: it is then shown, marked incomplete."""
    directories = [directory] if isinstance(directory, Path) else list(directory)
    runs: dict[str, dict[str, Any]] = {}
    for path in sorted(p for d in directories for p in d.glob("*.json")):
        data = _read_run(path)
        if data.get("schema", SCHEMA_VERSION) != SCHEMA_VERSION:
            warn(f"{path}: results schema {data.get('schema')!r}, this dropspec reads {SCHEMA_VERSION}; shown as is")
        unknown = sorted({r.get("status") for r in data["results"]} - set(WORDS))
        if unknown:
            warn(f"{path}: unknown statuses {unknown}; shown as they are, never as a pass")
        other = runs.get(data["adapter"])
        if other is not None:
            newer = max(other, data, key=lambda run: str(run.get("started", "")))
            warn(
                f"{path} and {other['_file']} are both results of adapter {data['adapter']!r}; "
                f"showing the newer, {newer['_file']}; keep one"
            )
            data = newer
        runs[data["adapter"]] = data
    for path in sorted((p for d in directories for p in d.glob("*.json.*.partial")), key=lambda p: p.stat().st_mtime):
        data = _read_run(path)
        finished = runs.get(data["adapter"])
        if finished is None or str(data.get("started", "")) > str(finished.get("started", "")):
            data["complete"] = False
            runs[data["adapter"]] = data
    return [runs[name] for name in sorted(runs)]


def run_state(run: Mapping[str, Any], spec_hash: str | None = None) -> str | None:
    """Why a run's numbers are not the whole story, in words; None for a complete, unfiltered run judged
    against this spec. Results files from before these fields existed are taken as complete."""
    notes = []
    if run.get("complete") is False:
        done = sum(1 for record in run.get("cases", {}).values() if record.get("observation"))  # measured cases
        note = f"incomplete: {done} of {run.get('expected_cases', '?')} cases"
        if run.get("in_flight"):
            note += f", stopped during case {run['in_flight']}"
        notes.append(note)
    if run.get("selection"):
        notes.append(f"filtered with -k {run['selection']!r}")
    if spec_hash and run.get("spec_hash") and run["spec_hash"] != spec_hash:
        notes.append("judged against another version of the spec")
    return "; ".join(notes) or None


def verdict(statuses: list[str]) -> str:
    """One status for a clause over an adapter's cases: the worst that is a verdict. The cell's colour
    on the page; its text is ``cell_summary``, which counts them all."""
    counts = Counter(statuses)
    for status in ("error", "fail", "xfail", "pass", "not_measured"):
        if counts[status]:
            return status
    if counts["not_applicable"]:
        return "not_applicable"
    if counts["skip"]:
        return "skip"
    return "no_data"

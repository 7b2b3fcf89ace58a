"""Statuses and results files: the words a status is shown in, and reading ``results/*.json``.

One vocabulary for every published view (matrix.md, the page, history, findings): the raw statuses
are test-runner words (``xfail``, ``error``); a reader sees what the case did.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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


def load_results(directory: Path) -> list[dict[str, Any]]:
    files = sorted(directory.glob("*.json"))
    runs = []
    for path in files:
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not a dropspec results file ({exc}); delete it or rerun `dropspec run`") from exc
        if not isinstance(data, dict) or "adapter" not in data or "results" not in data:
            raise ValueError(f"{path}: not a dropspec results file (no 'adapter' or 'results'); delete it or rerun")
        runs.append(data)
    return runs


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

"""Statuses and results files: the words a verdict is shown in, and reading ``results/*.json``."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

SYMBOL = {"pass": "pass", "fail": "FAIL", "error": "ERROR", "xfail": "xfail", "not_applicable": "n/a", "skip": "skip"}


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
    """One word for a clause over an adapter's cases: the worst status that is a verdict."""
    counts = Counter(statuses)
    for status in ("error", "fail", "xfail", "pass"):
        if counts[status]:
            return status
    if counts["not_applicable"]:
        return "not_applicable"
    if counts["skip"]:
        return "skip"
    return "no_data"

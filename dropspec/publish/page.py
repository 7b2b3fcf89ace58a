"""``reports/index.html``: the matrix as a static page that opens from disk.

Clauses grouped by scheme down the side, adapters with their versions across the top, one
verdict per cell. A cell opens its details: the per-case messages, fingerprints, the recovered
mask picture and a repro. Filters by framework, cell type and status. No server, no network:
the data, the CSS and the script are inlined.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .history import verdict_text
from .pictures import cell_kind
from .repro import run_command
from .statuses import WORDS, cell_summary
from .templating import render

STATUS_WORDS = WORDS


def cell_text(cell: dict[str, Any]) -> str:
    """What a matrix cell shows: how many cases have each status (statuses.cell_summary)."""
    return cell_summary(cell.get("counts", {}))


def case_extras(
    runs: list[dict[str, Any]],
    pictures: dict[str, dict[str, str]] | None = None,
    repros: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """What the page shows about a case beyond matrix.json: its cell, sizes, numbers, picture, repro."""
    pictures, repros = pictures or {}, repros or {}
    extras: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        name = run["adapter"]
        for case_id, record in run.get("cases", {}).items():
            obs = record.get("observation") or {}
            error = obs.get("error") or {}
            extras.setdefault(name, {})[case_id] = {
                "cell": record.get("cell"),
                "kind": cell_kind(record.get("cell")),
                "seed": record.get("seed"),
                "sizes": record.get("sizes"),
                "doc": (record.get("claim") or {}).get("doc"),
                "rates": (record.get("claim") or {}).get("rates"),
                "inference_error": obs.get("inference_error"),
                "replay_error": obs.get("replay_error"),
                "replay_unknown": obs.get("replay_unknown"),
                "notes": obs.get("notes") or [],
                "traceback": error.get("traceback"),
                "picture": pictures.get(name, {}).get(case_id),
                "state_picture": pictures.get(name, {}).get(f"{case_id}#state"),
                "growth_per_step": (obs.get("state_growth") or {}).get("growth_per_step"),
                "repro": repros.get(name, {}).get(case_id),
            }
    return extras


def _guess_kind(case_id: str) -> str:
    return cell_kind(case_id.split("-")[0])


def page_data(matrix: dict[str, Any], extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON the page's script reads; cases without extras get their cell kind guessed from the id."""
    extras = json.loads(json.dumps(extras or {}, default=str))
    for name, cases in matrix.get("cases", {}).items():
        for case in cases:
            extras.setdefault(name, {}).setdefault(case["case"], {"kind": _guess_kind(case["case"])})
    commands = {
        name: {c["case"]: run_command(name, c["case"]) for c in cases} for name, cases in matrix["cases"].items()
    }
    return {"matrix": matrix, "extras": extras, "commands": commands}


def render_page(
    matrix: dict[str, Any],
    extras: dict[str, Any] | None = None,
    spec_href: str = "spec/index.html",
    history: dict[str, Any] | None = None,
) -> str:
    data = page_data(matrix, extras)
    frameworks = sorted({a.get("framework") or "?" for a in matrix["adapters"].values()})
    kinds = sorted({e.get("kind") or "?" for cases in data["extras"].values() for e in cases.values()})
    statuses = ["fail", "error", "xfail", "pass", "not_applicable", "skip", "no_data"]
    return render(
        "index.html.j2",
        matrix=matrix,
        data=data,
        spec_href=spec_href,
        frameworks=frameworks,
        kinds=kinds,
        statuses=statuses,
        words=STATUS_WORDS,
        cell_text=cell_text,
        history=history,  # None without runs of older releases: the History section says how to make them
        history_text=verdict_text,
    )


def write_page(
    out_dir: Path,
    matrix: dict[str, Any],
    extras: dict[str, Any] | None = None,
    spec_href: str = "spec/index.html",
    history: dict[str, Any] | None = None,
) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "index.html"
    target.write_text(render_page(matrix, extras, spec_href, history))
    return target


HISTORY_START, HISTORY_END = "<!-- history:start -->", "<!-- history:end -->"


def splice_history(index: Path, history: dict[str, Any], spec_href: str = "spec/index.html") -> bool:
    """Replace the History section of an existing ``index.html``, between its markers, keeping the rest:
    ``tox -m history`` runs without the matrix's results (``results/`` is not committed), so it updates
    the committed page in place. False, and nothing written, when the page or its markers are missing."""
    if not index.is_file():
        return False
    text = index.read_text()
    start, end = text.find(HISTORY_START), text.find(HISTORY_END)
    if start < 0 or end < start:
        return False
    section = render(
        "_history.html.j2", history=history, spec_href=spec_href, words=STATUS_WORDS, history_text=verdict_text
    )
    index.write_text(text[: start + len(HISTORY_START)] + "\n" + section + text[end:])
    return True

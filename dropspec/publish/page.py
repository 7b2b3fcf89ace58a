"""``reports/index.html``: the matrix as a static page that opens from disk (``file://``), light enough to open fast.

Clauses grouped by scheme down the side, adapters with their versions across the top, and in every cell how many
cases have each status, in words (``statuses.cell_summary``). The answer card comes first. A cell opens its
details: per case, the message, the fingerprint, the mask picture, the state plot and the repro.

What the page needs to draw the matrix and filter it is inlined: per clause and adapter, one character per case for
its status. Everything else (messages, passes included, fingerprints, tracebacks) is in one small script per
adapter, ``data/ADAPTER.js``, loaded with a ``<script>`` element the first time one of that adapter's cells is
opened: a browser refuses ``fetch()`` of local files, not scripts. Pictures (SVG) and repro scripts
(``repros/ADAPTER/CASE.py``) are files the page links to.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from .history import verdict_text
from .pictures import available as pictures_available
from .pictures import cell_kind
from .repro import run_command
from .statuses import ORDER, SEPARATOR, WORDS, cell_summary
from .templating import render

STATUS_WORDS = WORDS
NO_RESULT = "."  # a case with no result for a clause (the adapter did not run it), in the status strings
DATA_DIR = "data"  # data/ADAPTER.js: what opening a cell shows
DATA_GLOBAL = "DROPSPEC_DATA"  # the object each data/ADAPTER.js adds its adapter to
# the Status filter: 'deviates' is every deviation, new or known; then the statuses one by one
STATUS_FILTERS = [("deviates", "deviates (new or known)", ("fail", "xfail"))] + [
    (s, f"{WORDS[s]} (not in the deviations file)" if s == "fail" else WORDS[s], (s,)) for s in (*ORDER, "no_data")
]


def cell_text(cell: dict[str, Any]) -> str:
    """What a matrix cell shows: how many cases have each status (statuses.cell_summary)."""
    return cell_summary(cell.get("counts", {}))


def summary_parts(counts: dict[str, int]) -> list[list[str]]:
    """``cell_summary(counts)`` cut at its separator, each part with the status it counts: [[status, words], ...].
    The page shows one part per line, coloured by its status; joined, the parts are the summary exactly."""
    text = cell_summary(counts)
    singles = {cell_summary({s: n}): s for s, n in counts.items() if n > 0}
    parts = text.split(SEPARATOR)
    return [[singles.get(p, "not_applicable" if p == WORDS["not_applicable"] else "no_data"), p] for p in parts]


def headline(counts: dict[str, int]) -> str:
    """The status a cell is coloured by: the first in ``ORDER`` that any case has (a deviation before a crash
    before a pass), so one crash never hides the deviations; n/a or no data when nothing was judged."""
    for status in ORDER:
        if counts.get(status, 0) > 0:
            return status
    return "not_applicable" if counts.get("not_applicable", 0) else ("no_data" if not counts else next(iter(counts)))


def _behaviour(case: dict[str, Any]) -> str:
    """The name of what a case does (issue 11.1), from the case's record in ``matrix.json``."""
    if case.get("error"):
        return f"crashed: {case['error'].get('type', 'error')}"
    if case.get("behaviour"):
        return str(case["behaviour"])
    if case.get("fingerprint"):
        from ..naming import behaviour_from_record

        try:
            prefer = case.get("documented_as")
            return behaviour_from_record(case["fingerprint"], case.get("cell") or "lstm", prefer=prefer).text
        except (KeyError, TypeError, ValueError):  # a fingerprint from an older results format
            pass
    return ", ".join(case.get("behaves_as") or []) or "not measured"


def status_strings(matrix: dict[str, Any]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(statuses, grid): grid[clause][adapter] has one character per case of the adapter (in ``matrix['cases']``
    order), the index of its status in ``statuses``, or ``NO_RESULT``."""
    statuses: list[str] = []

    def code(status: str) -> str:
        if status not in statuses:
            statuses.append(status)
        return "0123456789abcdefghijklmnopqrstuvwxyz"[statuses.index(status)]

    grid: dict[str, dict[str, str]] = {}
    for clause_id, row in matrix["cells"].items():
        for adapter, cases in matrix["cases"].items():
            cell = row.get(adapter) or {}
            counts = cell.get("counts") or {}
            by_case = {r["case"]: r["status"] for r in cell.get("results", [])}
            # matrix.json lists every result but n/a ones: a case with none here was not applicable, if any was
            missing = code("not_applicable") if counts.get("not_applicable") else NO_RESULT
            grid.setdefault(clause_id, {})[adapter] = "".join(
                code(by_case[c["case"]]) if c["case"] in by_case else missing for c in cases
            )
    return statuses, grid


def _key(counts: dict[str, int]) -> str:
    return ",".join(f"{s}:{n}" for s, n in sorted(counts.items()) if n)


def _summary(statuses: list[str], codes: str, kinds: list[str], kind: str) -> tuple[str, list[list[str]]]:
    """(key, parts) of one cell under the cell-kind filter ``kind`` ('' for all). A cell with results but none
    for a case of that kind reads n/a (nothing to judge), one without results 'no data'. The page's script
    counts the same way and looks the words up by the key."""
    counts = Counter(statuses[int(ch, 36)] for ch, k in zip(codes, kinds) if ch != NO_RESULT and kind in ("", k))
    if not counts and codes.strip(NO_RESULT):
        counts = Counter(not_applicable=1)
    return _key(counts), summary_parts(dict(counts))


def page_data(matrix: dict[str, Any]) -> dict[str, Any]:
    """The JSON inlined in the page: what drawing and filtering the matrix needs, and nothing more."""
    statuses, grid = status_strings(matrix)
    kinds = {
        adapter: [cell_kind(c.get("cell") or c["case"].split("-")[0]) for c in cases]
        for adapter, cases in matrix["cases"].items()
    }
    # every cell summary any filter can show, computed here by cell_summary, keyed by its counts
    summaries: dict[str, list[list[str]]] = {}
    for row in grid.values():
        for adapter, codes in row.items():
            for kind in {"", *kinds[adapter]}:
                summaries.setdefault(*_summary(statuses, codes, kinds[adapter], kind))
    return {
        "adapters": {
            name: {
                "framework": a.get("framework") or "?",
                "versions": a.get("versions") or {},
                "device": a.get("device"),
                "unavailable": a.get("unavailable"),
            }
            for name, a in matrix["adapters"].items()
        },
        "schemes": matrix["schemes"],
        "cases": {adapter: [c["case"] for c in cases] for adapter, cases in matrix["cases"].items()},
        "kinds": kinds,
        "statuses": statuses,
        "grid": grid,
        "summaries": summaries,
        "words": WORDS,
        "order": list(ORDER),
        "filters": {value: list(members) for value, _, members in STATUS_FILTERS},
        "data_dir": DATA_DIR,
        "data_global": DATA_GLOBAL,
    }


def case_extras(
    runs: list[dict[str, Any]],
    pictures: dict[str, dict[str, str]] | None = None,
    repros: dict[str, dict[str, str]] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """What opening a case shows beyond matrix.json, from the results: numbers, notes, traceback, and the paths
    (relative to the page) of its picture, state plot and repro script."""
    pictures, repros = pictures or {}, repros or {}
    extras: dict[str, dict[str, dict[str, Any]]] = {}
    for run in runs:
        name = run["adapter"]
        for case_id, record in run.get("cases", {}).items():
            obs = record.get("observation") or {}
            error = obs.get("error") or {}
            extras.setdefault(name, {})[case_id] = {
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


def adapter_data(matrix: dict[str, Any], adapter: str, extras: dict[str, dict[str, Any]] | None = None) -> dict:
    """What ``data/ADAPTER.js`` holds: every case's details and every message, passes included."""
    extras = extras or {}
    cases = {}
    for c in matrix["cases"].get(adapter, []):
        x = {k: v for k, v in (extras.get(c["case"]) or {}).items() if v not in (None, [], {})}
        error = c.get("error") or {}
        cases[c["case"]] = {
            "label": c.get("label"),
            "cell": c.get("cell"),
            "config": c.get("config"),
            "documented_as": c.get("documented_as"),
            "behaves": _behaviour(c),
            "fingerprint": c.get("fingerprint"),
            "error": {k: error[k] for k in ("type", "message") if k in error} or None,
            "command": run_command(adapter, c["case"]),
            **x,
        }
    messages: dict[str, dict[str, str]] = {}
    for clause_id, row in matrix["cells"].items():
        for r in (row.get(adapter) or {}).get("results", []):
            messages.setdefault(clause_id, {})[r["case"]] = r["message"]
    return {"cases": cases, "messages": messages}


def status_runs(statuses: list[str]) -> list[tuple[str, int]]:
    """Consecutive equal statuses as (status, how many): a case's row in the History section, one cell per run."""
    runs: list[tuple[str, int]] = []
    for status in statuses:
        if runs and runs[-1][0] == status:
            runs[-1] = (status, runs[-1][1] + 1)
        else:
            runs.append((status, 1))
    return runs


def _card_html(matrix: dict[str, Any]) -> tuple[str | None, str]:
    """(the answer card's HTML, why not): ``dropspec.publish.card`` renders it; without that module the page
    says so in the card's place."""
    try:
        from .card import render_card_html
    except ImportError as exc:
        return None, f"The answer card is not in this build of dropspec ({exc})."
    return render_card_html(matrix), ""


def render_page(
    matrix: dict[str, Any],
    spec_href: str = "spec/index.html",
    history: dict[str, Any] | None = None,
    pictures_missing: str | None = None,
) -> str:
    data = page_data(matrix)
    frameworks = sorted({a["framework"] for a in data["adapters"].values()})
    kinds = sorted({k for ks in data["kinds"].values() for k in ks})
    card, card_missing = _card_html(matrix)
    return render(
        "index.html.j2",
        matrix=matrix,
        data=data,
        spec_href=spec_href,
        frameworks=frameworks,
        kinds=kinds,
        status_filters=STATUS_FILTERS,
        words=WORDS,
        headline=headline,
        summary_parts=summary_parts,
        card=card,
        card_missing=card_missing,
        pictures_missing=pictures_missing,
        history=history,  # None without runs of older releases: the History section says how to make them
        history_text=verdict_text,
        status_runs=status_runs,
    )


def data_script(adapter: str, data: dict[str, Any]) -> str:
    """``data/ADAPTER.js``: one statement adding the adapter's details to the page's global."""
    text = json.dumps(data, default=str, separators=(",", ":"), sort_keys=True)
    return f"(window.{DATA_GLOBAL} = window.{DATA_GLOBAL} || {{}})[{json.dumps(adapter)}] = {text};\n"


def write_page(
    out_dir: Path,
    matrix: dict[str, Any],
    extras: dict[str, Any] | None = None,
    spec_href: str = "spec/index.html",
    history: dict[str, Any] | None = None,
) -> Path:
    """``index.html`` and ``data/ADAPTER.js`` for every adapter (stale ones removed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data_dir = out_dir / DATA_DIR
    data_dir.mkdir(exist_ok=True)
    for old in data_dir.glob("*.js"):
        if old.stem not in matrix["cases"]:
            old.unlink()
    for adapter in matrix["cases"]:
        data = adapter_data(matrix, adapter, (extras or {}).get(adapter))
        (data_dir / f"{adapter}.js").write_text(data_script(adapter, data))
    target = out_dir / "index.html"
    target.write_text(render_page(matrix, spec_href, history, pictures_available()))
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
        "_history.html.j2",
        history=history,
        spec_href=spec_href,
        words=STATUS_WORDS,
        history_text=verdict_text,
        status_runs=status_runs,
        headline=headline,
        summary_parts=summary_parts,
    )
    index.write_text(text[: start + len(HISTORY_START)] + "\n" + section + text[end:])
    return True

"""Publishing: the spec as a document, the matrix as a static page, mask pictures, bug reports.

``write_site`` is what ``dropspec report`` calls after writing ``matrix.json``: it writes ``index.html`` with
``data/ADAPTER.js`` (what opening a cell shows), ``masks/ADAPTER/CASE.svg`` (and ``CASE-state.svg``),
``repros/ADAPTER/CASE.py`` and the spec document under ``spec/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..spec import Spec

REPROS_DIR = "repros"  # repros/ADAPTER/CASE.py, the scheme findings.md links to as well


def write_repros(runs: list[dict[str, Any]], out_dir: Path) -> dict[str, dict[str, str]]:
    """``out_dir/repros/ADAPTER/CASE.py``, the framework-only script of every case that has one
    (``repro.case_script``: the case's first broken clause), stale ones removed; returns ADAPTER -> CASE -> path
    relative to ``out_dir``."""
    from .repro import collect_repros

    written: dict[str, dict[str, str]] = {}
    root = out_dir / REPROS_DIR
    for adapter, scripts in collect_repros(runs).items():
        for case_id, script in scripts.items():
            target = root / adapter / f"{case_id}.py"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_file() or target.read_text() != script:
                target.write_text(script)
            written.setdefault(adapter, {})[case_id] = f"{REPROS_DIR}/{adapter}/{case_id}.py"
    ran = {run["adapter"] for run in runs}
    for stale in root.glob("*/*.py") if root.is_dir() else []:
        if stale.parent.name in ran and stale.stem not in written.get(stale.parent.name, {}):
            stale.unlink()
    return written


def write_site(
    out_dir: Path,
    matrix: dict[str, Any],
    runs: list[dict[str, Any]],
    results_dir: Path,
    spec: Spec | None = None,
    history: dict[str, Any] | None = None,
) -> list[Path]:
    """The page, the mask pictures, the repros and the spec document next to ``matrix.json``; returns the main
    files."""
    from .page import case_extras, write_page
    from .pictures import write_pictures
    from .specdoc import write_spec_document

    pictures = write_pictures(runs, results_dir, out_dir)
    if any("repro" in case for cases in matrix["cases"].values() for case in cases):
        # the findings wrote repros/ADAPTER/CASE.py already and matrix.json names each case's file (or None)
        repros = {a: {c["case"]: c["repro"] for c in cases if c.get("repro")} for a, cases in matrix["cases"].items()}
    else:
        repros = write_repros(runs, out_dir)
    extras = case_extras(runs, pictures, repros)
    spec_files = write_spec_document(out_dir / "spec", spec, matrix_href="../index.html")
    return [write_page(out_dir, matrix, extras, spec_href="spec/index.html", history=history), *spec_files]

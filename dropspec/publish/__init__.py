"""Publishing: the spec as a document, the matrix as a static page, mask pictures, bug reports.

``write_site`` is what ``dropspec report`` calls after writing ``matrix.json``: it writes
``index.html``, ``masks/ADAPTER/CASE.png`` and the spec document under ``spec/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..spec import Spec


def write_site(
    out_dir: Path,
    matrix: dict[str, Any],
    runs: list[dict[str, Any]],
    results_dir: Path,
    spec: Spec | None = None,
    history: dict[str, Any] | None = None,
) -> list[Path]:
    """The page, the mask pictures and the spec document next to ``matrix.json``; returns the main files."""
    from .page import case_extras, write_page
    from .pictures import write_pictures
    from .repro import collect_repros
    from .specdoc import write_spec_document

    pictures = write_pictures(runs, results_dir, out_dir)
    extras = case_extras(runs, pictures, collect_repros(runs))
    spec_files = write_spec_document(out_dir / "spec", spec, matrix_href="../index.html")
    return [write_page(out_dir, matrix, extras, spec_href="spec/index.html", history=history), *spec_files]

"""The spec document, the mask pictures, the page's data and ``dropspec explain``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dropspec.publish.explain import ExplainError, explain
from dropspec.publish.repro import NO_REPRO
from dropspec.publish.specdoc import differences
from dropspec.spec import default_spec

from .published import ADAPTERS, REFERENCE_CASES, REPRO_MARK, build, cli


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build(tmp_path_factory.mktemp("publish"))


def test_spec_render_has_an_anchor_for_every_clause(tmp_path: Path) -> None:
    done = cli("spec", "render", "--out", "doc", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    html = (tmp_path / "doc" / "index.html").read_text()
    md = (tmp_path / "doc" / "spec.md").read_text()
    spec = default_spec()
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "anchors must be unique"
    for scheme, clause in spec.clauses():
        assert f'id="{clause.id}"' in html and f'<a id="{clause.id}"></a>' in md
        assert clause.text in md and clause.level in md
        assert f'id="scheme-{scheme.id}"' in html
    compare = (tmp_path / "doc" / "compare.html").read_text()
    for scheme in spec.schemes.values():
        if scheme.id != "common":
            assert f'href="index.html#scheme-{scheme.id}"' in compare


def test_spec_render_defaults_to_reports_spec(tmp_path: Path) -> None:
    done = cli("spec", "render", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "reports" / "spec" / "index.html").is_file()
    assert (tmp_path / "reports" / "spec" / "compare.md").is_file()


def test_the_comparison_says_how_schemes_differ() -> None:
    spec = default_spec()
    variational, semeniuta = spec.scheme("variational"), spec.scheme("semeniuta")
    said = "\n".join(differences(variational, semeniuta))
    assert "candidate" in said and "input" in said and "recurrent" in said
    assert differences(variational, variational) == []
    said = "\n".join(differences(variational, spec.scheme("variational_untied")))
    assert "gates" in said and "one per gate" in said


def test_report_writes_the_page_pictures_and_spec(published: tuple[Path, Path]) -> None:
    results, reports = published
    for name in ("matrix.json", "matrix.md", "index.html", "spec/index.html", "spec/spec.md", "spec/compare.html"):
        assert (reports / name).is_file(), name
    # the pictures (tests/test_pictures.py draws them) and the page's on-demand data (tests/test_page.py reads it)
    pictures = sorted((reports / "masks").rglob("*.svg"))
    assert {p.stem for p in (reports / "masks" / "reference").glob("*.svg")} == set(REFERENCE_CASES) - {"lstm-none"}
    assert pictures and max(p.stat().st_size for p in pictures) < 30_000  # small: they are committed
    html = (reports / "index.html").read_text()
    assert "<script src" not in html and '<link rel="stylesheet"' not in html  # opens from disk, offline
    data = (reports / "data" / "reference.js").read_text()
    assert '"picture":"masks/reference/lstm-variational.svg"' in data
    script = (reports / "repros" / "with_repro" / "rnn-variational.py").read_text()
    assert (
        script.startswith(REPRO_MARK)
        and '"repro":"repros/with_repro/rnn-variational.py"' in (reports / "data" / "with_repro.js").read_text()
    )
    matrix = json.loads((reports / "matrix.json").read_text())
    assert matrix["cells"]["common.seed.reproducible"]["missing_framework"]["verdict"] == "no_data"


def test_explain_is_a_bug_report(published: tuple[Path, Path]) -> None:
    results, _ = published
    spec = default_spec()
    _, clause = spec.clause("variational.input.time_invariant")
    done = cli("explain", "per_step", "lstm-variational", clause.id, "--results", "results", cwd=results.parent)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    data = json.loads((results / "per_step.json").read_text())
    result = next(r for r in data["results"] if r["case"] == "lstm-variational" and r["clause"] == clause.id)
    assert result["status"] == "fail"
    assert clause.text in text and clause.source in text and "MUST" in text
    assert result["message"] in text and "per_step" in text
    for name, version in data["versions"].items():
        assert f"{name}:** {version}" in text
    assert "## Repro" in text and "dropspec run --adapter per_step" in text
    assert NO_REPRO in text


def test_explain_embeds_the_adapters_repro(published: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    results, _ = published
    monkeypatch.setenv("DROPSPEC_ADAPTERS", ADAPTERS)
    text = explain("with_repro", "rnn-variational", "common.seed.reproducible", results)
    assert REPRO_MARK in text and "```python" in text
    text = explain("with_repro", "rnn-zaremba", "common.seed.reproducible", results)
    assert NO_REPRO in text and REPRO_MARK not in text


def test_explain_names_what_is_missing(published: tuple[Path, Path]) -> None:
    results, _ = published
    with pytest.raises(ExplainError, match="no results for adapter 'nope'.*reference"):
        explain("nope", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match="no case 'x'.*lstm-variational"):
        explain("reference", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match="unknown clause"):
        explain("reference", "lstm-variational", "no.such.clause", results)
    done = cli("explain", "reference", "x", "common.seed.reproducible", "--results", "results", cwd=results.parent)
    assert done.returncode == 2 and "no case 'x'" in done.stderr


def test_a_cell_counts_every_status_in_words() -> None:
    from dropspec.publish.statuses import WORDS, cell_summary

    counts = {"pass": 5, "xfail": 27, "error": 3, "not_applicable": 40}
    assert cell_summary(counts) == "27 deviate (known) · 3 crash · 5 pass"
    assert cell_summary({"pass": 1, "fail": 1, "skip": 2, "not_measured": 2}) == (
        "1 deviates · 1 passes · 2 not measured · 2 skipped"
    )
    assert cell_summary({"not_applicable": 4}) == "n/a" and cell_summary({}) == "no data"
    assert cell_summary({"not_applicable": 0, "pass": 0}) == "no data"
    assert cell_summary({"pass": 2, "surprise": 1}) == "2 pass · 1 surprise"  # an unknown status is not hidden
    assert WORDS["xfail"] == "deviates (known)" and WORDS["error"] == "crash"

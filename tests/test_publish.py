"""The spec document, the mask pictures, the page's data and ``dropspec explain``."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from dropspec.publish.explain import ExplainError, explain
from dropspec.publish.repro import NO_REPRO
from dropspec.publish.specdoc import differences
from dropspec.spec import default_spec

from .published import ADAPTERS, REFERENCE_CASES, REPRO_MARK, ROOT, build, cli


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
    _, clause = spec.clause("variational.input.resample")
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
    with pytest.raises(ExplainError, match="adapter 'nope' is not in .*known: .*keras_like.*reference"):
        explain("nope", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match=r"case 'x' is not in reference's results \(\d+ known; .*lists them"):
        explain("reference", "x", "common.seed.reproducible", results)
    with pytest.raises(ExplainError, match="clause 'variational.input.resamplet' .*closest: variational.input"):
        explain("reference", "lstm-variational", "variational.input.resamplet", results)
    done = cli("explain", "reference", "x", "common.seed.reproducible", "--results", "results", cwd=results.parent)
    assert done.returncode == 2 and "case 'x' is not in" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_explain_works_from_the_published_reports_alone(published: tuple[Path, Path], tmp_path: Path) -> None:
    """A fresh clone has reports/ and no results/: explain says the same from matrix.json and repros/."""
    results, reports = published
    clone = tmp_path / "clone"
    shutil.copytree(reports, clone / "reports")
    clause = "variational.input.resample"
    done = cli("explain", "keras_like", "lstm-variational", clause, cwd=clone)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    data = json.loads((results / "keras_like.json").read_text())
    result = next(r for r in data["results"] if r["case"] == "lstm-variational" and r["clause"] == clause)
    assert result["status"] == "xfail" and result["message"] in text and "deviates (known)" in text
    assert "reports/matrix.json (published" in text
    for name, version in data["versions"].items():
        assert f"{name}:** {version}" in text
    # the title in plain words: what the case does, what its scheme does, and the clause
    first = text.splitlines()[0]
    assert first.startswith("# ") and first.endswith(f"[{clause}]")
    assert "draws a new input mask every step where variational draws one input mask per sequence" in first
    # the published repro file, whole, and how to install dropspec as the README says
    assert "`pip install -e .`" in text and "Without tox, after `pip install -e .`" in (ROOT / "README.md").read_text()
    assert "Framework-only script: none published for this case" in text  # the mutant offers no repro
    done = cli("explain", "with_repro", "rnn-variational", "common.seed.reproducible", cwd=clone)
    repro = (reports / "repros" / "with_repro" / "rnn-variational.py").read_text()
    assert done.returncode == 0 and REPRO_MARK in repro and repro.strip() in done.stdout
    # results/ wins when present
    (clone / "results").mkdir()
    shutil.copy(results / "keras_like.json", clone / "results" / "keras_like.json")
    done = cli("explain", "keras_like", "lstm-variational", clause, cwd=clone)
    assert done.returncode == 0 and "From results/keras_like.json." in done.stdout


def test_explain_shows_a_crash_once_and_its_other_clauses_as_not_measured(published: tuple[Path, Path]) -> None:
    from .published import KerasLike

    results, reports = published
    crashed = KerasLike.CRASHES
    text = explain(
        "keras_like", crashed, "common.runs.documented_configuration", results.parent / "none", reports_dir=reports
    )
    assert "crashes with RuntimeError: the fused kernel refused this configuration" in text.splitlines()[0]
    text = explain("keras_like", crashed, "common.seed.reproducible", results.parent / "none", reports_dir=reports)
    assert "not measured, because the case crashed" in text.splitlines()[0]


def flag_pair(tmp: Path) -> Path:
    """A results file with two cases of one flag group that differ only in ``implementation``, the one drawing
    an input mask per gate: what explain shows for a flag clause."""
    site = {"site": "input", "resample": "per_sequence", "batch": "per_sample", "scale": 4 / 3, "rate": 0.25}
    site |= {"draws": 256, "binary": True, "observed": 1.0, "coincidence": 0.0, "directions": None}
    cases, results = {}, []
    for impl, gates in ((1, "per_gate"), (2, "shared")):
        case_id = f"lstm-impl{impl}"
        fingerprint = {"sites": {"input": {**site, "gates": gates}}, "carried_state_dropped": False}
        cases[case_id] = {
            "label": f"LSTM(8, dropout=0.25, implementation={impl})",
            "cell": "lstm",
            "config": {"layer": "LSTM", "args": {"dropout": 0.25, "implementation": impl}},
            "claim": {"scheme": "variational", "rates": {"input": 0.25}},
            "flag_group": "lstm-dropout",
            "observation": {"fingerprint": fingerprint},
        }
        status = "fail" if impl == 2 else "pass"
        results.append({"clause": FLAGS, "case": case_id, "status": status, "message": f"masks differ [{FLAGS}; x]"})
    run = {"adapter": "flaglib", "framework": "flaglib", "versions": {"flaglib": "3.15"}, "cases": cases}
    (tmp / "results").mkdir()
    (tmp / "results" / "flaglib.json").write_text(json.dumps(run | {"results": results}))
    return tmp / "results"


FLAGS = "common.flags.performance_only"


def test_explain_shows_both_fingerprints_of_a_flag_clause(tmp_path: Path) -> None:
    text = explain("flaglib", "lstm-impl2", FLAGS, flag_pair(tmp_path))
    assert text.splitlines()[0] == (
        "# flaglib 3.15 `LSTM(8, dropout=0.25, implementation=2)`: implementation=2 draws one input mask for all 4"
        f" gates where implementation=1 draws 4 input masks, one per gate [{FLAGS}]"
    )
    assert "| site | aspect | `lstm-impl2` | `lstm-impl1` |" in text
    assert (
        "| input | gates | shared | per_gate |" in text and "| input | resample | per_sequence | per_sequence |" in text
    )


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


def test_findings_are_for_people(published: tuple[Path, Path]) -> None:
    from .published import KerasLike

    _, reports = published
    text = (reports / "findings.md").read_text()
    assert "```python" not in text and "import " not in text  # no script inline
    assert "no scheme in the spec" not in text
    for adapter, case in (("per_step", "lstm-variational"), ("keras_like", "lstm-variational")):
        assert f"(case `{case}`)" in text and f"`dropspec explain {adapter} {case} " in text
        link = f"repros/{adapter}/{case}.py"  # linked exactly where a repro was written (mutants have none)
        assert (f"[{link}]({link})" in text) == (reports / link).is_file()
    crash = text[text.index(f"(case `{KerasLike.CRASHES}`)") :]
    assert crash.index("**crashes** with RuntimeError") < crash.index("the fused kernel refused this configuration")
    assert f"`dropspec explain keras_like {KerasLike.CRASHES} common.runs.documented_configuration`" in crash
    section = text[text.index("## keras_like") :]
    reasons = re.findall(r'<a id="keras_like-\d+"></a>(.*)', section)
    assert reasons and len(reasons) == len(set(reasons)) and "(known, [1](#keras_like-1))" in section


def test_findings_never_cut_a_measured_value() -> None:
    from dropspec.publish.findings import findings

    value = "input mask resample=per_step at " + ", ".join(f"input@{n}" for n in range(80)) + ", but should be END"
    reason = "the layer draws per step (it says so; really)"
    tag = "[variational.input.resample; L(['a']), seed=7]"
    message = f"known deviation ({reason}; https://example.org/x): {value} {tag}"
    record = {"label": "L(['a'])", "claim": {"scheme": "variational"}, "cell": "lstm", "observation": {}}
    run = {
        "adapter": "lib",
        "cases": {"c": record},
        "results": [{"clause": "variational.input.resample", "case": "c", "status": "xfail", "message": message}],
    }
    text = findings([run], {"lib": {"c": "repros/lib/c.py"}})
    assert "[repro](repros/lib/c.py)" in text
    assert len(value) > 300 and f": {value}\n" in text and "seed=7" not in text
    assert f"{reason} (https://example.org/x)" in text


def test_findings_of_the_committed_matrix_are_light() -> None:
    """reports/findings.md as the committed matrix's results make it: every deviating case id, well under 300 KB."""
    from dropspec.publish.explain import run_from_matrix
    from dropspec.publish.findings import findings

    matrix = json.loads((ROOT / "reports" / "matrix.json").read_text())
    runs = [run_from_matrix(matrix, a, ROOT / "reports") for a in matrix["adapters"]]
    text = findings(runs)
    assert len(text.encode()) < 250_000
    bad = {
        (run["adapter"], r["case"]) for run in runs for r in run["results"] if r["status"] in ("fail", "xfail", "error")
    }
    # every deviating case is listed in its adapter's section, or once for all adapters of its framework
    sections = {part.split("\n", 1)[0]: part for part in ("\n" + text).split("\n## ")[1:]}

    def listed(adapter: str, case: str) -> bool:
        return any(
            f"(case `{case}`)" in body and (head == adapter or head.endswith(f" {adapter}") or f" {adapter}," in head)
            for head, body in sections.items()
        )

    assert len(bad) > 200 and all(listed(adapter, case) for adapter, case in bad)
    assert "no scheme in the spec" not in text


def test_findings_write_once_what_every_adapter_of_a_framework_shares() -> None:
    """Keras 3 on three backends: a case that deviates the same way on each is written once, with each repro."""
    from dropspec.publish.findings import findings

    def run(adapter: str, other: str) -> dict:
        record = {"label": "L()", "claim": {"scheme": "variational"}, "cell": "lstm", "observation": {}}
        results = [
            {"clause": "variational.input.resample", "case": "same", "status": "fail", "message": "resample=per_step"},
            {"clause": "variational.input.resample", "case": "differs", "status": "fail", "message": other},
        ]
        cases = {"same": record, "differs": record}
        return {"adapter": adapter, "framework": "lib", "cases": cases, "results": results}

    repros = {a: {c: f"repros/{a}/{c}.py" for c in ("same", "differs")} for a in ("lib_a", "lib_b")}
    text = findings([run("lib_a", "resample=per_step"), run("lib_b", "resample=reused_across_calls")], repros)
    shared, lib_a, lib_b = ("\n" + text).split("\n## ")[1:4]
    assert shared.startswith("lib: the same on lib_a, lib_b") and "(case `same`)" in shared
    assert "repro: [lib_a](repros/lib_a/same.py), [lib_b](repros/lib_b/same.py)" in shared
    assert "(case `differs`)" not in shared
    for adapter, body in (("lib_a", lib_a), ("lib_b", lib_b)):
        assert body.startswith(adapter) and "(case `differs`)" in body and "(case `same`)" not in body
        assert f"[repro](repros/{adapter}/differs.py)" in body

"""``dropspec.publish.history``: runs of several releases lined up, and only real status changes flagged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from dropspec.publish.history import build_history, load_history, release_key, write_history
from dropspec.spec import default_spec

CHANGES = "variational.input.gates"
STEADY = "variational.input.resample"


def result(clause: str, case: str, status: str) -> dict[str, Any]:
    return {
        "clause": clause,
        "case": case,
        "cell": "lstm",
        "config": {},
        "status": status,
        "message": f"{status} [{clause}; {case}]",
        "fingerprint": None,
        "error": None,
        "expected": False,
    }


def write_run(root: Path, release: str, version: str, results: list[dict[str, Any]]) -> None:
    run = {
        "schema": 1,
        "adapter": "fake_keras",
        "framework": "keras",
        "versions": {"keras": version, "torch": "2.13.0"},
        "device": "cpu",
        "started": "2026-01-01T00:00:00Z",
        "unavailable": None,
        "deviations": "ignored",
        "cases": {c: {"id": c, "cell": "lstm", "label": f"LSTM {c}"} for c in {r["case"] for r in results}},
        "results": results,
    }
    (root / release).mkdir(parents=True, exist_ok=True)
    (root / release / "fake_keras.json").write_text(json.dumps(run))


def fake_history(root: Path) -> Path:
    """Three releases, written out of order: 3.10 must sort after 3.9. ``CHANGES`` turns from pass to
    fail on case ``a`` in 3.10; ``STEADY`` passes throughout; case ``b`` is missing from 3.9, which
    is no change; case ``c`` never has the clause apply."""
    releases = {
        "keras-3.10.0": {"a": ("fail", "pass"), "b": ("pass", "pass")},
        "keras-3.0.5": {"a": ("pass", "pass"), "b": ("pass", "pass")},
        "keras-3.9.2": {"a": ("pass", "pass")},
    }
    for release, cases in releases.items():
        results = []
        for case, (changing, steady) in cases.items():
            results += [result(CHANGES, case, changing), result(STEADY, case, steady)]
        results.append(result(CHANGES, "c", "not_applicable"))
        write_run(root, release, release.split("-")[1], results)
    return root


def clause(history: dict[str, Any], clause_id: str) -> dict[str, Any]:
    (series,) = history["series"]
    return next(c for c in series["clauses"] if c["clause"] == clause_id)


def test_releases_sort_by_their_numbers() -> None:
    assert sorted(["keras-3.10.0", "keras-3.9.2", "keras-3.0.5"], key=release_key) == [
        "keras-3.0.5",
        "keras-3.9.2",
        "keras-3.10.0",
    ]


def test_a_change_is_detected_and_a_steady_clause_is_not_flagged(tmp_path: Path) -> None:
    history = build_history(load_history(fake_history(tmp_path)), default_spec())
    (series,) = history["series"]
    assert [r["label"] for r in series["releases"]] == ["keras-3.0.5", "keras-3.9.2", "keras-3.10.0"]
    assert [r["version"] for r in series["releases"]] == ["3.0.5", "3.9.2", "3.10.0"]

    changed = clause(history, CHANGES)
    assert changed["changed_in"] == ["keras-3.10.0"]
    assert [v["verdict"] for v in changed["verdicts"]] == ["pass", "pass", "fail"]
    a = next(c for c in changed["cases"] if c["case"] == "a")
    assert a["statuses"] == ["pass", "pass", "fail"]
    assert a["changes"] == [{"release": "keras-3.10.0", "before": "pass", "after": "fail", "since": "keras-3.9.2"}]
    b = next(c for c in changed["cases"] if c["case"] == "b")
    assert b["statuses"] == ["pass", "no_data", "pass"] and b["changes"] == []  # a gap is not a change
    assert "c" not in [c["case"] for c in changed["cases"]]  # never applies: not followed

    steady = clause(history, STEADY)
    assert steady["changed_in"] == [] and all(c["changes"] == [] for c in steady["cases"])


def test_a_known_deviation_counts_as_a_fail(tmp_path: Path) -> None:
    # a run judged with the deviations file says xfail where a raw run says fail: that is no change
    write_run(tmp_path, "keras-3.0.5", "3.0.5", [result(CHANGES, "a", "fail")])
    write_run(tmp_path, "keras-3.1.0", "3.1.0", [result(CHANGES, "a", "xfail")])
    assert clause(build_history(load_history(tmp_path), default_spec()), CHANGES)["changed_in"] == []


def test_history_files_say_when_it_changed(tmp_path: Path) -> None:
    history = write_history(fake_history(tmp_path / "history"), tmp_path / "reports")
    assert history is not None
    assert json.loads((tmp_path / "reports" / "history.json").read_text())["series"][0]["adapter"] == "fake_keras"
    md = (tmp_path / "reports" / "history.md").read_text()
    assert "#### 3.10.0 (compared with 3.9.2)" in md and "#### 3.9.2" not in md
    # these fake cases carry no fingerprint: nothing was measured, which is what their behaviour says
    assert f"- `LSTM a`: behaves as not measured -> not measured. pass -> deviates: `{CHANGES}`" in md
    assert "no scheme in the spec" not in md
    assert f"| `{STEADY}` | 2 pass | 1 passes | 2 pass | - |" in md
    assert write_history(tmp_path / "nothing", tmp_path / "empty") is None
    assert not (tmp_path / "empty").exists()


def test_report_reads_results_history(tmp_path: Path) -> None:
    results = tmp_path / "results"
    fake_history(results / "history")
    # the newest release also as the current run: `dropspec report` needs one results file
    (results / "fake_keras.json").write_text((results / "history" / "keras-3.10.0" / "fake_keras.json").read_text())
    done = subprocess.run(
        [sys.executable, "-m", "dropspec.cli", "report", "--results", "results", "--out", "reports", "--no-site"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert "history.json" in done.stdout
    assert json.loads((tmp_path / "reports" / "history.json").read_text())["series"][0]["clauses"]
    matrix = json.loads((tmp_path / "reports" / "matrix.json").read_text())
    assert list(matrix["adapters"]) == ["fake_keras"]  # the history's runs are not in the matrix


def test_a_fresh_clone_gets_the_history_spliced_into_the_committed_page(tmp_path: Path) -> None:
    # results/ is not committed: `tox -m history` then has only results/history, and updates the page in place
    fake_history(tmp_path / "results" / "history")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "index.html").write_text(
        "<p>matrix</p>\n<!-- history:start -->\nold\n<!-- history:end -->\n<p>end</p>\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "dropspec.cli", "report", "--history", "results/history"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    page = (reports / "index.html").read_text()
    assert page.startswith("<p>matrix</p>") and page.endswith("<!-- history:end -->\n<p>end</p>\n")
    assert "\nold\n" not in page and 'data-release="keras-3.10.0"' in page and "changed in 3.10.0" in page
    assert (reports / "history.md").is_file()
    # with the matrix's results present, --only-history (the history-report env) still leaves the matrix alone
    (tmp_path / "results" / "fake_keras.json").write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", "dropspec.cli", "report", "--only-history", "--history", "results/history"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert not (reports / "matrix.json").exists() and "changed in 3.10.0" in (reports / "index.html").read_text()


def test_run_without_deviations_says_so_in_its_results(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dropspec.cli", "run", "--adapter", "reference", "--out", "out", "--exit-zero"]
        + ["--no-deviations", "-k", "common.seed.reproducible and ::rnn-zaremba]"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    run = json.loads((tmp_path / "out" / "reference.json").read_text())
    judged = [r["status"] for r in run["results"] if r["status"] != "not_applicable"]  # n/a recorded up front
    assert run["deviations"] == "ignored" and judged == ["pass"]

"""Nothing is lost: a crash or a hang in one case is recorded, and the other cases still run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropspec.cli import main
from dropspec.deviations import Deviations
from dropspec.engine import Suite, observe
from dropspec.spec import SpecError, default_spec

from .fake_adapters import CrashesOnOneCase, HangsOnOneCase

ROOT = Path(__file__).resolve().parent.parent
FAKES = (
    "missing_framework=tests.fake_adapters:MissingFramework;crashes_on_one_case=tests.fake_adapters:CrashesOnOneCase"
)


RUNS = "common.runs.documented_configuration"


def test_a_crash_is_one_error_with_traceback_and_the_other_case_still_runs() -> None:
    adapter = CrashesOnOneCase()
    results = Suite(adapter).run()
    crashed, other = adapter.cases()[0].id, adapter.cases()[1].id
    errors = [r for r in results if r.case == crashed and r.status == "error"]
    # counted once, on the runs clause, with its traceback
    assert [r.clause for r in errors] == [RUNS] and "cuDNN kernel refused" in errors[0].message
    assert "RuntimeError" in errors[0].error["traceback"]
    # every other clause that applies is not measured, and says where the crash is
    rest = [r for r in results if r.case == crashed and r.clause != RUNS and r.status != "not_applicable"]
    assert rest and all(r.status == "not_measured" and f"crashed, see {RUNS}" in r.message for r in rest)
    assert all(r.error is None for r in rest)
    assert all(r.status in ("pass", "not_applicable") for r in results if r.case == other)
    assert any(r.status == "pass" for r in results if r.case == other)


def test_a_hang_is_stopped_by_the_timeout_and_recorded() -> None:
    adapter = HangsOnOneCase()
    results = Suite(adapter, timeout=0.5).run()
    hung = [r for r in results if r.case == adapter.cases()[0].id and r.status == "error"]
    assert [r.clause for r in hung] == [RUNS] and "did not finish within 0.5 s" in hung[0].message
    assert any(r.status == "pass" for r in results if r.case == adapter.cases()[1].id)


def run_cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {"DROPSPEC_ADAPTERS": FAKES, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "dropspec.cli", *args], capture_output=True, text=True, cwd=tmp_path, env=env
    )


def test_unknown_adapter_names_the_known_ones(tmp_path: Path) -> None:
    done = run_cli("run", "--adapter", "kerass", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "unknown adapter 'kerass'" in done.stderr and "reference" in done.stderr


def test_missing_framework_is_a_skip_with_the_reason(tmp_path: Path) -> None:
    done = run_cli("run", "--adapter", "missing_framework", "--out", "out", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout and "pip install notaframework" in done.stdout + done.stderr
    data = json.loads((tmp_path / "out" / "missing_framework.json").read_text())
    assert data["unavailable"].startswith("notaframework is not installed") and data["results"] == []
    listing = run_cli("adapters", tmp_path=tmp_path)
    assert "missing_framework" in listing.stdout and "unavailable: notaframework" in listing.stdout


def test_run_writes_results_case_by_case_and_report_shows_no_data(tmp_path: Path) -> None:
    done = run_cli("run", "--adapter", "crashes_on_one_case", "--out", "out", "--exit-zero", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr
    data = json.loads((tmp_path / "out" / "crashes_on_one_case.json").read_text())
    statuses = {r["status"] for r in data["results"]}
    assert {"error", "not_measured", "pass", "not_applicable"} <= statuses
    err = next(r for r in data["results"] if r["status"] == "error")
    assert err["error"]["type"] == "RuntimeError" and "Traceback" in err["error"]["traceback"]
    assert err["config"] == data["cases"][err["case"]]["config"]
    run_cli("run", "--adapter", "missing_framework", "--out", "out", tmp_path=tmp_path)
    report = run_cli("report", "--results", "out", "--out", "rep", tmp_path=tmp_path)
    assert report.returncode == 0, report.stderr
    md = (tmp_path / "rep" / "matrix.md").read_text()
    assert "| missing_framework |" in md and "no data" in md
    matrix = json.loads((tmp_path / "rep" / "matrix.json").read_text())
    assert matrix["cells"]["common.seed.reproducible"]["missing_framework"]["verdict"] == "no_data"
    assert matrix["cells"][RUNS]["crashes_on_one_case"]["counts"] == {"error": 1, "pass": 1}
    assert matrix["cells"][RUNS]["crashes_on_one_case"]["summary"] == "1 crashes · 1 passes"
    assert matrix["cells"]["common.seed.reproducible"]["crashes_on_one_case"]["counts"] == {
        "not_measured": 1,
        "pass": 1,
    }


def test_without_failures_run_exits_zero_and_with_them_non_zero(tmp_path: Path) -> None:
    done = run_cli("run", "--adapter", "crashes_on_one_case", "--out", "out", tmp_path=tmp_path)
    assert done.returncode == 4  # a case crashed (1: a deviation; README, "Exit codes")
    done = run_cli("run", "--adapter", "reference", "--out", "out", "-k", "lstm-variational]", tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    done = run_cli("run", "--adapter", "crashes_on_one_case", "--out", "out", "--exit-zero", tmp_path=tmp_path)
    assert done.returncode == 0


def test_spec_validate_reports_a_broken_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\ntitle: x\nsummary: y\ncells: [lstm]\nclauses: []\nmasks: [{site: input}]\n")
    assert main(["spec", "validate", str(bad)]) == 1
    assert main(["spec", "validate"]) == 0


def test_deviation_turns_a_failure_into_xfail_and_a_stale_one_fails(tmp_path: Path) -> None:
    from .mutants import PerStep

    spec = default_spec()
    adapter = PerStep()
    ids = [c.id for c in adapter.cases()]
    path = tmp_path / "per_step.yaml"
    path.write_text(
        "- clause: variational.input.resample\n  case: 'lstm-*'\n"
        "  reason: draws a fresh input mask every step\n  link: variational.input.resample\n"
        "- clause: variational.input.scale\n  case: 'lstm-*'\n"
        "  reason: listed although it conforms\n  link: https://example.org/issue/1\n"
    )
    results = Suite(adapter, deviations=Deviations.load(path, spec, ids)).run()
    by = {(r.clause, r.case): r for r in results}
    lstm = next(i for i in ids if i.startswith("lstm"))
    assert by[("variational.input.resample", lstm)].status == "xfail"
    stale = by[("variational.input.scale", lstm)]
    assert stale.status == "fail" and "update the entry" in stale.message


@pytest.mark.parametrize("clause", [RUNS, "'*'", "variational.*"])
def test_a_known_crash_stays_an_error_but_is_expected(tmp_path: Path, clause: str) -> None:
    """Whatever clause glob a known-crash entry names, the crash is matched on the runs clause, and the
    clauses that are now not measured neither need the entry nor make it stale."""
    adapter = CrashesOnOneCase()
    path = tmp_path / "crash.yaml"
    path.write_text(
        f"- clause: {clause}\n  case: '{adapter.cases()[0].id}'\n"
        "  reason: the cuDNN kernel refuses it\n  link: https://example.org/issue/2\n  status: error\n"
    )
    ids = [c.id for c in adapter.cases()]
    results = Suite(adapter, deviations=Deviations.load(path, default_spec(), ids)).run()
    runs = next(r for r in results if r.clause == RUNS and r.case == ids[0])
    assert runs.status == "error" and runs.expected and "Traceback" in runs.error["traceback"]
    assert "known crash (the cuDNN kernel refuses it" in runs.message
    mine = [r for r in results if r.case == ids[0] and r.clause != RUNS]
    assert {r.status for r in mine} == {"not_measured", "not_applicable"}
    assert not any("update the entry" in r.message for r in results)


def test_an_unlisted_crash_is_an_unexpected_error(tmp_path: Path) -> None:
    adapter = CrashesOnOneCase()
    path = tmp_path / "other.yaml"
    ids = [c.id for c in adapter.cases()]
    path.write_text(
        f"- clause: '*'\n  case: '{ids[1]}'\n"
        "  reason: a crash of the other case\n  link: https://example.org/issue/3\n  status: error\n"
    )
    results = Suite(adapter, deviations=Deviations.load(path, default_spec(), ids)).run()
    runs = next(r for r in results if r.clause == RUNS and r.case == ids[0])
    assert runs.status == "error" and not runs.expected
    # the other case runs: its listed crash did not happen, so the entry is stale
    other = next(r for r in results if r.clause == RUNS and r.case == ids[1])
    assert other.status == "fail" and "update the entry" in other.message


def test_deviation_naming_an_unknown_clause_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("- clause: variational.input.nope\n  case: '*'\n  reason: a reason long enough\n  link: x.y\n")
    with pytest.raises(SpecError, match="unknown clause 'variational.input.nope'"):
        Deviations.load(path, default_spec(), ["a"])


def test_a_case_that_cannot_run_here_is_skipped_with_the_reason_never_passed() -> None:
    from .fake_adapters import NeedsCuda

    adapter = NeedsCuda()
    results = Suite(adapter).run()
    first = [r for r in results if r.case == adapter.cases()[0].id]
    assert {r.status for r in first} <= {"skip", "not_applicable"} and any(r.status == "skip" for r in first)
    assert all("needs a CUDA device" in r.message for r in first if r.status == "skip")


def test_a_claim_that_does_not_fit_its_scheme_names_the_case_and_the_fix() -> None:
    from dataclasses import replace

    from dropspec.adapters.base import Claim
    from dropspec.adapters.reference import ReferenceAdapter, reference_cases

    case = next(c for c in reference_cases() if c.claim.scheme == "zaremba" and c.cell.layers == 1)
    bad = replace(case, claim=Claim("zaremba", {"recurrent": 0.25}))
    with pytest.raises(
        ValueError, match=r"case 'rnn-zaremba': claim rate 'recurrent'=0.25 does not fit scheme 'zaremba'"
    ):
        Suite(ReferenceAdapter([bad]))
    with pytest.raises(ValueError, match="unknown scheme 'zarembaa'"):
        Suite(ReferenceAdapter([replace(case, claim=Claim("zarembaa", {}))]))


def test_a_float64_case_of_a_float32_adapter_is_judged_at_float64_tolerance() -> None:
    from dataclasses import replace

    import numpy as np

    from dropspec.adapters.base import Adapter
    from dropspec.adapters.reference import reference_cases
    from dropspec.engine import tolerance

    class Float32(Adapter):
        name, dtype = "f32", np.float32

        def cases(self):
            return []

        def run(self, *args, **kwargs):
            raise NotImplementedError

    case = next(iter(reference_cases()))
    assert tolerance(Float32(), case) == (2e-3, 2e-4)
    assert tolerance(Float32(), replace(case, dtype="float64")) == (1e-9, 1e-10)


class _SlowThenRaises(CrashesOnOneCase):
    """The framework spends 0.2 s in a run, then raises."""

    def run(self, case, params, calls, *, seed, training):
        time.sleep(0.2)
        return super().run(case, params, calls, seed=seed, training=training)


def test_a_run_that_raises_is_the_frameworks_time_not_dropspecs() -> None:
    """dropspec's own share of a case (benchmarks/matrix_cost.py) is its time outside the adapter's runs: a run
    that fails after building the model counts for the framework as one that returns."""
    adapter = _SlowThenRaises()
    crashed = adapter.cases()[0]
    obs = observe(adapter, crashed)
    assert obs.error is not None and obs.runs >= 1
    assert obs.framework_seconds >= 0.2 * obs.runs
    assert obs.seconds - obs.framework_seconds < 0.2
    # CPU time counts what was computed: a sleeping framework computed nothing
    assert obs.framework_cpu_seconds < 0.1 * obs.runs <= obs.framework_seconds


class _BusyThenRaises(CrashesOnOneCase):
    """The framework computes for 0.1 s of CPU time in a run, then raises."""

    def run(self, case, params, calls, *, seed, training):
        end = time.process_time() + 0.1
        while time.process_time() < end:
            pass
        return super().run(case, params, calls, seed=seed, training=training)


def test_the_frameworks_cpu_time_is_counted_apart_from_dropspecs() -> None:
    adapter = _BusyThenRaises()
    obs = observe(adapter, adapter.cases()[0])
    assert obs.runs >= 1 and obs.framework_cpu_seconds >= 0.1 * obs.runs
    assert obs.cpu_seconds - obs.framework_cpu_seconds < 0.1
    assert obs.as_dict()["framework_cpu_seconds"] == round(obs.framework_cpu_seconds, 4)


def test_the_worker_keeps_freed_memory_only_where_glibc_allows_and_the_user_did_not_choose(monkeypatch) -> None:
    import platform

    from dropspec import heap

    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")  # the user's own glibc setting wins
    assert heap.keep_freed_memory() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert heap.keep_freed_memory() is glibc
    monkeypatch.setattr(heap.platform, "system", lambda: "Darwin")
    assert heap.keep_freed_memory() is False


def test_numpys_huge_page_advice_is_stopped_unless_the_user_chose(monkeypatch) -> None:
    from numpy._core import multiarray

    from dropspec import heap

    before = multiarray._get_madvise_hugepage()
    try:
        monkeypatch.setenv("NUMPY_MADVISE_HUGEPAGE", "1")  # the user's own choice wins
        multiarray._set_madvise_hugepage(True)
        assert heap.no_huge_page_advice() is False and multiarray._get_madvise_hugepage()
        monkeypatch.delenv("NUMPY_MADVISE_HUGEPAGE")
        assert heap.no_huge_page_advice() is True and not multiarray._get_madvise_hugepage()
    finally:
        multiarray._set_madvise_hugepage(before)

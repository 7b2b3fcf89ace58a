"""Fault injection: each adapter of ``tests/faulty_adapters.py`` misbehaves on the middle one of three cases.
Every fault must give that case the right verdict, and the other two cases must be judged exactly as the
same cases of a faultless run; a run killed at any point must leave every finished case on disk, marked
incomplete, and the previous good file intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dropspec.publish.statuses import load_results, run_state

from .faulty_adapters import CASE_IDS, FAULTY

ROOT = Path(__file__).resolve().parent.parent
RUNS = "common.runs.documented_configuration"
ADAPTERS = {
    "faultless": "Faultless",
    "fault_raises": "Raises",
    "fault_hangs_gil": "HangsHoldingTheGil",
    "fault_segfaults": "Segfaults",
    "fault_exits": "Exits",
    "fault_system_exit": "RaisesSystemExit",
    "fault_keyboard_interrupt": "RaisesKeyboardInterrupt",
    "fault_nan": "ReturnsNaN",
    "fault_wrong_shape": "WrongShape",
    "fault_missing_trace": "MissingTrace",
    "fault_ignores_seed": "IgnoresTheSeed",
    "fault_global_rng": "GlobalRNG",
    "slow_last_case": "SlowLastCase",
}
ENV = {
    **os.environ,
    "DROPSPEC_ADAPTERS": ";".join(f"{name}=tests.faulty_adapters:{cls}" for name, cls in ADAPTERS.items()),
}
TIMEOUT = 4  # seconds: the hangs are cut here, a healthy case takes well under a second


def dropspec(*args: str, **kwargs) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "dropspec.cli", *args]
    return subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300, **kwargs)


def run(adapter: str, out: Path) -> dict:
    done = dropspec("run", "--adapter", adapter, "--out", str(out), "--timeout", str(TIMEOUT), "--exit-zero")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads((out / f"{adapter}.json").read_text())


def judged(data: dict, case_id: str) -> dict[str, tuple[str, str]]:
    """(status, message) per clause of one case, the adapter's name taken out of the messages."""
    return {
        r["clause"]: (r["status"], r["message"].replace(data["adapter"], "ADAPTER"))
        for r in data["results"]
        if r["case"] == case_id
    }


@pytest.fixture(scope="module")
def faultless(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run("faultless", tmp_path_factory.mktemp("faultless"))


# fault -> (error type on the runs clause, words its message must hold); None: the case runs and is judged
CRASHES = {
    "fault_raises": ("RuntimeError", "cuDNN kernel refused"),
    "fault_hangs_gil": ("Timeout", f"did not finish within {TIMEOUT} s"),
    "fault_segfaults": ("WorkerDied", "killed by SIGSEGV"),
    "fault_exits": ("WorkerDied", "exited with status 0"),
    "fault_system_exit": ("SystemExit", "3"),
    "fault_keyboard_interrupt": ("KeyboardInterrupt", ""),
    "fault_nan": ("ContractError", "NaN or infinite"),
    "fault_wrong_shape": ("ContractError", "should be (T, B, H)"),
    "fault_missing_trace": ("ContractError", "2 calls returned 1 traces"),
    "fault_global_rng": ("Timeout", f"did not finish within {TIMEOUT} s"),
}


@pytest.mark.parametrize("adapter", sorted(CRASHES))
def test_a_fault_is_one_error_and_the_other_cases_are_untouched(adapter: str, faultless: dict, tmp_path: Path) -> None:
    data = run(adapter, tmp_path)
    kind, words = CRASHES[adapter]
    faulty = judged(data, FAULTY)
    status, message = faulty[RUNS]
    assert status == "error", faulty[RUNS]
    error = next(r["error"] for r in data["results"] if r["case"] == FAULTY and r["clause"] == RUNS)
    assert error["type"] == kind and words in error["message"], error
    assert FAULTY in message or FAULTY in error["message"] or kind in message
    others = {status for clause, (status, _) in faulty.items() if clause != RUNS}
    assert others <= {"not_measured", "not_applicable"}, f"a crash counts once, on {RUNS}: {others}"
    for case_id in CASE_IDS:
        if case_id == FAULTY:
            continue
        mine, theirs = judged(data, case_id), judged(faultless, case_id)
        if adapter == "fault_global_rng":  # its own RNG draws other masks: the same verdicts, other rates
            mine, theirs = ({c: s for c, (s, _) in j.items()} for j in (mine, theirs))
            assert mine["common.seed.reproducible"] == "pass", "the hung case's RNG reached a later case"
        assert mine == theirs, f"{case_id} judged differently beside {adapter}"
    assert data["complete"] is True and data["in_flight"] is None


def test_a_seed_that_is_ignored_fails_the_seed_clause(faultless: dict, tmp_path: Path) -> None:
    data = run("fault_ignores_seed", tmp_path)
    status, message = judged(data, FAULTY)["common.seed.reproducible"]
    assert status == "fail" and "same seed reproduces=False" in message
    for case_id in CASE_IDS:
        if case_id != FAULTY:
            assert judged(data, case_id) == judged(faultless, case_id)


def test_the_faultless_run_passes_what_the_reference_passes(faultless: dict) -> None:
    """The baseline the others are compared with is itself healthy (so the comparisons can fail)."""
    statuses = {r["status"] for r in faultless["results"]}
    assert statuses <= {"pass", "not_applicable"} and "pass" in statuses
    assert judged(faultless, FAULTY)[RUNS][0] == "pass"


def _kill_during_last_case(out: Path) -> Path:
    """Start a run whose last case takes a minute, kill it (and its worker) while that case is in flight."""
    command = [sys.executable, "-m", "dropspec.cli", "run", "--adapter", "slow_last_case", "--out", str(out)]
    process = subprocess.Popen(
        command + ["--timeout", "100"], cwd=ROOT, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    partial = None
    while time.monotonic() < deadline:
        partial = next(iter(out.glob("slow_last_case.json.*.partial")), None)
        if partial is not None:
            try:
                if json.loads(partial.read_text()).get("in_flight") == CASE_IDS[-1]:
                    break
            except ValueError:
                pass
        time.sleep(0.2)
    else:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail("the last case never came in flight")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert partial is not None
    return partial


def test_a_killed_run_keeps_every_finished_case_and_says_it_is_incomplete(tmp_path: Path) -> None:
    partial = _kill_during_last_case(tmp_path)
    assert not (tmp_path / "slow_last_case.json").exists()
    data = json.loads(partial.read_text())
    assert data["complete"] is False and data["in_flight"] == CASE_IDS[-1]
    finished = {cid for cid, record in data["cases"].items() if record.get("observation")}
    assert finished == set(CASE_IDS[:2]), finished
    judged_once = [r for r in data["results"] if r["status"] != "not_applicable"]
    assert {r["case"] for r in judged_once} == finished
    per_case = {c: sum(r["case"] == c for r in data["results"]) for c in finished}
    assert len(set(per_case.values())) == 1, f"every clause of each finished case is on disk: {per_case}"
    [shown] = load_results(tmp_path)
    assert run_state(shown) == f"incomplete: 2 of 3 cases, stopped during case {CASE_IDS[-1]}"
    done = dropspec("report", "--results", str(tmp_path), "--out", str(tmp_path / "reports"), "--no-site")
    assert done.returncode == 0, done.stderr
    assert "incomplete: 2 of 3 cases" in (tmp_path / "reports" / "matrix.md").read_text()


def test_a_rerun_that_dies_leaves_the_previous_file_intact(tmp_path: Path) -> None:
    (tmp_path / "slow_last_case.json").write_text(json.dumps({"adapter": "slow_last_case", "results": [], "x": 1}))
    _kill_during_last_case(tmp_path)
    assert json.loads((tmp_path / "slow_last_case.json").read_text())["x"] == 1


def test_a_filtered_rerun_merges_into_the_full_file(faultless: dict, tmp_path: Path) -> None:
    full = run("faultless", tmp_path)
    selected = f"::{CASE_IDS[0]}]"
    done = dropspec("run", "--adapter", "faultless", "--out", str(tmp_path), "-k", selected, "--exit-zero")
    assert done.returncode == 0, done.stdout[-2000:]
    merged = json.loads((tmp_path / "faultless.json").read_text())
    assert {r["case"] for r in merged["results"]} == set(CASE_IDS)
    assert len(merged["results"]) == len(full["results"]) and merged["complete"] is True
    assert merged["selection"] == selected
    assert run_state(merged) == f"filtered with -k {selected!r}"
    for case_id in CASE_IDS:
        assert judged(merged, case_id) == judged(faultless, case_id)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["run", "--adapter", "nope"], "unknown adapter 'nope'"),
        (["run", "--adapter", "faultless", "--timeout", "nan"], "positive number of seconds"),
        (["run", "--adapter", "faultless", "--timeout", "-3"], "positive number of seconds"),
        (["run", "--adapter", "faultless", "-k", "no_such_clause_anywhere"], "no test matched -k"),
        (["explain", "faultless", "x", "y", "--results", "/nonexistent"], "dropspec"),
    ],
)
def test_a_configuration_error_is_one_line(args: list[str], words: str, tmp_path: Path) -> None:
    out = ["--out", str(tmp_path / "results")] if args[0] == "run" else []  # never into the repository's results/
    done = dropspec(*args, *out)
    assert done.returncode == 2, (done.returncode, done.stdout[-1000:], done.stderr[-1000:])
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) <= 3, done.stderr
    assert words in done.stderr


def test_a_name_that_would_escape_its_directory_is_refused(tmp_path: Path) -> None:
    run_file = tmp_path / "evil.json"
    run_file.write_text(json.dumps({"adapter": "../../escaped", "results": [], "cases": {}}))
    done = dropspec("report", "--results", str(tmp_path), "--out", str(tmp_path / "reports"))
    assert done.returncode == 2 and "cannot name a file" in done.stderr, done.stderr
    assert not (tmp_path.parent / "escaped").exists()


def test_a_closed_pipe_is_not_an_error() -> None:
    command = f"{sys.executable} -m dropspec.cli spec clauses | head -1"
    done = subprocess.run(command, shell=True, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_spec_validate_rejects_repeated_ids_and_non_utf8(tmp_path: Path) -> None:
    scheme = (ROOT / "spec" / "schemes" / "variational.yaml").read_text()
    twice = tmp_path / "twice.yaml"
    first = scheme.index("\n- id:")
    clause = scheme[first : scheme.index("\n- id:", first + 1)]
    twice.write_text(scheme.rstrip("\n") + clause + "\n")
    done = dropspec("spec", "validate", str(twice))
    assert done.returncode == 1 and "ids must be unique" in done.stderr and "Traceback" not in done.stderr
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(scheme.replace("title: ", "title: \xe9", 1).encode("utf-8").replace(b"\xc3\xa9", b"\xe9"))
    done = dropspec("spec", "validate", str(latin))
    assert done.returncode == 1 and "not UTF-8" in done.stderr and "Traceback" not in done.stderr

"""A small fresh run for the publishing tests: a few reference cases, a mutant that fails, an adapter
that cannot run, and one that offers a framework-only repro; then ``dropspec report`` over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dropspec.adapters.base import Case
from dropspec.adapters.reference import ReferenceAdapter, reference_cases

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ";".join(
    [
        "per_step=tests.mutants:PerStep",
        "missing_framework=tests.fake_adapters:MissingFramework",
        "with_repro=tests.published:WithRepro",
    ]
)
REFERENCE_CASES = ("lstm-variational", "gru_reset_before-variational", "rnn-zaremba", "lstm-none")
REPRO_MARK = "# framework-only repro for"


class WithRepro(ReferenceAdapter):
    """The reference on two cases, with a framework-only snippet for one of them."""

    name, framework = "with_repro", "reprolib"

    def __init__(self) -> None:
        super().__init__([c for c in reference_cases() if c.id in ("rnn-variational", "rnn-zaremba")])

    def repro(self, case: Case) -> str | None:
        if case.id != "rnn-variational":
            return None
        return f"{REPRO_MARK} {case.id}\nimport numpy as np\nprint(np.ones(3))\n"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DROPSPEC_ADAPTERS": ADAPTERS, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "dropspec.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def build(tmp: Path) -> tuple[Path, Path]:
    """Runs the adapters into ``tmp/results`` and the report into ``tmp/reports``; returns both."""
    only = " or ".join(f"::{c}]" for c in REFERENCE_CASES)
    runs = [
        ("reference", "-k", only),
        ("per_step", "-k", "::lstm-variational]"),
        ("missing_framework",),
        ("with_repro",),
    ]
    for adapter, *extra in runs:
        done = cli("run", "--adapter", adapter, "--out", "results", "--exit-zero", *extra, cwd=tmp)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    write_history(tmp / "results")
    done = cli("report", "--results", "results", "--out", "reports", cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "results", tmp / "reports"


HISTORY_CHANGE = ("variational.input.time_invariant", "lstm-variational")


def write_history(results: Path) -> None:
    """``results/history/``, as `tox -m history` leaves it: the reference run as two releases, the
    newer one with ``HISTORY_CHANGE`` turned from pass to fail, so the page has one change to show."""
    run = json.loads((results / "reference.json").read_text())
    for release, version in (("reference-1.0", "1.0"), ("reference-1.1", "1.1")):
        run["versions"] = {"dropspec-reference": version}
        if version == "1.1":
            for r in run["results"]:
                if (r["clause"], r["case"]) == HISTORY_CHANGE:
                    r["status"] = "fail"
        (results / "history" / release).mkdir(parents=True, exist_ok=True)
        (results / "history" / release / "reference.json").write_text(json.dumps(run))

"""A small fresh run for the publishing tests: a few reference cases, a mutant that fails, an adapter
that cannot run, one that offers a framework-only repro, and a Keras-like one with known deviations and a
known crash; then ``dropspec report`` over them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.reference import Params, Trace

from .mutants import PerStep

ROOT = Path(__file__).resolve().parent.parent
ADAPTERS = ";".join(
    [
        "per_step=tests.mutants:PerStep",
        "missing_framework=tests.fake_adapters:MissingFramework",
        "with_repro=tests.published:WithRepro",
        "keras_like=tests.published:KerasLike",
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


class KerasLike(PerStep):
    """Like Keras on the page: masks drawn per step where one per sequence is documented, listed as known
    deviations, and one configuration that crashes in training, listed as a known crash (its own deviations
    file, as a third-party adapter ships one: the package's deviations/ holds only real adapters')."""

    name, framework = "keras_like", "keraslike"
    deviations_file = str(Path(__file__).with_name("keras_like_deviations.yaml"))
    CRASHES = "lstm-variational-input_only"

    def run(self, case: Case, params: Params, calls: list[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if case.id == self.CRASHES and training:
            raise RuntimeError("the fused kernel refused this configuration")
        return super().run(case, params, calls, seed=seed, training=training)


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
        ("keras_like",),
    ]
    for adapter, *extra in runs:
        done = cli("run", "--adapter", adapter, "--out", "results", "--exit-zero", *extra, cwd=tmp)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    write_history(tmp / "results")
    done = cli("report", "--results", "results", "--out", "reports", cwd=tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    return tmp / "results", tmp / "reports"


HISTORY_CHANGE = ("variational.input.resample", "lstm-variational")


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

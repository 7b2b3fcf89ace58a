"""A crashed case is one failed test (its runs clause); pytest skips its other clauses as not measured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_a_crash_fails_one_test_and_skips_the_clauses_it_kept_from_being_measured(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DROPSPEC_ADAPTERS": "crashes_on_one_case=tests.fake_adapters:CrashesOnOneCase",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "dropspec.cli", "run", "--adapter", "crashes_on_one_case", "--out", "out"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    summary = done.stdout.strip().splitlines()[-2]  # pytest's last line, before dropspec's 'results in'
    assert " 1 failed" in " " + summary and "skipped" in summary, done.stdout[-2000:]
    assert "common.runs.documented_configuration::" in done.stdout and "cuDNN kernel refused" in done.stdout

"""The GPU script dry-runs anywhere: it installs what it can, lists every GPU case and says why each is
skipped here (CI has no GPU), so it is ready for whoever has one."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(shutil.which("bash") is None, reason="benchmarks/gpu.sh is a bash script")
def test_gpu_script_dry_run_lists_every_gpu_case_with_a_reason(tmp_path: Path) -> None:
    work = tmp_path / "tree"
    shutil.copytree(ROOT, work, ignore=shutil.ignore_patterns(".tox", ".git", "results", "reports", ".gpu-*"))
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(
        ["bash", "benchmarks/gpu.sh", "dry-run"], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if line and not line.startswith("gpu.sh:")]
    for adapter in ("torch", "jax_rnn", "keras_torch", "keras_jax", "keras_tf"):
        mine = [line for line in lines if line.startswith(adapter + " ") or line.startswith(adapter + ":")]
        assert mine, f"the dry run says nothing of {adapter}:\n{done.stdout}"
        assert all("skipped: " in line for line in mine), mine  # no GPU in CI: every case skipped, with why
    assert not (work / "results" / "cuda").exists(), "a dry run runs nothing"

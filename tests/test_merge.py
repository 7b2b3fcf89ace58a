"""Scaling out: envs run on separate machines into separate result folders, and `dropspec report` over all
of them gives the same matrix as one run with every file in one folder (the CI workflow's last job)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dropspec(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dropspec.cli", *args], cwd=cwd, capture_output=True, text=True)


def matrix_without_time(path: Path) -> dict:
    matrix = json.loads(path.read_text())
    matrix.pop("generated", None)
    return matrix


def test_report_over_separate_folders_equals_one_folder(tmp_path: Path) -> None:
    selection = "lstm-variational] or rnn-zaremba]"
    for machine in ("machine_a", "machine_b"):
        done = dropspec("run", "--adapter", "reference", "--out", machine, "-k", selection, "--exit-zero", cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-1500:]
    # machine b is a GPU machine: the same adapter on another device sits beside the CPU run, not over it
    b = tmp_path / "machine_b" / "reference.json"
    run = json.loads(b.read_text())
    run["device"] = "cuda"
    b.write_text(json.dumps(run))
    one = tmp_path / "together"
    shutil.copytree(tmp_path / "machine_a", one)
    shutil.copy(b, one / "reference-gpu.json")

    merged = dropspec("report", "--results", "machine_a", "--results", "machine_b", "--out", "r1", cwd=tmp_path)
    single = dropspec("report", "--results", "together", "--out", "r2", "--no-site", cwd=tmp_path)
    assert merged.returncode == 0 and single.returncode == 0, merged.stderr + single.stderr
    a, b_ = matrix_without_time(tmp_path / "r1" / "matrix.json"), matrix_without_time(tmp_path / "r2" / "matrix.json")
    assert a == b_
    assert set(a["adapters"]) == {"reference", "reference_cuda"}
    assert a["adapters"]["reference_cuda"]["device"] == "cuda", "a file from another machine keeps its own device"
    # each run's pictures come from its own folder's masks
    pictures = {p.parent.name for p in (tmp_path / "r1" / "masks").rglob("*.svg")}
    assert pictures == {"reference", "reference_cuda"}

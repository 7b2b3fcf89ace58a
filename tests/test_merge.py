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
    for machine, adapter in (("machine_a", "reference"), ("machine_b", "reference")):
        done = dropspec("run", "--adapter", adapter, "--out", machine, "-k", selection, "--exit-zero", cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-1500:]
    # two machines, two adapters: rename machine_b's run as another adapter, as another framework's job would be
    b = tmp_path / "machine_b"
    run = json.loads((b / "reference.json").read_text())
    run["adapter"], run["device"] = "reference_b", "cuda"
    (b / "reference.json").unlink()
    shutil.move(str(b / "reference"), str(b / "reference_b"))
    for record in run["cases"].values():
        record["masks_file"] = record.get("masks_file", "").replace("reference/", "reference_b/")
    (b / "reference_b.json").write_text(json.dumps(run))
    one = tmp_path / "together"
    shutil.copytree(tmp_path / "machine_a", one)
    shutil.copytree(b, one, dirs_exist_ok=True)

    merged = dropspec("report", "--results", "machine_a", "--results", "machine_b", "--out", "r1", cwd=tmp_path)
    single = dropspec("report", "--results", "together", "--out", "r2", cwd=tmp_path)
    assert merged.returncode == 0 and single.returncode == 0, merged.stderr + single.stderr
    a, b_ = matrix_without_time(tmp_path / "r1" / "matrix.json"), matrix_without_time(tmp_path / "r2" / "matrix.json")
    assert a == b_
    assert a["adapters"]["reference_b"]["device"] == "cuda", "a file from another machine keeps its own device"
    assert set(a["adapters"]) == {"reference", "reference_b"}
    pictures = sorted(p.name for p in (tmp_path / "r1" / "masks").rglob("*.svg"))
    assert pictures == sorted(p.name for p in (tmp_path / "r2" / "masks").rglob("*.svg")) and pictures

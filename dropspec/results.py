"""Results as JSON, one file per adapter, rewritten after every case so a crash keeps them."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

from .adapters.base import Adapter, Case
from .engine import Observation, Result, Suite

SCHEMA_VERSION = 1


def case_record(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "cell": case.cell.name,
        "label": case.title,
        "config": case.config,
        "claim": {"scheme": case.claim.scheme, "rates": case.claim.rates, "doc": case.claim.doc},
        "sizes": {
            "steps": case.steps,
            "batch": case.batch,
            "input": case.cell.input_size,
            "hidden": case.cell.hidden_size,
        },
        "seed": case.seed,
    }


class ResultsFile:
    """``DIR/ADAPTER.json``: the adapter, its versions and device, every case and every result."""

    def __init__(self, path: Path, suite: Suite) -> None:
        self.path, self.suite = path, suite
        adapter: Adapter = suite.adapter
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "adapter": adapter.name,
            "framework": adapter.framework,
            "versions": {} if suite.unavailable else adapter.versions(),
            "device": adapter.device(),
            "python": platform.python_version(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "unavailable": suite.unavailable,
            "cases": {},
            "results": [],
        }
        self.write()

    def add(self, result: Result, observation: Observation | None) -> None:
        case = self.suite.case(result.case)
        if self.data["results"] and self.data["results"][-1]["case"] != case.id:
            self.write()  # the previous case is complete
        if case.id not in self.data["cases"]:
            self.data["cases"][case.id] = case_record(case)
        if observation is not None:
            self.data["cases"][case.id]["observation"] = observation.as_dict()
        measured = observation is not None and observation.fingerprint is not None
        fp = observation.fingerprint.as_dict() if measured and result.status != "not_applicable" else None
        self.data["results"].append(
            {
                "clause": result.clause,
                "case": case.id,
                "cell": case.cell.name,
                "config": case.config,
                "status": result.status,
                "message": result.message,
                "fingerprint": fp,
                "error": result.error,
            }
        )

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, default=str))
        os.replace(tmp, self.path)

"""Results as JSON, one file per adapter, rewritten after every case so a crash keeps them."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from .adapter import Adapter
from .case import Case
from .engine import Observation, Suite
from .fingerprint import flat_masks
from .result import Result

SCHEMA_VERSION = 1
NO_REPRO = "no repro available for this adapter yet"


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
        "flag_group": case.flag_group,
        "rate_group": case.rate_group,
    }


def snippet_record(adapter: Adapter, case: Case) -> dict[str, str]:
    """The adapter's framework-only snippet for the case, stored so that reports built where the framework
    is not installed still show (and compose) the repro; or why there is none."""
    try:
        snippet = adapter.repro(case)
    except Exception as exc:  # a broken snippet is reported, not raised
        return {"repro_missing": f"{NO_REPRO}: the adapter's repro() raised {type(exc).__name__}: {exc}"}
    return {"repro": snippet} if snippet else {"repro_missing": f"{NO_REPRO} (adapter {adapter.name!r})"}


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
            self.data["cases"][case.id] = case_record(case) | snippet_record(self.suite.adapter, case)
        record = self.data["cases"][case.id]
        if observation is not None and observation.recovered is not None and "masks_file" not in record:
            record["masks_file"] = self.save_masks(case, observation)
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
                "expected": result.expected,
            }
        )

    def save_masks(self, case: Case, observation: Observation, samples: int = 4) -> str:
        """The recovered masks of the first ``samples`` samples of each call, for pictures and
        reports: ``DIR/ADAPTER/CASE.npz`` with arrays ``SITE`` of shape (calls, gates, T, samples,
        units); NaN where unobservable, all ones where the site is not dropped."""
        arrays = {}
        per_call = [flat_masks(case.cell, m) for m in observation.recovered.masks]
        for name in sorted({n for call in per_call for n in call}):
            stacked = []
            for call in per_call:
                a = call.get(name)
                a = np.asarray(a if a is not None else np.ones_like(next(c[name] for c in per_call if name in c)))
                a = a if a.ndim == 4 else a[None]
                stacked.append(a[:, :, :samples].astype(np.float32))
            arrays[name] = np.stack(stacked)
        relative = f"{self.path.stem}/{case.id}.npz"
        target = self.path.parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, **arrays)
        return relative

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, default=str))
        os.replace(tmp, self.path)

"""Results as JSON, one file per adapter, rewritten after every case so a crash keeps them."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .adapter import Adapter
from .case import Case
from .engine import Observation, Suite
from .fingerprint import flat_masks
from .paths import safe_name
from .result import Result
from .spec import Spec

SCHEMA_VERSION = 1
NO_REPRO = "no repro available for this adapter yet"


def case_record(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "cell": case.cell.name,
        "label": case.title,
        "config": case.config,
        "claim": {
            "scheme": case.claim.scheme,
            "rates": case.claim.rates,
            "doc": case.claim.doc,
            "basis": case.claim.basis,
            **({"asks": case.claim.asks} if case.claim.asks else {}),
            **({"scaling": case.claim.scaling} if case.claim.scaling else {}),  # declared, else the scheme's
        },
        "sizes": {
            "steps": case.steps,
            "batch": case.batch,
            "input": case.cell.input_size,
            "hidden": case.cell.hidden_size,
        },
        "seed": case.seed,
        "flag_group": case.flag_group,
        "rate_group": case.rate_group,
        "mode": case.mode,
        "mode_group": case.mode_group,
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
    """``DIR/ADAPTER.json``: the adapter, its versions and device, every case and every result.

    A run never writes over a good file until it ends: it writes its progress, after every case and
    with the case in flight marked before each observation, to ``DIR/ADAPTER.json.PID.partial`` (one
    name per process, so concurrent runs never collide), and at the end replaces ``ADAPTER.json`` with it.
    A run that is killed leaves the previous file intact and the partial file, with every finished
    case in it and ``complete: false``, which the report shows as incomplete. A run filtered with ``-k``
    merges its results into the existing file instead of replacing it."""

    def __init__(self, path: Path, suite: Suite, selection: str | None = None) -> None:
        safe_name(path.stem, "adapter name")
        self.path, self.suite, self.selection = path, suite, selection
        self.partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        adapter: Adapter = suite.adapter
        self.expected = {(clause.id, case.id) for clause, case in suite.pairs()}
        self.per_case: dict[str, int] = {}  # results still to come per case, once pytest has selected them
        self.seen: set[str] = set()  # cases this run has reported on (a merged file holds others)
        self.data: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "adapter": adapter.name,
            "framework": adapter.framework,
            "versions": {} if suite.unavailable else adapter.versions(),
            "device": adapter.device(),
            "python": platform.python_version(),
            "dropspec": dropspec_version(),
            "spec_hash": spec_hash(suite.spec),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "finished": None,
            "unavailable": suite.unavailable,
            "selection": selection,
            "complete": False,
            "expected_cases": len(suite.cases),
            "expected_results": len(self.expected),
            "in_flight": None,
            "cases": {},
            "results": [],
        }
        if selection:
            self._merge_previous()
        self.write()

    def _merge_previous(self) -> None:
        """A filtered rerun starts from the existing file's cases and results, when it is a run of the same
        adapter against the same spec; its own results then replace theirs, pair by pair."""
        try:
            previous = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return
        if previous.get("adapter") != self.data["adapter"] or previous.get("spec_hash") != self.data["spec_hash"]:
            return
        known = {case.id for case in self.suite.cases}
        self.data["cases"] = {cid: rec for cid, rec in previous.get("cases", {}).items() if cid in known}
        self.data["results"] = [r for r in previous.get("results", []) if r.get("case") in known]
        self.data["merged_from"] = previous.get("started")

    def select(self, pairs: list[tuple[str, str]]) -> None:
        """The (clause, case) pairs pytest selected: a case's record is written once all of its arrived."""
        self.per_case = {}
        for _, case_id in pairs:
            self.per_case[case_id] = self.per_case.get(case_id, 0) + 1

    def observing(self, case: Case) -> None:
        """Mark the case in flight before it is observed: a crash of the whole run names it."""
        self.data["in_flight"] = case.id
        self.write()

    def add(self, result: Result, observation: Observation | None) -> None:
        case = self.suite.case(result.case)
        if case.id not in self.seen:  # this run's record, never a merged file's older one
            self.seen.add(case.id)
            self.data["cases"][case.id] = case_record(case) | snippet_record(self.suite.adapter, case)
        record = self.data["cases"][case.id]
        if observation is not None and observation.recovered is not None and "masks_file" not in record:
            record["masks_file"] = self.save_masks(case, observation)
        if observation is not None:
            record["observation"] = observation.as_dict()
        # a result arrives once its evaluation is over, including the observation of any group partner it
        # compared with (a case a -k run did not select): whatever was in flight has landed
        if self.data["in_flight"] in self.suite._observations:
            self.data["in_flight"] = None
        measured = observation is not None and observation.fingerprint is not None
        fp = observation.fingerprint.as_dict() if measured and result.status != "not_applicable" else None
        entry = {
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
        results = self.data["results"]
        if self.data.get("merged_from"):  # a rerun's result replaces the previous one of its pair
            results[:] = [r for r in results if (r["clause"], r["case"]) != (result.clause, case.id)]
        results.append(entry)
        if case.id in self.per_case:
            self.per_case[case.id] -= 1
            if self.per_case[case.id] == 0:
                self.write()  # the case is complete

    def finish(self) -> None:
        """The run ended: record whether every pair has a result. When the run did everything it selected,
        its file replaces ``ADAPTER.json``; a run cut short (Ctrl-C, a crash of the run itself) leaves the
        previous file intact and its partial file behind, marked incomplete."""
        done = {(r["clause"], r["case"]) for r in self.data["results"]}
        ran_all = self.data["in_flight"] is None and all(n <= 0 for n in self.per_case.values())
        self.data["complete"] = ran_all and self.expected <= done
        self.data["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.write()
        if ran_all:
            os.replace(self.partial, self.path)

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
        relative = f"{safe_name(self.path.stem, 'adapter name')}/{safe_name(case.id, 'case id')}.npz"
        target = self.path.parent / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(target, **arrays)
        return relative

    def write(self) -> None:
        """Atomically rewrite the partial file (a reader never sees half a file)."""
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.partial.with_name(self.partial.name + ".tmp")
        tmp.write_text(json.dumps(self.data, default=str))
        os.replace(tmp, self.partial)


def dropspec_version() -> str:
    try:
        return version("dropspec")
    except PackageNotFoundError:
        return "source"


def spec_hash(spec: Spec) -> str:
    """A short hash of every clause (id, level, text, check): two runs with equal hashes were judged alike."""
    text = json.dumps([[c.id, c.level, c.text, c.check.model_dump()] for _, c in spec.clauses()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]

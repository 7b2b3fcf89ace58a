"""Known deviations of an adapter, as data: ``dropspec/adapters/deviations/<adapter>.yaml``.

Each entry names a clause, the cases it concerns (a glob over case ids), why, and a link.
A matching failure is reported as ``xfail``; a listed deviation that passes fails the run, so
the file never goes stale; an entry naming an unknown clause or matching no case is an error.
A known crash (``status: error``) is a property of the case, not of a clause: the engine reports a
crash once, as an error on the runs clause, and every other clause of the case as ``not_measured``,
so an error entry matches the crash by its cases whatever its clause glob ('*' by convention), and
the ``not_measured`` clauses neither need an entry nor make one stale.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .result import Result
from .spec import Spec, SpecError, read_yaml

DEVIATIONS_DIR = Path(__file__).resolve().parent / "adapters" / "deviations"


class Deviation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    clause: str = Field(description="A clause id, or a glob over clause ids ('*' for a crash).")
    case: str | list[str] = Field(description="Case ids, or globs over them, e.g. 'lstm-impl1-*'.")
    reason: str = Field(min_length=10)
    link: str = Field(min_length=3, description="An issue, a documentation page, or a clause id.")
    status: Literal["fail", "error"] = Field(
        default="fail", description="'error' for a known crash: it stays an error in the matrix, but is expected."
    )
    intermittent: bool = Field(
        default=False,
        description="The deviation shows in some runs and not in others (measured nondeterminism): a pass is then "
        "kept as a pass, not reported as a stale entry. The reason must say how often it was seen.",
    )

    @property
    def patterns(self) -> list[str]:
        return [self.case] if isinstance(self.case, str) else list(self.case)


RUNS_CLAUSE = "common.runs.documented_configuration"  # where the engine reports a crash


class Deviations:
    def __init__(self, entries: list[Deviation], source: str = "", runs_clause: str = RUNS_CLAUSE) -> None:
        self.entries, self.source, self.runs_clause = entries, source, runs_clause

    @classmethod
    def load(cls, path: Path, spec: Spec, case_ids: list[str]) -> Deviations:
        if not path.exists():
            return cls([], str(path), next((c.id for _, c in spec.clauses() if c.check.kind == "runs"), RUNS_CLAUSE))
        raw = read_yaml(path) or []  # a syntax error names the file
        if not isinstance(raw, list):
            raise SpecError(f"{path}: a deviations file must be a YAML list of entries with clause, case, reason, link")
        entries = []
        for n, item in enumerate(raw):
            try:
                entry = Deviation.model_validate(item)
            except ValidationError as exc:
                problems = "; ".join(f"field {'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                raise SpecError(f"{path}: entry {n}: {problems}") from exc
            if entry.reason.startswith("FILL IN"):
                raise SpecError(f"{path}: entry {n}: write the reason (what the framework does, as measured)")
            if not any(fnmatchcase(c.id, entry.clause) for _, c in spec.clauses()):
                raise SpecError(f"{path}: entry {n}: {spec.unknown_clause(entry.clause)}")
            for pattern in entry.patterns:
                if case_ids and not any(fnmatchcase(c, pattern) for c in case_ids):
                    raise SpecError(f"{path}: entry {n}: case pattern {pattern!r} matches no case; remove or fix it")
            entries.append(entry)
        runs = next((c.id for _, c in spec.clauses() if c.check.kind == "runs"), RUNS_CLAUSE)
        return cls(entries, str(path), runs)

    @classmethod
    def for_adapter(cls, name: str, spec: Spec, case_ids: list[str]) -> Deviations:
        return cls.load(DEVIATIONS_DIR / f"{name}.yaml", spec, case_ids)

    def match(self, clause: str, case: str, crashes: bool = True) -> Deviation | None:
        """The first entry for (clause, case); ``crashes=False`` leaves known-crash entries out."""
        return next(
            (
                d
                for d in self.entries
                if (crashes or d.status != "error")
                and fnmatchcase(clause, d.clause)
                and any(fnmatchcase(case, p) for p in d.patterns)
            ),
            None,
        )

    def match_crash(self, case: str) -> Deviation | None:
        """The known-crash entry for a case: by its cases alone (a crash stops every clause at once)."""
        return next(
            (d for d in self.entries if d.status == "error" and any(fnmatchcase(case, p) for p in d.patterns)), None
        )

    def apply(self, result: Result) -> Result:
        if result.status == "not_measured":  # the case crashed; the crash is judged on the runs clause
            return result
        if result.clause == self.runs_clause:
            # a crash, or a listed crash that no longer happens, is judged here once for the whole case
            entry = self.match_crash(result.case) or self.match(result.clause, result.case)
        else:
            # a known-crash entry says nothing about a clause of a case that ran: that clause keeps its verdict
            entry = self.match(result.clause, result.case, crashes=False)
        if entry is None:
            return result
        if result.status == entry.status == "error":  # a known crash stays an error, with its traceback
            return replace(
                result, expected=True, message=f"known crash ({entry.reason}; {entry.link}): {result.message}"
            )
        if result.status == entry.status == "fail":
            return replace(
                result, status="xfail", message=f"known deviation ({entry.reason}; {entry.link}): {result.message}"
            )
        if result.status == "pass" and entry.intermittent:  # the deviation did not show in this run
            return replace(result, message=f"{result.message} (listed as intermittent: {entry.reason})")
        if result.status in ("pass", "fail", "error"):  # passes now, or fails in another way than listed
            return replace(
                result,
                status="fail",
                message=f"listed as a known {entry.status} in {self.source} but is {result.status} now; "
                f"update the entry. {result.message}",
            )
        return result


def draft(results: dict) -> str:
    """A deviations file to start from, one entry per (clause, status) with the failing cases, from a
    results file. Every reason is a placeholder the loader refuses until a person writes it."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in results["results"]:
        if r["status"] in ("fail", "error") and not r.get("expected"):
            groups.setdefault((r["clause"], r["status"]), []).append(r["case"])
    out = []
    for (clause, status), cases in sorted(groups.items()):
        for case in sorted(set(cases)):
            out.append(
                {"clause": clause, "case": case, "reason": PLACEHOLDER, "link": clause}
                | ({"status": "error"} if status == "error" else {})
            )
    return yaml.safe_dump(out, sort_keys=False, width=110)


PLACEHOLDER = "FILL IN: what the framework does, as measured"

"""Known deviations of an adapter, as data: ``dropspec/adapters/deviations/<adapter>.yaml``.

Each entry names a clause, the cases it concerns (a glob over case ids), why, and a link.
A matching failure is reported as ``xfail``; a listed deviation that passes fails the run, so
the file never goes stale; an entry naming an unknown clause or matching no case is an error.
"""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .result import Result
from .spec import Spec, SpecError

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

    @property
    def patterns(self) -> list[str]:
        return [self.case] if isinstance(self.case, str) else list(self.case)


class Deviations:
    def __init__(self, entries: list[Deviation], source: str = "") -> None:
        self.entries, self.source = entries, source

    @classmethod
    def load(cls, path: Path, spec: Spec, case_ids: list[str]) -> Deviations:
        if not path.exists():
            return cls([], str(path))
        raw = yaml.safe_load(path.read_text()) or []
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
                raise SpecError(
                    f"{path}: entry {n}: unknown clause {entry.clause!r}; `dropspec spec clauses` lists them"
                )
            for pattern in entry.patterns:
                if case_ids and not any(fnmatchcase(c, pattern) for c in case_ids):
                    raise SpecError(f"{path}: entry {n}: case pattern {pattern!r} matches no case; remove or fix it")
            entries.append(entry)
        return cls(entries, str(path))

    @classmethod
    def for_adapter(cls, name: str, spec: Spec, case_ids: list[str]) -> Deviations:
        return cls.load(DEVIATIONS_DIR / f"{name}.yaml", spec, case_ids)

    def match(self, clause: str, case: str) -> Deviation | None:
        return next(
            (
                d
                for d in self.entries
                if fnmatchcase(clause, d.clause) and any(fnmatchcase(case, p) for p in d.patterns)
            ),
            None,
        )

    def apply(self, result: Result) -> Result:
        entry = self.match(result.clause, result.case)
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

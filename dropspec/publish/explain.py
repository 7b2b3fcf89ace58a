"""``dropspec explain ADAPTER CASE CLAUSE``: a ready bug report in Markdown for one result.

What the clause says, what was observed (message, fingerprint, numbers; for a clause that compares
cases, every fingerprint side by side), the framework and backend versions, and a repro: the dropspec
command, and a script that uses only the framework. It reads ``results/ADAPTER.json`` when a run left
one, else the published ``reports/matrix.json`` and ``reports/repros/``: a fresh clone explains any
published result without running anything.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from ..spec import Clause, Scheme, Spec, default_spec
from .findings import measured
from .repro import case_script, run_command
from .specdoc import check_text
from .statuses import behaviour_text, word

# clauses that compare a case with the others of its group, and the group (a case record's key)
GROUPS = {"flag_invariance": "flag_group", "site_independence": "rate_group"}
INSTALL = "in a clone of dropspec, `pip install -e .` (the README's 'Without tox')"
ASPECTS = ("resample", "gates", "batch", "scale", "rate")


class ExplainError(LookupError):
    """The adapter, case or clause asked for is not in the results; the message says what is."""


def _known(what: str, asked: str, names: list[str], where: str, listing: str = "reports/matrix.md") -> str:
    """One line: ``asked`` is not among ``names``; the closest ones, or all when they are few."""
    if len(names) <= 12:
        return f"{what} {asked!r} is not in {where}; known: {', '.join(names) or 'none'}"
    close = difflib.get_close_matches(asked, names, n=5, cutoff=0.3)
    hint = f"closest: {', '.join(close)}; " if close else ""
    return f"{what} {asked!r} is not in {where} ({len(names)} known; {hint}{listing} lists them all)"


def _from_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ExplainError(f"{path}: not a dropspec results file ({exc})") from exc
    data["_source"] = f"{path}"
    return data


def run_from_matrix(matrix: dict[str, Any], adapter: str, reports_dir: Path) -> dict[str, Any]:
    """A results-file-shaped view of one adapter in the published matrix.json: what explain reads."""
    info = matrix["adapters"][adapter]
    cases = {}
    for c in matrix.get("cases", {}).get(adapter, []):
        cases[c["case"]] = {
            "label": c.get("label"),
            "cell": c.get("cell"),
            "config": c.get("config"),
            "claim": c.get("claim") or {"scheme": c.get("documented_as"), "rates": {}},
            "seed": c.get("seed"),
            "sizes": c.get("sizes"),
            "flag_group": c.get("flag_group"),
            "rate_group": c.get("rate_group"),
            "repro_file": str(reports_dir / c["repro"]) if c.get("repro") else None,
            "observation": {
                k: c.get(k)
                for k in (
                    "fingerprint",
                    "behaviour",
                    "behaves_as",
                    "nearest",
                    "error",
                    "inference_error",
                    "replay_error",
                    "replay_unknown",
                    "notes",
                )
            },
        }
    results = [
        {"clause": clause_id, "case": r["case"], "status": r["status"], "message": r["message"]}
        for clause_id, row in matrix.get("cells", {}).items()
        for r in (row.get(adapter) or {}).get("results", [])
    ]
    return {
        "adapter": adapter,
        "framework": info.get("framework"),
        "versions": info.get("versions") or {},
        "device": info.get("device"),
        "started": info.get("started"),
        "unavailable": info.get("unavailable"),
        "cases": cases,
        "results": results,
        "_source": f"{reports_dir / 'matrix.json'} (published; no {adapter}.json in results/)",
        "_published": True,
    }


def load(adapter: str, results_dir: Path, reports_dir: Path | None = None) -> dict[str, Any]:
    """The adapter's run: ``results_dir/ADAPTER.json`` when present, else from ``reports_dir/matrix.json``
    (default: ``reports/`` next to ``results_dir``)."""
    path = results_dir / f"{adapter}.json"
    if path.is_file():
        return _from_results(path)
    # results/ and reports/ sit side by side in a checkout
    matrix_path = (reports_dir or results_dir.parent / "reports") / "matrix.json"
    found = sorted(p.stem for p in results_dir.glob("*.json")) if results_dir.is_dir() else []
    if matrix_path.is_file():
        try:
            matrix = json.loads(matrix_path.read_text())
        except json.JSONDecodeError as exc:
            raise ExplainError(f"{matrix_path}: not a dropspec matrix ({exc}); `dropspec report` rewrites it") from exc
        if adapter in matrix.get("adapters", {}):
            return run_from_matrix(matrix, adapter, matrix_path.parent)
        found = sorted(set(found) | set(matrix.get("adapters", {})))
    where = f"{results_dir}/ or {matrix_path}"
    raise ExplainError(_known("adapter", adapter, found, where) + f"; `dropspec run --adapter {adapter}` makes one")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return "-" if value is None else str(value)


def _gates(cell: str | None) -> int | None:
    base = (cell or "").split("_x")[0]
    return 4 if base.startswith("lstm") else 3 if base.startswith("gru") else None


def draws(site: str, aspect: str, value: Any, cell: str | None = None) -> str:
    """What a case does at a site, in words, for one aspect of its fingerprint (or of a scheme's rule)."""
    n = _gates(cell)
    if aspect == "site":  # the site is dropped in one case and not in the other
        return f"does not drop {site}" if value is None else f"drops {site}"
    if value is None and aspect != "scale":
        return f"does not drop {site}" if aspect == "site" else f"has no {aspect} for its {site} mask"
    words = {
        ("resample", "per_step"): f"draws a new {site} mask every step",
        ("resample", "per_sequence"): f"draws one {site} mask per sequence",
        ("resample", "reused_across_calls"): f"reuses its {site} mask across calls",
        ("gates", "shared"): f"draws one {site} mask for all {n or 'the'} gates",
        ("gates", "per_gate"): f"draws {n or 'separate'} {site} masks, one per gate",
        ("batch", "shared"): f"draws one {site} mask for the whole batch",
        ("batch", "per_sample"): f"draws one {site} mask per sample",
    }
    if (aspect, value) in words:
        return words[(aspect, value)]
    if aspect == "scale":
        return f"scales kept {site} units by {_fmt(value)}" if value is not None else f"does not drop {site}"
    if aspect == "rate":
        return f"drops {site} at rate {_fmt(value)}"
    return f"{site} {aspect}={value}"


def _args(config: Any) -> dict[str, Any]:
    if isinstance(config, dict):
        return {**{k: v for k, v in config.items() if k != "args"}, **(config.get("args") or {})}
    return {}


def _differing(a: Any, b: Any) -> str:
    """The configuration keys where two cases differ, as ``key=value`` of ``a``."""
    x, y = _args(a), _args(b)
    keys = [k for k in x.keys() | y.keys() if x.get(k) != y.get(k)]
    said = [f"{k}={x[k]!r}".replace("'", "") if k in x else f"{k} unset" for k in sorted(keys)]
    return ", ".join(said) or "this case"


def _site_diff(fa: dict[str, Any], fb: dict[str, Any]) -> tuple[str, str, Any, Any] | None:
    """The first (site, aspect, a's value, b's value) where two fingerprints differ."""
    sa, sb = fa.get("sites") or {}, fb.get("sites") or {}
    for site in list(sa) + [s for s in sb if s not in sa]:
        if site not in sa or site not in sb:
            return site, "site", sa.get(site), sb.get(site)
        for aspect in ASPECTS[:3]:
            if sa[site].get(aspect) != sb[site].get(aspect):
                return site, aspect, sa[site].get(aspect), sb[site].get(aspect)
        if round(sa[site].get("scale") or 0, 3) != round(sb[site].get("scale") or 0, 3):
            return site, "scale", sa[site].get("scale"), sb[site].get("scale")
    return None


def partners(data: dict[str, Any], case_id: str, clause: Clause) -> list[str]:
    group = GROUPS.get(clause.check.kind)
    cases = data.get("cases", {})
    key = (cases.get(case_id) or {}).get(group) if group else None
    if not key:
        return []
    return [c for c, rec in cases.items() if c != case_id and rec.get(group) == key]


def title(data: dict[str, Any], case_id: str, scheme: Scheme, clause: Clause, result: dict[str, Any] | None) -> str:
    """One line in plain words: who, what it does, and the clause."""
    record = data["cases"][case_id]
    versions = data.get("versions") or {}
    framework = data.get("framework") or data["adapter"]
    version = versions.get(framework) or next(iter(versions.values()), "")
    who = f"{framework} {version}".strip() + f" `{record.get('label') or case_id}`"
    obs = record.get("observation") or {}
    fp = obs.get("fingerprint") or {}
    status = result["status"] if result else None
    what = ""
    if status is None:
        what = "no result (the clause does not apply to this case, or the run did not reach it)"
    elif status == "error":
        error = obs.get("error") or result.get("error") or {}
        said = [x.strip() for x in str(error.get("message", "")).splitlines() if x.strip()]
        # a short first line is often a framework's preamble ('Exception encountered when calling ...')
        first = " ".join(said[:2]) if said and len(said[0]) < 60 else (said[0] if said else "")
        what = f"crashes with {error.get('type', 'an error')}: {first}"
    elif status == "not_measured":
        what = "not measured, because the case crashed"
    elif status == "not_applicable":
        what = f"does not apply ({measured(result['message'])[0]})"
    elif clause.check.kind in GROUPS:
        # the partner that differs from this case in the fewest settings says most plainly what changed
        def distance(other: str) -> int:
            mine, theirs = _args(record.get("config")), _args(data["cases"][other].get("config"))
            return sum(mine.get(k) != theirs.get(k) for k in mine.keys() | theirs.keys())

        for other in sorted(partners(data, case_id, clause), key=distance):
            theirs = (data["cases"][other].get("observation") or {}).get("fingerprint")
            if theirs is None:  # it crashed: it has no masks to compare
                continue
            diff = _site_diff(fp, theirs)
            if diff:
                site, aspect, mine, other_value = diff
                cell = record.get("cell")
                what = (
                    f"{_differing(record.get('config'), data['cases'][other].get('config'))} "
                    f"{draws(site, aspect, mine, cell)} where "
                    f"{_differing(data['cases'][other].get('config'), record.get('config'))} "
                    f"{draws(site, aspect, other_value, cell)}"
                )
                break
    elif clause.check.site and clause.check.kind in ("site_resample", "site_gates", "site_batch"):
        aspect = clause.check.kind.removeprefix("site_")
        site = clause.check.site
        got = {n: s for n, s in (fp.get("sites") or {}).items() if n.split("@")[0] == site}
        rule = next((m for m in scheme.masks if m.site == site), None)
        want = getattr(rule, aspect, None) if rule else None
        values = {s.get(aspect) for s in got.values()} or {None}
        if status in ("fail", "xfail") and len(values) == 1 and want is not None:
            cell = record.get("cell")
            got_text = draws(site, aspect, values.pop(), cell) if got else f"does not drop {site}"
            what = f"{got_text} where {scheme.id} {draws(site, aspect, want, cell)}"
    if not what:
        what = f"{word(status or 'no_data')}: {measured(result['message'])[0]}" if result else what
    return f"{who}: {what} [{clause.id}]"


def _fingerprint_table(columns: list[tuple[str, dict[str, Any] | None]]) -> list[str]:
    """The fingerprints of one or more cases side by side: a row per (site, aspect)."""
    sites: list[str] = []
    for _, fp in columns:
        sites += [s for s in ((fp or {}).get("sites") or {}) if s not in sites]
    head = "| site | aspect | " + " | ".join(f"`{name}`" for name, _ in columns) + " |"
    lines = [head, "|---|---|" + "---|" * len(columns)]
    for site in sites:
        for aspect in (*ASPECTS, "draws", "observed"):
            cells = []
            for _, fp in columns:
                s = ((fp or {}).get("sites") or {}).get(site)
                cells.append("crashed" if fp is None else "not dropped" if s is None else _fmt(s.get(aspect)))
            if aspect in ("draws", "observed") and len(set(cells)) == 1 and len(columns) > 1:
                continue  # sample sizes that agree say nothing in a comparison
            lines.append(f"| {site} | {aspect} | " + " | ".join(cells) + " |")
    carried = ["crashed" if fp is None else str(fp.get("carried_state_dropped")) for _, fp in columns]
    lines.append("| carried state | dropped | " + " | ".join(carried) + " |")
    return lines


def explain(
    adapter: str,
    case_id: str,
    clause_id: str,
    results_dir: Path,
    spec: Spec | None = None,
    snippet: str | None = None,
    snippet_reason: str | None = None,
    reports_dir: Path | None = None,
) -> str:
    """The Markdown bug report. ``snippet`` overrides the stored repro (None: compose it, or read the
    published repro file)."""
    spec = spec or default_spec()
    try:
        scheme, clause = spec.clause(clause_id)
    except KeyError:
        if clause_id in spec.renamed:  # an id cited before 1.0: name the new one
            raise ExplainError(spec.unknown_clause(clause_id)) from None
        ids = [c.id for _, c in spec.clauses()]
        raise ExplainError(_known("clause", clause_id, ids, "the spec", "`dropspec spec clauses`")) from None
    data = load(adapter, results_dir, reports_dir)
    record = data.get("cases", {}).get(case_id)
    if record is None:
        raise ExplainError(_known("case", case_id, list(data.get("cases", {})), f"{adapter}'s results"))
    result = next((r for r in data.get("results", []) if r["case"] == case_id and r["clause"] == clause_id), None)
    obs = record.get("observation") or {}
    label = record.get("label") or case_id
    framework = data.get("framework") or adapter

    lines = [f"# {title(data, case_id, scheme, clause, result)}", "", f"From {data['_source']}.", ""]
    lines += [
        "## What the spec says",
        "",
        f"- **Clause:** `{clause.id}` ({clause.level}, spec {spec.version})",
        f"- **Rule:** {clause.text}",
        f"- **Source:** {clause.source}",
        f"- **Scheme:** {scheme.title} (`{scheme.id}`): {scheme.summary}",
    ]
    if scheme.equations:
        lines.append(f"- **Equations:** `{' '.join(scheme.equations.split())}`")
    lines += [f"- **Checked by:** {check_text(clause.check)}", ""]

    lines += ["## What was observed", ""]
    if result is None:
        lines += [
            "No result for this (clause, case): the clause does not apply to this case (the published matrix"
            " keeps no n/a results), or the run did not reach it.",
            "",
        ]
    else:
        lines += [f"**Status:** {word(result['status'])} (`{result['status']}`)", "", "```", result["message"]]
        lines += ["```", ""]
    claim = record.get("claim") or {}
    lines += [
        f"- **Case:** `{case_id}`: `{label}` (cell `{record.get('cell')}`)",
        f"- **Configuration:** `{json.dumps(record.get('config'), default=str)}`",
        (
            "- **Inferred as (the usual reading of documentation that does not state it; a failure differs from the "
            "usual reading, not from the documentation):** "
            if claim.get("basis") == "inferred"
            else "- **Documented as:** "
        )
        + f"`{claim.get('scheme')}` with rates {json.dumps(claim.get('rates', {}))}"
        + (f" ({claim['doc']})" if claim.get("doc") else ""),
        f"- **Behaves as:** {behaviour_text(record)}",
        *([f"- **What the API asks of this loop:** {claim['asks']}"] if claim.get("asks") else []),
        f"- **Seed:** {record.get('seed')}; sizes {json.dumps(record.get('sizes'))}",
        f"- **Inference error:** {_fmt(obs.get('inference_error'))} tolerances; **replay error:** "
        f"{_fmt(obs.get('replay_error'))} tolerances ({obs.get('replay_unknown') or 0} unobservable mask elements)",
    ]
    fp = (result or {}).get("fingerprint") or obs.get("fingerprint")
    others = partners(data, case_id, clause)
    if others:
        columns = [(case_id, fp)] + [
            (o, (data["cases"][o].get("observation") or {}).get("fingerprint")) for o in others
        ]
        lines += ["", f"Fingerprints of the cases this clause compares (`{GROUPS[clause.check.kind]}`):", ""]
        lines += [f"- `{name}`: `{data['cases'][name].get('label') or name}`" for name, _ in columns]
        lines += ["", *_fingerprint_table(columns)]
    elif fp and fp.get("sites"):
        lines += ["", "Fingerprint of the recovered masks:", "", *_fingerprint_table([(case_id, fp)])]
    elif fp:
        lines += ["", f"No site is dropped. Carried state dropped: {fp.get('carried_state_dropped')}"]
    error = (result or {}).get("error") or obs.get("error")
    if error:
        lines += ["", f"The framework raised `{error.get('type')}`: {error.get('message')}"]
        if error.get("traceback"):
            lines += ["", "<details><summary>traceback</summary>", "", "```", error["traceback"].rstrip(), "```"]
            lines += ["", "</details>"]
    for note in obs.get("notes") or []:
        lines.append(f"- note: {note}")
    lines.append("")

    versions = data.get("versions") or {}
    lines += ["## Environment", "", f"- **Adapter:** `{adapter}` ({framework})"]
    lines += [f"- **{k}:** {v}" for k, v in versions.items()] or ["- versions: not recorded"]
    lines += [f"- **Device:** {data.get('device')}"]
    if data.get("python"):
        lines.append(f"- **Python:** {data['python']}")
    lines.append(f"- **Run started:** {data.get('started')}")
    if data.get("unavailable"):
        lines.append(f"- **Unavailable:** {data['unavailable']}")
    lines.append("")

    repro_note = ""
    if snippet is None and snippet_reason is None:
        if data.get("_published"):
            snippet, snippet_reason, repro_note = _published_repro(record, data, case_id, clause_id)
        else:
            snippet, snippet_reason = case_script(data, case_id, clause_id)
    # package versions only: a results file also records settings such as keras_backend=torch
    pins = " ".join(f"'{k}=={v}'" for k, v in versions.items() if not k.startswith("dropspec") and str(v)[:1].isdigit())
    lines += [
        "## Repro",
        "",
        f"Install dropspec {INSTALL}" + (f", and the framework as measured: `pip install {pins}`." if pins else "."),
        "Then rerun this clause on this case, and explain the new result:",
        "",
        "```sh",
        run_command(adapter, case_id, clause_id),
        f"dropspec explain {adapter} {case_id} {clause_id}",
        "```",
        "",
    ]
    if snippet:
        lines += [
            "With the framework only"
            + repro_note
            + " (exits 1 while the deviation is present, 0 once the rule holds):",
            "",
            "```python",
            snippet.rstrip(),
            "```",
            "",
        ]
    else:
        lines += [f"Framework-only script: {snippet_reason}.", ""]
    lines += [f"Spec: the clause `{clause.id}` in dropspec's spec/schemes/{scheme.id}.yaml.", ""]
    return "\n".join(lines)


def _published_repro(
    record: dict[str, Any], data: dict[str, Any], case_id: str, clause_id: str
) -> tuple[str | None, str, str]:
    """(script, why not, where from) for a published case: its repro file, which checks the case's first
    broken clause; said so when that is not the clause asked about."""
    path = record.get("repro_file")
    if not path or not Path(path).is_file():
        return None, "none published for this case (reports/repros/ has no file for it)", ""
    bad = [r["clause"] for r in data["results"] if r["case"] == case_id and r["status"] in ("fail", "xfail", "error")]
    note = f" (`{path}`"
    if bad and bad[0] != clause_id:
        note += f", which checks `{bad[0]}`; a run composes one for this clause"
    return Path(path).read_text(), "", note + ")"

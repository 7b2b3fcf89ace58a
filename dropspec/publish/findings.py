"""'What we found': every deviation in the results, for people. ``reports/findings.md`` lists, per adapter,
each case that deviates or crashes: its configuration and case id, what it is documented as and what it
behaves as, each clause it breaks with the full measured value, and a link to its framework-only repro,
which lives as a file (``reports/repros/ADAPTER/CASE.py``), never inline. The README gets a short
summary between markers.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .statuses import behaviour_text, judges_the_rate

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
BAD = ("fail", "xfail", "error")
REPROS = "repros"  # under the reports directory: repros/ADAPTER/CASE.py
# a name that becomes one path component (results can come from someone else's CI)
_SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+,@-]*")
# the prefix Deviations.apply puts before a listed result: "known deviation (REASON; LINK): measured"
_KNOWN = re.compile(r"^known (deviation|crash) \((?P<why>.*?); (?P<link>\S+)\): ", re.S)


_TAG = re.compile(r" \[[a-z0-9_]+(?:\.[a-z0-9_]+)+; ")


def _safe(name: str) -> bool:
    return bool(_SAFE.fullmatch(name)) and ".." not in name and len(name) <= 200


def repro_path(adapter: str, case_id: str) -> str | None:
    """Where a case's repro lives, relative to the reports directory; None for a name unfit for a path."""
    if not (_safe(adapter) and _safe(case_id)):
        return None
    return f"{REPROS}/{adapter}/{case_id}.py"


def write_repros(runs: list[dict[str, Any]], out_dir: Path) -> dict[str, dict[str, str]]:
    """``out_dir/repros/ADAPTER/CASE.py`` for every case with a framework-only script (for its first broken
    clause, else its bare repro); ADAPTER -> CASE -> the path relative to ``out_dir``. An adapter's old
    files go first, so a case that lost its script loses its file."""
    from .repro import case_script

    written: dict[str, dict[str, str]] = {}
    for run in runs:
        adapter = run["adapter"]
        folder = out_dir / REPROS / adapter
        if _safe(adapter) and folder.is_dir():
            for old in folder.glob("*.py"):
                old.unlink()
        for case_id in run.get("cases", {}):
            rel = repro_path(adapter, case_id)
            if rel is None:
                continue
            try:
                script = case_script(run, case_id)[0]
            except Exception:  # the findings are written whether or not a script can be composed here
                script = None
            if not script:
                continue
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(script if script.endswith("\n") else script + "\n")
            written.setdefault(adapter, {})[case_id] = rel
    return written


def measured(message: str) -> tuple[str, str | None]:
    """(what was measured, the known deviation's reason or None) from a result message: the reason
    prefix of a known deviation and the trailing ``[clause; case, seed]`` tag come off, nothing else."""
    why = None
    known = _KNOWN.match(message)
    if known:
        why, message = f"{known.group('why')} ({known.group('link')})", message[known.end() :]
    # the tag opens with a clause id; a label inside it may hold brackets of its own
    tags = list(_TAG.finditer(message))
    if tags and message.endswith("]"):
        message = message[: tags[-1].start()]
    return message.strip(), why


def _versions(run: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items()) or "versions unknown"


def findings(runs: list[dict[str, Any]], repros: dict[str, dict[str, str]] | None = None) -> str:
    """The body of findings.md; ``repros`` (from ``write_repros``) are linked relative to the reports dir.

    A case that deviates word for word the same on every adapter of one framework (Keras 3 on its three
    backends) is written once, in a section of its own before the adapters', with each adapter's repro."""
    repros = repros or {}
    bad = {run["adapter"]: _bad_by_case(run) for run in runs}
    shared = _shared_cases(runs, bad)
    lines: list[str] = []
    for family, (members, case_ids) in shared.items():
        lines += [
            f"## {family}: the same on {', '.join(members)}",
            "",
            f"{len(case_ids)} cases deviate or crash word for word the same on every one of them; each adapter's"
            " section below lists only what differs.",
            "",
            "; ".join(f"{run['adapter']}: {_versions(run)}" for run in runs if run["adapter"] in members) + ".",
            "",
        ]
        reasons: dict[str, int] = {}
        first = next(run for run in runs if run["adapter"] == members[0])
        for case_id in case_ids:
            links = [(m, repros.get(m, {}).get(case_id)) for m in members]
            record = first.get("cases", {}).get(case_id, {})
            lines += _case_lines(family, members[0], case_id, record, bad[members[0]][case_id], reasons, links)
        lines += _reasons_lines(family, members, reasons)
    clean = []
    for run in runs:
        adapter = run["adapter"]
        by_case = bad[adapter]
        if not by_case:
            if run.get("results") and not run.get("unavailable"):
                clean.append(adapter)
            continue
        crashed = sum(1 for rs in by_case.values() if any(r["status"] == "error" for r in rs))
        family = next((f for f, (members, _) in shared.items() if adapter in members), None)
        above = shared[family][1] if family else []
        lines += [
            f"## {adapter}",
            "",
            f"{run.get('framework') or adapter}: {_versions(run)}. {len(by_case)} of {len(run.get('cases', {}))}"
            f" cases deviate or crash ({crashed} crash)"
            + (f"; {len(above)} of them, the same on every {family} adapter, are listed above." if above else "."),
            "",
        ]
        reasons: dict[str, int] = {}  # a known deviation's reason, written once per adapter, by number
        for case_id, results in by_case.items():
            if case_id in above:
                continue
            record = run.get("cases", {}).get(case_id, {})
            link = [(adapter, repros.get(adapter, {}).get(case_id))]
            lines += _case_lines(adapter, adapter, case_id, record, results, reasons, link)
        lines += _reasons_lines(adapter, [adapter], reasons)
    if not lines:
        return "No deviations in the results: every adapter run so far conforms to every clause that applies.\n"
    if clean:
        lines += ["## Conforming", "", "No case deviates: " + ", ".join(f"`{a}`" for a in clean) + ".", ""]
    return "\n".join(lines)


def _bad_by_case(run: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_case: dict[str, list[dict[str, Any]]] = {}
    for r in run["results"]:
        if r["status"] in BAD:
            by_case.setdefault(r["case"], []).append(r)
    return by_case


def _shared_cases(
    runs: list[dict[str, Any]], bad: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, tuple[list[str], list[str]]]:
    """framework -> (its adapters, the cases that read the same on all of them), for frameworks with more than
    one adapter. Two adapters agree on a case when its text, with the adapter's name taken out, and the reasons
    of its known deviations are equal."""
    families: dict[str, list[dict[str, Any]]] = {}
    for run in runs:
        if run.get("framework") and not run.get("unavailable"):
            families.setdefault(run["framework"], []).append(run)
    shared = {}
    for family, members in families.items():
        if len(members) < 2:
            continue
        names = [run["adapter"] for run in members]
        common = [c for c in bad[names[0]] if all(c in bad[n] for n in names[1:])]

        def text(run: dict[str, Any], case_id: str) -> tuple[str, tuple[str, ...]]:
            reasons: dict[str, int] = {}
            name = run["adapter"]
            record = run.get("cases", {}).get(case_id, {})
            lines = _case_lines(name, name, case_id, record, bad[name][case_id], reasons, [])
            return "\n".join(lines).replace(name, "{adapter}"), tuple(reasons)

        same = [c for c in common if len({text(run, c) for run in members}) == 1]
        if same:
            shared[family] = (names, same)
    return shared


def _reasons_lines(anchor: str, adapters: list[str], reasons: dict[str, int]) -> list[str]:
    if not reasons:
        return []
    files = ", ".join(f"`dropspec/adapters/deviations/{a}.yaml`" for a in adapters)
    lines = [f"Known, as {files} {'say' if len(adapters) > 1 else 'says'}:", ""]
    lines += [f'{n}. <a id="{anchor}-{n}"></a>{why}' for why, n in reasons.items()]
    return lines + [""]


def _case_lines(
    anchor: str,
    adapter: str,
    case_id: str,
    record: dict[str, Any],
    results: list[dict[str, Any]],
    reasons: dict[str, int],
    repro_links: list[tuple[str, str | None]],
) -> list[str]:
    """A case's entry. ``anchor`` prefixes the links to known reasons; ``adapter`` is the one ``explain`` names;
    ``repro_links`` are (adapter, path of its repro or None), one link each."""
    label = record.get("label") or case_id
    documented = (record.get("claim") or {}).get("scheme", "?")
    error = (record.get("observation") or {}).get("error")
    if (record.get("claim") or {}).get("basis") == "inferred":  # a reading of silent documentation
        head = f"- **`{label}`** (case `{case_id}`): read as **{documented}** (inferred: the usual reading), "
    else:
        head = f"- **`{label}`** (case `{case_id}`): documented as **{documented}**, "
    out = []
    if error:  # the whole message: the first line of a framework's error is often only its preamble
        out.append(head + f"**crashes** with {error.get('type', 'an error')}:")
        text = str(error.get("message", "")).strip() or "(no message)"
        out += ["", "  ```text", *(f"  {x}".rstrip() for x in text.splitlines()), "  ```", ""]
    else:
        out.append(head + f"behaves as **{behaviour_text(record)}**.")
    asks = (record.get("claim") or {}).get("asks")
    if asks:  # a user's loop: what the API asks it to do, beside what it does
        out.append(f"  What the API asks of this loop: {asks}")
    said_crash = False
    for r in results:
        text, why = measured(r["message"])
        ref = f"[{_number(reasons, why)}](#{anchor}-{_number(reasons, why)})" if why else ""
        if r["status"] == "error":  # the crash itself is in the first line; say once whether it is listed
            if not said_crash:
                out.append(f"  Known crash ({ref})." if why else "  A new crash: the deviations file does not list it.")
            said_crash = True
            continue
        inferred = (record.get("claim") or {}).get("basis") == "inferred" and not judges_the_rate(r["clause"])
        differs = " differs from the usual reading:" if inferred else ""
        out.append(f"  - `{r['clause']}`" + (f" (known, {ref})" if why else "") + f":{differs} {text}")
    # a crash is explained on the clause it is counted on; a deviation on the first clause it breaks
    first_clause = next((r["clause"] for r in results if r["status"] == "error"), results[0]["clause"])
    links = [f"`dropspec explain {adapter} {case_id} {first_clause}`"]
    found = [(name, rel) for name, rel in repro_links if rel]
    if len(found) == 1:
        links.insert(0, f"[repro]({found[0][1]})")
    elif found:
        links.insert(0, "repro: " + ", ".join(f"[{name}]({rel})" for name, rel in found))
    out.append("  " + " · ".join(links))
    return out


def _number(reasons: dict[str, int], why: str | None) -> int:
    return reasons.setdefault(why or "", len(reasons) + 1)


def summary(runs: list[dict[str, Any]]) -> str:
    """The README's short form: per adapter, how many cases deviate and which clauses they break."""
    lines = []
    for run in runs:
        bad = [r for r in run["results"] if r["status"] in BAD]
        if not bad:
            continue
        versions = ", ".join(f"{k} {v}" for k, v in run.get("versions", {}).items())
        crashed = {c for c, rec in run["cases"].items() if (rec.get("observation") or {}).get("error")}
        counts: dict[str, set[str]] = {}
        for r in bad:
            if r["case"] not in crashed:
                counts.setdefault(r["clause"], set()).add(r["case"])
        cases = len({r["case"] for r in bad})
        head = f"- **{run['adapter']}** ({versions}): {cases} of {len(run['cases'])} cases deviate"
        head += f"; {len(crashed)} crash" if crashed else ""
        broken = ", ".join(f"`{c}` ({len(v)})" for c, v in sorted(counts.items())) or "nothing besides the crashes"
        lines.append(f"{head}. Broken: {broken}.")
    if not lines:
        return "No deviations in the results.\n"
    return (
        "\n".join(lines)
        + "\n\nEvery case, with what it was documented as, what it behaves as and the message: `reports/findings.md`.\n"
    )


def update_readme(readme: Path, text: str) -> bool:
    """Replace the README's findings block (between the markers); False when it has none."""
    if not readme.exists():
        return False
    content = readme.read_text()
    if START not in content or END not in content:
        return False
    block = f"{START}\n{text.rstrip()}\n{END}"
    readme.write_text(re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, content, flags=re.S))
    return True

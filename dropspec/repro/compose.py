"""Bug reports that prove themselves: a self-contained script per (clause, case), framework and NumPy only.

A case's repro (``Adapter.repro(case)``, stored in results files as ``cases[ID]["repro"]``) is its model
module's source with the case's ``CONFIG``: framework code that defines ``build(config, seed)``,
``load(model, w_ih, w_hh, b_ih, b_hh)`` and ``call(model, x, h0, c0, training)``. The script for one
clause is that text, then a short header of constants (the case's sizes and rates, the clause's rule, the
tag its verdict carries), then the functions of ``checks.py``, ``probes.py`` and ``dropspec.messages`` that
the clause's check reaches, copied from their source as ONNX's backend test cases copy theirs. A clause that
compares cases lists the other cases of its group by their ``CONFIG``; all run through the one
build/load/call. The script exits 1 when the rule is broken, 0 when it holds, 2 when it cannot tell.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from .. import messages
from ..literal import python_literal, string_literal
from ..spec import SITE_CHECKS, Clause, Spec, default_spec
from . import checks, probes

# Check kinds with a script (one ``check_KIND`` function each), and the sites the probes can read
SCRIPTED = {name.removeprefix("check_") for name in vars(checks) if name.startswith("check_")}
READABLE = {"input", "recurrent", "output", "candidate", "cell", "carry_h", "carry_c", "state_in"}
GROUPS = {
    "flag_invariance": "flag_group",
    "site_independence": "rate_group",
    "mode_invariance": "mode_group",  # a call mode against the same configuration called eagerly
    "reload_invariance": "mode_group",
}
BAD = ("fail", "xfail", "error")


@dataclass(frozen=True)
class ReproCase:
    """What a script needs to know about a case; built from an adapter ``Case`` or a results record."""

    id: str
    label: str
    kind: str
    input_size: int
    hidden_size: int
    steps: int
    batch: int
    seed: int
    rates: Mapping[str, float]
    scheme: str
    doc: str = ""
    layers: int = 1
    scaling: str | None = None  # the claim's declared scaling (Claim.scaling); None: the scheme's rule

    @classmethod
    def from_case(cls, case: Any) -> ReproCase:
        cell = case.cell
        return cls(
            id=case.id,
            label=case.title,
            kind=cell.kind,
            input_size=cell.input_size,
            hidden_size=cell.hidden_size,
            steps=case.steps,
            batch=case.batch,
            seed=case.seed,
            rates=dict(case.claim.rates),
            scheme=case.claim.scheme,
            doc=case.claim.doc,
            layers=cell.parts,  # a bidirectional layer counts as a stack: no script
            scaling=case.claim.scaling,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReproCase:
        """From a case record of a results file (``results.case_record``)."""
        cell = str(record.get("cell", ""))
        sizes, claim = record.get("sizes") or {}, record.get("claim") or {}
        layers = int(cell.rsplit("_x", 1)[1].split("_")[0]) if "_x" in cell else 1
        layers = max(layers, 2) if cell.endswith("_bi") else layers  # bidirectional: a stack, no script
        return cls(
            id=record["id"],
            label=record.get("label") or record["id"],
            kind=cell.split("_")[0],
            input_size=int(sizes.get("input", 0)),
            hidden_size=int(sizes.get("hidden", 0)),
            steps=int(sizes.get("steps", 0)),
            batch=int(sizes.get("batch", 0)),
            seed=int(record.get("seed", 0)),
            rates=dict(claim.get("rates") or {}),
            scheme=str(claim.get("scheme", "")),
            doc=str(claim.get("doc", "")),
            layers=layers,
            scaling=claim.get("scaling"),
        )


class NoScript(ValueError):
    """This clause cannot be checked by a short framework-only script for this case; the message says why."""


# --- the model module: a case's repro text -------------------------------------------------------------
@dataclass(frozen=True)
class ModelText:
    """A case's repro split into the parts a script uses."""

    doc: str  # the model module's docstring
    body: str  # the text after the docstring: imports, the CONFIG block, build/load/call
    config: Any  # the value of CONFIG
    module: str  # the module without its docstring and CONFIG (an AST dump): what partners must share


def model_text(snippet: str, label: str) -> ModelText:
    """Splits a model module's repro; ``NoScript`` when the text is not one (an older results file)."""
    tree = ast.parse(snippet)
    config = [
        n for n in tree.body if isinstance(n, ast.Assign) and [getattr(t, "id", "") for t in n.targets] == ["CONFIG"]
    ]
    build = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "build"]
    if not config or not build or len(build[0].args.args) != 2:
        raise NoScript(
            f"the stored repro of {label} is not a model module (CONFIG and build(config, seed)): "
            "results written by an older dropspec; run the suite again to store one"
        )
    doc = ast.get_docstring(tree) or ""
    start = tree.body[0].end_lineno if doc else 0
    body = "\n".join(snippet.splitlines()[start:]).strip("\n")
    rest = [n for n in tree.body if n is not config[0] and not (doc and n is tree.body[0])]
    return ModelText(doc, body, ast.literal_eval(config[0].value), ast.dump(ast.Module(rest, [])))


# --- the check programs: definitions copied from real modules ------------------------------------------
@dataclass(frozen=True)
class Definition:
    """One top-level function or constant of a check module, with the comment lines just above it."""

    names: tuple[str, ...]
    text: str
    uses: frozenset[str]
    function: bool


def definitions(module: ModuleType) -> list[Definition]:
    source = inspect.getsource(module)
    lines = source.splitlines()
    out = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef):
            names: tuple[str, ...] = (node.name,)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If):  # the script's `if __name__ == "__main__":`
            names = ("__main__",)
        else:
            continue
        start = node.lineno - 1
        while start and lines[start - 1].startswith("#") and not lines[start - 1].startswith("# ---"):
            start -= 1  # a comment that explains the definition goes with it; a section rule does not
        uses = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        text = "\n".join(lines[start : node.end_lineno])
        out.append(Definition(names, text, frozenset(uses), isinstance(node, ast.FunctionDef | ast.If)))
    return out


MODEL_NAMES = {"build", "load", "call", "CONFIG"}  # what the model module defines


def selected(roots: Iterable[str], given: set[str]) -> list[Definition]:
    """The definitions ``roots`` reach, in source order (messages, probes, checks); names in ``given`` are
    defined by the script's header or model module, so their placeholders are left out."""
    table = [d for m in (messages, probes, checks) for d in definitions(m) if not set(d.names) & given]
    by_name = {name: d for d in table for name in d.names}
    missing = sorted(set(roots) - set(by_name))
    if missing:  # a name looked up at run time (a site's reader, the check) must be in the script
        raise LookupError(f"dropspec/repro defines no {', '.join(missing)}: add it to checks.py or probes.py")
    wanted, todo = set(), list(roots)
    while todo:
        d = by_name[todo.pop()]
        if d.names[0] not in wanted:
            wanted.add(d.names[0])
            todo += [u for u in d.uses if u in by_name]
    return [d for d in table if d.names[0] in wanted]


def sites_read(kind: str, site: str | None, case: ReproCase, rates: Sequence[Mapping[str, float]]) -> set[str]:
    """The sites whose mask readers a check calls through ``probes.mask`` (which looks them up by name)."""
    if kind in SITE_CHECKS:
        sites = {site or ""}
    elif kind == "only_scheme_sites":
        sites = set(READABLE)
    elif kind == "carried_state":
        sites = {"carry_h", "carry_c"} if case.kind == "lstm" else {"carry_h"}
    elif kind == "replay_explained":
        sites = {"carry_h"}
    elif kind in GROUPS:
        sites = {s for r in rates for s in probes.DESCRIBED if r.get(s, 0) > 0}
    elif kind == "rate_one":
        sites = {s for s, p in case.rates.items() if p >= 1.0 and s in READABLE}
    else:
        return set()
    if any(r.get("output", 0) > 0 for r in rates):
        sites.add("output")  # probes.seen takes the output mask out of what the other readers see
    return sites


def _assign(name: str, text: str) -> str:
    """A header constant holding a string, within ruff's line length where ruff lets it be."""
    line = f"{name} = {string_literal(text)}"
    if len(line) <= 120:
        return line
    if len(string_literal(text)) + 4 <= 120:  # ruff would join parts that fit in parentheses: one line in them
        return f"{name} = (\n    {string_literal(text)}  # noqa: E501\n)"
    return f"{name} = (\n    " + string_literal(text, 4) + "\n)"


def _docstring(text: str) -> str:
    return '"""' + text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"') + '\n"""'


def _fill(text: str, first: str = "") -> str:
    return textwrap.fill(text, 110, initial_indent=first, subsequent_indent="    ", break_long_words=False)


def repro_script(
    snippet: str,
    case: ReproCase | Any,
    clause: Clause | str,
    spec: Spec | None = None,
    versions: Mapping[str, str] | None = None,
    partners: Sequence[tuple[ReproCase | Any, str]] = (),
    adapter: str = "",
) -> str:
    """The self-contained script for ``clause`` on ``case``, whose repro (a model module with its CONFIG) is
    ``snippet``; ``partners`` are (case, repro) of the other cases of its flag group (``flag_invariance``)
    or rate group (``site_independence``), run through the same model module with their own CONFIG.
    ``adapter`` names the adapter in the verdict's tag, as the suite writes it.
    Raises ``NoScript`` when the clause cannot be checked by a short script for this case."""
    spec = spec or default_spec()
    case = case if isinstance(case, ReproCase) else ReproCase.from_case(case)
    scheme, clause = spec.clause(clause if isinstance(clause, str) else clause.id)
    kind, site = clause.check.kind, clause.check.site
    if kind not in SCRIPTED:
        raise NoScript(f"no short script checks {kind!r} clauses")
    if case.layers > 1:
        raise NoScript("the short scripts probe one layer; a stack needs dropspec's recovery")
    if kind in SITE_CHECKS and site not in READABLE:
        raise NoScript(f"no short probe reads the {site} site")
    if kind in SITE_CHECKS and kind != "site_inactive" and case.rates.get(site, 0.0) <= 0:
        raise NoScript(f"the case does not drop {site}; the clause does not apply")
    if kind in GROUPS and not partners:
        raise NoScript("no other case of its group to compare with")
    if kind in ("new_call_new_masks", *GROUPS) and not any(case.rates.values()):
        raise NoScript("the case drops no site")
    if kind == "site_gates" and case.kind == "rnn":
        raise NoScript("a SimpleRNN has one gate")
    model = model_text(snippet, case.label)
    others = []
    for other, text in partners:
        other = other if isinstance(other, ReproCase) else ReproCase.from_case(other)
        theirs = model_text(text, other.label)
        if theirs.module != model.module:
            raise NoScript(f"{other.label} runs another model module than {case.label}: no one script runs both")
        others.append((other.label, dict(other.rates), theirs.config))

    rule = scheme.rule(site) if site else None
    if rule is not None and case.scaling is not None:  # the scaling the claim declares, as the suite judges it
        rule = rule.model_copy(update={"scaling": case.scaling})
    label = f"{adapter} {case.label}" if adapter else case.label
    header = {  # the constants a script defines: name(s) -> the line(s)
        ("KIND",): f"KIND = {python_literal(case.kind)}",
        ("T", "B", "D", "H"): f"T, B, D, H = {case.steps}, {case.batch}, {case.input_size}, {case.hidden_size}"
        "  # steps, batch, input width, hidden units",
        ("SEED",): f"SEED = {case.seed}",
        ("RATES",): f"RATES = {python_literal(dict(case.rates))}  # documented drop rate per site",
        ("SITE",): f"SITE = {python_literal(site)}",
        ("RULE",): f"RULE = {python_literal(None if rule is None else rule.model_dump(exclude={'site'}))}",
        ("Z",): f"Z = {clause.check.z or 5.0}  # standard errors",
        ("WANT_DROPPED",): f"WANT_DROPPED = {scheme.carried_state == 'dropped'}  # the carried state, by the scheme",
        ("LABEL",): _assign("LABEL", case.label),
        ("PARTNERS",): f"PARTNERS = {python_literal(others)}  # (label, rates, CONFIG) of the group's other cases",
        ("CHECK",): f"CHECK = {python_literal(kind)}",
        ("TAG",): _assign("TAG", messages.case_tag(clause.id, label, case.seed)),
    }
    given = {name for names in header for name in names} | MODEL_NAMES
    rates = [case.rates, *(r for _, r, _ in others)]
    readers = {f"{probes.SAME_READER.get(s, s)}_mask" for s in sites_read(kind, site, case, rates)}
    chosen = selected({"__main__", f"check_{kind}", *readers}, given)
    used = {u for d in chosen for u in d.uses}
    constants = [line for names, line in header.items() if set(names) & used]

    versions_text = ", ".join(f"{k} {v}" for k, v in (versions or {}).items()) or "not recorded"
    doc = [
        _fill(f"dropspec repro: `{clause.id}` ({clause.level}) on {label}"),
        "",
        _fill(clause.text, "Rule: "),
        _fill(clause.source, "Source: "),
        _fill(f"Documented as: {case.scheme} with rates {json.dumps(dict(case.rates))}; {case.doc or '-'}"),
        _fill(versions_text, "Versions: "),
        "",
        "Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);",
        "0: the rule holds; 2: this short script cannot tell. It prints what it saw.",
    ]
    if model.doc:  # its first paragraph; the rest explains the module to dropspec's readers
        doc += ["", "The model:", model.doc.split("\n\n")[0]]  # its lines as they are: within ruff's width
    code = model.body + "\n\n\n# --- the check: numpy only ---\n" + "\n".join(constants)
    after_function = False
    for d in chosen:  # ruff's layout: two blank lines around a function, none between constants
        code += ("\n\n\n" if d.function or after_function else "\n") + d.text
        after_function = d.function
    return _docstring("\n".join(doc)) + "\n\n" + code + "\n"


# --- from results files ---------------------------------------------------------------------------------
def partners_of(case_id: str, group: str, cases: Mapping[str, Any]) -> list[str]:
    """The other case ids of ``case_id``'s flag or rate group (``group`` is 'flag_group' or 'rate_group'),
    from case records (results) or ``Case`` objects."""

    def get(c: Any, key: str) -> Any:
        return c.get(key) if isinstance(c, Mapping) else getattr(c, key, None)

    key = get(cases[case_id], group)
    if not key:
        return []
    others = [other for other, c in cases.items() if other != case_id and get(c, group) == key]
    if group == "mode_group":  # a mode is held to the eager call, not to the other modes
        others = [other for other in others if get(cases[other], "mode") in (None, "eager")]
    return others


def group_of(clause: Clause) -> str | None:
    return GROUPS.get(clause.check.kind)


def script_from_results(
    data: Mapping[str, Any], case_id: str, clause_id: str, spec: Spec | None = None
) -> tuple[str | None, str]:
    """(script, why not) for one (case, clause) of a results file, from the repros stored at run time."""
    spec = spec or default_spec()
    cases = data.get("cases") or {}
    record = cases.get(case_id)
    if record is None:
        return None, f"no case {case_id!r} in the results"
    snippet = record.get("repro")
    if not snippet:
        return None, record.get("repro_missing") or "the adapter stored no framework-only repro for this case"
    try:
        _, clause = spec.clause(clause_id)
        group = group_of(clause)
        partners = [
            (ReproCase.from_record(cases[other]), cases[other]["repro"])
            for other in (partners_of(case_id, group, cases) if group else [])
            if cases[other].get("repro")
        ]
        script = repro_script(
            snippet,
            ReproCase.from_record(record),
            clause,
            spec,
            data.get("versions") or {},
            partners,
            str(data.get("adapter", "")),
        )
    except (NoScript, KeyError) as exc:
        return None, str(exc.args[0]) if exc.args else type(exc).__name__
    return script, ""


def first_bad_clause(data: Mapping[str, Any], case_id: str) -> str | None:
    """The first clause the case breaks (fail, xfail or error) in a results file."""
    bad = [r["clause"] for r in data.get("results", []) if r["case"] == case_id and r["status"] in BAD]
    return bad[0] if bad else None

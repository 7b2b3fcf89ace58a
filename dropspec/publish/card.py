"""The answer card: one row per configuration a user writes, what its documentation says, what was measured, the name
of that behaviour and the verdict, grouped by framework family. It opens the README and the page.

Reads only the matrix dict (``reports/matrix.json``: ``adapters``, ``cases``, ``cells``); it never loads an adapter
or a framework, so it runs wherever the published reports do.

Rows stay few enough to open a README: cases that differ only in cell kind (SimpleRNN/LSTM/GRU) share a row when
they behave alike (the LSTM's configuration is shown, the other kinds named), and a case whose configuration only
adds arguments to another's (``use_cudnn=False``, ``batch_first=True``, a packed sequence) joins that row when it
behaves alike. The three Keras 3 backends share a row where their measurements agree and split where not. The
reference adapter, the oracle every other verdict is measured against, is left out with a sentence.
"""

from __future__ import annotations

import difflib
import html
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..naming import behaviour_from_record
from .statuses import WORDS, judges_the_rate

CARD_START = "<!-- card:start -->"
CARD_END = "<!-- card:end -->"

# family order and the adapters each holds; an adapter not named here (a user's own) gets a family of its own,
# after these, titled by its framework
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Keras 3", ("keras_tf", "keras_jax", "keras_torch")),
    ("tf-keras (Keras 2)", ("tf_keras",)),
    ("TF DropoutWrapper", ("dropout_wrapper",)),
    ("PyTorch", ("torch",)),
    ("PyTorch-NLP and fastai", ("torchnlp", "fastai")),
    ("Flax", ("flax_linen", "flax_nnx")),
    ("JAX", ("jax_rnn",)),
)
ORACLE = "reference"
# the Keras 3 backends by adapter, for a split row ("on jax, torch")
BACKENDS = {"keras_tf": "tensorflow", "keras_jax": "jax", "keras_torch": "torch"}

# the token of a case id that names the cell kind (``lstm-layer-dropout-impl1``, ``grucell-zaremba-loop``,
# ``keras2-gru_reset_after-state``): removing it leaves what the user configured around the cell
_KIND_TOKEN = re.compile(r"^(rnn|lstm|optlstm|gru|gru_reset_after|gru_reset_before)(cell)?$")
_KIND_WORDS = {
    "rnn": "RNN",
    "lstm": "LSTM",
    "optlstm": "OptimizedLSTM",
    "gru": "GRU",
    "gru_reset_after": "GRU (reset_after=True)",
    "gru_reset_before": "GRU (reset_after=False)",
}
# kinds shown first when several share a row: LSTM is what most users ask about
_KIND_ORDER = ("lstm", "optlstm", "gru", "gru_reset_after", "gru_reset_before", "rnn")
# arguments the suite's harness adds to every Keras layer so the state can be read; no user sets them for dropout
_HARNESS_ARGS = re.compile(r", return_sequences=True|, return_state=True")
_URL = re.compile(r"https?://[^\s'\"<>|]+")

_RESAMPLE_WORDS = {"per_step": "per step", "per_sequence": "per sequence", "reused_across_calls": "reused across calls"}
_GATE_WORDS = {"shared": "shared by gates", "per_gate": "per gate"}
_BATCH_WORDS = {"shared": "shared by the batch", "per_sample": "per sample"}
_DIRECTION_WORDS = {"shared": "both directions share it", "per_direction": "one per direction"}

# a case's verdict: the key (a CSS class on the page) and its words, the page's and matrix's words for a status
# (statuses.WORDS), but for a whole case: every rule that applies passes, or the case crashed
VERDICTS = {
    "crash": "crashes",
    "fail": WORDS["fail"],
    "xfail": WORDS["xfail"],
    "pass": "as documented",
    "skip": WORDS["skip"],
}


INFERRED_WORDS = {"fail": "differs from the usual reading", "xfail": "differs from the usual reading (known)"}


# the rules every scheme shares (spec/schemes/common.yaml), in a few words: the behaviour's name already says how a
# case breaks its documented scheme's own rules, but not these; a crash is the verdict itself
COMMON_BROKEN = {
    "common.mapping.inference_matches_reference": "inference differs from the cell without dropout",
    "common.seed.reproducible": "a seed does not reproduce its masks",
    "common.calls.resample": "masks reused by the next call",
    "common.replay.explained": "masks do not explain the outputs",
    "common.flags.performance_only": "a performance flag changes the masks",
    "common.sites.independent": "a site's masks change with another site's rate",
    "common.modes.masks": "this way of calling it changes the masks",
    "common.modes.reload": "a reloaded model draws other masks",
    "common.flags.training": "a call's training flag is not honoured after another call",
    "common.rates.zero": "drops units at rate 0",
    "common.rates.one": "at rate 1.0 neither drops every unit nor refuses the rate",
}


@dataclass(frozen=True)
class CardRow:
    """One configuration as a user writes it, and what it does."""

    configuration: str  # the representative case's label, without harness-only arguments
    kinds: tuple[str, ...]  # other cell kinds it holds for, in words ("GRU (reset_after=True)", "SimpleRNN")
    variants: tuple[str, ...]  # other configurations it holds for: what they change ("use_cudnn=False") or whole
    where: str | None  # for a Keras 3 row that holds only some backends: "on jax, torch"; None where all agree
    documented: str  # the scheme the documentation claims
    doc_url: str | None  # the first link in the claim's documentation, where it has one
    doc: str  # the claim's documentation as the adapter quotes it ("" where the matrix has none)
    measured: tuple[str, ...]  # one entry per site, or per group of sites measured alike; or the crash
    behaves_as: str  # the behaviour's name (dropspec.naming); "-" for a crash
    verdict: str  # key of VERDICTS
    broken: tuple[str, ...]  # the clauses the representative case breaks (fail, known or not, or crash)
    cases: tuple[tuple[str, str], ...]  # every (adapter, case id) the row stands for, for `dropspec explain`

    @property
    def verdict_words(self) -> str:
        # spec 1.0: against a reading of documentation that is silent (an inferred claim), a deviation differs
        # from the usual reading; only a documented claim is deviated from. The rate is documented everywhere, so a
        # row that breaks only rate clauses deviates whatever its scheme's basis
        inferred = self.documented.endswith("(inferred)") and not all(judges_the_rate(c) for c in self.broken)
        if self.verdict in ("fail", "xfail") and inferred:
            return INFERRED_WORDS[self.verdict]
        return VERDICTS[self.verdict]

    @property
    def why(self) -> tuple[str, ...]:
        """The shared rules the row breaks, in words (the name says how it breaks its own scheme's rules)."""
        return tuple(COMMON_BROKEN[c] for c in self.broken if c in COMMON_BROKEN)


@dataclass(frozen=True)
class CardGroup:
    """A framework family's rows."""

    family: str
    versions: str  # "keras 3.15.1", "torch 2.13.0+cpu, torchnlp 0.5.0"
    rows: tuple[CardRow, ...]
    unmeasured: tuple[str, ...] = ()  # configurations every adapter skipped here (a GPU case on CPU), with why


@dataclass(frozen=True)
class _Case:
    adapter: str
    case: str
    kind: str | None  # the case id's kind token, without a "cell" suffix; None when it has none
    rest: tuple[str, ...]  # the case id's other tokens
    label: str
    documented: str
    doc_url: str | None
    doc: str
    verdict: str
    broken: tuple[str, ...]
    sites: tuple[tuple[str, str, str | None, str | None, str | None, float], ...]  # site, resample, gates, batch, ...
    carried: bool
    errors: tuple[str, ...]  # exception type of a crash
    behaves_as: str
    skip_reason: str = ""
    index: int = 0  # position in its adapter's case list: rows keep the adapter author's order


def _doc_url(doc: str | None) -> str | None:
    if not doc:
        return None
    found = _URL.search(doc)
    return found.group(0).rstrip(".,;:)'\"") if found else None


def _split_case_id(case_id: str) -> tuple[str | None, tuple[str, ...]]:
    tokens = case_id.split("-")
    for i, token in enumerate(tokens[:2]):  # DropoutWrapper ids start with the API: keras2-lstm-input
        found = _KIND_TOKEN.match(token)
        if found:
            rest = tokens[:i] + ([f"*{found.group(2)}"] if found.group(2) else []) + tokens[i + 1 :]
            return found.group(1), tuple(rest)
    return None, tuple(tokens)


def _statuses(matrix: dict[str, Any]) -> dict[tuple[str, str], list[tuple[str, str, str]]]:
    """(adapter, case) -> [(clause, status, message)] over every clause that applies to the case."""
    out: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
    for clause, row in matrix.get("cells", {}).items():
        for adapter, cell in row.items():
            for r in cell.get("results", []):
                if r["status"] != "not_applicable":
                    out.setdefault((adapter, r["case"]), []).append((clause, r["status"], r.get("message", "")))
    return out


def _case_verdict(results: list[tuple[str, str, str]], crashed: bool) -> tuple[str, tuple[str, ...], str]:
    """(verdict key, clauses broken, skip reason) of one case."""
    statuses = {s for _, s, _ in results}
    if crashed or "error" in statuses:
        # a crash errors every clause it reaches; the one it breaks is that the configuration must run
        return "crash", ("common.runs.documented_configuration",), ""
    broken = tuple(sorted({c for c, s, _ in results if s in ("fail", "xfail")}))
    if "fail" in statuses:
        return "fail", broken, ""
    if "xfail" in statuses:
        return "xfail", broken, ""
    if "pass" in statuses:
        return "pass", (), ""
    reason = next((m for _, s, m in results if s == "skip" and m), "")
    return "skip", (), reason


def _behaviour(record: dict[str, Any]) -> str:
    if str(record.get("behaviour") or "").startswith("refuses "):  # a refused rate: what the framework said
        return str(record["behaviour"])
    if record.get("error") or not record.get("fingerprint"):
        return "-"
    if record.get("behaviour"):  # results that carry the name already (issue 11.1)
        return str(record["behaviour"])
    prefer = record.get("documented_as")  # of equally good names, the one the card compares with
    return behaviour_from_record(record["fingerprint"], record.get("cell") or "lstm", prefer=prefer).text


def _cases(matrix: dict[str, Any], adapter: str, statuses: dict[tuple[str, str], list]) -> list[_Case]:
    out = []
    for index, record in enumerate(matrix.get("cases", {}).get(adapter, [])):
        kind, rest = _split_case_id(record["case"])
        fp = record.get("fingerprint") or {"sites": {}, "carried_state_dropped": False}
        error = record.get("error")
        verdict, broken, skip_reason = _case_verdict(statuses.get((adapter, record["case"]), []), bool(error))
        sites = tuple(
            (name, s["resample"], s.get("gates"), s.get("batch"), s.get("directions"), round(float(s["scale"]), 2))
            for name, s in sorted(fp["sites"].items())
        )
        out.append(
            _Case(
                adapter=adapter,
                case=record["case"],
                kind=kind,
                rest=rest,
                label=_HARNESS_ARGS.sub("", record.get("label") or record["case"]),
                # an inferred claim is the usual reading of silent documentation: a failure differs from that
                documented=(record.get("documented_as") or "?")
                + (" (inferred)" if record.get("basis") == "inferred" else ""),
                doc_url=_doc_url(record.get("doc")),
                doc=record.get("doc") or "",
                verdict=verdict,
                broken=broken,
                sites=() if error else sites,
                carried=bool(fp.get("carried_state_dropped")) and not error,
                errors=(error.get("type", "error"),) if error else (),
                behaves_as=_behaviour(record),
                skip_reason=skip_reason,
                index=index,
            )
        )
    return out


def _why(case: _Case) -> tuple[str, ...]:
    return tuple(c for c in case.broken if c in COMMON_BROKEN)


def _alike(a: _Case, b: _Case) -> bool:
    """Whether two cases would show the same row: the same claim, verdict, name and per-site measurement. A
    one-gate cell (SimpleRNN) has no gate axis, so it is alike with any gate sharing."""
    if (a.documented, a.verdict, a.behaves_as, a.carried, bool(a.errors), _why(a)) != (
        b.documented,
        b.verdict,
        b.behaves_as,
        b.carried,
        bool(b.errors),
        _why(b),
    ):
        return False
    if len(a.sites) != len(b.sites):
        return False
    for sa, sb in zip(a.sites, b.sites):
        if sa[:2] != sb[:2] or sa[3:] != sb[3:]:
            return False
        if sa[2] is not None and sb[2] is not None and sa[2] != sb[2]:
            return False
    return True


def _backends_agree(a: _Case, b: _Case) -> bool:
    """Keras 3 backends share a row where resample, gates, batch, scale per site, carried state, crash or not
    (and so the verdict and the name) agree; the exception's type may differ by backend."""
    return (a.sites, a.carried, bool(a.errors), a.verdict, a.behaves_as, _why(a)) == (
        b.sites,
        b.carried,
        bool(b.errors),
        b.verdict,
        b.behaves_as,
        _why(b),
    )


def _site_words(site: tuple[str, str, str | None, str | None, str | None, float]) -> str:
    _, resample, gates, batch, directions, scale = site
    if scale == 0.0:  # rate 1: an all-zero mask, which looks per sequence and batch-shared but is only "all of it"
        return "every unit dropped"
    words = [_RESAMPLE_WORDS.get(resample, resample)]
    if gates is not None:
        words.append(_GATE_WORDS.get(gates, gates))
    if batch is not None:
        words.append(_BATCH_WORDS.get(batch, batch))
    if directions is not None:
        words.append(_DIRECTION_WORDS.get(directions, directions))
    words.append(f"x{scale:.2f}" if scale != 1.0 else "unscaled")
    return ", ".join(words)


def _measured(case: _Case, errors: tuple[str, ...]) -> tuple[str, ...]:
    if errors:
        return ("crashes: " + " / ".join(dict.fromkeys(errors)),)
    if case.verdict == "skip":
        return ("not measured",)
    if case.behaves_as.startswith("refuses "):  # a refused rate (rate 1.0): the layer never ran
        return ("nothing ran: the rate was refused",)
    by_words: dict[str, list[str]] = {}
    for site in case.sites:
        by_words.setdefault(_site_words(site), []).append(site[0])
    out = [f"{', '.join(names)}: {words}" for words, names in by_words.items()]
    if case.carried and not any(site[0].startswith("carry_") for site in case.sites):
        out.append("carried state dropped")
    return tuple(out) or ("nothing dropped",)


@dataclass
class _Unit:
    """Cases of one configuration: one per adapter of the family that agree (all three Keras backends, or some)."""

    cases: list[_Case]
    adapters: tuple[str, ...]

    @property
    def head(self) -> _Case:
        return self.cases[0]


def _units(family_cases: dict[str, list[_Case]]) -> list[_Unit]:
    """Per case id, the family's adapters split into groups that agree; ordered by the first adapter's case order."""
    by_id: dict[str, dict[str, _Case]] = {}
    for adapter, cases in family_cases.items():
        for c in cases:
            by_id.setdefault(c.case, {})[adapter] = c
    units = []
    for per_adapter in by_id.values():
        groups: list[list[_Case]] = []
        for c in per_adapter.values():
            for g in groups:
                if _backends_agree(g[0], c):
                    g.append(c)
                    break
            else:
                groups.append([c])
        units += [_Unit(g, tuple(c.adapter for c in g)) for g in groups]
    return units


def _kind_rank(kind: str | None) -> int:
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)


_TOKEN_CHARS = re.compile(r"[\w.=']")


def _added(base: str, other: str) -> str:
    """What tells ``other``'s label from ``base``'s, in the user's words: the arguments it adds or changes
    (``use_cudnn=False``, ``implementation=2``), each widened to the whole argument; the whole label when they
    differ in more than a few arguments."""
    pieces = []
    for op, _, _, j1, j2 in difflib.SequenceMatcher(None, base, other, autojunk=False).get_opcodes():
        if op == "equal":
            continue
        if op == "delete":  # the other label lacks something: name it whole
            return other
        # widen a change that starts or ends inside an argument to the whole argument ("1" -> "implementation=2")
        if j2 > j1 and _TOKEN_CHARS.match(other[j1]):
            while j1 > 0 and _TOKEN_CHARS.match(other[j1 - 1]):
                j1 -= 1
        if j2 > j1 and _TOKEN_CHARS.match(other[j2 - 1]):
            while j2 < len(other) and _TOKEN_CHARS.match(other[j2]):
                j2 += 1
        piece = other[j1:j2].strip(" ,;:")
        if piece and not re.search(r"\w=|^\.\w", piece):  # not an argument or a method: a different call
            return other
        if piece and piece not in pieces:
            pieces.append(piece)
    text = ", ".join(pieces)
    return text if text and len(text) <= len(other) // 2 else other


def _kind_name(case: _Case) -> str:
    if case.kind == "rnn" and "SimpleRNN" in case.label:
        return "SimpleRNN"
    return _KIND_WORDS.get(case.kind or "", case.kind or "")


def _kinds_words(kinds: list[str]) -> tuple[str, ...]:
    both = (_KIND_WORDS["gru_reset_after"], _KIND_WORDS["gru_reset_before"])
    if all(k in kinds for k in both):
        kinds = [("GRU (either reset_after)" if k == both[0] else k) for k in kinds if k != both[1]]
    return tuple(kinds)


@dataclass
class _Draft:
    """A row before rows that read alike are merged: cases that differ only in cell kind."""

    units: list[_Unit]  # the representative kind first
    where: str | None
    shown: tuple[Any, ...]  # every column but the configuration

    @property
    def head(self) -> _Case:
        return self.units[0].head

    @property
    def kinds(self) -> frozenset[str | None]:
        return frozenset(u.head.kind for u in self.units)

    @property
    def size(self) -> int:
        return sum(len(u.cases) for u in self.units)


def _rows(family_cases: dict[str, list[_Case]]) -> tuple[list[CardRow], list[str]]:
    """The family's rows (see the module docstring) and the configurations no adapter could measure here."""
    runs_case = {}  # case id -> the family's adapters that ran it: a row naming fewer says where it holds
    for adapter, cases in family_cases.items():
        for c in cases:
            runs_case.setdefault(c.case, set()).add(adapter)
    units = _units(family_cases)
    unmeasured = [u for u in units if u.head.verdict == "skip"]
    units = [u for u in units if u.head.verdict != "skip"]
    # 1. cases that differ only in cell kind: one draft per group that behaves alike, LSTM first
    by_rest: dict[tuple[tuple[str, ...], tuple[str, ...]], list[_Unit]] = {}
    for u in units:
        by_rest.setdefault((u.head.rest, u.adapters), []).append(u)
    drafts: list[_Draft] = []
    for group in by_rest.values():
        group.sort(key=lambda u: (_kind_rank(u.head.kind), u.head.index))
        kind_rows: list[list[_Unit]] = []
        for u in group:
            for row in kind_rows:
                if _alike(row[0].head, u.head):
                    row.append(u)
                    break
            else:
                kind_rows.append([u])
        for row in kind_rows:
            head, adapters = row[0].head, row[0].adapters
            where = None
            if set(adapters) != runs_case[head.case]:
                where = "on " + ", ".join(BACKENDS.get(a, a) for a in adapters)
            errors = tuple(c.errors[0] for c in row[0].cases if c.errors)
            shown = (head.documented, head.doc_url, _measured(head, errors), head.behaves_as, head.verdict, _why(head))
            drafts.append(_Draft(row, where, shown))
    # 2. configurations whose rows would read alike (claim, measurement, name and verdict) share one:
    # the configuration standing for the most cases is shown, the others named by what they change
    # a draft measured on fewer kinds (a kernel flag tried on LSTM alone) joins a row that holds for all of them
    alike: dict[tuple[Any, ...], list[_Draft]] = {}
    for d in drafts:
        alike.setdefault((d.where, d.shown), []).append(d)
    clusters: list[list[_Draft]] = []
    for same in alike.values():
        mine: list[list[_Draft]] = []
        for d in sorted(same, key=lambda d: -len(d.kinds)):
            target = next((c for c in mine if d.kinds <= c[0].kinds), None)
            if target is None:
                mine.append([d])
            else:
                target.append(d)
        clusters += mine
    out = []
    for members in clusters:
        # shown: the configuration the others add to (most of them), then the one standing for most cases
        # (keys first: a list being sorted reads as empty)
        bases = [sum(1 for m in members if m is not d and set(d.head.rest) <= set(m.head.rest)) for d in members]
        keyed = sorted(zip(members, bases), key=lambda db: (-db[1], -db[0].size, db[0].head.index))
        members = [d for d, _ in keyed]
        first = members[0]
        head = first.head
        documented, doc_url, measured, behaves_as, verdict, _ = first.shown
        row = CardRow(
            configuration=head.label,
            kinds=_kinds_words([_kind_name(u.head) for u in first.units[1:]]),
            variants=tuple(dict.fromkeys(_added(head.label, d.head.label) for d in members[1:])),
            where=first.where,
            documented=documented,
            doc_url=doc_url,
            doc=head.doc,
            measured=measured,
            behaves_as=behaves_as,
            verdict=verdict,
            broken=head.broken,
            cases=tuple((c.adapter, c.case) for d in members for u in d.units for c in u.cases),
        )
        out.append(((_kind_rank(head.kind), min(d.head.index for d in members)), row))
    skipped = []
    for u in unmeasured:
        reason = u.head.skip_reason.split(";")[0].strip()
        skipped.append(f"{u.head.label}" + (f" ({reason})" if reason else ""))
    return [row for _, row in sorted(out, key=lambda o: o[0])], skipped


def _versions(matrix: dict[str, Any], adapters: tuple[str, ...]) -> str:
    """The framework's own version per adapter: the versions key that its framework name contains, longest first;
    else the key that contains the framework name (haiku's package is ``dm-haiku``)."""
    out = []
    for name in adapters:
        info = matrix["adapters"].get(name) or {}
        versions = info.get("versions") or {}
        framework = (info.get("framework") or name).replace("-", "_")
        keys = sorted((k for k in versions if k.replace("-", "_") in framework or k == name), key=len, reverse=True)
        keys = keys or [k for k in versions if framework in k.replace("-", "_")]
        if keys:
            out.append(f"{keys[0]} {versions[keys[0]]}")
    return ", ".join(dict.fromkeys(out))


def answer_card(matrix: dict[str, Any]) -> list[CardGroup]:
    """The card's rows, grouped by framework family (see the module docstring). Adapters with no cases are left
    out; so is the reference oracle."""
    for key in ("adapters", "cases", "cells"):
        if key not in matrix:
            raise ValueError(
                f"matrix has no {key!r}: pass the dict of reports/matrix.json (`dropspec report` writes it)"
            )
    statuses = _statuses(matrix)
    present = [a for a in matrix["adapters"] if a != ORACLE and matrix["cases"].get(a)]
    families = [(title, tuple(a for a in members if a in present)) for title, members in FAMILIES]
    known = {a for _, members in FAMILIES for a in members}
    families += [(matrix["adapters"][a].get("framework") or a, (a,)) for a in present if a not in known]
    groups = []
    for title, adapters in families:
        if not adapters:
            continue
        rows, unmeasured = _rows({a: _cases(matrix, a, statuses) for a in adapters})
        groups.append(CardGroup(title, _versions(matrix, adapters), tuple(rows), tuple(unmeasured)))
    return groups


def _oracle_sentence(matrix: dict[str, Any]) -> str:
    totals = (matrix["adapters"].get(ORACLE) or {}).get("totals") or {}
    if not totals:
        return ""
    judged = sum(n for s, n in totals.items() if s not in ("not_applicable", "skip"))
    return (
        f"The reference adapter, dropspec's float64 oracle that every row is measured against, is not listed: "
        f"it passes {totals.get('pass', 0)} of its {judged} checks."
    )


_INTRO = (
    "One row per configuration as you write it (rate 0.25). 'Behaves as' names what the suite measured in the "
    "spec's words; 'deviates' means it breaks a rule of the scheme its documentation claims ('known': listed with "
    "a reason and a link in dropspec/adapters/deviations/). Where the documentation is silent and the claim is the "
    "usual reading of it ('(inferred)'), a deviation 'differs from the usual reading'. "
    "Measured, per site it drops: a mask drawn per step or "
    "per sequence, per gate or shared by the gates, per sample or shared by the batch, and the scale of a kept unit "
    "(x1.33: inverted dropout)."
)
# the verdict next to the configuration and the long per-site words last: a README table wider than the page
# scrolls sideways, and what is cut off should be the detail, not the answer
_HEADER = ("configuration", "verdict", "documented as", "behaves as", "measured, per site")


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    ticks = "``" if "`" in text else "`"
    return f"{ticks}{_md_cell(text)}{ticks}"


def _notes(matrix: dict[str, Any], groups: list[CardGroup], code: Any) -> list[str]:
    notes = [
        f"{g.family}, not measured here: " + "; ".join(code(u) for u in g.unmeasured) for g in groups if g.unmeasured
    ]
    oracle = _oracle_sentence(matrix)
    return notes + ([oracle] if oracle else [])


def render_card_markdown(matrix: dict[str, Any]) -> str:
    """The card as one Markdown table, a bold row per family, for the README."""
    groups = answer_card(matrix)
    if not groups:
        lines = [
            "No adapter besides the reference has results yet: `dropspec run --adapter NAME`, then `dropspec report`."
        ]
        return "\n".join([*lines, "", *_notes(matrix, groups, _md_code)]).rstrip() + "\n"
    lines = [_INTRO, "", "| " + " | ".join(_HEADER) + " |", "|---" * len(_HEADER) + "|"]
    for group in groups:
        lines.append(f"| **{group.family}** ({group.versions}) |" + " |" * (len(_HEADER) - 1))
        for row in group.rows:
            config = _md_code(row.configuration)
            if row.where:
                config += f" *{row.where}*"
            if row.kinds:
                config += "<br>same for " + ", ".join(_md_cell(k) for k in row.kinds)
            if row.variants:
                config += "<br>and " + " · ".join(_md_code(v) for v in row.variants)
            documented = f"[{row.documented}]({row.doc_url})" if row.doc_url else row.documented
            measured = "<br>".join(_md_cell(m) for m in row.measured)
            verdict = f"**{row.verdict_words}**" if row.verdict in ("fail", "xfail", "crash") else row.verdict_words
            if row.why:
                verdict += ": " + "; ".join(row.why)
            lines.append(f"| {config} | {verdict} | {documented} | {_md_cell(row.behaves_as)} | {measured} |")
    lines.append("")
    for text in _notes(matrix, groups, _md_code):
        lines += [text, ""]
    lines.append(
        "Which rules each deviation breaks, with a repro: `reports/findings.md`; every clause per adapter: "
        "`reports/matrix.md`."
    )
    return "\n".join(lines) + "\n"


def render_card_html(matrix: dict[str, Any]) -> str:
    """The card as a self-contained ``<section class="card">`` with one ``<table>``: a ``<tbody class="family">``
    per family, a verdict class per row (``verdict-pass``, ``verdict-xfail``, ...); no scripts, no inline styles."""
    e = html.escape
    groups = answer_card(matrix)
    out = [
        '<section class="card" id="answer-card">',
        "<h2>Answer card</h2>",
        f'<p class="card-intro">{e(_INTRO)}</p>',
        '<table class="card-table">',
        "<thead><tr>" + "".join(f"<th>{e(h)}</th>" for h in _HEADER) + "</tr></thead>",
    ]
    for group in groups:
        out.append('<tbody class="family">')
        out.append(
            f'<tr class="family-head"><th colspan="{len(_HEADER)}">{e(group.family)} '
            f'<span class="versions">({e(group.versions)})</span></th></tr>'
        )
        for row in group.rows:
            ids = " ".join(f"{a}:{c}" for a, c in row.cases)
            config = f"<code>{e(row.configuration)}</code>"
            if row.where:
                config += f' <span class="where">{e(row.where)}</span>'
            if row.kinds:
                config += f'<div class="kinds">same for {e(", ".join(row.kinds))}</div>'
            if row.variants:
                config += '<div class="variants">and ' + " · ".join(f"<code>{e(v)}</code>" for v in row.variants)
                config += "</div>"
            documented = f'<a href="{e(row.doc_url)}">{e(row.documented)}</a>' if row.doc_url else e(row.documented)
            if row.doc:  # the quote the claim rests on, on hover
                documented = f'<span class="doc" title="{e(row.doc)}">{documented}</span>'
            measured = "".join(f'<div class="site">{e(m)}</div>' for m in row.measured)
            title = f' title="{e(", ".join(row.broken))}"' if row.broken else ""
            why = f'<div class="why">{e("; ".join(row.why))}</div>' if row.why else ""
            out.append(
                f'<tr class="verdict-{row.verdict}" data-cases="{e(ids)}"><td class="config">{config}</td>'
                f'<td class="verdict"{title}>{e(row.verdict_words)}{why}</td>'
                f"<td>{documented}</td><td>{e(row.behaves_as)}</td>"
                f'<td class="measured">{measured}</td></tr>'
            )
        out.append("</tbody>")
    out.append("</table>")
    out += [f'<p class="card-note">{e(n)}</p>' for n in _notes(matrix, groups, lambda u: u)]
    out.append("</section>")
    return "\n".join(out) + "\n"


def update_readme_card(readme: Path, matrix: dict[str, Any]) -> bool:
    """Replace the README's card block (between ``CARD_START`` and ``CARD_END``) with the Markdown card; False when
    the README or its markers are missing."""
    if not readme.exists():
        return False
    content = readme.read_text()
    start, end = content.find(CARD_START), content.find(CARD_END)
    if start < 0 or end < start:
        return False
    block = f"{CARD_START}\n{render_card_markdown(matrix).rstrip()}\n{CARD_END}"
    readme.write_text(content[:start] + block + content[end + len(CARD_END) :])
    return True

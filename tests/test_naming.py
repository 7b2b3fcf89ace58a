"""Every measured case has a name: the schemes it matches (a scheme's rates are its parameters, so a
scheme site left at rate 0 is no mismatch), or the nearest scheme and how the case differs from it."""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import dropspec.naming as naming
from dropspec.adapters.base import Case, Claim
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.engine import observe
from dropspec.fingerprint import Fingerprint, SiteFingerprint
from dropspec.naming import NO_SCHEME, Behaviour, Difference, behaviour_from_record, name_behaviour
from dropspec.spec import Scheme, Spec, default_spec

ROOT = Path(__file__).resolve().parent.parent
SPEC = default_spec()
KEEP = 4 / 3  # the kept value at p = 0.25, inverted


def site(
    name: str,
    resample: str = "per_sequence",
    gates: str | None = "shared",
    batch: str = "per_sample",
    scale: float = KEEP,
) -> SiteFingerprint:
    return SiteFingerprint(
        site=name,
        resample=resample,
        gates=gates,
        batch=batch,
        scale=scale,
        rate=0.25,
        draws=4096,
        binary=True,
        observed=1,
    )


def fp(*sites: SiteFingerprint, carried: bool | None = None) -> Fingerprint:
    dropped = {s.site: s for s in sites}
    if carried is None:
        carried = any(s.startswith("carry_") for s in dropped)
    return Fingerprint(sites=dropped, carried_state_dropped=carried)


# (cell, fingerprint, the name it must get): each row is one rule of the naming
CASES: list[tuple[str, Fingerprint, str]] = [
    # a scheme site left at rate 0 is that scheme: variational with p_recurrent = 0, and with p_input = 0
    ("lstm", fp(site("input")), "variational"),
    # variational and flip_recurrent, both with the input at rate 0: equally good, by id (the engine prefers the claim)
    ("lstm", fp(site("recurrent")), "flip_recurrent, variational"),
    ("gru", fp(site("input", gates="per_gate")), "variational_untied"),
    # a SimpleRNN has one gate, so tied and untied masks are the same masks: both names, kept
    ("rnn", fp(site("input", gates=None)), "variational, variational_untied"),
    # resampling decides: a fresh input mask per step is zaremba, with a per-sequence recurrent mask it is no scheme
    ("lstm", fp(site("input", "per_step")), "zaremba, flip_recurrent"),
    # a fresh input mask per step with one recurrent mask per sequence is FLIP 2396's recurrent dropout
    ("lstm", fp(site("input", "per_step"), site("recurrent")), "flip_recurrent"),
    (
        "lstm",
        fp(site("input", "per_step", "per_gate"), site("recurrent", gates="per_gate")),
        "variational_untied, except input: per_step",
    ),
    # several differences, one entry per site (variational and variational_untied are two away)
    (
        "lstm",
        fp(site("input", "reused_across_calls"), site("recurrent", "reused_across_calls")),
        "variational, except input: reused_across_calls; recurrent: reused_across_calls",
    ),
    (
        "lstm",
        fp(site("input", "per_step"), site("recurrent", gates="per_gate")),
        "flip_recurrent, except recurrent: per_gate",
    ),
    # a mask kept across calls is per sequence within a call: nearer variational than zaremba
    ("lstm", fp(site("input", "reused_across_calls")), "variational, except input: reused_across_calls"),
    ("lstm", fp(site("input", batch="shared")), "feature_dropout"),
    ("lstm", fp(site("input", scale=1.0)), "variational, except input: scale 1"),
    # nothing dropped: none alone, not every scheme at rate 0
    ("lstm", fp(), "none"),
    ("gru", fp(), "none"),
    # the carried state: dropped only where the scheme drops it
    ("lstm", fp(site("carry_h", "per_step")), "carried_state"),
    ("gru", fp(site("carry_h")), "carried_state_variational"),
    ("lstm", fp(site("carry_h", "per_step"), site("carry_c", "per_step")), "carried_state, except carry_c: dropped"),
    ("rnn", fp(site("output", "per_step"), site("carry_h", "per_step")), "carried_state, except output: dropped"),
    # the carried c alone is the carry_c scheme (until spec 1.0 no scheme had the site, and this row read
    # 'none, except carry_c: dropped'; every site of the three cells now has a scheme)
    ("lstm", fp(site("carry_c", "per_step")), "carry_c"),
    # one mask per sequence on the outputs: locked_output; with the carried h too, ELMo's single mask
    ("gru", fp(site("output", gates=None)), "locked_output"),
    ("lstm", fp(site("output", gates=None), site("carry_h", gates=None)), "elmo_single_mask"),
    # masks scaled at test time are 0/1 in training: the cell and candidate schemes follow their papers
    ("lstm", fp(site("cell", "per_step", gates=None, scale=1.0)), "cell_per_step"),
    ("lstm", fp(site("cell", gates=None, scale=1.0)), "rnndrop"),
    ("lstm", fp(site("cell", gates=None)), "rnndrop, except cell: scale 1.333"),
    # stacks: each layer's site is held to its site's rule; layer 1 at rate 0
    ("lstm_x2", fp(site("input@2", "per_step")), "zaremba, flip_recurrent"),
    ("gru_reset_after_x2_bi", fp(site("input@2", "per_step"), site("input@2r", "per_step")), "zaremba, flip_recurrent"),
    ("lstm_x2", fp(site("input@1"), site("input@2", "per_step")), "zaremba, except input@1: per_sequence"),
    ("lstm", fp(site("weight_hh", gates=None, batch="shared")), "weight_drop"),
]


def check_names(name: Callable[[Fingerprint, Spec, str], Behaviour]) -> Iterator[str]:
    """Every row of ``CASES`` that ``name`` gets wrong, in words."""
    for cell, got_fp, want in CASES:
        got = name(got_fp, SPEC, cell).text
        if got != want:
            yield f"{cell} {got_fp.summary()}: named {got!r}, want {want!r}"


def test_every_naming_rule() -> None:
    assert list(check_names(name_behaviour)) == []


def test_a_declared_scaling_is_a_parameter_of_the_claimed_scheme() -> None:
    inverted = fp(site("cell", gates=None))
    assert name_behaviour(inverted, SPEC, "lstm", prefer="rnndrop", scaling="inverted").text == "rnndrop"
    # only the claimed scheme takes the declared scaling
    assert name_behaviour(inverted, SPEC, "lstm", prefer="variational", scaling="inverted").schemes == []


def test_the_claimed_scheme_comes_first_among_equally_good_names() -> None:
    recurrent_only = fp(site("recurrent"))  # variational and flip_recurrent, each with its input at rate 0
    assert name_behaviour(recurrent_only, SPEC, "lstm").text == "flip_recurrent, variational"
    assert name_behaviour(recurrent_only, SPEC, "lstm", prefer="variational").text == "variational, flip_recurrent"
    # a preference never outranks a better name
    assert name_behaviour(fp(site("input", "per_step")), SPEC, "lstm", prefer="flip_recurrent").schemes[0] == "zaremba"


def test_the_name_keeps_the_differences_as_data() -> None:
    b = name_behaviour(fp(site("input", "per_sequence", "per_gate"), site("recurrent", "per_step")), SPEC, "lstm")
    assert b.schemes == [] and b.nearest == "variational"
    assert b.details == [
        Difference("input", "gates", "per_gate", "shared_gates"),
        Difference("recurrent", "resample", "per_step", "per_sequence"),
    ]
    assert b.differences == ["input: per_gate", "recurrent: per_step"]
    assert b.nearest_dict() == {
        "scheme": "variational",
        "differences": ["input: per_gate", "recurrent: per_step"],
        "details": [
            {"site": "input", "aspect": "gates", "measured": "per_gate", "rule": "shared_gates"},
            {"site": "recurrent", "aspect": "resample", "measured": "per_step", "rule": "per_sequence"},
        ],
    }
    assert name_behaviour(fp(site("input")), SPEC, "lstm").nearest_dict() is None


def test_matching_schemes_are_ordered_most_specific_first() -> None:
    """A scheme that drops the input alone, as variational does with p_recurrent = 0: the case uses
    all of its sites and only one of variational's, so it comes first; both are kept."""
    base = SPEC.scheme("variational")
    only_input = Scheme.model_validate(
        {**base.model_dump(), "id": "input_only", "masks": [base.rule("input").model_dump()], "clauses": []}
    )
    spec = Spec(schemes={**SPEC.schemes, "input_only": only_input}, cells=SPEC.cells)
    assert name_behaviour(fp(site("input")), spec, "lstm").schemes == ["input_only", "variational"]
    assert name_behaviour(fp(site("input"), site("recurrent")), spec, "lstm").schemes == ["variational"]


def test_a_cell_name_from_a_results_file_names_its_kind() -> None:
    assert name_behaviour(fp(site("candidate", "per_step", scale=1.0)), SPEC, "gru_reset_before").text == "semeniuta"
    # rnndrop is an LSTM scheme: a GRU is held only to schemes for GRUs
    assert name_behaviour(fp(site("cell")), SPEC, "gru_reset_after").nearest != "rnndrop"
    with pytest.raises(ValueError, match="'cell' starts with one of"):
        name_behaviour(fp(), SPEC, "transformer")


# ---- mutants: namings that break one rule each; the rows above must catch every one


def _counts_undropped_sites(fp: Fingerprint, scheme: Scheme) -> list[Difference]:
    """The old rule: a scheme site the case does not drop is a mismatch."""
    dropped = {n.partition("@")[0] for n in fp.sites}
    missing = [Difference(m.site, "site", "not dropped", m.resample) for m in scheme.masks if m.site not in dropped]
    return ORIGINAL["scheme_differences"](fp, scheme) + missing


def _ignores_resample(got: SiteFingerprint, rule) -> list[Difference]:
    return [d for d in ORIGINAL["_rule_differences"](got, rule) if d.aspect != "resample"]


def _ignores_batch(got: SiteFingerprint, rule) -> list[Difference]:
    return [d for d in ORIGINAL["_rule_differences"](got, rule) if d.aspect != "batch"]


def _unweighted(self: Difference) -> int:
    return 1


ORIGINAL = {"scheme_differences": naming.scheme_differences, "_rule_differences": naming._rule_differences}
MUTANTS = {
    "counts_undropped_sites": ("scheme_differences", _counts_undropped_sites),
    "ignores_resample": ("_rule_differences", _ignores_resample),
    "ignores_batch": ("_rule_differences", _ignores_batch),
    "unweighted_resample": ("Difference.weight", property(_unweighted)),
}


@pytest.mark.parametrize("mutant", sorted(MUTANTS))
def test_a_wrong_naming_is_caught(mutant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    target, replacement = MUTANTS[mutant]
    if target == "Difference.weight":
        monkeypatch.setattr(Difference, "weight", replacement)
    else:
        monkeypatch.setattr(naming, target, replacement)
    assert list(check_names(name_behaviour)), f"mutant {mutant} passes every naming rule"


def test_a_naming_that_names_every_scheme_when_nothing_is_dropped_is_caught() -> None:
    def every_scheme_at_rate_zero(got: Fingerprint, spec: Spec, cell: str) -> Behaviour:
        if not got.sites:
            return Behaviour(schemes=[s.id for s in naming.candidate_schemes(spec, cell)])
        return name_behaviour(got, spec, cell)

    assert any("named 'none, " in line for line in check_names(every_scheme_at_rate_zero))


# ---- the reference adapter and the committed results


def _rate_key(case: Case) -> tuple:
    return case.cell.name, case.claim.scheme, tuple(sorted(k for k, p in case.claim.rates.items() if p > 0))


def reference_catalogue() -> list[Case]:
    """The reference adapter's cases, plus every rate combination of a scheme's sites they leave out
    (each site at its rate or at 0, not all at 0): today only variational and variational_untied have
    two sites, and the catalogue has their input-only combination, not the recurrent-only one."""
    # without the boundary-rate modes: at rate 0 nothing is dropped and at 1.0 an all-zero mask has no structure
    # to name (tests/test_rates.py checks what they are named)
    cases = [c for c in reference_cases() if not c.mode.startswith("rate_")]
    known = {_rate_key(c) for c in cases}
    for case in list(cases):
        rates = case.claim.rates
        if case.cell.stacked or len(rates) < 2:
            continue
        p = max(rates.values())
        for on in itertools.product((True, False), repeat=len(rates)):
            new = {s: (p if keep else 0.0) for s, keep in zip(rates, on)}
            if not any(on) or all(on):
                continue
            claim = Claim(case.claim.scheme, new, doc=case.claim.doc)
            zeroed = "-".join(s for s, keep in zip(rates, on) if not keep)
            extra = dataclasses.replace(case, id=f"{case.id}-{zeroed}_at_0", claim=claim)
            if _rate_key(extra) not in known:
                known.add(_rate_key(extra))
                cases.append(extra)
    return cases


def test_the_reference_behaves_as_the_scheme_it_draws_at_every_rate_combination() -> None:
    """The whole catalogue (about 65 cases) observes in about 3 s here, so no subset is needed."""
    adapter, cases = ReferenceAdapter(), reference_catalogue()
    assert {c.claim.scheme for c in cases} == {s for s in SPEC.schemes if s != "common"}
    combos = {_rate_key(c) for c in cases}
    for scheme in ("variational", "variational_untied"):
        assert {("lstm", scheme, sites) for sites in (("input",), ("recurrent",), ("input", "recurrent"))} <= combos
    start, wrong = time.perf_counter(), []
    for case in cases:
        obs = observe(adapter, case)
        assert obs.error is None, (case.id, obs.error)
        if case.claim.scheme not in obs.behaves_as:
            wrong.append(f"{case.id}: behaves as {obs.behaviour.text} ({obs.fingerprint.summary()})")
        record = obs.as_dict()
        assert record["behaviour"] == obs.behaviour.text and record["nearest"] is None
        named = behaviour_from_record(
            record["fingerprint"], case.cell.name, prefer=case.claim.scheme, scaling=case.claim.scaling
        )
        assert named == obs.behaviour
    assert wrong == []
    assert time.perf_counter() - start < 60


def _committed_cases() -> Iterator[tuple[str, dict, set[str]]]:
    """Each measured case of reports/matrix.json with the statuses of its applicable clauses."""
    matrix = json.loads((ROOT / "reports" / "matrix.json").read_text())
    statuses: dict[tuple[str, str], set[str]] = {}
    for per_adapter in matrix["cells"].values():
        for adapter, cell in per_adapter.items():
            for result in cell["results"]:
                statuses.setdefault((adapter, result["case"]), set()).add(result["status"])
    for adapter, records in matrix["cases"].items():
        for record in records:
            if record["fingerprint"] is not None:
                yield adapter, record, statuses.get((adapter, record["case"]), set())


def test_every_committed_case_has_a_name_and_a_clean_case_is_named_by_its_claim() -> None:
    """A case that passes every clause of its claimed scheme follows that scheme's rules at every
    site it drops, so the naming must name that scheme."""
    measured = clean = 0
    for adapter, record, statuses in _committed_cases():
        measured += 1
        # a claim's declared scaling is a parameter of its scheme, as its rates are (Claim.scaling)
        scaling = (record.get("claim") or {}).get("scaling")
        b = behaviour_from_record(
            record["fingerprint"], record["cell"], prefer=record["documented_as"], scaling=scaling
        )
        assert b.text != NO_SCHEME and (b.schemes or (b.nearest and b.details)), (adapter, record["case"])
        assert set(record["behaves_as"]) <= set(b.schemes), (adapter, record["case"], b.text)
        if record.get("mode") == "rate_one" and not statuses & {"fail", "xfail", "error"}:
            # at rate 1 an all-zero mask fits every scheme: the engine names it by what it does
            assert record["behaviour"].startswith(("drops every unit at ", "refuses rate 1.0")), (
                adapter,
                record["case"],
            )
        elif not statuses & {"fail", "xfail", "error"}:
            clean += 1
            # at rate 0 (the rate_zero mode) every scheme draws nothing: the clean name is "none"
            claimed = "none" if record.get("mode") == "rate_zero" else record["documented_as"]
            assert claimed in b.schemes, (adapter, record["case"], b.text)
    assert measured > 300 and clean > 100  # the committed matrix measures every adapter

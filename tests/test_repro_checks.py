"""The repro scripts' checks can see: the reference's snippet passes each check, the mutant that breaks
its rule (tests/mutants.py, written as a snippet) fails it and says what it saw. NumPy only."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest

from dropspec.adapters.base import Case
from dropspec.adapters.reference import reference_cases, reference_rules, reference_snippet
from dropspec.repro_script import NoScript, repro_script

CASES = {c.id: c for c in reference_cases()}
P = 0.25


def rules(case_id: str, **change: object) -> dict:
    return reference_rules(CASES[case_id], **change)


def with_carry(case_id: str) -> dict:
    """CarriedState: variational dropout that also drops the carried state, a fresh mask every step."""
    carry = {"p": P, "gates": "shared", "resample": "per_step", "batch": "per_sample", "scale": 1 / (1 - P)}
    return {**rules(case_id), "carry_h": carry}


def state_before_cell(case_id: str) -> dict:
    """Drops the state fed to each step, memory path and initial state included (Flax's recipe on a GRU)."""
    state = {"p": P, "gates": "shared", "resample": "per_sequence", "batch": "per_sample", "scale": 1 / (1 - P)}
    return {**rules(case_id), "state_in": state}


def state_instead_of_recurrent(case_id: str) -> dict:
    """StateInInsteadOfRecurrent: the recurrent rate goes to the state fed to the step."""
    out = state_before_cell(case_id)
    del out["recurrent"]
    return out


def state_and_carry(case_id: str) -> dict:
    """Drops the state fed to each step and the carried state: the initial state and the returned state are
    both dropped, which no one site does, and two that act on the memory path together are not separable."""
    return with_carry(case_id) | {"state_in": state_before_cell(case_id)["state_in"]}


# (check kind, case, clause, the mutant's snippet options, the mutant's partner case and options)
PAIRS = [
    ("site_resample", "lstm-variational", "variational.input.time_invariant", {"resample": "per_step"}),
    ("site_resample", "gru_reset_before-variational", "variational.recurrent.time_invariant", {"resample": "per_step"}),
    ("site_resample", "rnn-zaremba", "zaremba.input.fresh_each_step", {"resample": "per_sequence"}),
    ("site_gates", "lstm-variational", "variational.input.shared_gates", {"gates": "per_gate"}),
    ("site_gates", "gru_reset_after-variational", "variational.recurrent.shared_gates", {"gates": "per_gate"}),
    ("site_scale", "lstm-variational", "variational.input.scale", {"scale": 1.0}),  # NoScaling
    ("site_scale", "gru_reset_before-variational", "variational.recurrent.scale", {"scale": 1 - P}),  # KeepScaling
    ("site_rate", "lstm-variational", "variational.recurrent.rate", {"p": 2 * P}),  # WrongRate
    ("site_batch", "lstm-feature_dropout", "feature_dropout.input.batch_shared", {"batch": "per_sample"}),
    ("site_batch", "gru_reset_after-output_dropout", "output_dropout.output.per_sample", {"batch": "shared"}),
    (
        "site_resample",
        "lstm-carried_state_variational",
        "carried_state_variational.carry_h.time_invariant",
        {"resample": "reused_across_calls"},
    ),
    ("new_call_new_masks", "lstm-variational", "common.calls.fresh_masks", {"resample": "reused_across_calls"}),
    ("carried_state", "gru_reset_after-variational", "variational.state.carried_undropped", with_carry),
    ("carried_state", "lstm-variational", "variational.state.carried_undropped", with_carry),
    ("only_scheme_sites", "gru_reset_after-variational", "variational.sites.only_input_and_recurrent", with_carry),
    (
        "only_scheme_sites",
        "gru_reset_before-variational",
        "variational.sites.only_input_and_recurrent",
        state_before_cell,
    ),
    ("replay_explained", "gru_reset_after-variational", "common.replay.explained", state_and_carry),
    *(  # Flax's recipe on a GRU: the recurrent site draws nothing, the state fed to the step is dropped instead
        (kind, "gru_reset_after-variational", f"variational.recurrent.{clause}", state_instead_of_recurrent)
        for kind, clause in (
            ("site_resample", "time_invariant"),
            ("site_gates", "shared_gates"),
            ("site_scale", "scale"),
        )
    ),
    (
        "site_resample",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.state_in.time_invariant",
        {"resample": "per_step"},
    ),
    ("site_rate", "gru_reset_before-state_in_per_sequence", "state_in_per_sequence.state_in.rate", {"p": 2 * P}),
    (
        "carried_state",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.state.carried_undropped",
        with_carry,
    ),
    (
        "only_scheme_sites",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.sites.only_state_in",
        lambda case_id: {**rules(case_id), **rules("gru_reset_after-variational")},
    ),
    ("inference_matches_reference", "lstm-variational", "common.mapping.inference_matches_reference", "at_inference"),
    ("seed_reproducible", "lstm-variational", "common.seed.reproducible", "unseeded"),
]


def snippet(case: Case, mutation: object = None) -> str:
    if mutation is None:
        return reference_snippet(case)
    if mutation == "at_inference":  # DropoutAtInference
        return reference_snippet(case, at_inference=True)
    if mutation == "unseeded":  # Unseeded
        return reference_snippet(case, seeded=False)
    if callable(mutation):
        return reference_snippet(case, mutation(case.id))
    return reference_snippet(case, reference_rules(case, **mutation))


def run_script(script: str) -> tuple[int, str]:
    """Runs a composed script in this process (numpy only: fast); its exit status and what it printed."""
    namespace = {"__name__": "dropspec_repro"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(script, "<repro>", "exec"), namespace)
        status = namespace["check"]()
    return status, out.getvalue()


@pytest.mark.parametrize(("kind", "case_id", "clause", "mutation"), PAIRS, ids=[f"{p[0]}-{p[1]}" for p in PAIRS])
def test_the_reference_passes_and_the_mutant_is_caught(kind: str, case_id: str, clause: str, mutation: object) -> None:
    case = CASES[case_id]
    good, good_out = run_script(repro_script(snippet(case), case, clause))
    assert good == 0, good_out
    bad, bad_out = run_script(repro_script(snippet(case, mutation), case, clause))
    assert bad == 1, bad_out
    assert any(ch.isdigit() for ch in bad_out), "the script must print what it saw"


@pytest.mark.parametrize(
    ("kind", "case_id", "partner_id", "clause"),
    [
        (
            "flag_invariance",
            "lstm-variational_untied",
            "lstm-variational_untied-fused",
            "common.flags.performance_only",
        ),
        ("site_independence", "lstm-variational", "lstm-variational-input_only", "common.sites.independent"),
    ],
)
def test_group_checks_see_a_flag_or_rate_that_changes_the_masks(
    kind: str, case_id: str, partner_id: str, clause: str
) -> None:
    case, partner = CASES[case_id], CASES[partner_id]
    good, out = run_script(repro_script(snippet(case), case, clause, partners=[(partner, snippet(partner))]))
    assert good == 0, out
    # FusedSharesMasks: the fused twin shares its masks across gates; CoupledSites: input masks turn per-step
    change = {"gates": "shared"} if kind == "flag_invariance" else {"resample": "per_step"}
    bad, out = run_script(repro_script(snippet(case), case, clause, partners=[(partner, snippet(partner, change))]))
    assert bad == 1 and "differ in" in out, out


def test_a_crash_exits_non_zero_with_its_traceback() -> None:
    case = CASES["lstm-variational"]
    broken = snippet(case) + "\n\ndef call(model, x, h0, c0, training):\n    raise ValueError('no masks today')\n"
    for text, code in ((snippet(case), 0), (broken, 1)):
        done = subprocess.run(
            [sys.executable, "-c", repro_script(text, case, "common.runs.documented_configuration")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, done.stdout + done.stderr
    assert "ValueError: no masks today" in done.stderr


def test_a_script_never_pretends() -> None:
    """Where a short script cannot check a clause it says so: NoScript, or exit status 2, never 0."""
    with pytest.raises(NoScript, match="one gate"):
        repro_script(snippet(CASES["rnn-variational"]), CASES["rnn-variational"], "variational.input.shared_gates")
    case = CASES["lstm-semeniuta"]
    status, out = run_script(repro_script(snippet(case), case, "semeniuta.state.carried_undropped"))
    assert status == 2, out

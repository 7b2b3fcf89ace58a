"""The boundary-rate modes (``rate_zero``, ``rate_tiny``, ``rate_large``, ``rate_one``): how a case's rates are
rewritten, and how the engine records a layer that refuses rate 1.0 (a refusal, not a crash)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.keras_cases import keras_cases
from dropspec.adapters.reference import ReferenceAdapter
from dropspec.engine import Suite, observe
from dropspec.modes import set_rates, with_mode
from dropspec.reference import Params, Trace

from .mutants import rate_cases


def test_set_rates_rewrites_the_frameworks_own_arguments() -> None:
    config = {
        "args": {"units": 8, "dropout": 0.25, "recurrent_dropout": 0.0, "return_sequences": True},
        "before": {"layer": "Dropout", "args": {"rate": 0.25, "noise_shape": [16, 1, 8]}},
        "wrapper_args": {"input_keep_prob": 0.75, "output_keep_prob": 1.0},
        "p_input": 0.25,
        "input_shape": [16, 8, 8],
    }
    got = set_rates(config, 1.0)
    assert got["args"] == {"units": 8, "dropout": 1.0, "recurrent_dropout": 0.0, "return_sequences": True}
    assert got["before"]["args"] == {"rate": 1.0, "noise_shape": [16, 1, 8]}
    assert got["wrapper_args"] == {"input_keep_prob": 0.0, "output_keep_prob": 1.0}  # keep = 1 - rate
    assert got["p_input"] == 1.0 and got["input_shape"] == [16, 8, 8]


def test_a_rate_mode_rewrites_the_claim_the_config_and_the_label() -> None:
    case = next(c for c in keras_cases(use_cudnn=True) if c.id == "lstm-layer-both-impl2")
    one = with_mode(case, "rate_one")
    assert one.id == "lstm-layer-both-impl2+rate_one" and one.claim.rates == {"input": 1.0, "recurrent": 1.0}
    assert one.config["args"]["dropout"] == one.config["args"]["recurrent_dropout"] == 1.0
    assert "dropout=1.0, recurrent_dropout=1.0" in one.title and "0.25" not in one.title
    tiny = with_mode(case, "rate_tiny")
    assert tiny.batch == 128 and tiny.claim.rates == {"input": 0.01, "recurrent": 0.01}
    assert tiny.flag_group is None and tiny.rate_group is None


class RefusesOne(ReferenceAdapter):
    """Refuses rate 1.0 when called, as tf.nn.dropout does."""

    name = "refuses_one"

    def __init__(self) -> None:
        super().__init__(rate_cases("rate_one"))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        raise ValueError("rate must be a scalar tensor or a float in the range [0, 1), got 1")


@pytest.fixture(scope="module")
def refusal() -> dict[tuple[str, str], object]:
    return {(r.clause, r.case): r for r in Suite(RefusesOne()).run()}


def test_a_refusal_of_rate_one_is_recorded_as_what_it_is(refusal) -> None:
    one = refusal[("common.rates.one", "lstm-variational+rate_one")]
    assert one.status == "pass"
    assert one.message.startswith("refuses rate 1.0: ValueError: rate must be a scalar tensor")
    runs = refusal[("common.runs.documented_configuration", "lstm-variational+rate_one")]
    assert runs.status == "not_applicable" and "common.rates.one judges it" in runs.message
    # nothing else can be measured after a refusal, and nothing reads as a crash or a failure
    assert {r.status for r in refusal.values()} == {"pass", "not_applicable"}


def test_the_observation_says_what_the_layer_does_at_rate_one() -> None:
    """A refusal is no error (the reports would call it a crash); every unit dropped is named in words, since a
    mask of zeros fits every scheme's structure at once."""
    refused = observe(RefusesOne(), rate_cases("rate_one")[0])
    assert refused.error is None and refused.refusal == refused.behaviour.text
    assert refused.as_dict()["behaviour"].startswith("refuses rate 1.0: ValueError: rate must be a scalar tensor")
    dropped = observe(ReferenceAdapter(), next(c for c in rate_cases("rate_one") if c.id == "lstm-zaremba+rate_one"))
    assert dropped.behaviour.text == "drops every unit at input" and dropped.behaves_as == []


def test_a_crash_at_rate_one_is_not_a_refusal() -> None:
    from .mutants import CrashesAtOne

    results = {(r.clause, r.case): r for r in Suite(CrashesAtOne()).run()}
    one = results[("common.rates.one", "lstm-variational+rate_one")]
    assert one.status == "fail" and "does not name the rate: ZeroDivisionError" in one.message


def test_the_reference_passes_the_rate_clauses_at_every_boundary() -> None:
    cases = [c for c in ReferenceAdapter().cases() if c.mode.startswith("rate_")]
    assert {c.mode for c in cases} == {"rate_zero", "rate_tiny", "rate_large", "rate_one"}
    results = Suite(ReferenceAdapter(cases)).run()
    bad = [f"{r.clause} [{r.case}]: {r.message}" for r in results if r.status not in ("pass", "not_applicable")]
    assert not bad, "\n".join(bad)
    passed = {(r.clause, r.case.rpartition("+")[2]) for r in results if r.status == "pass"}
    assert ("common.rates.zero", "rate_zero") in passed and ("common.rates.one", "rate_one") in passed
    # the scheme's rate and scale clauses judge the tiny and the large rate
    for mode in ("rate_tiny", "rate_large"):
        assert {("variational.input.rate", mode), ("variational.input.scale", mode)} <= passed

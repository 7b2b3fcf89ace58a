"""The boundary-rate modes (``rate_zero``, ``rate_tiny``, ``rate_large``, ``rate_one``): how a case's rates are
rewritten, and how the engine records a layer that refuses rate 1.0 (a refusal, not a crash)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import pytest

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.keras3 import KerasTFAdapter
from dropspec.adapters.keras_cases import keras_cases
from dropspec.adapters.reference import ReferenceAdapter
from dropspec.engine import Suite, observe
from dropspec.modes import UndeclaredRates, expand, set_rates, with_mode
from dropspec.reference import Params, Trace
from dropspec.registry import BUILTIN, load_adapter

from .mutants import rate_cases


def test_set_rates_rewrites_the_frameworks_own_arguments() -> None:
    config = {
        "args": {"units": 8, "dropout": 0.25, "recurrent_dropout": 0.0, "return_sequences": True},
        "before": {"layer": "Dropout", "args": {"rate": 0.25, "noise_shape": [16, 1, 8]}},
        "wrapper_args": {"input_keep_prob": 0.75, "output_keep_prob": 1.0},
        "p_input": 0.25,
        "input_shape": [16, 8, 8],
    }
    drop, keep = frozenset({"dropout", "recurrent_dropout", "rate", "p_input"}), frozenset({"input_keep_prob"})
    got = set_rates(config, 1.0, drop, keep | {"output_keep_prob"})
    assert got["args"] == {"units": 8, "dropout": 1.0, "recurrent_dropout": 0.0, "return_sequences": True}
    assert got["before"]["args"] == {"rate": 1.0, "noise_shape": [16, 1, 8]}
    assert got["wrapper_args"] == {"input_keep_prob": 0.0, "output_keep_prob": 1.0}  # keep = 1 - rate
    assert got["p_input"] == 1.0 and got["input_shape"] == [16, 8, 8]
    # only the declared keys: the core knows no framework's argument names
    assert set_rates(config, 1.0, frozenset({"rate"}), frozenset()) == config | {
        "before": {"layer": "Dropout", "args": {"rate": 1.0, "noise_shape": [16, 1, 8]}}
    }


def test_a_rate_mode_rewrites_the_claim_the_config_and_the_label() -> None:
    case = next(c for c in keras_cases(use_cudnn=True) if c.id == "lstm-layer-both-impl2")
    one = with_mode(case, "rate_one", KerasTFAdapter)
    assert one.id == "lstm-layer-both-impl2+rate_one" and one.claim.rates == {"input": 1.0, "recurrent": 1.0}
    assert one.config["args"]["dropout"] == one.config["args"]["recurrent_dropout"] == 1.0
    assert "dropout=1.0, recurrent_dropout=1.0" in one.title and "0.25" not in one.title
    tiny = with_mode(case, "rate_tiny", KerasTFAdapter)
    assert tiny.batch == 128 and tiny.claim.rates == {"input": 0.01, "recurrent": 0.01}
    assert tiny.flag_group is None and tiny.rate_group is None
    assert tiny.label.endswith("with every rate set to 0.01 (a batch of 128)")


@pytest.mark.parametrize(("inputs", "units", "batch"), [(8, 8, 128), (16, 16, 64), (64, 64, 16), (8, 64, 128)])
def test_the_tiny_rate_batch_gives_the_narrowest_site_2048_draws(inputs: int, units: int, batch: int) -> None:
    # one mask per sample at a site of min(inputs, units) units, over two calls: about 20 dropped at 0.01
    case = next(c for c in keras_cases(use_cudnn=True) if c.id == "lstm-layer-both-impl2")
    cell = replace(case.cell, input_size=inputs, hidden_size=units)
    tiny = with_mode(replace(case, cell=cell, batch=4), "rate_tiny", KerasTFAdapter)
    assert tiny.batch == batch and tiny.batch * 2 * min(inputs, units) >= 2048
    assert tiny.label.endswith(f"(a batch of {batch})")


class Undeclared(ReferenceAdapter):
    """Asks for rate modes but inherits no declaration of the CONFIG keys that hold its rates."""

    name = "undeclared"
    rate_keys = None  # type: ignore[assignment]
    keep_keys = None  # type: ignore[assignment]


def test_an_adapter_that_declares_no_rate_keys_cannot_ask_for_a_rate_mode() -> None:
    case = next(c for c in keras_cases(use_cudnn=True) if c.id == "lstm-layer-both-impl2")
    with pytest.raises(UndeclaredRates) as raised:
        expand([case], {"batch_one": lambda c: True, "rate_one": lambda c: True}, Undeclared())
    message = str(raised.value)
    assert "adapter 'undeclared' (tests.test_rates.Undeclared)" in message and "'rate_one'" in message
    assert "class attributes rate_keys" in message and "keep_keys" in message
    # the other modes need no declaration
    assert [c.id for c in expand([case], {"batch_one": lambda c: True}, Undeclared())][-1].endswith("+batch_one")


def test_a_declaration_that_misses_the_cases_rate_is_refused() -> None:
    """A rate mode that would leave the framework's arguments as they were (a key missing from the declaration)
    is an error, not a case whose claim says 1.0 while the layer still drops at 0.25."""
    case = next(c for c in keras_cases(use_cudnn=True) if c.id == "lstm-layer-both-impl2")

    class Partial(Undeclared):
        name = "partial"
        rate_keys = frozenset({"rate"})

    with pytest.raises(UndeclaredRates, match=r"adapter 'partial' .* changes no rate in the CONFIG of case"):
        with_mode(case, "rate_one", Partial)


def _numbers(config: Mapping[str, object]) -> Iterator[tuple[str, object]]:
    for key, value in config.items():
        if isinstance(value, Mapping):
            yield from _numbers(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            yield key, value


NOT_RATES: dict[str, set[str]] = {}  # adapter -> float-valued CONFIG keys that are no rate (none yet)


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_adapter_declares_exactly_the_rate_keys_its_configs_use(name: str) -> None:
    """Every declared key is used by a config of the adapter, every float a config holds is under a declared key
    (a rate such as 0.25 is a float; a size is an int), and every case that drops something holds its rate at a
    declared key: so a rate mode rewrites exactly the framework's rate arguments."""
    adapter = load_adapter(name)
    drop, keep = adapter.rate_keys, adapter.keep_keys
    used: set[str] = set()
    for case in adapter.cases():
        numbers = list(_numbers(case.config))
        used |= {k for k, _ in numbers}
        floats = {k for k, v in numbers if isinstance(v, float)} - NOT_RATES.get(name, set())
        assert floats <= drop | keep, f"{name} {case.id}: CONFIG keys {sorted(floats - drop - keep)} hold floats"
        if any(p > 0 for p in case.claim.rates.values()):
            held = [k for k, v in numbers if k in drop and v > 0 or k in keep and v < 1]
            assert held, f"{name} {case.id} drops {case.claim.rates} at no declared key of {sorted(drop | keep)}"
    assert (drop | keep) <= used, f"{name} declares keys no config uses: {sorted((drop | keep) - used)}"


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


@pytest.mark.parametrize(
    "kind, message, refused",
    [
        ("ValueError", "`rate` must be a scalar tensor or a float in the range [0, 1). Received: rate=1.0", True),
        ("ValueError", "rate must be in [0, 1).", True),
        ("ValueError", "dropout probability has to be between 0 and 1, but got 1.0", True),
        ("ValueError", "input_keep_prob must be greater than 0", True),
        # the rate as part of another word is no refusal: a crash that happens to say "iterate" or "generate"
        ("TypeError", "cannot iterate over NoneType", False),
        ("RuntimeError", "failed to generate the kernel", False),
        ("ZeroDivisionError", "float division by zero", False),
    ],
)
def test_a_refusal_names_the_rate_as_a_word(kind: str, message: str, refused: bool) -> None:
    from dropspec.messages import rate_one_error

    broken, observed, _ = rate_one_error(kind, message)
    assert (broken == 0) == refused, observed
    assert observed.startswith("refuses rate 1.0" if refused else "raises at rate 1.0")


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


def test_a_keep_probability_reads_as_the_user_writes_it() -> None:
    """The DropoutWrapper takes keep probabilities: a boundary rate sets them to 1 - rate, rounded as written
    (0.1, not 0.09999999999999998), in its arguments and in the label the card shows."""
    from dropspec.adapters.dropout_wrapper import DropoutWrapperAdapter

    cases = {c.mode: c for c in DropoutWrapperAdapter().cases() if c.id.startswith("keras2-lstm-input+rate_")}
    for mode, keep in {"rate_zero": 1.0, "rate_tiny": 0.99, "rate_large": 0.1, "rate_one": 0.0}.items():
        assert cases[mode].config["wrapper_args"] == {"input_keep_prob": keep}, mode
        assert f"input_keep_prob={keep!r})" in cases[mode].label and "0.75" not in cases[mode].label, cases[mode].label

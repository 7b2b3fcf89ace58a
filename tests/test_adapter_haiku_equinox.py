"""The Haiku and Equinox adapters: their model modules are framework-only, their catalogues say that no documented
recipe exists, inference equals the reference (the parameter mapping, Haiku's i,g,f,o LSTM with its +1 forget bias
and its z-inverted, reset-before GRU included), and a case's repro run on its own in a fresh interpreter gives bit
for bit what run() gives. Framework tests are skipped, with the reason, where the package is not installed."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dropspec.adapters.base import MODELS_DIR, CallInputs, ModelAdapter
from dropspec.adapters.equinox_jax import EquinoxAdapter
from dropspec.adapters.haiku_jax import HaikuAdapter
from dropspec.case import Case
from dropspec.modes import MODES, RATE_MODES
from dropspec.reference import Params, forward

INSTALL = "`pip install jax==0.10.2 jaxlib==0.10.2 dm-haiku==0.0.17 equinox==0.13.8`, or run `tox -e jax`"
PACKAGE = {HaikuAdapter: "haiku", EquinoxAdapter: "equinox"}
ADAPTERS = tuple(PACKAGE)


def needs(adapter: type[ModelAdapter]) -> pytest.MarkDecorator:
    missing = importlib.util.find_spec(PACKAGE[adapter]) is None
    return pytest.mark.skipif(missing, reason=f"{PACKAGE[adapter]} is not installed: {INSTALL}")


def with_package(pairs: list[tuple[type[ModelAdapter], str]]) -> list:
    return [pytest.param(a, case_id, marks=needs(a), id=f"{a.name}-{case_id}") for a, case_id in pairs]


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_model_module_imports_only_its_framework(adapter) -> None:
    tree = ast.parse((MODELS_DIR / adapter.model_module).read_text())
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert PACKAGE[adapter] in imported, "the check must see the module's imports"
    allowed = ("jax", PACKAGE[adapter], "numpy", "functools", "json", "io")
    stray = sorted(m for m in imported if m.split(".")[0] not in allowed)
    assert not stray, f"{adapter.model_module} imports {stray}: a model module holds framework code only"


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_catalogue_measures_both_keys_at_both_sites_and_says_no_recipe_is_documented(adapter) -> None:
    cases = adapter().cases()
    assert len({c.id for c in cases}) == len(cases), "case ids must be unique: the baseline compares by id"
    for kind in ("lstm", "gru"):
        spellings = {(c.config["dropout"]["site"], c.config["dropout"]["keys"]) for c in cases if c.cell.kind == kind}
        assert spellings == {(s, k) for s in ("input", "state") for k in ("per_step", "per_sequence")}, kind
    for case in cases:
        assert "no documented claim exists" in case.claim.doc, f"{case.id}: the claim must say it is not documented"
        assert "https://" in case.claim.doc, f"{case.id}: the claim must link the documentation it quotes"
    # call modes: jit is a mode of one eager configuration, and every variant differs from its eager case only in
    # its mode (and the batch of batch_one), so common.modes.* compares like with like
    by_id = {c.id: c for c in cases}
    variants = [c for c in cases if c.mode != "eager"]
    assert any(c.mode in ("haiku_jit", "eqx_filter_jit") for c in variants), "jit changes no mask: measure it"
    for variant in variants:
        if variant.mode in RATE_MODES:  # a boundary rate is its own configuration, in no mode group
            base, rate = by_id[variant.id.rsplit("+", 1)[0]], MODES[variant.mode].rate
            assert variant.mode_group is None and variant.cell == base.cell, variant.id
            assert variant.claim.rates == {s: rate if p > 0 else p for s, p in base.claim.rates.items()}, variant.id
            dropout = variant.config["dropout"]  # the framework's own argument changed too: hk's rate, eqx's p
            assert dropout.get("rate", dropout.get("p")) == rate, variant.id
            continue
        eager = by_id[variant.mode_group]
        assert variant.id == f"{eager.id}+{variant.mode}" and (eager.mode, eager.mode_group) == ("eager", eager.id)
        assert variant.config == dict(eager.config, mode=variant.mode), variant.id
        assert (variant.claim, variant.cell) == (eager.claim, eager.cell), variant.id
        assert variant.batch == (1 if variant.mode == "batch_one" else eager.batch), variant.id
    jitted = [c for c in cases if c.mode in ("haiku_jit", "eqx_filter_jit")]
    assert all(by_id[c.mode_group].config["jit"] is False for c in jitted), "the jit mode's partner must be eager"


def _case(adapter: ModelAdapter, case_id: str) -> Case:
    return next(c for c in adapter.cases() if c.id == case_id)


def _inputs(case: Case, rng: np.random.Generator) -> tuple[Params, CallInputs]:
    params = Params.random(case.cell, rng)
    shape = (case.batch, case.cell.hidden_size)
    x = rng.standard_normal((case.steps, case.batch, case.cell.input_size))
    h0, c0 = 0.5 * rng.standard_normal(shape), 0.5 * rng.standard_normal(shape)
    return params, CallInputs(x, h0, c0 if case.cell.kind == "lstm" else None)


CASES = [
    (HaikuAdapter, "lstm-input-key_per_step-dynamic_unroll"),
    (HaikuAdapter, "gru-state-key_per_sequence-static_unroll"),
    (EquinoxAdapter, "lstm-state-key_per_step"),
    (EquinoxAdapter, "gru-input-key_per_sequence"),
]


@pytest.mark.parametrize(("adapter", "case_id"), with_package(CASES))
def test_inference_equals_reference_and_training_drops(adapter, case_id) -> None:
    a = adapter()
    case = _case(a, case_id)
    params, call = _inputs(case, np.random.default_rng(0))
    assert np.all(params.b_hh != 0), "every bias must be non-zero, or a dropped one would go unseen"
    want = forward(case.cell, params, call.x, call.h0, call.c0)
    got = a.run(case, params, [call], seed=3, training=False)[0]
    np.testing.assert_allclose(got.y, want.y, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(got.h, want.h, rtol=2e-3, atol=2e-4)
    if want.c is not None:
        np.testing.assert_allclose(got.c, want.c, rtol=2e-3, atol=2e-4)
    trained = a.run(case, params, [call], seed=3, training=True)[0]
    assert np.abs(trained.y - want.y).max() > 1e-2, "training must drop something"


# what a user appends to a repro to run the case on given weights and inputs
MAIN = """
d = np.load(INPUTS)
out = {}
for training in (True, False):
    model = build(CONFIG, SEED)
    load(model, d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"])
    for n in range(2):
        y, h, c = call(model, d["x"], d["h0"], d["c0"] if "c0" in d else None, training)
        out.update({f"{training}-{n}-y": y, f"{training}-{n}-h": h})
np.savez(OUTPUT, **out)
"""


@pytest.mark.parametrize(
    ("adapter", "case_id"),
    with_package(
        [
            (HaikuAdapter, "lstm-state-key_per_sequence-dynamic_unroll"),
            (EquinoxAdapter, "gru-state-key_per_step"),
            # call modes whose code is the repro's own: vmap with a key per example, a checkpoint round trip
            (HaikuAdapter, "lstm-state-key_per_sequence-dynamic_unroll+haiku_vmap"),
            (EquinoxAdapter, "lstm-input-key_per_step+eqx_serialise"),
        ]
    ),
)
def test_the_repro_runs_standalone_bit_for_bit_as_run_does(adapter, case_id, tmp_path: Path) -> None:
    a = adapter()
    case = _case(a, case_id)
    params, call = _inputs(case, np.random.default_rng(1))
    arrays = {"w_ih": params.w_ih, "w_hh": params.w_hh, "b_ih": params.b_ih, "b_hh": params.b_hh}
    arrays |= {"x": call.x, "h0": call.h0} | ({"c0": call.c0} if call.c0 is not None else {})
    np.savez(tmp_path / "inputs.npz", **arrays)
    constants = f"INPUTS, OUTPUT, SEED = {str(tmp_path / 'inputs.npz')!r}, {str(tmp_path / 'out.npz')!r}, {case.seed}"
    script = a.repro(case) + "\n" + constants + "\n" + MAIN
    assert "import dropspec" not in script and "from dropspec" not in script, "a repro must not need dropspec"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, f"{case.id}: exit {done.returncode}\n{done.stderr[-3000:]}"
    got = np.load(tmp_path / "out.npz")
    for training in (True, False):
        for n, trace in enumerate(a.run(case, params, [call, call], seed=case.seed, training=training)):
            np.testing.assert_array_equal(got[f"{training}-{n}-y"], trace.y)
            np.testing.assert_array_equal(got[f"{training}-{n}-h"], trace.h)
    assert not np.array_equal(got["True-0-y"], got["True-1-y"]), "the second training call must draw new masks"

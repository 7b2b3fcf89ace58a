"""Zoneout (issue 17, item 6): the reference's update masks by hand, the expectation at inference, the repro model
against the oracle, and recovery through the zone probes (recovery.zone)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from dropspec.adapters.base import MODELS_DIR, CallInputs
from dropspec.adapters.reference import ReferenceAdapter, reference_cases, reference_rules
from dropspec.engine import inference_oracle
from dropspec.fingerprint import fingerprint
from dropspec.recovery import recover
from dropspec.reference import Cell, Masks, Params, Trace, forward, sigmoid
from dropspec.spec import default_spec

CASES = {c.id: c for c in reference_cases() if c.claim.scheme == "zoneout" and c.mode == "eager"}


def test_lstm_step_by_hand() -> None:
    cell, rng = Cell("lstm", 3, 2), np.random.default_rng(0)
    p = Params.random(cell, rng)
    x, h0, c0 = rng.standard_normal((1, 2, 3)), rng.standard_normal((2, 2)), rng.standard_normal((2, 2))
    u_h, u_c = np.array([[[1.0, 0.0], [0.0, 1.0]]]), np.array([[[0.0, 1.0], [1.0, 0.0]]])
    a = x[0] @ p.w_ih.T + p.b_ih + h0 @ p.w_hh.T + p.b_hh
    i, f, g, o = sigmoid(a[:, :2]), sigmoid(a[:, 2:4]), np.tanh(a[:, 4:6]), sigmoid(a[:, 6:])
    c_new = f * c0 + i * g
    h_new = o * np.tanh(c_new)  # from the unzoned cell state, as the paper and its authors' code do
    got = forward(cell, p, x, h0, c0, Masks(zone_h=u_h, zone_c=u_c))
    np.testing.assert_allclose(got.y[0], np.where(u_h[0] == 1, h_new, h0), rtol=1e-12)
    np.testing.assert_allclose(got.h, np.where(u_h[0] == 1, h_new, h0), rtol=1e-12)
    np.testing.assert_allclose(got.c, np.where(u_c[0] == 1, c_new, c0), rtol=1e-12)


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_inference_is_the_expectation(case_id: str) -> None:
    case = CASES[case_id]
    masks = inference_oracle(case, default_spec())
    p = case.claim.rates["zone_h"]
    assert masks.zone_h is not None and np.all(masks.zone_h == 1 - p)
    assert (masks.zone_c is not None) == (case.cell.kind == "lstm")
    rng = np.random.default_rng(1)
    params = Params.random(case.cell, rng)
    x, h0 = rng.standard_normal((case.steps, 3, case.cell.input_size)), rng.standard_normal((3, 16))
    c0 = rng.standard_normal((3, 16)) if case.cell.kind == "lstm" else None
    got = ReferenceAdapter().run(case, params, [CallInputs(x=x, h0=h0, c0=c0)], seed=case.seed, training=False)[0]
    # h_t = p h_{t-1} + (1 - p) h~_t, step by step
    h, c = h0, c0
    for t in range(case.steps):
        step = forward(case.cell, params, x[t : t + 1], h, c)
        h = p * h + (1 - p) * step.h
        c = None if c is None else p * c + (1 - p) * step.c
        np.testing.assert_allclose(got.y[t], h, rtol=1e-12, atol=1e-14)


def repro_model():
    """models/reference_model.py, the model of the reference's repro scripts, as a module."""
    spec = importlib.util.spec_from_file_location("reference_model", MODELS_DIR / "reference_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_the_repro_model_zones_out_as_the_oracle(case_id: str) -> None:
    """The repro scripts' model (its own sampler) at inference equals the oracle, and in training recovery
    reads zoneout from it: per step, per sample, unscaled, at the rate of the case."""
    case, module = CASES[case_id], repro_model()
    config = {"kind": case.cell.kind, "reset_after": case.cell.reset_after, "rules": reference_rules(case)}

    def run(params: Params, calls, training: bool = True) -> list[Trace]:
        model = module.build(config, case.seed)
        module.load(model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
        return [Trace(*module.call(model, c.x, c.h0, c.c0, training)) for c in calls]

    rng = np.random.default_rng(2)
    params = Params.random(case.cell, rng)
    shape = (case.batch, case.cell.hidden_size)
    c0 = rng.standard_normal(shape) if case.cell.kind == "lstm" else None
    call = CallInputs(x=rng.standard_normal((case.steps, case.batch, 16)), h0=rng.standard_normal(shape), c0=c0)
    got = run(params, [call], training=False)[0]
    want = ReferenceAdapter().run(case, params, [call], seed=case.seed, training=False)[0]
    np.testing.assert_allclose(got.y, want.y, rtol=1e-12, atol=1e-14)
    rec = recover(case.cell, case.steps, case.batch, 2, lambda name, p, calls: run(p, calls))
    fp = fingerprint(case.cell, rec.masks)
    assert set(fp.sites) == set(case.claim.rates)
    for site in fp.sites.values():
        assert (site.resample, site.batch, site.scale) == ("per_step", "per_sample", 1.0), site
        assert abs(site.rate - 0.25) < 0.03, site


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_recovery_reads_the_zone_masks(case_id: str) -> None:
    case, adapter = CASES[case_id], ReferenceAdapter()
    rec = recover(
        case.cell, case.steps, case.batch, 2, lambda n, p, c: adapter.run(case, p, c, seed=case.seed, training=True)
    )
    drawn = adapter.masks(case, 2, np.random.default_rng(case.seed))
    for call in range(2):
        for site in case.cell.sites:
            want, got = drawn[call].get(site), rec.masks[call].get(site)
            assert (want is None) == (got is None), site
            if want is not None:
                np.testing.assert_array_equal(got, want, err_msg=site)
    fp = fingerprint(case.cell, rec.masks)
    assert set(fp.sites) == set(case.claim.rates)
    for site in fp.sites.values():
        assert (site.resample, site.batch, site.scale) == ("per_step", "per_sample", 1.0)
        assert abs(site.rate - 0.25) < 0.02


def test_a_layer_that_does_not_zone_out_reads_no_zone_mask() -> None:
    """The zone probes of a layer with other masks read values that are not 0 or 1, and leave the zone sites
    undropped: every other site is the other probes' to read."""
    adapter = ReferenceAdapter()
    for case in reference_cases():
        if case.mode != "eager" or case.cell.stacked or case.claim.scheme in ("zoneout", "weight_drop"):
            continue
        if case.cell.name not in ("lstm", "gru_reset_after"):
            continue
        rec = recover(
            case.cell,
            case.steps,
            case.batch,
            2,
            lambda n, p, c, case=case: adapter.run(case, p, c, seed=case.seed, training=True),
        )
        assert all(m.zone_h is None and m.zone_c is None for m in rec.masks), case.id

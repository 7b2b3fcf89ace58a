"""The oracle, checked against steps computed by hand and against properties that must hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dropspec.masks import canonical, sample_masks
from dropspec.reference import Cell, Masks, Params, forward, sigmoid
from dropspec.spec import MaskRule


def one_step_params(cell: Cell) -> Params:
    p = Params.zeros(cell)
    rng = np.random.default_rng(0)
    for a in (p.w_ih, p.w_hh, p.b_ih, p.b_hh):
        a[...] = rng.uniform(-1, 1, a.shape)
    return p


def test_lstm_step_by_hand() -> None:
    cell = Cell("lstm", 2, 2)
    p = one_step_params(cell)
    x, h0, c0 = np.array([0.3, -0.7]), np.array([0.1, 0.2]), np.array([-0.4, 0.5])
    mx, mh = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    a = p.w_ih @ (x * mx) + p.b_ih + p.w_hh @ (h0 * mh) + p.b_hh
    i, f, g, o = 1 / (1 + np.exp(-a[0:2])), 1 / (1 + np.exp(-a[2:4])), np.tanh(a[4:6]), 1 / (1 + np.exp(-a[6:8]))
    c = f * c0 + i * g
    h = o * np.tanh(c)
    masks = Masks(input=np.broadcast_to(mx, (4, 1, 1, 2)), recurrent=np.broadcast_to(mh, (4, 1, 1, 2)))
    got = forward(cell, p, x[None, None], h0[None], c0[None], masks)
    np.testing.assert_allclose(got.y[0, 0], h, rtol=1e-14)
    np.testing.assert_allclose(got.c[0], c, rtol=1e-14)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_step_by_hand(reset_after: bool) -> None:
    cell = Cell("gru", 2, 2, reset_after=reset_after)
    p = one_step_params(cell)
    x, h0 = np.array([0.3, -0.7]), np.array([0.1, 0.2])
    r = 1 / (1 + np.exp(-(p.w_ih[0:2] @ x + p.b_ih[0:2] + p.w_hh[0:2] @ h0 + p.b_hh[0:2])))
    z = 1 / (1 + np.exp(-(p.w_ih[2:4] @ x + p.b_ih[2:4] + p.w_hh[2:4] @ h0 + p.b_hh[2:4])))
    if reset_after:
        n = np.tanh(p.w_ih[4:6] @ x + p.b_ih[4:6] + r * (p.w_hh[4:6] @ h0 + p.b_hh[4:6]))
    else:
        n = np.tanh(p.w_ih[4:6] @ x + p.b_ih[4:6] + p.w_hh[4:6] @ (r * h0) + p.b_hh[4:6])
    h = z * h0 + (1 - z) * n
    got = forward(cell, p, x[None, None], h0[None])
    np.testing.assert_allclose(got.y[0, 0], h, rtol=1e-14)


def test_rnn_step_by_hand_with_output_and_carried_masks() -> None:
    cell = Cell("rnn", 2, 2)
    p = one_step_params(cell)
    x, h0 = np.array([[0.3, -0.7], [0.2, 0.1]]), np.array([0.1, 0.2])
    h1 = np.tanh(p.w_ih @ x[0] + p.b_ih + p.w_hh @ h0 + p.b_hh)
    carry = np.array([0.0, 2.0])
    h2 = np.tanh(p.w_ih @ x[1] + p.b_ih + p.w_hh @ (carry * h1) + p.b_hh)
    out = np.array([2.0, 0.0])
    masks = Masks(output=np.broadcast_to(out, (2, 1, 2)), carry_h=np.stack([carry, carry])[:, None])
    got = forward(cell, p, x[:, None], h0[None], masks=masks)
    np.testing.assert_allclose(got.y[:, 0], [out * h1, out * h2], rtol=1e-14)
    np.testing.assert_allclose(got.h[0], carry * h2, rtol=1e-14)


def test_sigmoid_saturates_exactly() -> None:
    assert sigmoid(np.array(40.0)) == 1.0 and sigmoid(np.array(-40.0)) == 0.0


cells = st.sampled_from([Cell("rnn", 3, 4), Cell("lstm", 3, 4), Cell("gru", 3, 4, True), Cell("gru", 3, 4, False)])


@settings(max_examples=25, deadline=None)
@given(cell=cells, seed=st.integers(0, 2**31 - 1))
def test_all_ones_masks_change_nothing(cell: Cell, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, x, h0 = Params.random(cell, rng), rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    ones = Masks(
        **{
            s: np.ones((len(cell.gates), 5, 2, 3 if s == "input" else 4))
            if s in ("input", "recurrent")
            else np.ones((5, 2, 4))
            for s in cell.sites
        }
    )
    a, b = forward(cell, p, x, h0), forward(cell, p, x, h0, masks=ones)
    np.testing.assert_allclose(a.y, b.y, rtol=1e-13)


@settings(max_examples=25, deadline=None)
@given(cell=cells, seed=st.integers(0, 2**31 - 1), per_gate=st.booleans())
def test_shared_and_per_gate_paths_agree(cell: Cell, seed: int, per_gate: bool) -> None:
    """The fast path for gate-shared masks and the per-gate path compute the same thing."""
    rng = np.random.default_rng(seed)
    p, x, h0 = Params.random(cell, rng), rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
    rules = [MaskRule(site=s, gates="shared", resample="per_step") for s in ("input", "recurrent")]
    shared = sample_masks(cell, rules, {"input": 0.3, "recurrent": 0.3}, 5, 2, 1, rng)[0]
    split = Masks(input=np.array(shared.input), recurrent=np.array(shared.recurrent))
    split.input[-1, 0, 0, 0] = np.nextafter(split.input[-1, 0, 0, 0], np.inf)  # one ulp: forces the per-gate path
    np.testing.assert_allclose(forward(cell, p, x, h0, masks=shared).y, forward(cell, p, x, h0, masks=split).y)


@settings(max_examples=25, deadline=None)
@given(cell=cells, seed=st.integers(0, 2**31 - 1))
def test_canonical_form_is_observationally_equivalent(cell: Cell, seed: int) -> None:
    """Folding the carried-h mask into the recurrent mask changes no output and no returned state."""
    rng = np.random.default_rng(seed)
    p, x, h0 = Params.random(cell, rng), rng.normal(size=(6, 2, 3)), rng.normal(size=(2, 4))
    rules = [
        MaskRule(site="carry_h", resample="per_step"),
        MaskRule(site="recurrent", gates="per_gate", resample="per_step"),
    ]
    masks = sample_masks(cell, rules, {"carry_h": 0.4, "recurrent": 0.3}, 6, 2, 1, rng)[0]
    a = forward(cell, p, x, h0, masks=masks)
    b = forward(cell, p, x, h0, masks=canonical(cell, masks, 6, 2))
    np.testing.assert_allclose(a.y, b.y, rtol=1e-12)
    np.testing.assert_allclose(a.h, b.h, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), p=st.floats(0.05, 0.9))
def test_sampled_masks_follow_their_rule(seed: int, p: float) -> None:
    cell = Cell("lstm", 3, 4)
    rule = MaskRule(site="input", gates="per_gate", resample="per_sequence", batch="per_sample")
    m = sample_masks(cell, [rule], {"input": p}, 7, 5, 2, np.random.default_rng(seed))
    values = np.unique(np.concatenate([np.unique(c.input) for c in m]))
    assert set(np.round(values, 12)) <= {0.0, round(1 / (1 - p), 12)}
    assert np.all(m[0].input == m[0].input[:, :1])  # the same at every step


@pytest.mark.parametrize(
    "cell",
    [Cell("gru", 5, 4, reset_after=False), Cell("lstm", 3, 4), Cell("gru", 3, 4, layers=2, directions=2)],
    ids=lambda c: c.name,
)
def test_calls_side_by_side_equal_calls_one_by_one(cell: Cell) -> None:
    from dropspec.masks import sample_case_masks
    from dropspec.reference import run_calls, run_cell

    rng = np.random.default_rng(3)
    params = (
        [Params.random(cell.layer(i), rng) for i in range(cell.parts)] if cell.stacked else Params.random(cell, rng)
    )
    rules = [MaskRule(site="input", resample="per_sequence"), MaskRule(site="candidate", resample="per_step")]
    if cell.kind == "gru" and not cell.stacked:
        rules.append(MaskRule(site="state_in", resample="per_sequence"))
    rates = (
        {"input": 0.3, "candidate": 0.2, "state_in": 0.25} if not cell.stacked else {"input@2": 0.3, "input@2r": 0.3}
    )
    masks = sample_case_masks(cell, rules, rates, 6, 3, 2, rng)
    if not cell.stacked:
        masks[1] = masks[1].with_site("input", None)  # a site dropped in one call only
    shape = (cell.parts, 3, 4) if cell.stacked else (3, 4)
    inputs = [
        (rng.standard_normal((6, 3, 5 if cell.input_size == 5 else 3)), rng.standard_normal(shape), None)
        for _ in range(2)
    ]
    if cell.kind == "lstm":
        inputs = [(x, h0, rng.standard_normal(shape)) for x, h0, _ in inputs]
    together = run_calls(cell, params, inputs, masks)
    for (x, h0, c0), m, got in zip(inputs, masks, together, strict=True):
        want = run_cell(cell, params, x, h0, c0, m)
        np.testing.assert_allclose(got.y, want.y, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(got.h, want.h, rtol=1e-12, atol=1e-12)
        if want.c is not None:
            np.testing.assert_allclose(got.c, want.c, rtol=1e-12, atol=1e-12)

"""The JAX adapters map the canonical parameters exactly and seed reproducibly (skipped without flax); their
model modules are framework-only and their call-mode variants differ from their eager cases only in the mode."""

from __future__ import annotations

import ast
import importlib.util

import numpy as np
import pytest

from dropspec.adapters.base import MODELS_DIR, CallInputs
from dropspec.adapters.flax_jax import (
    FlaxLinenAdapter,
    FlaxNNXAdapter,
    JaxRNNAdapter,
    UnrepresentableParams,
)
from dropspec.reference import Params, forward

needs_flax = pytest.mark.skipif(
    importlib.util.find_spec("flax") is None,
    reason="flax is not installed: `pip install jax==0.10.2 jaxlib==0.10.2 flax==0.12.8`, or run `tox -e jax`",
)
ADAPTERS = (FlaxLinenAdapter, FlaxNNXAdapter, JaxRNNAdapter)


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_model_module_imports_only_its_framework(adapter) -> None:
    tree = ast.parse((MODELS_DIR / adapter.model_module).read_text())
    imported = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported, "the check must see the module's imports"
    allowed = ("jax", "flax", "numpy", "functools", "json")
    stray = sorted(m for m in imported if m.split(".")[0] not in allowed)
    assert not stray, f"{adapter.model_module} imports {stray}: a model module holds framework code only"


@pytest.mark.parametrize("adapter", ADAPTERS, ids=lambda a: a.name)
def test_the_catalogue_ids_are_unique_and_call_modes_differ_only_in_their_mode(adapter) -> None:
    cases = {c.id: c for c in adapter().cases()}
    assert len(cases) == len(adapter().cases()), "case ids must be unique: the baseline compares by id"
    variants = [c for c in cases.values() if c.mode != "eager"]
    assert bool([c for c in variants if c.mode == "flax_jit"]) == (adapter is not JaxRNNAdapter)
    for variant in variants:
        if variant.mode.startswith("rate_"):  # a boundary rate changes the rates on purpose: tests/test_rates.py
            eager = cases[variant.id.rpartition("+")[0]]
            assert variant.mode_group is None and variant.claim.scheme == eager.claim.scheme
            continue
        eager = cases[variant.mode_group]
        assert variant.id == f"{eager.id}+{variant.mode}" and (eager.mode, eager.mode_group) == ("eager", eager.id)
        assert variant.config == dict(eager.config, mode=variant.mode)
        assert (variant.claim, variant.cell) == (eager.claim, eager.cell)
        if variant.mode == "flax_jit":
            assert eager.config["jit"] is False, f"{variant.id}: flax_jit is the mode of a configuration called eagerly"


def _calls(case, rng, n=2):
    shape = (case.batch, case.cell.hidden_size)
    return [
        CallInputs(
            x=rng.standard_normal((case.steps, case.batch, case.cell.input_size)),
            h0=0.5 * rng.standard_normal(shape),
            c0=0.5 * rng.standard_normal(shape) if case.cell.kind == "lstm" else None,
        )
        for _ in range(n)
    ]


def _case(adapter, case_id):
    return next(c for c in adapter.cases() if c.id == case_id)


@needs_flax
@pytest.mark.parametrize(
    ("adapter", "case_id"),
    [
        (FlaxLinenAdapter, "lstm-cell_input-split_dropout_true"),
        (FlaxLinenAdapter, "optlstm-dropout_before_rnn"),
        (FlaxLinenAdapter, "gru-dropout_before_rnn"),
        (FlaxNNXAdapter, "lstm-recurrent-broadcast_rngs"),
        (FlaxNNXAdapter, "optlstm-input"),
        (JaxRNNAdapter, "lstm_ref-dropout_0"),
    ],
)
def test_inference_equals_reference(adapter, case_id):
    a = adapter()
    case = _case(a, case_id)
    rng = np.random.default_rng(0)
    params = Params.random(case.cell, rng)
    calls = _calls(case, rng)
    for got, c in zip(a.run(case, params, calls, seed=3, training=False), calls):
        want = forward(case.cell, params, c.x, c.h0, c.c0)
        np.testing.assert_allclose(got.y, want.y, rtol=2e-3, atol=2e-4)
        np.testing.assert_allclose(got.h, want.h, rtol=2e-3, atol=2e-4)
        if want.c is not None:
            np.testing.assert_allclose(got.c, want.c, rtol=2e-3, atol=2e-4)


@needs_flax
@pytest.mark.parametrize(
    ("adapter", "case_id"),
    [(FlaxLinenAdapter, "lstm-cell_input-split_dropout_true"), (FlaxNNXAdapter, "lstm-input")],
)
def test_same_seed_same_masks_new_call_new_masks(adapter, case_id):
    a = adapter()
    case = _case(a, case_id)
    rng = np.random.default_rng(1)
    params = Params.random(case.cell, rng)
    calls = _calls(case, rng, n=1) * 2  # the same inputs twice: only the masks can differ
    first = a.run(case, params, calls, seed=5, training=True)
    again = a.run(case, params, calls, seed=5, training=True)
    other = a.run(case, params, calls, seed=6, training=True)
    np.testing.assert_array_equal(first[0].y, again[0].y)
    np.testing.assert_array_equal(first[1].y, again[1].y)
    assert not np.array_equal(first[0].y, first[1].y), "a second call must draw new masks"
    assert not np.array_equal(first[0].y, other[0].y), "another seed must draw other masks"


@needs_flax
def test_nnx_gru_refuses_a_b_hn_it_cannot_hold():
    a = FlaxNNXAdapter()
    case = _case(a, "gru-input")
    rng = np.random.default_rng(2)
    params = Params.random(case.cell, rng)
    assert not case.cell.b_hn and np.all(params.b_hh[params.rows(case.cell, "n")] == 0)  # the core keeps it 0
    calls = _calls(case, rng, n=1)
    params.b_hh[params.rows(case.cell, "n")] = 0.3  # a case that forgot to say b_hn=False is refused
    with pytest.raises(UnrepresentableParams):
        a.run(case, params, calls, seed=0, training=False)
    params.b_hh[params.rows(case.cell, "n")] = 0.0  # representable: must then match the reference exactly
    got = a.run(case, params, calls, seed=0, training=False)[0]
    want = forward(case.cell, params, calls[0].x, calls[0].h0)
    np.testing.assert_allclose(got.y, want.y, rtol=2e-3, atol=2e-4)


@needs_flax
@pytest.mark.parametrize(
    ("case_id", "training"),
    [("lstm-cell_recurrent-split_flip", False), ("gru-cell_input-split_default-rngs_dropout", True)],
)
def test_linen_rng_crashes_raise_from_run(case_id, training):
    """The documented spellings that crash (init without a 'params' rng in the scan, apply without one for
    the dropout collection) raise flax's own InvalidRngError out of run(), where the engine records it."""
    from flax.errors import InvalidRngError

    a = FlaxLinenAdapter()
    case = _case(a, case_id)
    rng = np.random.default_rng(3)
    params = Params.random(case.cell, rng)
    with pytest.raises(InvalidRngError):
        a.run(case, params, _calls(case, rng, n=1), seed=0, training=training)


@needs_flax
def test_cudnn_lstm_is_skipped_without_a_gpu_and_says_why():
    import jax

    a = JaxRNNAdapter()
    cudnn, ref = _case(a, "lstm_cudnn-dropout_0.25"), _case(a, "lstm_ref-dropout_0.25")
    assert a.case_unavailable(ref) is None
    reason = a.case_unavailable(cudnn)
    if jax.default_backend() in ("gpu", "cuda", "rocm"):
        assert reason is None
    else:
        assert reason and "needs a GPU" in reason and jax.default_backend() in reason

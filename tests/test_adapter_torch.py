"""The PyTorch adapter: its mapping and seeding, and the measured facts its notes rest on.

Skips (with the reason) where torch is not installed; the import test runs everywhere.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dropspec.adapters.torch import TorchAdapter, torch_cases, variational_cell_loop
from dropspec.engine import observe
from dropspec.masks import base_site
from dropspec.reference import Cell, Masks, Params, forward
from dropspec.spec import default_spec

REASON = TorchAdapter().unavailable_reason()
needs_torch = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_importing_the_adapter_does_not_import_torch() -> None:
    code = "import sys, dropspec.adapters.torch as a; a.torch_cases(); assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cases_are_unique_and_claim_known_schemes() -> None:
    cases, spec = torch_cases(), default_spec()
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        scheme = spec.scheme(case.claim.scheme)
        assert {base_site(k) for k in case.claim.rates} <= {m.site for m in scheme.masks}, case.id
        assert case.claim.doc and case.label


@needs_torch
@pytest.mark.parametrize(
    "case_id",
    [
        "lstm-L1-dropout0.25",
        "lstm-L1-dropout0.25-native",
        "gru-L1-dropout0.25-packed",
        "rnncell-zaremba-loop",
        "lstmcell-locked-loop-recurrent",
        "gru-locked-then-module",
    ],
)
def test_case_is_explained_and_behaves_as_claimed(case_id: str) -> None:
    adapter = TorchAdapter()
    case = next(c for c in adapter.cases() if c.id == case_id)
    obs = observe(adapter, case)
    assert obs.error is None, obs.error
    assert obs.inference_error <= 1.0 and obs.inference_deterministic
    assert obs.replay_error <= 1.0 and obs.seed_reproducible
    if case.claim.rates.get("recurrent", 1.0) > 0:  # input-only variational matches no full scheme
        assert case.claim.scheme in obs.behaves_as, obs.fingerprint.summary()


class SwappedGates(TorchAdapter):
    """A wrong mapping (LSTM i and f rows swapped): the inference check must catch it."""

    def run(self, case, params, calls, *, seed, training):  # type: ignore[override]
        h = case.cell.hidden_size
        w = params.w_ih.copy()
        w[: 2 * h] = np.concatenate([params.w_ih[h : 2 * h], params.w_ih[:h]])
        return super().run(case, Params(w, params.w_hh, params.b_ih, params.b_hh), calls, seed=seed, training=training)


@needs_torch
def test_a_wrong_mapping_fails_the_inference_check() -> None:
    adapter = SwappedGates()
    case = next(c for c in adapter.cases() if c.id == "lstm-L1-dropout0.0")
    assert observe(adapter, case).inference_error > 1.0


@needs_torch
def test_stacked_dropout_is_between_layers_and_the_same_on_both_cpu_kernels() -> None:
    """What nn.LSTM(num_layers=2, dropout=p) does (notes): layer 0, then F.dropout on its whole (T, B, H)
    output, then layer 1; the oneDNN and the native kernel draw the same mask for the same seed."""
    import torch

    torch.manual_seed(0)
    stack, l0, l1 = torch.nn.LSTM(4, 4, num_layers=2, dropout=0.5), torch.nn.LSTM(4, 4), torch.nn.LSTM(4, 4)
    with torch.no_grad():
        for name, prm in l0.named_parameters():
            prm.copy_(getattr(stack, name))
        for name, prm in l1.named_parameters():
            prm.copy_(getattr(stack, name.replace("_l0", "_l1")))
    x = torch.randn(6, 5, 4)
    outs = []
    for enabled in (True, False):
        with torch.backends.mkldnn.flags(enabled=enabled):
            torch.manual_seed(3)
            outs.append(stack(x)[0])
    torch.manual_seed(3)
    a = l0(x)[0]
    mask = torch.nn.functional.dropout(torch.ones_like(a), 0.5, training=True)
    manual = l1(a * mask)[0]
    assert torch.allclose(outs[0], outs[1], atol=1e-5) and torch.allclose(outs[1], manual, atol=1e-5)
    assert (mask != mask[:1]).any() and (mask != mask[:, :1]).any()  # per step and per sample


@needs_torch
def test_single_layer_dropout_draws_nothing() -> None:
    import torch

    for kind in ("RNN", "LSTM", "GRU"):
        with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
            module = getattr(torch.nn, kind)(4, 4, dropout=0.5)
        torch.manual_seed(0)
        before = torch.get_rng_state()
        module(torch.randn(3, 2, 4))
        after = torch.get_rng_state()
        torch.manual_seed(0)
        torch.randn(3, 2, 4)
        assert torch.equal(after, torch.get_rng_state()) and not torch.equal(before, after)


@needs_torch
def test_gru_cell_fed_a_masked_state_drops_the_memory_path() -> None:
    """nn.GRUCell(x_t, h * m): the mask also multiplies z * h_{t-1} and the initial state, so it is the
    reference with a carried-state mask (not the returned one) and a masked h0, not Gal's recurrent mask."""
    import torch

    cell, rng, steps, batch = Cell("gru", 8, 8), np.random.default_rng(0), 6, 4
    p = Params.random(cell, rng)
    x, h0 = rng.standard_normal((steps, batch, 8)), rng.standard_normal((batch, 8))
    gru = torch.nn.GRUCell(8, 8).double()
    with torch.no_grad():
        for name, value in (("weight_ih", p.w_ih), ("weight_hh", p.w_hh), ("bias_ih", p.b_ih), ("bias_hh", p.b_hh)):
            getattr(gru, name).copy_(torch.as_tensor(value))
    torch.manual_seed(3)
    ys, h = variational_cell_loop(gru, torch.as_tensor(x), torch.as_tensor(h0), 0.0, 0.5, True)
    torch.manual_seed(3)
    m = torch.empty(batch, 8, dtype=torch.float64).bernoulli_(0.5).numpy() / 0.5
    carry = np.broadcast_to(m, (steps, batch, 8)).copy()
    carry[-1] = 1.0
    want = forward(cell, p, x, h0 * m, None, Masks(carry_h=carry))
    got = torch.stack(ys).detach().numpy()
    assert np.allclose(got, want.y, atol=1e-10) and np.allclose(h.detach().numpy(), want.h, atol=1e-10)
    gal = forward(cell, p, x, h0, None, Masks(recurrent=np.broadcast_to(m, (3, steps, batch, 8))))
    assert not np.allclose(got, gal.y, atol=1e-3)


def test_third_party_adapters_name_their_package_when_missing() -> None:
    from dropspec.adapters.torch import FastaiAdapter, TorchNLPAdapter, weight_drop_cases

    for adapter, pip in ((TorchNLPAdapter(), "pytorch-nlp==0.5.0"), (FastaiAdapter(), "fastai==2.8.12")):
        reason = adapter.unavailable_reason()
        assert reason is None or pip in reason or "torch==2.13.0" in reason
        cases = adapter.cases()  # three locked-dropout cases, then the weight-drop wrappers
        assert len({c.id for c in cases}) == len(cases) == 3 + len(weight_drop_cases(adapter.name))

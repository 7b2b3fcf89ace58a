"""The PyTorch adapters: the catalogue, the repros, the mapping and seeding, and the measured facts the
catalogue's comments rest on.

Skips (with the reason) where torch is not installed; the import, catalogue and repro-text tests run everywhere.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dropspec.adapters.pytorch import FastaiAdapter, TorchAdapter, TorchNLPAdapter
from dropspec.adapters.torch_cases import torch_cases, weight_drop_cases
from dropspec.case import CallInputs
from dropspec.engine import observe, random_params
from dropspec.masks import base_site
from dropspec.reference import Cell, Masks, Params, forward
from dropspec.spec import default_spec

REASON = TorchAdapter().unavailable_reason()
needs_torch = pytest.mark.skipif(REASON is not None, reason=REASON or "")


ADAPTERS = (TorchAdapter, TorchNLPAdapter, FastaiAdapter)


def test_importing_the_adapters_does_not_import_torch() -> None:
    code = "import sys\nfrom dropspec.registry import load_adapter\nfor name in ('torch', 'torchnlp', 'fastai'):\n"
    code += "    a = load_adapter(name); [a.repro(c) for c in a.cases()]\nassert 'torch' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cases_are_unique_and_claim_known_schemes() -> None:
    cases, spec = torch_cases(), default_spec()
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        scheme = spec.scheme(case.claim.scheme)
        assert {base_site(k) for k in case.claim.rates} <= {m.site for m in scheme.masks}, case.id
        assert case.claim.doc and case.label


def test_a_modules_layers_and_directions_are_the_cases_cell() -> None:
    """The adapter loads parameters and states by the cell's parts: the module must have as many."""
    for adapter in ADAPTERS:
        for case in adapter().cases():
            args = case.config["args"]
            if "num_layers" in args:
                assert args["num_layers"] == case.cell.layers, case.id
                assert (2 if args.get("bidirectional") else 1) == case.cell.directions, case.id
            else:  # a cell in a user loop
                assert not case.cell.stacked and "loop" in case.config, case.id


def test_every_case_has_a_repro_with_its_config_and_title() -> None:
    for adapter in ADAPTERS:
        for case in adapter().cases():
            text = adapter().repro(case)
            tree = ast.parse(text)  # stacks, loops, packed input and third-party layers included
            config = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "CONFIG")
            assert ast.literal_eval(config.value) == case.config, case.id
            assert f"# {case.title}\nCONFIG = " in text, case.id
            assert {"build", "load", "call"} <= {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}


RUFF = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))


@pytest.mark.skipif(not Path(RUFF).exists(), reason="ruff is not installed here")
def test_every_repro_is_ruff_clean(tmp_path: Path) -> None:
    for adapter in ADAPTERS:
        for case in adapter().cases():
            (tmp_path / f"{adapter.name}_{case.id}.py".replace("-", "_").replace(".", "_")).write_text(
                adapter().repro(case)
            )
    config = Path(__file__).resolve().parents[1] / "pyproject.toml"
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [RUFF, *command, "--no-cache", "--config", str(config), str(tmp_path)], capture_output=True
        )
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


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
    loop_case = next(c for c in torch_cases() if c.id == "grucell-locked-loop-input_only")
    variational_cell_loop = TorchAdapter().functions(loop_case)["variational_cell_loop"]  # the repro's own
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
    for adapter, pip in ((TorchNLPAdapter(), "pytorch-nlp==0.5.0"), (FastaiAdapter(), "fastai==2.8.12")):
        reason = adapter.unavailable_reason()
        assert reason is None or pip in reason or "torch==2.13.0" in reason
        cases = adapter.cases()  # three locked-dropout cases, the weight-drop wrappers, and for pytorch-nlp three
        # with its LockedDropout after the module (locked output dropout)
        after = 3 if adapter.name == "torchnlp" else 0
        assert len({c.id for c in cases}) == len(cases) == 3 + len(weight_drop_cases(adapter.name)) + after


STANDALONE = ["lstm-L2-bi-dropout0.25", "rnn-L3-dropout0.25", "lstm-L2-dropout0.25-batch_first"]
STANDALONE += ["gru-L1-dropout0.25-packed", "lstm-locked-then-module-native"]
STANDALONE += ["rnncell-zaremba-loop", "lstmcell-locked-loop-recurrent"]
# what a user does with a repro: build, load, call twice, in training and at inference
MAIN = """
d = np.load(INPUTS)
parts = sorted({int(k.split("_")[-1]) for k in d.files if k.startswith("w_ih_")})
params = [[d[f"{n}_{k}"] for k in parts] for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
params = params if STACKED else [p[0] for p in params]
for training in (True, False):
    model = build(CONFIG, SEED)
    load(model, *params)
    for k in range(2):
        for name, value in zip("yhc", call(model, d["x"], d["h0"], d["c0"] if "c0" in d else None, training)):
            if value is not None:
                OUT[f"{N}-{training}-{k}-{name}"] = value
"""


@needs_torch
def test_repros_stand_alone_and_give_what_run_gives(tmp_path: Path) -> None:
    """Stacks, loops, packed input: each repro runs in a fresh interpreter that cannot import dropspec and
    gives, bit for bit, what the adapter's run gives."""
    adapter, want = TorchAdapter(), {}
    script = ["import sys", "sys.modules['dropspec'] = None  # any import of dropspec now fails", "import numpy as np"]
    script.append("OUT = {}")
    for n, case_id in enumerate(STANDALONE):
        case = next(c for c in adapter.cases() if c.id == case_id)
        rng = np.random.default_rng(n)
        params = random_params(case.cell, rng)
        parts = params if isinstance(params, list) else [params]
        state = (case.cell.parts, case.batch, 16) if case.cell.stacked else (case.batch, 16)
        x, h0 = rng.standard_normal((case.steps, case.batch, 16)), rng.standard_normal(state)
        c0 = rng.standard_normal(state) if case.cell.kind == "lstm" else None
        arrays = {
            f"{name}_{k}": getattr(p, name) for k, p in enumerate(parts) for name in ("w_ih", "w_hh", "b_ih", "b_hh")
        }
        arrays |= {"x": x, "h0": h0} | ({} if c0 is None else {"c0": c0})
        np.savez(tmp_path / f"{n}.npz", **arrays)
        for training in (True, False):
            traces = adapter.run(case, params, [CallInputs(x, h0, c0)] * 2, seed=case.seed, training=training)
            for k, trace in enumerate(traces):
                want |= {f"{n}-{training}-{k}-{f}": getattr(trace, f) for f in "yhc" if getattr(trace, f) is not None}
        head = f"INPUTS, SEED, STACKED, N = {str(tmp_path / f'{n}.npz')!r}, {case.seed}, {case.cell.stacked}, {n}\n"
        script.append(f"exec({json.dumps(adapter.repro(case) + head + MAIN)}, {{'OUT': OUT}})")
    script.append(f"np.savez({str(tmp_path / 'got.npz')!r}, **OUT)")
    done = subprocess.run([sys.executable, "-c", "\n".join(script)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "got.npz")
    assert sorted(got.files) == sorted(want)
    for key, value in want.items():
        np.testing.assert_array_equal(got[key], value, err_msg=f"{STANDALONE[int(key.split('-')[0])]}: {key}")

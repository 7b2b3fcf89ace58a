"""The PaddlePaddle adapter: the catalogue, the model module's independence, the GRU convention, and repros that
run on their own.

Skips (with the reason) where paddle is not installed (`tox -e paddle` installs it); the import, catalogue and
model-module tests run everywhere.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dropspec.adapters.base import MODELS_DIR
from dropspec.adapters.paddle_rnn import PaddleAdapter
from dropspec.case import CallInputs
from dropspec.engine import observe, random_params
from dropspec.masks import base_site
from dropspec.spec import default_spec

REASON = PaddleAdapter().unavailable_reason()
needs_paddle = pytest.mark.skipif(REASON is not None, reason=REASON or "")


def test_the_model_module_imports_only_paddle_and_numpy() -> None:
    """A repro is the model module's source: it must run where dropspec is not installed (the standard library
    is there: the state_dict round trip writes a temporary file)."""
    tree = ast.parse((MODELS_DIR / PaddleAdapter.model_module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.partition(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or ".").partition(".")[0] if node.level == 0 else ".")
    assert imported - set(sys.stdlib_module_names) == {"numpy", "paddle"}, imported


def test_importing_the_adapter_does_not_import_paddle() -> None:
    code = "import sys\nfrom dropspec.registry import load_adapter\na = load_adapter('paddle')\n"
    code += "[a.repro(c) for c in a.cases()]\nassert 'paddle' not in sys.modules, 'imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cases_are_unique_claim_known_schemes_and_match_their_cell() -> None:
    cases, spec = PaddleAdapter().cases(), default_spec()
    assert len({c.id for c in cases}) == len(cases)
    for case in cases:
        scheme = spec.scheme(case.claim.scheme)
        assert {base_site(k) for k in case.claim.rates} <= {m.site for m in scheme.masks}, case.id
        assert case.claim.doc and case.label, case.id
        args = case.config["args"]
        if "layer" in case.config:  # the layer's layers and directions are the cell's parts
            assert args["num_layers"] == case.cell.layers, case.id
            assert (2 if args["direction"] == "bidirect" else 1) == case.cell.directions, case.id
        else:
            assert not case.cell.stacked and "loop" in case.config, case.id


@needs_paddle
@pytest.mark.parametrize("case_id", ["gru-L2-dropout0.25", "gru-L2-dropout0.25-float64", "grucell-zaremba-loop"])
def test_the_gru_is_reset_after_and_the_other_convention_is_caught(case_id: str) -> None:
    """Paddle's GRU applies the reset gate to (W_hc h + b_hc), torch's and cuDNN's form: the inference clause
    passes with reset_after=True and fails, by far, when the same layer is judged as the reset-before GRU."""
    adapter = PaddleAdapter()
    case = next(c for c in adapter.cases() if c.id == case_id)
    assert observe(adapter, case).inference_error <= 1.0
    wrong = replace(case, cell=replace(case.cell, reset_after=False))
    assert observe(PaddleAdapter([wrong]), wrong).inference_error > 100.0


STANDALONE = [
    "lstm-L2-bi-dropout0.25",
    "gru-L2-dropout0.25-time_major",
    "rnn-L3-dropout0.25",
    "gru-L2-dropout0.25-float64",
]
STANDALONE += ["lstmcell-locked-loop", "rnncell-zaremba-loop"]
# call modes: a compiled layer (to_static reads Paddle's own source, there without a file), a checkpoint round trip
STANDALONE += ["lstm-L2-dropout0.25+paddle_to_static", "gru-L2-dropout0.25+reload_state_dict"]
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


@needs_paddle
def test_repros_stand_alone_and_give_what_run_gives(tmp_path: Path) -> None:
    """Stacks, time-major input, float64, loops: each repro runs in a fresh interpreter that cannot import dropspec
    and gives, bit for bit, what the adapter's run gives."""
    adapter, want = PaddleAdapter(), {}
    script = ["import sys", "sys.modules['dropspec'] = None  # any import of dropspec now fails", "import numpy as np"]
    script.append("OUT = {}")
    cases = {c.id: c for c in adapter.cases()}
    assert set(STANDALONE) <= set(cases), set(STANDALONE) - set(cases)
    for n, case_id in enumerate(STANDALONE):
        case, rng = cases[case_id], np.random.default_rng(n)
        params = random_params(case.cell, rng)
        parts = params if isinstance(params, list) else [params]
        hidden = case.cell.hidden_size
        state = (case.cell.parts, case.batch, hidden) if case.cell.stacked else (case.batch, hidden)
        x, h0 = rng.standard_normal((case.steps, case.batch, case.cell.input_size)), rng.standard_normal(state)
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
    # training draws masks: the two training calls differ, the two inference calls do not
    assert not np.array_equal(want["0-True-0-y"], want["0-True-1-y"])
    assert np.array_equal(want["0-False-0-y"], want["0-False-1-y"])

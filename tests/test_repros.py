"""Every known deviation has a repro that proves itself: the framework-only script composed for it is run
in a subprocess and must exit 1 (the rule is broken) and print what it saw; for a known crash it must
crash with the exception the deviation names. Adapters whose framework is not importable here are
skipped with the reason. Each adapter's tox environment runs its own: ``pytest tests/test_repros.py -k NAME``.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from functools import cache

import numpy as np
import pytest
import yaml

from dropspec.adapters.base import Adapter, CallInputs, Case
from dropspec.deviations import DEVIATIONS_DIR
from dropspec.reference import Params
from dropspec.registry import load_adapter
from dropspec.repro_script import NoScript, group_of, partners_of, repro_script
from dropspec.spec import default_spec

RUNS = "common.runs.documented_configuration"
ADAPTERS = sorted(p.stem for p in DEVIATIONS_DIR.glob("*.yaml"))


def entries() -> list[tuple[str, int, dict]]:
    out = []
    for name in ADAPTERS:
        for n, entry in enumerate(yaml.safe_load((DEVIATIONS_DIR / f"{name}.yaml").read_text()) or []):
            out.append((name, n, entry))
    return out


ENTRIES = entries()


@cache
def adapter(name: str) -> tuple[Adapter | None, str]:
    try:
        loaded = load_adapter(name)
        reason = loaded.unavailable_reason()
    except Exception as exc:  # an adapter that cannot even load here is skipped, with why
        return None, f"adapter {name!r} cannot be loaded here: {type(exc).__name__}: {exc}"
    return (None, reason) if reason else (loaded, "")


def _clauses(entry: dict, case: Case) -> list[str]:
    """Concrete clauses for the entry, in spec order: a crash is shown by the 'runs' clause; a clause the
    entry says follows from another (its link is a clause id) is shown by that clause's script."""
    spec = default_spec()
    if entry.get("status") == "error":
        return [RUNS]
    ids = [c.id for _, c in spec.clauses()]
    if entry.get("link") in ids:
        return [entry["link"]]
    return [
        c.id
        for s, c in spec.clauses()
        if fnmatch.fnmatchcase(c.id, entry["clause"]) and s.id in ("common", case.claim.scheme)
    ]


def _script(loaded: Adapter, entry: dict) -> tuple[Case, str, str]:
    """The first case of the entry (and concrete clause) for which a script can be composed."""
    patterns = [entry["case"]] if isinstance(entry["case"], str) else entry["case"]
    cases = {c.id: c for c in loaded.cases()}
    why = "no case matches"
    for case in cases.values():
        if not any(fnmatch.fnmatchcase(case.id, p) for p in patterns):
            continue
        snippet = loaded.repro(case)
        if not snippet:
            why = f"adapter {loaded.name!r} offers no repro for {case.id}"
            continue
        for clause in _clauses(entry, case):
            group = group_of(default_spec().clause(clause)[1])
            partners = [(cases[o], loaded.repro(cases[o])) for o in partners_of(case.id, group, cases)] if group else []
            try:
                return case, clause, repro_script(snippet, case, clause, None, loaded.versions(), partners)
            except NoScript as exc:
                why = f"{case.id}, {clause}: {exc}"
    raise AssertionError(f"no repro script for {entry['clause']} on {patterns}: {why}")


@pytest.mark.parametrize(("name", "n", "entry"), ENTRIES, ids=[f"{a}-{n}-{e['clause']}" for a, n, e in ENTRIES])
def test_the_deviation_reproduces(name: str, n: int, entry: dict) -> None:
    loaded, reason = adapter(name)
    if loaded is None:
        pytest.skip(reason)
    case, clause, script = _script(loaded, entry)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    shown = f"{case.id} / {clause}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    if entry.get("status") == "error":
        assert done.returncode != 0, shown
        named = re.findall(r"\b([A-Z]\w*(?:Error|Exception))\b", entry["reason"])
        assert "Traceback" in done.stderr, shown
        if named:
            assert any(exc in done.stderr for exc in named), shown
        return
    assert done.returncode == 1, shown
    assert re.search(r"\d", done.stdout), f"the script must print what it saw\n{shown}"


def _inputs(case: Case) -> tuple[Params, CallInputs]:
    rng = np.random.default_rng(0)
    params = Params.random(case.cell, rng)
    shape = (case.batch, case.cell.hidden_size)
    x, h0, c0 = rng.standard_normal((case.steps, case.batch, case.cell.input_size)), *rng.standard_normal((2, *shape))
    return params, CallInputs(x, h0, c0 if case.cell.kind == "lstm" else None)


# Adapters whose run() does not execute the snippet: a check that the snippet runs the same model
# (an id, or a tuple of ids to check several cases)
TWINS = {
    "jax_rnn": "lstm_ref-dropout_0",
    "torch": "gru-L1-dropout0.25-batch_first",
    "torchnlp": "lstm-torchnlp-WeightDrop",
    "fastai": "gru-fastai-WeightDropout",
}


TWIN_CASES = [(name, i) for name, ids in sorted(TWINS.items()) for i in ([ids] if isinstance(ids, str) else ids)]


@pytest.mark.parametrize(("name", "case_id"), TWIN_CASES, ids=[f"{name}-{i}" for name, i in TWIN_CASES])
def test_the_snippet_is_the_adapters_model(name: str, case_id: str) -> None:
    loaded, reason = adapter(name)
    if loaded is None:
        pytest.skip(reason)
    case = next(c for c in loaded.cases() if c.id == case_id)
    params, call = _inputs(case)
    for training in (True, False):
        want = loaded.run(case, params, [call, call], seed=case.seed, training=training)
        namespace: dict = {}
        exec(loaded.repro(case), namespace)
        model = namespace["build"](case.seed)
        namespace["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
        for w in want:
            y, h, c = namespace["call"](model, call.x, call.h0, call.c0, training)
            np.testing.assert_array_equal(y, w.y)
            np.testing.assert_array_equal(h, w.h)


# Adapters whose run() executes the snippet (so they need no twin check): the snippet must also run on its
# own, as the bug report runs it (a script of its own, in a fresh interpreter, without dropspec), and give
# bit for bit what run() gives, over two calls, training and inference
STANDALONE = [
    ("flax_linen", "lstm-cell_recurrent-split_recurrent_false"),
    ("flax_linen", "gru-cell_input-split_dropout_true"),
    ("flax_nnx", "lstm-recurrent-broadcast_rngs-nojit"),
    ("flax_nnx", "gru-recurrent-broadcast_rngs"),
    # adapters whose run() executes the snippet too: the snippet must also stand alone, outside dropspec
    ("keras_tf", "gru_reset_after-layer-recurrent-impl2"),
    ("keras_jax", "gru_reset_after-loop-dropout"),
    ("keras_torch", "lstm-layer-recurrent-impl1"),
    ("tf_keras", "gru_reset_after-layer-dropout-impl1"),
    ("dropout_wrapper", "v1-gru_reset_before-state"),
]
STANDALONE_MAIN = """
d = np.load(INPUTS)
out = {}
for training in (True, False):
    model = build(SEED)
    load(model, d["w_ih"], d["w_hh"], d["b_ih"], d["b_hh"])
    for n in range(2):
        y, h, c = call(model, d["x"], d["h0"], d["c0"] if "c0" in d else None, training)
        out.update({f"{training}-{n}-y": y, f"{training}-{n}-h": h})
        if c is not None:
            out[f"{training}-{n}-c"] = c
np.savez(OUTPUT, **out)
"""


@pytest.mark.parametrize(("name", "case_id"), STANDALONE, ids=[f"{name}-{i}" for name, i in STANDALONE])
def test_the_snippet_runs_standalone_as_run_does(name: str, case_id: str, tmp_path) -> None:
    loaded, reason = adapter(name)
    if loaded is None:
        pytest.skip(reason)
    case = next(c for c in loaded.cases() if c.id == case_id)
    params, call = _inputs(case)
    arrays = {"w_ih": params.w_ih, "w_hh": params.w_hh, "b_ih": params.b_ih, "b_hh": params.b_hh}
    arrays |= {"x": call.x, "h0": call.h0} | ({"c0": call.c0} if call.c0 is not None else {})
    np.savez(tmp_path / "inputs.npz", **arrays)
    constants = f"import numpy as np\nINPUTS, OUTPUT, SEED = {str(tmp_path / 'inputs.npz')!r}, "
    constants += f"{str(tmp_path / 'outputs.npz')!r}, {case.seed}\n"
    script = loaded.repro(case) + "\n" + constants + STANDALONE_MAIN
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, f"{case.id}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    got = np.load(tmp_path / "outputs.npz")
    for training in (True, False):
        want = loaded.run(case, params, [call, call], seed=case.seed, training=training)
        for n, w in enumerate(want):
            np.testing.assert_array_equal(got[f"{training}-{n}-y"], w.y)
            np.testing.assert_array_equal(got[f"{training}-{n}-h"], w.h)
            if w.c is not None:
                np.testing.assert_array_equal(got[f"{training}-{n}-c"], w.c)

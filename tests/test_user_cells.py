"""Cells users write themselves: a SimpleRNN with a linear activation and/or no bias (Keras' own test cell for its
dropout mixin, RNNCellWithDropout, is linear without bias). The reference with those options is recovered exactly,
a mutant of it is flagged, and the README's Keras example runs as written where Keras is installed."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.engine import Suite
from dropspec.recovery import probe_runs, recover
from dropspec.reference import Cell, Masks, Params, forward

from .mutants import CarriedState, PerStep, ReusedAcrossCalls
from .test_recovery import blocked, recovered_and_drawn

ROOT = Path(__file__).resolve().parent.parent
OPTIONS = [("linear", False), ("tanh", False), ("linear", True)]  # (activation, bias); ("tanh", True) is the default
# every SimpleRNN scheme but zoneout, whose probes come separately
SCHEMES = (
    "variational",
    "variational_untied",
    "zaremba",
    "flip_recurrent",
    "carried_state",
    "carried_state_variational",
    "feature_dropout",
    "output_dropout",
    "locked_output",
    "none",
)


def user_cases(activation: str, bias: bool, schemes=SCHEMES, inputs: int = 8, hidden: int = 8):
    cell = Cell("rnn", inputs, hidden, activation=activation, bias=bias)
    out = []
    for case in reference_cases(width=8):
        if case.cell == Cell("rnn", 8, 8) and case.claim.scheme in schemes and case.mode == "eager":
            out.append(replace(case, cell=cell, id=case.id.replace("rnn", cell.name, 1)))
    return out


def test_default_cells_keep_their_names() -> None:
    assert [Cell(k, 8, 8).name for k in ("rnn", "lstm")] == ["rnn", "lstm"]  # case ids and reports depend on them
    assert Cell("rnn", 8, 8, activation="linear", bias=False).name == "rnn_linear_nobias"
    assert Cell("rnn", 8, 8, bias=False).name == "rnn_nobias"


@pytest.mark.parametrize(
    "options",
    [{"kind": "lstm", "bias": False}, {"kind": "gru", "activation": "linear"}, {"kind": "rnn", "activation": "relu"}],
)
def test_unsupported_options_are_refused(options: dict) -> None:
    kind = options.pop("kind")
    with pytest.raises(ValueError, match="activation"):
        Cell(kind, 8, 8, **options)
    with pytest.raises(ValueError, match="one-layer"):
        Cell("rnn", 8, 8, bias=False, layers=2)


def test_options_change_the_function() -> None:
    rng = np.random.default_rng(0)
    x, h0 = rng.normal(size=(5, 3, 4)), rng.normal(size=(3, 4))
    linear = Cell("rnn", 4, 4, activation="linear", bias=False)
    p = Params.random(linear, rng)
    assert not p.b_ih.any() and not p.b_hh.any()  # replay and probes give a cell without bias none
    h = h0
    for x_t in x:  # the Keras test cell's equations: h_t = x_t W + h_{t-1} U
        h = x_t @ p.w_ih.T + h @ p.w_hh.T
    np.testing.assert_allclose(forward(linear, p, x, h0).h, h, rtol=1e-12)
    assert not np.allclose(forward(Cell("rnn", 4, 4), p, x, h0).h, h)
    p.b_ih[0] = 0.1
    with pytest.raises(ValueError, match="no bias"):
        forward(linear, p, x, h0)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o[0]}-{'bias' if o[1] else 'nobias'}")
def test_recovery_is_exact(options) -> None:
    for case in user_cases(*options):
        rec, drawn, runs = recovered_and_drawn(case)
        assert len(runs) == probe_runs(case.cell), runs  # no bias: the same runs, driven through the inputs
        for call in range(2):
            for site in case.cell.sites:
                want, got = drawn[call].get(site), rec.masks[call].get(site)
                if want is None:
                    assert got is None, f"{case.id} {site}: recovered a mask where none was drawn"
                    continue
                assert got is not None, f"{case.id} {site}: no mask recovered, but one was drawn"
                unseen = ~np.isfinite(got)
                assert not np.any(unseen & ~blocked(case, drawn[call])), f"{case.id} {site}: unseen elements"
                np.testing.assert_allclose(got[~unseen], np.asarray(want)[~unseen], atol=1e-9, err_msg=case.id)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: f"{o[0]}-{'bias' if o[1] else 'nobias'}")
def test_reference_conforms(options) -> None:
    results = Suite(ReferenceAdapter(user_cases(*options))).run()
    bad = [f"{r.clause} [{r.case}]: {r.message}" for r in results if r.status not in ("pass", "not_applicable")]
    assert not bad, "\n".join(bad)
    assert sum(r.status == "pass" for r in results) >= 60


@pytest.mark.parametrize("inputs, hidden", [(4, 5), (12, 5), (3, 3)])
def test_reference_without_bias_conforms_at_other_widths(inputs: int, hidden: int) -> None:
    """Keras' own test runs its cell with 4 inputs and 5 units. The fewer the inputs or units, the more often a
    step has all of them dropped, where the outputs alone cannot say which: the other masks decide."""
    for activation in ("linear", "tanh"):
        results = Suite(ReferenceAdapter(user_cases(activation, False, inputs=inputs, hidden=hidden))).run()
        bad = [f"{r.clause} [{r.case}]: {r.message}" for r in results if r.status not in ("pass", "not_applicable")]
        assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    "mutant, scheme, clauses",
    [
        (PerStep, "variational", {"variational.input.resample", "variational.recurrent.resample"}),
        (ReusedAcrossCalls, "variational", {"common.calls.resample", "variational.input.resample"}),
        (CarriedState, "variational", {"variational.state.carried"}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else None,
)
def test_mutant_of_a_linear_cell_without_bias_is_flagged(mutant, scheme: str, clauses: set[str]) -> None:
    adapter = mutant()
    adapter._cases = user_cases("linear", False, schemes=(scheme,))
    failed = {r.clause for r in Suite(adapter).run() if r.status == "fail"}
    assert clauses <= failed, failed


def test_no_bias_output_and_returned_state_both_dropped_says_so() -> None:
    """Without a bias the outputs are the product of the output mask and the masks before it; the returned state
    gives the output mask's kept scale where it is not dropped itself. Where both are, the output mask's zeros are
    still read, its kept scale is not, and the recovery says so instead of guessing."""
    cell, steps, batch = Cell("rnn", 8, 8, activation="linear", bias=False), 16, 32
    rng = np.random.default_rng(3)

    def draw() -> np.ndarray:
        return (rng.random((steps, batch, 8)) >= 0.25) / 0.75

    drawn = [Masks(output=draw(), carry_h=draw()) for _ in range(2)]

    def runner(name, params, calls):
        return [forward(cell, params, c.x, c.h0, c.c0, m) for c, m in zip(calls, drawn, strict=True)]

    rec = recover(cell, steps, batch, 2, runner)
    assert any("cannot be told apart" in note for note in rec.notes), rec.notes
    # every element is seen: where a step's outputs are all 0, the inputs (not dropped) say the outputs were
    assert any(np.all(m.output == 0, axis=-1).any() for m in drawn), "this seed drops no step's every output"
    for call in range(2):
        got, want = rec.masks[call].output, drawn[call].output
        assert np.isfinite(got).all()
        np.testing.assert_array_equal(got == 0, want == 0)


def _readme_keras_command() -> str:
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```sh\n(cd examples && KERAS_BACKEND=\S+ DROPSPEC_ADAPTERS=.*?)\n```", readme, re.S)
    assert found, "README.md 'Test your own cell' lost the Keras example's command"
    return found.group(1)


@pytest.mark.skipif(importlib.util.find_spec("keras") is None, reason="Keras is not installed in this Python")
def test_readme_keras_example_runs_as_written(tmp_path: Path) -> None:
    """The README's command for examples/keras_mixin_cell.py, in a copy of examples/: the cell in keras.layers.RNN
    conforms, the user's own loop without reset_dropout_mask() reuses its masks across calls (exit status 1)."""
    command = _readme_keras_command()
    folder, _, rest = command.removeprefix("cd ").partition(" && ")
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "keras_mixin_cell.py").write_text((ROOT / "examples" / "keras_mixin_cell.py").read_text())
    words = shlex.split(rest)
    env = dict(os.environ)
    while "=" in words[0]:
        name, _, value = words.pop(0).partition("=")
        env[name] = value
    assert words[:1] == ["dropspec"]
    script = Path(sys.executable).parent / "dropspec"
    fallback = [sys.executable, "-I", "-c", "import sys; from dropspec.cli import main; sys.exit(main())"]
    cli = [str(script)] if script.exists() else fallback
    done = subprocess.run(cli + words[1:], cwd=tmp_path / folder, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads((tmp_path / folder / "results" / "keras_mixin.json").read_text())["results"]
    layer = {r["status"] for r in results if r["case"] == "mixin-rnn-layer"}
    assert layer == {"pass", "not_applicable"}, layer
    failed = {r["clause"] for r in results if r["case"] == "mixin-own-loop" and r["status"] == "fail"}
    assert failed == {"common.calls.resample", "variational.input.resample", "variational.recurrent.resample"}

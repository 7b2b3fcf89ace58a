"""Mask recovery is exact on the reference: the recovered masks equal the drawn ones, element for
element, wherever a mask has any effect on the cell's output."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from dropspec.adapters.base import Case, Claim
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.fingerprint import fingerprint
from dropspec.masks import canonical_case
from dropspec.recovery import probe_runs, recover
from dropspec.recovery.probes import split_batch
from dropspec.reference import Cell, Masks, _join_masks

# weight_drop cases are read by their own probes, only under their claim: tests/test_recovery_weights.py. Call
# modes draw the reference's masks as its eager cases do (boundary rates are read in tests/test_rates.py)
LARGE = [
    c
    for c in reference_cases(steps=200, batch=32, width=128)
    if not c.id.endswith(("-fused", "-input_only"))
    and c.claim.scheme != "weight_drop"
    and not c.cell.stacked
    and c.mode == "eager"
]
# stacks read each unit dropped above again through other units (about 16 routings at this size): smaller sizes
DEEP = [c for c in reference_cases(steps=40, batch=16, width=32) if c.cell.stacked]


def recovered_and_drawn(case, adapter=None):
    adapter = adapter or ReferenceAdapter()
    runs = []

    def runner(name, params, calls):
        runs.append(name)
        return adapter.run(case, params, calls, seed=case.seed, training=True)

    rec = recover(case.cell, case.steps, case.batch, 2, runner)
    drawn = adapter.masks(case, 2, np.random.default_rng(case.seed))
    return rec, [canonical_case(case.cell, m, case.steps, case.batch) for m in drawn], runs


def blocked(case, drawn) -> np.ndarray:
    """(T, B, H): where a unit's gates can have no effect on any output of the probes, because
    another site drops the unit there or one step before: an output, candidate, cell-state,
    carried or fed-state mask, or, in a reset-before GRU, the n gate's recurrent mask (r acts via r * s * m_n)."""
    shape = (case.steps, case.batch, case.cell.hidden_size)
    zero = np.zeros(shape, dtype=bool)
    for site in ("output", "candidate", "cell", "carry_h", "carry_c", "state_in"):
        if drawn.get(site) is not None:
            zero |= np.asarray(drawn.get(site)) == 0
    if case.cell.kind == "gru" and not case.cell.reset_after and drawn.recurrent is not None:
        zero |= np.asarray(drawn.recurrent[2]) == 0
    return zero | np.concatenate([np.zeros_like(zero[:1]), zero[:-1]])


@pytest.mark.parametrize("case", LARGE + DEEP, ids=lambda c: f"{c.id}-T{c.steps}")
def test_recovery_is_exact(case) -> None:
    rec, drawn, runs = recovered_and_drawn(case)
    if case.cell.stacked:  # units dropped above are read again through other units: a few runs more
        assert len(runs) >= probe_runs(case.cell)
    else:
        assert len(runs) == probe_runs(case.cell)
    for call in range(2):
        layers = drawn[call] if case.cell.stacked else [drawn[call]]
        got_layers = rec.masks[call] if case.cell.stacked else [rec.masks[call]]
        for index, (want_masks, got_masks) in enumerate(zip(layers, got_layers, strict=True)):
            layer = case.cell.layer(index) if case.cell.stacked else case.cell
            for site in layer.sites:
                want, got = want_masks.get(site), got_masks.get(site)
                if want is None:
                    assert got is None, f"layer {index + 1} {site}: recovered a mask where none was drawn"
                    continue
                assert got is not None, f"layer {index + 1} {site}: no mask recovered, but one was drawn"
                want = np.asarray(want, dtype=float)
                unseen = ~np.isfinite(got)
                if unseen.shape[-1] == layer.hidden_size:
                    assert not np.any(unseen & ~blocked(replace(case, cell=layer), want_masks)), site
                else:  # inputs wider than the state (a bidirectional layer below): every element is seen
                    assert not unseen.any(), site
                np.testing.assert_allclose(got[~unseen], want[~unseen], rtol=0, atol=1e-9, err_msg=site)


def test_bidirectional_stack_reads_each_direction_in_its_own_time_order() -> None:
    """Masks drawn only on the reverse direction are recovered exactly, in its own time order."""
    cell = Cell("gru", 8, 8, layers=2, directions=2)
    case = Case("gru_bi", cell, {}, Claim("zaremba", {"input@2r": 0.5}), steps=6, batch=4)
    rec, drawn, _ = recovered_and_drawn(case)
    got, want = rec.masks[0][3].input, np.asarray(drawn[0][3].input)
    assert rec.masks[0][2].input is None and np.isfinite(got).all()
    np.testing.assert_allclose(got, want, atol=1e-9)


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_run_count_does_not_grow_with_length_or_width(kind) -> None:
    counts = {probe_runs(Cell(kind, w, w)) for w in (8, 64, 512)}
    assert len(counts) == 1
    sites = len(Cell(kind, 8, 8).sites) + 2 * (len(Cell(kind, 8, 8).gates) - 1)  # input and recurrent per gate
    assert counts.pop() + 3 <= sites + 2  # + inference, replay, seed check


def test_wider_input_takes_one_more_probe_per_gate() -> None:
    assert probe_runs(Cell("lstm", 20, 8)) == probe_runs(Cell("lstm", 8, 8)) + 2 * 4


def test_fingerprint_tells_one_mask_for_both_directions_from_one_each() -> None:
    """One dropout on the concatenated outputs (PyTorch) is one mask for both directions of the layer
    above; the reference draws one per direction."""
    cell = Cell("gru", 8, 8, layers=2, directions=2)
    case = Case("gru_bi", cell, {}, Claim("zaremba", {"input@2": 0.5, "input@2r": 0.5}), steps=6, batch=4)
    rec, drawn, _ = recovered_and_drawn(case)
    assert fingerprint(cell, rec.masks).sites["input@2r"].directions == "per_direction"
    shared = [[m[0], m[1], m[2], m[3].with_site("input", np.asarray(m[2].input)[:, ::-1])] for m in drawn]
    assert fingerprint(cell, shared).sites["input@2r"].directions == "shared"
    assert "one mask for both directions" in fingerprint(cell, shared).summary()


def test_a_gru_without_b_hn_is_recovered_exactly_with_that_bias_kept_at_zero() -> None:
    """Flax NNX's GRUCell has no hidden bias inside the reset product: no probe may need one."""
    cell = Cell("gru", 8, 8, b_hn=False)
    case = Case("gru_no_b_hn", cell, {}, Claim("variational", {"input": 0.25, "recurrent": 0.25}), steps=10, batch=8)
    adapter, biases = ReferenceAdapter([case]), []

    def runner(name, params, calls):
        biases.append(params.b_hh[params.rows(cell, "n")].copy())
        return adapter.run(case, params, calls, seed=case.seed, training=True)

    rec = recover(cell, case.steps, case.batch, 2, runner)
    drawn = adapter.masks(case, 2, np.random.default_rng(case.seed))
    assert biases and all(np.all(b == 0) for b in biases)
    for call in range(2):
        for site in ("input", "recurrent"):
            got, want = rec.masks[call].get(site), np.asarray(drawn[call].get(site))
            seen = np.isfinite(got)
            assert seen.mean() > 0.5
            np.testing.assert_allclose(got[seen], want[seen], atol=1e-9, err_msg=site)


def test_split_batch_cuts_joined_calls_back_into_each_calls_masks() -> None:
    """Recovery reads the calls of a case as one batch and splits the masks back (``split_batch``): the exact
    inverse of the oracle's joining of calls, at every site's batch axis, and a site one call leaves undropped
    comes back as ones there."""
    cell = Cell("lstm", 5, 4)
    rng = np.random.default_rng(0)
    first = Masks(input=rng.random((4, 3, 2, 5)), output=rng.random((3, 2, 4)))
    second = Masks(input=rng.random((4, 3, 2, 5)), recurrent=rng.random((4, 3, 2, 4)))
    got = split_batch(_join_masks(cell, [first, second]), 2)
    np.testing.assert_array_equal(got[0].input, first.input)
    np.testing.assert_array_equal(got[1].input, second.input)
    np.testing.assert_array_equal(got[0].output, first.output)
    np.testing.assert_array_equal(got[1].output, np.ones((3, 2, 4)))
    np.testing.assert_array_equal(got[1].recurrent, second.recurrent)
    np.testing.assert_array_equal(got[0].recurrent, np.ones((4, 3, 2, 4)))

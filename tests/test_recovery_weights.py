"""The weight_hh (DropConnect) recovery is exact on the reference: every element of every call's
weight mask, at every step and for every sample, wherever it has an effect on the probes."""

from __future__ import annotations

import numpy as np
import pytest

from dropspec.adapters.base import Case, Claim
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.engine import Suite
from dropspec.fingerprint import fingerprint
from dropspec.masks import sample_masks
from dropspec.recovery import probe_runs, recover
from dropspec.recovery.weights import match_units, weight_probe_runs
from dropspec.reference import Cell, Masks, Params, forward
from dropspec.spec import MaskRule

from .mutants import WeightPerSample, WeightPerStep

STEPS, BATCH, WIDTH = 12, 8, 10
CASES = [c for c in reference_cases(steps=STEPS, batch=BATCH, width=WIDTH) if c.claim.scheme == "weight_drop"]


def recovered_and_drawn(case: Case, adapter: ReferenceAdapter):
    runs = []

    def runner(name, params, calls):
        runs.append(name)
        return adapter.run(case, params, calls, seed=case.seed, training=True)

    rec = recover(case.cell, case.steps, case.batch, 2, runner, weight_hh=True)
    drawn = adapter.masks(case, 2, np.random.default_rng(case.seed))
    return rec, drawn, runs


def full(mask: np.ndarray, steps: int, batch: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(mask, dtype=float), (steps, batch, *np.shape(mask)[-2:]))


def test_the_four_cells_are_covered() -> None:
    assert sorted(c.cell.name for c in CASES) == ["gru_reset_after", "gru_reset_before", "lstm", "rnn"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_weight_mask_is_recovered_exactly_for_every_cell(case: Case) -> None:
    rec, drawn, runs = recovered_and_drawn(case, ReferenceAdapter())
    assert len(runs) == probe_runs(case.cell) + weight_probe_runs(case.cell)
    for call in range(2):
        got, want = rec.masks[call], drawn[call]
        assert got.recurrent is None and got.input is None, "weight drop seen as an activation mask"
        assert got.weight_hh.shape == (STEPS, BATCH, len(case.cell.gates) * WIDTH, WIDTH)
        # every element is observable: the weight drop is the only mask, so every state is nonzero
        np.testing.assert_allclose(got.weight_hh, full(want.weight_hh, STEPS, BATCH), rtol=0, atol=1e-9)
    fp = fingerprint(case.cell, rec.masks).sites["weight_hh"]
    assert (fp.resample, fp.gates, fp.batch) == ("per_sequence", None, "shared")
    assert fp.scale == pytest.approx(1 / (1 - 0.25))


@pytest.mark.parametrize(
    ("mutant", "resample", "batch"),
    [(WeightPerStep, "per_step", "shared"), (WeightPerSample, "per_sequence", "per_sample")],
    ids=["per_step", "per_sample"],
)
def test_weight_masks_that_vary_by_step_or_sample_are_recovered_exactly(mutant, resample, batch) -> None:
    adapter = mutant()
    case = next(c for c in adapter.cases() if c.cell.kind == "lstm")
    rec, drawn, _ = recovered_and_drawn(case, adapter)
    for call in range(2):
        want = full(drawn[call].weight_hh, case.steps, case.batch)
        np.testing.assert_allclose(rec.masks[call].weight_hh, want, rtol=0, atol=1e-9)
    fp = fingerprint(case.cell, rec.masks).sites["weight_hh"]
    assert (fp.resample, fp.batch) == (resample, batch)


def test_reference_forward_takes_a_weight_mask_per_step_and_sample() -> None:
    """(G*H, H) and the same mask broadcast to (T, B, G*H, H) drive the same cell."""
    rng = np.random.default_rng(3)
    for cell in (Cell("rnn", 3, 4), Cell("lstm", 3, 4), Cell("gru", 3, 4, True), Cell("gru", 3, 4, False)):
        p, x, h0 = Params.random(cell, rng), rng.normal(size=(5, 2, 3)), rng.normal(size=(2, 4))
        rule = MaskRule(site="weight_hh", resample="per_sequence", batch="shared")
        compact = sample_masks(cell, [rule], {"weight_hh": 0.4}, 5, 2, 1, rng)[0].weight_hh
        assert compact.shape == (len(cell.gates) * 4, 4)
        a = forward(cell, p, x, h0, masks=Masks(weight_hh=compact))
        b = forward(cell, p, x, h0, masks=Masks(weight_hh=full(compact, 5, 2)))
        np.testing.assert_allclose(a.y, b.y, rtol=1e-13)
        dense = forward(cell, Params(p.w_ih, p.w_hh * compact, p.b_ih, p.b_hh), x, h0)
        np.testing.assert_allclose(a.y, dense.y, rtol=1e-13)


class UnclaimedWeightDrop(ReferenceAdapter):
    """Drops the recurrent weights but documents no dropout: no weight probe runs."""

    name = "unclaimed_weight_drop"

    def __init__(self) -> None:
        super().__init__([Case("lstm-unclaimed", Cell("lstm", 8, 8), {}, Claim("none", {}), steps=8, batch=8)])

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rule = MaskRule(site="weight_hh", resample="per_sequence", batch="shared")
        return sample_masks(case.cell, [rule], {"weight_hh": 0.25}, case.steps, case.batch, calls, rng)


def test_unclaimed_weight_drop_is_caught_by_the_replay() -> None:
    failed = {r.clause for r in Suite(UnclaimedWeightDrop()).run() if r.status == "fail"}
    assert "common.replay.explained" in failed


def test_match_units_finds_a_kept_row_for_every_column() -> None:
    kept = np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=bool)
    match = match_units(kept)
    assert sorted(match) == [0, 1, 2] and all(kept[match[c], c] for c in range(3))
    assert list(match_units(np.zeros((2, 2), dtype=bool))) == [-1, -1]

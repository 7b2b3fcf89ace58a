"""The carried state's growth is measured on the framework, black-box: 1/keep per step for
DropoutWrapper-style per-sequence state dropout on a GRU, 1 where nothing carried is dropped."""

from __future__ import annotations

import numpy as np
import pytest

from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.engine import observe
from dropspec.growth import growth_factor
from dropspec.publish.pictures import state_picture

CASES = {c.id: c for c in reference_cases(steps=12, batch=16, width=8)}


@pytest.mark.parametrize("reset", ["after", "before"])
@pytest.mark.parametrize(
    ("scheme", "site"), [("carried_state_variational", "carry_h"), ("state_in_per_sequence", "state_in")]
)
def test_per_sequence_state_dropout_grows_a_gru_by_one_over_keep_per_step(reset, scheme, site) -> None:
    # carried on (DropoutWrapper) or dropped as each step receives it (h dropped before the cell): where z
    # holds the memory, the kept units grow by 1/keep at every step either way
    case = CASES[f"gru_reset_{reset}-{scheme}"]
    growth = observe(ReferenceAdapter([case]), case).state_growth
    keep = 1.0 - case.claim.rates[site]
    assert growth is not None and growth.state == "h"
    assert growth.growth_per_step == pytest.approx(1.0 / keep, rel=1e-9)
    assert np.allclose(growth.probe_inference, 1.0)  # inference carries the state unchanged
    assert len(growth.random_training) == len(growth.random_inference) == case.steps


def test_a_dropped_lstm_h_leaves_the_cell_state_unchanged() -> None:
    case = CASES["lstm-carried_state_variational"]
    growth = observe(ReferenceAdapter([case]), case).state_growth
    assert growth.state == "c" and growth.growth_per_step == pytest.approx(1.0, abs=1e-6)


def test_no_growth_is_measured_where_the_carried_state_is_not_dropped() -> None:
    case = CASES["gru_reset_after-variational"]
    assert observe(ReferenceAdapter([case]), case).state_growth is None


def test_growth_factor_and_picture() -> None:
    assert growth_factor([1.0, 2.0, 4.0, 8.0]) == pytest.approx(2.0)
    assert np.isnan(growth_factor([1.0, 0.0, 0.0]))
    pytest.importorskip("matplotlib", reason="pictures need the report extra: pip install 'dropspec[report]'")
    svg = state_picture(
        {"state": "h", "growth_per_step": 1.333, "probe_training": [1, 1.2, 1.6], "probe_inference": [1, 1, 1]}
    )
    assert svg is not None and b"<svg" in svg and "×1.333 per step".encode() in svg
    assert state_picture({"probe_training": [0.0, 0.0]}) is None

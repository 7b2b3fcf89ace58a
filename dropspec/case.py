"""What a case is: one configuration of one framework layer, the claim its documentation makes, and
the inputs of one call. The core works on these; adapters produce them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .reference import Cell

CALLS = 2  # every run makes two consecutive calls, so resampling across calls is visible


@dataclass(frozen=True)
class Claim:
    """What the framework's documentation says a case does: a spec scheme and its rates per site."""

    scheme: str
    rates: dict[str, float] = field(default_factory=dict)
    doc: str = ""  # a quote of, or a link to, the documentation the claim rests on
    # "documented": the quoted text states the property; "inferred": the usual reading of documentation that is
    # silent on it, so a verdict against it "differs from the usual reading" rather than from the documentation
    basis: Literal["documented", "inferred"] = "documented"
    # how kept units are scaled at every site of the claim: "inverted" (1/(1-p) in training) or "test_time"
    # (0/1 masks in training, the site times 1-p at inference); None: each site's rule in the scheme
    scaling: Literal["inverted", "test_time"] | None = None
    # for a cell in a user's loop: what the API asks the loop to do, quoted (e.g. Keras' reset_dropout_mask()
    # docstring); reports show it next to what the loop does, since a loop that skips it is arguably misuse
    asks: str = ""


@dataclass(frozen=True)
class Case:
    """One configuration of one framework layer, run with a seed.

    ``config`` is the framework's own constructor arguments, verbatim, as a user would write them.
    Cases that share a ``flag_group`` differ only in flags documented as performance-only; cases
    that share a ``rate_group`` differ only in the rate of one site.
    """

    id: str
    cell: Cell
    config: dict[str, Any]
    claim: Claim
    steps: int = 16
    batch: int = 32
    seed: int = 7
    flag_group: str | None = None
    rate_group: str | None = None
    label: str = ""  # how a user would write it, e.g. "keras.layers.LSTM(8, dropout=0.25)"
    dtype: str | None = None  # "float64" for a case that runs in double precision; None: the adapter's dtype
    # how the layer is called (``dropspec.modes``): "eager" is a plain call; the other modes of one
    # configuration share a ``mode_group`` with its eager case, whose masks they must keep
    mode: str = "eager"
    mode_group: str | None = None

    @property
    def title(self) -> str:
        return self.label or f"{self.cell.name}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"


@dataclass
class CallInputs:
    """The inputs of one call: ``x`` is ``(T, B, I)``; ``c0`` only for the LSTM. ``training`` set on the
    calls of one run gives each call its own flag (train, then eval, then train, on one model)."""

    x: np.ndarray
    h0: np.ndarray
    c0: np.ndarray | None = None
    training: bool | None = None  # this call's training flag; None: the run's

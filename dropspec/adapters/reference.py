"""The reference adapter: the oracle itself behind the adapter interface.

It draws its masks from the spec's rules for the scheme each case claims, so it must pass
every applicable clause; the mutants in ``tests/mutants.py`` subclass it to break one rule each.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from ..masks import all_sites, claimed_rules, inference_masks, inference_scale, keep_scale, sample_case_masks
from ..modes import expand
from ..reference import GATED_SITES, STEP_SITES, Cell, Params, Trace, run_cell
from ..spec import default_spec
from .base import MODELS_DIR, Adapter, CallInputs, Case, Claim, compose_repro

P = 0.25


def reference_cases(steps: int = 16, batch: int = 32, width: int = 16) -> list[Case]:
    """One case per (cell, scheme) the cell supports, plus the flag and rate groups."""
    spec = default_spec()
    cells = [
        Cell("rnn", width, width),
        Cell("lstm", width, width),
        Cell("gru", width, width, reset_after=True),
        Cell("gru", width, width, reset_after=False),
    ]
    cases = []
    for cell in cells:
        for scheme in spec.schemes.values():
            if scheme.id == "common" or cell.kind not in scheme.cells:
                continue
            rates = {m.site: P for m in scheme.masks if m.site in all_sites(cell)}  # zoneout's zone_c: LSTM only
            config = {"scheme": scheme.id, **{f"p_{site}": p for site, p in rates.items()}}
            cases.append(
                Case(
                    id=f"{cell.name}-{scheme.id}",
                    cell=cell,
                    config=config,
                    claim=Claim(scheme.id, rates, doc=f"spec/schemes/{scheme.id}.yaml"),
                    steps=steps,
                    batch=batch,
                    flag_group=f"{cell.name}-{scheme.id}" if scheme.id == "variational_untied" else None,
                    rate_group=f"{cell.name}-variational" if scheme.id == "variational" else None,
                )
            )
        # the same scheme through the other code path: a performance-only flag
        untied = spec.scheme("variational_untied")
        rates = {m.site: P for m in untied.masks}
        cases.append(
            Case(
                id=f"{cell.name}-variational_untied-fused",
                cell=cell,
                config={"scheme": "variational_untied", "fused": True, **{f"p_{s}": p for s, p in rates.items()}},
                claim=Claim("variational_untied", rates, doc="spec/schemes/variational_untied.yaml"),
                steps=steps,
                batch=batch,
                flag_group=f"{cell.name}-variational_untied",
            )
        )
        # the same scheme with only the input rate: the input masks must keep their structure
        cases.append(
            Case(
                id=f"{cell.name}-variational-input_only",
                cell=cell,
                config={"scheme": "variational", "p_input": P, "p_recurrent": 0.0},
                claim=Claim("variational", {"input": P, "recurrent": 0.0}, doc="spec/schemes/variational.yaml"),
                steps=steps,
                batch=batch,
                rate_group=f"{cell.name}-variational",
            )
        )
    # scaling declared by the claim, against the scheme's own (issue 17, item 4): inverted dropout where the
    # scheme scales at test time (the candidate and cell sites), test-time scaling where it is inverted
    for kind, scheme_id, scaling in (
        ("lstm", "semeniuta", "inverted"),
        ("gru", "semeniuta", "inverted"),
        ("lstm", "rnndrop", "inverted"),
        ("lstm", "cell_per_step", "inverted"),
        ("lstm", "variational", "test_time"),
        ("gru", "locked_output", "test_time"),
    ):
        cell = next(c for c in cells if c.kind == kind)
        rates = {m.site: P for m in spec.scheme(scheme_id).masks}
        cases.append(
            Case(
                id=f"{cell.name}-{scheme_id}-{scaling}",
                cell=cell,
                config={"scheme": scheme_id, "scaling": scaling, **{f"p_{site}": p for site, p in rates.items()}},
                claim=Claim(scheme_id, rates, doc=f"spec/schemes/{scheme_id}.yaml", scaling=scaling),
                steps=steps,
                batch=batch,
            )
        )
    # stacks with dropout between the layers (PyTorch's dropout=): two and three layers, and two
    # bidirectional layers. Recurrent masks below the top layer have elements no probe can see
    # (see recovery.stacks._LevelProbe), so the stacks drop only between layers, as PyTorch does.
    for kind in ("rnn", "lstm", "gru"):
        for layers, directions in ((2, 1), (3, 1), (2, 2)):
            if layers == 3 and kind != "lstm" or directions == 2 and kind == "rnn":
                continue  # one deep and one bidirectional stack per gated cell keep the suite quick
            cell = Cell(kind, width, width, layers=layers, directions=directions)
            between = {f"input@{n}{r}": P for n in range(2, layers + 1) for r in ("", "r")[:directions]}
            cases.append(
                Case(
                    id=f"{cell.name}-zaremba_between_layers",
                    cell=cell,
                    config={"scheme": "zaremba", "layers": layers, "directions": directions, "p_between_layers": P},
                    claim=Claim("zaremba", between, doc="spec/schemes/zaremba.yaml"),
                    steps=steps,
                    batch=batch,
                )
            )
    # call modes: the oracle has none of its own, so these variants must keep every mask of the eager call
    # (they give the clauses on call modes and reloads a case the reference passes, and the mutants a target)
    # the boundary rates on the same two configurations (both sites dropped), and 1.0 on a per-step scheme too: the
    # rate clauses get a case the reference passes, and the rate mutants of tests/mutants.py a target
    modes = {name: lambda c: c.id in MODE_CASES for name in ("batch_one", "reload_config")}
    modes |= {name: lambda c: c.id in MODE_CASES for name in ("rate_zero", "rate_tiny", "rate_large")}
    modes["rate_one"] = lambda c: c.id in (*MODE_CASES, "lstm-zaremba")
    return expand(cases, modes, ReferenceAdapter)


MODE_CASES = ("lstm-variational", "gru_reset_after-variational")


# The reference as a user could paste it into a bug report: plain numpy, masks drawn by ``RULES``.
def reference_rules(case: Case, **change: Any) -> dict[str, dict[str, Any]]:
    """The case's scheme's rules for every dropped site, as the snippet's ``RULES``; ``change`` overrides fields."""
    scheme = default_spec().scheme(case.claim.scheme)
    rules = {}
    for rule in claimed_rules(scheme.masks, case.claim.scaling):
        p = float(case.claim.rates.get(rule.site, 0.0))
        if p > 0:
            r = {"p": p, "gates": rule.gates, "resample": rule.resample, "batch": rule.batch}
            r["scale"] = keep_scale(p, rule.scaling)
            if rule.same_as is not None:
                r["same_as"] = rule.same_as
            if inference_scale(p, rule.scaling) != 1.0:  # scaled at test time: the site times 1-p at inference
                r["inference"] = inference_scale(p, rule.scaling)
            if scheme.inference == "expectation":  # zoneout: the mask's mean at inference, 1 - p
                r["inference"] = (1.0 - p) * keep_scale(p, rule.scaling)
            rules[rule.site] = {**r, **change}
    return rules


def reference_snippet(
    case: Case, rules: dict[str, dict[str, Any]] | None = None, *, seeded: bool = True, at_inference: bool = False
) -> str | None:
    """The float64 reference for ``case`` as a framework-free repro (``models/reference_model.py`` with the
    case's rules as its CONFIG); None for a stack. Tests pass altered rules, ``seeded`` or ``at_inference``
    (the mutants)."""
    if case.cell.stacked:
        return None
    config: dict[str, Any] = {"kind": case.cell.kind, "reset_after": case.cell.reset_after}
    config["rules"] = reference_rules(case) if rules is None else rules
    config |= ({} if seeded else {"seeded": False}) | ({"at_inference": True} if at_inference else {})
    return compose_repro((MODELS_DIR / "reference_model.py").read_text(), case.title, config)


class ReferenceAdapter(Adapter):
    """Runs the float64 reference with masks sampled as the claimed scheme defines."""

    name = "reference"
    framework = "dropspec-reference"
    dtype = np.float64
    per_call_training = True
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): p_SITE for each mask site, and the stacks'
    # p_between_layers
    rate_keys = frozenset({*(f"p_{site}" for site in (*GATED_SITES, *STEP_SITES, "weight_hh")), "p_between_layers"})
    keep_keys: frozenset[str] = frozenset()

    def __init__(self, cases: Sequence[Case] | None = None) -> None:
        self._cases = list(cases) if cases is not None else None

    def versions(self) -> dict[str, str]:
        try:
            own = version("dropspec")
        except PackageNotFoundError:
            own = "source"
        return {"dropspec": own, "numpy": np.__version__}

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = reference_cases()
        return self._cases

    def repro(self, case: Case) -> str | None:
        # a subclass that draws or applies masks its own way (the mutants) is not what the snippet runs
        own = ("masks", "run", "inference_masks")
        if any(getattr(type(self), name) is not getattr(ReferenceAdapter, name) for name in own):
            return None
        return reference_snippet(case)

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list:
        """The masks this implementation draws (per call; for a stack, a list per layer); mutants
        override this."""
        rules = claimed_rules(default_spec().scheme(case.claim.scheme).masks, case.claim.scaling)
        return sample_case_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)

    def inference_masks(self, case: Case, steps: int, batch: int):
        """The masks of a call with ``training=False``: None, or the expectation of the scheme's masks
        (zoneout); a mutant overrides this."""
        scheme = default_spec().scheme(case.claim.scheme)
        return inference_masks(case.cell, scheme, case.claim.rates, steps, batch, case.claim.scaling)

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        rng = np.random.default_rng(seed)
        flags = [training if c.training is None else c.training for c in calls]
        masks = self.masks(case, len(calls), rng) if any(flags) else [None for _ in calls]
        return [
            run_cell(case.cell, params, c.x, c.h0, c.c0, m if on else self.inference_masks(case, *c.x.shape[:2]))
            for c, m, on in zip(calls, masks, flags)
        ]

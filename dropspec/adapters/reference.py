"""The reference adapter: the oracle itself behind the adapter interface.

It draws its masks from the spec's rules for the scheme each case claims, so it must pass
every applicable clause; the mutants in ``tests/mutants.py`` subclass it to break one rule each.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

from ..masks import keep_scale, sample_case_masks
from ..reference import Cell, Params, Trace, run_cell
from ..spec import default_spec
from .base import Adapter, CallInputs, Case, Claim

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
            rates = {m.site: P for m in scheme.masks}
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
    # stacks with dropout between the layers (PyTorch's dropout=): two and three layers, and two
    # bidirectional layers. Recurrent masks below the top layer have elements no probe can see
    # (see recovery.stacks._StackProbe), so the stacks drop only between layers, as PyTorch does.
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
    return cases


# The reference as a user could paste it into a bug report: plain numpy, masks drawn by ``RULES``.
# ``reference_snippet`` fills the rules from the case's scheme; tests pass altered rules (the mutants).
REFERENCE_SNIPPET = '''
import numpy as np

KIND, RESET_AFTER = {kind!r}, {reset_after!r}
# each dropped site: drop probability p, one mask per gate or shared, resampled per step / per sequence /
# reused across calls, per sample or shared by the batch, and the kept units' value
RULES = {rules!r}
SEEDED, AT_INFERENCE = {seeded!r}, {at_inference!r}


class Model:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed if SEEDED else None)
        self.kept = {{}}  # masks drawn once, for rules reused across calls


def build(seed):
    return Model(seed)


def load(model, w_ih, w_hh, b_ih, b_hh):
    model.params = [np.asarray(a, float) for a in (w_ih, w_hh, b_ih, b_hh)]


def draw(model, site, gates, steps, batch, units):
    r = RULES[site]
    if r["resample"] == "reused_across_calls" and site in model.kept:
        return model.kept[site]
    if site == "weight_hh":  # DropConnect: one mask over the whole recurrent matrix per call
        model.kept[site] = (model.rng.random(model.params[1].shape) >= r["p"]) * r["scale"]
        return model.kept[site]
    shape = (
        gates if r["gates"] == "per_gate" else 1,
        steps if r["resample"] == "per_step" else 1,
        batch if r["batch"] == "per_sample" else 1,
        units,
    )
    model.kept[site] = (model.rng.random(shape) >= r["p"]) * r["scale"]
    return model.kept[site]


def at(m, k, t):
    """The mask of gate k at step t; m is (gates, steps, batch, units), 1 where a site is not dropped."""
    return m[min(k, m.shape[0] - 1), min(t, m.shape[1] - 1)]


def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))


def call(model, x, h0, c0, training):
    w_ih, w_hh, b_ih, b_hh = model.params
    (steps, batch, width), hid = x.shape, h0.shape[1]
    gates = len(w_ih) // hid
    units = {{"input": width}}
    sites = ("input", "recurrent", "output", "carry_h", "carry_c", "candidate", "cell", "state_in", "weight_hh")
    m = {{s: np.ones((1, 1, 1, 1)) for s in sites}}
    if training or AT_INFERENCE:
        m.update({{s: draw(model, s, gates, steps, batch, units.get(s, hid)) for s in RULES}})
    wi, wh = np.split(w_ih, gates), np.split(w_hh * np.squeeze(m["weight_hh"]), gates)
    bi, bh = np.split(b_ih, gates), np.split(b_hh, gates)
    h, c = np.asarray(h0, float), np.zeros_like(h0) if c0 is None else np.asarray(c0, float)
    ys = []
    for t in range(steps):
        h = h * at(m["state_in"], 0, t)  # the state fed to the step, at every use inside it
        a = [(x[t] * at(m["input"], k, t)) @ wi[k].T + bi[k] for k in range(gates)]
        r = [(h * at(m["recurrent"], k, t)) @ wh[k].T + bh[k] for k in range(gates)]
        if KIND == "rnn":
            new = np.tanh(a[0] + r[0])
        elif KIND == "lstm":
            i, f, g, o = sigmoid(a[0] + r[0]), sigmoid(a[1] + r[1]), np.tanh(a[2] + r[2]), sigmoid(a[3] + r[3])
            c = at(m["cell"], 0, t) * (f * c + i * (at(m["candidate"], 0, t) * g))
            new = o * np.tanh(c)
        else:
            rg, z = sigmoid(a[0] + r[0]), sigmoid(a[1] + r[1])
            if RESET_AFTER:
                n = np.tanh(a[2] + rg * r[2])
            else:
                n = np.tanh(a[2] + (rg * h * at(m["recurrent"], 2, t)) @ wh[2].T + bh[2])
            new = z * h + (1 - z) * (at(m["candidate"], 0, t) * n)
        ys.append(at(m["output"], 0, t) * new)
        h, c = at(m["carry_h"], 0, t) * new, at(m["carry_c"], 0, t) * c
    return np.array(ys), h, c if KIND == "lstm" else None
'''


def reference_rules(case: Case, **change: Any) -> dict[str, dict[str, Any]]:
    """The case's scheme's rules for every dropped site, as the snippet's ``RULES``; ``change`` overrides fields."""
    scheme = default_spec().scheme(case.claim.scheme)
    rules = {}
    for rule in scheme.masks:
        p = float(case.claim.rates.get(rule.site, 0.0))
        if p > 0:
            r = {"p": p, "gates": rule.gates, "resample": rule.resample, "batch": rule.batch}
            r["scale"] = keep_scale(p, rule.scaling)
            rules[rule.site] = {**r, **change}
    return rules


def reference_snippet(
    case: Case, rules: dict[str, dict[str, Any]] | None = None, *, seeded: bool = True, at_inference: bool = False
) -> str | None:
    """The float64 reference for ``case`` as a framework-free snippet (build, load, call); None for a stack."""
    if case.cell.stacked:
        return None
    return REFERENCE_SNIPPET.format(
        kind=case.cell.kind,
        reset_after=case.cell.reset_after,
        rules=reference_rules(case) if rules is None else rules,
        seeded=seeded,
        at_inference=at_inference,
    ).lstrip("\n")


class ReferenceAdapter(Adapter):
    """Runs the float64 reference with masks sampled as the claimed scheme defines."""

    name = "reference"
    framework = "dropspec-reference"
    dtype = np.float64

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
        if type(self).masks is not ReferenceAdapter.masks or type(self).run is not ReferenceAdapter.run:
            return None
        return reference_snippet(case)

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list:
        """The masks this implementation draws (per call; for a stack, a list per layer); mutants
        override this."""
        scheme = default_spec().scheme(case.claim.scheme)
        return sample_case_masks(case.cell, scheme.masks, case.claim.rates, case.steps, case.batch, calls, rng)

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        rng = np.random.default_rng(seed)
        masks = self.masks(case, len(calls), rng) if training else [None for _ in calls]
        return [run_cell(case.cell, params, c.x, c.h0, c.c0, m) for c, m in zip(calls, masks)]

"""Deliberately wrong implementations: each breaks one rule of the spec, so the suite must see it.

Every mutant is the reference adapter with one change to how it draws or applies masks.
``EXPECTED`` names, for each mutant, the clause that describes its deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from dropspec.adapters.base import CallInputs, Case
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.masks import inference_masks, keep_scale, sample_masks
from dropspec.reference import Masks, Params, Trace
from dropspec.spec import MaskRule, default_spec


def cases(scheme: str, cells: Sequence[str] = ("lstm", "gru_reset_after")) -> list[Case]:
    """The scheme's eager reference cases on ``cells``, without the claims that declare a scaling of their own
    (``scaling_cases``: the mutants below that alter a rule draw from the scheme's rules)."""
    return [
        c
        for c in reference_cases()
        if c.claim.scheme == scheme and c.cell.name in cells and c.mode == "eager" and c.claim.scaling is None
    ]


class Mutant(ReferenceAdapter):
    """Draws masks from altered rules: ``change`` maps a rule to the rule actually used."""

    change: dict = {}

    def __init__(self, scheme: str = "variational") -> None:
        super().__init__(cases(scheme))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [MaskRule(**{**r.model_dump(), **self.change}) for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class PerStep(Mutant):
    name, change = "per_step", {"resample": "per_step"}


class PerGate(Mutant):
    name, change = "per_gate", {"gates": "per_gate"}


class NoScaling(Mutant):
    name, change = "no_scaling", {"scaling": "none"}


class ReusedAcrossCalls(Mutant):
    name, change = "reused_across_calls", {"resample": "reused_across_calls"}


class PerSample(Mutant):
    """Claims one mask shared by the batch (feature dropout), draws one per sample."""

    name, change = "per_sample", {"batch": "per_sample"}

    def __init__(self) -> None:
        super().__init__("feature_dropout")


class KeepScaling(ReferenceAdapter):
    """Scales kept units by keep = 1-p instead of 1/keep."""

    name = "keep_scaling"

    def __init__(self) -> None:
        super().__init__(cases("variational"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        out = super().masks(case, calls, rng)
        fix = {site: (1 - p) ** 2 for site, p in case.claim.rates.items()}  # 1/keep * keep^2 = keep
        return [Masks(**{s: (None if v is None else v * fix.get(s, 1.0)) for s, v in m.__dict__.items()}) for m in out]


class WrongRate(ReferenceAdapter):
    """Drops at twice the documented rate, still scaling by the documented 1/(1-p)."""

    name = "wrong_rate"

    def __init__(self) -> None:
        super().__init__(cases("variational"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        doubled = {s: 2 * p for s, p in case.claim.rates.items()}
        rules = default_spec().scheme(case.claim.scheme).masks
        out = sample_masks(case.cell, rules, doubled, case.steps, case.batch, calls, rng)
        fix = {s: (1 - 2 * p) / (1 - p) for s, p in case.claim.rates.items()}
        return [Masks(**{s: (None if v is None else v * fix.get(s, 1.0)) for s, v in m.__dict__.items()}) for m in out]


class CarriedState(ReferenceAdapter):
    """Variational dropout that also drops the state it carries to the next step."""

    name = "carried_state"

    def __init__(self) -> None:
        super().__init__(cases("variational", ("gru_reset_after",)))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        out = super().masks(case, calls, rng)
        carry = MaskRule(site="carry_h", resample="per_step")
        extra = sample_masks(case.cell, [carry], {"carry_h": 0.25}, case.steps, case.batch, calls, rng)
        return [m.with_site("carry_h", e.carry_h) for m, e in zip(out, extra)]


class DropoutAtInference(ReferenceAdapter):
    """Leaves dropout on when training=False."""

    name = "dropout_at_inference"

    def __init__(self) -> None:
        super().__init__(cases("variational"))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        return super().run(case, params, calls, seed=seed, training=True)


class FusedSharesMasks(ReferenceAdapter):
    """A performance-only flag that changes the masks: ``fused=True`` draws one mask for all gates,
    as the user report says Keras' implementation=2 does."""

    name = "fused_shares_masks"

    def __init__(self) -> None:
        super().__init__([c for c in reference_cases() if c.flag_group and c.cell.name == "lstm"])

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        if not case.config.get("fused"):
            return super().masks(case, calls, rng)
        rules = [replace_rule(r, gates="shared") for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class CoupledSites(ReferenceAdapter):
    """Input masks turn per-step when the recurrent rate is zero."""

    name = "coupled_sites"

    def __init__(self) -> None:
        super().__init__([c for c in reference_cases() if c.rate_group and c.cell.name == "lstm"])

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = default_spec().scheme(case.claim.scheme).masks
        if case.claim.rates.get("recurrent", 0.0) == 0.0:
            rules = [replace_rule(r, resample="per_step") for r in rules]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class Unseeded(ReferenceAdapter):
    """Ignores the seed."""

    name = "unseeded"

    def __init__(self) -> None:
        super().__init__(cases("variational", ("lstm",)))
        self._entropy = np.random.default_rng()

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        return super().run(case, params, calls, seed=int(self._entropy.integers(1 << 30)), training=training)


class HiddenNoise(ReferenceAdapter):
    """Does something the masks cannot explain: a perturbation that only dense weights reveal."""

    name = "hidden_noise"

    def __init__(self) -> None:
        super().__init__(cases("variational", ("lstm",)))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        traces = super().run(case, params, calls, seed=seed, training=training)
        off_diagonal = np.abs(params.w_hh[: case.cell.hidden_size]).sum() - np.abs(np.diag(params.w_hh)).sum()
        flags = [training if c.training is None else c.training for c in calls]
        return [replace(t, y=t.y * 1.01) if on and off_diagonal > 0 else t for t, on in zip(traces, flags)]


def replace_rule(rule: MaskRule, **change: str) -> MaskRule:
    return MaskRule(**{**rule.model_dump(), **change})


# -- wrong weight drop (DropConnect on W_hh): the ways a WeightDrop module can go wrong ------------------------
class WeightPerStep(PerStep):
    """Redraws the weight mask at every step (DropConnect re-applied inside the time loop)."""

    name = "weight_per_step"

    def __init__(self) -> None:
        Mutant.__init__(self, "weight_drop")


class WeightPerSample(Mutant):
    """One weight mask per sample of the batch, instead of one for the batch."""

    name, change = "weight_per_sample", {"batch": "per_sample"}

    def __init__(self) -> None:
        super().__init__("weight_drop")


class WeightNoScaling(NoScaling):
    """Drops weights without the 1/(1-p) rescale."""

    name = "weight_no_scaling"

    def __init__(self) -> None:
        Mutant.__init__(self, "weight_drop")


class WeightReused(ReusedAcrossCalls):
    """Drops the weights once (at construction) and reuses that mask on every call."""

    name = "weight_reused_across_calls"

    def __init__(self) -> None:
        Mutant.__init__(self, "weight_drop")


class WeightWrongRate(WrongRate):
    """Drops weights at twice the documented rate."""

    name = "weight_wrong_rate"

    def __init__(self) -> None:
        ReferenceAdapter.__init__(self, cases("weight_drop"))


class StateInsteadOfWeights(ReferenceAdapter):
    """Claims weight drop but drops the state fed to the recurrent matmul (variational, tied): every
    column of W_hh is dropped together, per sample."""

    name = "state_instead_of_weights"

    def __init__(self) -> None:
        super().__init__(cases("weight_drop"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rule = MaskRule(site="recurrent", resample="per_sequence")
        rates = {"recurrent": case.claim.rates["weight_hh"]}
        return sample_masks(case.cell, [rule], rates, case.steps, case.batch, calls, rng)


# -- the state fed to each step (h dropped before a stock GRU cell) ------------------------------------------
class StateInInsteadOfRecurrent(ReferenceAdapter):
    """Claims variational dropout on a GRU, but drops h before the cell (Flax's documented recipe): the mask
    reaches the memory path z * h_{t-1} and h0, not only the recurrent matmul."""

    name = "state_in_instead_of_recurrent"

    def __init__(self) -> None:
        super().__init__(cases("variational", ("gru_reset_after", "gru_reset_before")))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [r for r in default_spec().scheme("variational").masks if r.site == "input"]
        rules.append(MaskRule(site="state_in", resample="per_sequence"))
        rates = {"input": case.claim.rates["input"], "state_in": case.claim.rates["recurrent"]}
        return sample_masks(case.cell, rules, rates, case.steps, case.batch, calls, rng)


class StateInPerStep(PerStep):
    """Drops the state fed to each step with a new mask at every step."""

    name = "state_in_per_step"

    def __init__(self) -> None:
        Mutant.__init__(self, "state_in_per_sequence")


class CarriedInsteadOfStateIn(ReferenceAdapter):
    """Claims dropout on the state fed to each step, but drops the state carried on (DropoutWrapper's way):
    h0 is kept and the returned state is dropped."""

    name = "carried_instead_of_state_in"

    def __init__(self) -> None:
        super().__init__(cases("state_in_per_sequence", ("gru_reset_after", "gru_reset_before")))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rule = MaskRule(site="carry_h", resample="per_sequence")
        rates = {"carry_h": case.claim.rates["state_in"]}
        return sample_masks(case.cell, [rule], rates, case.steps, case.batch, calls, rng)


class ModeChangesMasks(ReferenceAdapter):
    """A call mode (here a batch of one) that draws a fresh mask every step, as a compiled path might."""

    name = "mode_changes_masks"

    def __init__(self) -> None:
        super().__init__([c for c in reference_cases() if c.mode_group == "lstm-variational"])

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        if case.mode == "eager" or case.mode.startswith("reload"):  # reloads: ReloadChangesMasks
            return super().masks(case, calls, rng)
        rules = [replace_rule(r, resample="per_step") for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class ReloadChangesMasks(ReferenceAdapter):
    """A layer rebuilt from its configuration that draws one mask per gate where the original shares one."""

    name = "reload_changes_masks"

    def __init__(self) -> None:
        super().__init__([c for c in reference_cases() if c.mode_group == "lstm-variational"])

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        if not case.mode.startswith("reload"):
            return super().masks(case, calls, rng)
        rules = [replace_rule(r, gates="per_gate") for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class StickyTraining(ReferenceAdapter):
    """Dropout stays on for an inference call once the model has run a training call (pytorch's reports of
    dropout left on after a training forward)."""

    name = "sticky_training"

    def __init__(self) -> None:
        super().__init__(cases("variational", ("lstm",)))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        flags = [training if c.training is None else c.training for c in calls]
        sticky = [any(flags[: n + 1]) for n in range(len(flags))]
        return super().run(
            case, params, [replace(c, training=f) for c, f in zip(calls, sticky)], seed=seed, training=training
        )


# -- the boundary rates (the rate_zero and rate_one call modes) ----------------------------------------------------
def rate_cases(mode: str) -> list[Case]:
    return [c for c in reference_cases() if c.mode == mode]


class DropsAtZero(ReferenceAdapter):
    """Still drops at rate 0: a rate of 0 read as "use the default", 0.25."""

    name = "drops_at_zero"

    def __init__(self) -> None:
        super().__init__(rate_cases("rate_zero"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rates = {site: p or 0.25 for site, p in case.claim.rates.items()}
        rules = default_spec().scheme(case.claim.scheme).masks
        return sample_masks(case.cell, rules, rates, case.steps, case.batch, calls, rng)


class NaNAtOne(ReferenceAdapter):
    """At rate 1.0 scales the kept units by 1/(1-p) regardless: 0 * inf, every output NaN."""

    name = "nan_at_one"

    def __init__(self) -> None:
        super().__init__(rate_cases("rate_one"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        with np.errstate(invalid="ignore"):
            return [
                Masks(**{s: (None if v is None else v * np.inf) for s, v in m.__dict__.items()})
                for m in super().masks(case, calls, rng)
            ]


class KeepsAtOne(ReferenceAdapter):
    """Applies a site's mask only when 0 < p < 1, so rate 1.0 silently keeps every unit."""

    name = "keeps_at_one"

    def __init__(self) -> None:
        super().__init__(rate_cases("rate_one"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rates = {site: p if p < 1.0 else 0.0 for site, p in case.claim.rates.items()}
        rules = default_spec().scheme(case.claim.scheme).masks
        return sample_masks(case.cell, rules, rates, case.steps, case.batch, calls, rng)


class CrashesAtOne(ReferenceAdapter):
    """Crashes at rate 1.0 with an error that does not name the rate (a division deep inside)."""

    name = "crashes_at_one"

    def __init__(self) -> None:
        super().__init__(rate_cases("rate_one"))

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        if training:
            raise ZeroDivisionError("float division by zero")
        return super().run(case, params, calls, seed=seed, training=training)


# mutant -> (the clause that names its deviation, every clause it must fail, or None when the
# mutant's failures beyond that clause are random)
V = "variational"
EXPECTED = {
    PerStep: ("variational.input.resample", {f"{V}.input.resample", f"{V}.recurrent.resample"}),
    PerGate: ("variational.input.gates", {f"{V}.input.gates", f"{V}.recurrent.gates"}),
    NoScaling: ("variational.input.scale", {f"{V}.input.scale", f"{V}.recurrent.scale"}),
    KeepScaling: ("variational.input.scale", {f"{V}.input.scale", f"{V}.recurrent.scale"}),
    WrongRate: ("variational.input.rate", {f"{V}.input.rate", f"{V}.recurrent.rate"}),
    CarriedState: (
        "variational.state.carried",
        {f"{V}.state.carried", f"{V}.sites.inactive"},
    ),
    ReusedAcrossCalls: (
        "common.calls.resample",
        {"common.calls.resample", f"{V}.input.resample", f"{V}.recurrent.resample"},
    ),
    DropoutAtInference: ("common.mapping.inference_matches_reference", {"common.mapping.inference_matches_reference"}),
    PerSample: ("feature_dropout.input.batch", {"feature_dropout.input.batch"}),
    FusedSharesMasks: (
        "common.flags.performance_only",
        {"common.flags.performance_only", f"{V}_untied.input.gates", f"{V}_untied.recurrent.gates"},
    ),
    CoupledSites: ("common.sites.independent", {"common.sites.independent", f"{V}.input.resample"}),
    Unseeded: ("common.seed.reproducible", None),
    HiddenNoise: ("common.replay.explained", {"common.replay.explained"}),
    ModeChangesMasks: (
        "common.modes.masks",
        {"common.modes.masks", f"{V}.input.resample", f"{V}.recurrent.resample"},
    ),
    ReloadChangesMasks: (
        "common.modes.reload",
        {"common.modes.reload", f"{V}.input.gates", f"{V}.recurrent.gates"},
    ),
    StickyTraining: ("common.flags.training", {"common.flags.training"}),
    DropsAtZero: ("common.rates.zero", {"common.rates.zero", f"{V}.sites.inactive"}),
    NaNAtOne: ("common.rates.one", {"common.rates.one"}),
    KeepsAtOne: (
        "common.rates.one",
        {"common.rates.one", f"{V}.input.rate", f"{V}.recurrent.rate", "zaremba.input.rate"},
    ),
    CrashesAtOne: ("common.rates.one", {"common.rates.one"}),
    WeightPerStep: ("weight_drop.weight_hh.resample", {"weight_drop.weight_hh.resample"}),
    WeightPerSample: ("weight_drop.weight_hh.batch", {"weight_drop.weight_hh.batch"}),
    WeightNoScaling: ("weight_drop.weight_hh.scale", {"weight_drop.weight_hh.scale"}),
    WeightReused: (
        "common.calls.resample",
        {"common.calls.resample", "weight_drop.weight_hh.resample"},
    ),
    WeightWrongRate: ("weight_drop.weight_hh.rate", {"weight_drop.weight_hh.rate"}),
    # folded into weight_hh by recovery (see recovery.weights): whole columns, per sample; its rate check
    # counts every element of a column as a draw, so whether it also fails weight_drop.weight_hh.rate is chance
    StateInsteadOfWeights: ("weight_drop.weight_hh.batch", None),
    StateInInsteadOfRecurrent: (
        "variational.sites.inactive",
        {
            f"{V}.sites.inactive",
            *(f"{V}.recurrent.{c}" for c in ("resample", "gates", "batch", "scale", "rate")),
        },
    ),
    StateInPerStep: (
        "state_in_per_sequence.state_in.resample",
        {"state_in_per_sequence.state_in.resample"},
    ),
    CarriedInsteadOfStateIn: (
        "state_in_per_sequence.state.carried",
        {
            "state_in_per_sequence.state.carried",
            "state_in_per_sequence.sites.inactive",
            *(f"state_in_per_sequence.state_in.{c}" for c in ("resample", "batch", "scale", "rate")),
        },
    ),
}


# -- the schemes of issue 17, item 6 (locked output, ELMo's single mask, cell per step, carry_c) and declared
# scaling (item 4): one mutant per clause, each the reference with one rule of the scheme changed ----------------
def scheme_mutant(name: str, scheme: str, change: dict, cells: Sequence[str] = ("lstm", "gru_reset_after")) -> type:
    """A ``Mutant`` of ``scheme``'s reference cases on ``cells`` whose every rule has ``change``."""

    def __init__(self) -> None:
        ReferenceAdapter.__init__(self, cases(scheme, cells))

    return type(name, (Mutant,), {"name": name, "change": change, "__init__": __init__, "__doc__": str(change)})


class ExtraSite(ReferenceAdapter):
    """Draws the scheme's masks and also one at a site the scheme does not drop (``extra``, at rate 0.25)."""

    name, scheme, cells = "extra_site", "locked_output", ("lstm", "gru_reset_after")
    extra = MaskRule(site="carry_h", resample="per_step")

    def __init__(self) -> None:
        super().__init__(cases(self.scheme, self.cells))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        out = super().masks(case, calls, rng)
        more = sample_masks(case.cell, [self.extra], {self.extra.site: 0.25}, case.steps, case.batch, calls, rng)
        return [m.with_site(self.extra.site, e.get(self.extra.site)) for m, e in zip(out, more)]


class LockedCarriesState(ExtraSite):
    """Locked output dropout that also drops the state it carries, a fresh mask per step."""

    name = "locked_carries_state"


class CellPerStepCarriesState(ExtraSite):
    """Per-step cell-state dropout that also drops the carried h."""

    name, scheme, cells = "cell_per_step_carries_state", "cell_per_step", ("lstm",)


class ElmoExtraCell(ExtraSite):
    """ELMo's single mask, and a per-step mask on the carried cell state too."""

    name, scheme, cells = "elmo_extra_carry_c", "elmo_single_mask", ("lstm",)
    extra = MaskRule(site="carry_c", resample="per_step")


class CarryCExtraCarryH(ExtraSite):
    """Drops the carried c, and the carried h too (a dropout_state_filter_visitor that returns True for both)."""

    name, scheme, cells = "carry_c_extra_carry_h", "carry_c", ("lstm",)
    extra = MaskRule(site="carry_h", resample="per_step")


class ElmoTwoMasks(ReferenceAdapter):
    """ELMo's sites with a mask each: the carried h and the output dropped independently."""

    name = "elmo_two_masks"

    def __init__(self) -> None:
        super().__init__(cases("elmo_single_mask", ("lstm",)))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [replace_rule(r, same_as=None) for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class ElmoOutputOnly(ReferenceAdapter):
    """ELMo's output mask only: the state carried on is undropped (locked output dropout)."""

    name = "elmo_output_only"

    def __init__(self) -> None:
        super().__init__(cases("elmo_single_mask", ("lstm",)))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [r for r in default_spec().scheme(case.claim.scheme).masks if r.site == "output"]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)


class CellInsteadOfCarryC(ReferenceAdapter):
    """Claims carry_c but drops the cell state inside the step (per step): h reads the dropped c, and c is
    carried as computed."""

    name = "cell_instead_of_carry_c"

    def __init__(self) -> None:
        super().__init__(cases("carry_c", ("lstm",)))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rule = MaskRule(site="cell", resample="per_step", scaling="inverted")
        rates = {"cell": case.claim.rates["carry_c"]}
        return sample_masks(case.cell, [rule], rates, case.steps, case.batch, calls, rng)


def scaling_cases(scaling: str) -> list[Case]:
    return [c for c in reference_cases() if c.claim.scaling == scaling and c.mode == "eager"]


class InvertedDespiteTestTime(ReferenceAdapter):
    """The claim declares test-time scaling; the layer drops inverted (1/(1-p) in training, identity at inference)."""

    name = "inverted_despite_test_time"

    def __init__(self) -> None:
        super().__init__(scaling_cases("test_time"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [replace_rule(r, scaling="inverted") for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)

    def inference_masks(self, case: Case, steps: int, batch: int):
        return None


class ScaledAtTestDespiteInverted(ReferenceAdapter):
    """The claim declares inverted dropout; the layer keeps 0/1 masks and multiplies by 1-p at inference
    (drop-rnn's way, where a framework documents the inverted form)."""

    name = "test_time_despite_inverted"

    def __init__(self) -> None:
        super().__init__(scaling_cases("inverted"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = [replace_rule(r, scaling="test_time") for r in default_spec().scheme(case.claim.scheme).masks]
        return sample_masks(case.cell, rules, case.claim.rates, case.steps, case.batch, calls, rng)

    def inference_masks(self, case: Case, steps: int, batch: int):
        return inference_masks(case.cell, default_spec().scheme(case.claim.scheme), case.claim.rates, steps, batch)


class ForgetsTestTimeScaling(ReferenceAdapter):
    """Draws 0/1 masks as a test-time scheme says, but leaves the site unscaled at inference."""

    name = "forgets_test_time_scaling"

    def __init__(self) -> None:
        super().__init__(cases("semeniuta") + cases("cell_per_step", ("lstm",)))

    def inference_masks(self, case: Case, steps: int, batch: int):
        return None


LockedPerStep = scheme_mutant("locked_per_step", "locked_output", {"resample": "per_step"})
LockedBatchShared = scheme_mutant("locked_batch_shared", "locked_output", {"batch": "shared"})
LockedNoScaling = scheme_mutant("locked_no_scaling", "locked_output", {"scaling": "none"})
ElmoPerStep = scheme_mutant("elmo_per_step", "elmo_single_mask", {"resample": "per_step"}, ("lstm",))
ElmoBatchShared = scheme_mutant("elmo_batch_shared", "elmo_single_mask", {"batch": "shared"}, ("lstm",))
ElmoNoScaling = scheme_mutant("elmo_no_scaling", "elmo_single_mask", {"scaling": "none"}, ("lstm",))
CellPerSequence = scheme_mutant("cell_per_sequence", "cell_per_step", {"resample": "per_sequence"}, ("lstm",))
CellBatchShared = scheme_mutant("cell_batch_shared", "cell_per_step", {"batch": "shared"}, ("lstm",))
CellInverted = scheme_mutant("cell_inverted", "cell_per_step", {"scaling": "inverted"}, ("lstm",))
CarryCPerSequence = scheme_mutant("carry_c_per_sequence", "carry_c", {"resample": "per_sequence"}, ("lstm",))
CarryCBatchShared = scheme_mutant("carry_c_batch_shared", "carry_c", {"batch": "shared"}, ("lstm",))
CarryCNoScaling = scheme_mutant("carry_c_no_scaling", "carry_c", {"scaling": "none"}, ("lstm",))


def wrong_rate(name: str, scheme: str, cells: Sequence[str]) -> type:
    """``WrongRate`` on ``scheme``: twice the rate, each kept unit at the scale the rule documents (1/(1-p) when
    inverted, 1 when scaled at test time)."""

    def __init__(self) -> None:
        ReferenceAdapter.__init__(self, cases(scheme, cells))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rules = default_spec().scheme(case.claim.scheme).masks
        doubled = {s: 2 * p for s, p in case.claim.rates.items()}
        out = sample_masks(case.cell, rules, doubled, case.steps, case.batch, calls, rng)
        fix = {
            r.site: keep_scale(case.claim.rates[r.site], r.scaling)
            / keep_scale(2 * case.claim.rates[r.site], r.scaling)
            for r in rules
        }
        return [Masks(**{s: (None if v is None else v * fix.get(s, 1.0)) for s, v in m.__dict__.items()}) for m in out]

    return type(name, (WrongRate,), {"name": name, "__init__": __init__, "masks": masks, "__doc__": wrong_rate.__doc__})


LockedWrongRate = wrong_rate("locked_wrong_rate", "locked_output", ("lstm", "gru_reset_after"))
ElmoWrongRate = wrong_rate("elmo_wrong_rate", "elmo_single_mask", ("lstm",))
CellWrongRate = wrong_rate("cell_wrong_rate", "cell_per_step", ("lstm",))
CarryCWrongRate = wrong_rate("carry_c_wrong_rate", "carry_c", ("lstm",))

LO, EL, CP, CC = "locked_output", "elmo_single_mask", "cell_per_step", "carry_c"
EXPECTED.update(
    {
        LockedPerStep: (f"{LO}.output.resample", {f"{LO}.output.resample"}),
        LockedBatchShared: (f"{LO}.output.batch", {f"{LO}.output.batch"}),
        # unscaled per-sequence output masks on an LSTM: recovery cannot always tell them from cell-state masks,
        # so which further clauses fail depends on the draw
        LockedNoScaling: (f"{LO}.output.scale", None),
        LockedWrongRate: (f"{LO}.output.rate", {f"{LO}.output.rate"}),
        # a carried h behind an output dropped for the whole sequence is unseen: the replay fails as well
        LockedCarriesState: (f"{LO}.state.carried", None),
        ElmoPerStep: (f"{EL}.output.resample", None),
        ElmoBatchShared: (f"{EL}.output.batch", None),
        ElmoNoScaling: (f"{EL}.output.scale", None),
        ElmoWrongRate: (f"{EL}.output.rate", None),
        ElmoTwoMasks: (f"{EL}.masks.shared", None),
        ElmoOutputOnly: (f"{EL}.state.carried", None),
        ElmoExtraCell: (f"{EL}.sites.inactive", None),
        CellPerSequence: (f"{CP}.cell.resample", {f"{CP}.cell.resample"}),
        CellBatchShared: (f"{CP}.cell.batch", {f"{CP}.cell.batch"}),
        CellInverted: (f"{CP}.cell.scale", {f"{CP}.cell.scale"}),
        CellWrongRate: (f"{CP}.cell.rate", {f"{CP}.cell.rate"}),
        CellPerStepCarriesState: (f"{CP}.state.carried", None),
        CarryCPerSequence: (f"{CC}.carry_c.resample", {f"{CC}.carry_c.resample"}),
        CarryCBatchShared: (f"{CC}.carry_c.batch", {f"{CC}.carry_c.batch"}),
        CarryCNoScaling: (f"{CC}.carry_c.scale", {f"{CC}.carry_c.scale"}),
        CarryCWrongRate: (f"{CC}.carry_c.rate", {f"{CC}.carry_c.rate"}),
        CarryCExtraCarryH: (f"{CC}.sites.inactive", None),
        CellInsteadOfCarryC: (f"{CC}.state.carried", None),
        InvertedDespiteTestTime: ("common.mapping.inference_matches_reference", None),
        ScaledAtTestDespiteInverted: ("common.mapping.inference_matches_reference", None),
        ForgetsTestTimeScaling: ("common.mapping.inference_matches_reference", None),
    }
)


# -- zoneout (issue 17, item 6): one mutant per clause; the mask stored is the update mask u = 1 - d -------------
class ZoneMutant(Mutant):
    """Zoneout on LSTM and GRU with every rule changed as ``change`` says."""

    def __init__(self) -> None:
        Mutant.__init__(self, "zoneout")


class ZonePerSequence(ZoneMutant):
    """One zoneout mask for the whole sequence (a mask drawn once per call, then reused at every step)."""

    name, change = "zone_per_sequence", {"resample": "per_sequence"}


class ZoneBatchShared(ZoneMutant):
    """One zoneout mask for every sample of the batch."""

    name, change = "zone_batch_shared", {"batch": "shared"}


class ZoneScaled(ZoneMutant):
    """Zoneout through inverted dropout of the update without undoing its scale: h + dropout(h~ - h) updates a
    unit by 1/(1-p) times the difference (the authors' TF gist multiplies by 1 - p to undo it)."""

    name, change = "zone_scaled", {"scaling": "inverted"}


class ZoneKeepProbability(ReferenceAdapter):
    """Reads the rate as the probability of updating, as the authors' Theano gist does: zones with 1 - p."""

    name = "zone_keep_probability"

    def __init__(self) -> None:
        super().__init__(cases("zoneout"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rates = {site: 1.0 - p for site, p in case.claim.rates.items()}
        rules = default_spec().scheme("zoneout").masks
        return sample_masks(case.cell, rules, rates, case.steps, case.batch, calls, rng)


class ZoneOffAtInference(ReferenceAdapter):
    """No zoneout at inference, h_t = h~_t, instead of the expectation p h_{t-1} + (1 - p) h~_t (MXNet's
    ZoneoutCell: its mask is dropout on ones, all ones at inference)."""

    name = "zone_off_at_inference"

    def __init__(self) -> None:
        super().__init__(cases("zoneout"))

    def inference_masks(self, case: Case, steps: int, batch: int):
        return None


class DropoutInsteadOfZoneout(ReferenceAdapter):
    """Claims zoneout, but drops the carried state (inverted, per step) instead of keeping its previous value:
    a DropoutCell(dropout_states=p) where a ZoneoutCell was meant."""

    name = "dropout_instead_of_zoneout"

    def __init__(self) -> None:
        super().__init__(cases("zoneout"))

    def masks(self, case: Case, calls: int, rng: np.random.Generator) -> list[Masks]:
        rule = MaskRule(site="carry_h", resample="per_step")
        rates = {"carry_h": case.claim.rates["zone_h"]}
        return sample_masks(case.cell, [rule], rates, case.steps, case.batch, calls, rng)


Z = "zoneout"
EXPECTED.update(
    {
        # a unit zoned out for many steps in a row hides the cell states behind it (recovery.zone reads c through
        # h), so where such runs occur the replay fails too: per sequence, or zoning with 1 - p
        ZonePerSequence: (f"{Z}.zone_h.resample", None),
        ZoneBatchShared: (f"{Z}.zone_h.batch", {f"{Z}.zone_h.batch", f"{Z}.zone_c.batch"}),
        ZoneScaled: (f"{Z}.zone_h.scale", {f"{Z}.zone_h.scale", f"{Z}.zone_c.scale"}),
        ZoneKeepProbability: (f"{Z}.zone_h.rate", None),
        # the train, eval, train sequence compares its eval call with the same reference at inference
        ZoneOffAtInference: (
            f"{Z}.inference.expectation",
            {f"{Z}.inference.expectation", "common.mapping.inference_matches_reference", "common.flags.training"},
        ),
        # no zone mask is found, so every zone clause fails as well
        DropoutInsteadOfZoneout: (f"{Z}.state.carried", None),
    }
)

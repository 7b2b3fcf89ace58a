"""A name for every measured behaviour: the spec schemes a fingerprint matches, or the nearest one and how it differs.

A scheme's rates are its parameters: "variational with p_recurrent = 0" is variational. So a scheme
matches a fingerprint when every site the case drops has a rule in the scheme and follows it
(resample, gates, batch, scaling), and the carried state is dropped only where the scheme drops it;
a site of the scheme the case does not drop is that site at rate 0, not a mismatch. Nothing dropped
is the ``none`` scheme alone: at rate 0 every scheme would match, which names nothing.

Where no scheme matches, the nearest one is named with its differences, site then measured value,
in the spec's words: ``variational_untied, except input: per_step``. So no measured case is left
without a name.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .fingerprint import Fingerprint, SiteFingerprint
from .masks import base_site, claimed_rules
from .reference import GATES, Cell
from .spec import MaskRule, Scheme, Spec, default_spec

Aspect = Literal["site", "resample", "gates", "batch", "scaling", "carried_state"]
NO_SCHEME = "no scheme in the spec"  # only where the spec holds no scheme for the cell at all

# the measured value of a gate or batch sharing in the words of the spec's clause ids: "shared" alone
# would not say whether the gates or the samples share the mask
_GATE_WORDS = {"shared": "shared_gates", "per_gate": "per_gate"}
_BATCH_WORDS = {"shared": "batch_shared", "per_sample": "per_sample"}
# resampling orders by how long one mask lasts: a step, a sequence, every call. A mask reused across
# calls is still one per sequence within a call, so it is nearer per_sequence than per_step
_RESAMPLE_ORDER = ("per_step", "per_sequence", "reused_across_calls")


@dataclass(frozen=True)
class Difference:
    """One way a fingerprint breaks a scheme's rules."""

    site: str  # the result's site name (``input``, ``input@2``), or ``carried state``
    aspect: Aspect  # ``site``: the scheme has no rule for a site the case drops
    measured: str  # what the case does, in the spec's words
    rule: str | None  # what the scheme says; None where it has no rule for the site

    @property
    def text(self) -> str:
        return f"{self.site}: {self.measured}"

    @property
    def weight(self) -> int:
        """How far apart the measured value and the rule are: 1, but for resampling the number of
        steps between them in ``_RESAMPLE_ORDER`` (per_step to reused_across_calls is 2)."""
        if self.aspect == "resample" and self.rule is not None:
            return abs(_RESAMPLE_ORDER.index(self.measured) - _RESAMPLE_ORDER.index(self.rule))
        return 1


@dataclass(frozen=True)
class Behaviour:
    """What a case behaves as. ``schemes``: every scheme it matches, most specific first (fewest of
    the scheme's sites left undropped); empty when none matches, and then ``nearest`` and
    ``details`` say which scheme comes closest and how the case differs from it."""

    schemes: list[str]
    nearest: str | None = None
    details: list[Difference] = field(default_factory=list)

    @property
    def differences(self) -> list[str]:
        """One entry per site, its measured values in the order of ``details``: ``input: per_step, per_gate``."""
        by_site: dict[str, list[str]] = {}
        for d in self.details:
            by_site.setdefault(d.site, []).append(d.measured)
        return [f"{site}: {', '.join(values)}" for site, values in by_site.items()]

    @property
    def text(self) -> str:
        if self.schemes:
            return ", ".join(self.schemes)
        if self.nearest is None:
            return NO_SCHEME
        return f"{self.nearest}, except " + "; ".join(self.differences)

    def nearest_dict(self) -> dict[str, Any] | None:
        """For a results file: ``{"scheme", "differences", "details"}``; None when a scheme matches."""
        if self.nearest is None:
            return None
        return {
            "scheme": self.nearest,
            "differences": self.differences,
            "details": [asdict(d) for d in self.details],
        }


def _kind(cell: Cell | str) -> str:
    """The cell kind of a ``Cell`` or of a results file's cell name (``lstm``, ``gru_reset_after_x2_bi``)."""
    if isinstance(cell, Cell):
        return cell.kind
    kind = cell.partition("_")[0]
    if kind not in GATES:
        raise ValueError(
            f"cell {cell!r} names no known cell kind; a results file's 'cell' starts with one of {sorted(GATES)}"
        )
    return kind


def _rule_differences(got: SiteFingerprint, rule: MaskRule) -> list[Difference]:
    out = []
    if got.resample != rule.resample:
        out.append(Difference(got.site, "resample", got.resample, rule.resample))
    # a cell with one gate (or the weight site) has no gate axis, a batch of one no batch axis: nothing to compare
    if got.gates is not None and got.gates != rule.gates:
        out.append(Difference(got.site, "gates", _GATE_WORDS[got.gates], _GATE_WORDS[rule.gates]))
    if got.batch is not None and got.batch != rule.batch:
        out.append(Difference(got.site, "batch", _BATCH_WORDS[got.batch], _BATCH_WORDS[rule.batch]))
    # masks scaled at test time are 0/1 in training, as unscaled ones are: only inference tells the two apart
    if got.scaling != ("none" if rule.scaling == "test_time" else rule.scaling):
        out.append(Difference(got.site, "scaling", f"scale {got.scale:.4g}", rule.scaling))
    return out


def scheme_differences(fp: Fingerprint, scheme: Scheme) -> list[Difference]:
    """Every way the sites ``fp`` drops break ``scheme``'s rules; empty when the scheme matches. A
    scheme site the case does not drop is that site at rate 0, no difference. In a stack every
    layer's site (``input@2``, ...) is held to the rule of its site."""
    out: list[Difference] = []
    for name in sorted(fp.sites):
        rule = scheme.rule(base_site(name))
        if rule is None:
            out.append(Difference(name, "site", "dropped", None))
        else:
            out.extend(_rule_differences(fp.sites[name], rule))
    # a dropped carry site already says the state is dropped; this catches a scheme that has a rule
    # for the carry site and still says the carried state is undropped
    if fp.carried_state_dropped and scheme.carried_state != "dropped":
        if not any(d.aspect == "site" and base_site(d.site).startswith("carry_") for d in out):
            out.append(Difference("carried state", "carried_state", "dropped", scheme.carried_state))
    return out


def _unused(fp: Fingerprint, scheme: Scheme) -> int:
    """How many of the scheme's sites the case leaves undropped (rate 0)."""
    dropped = {base_site(n) for n in fp.sites}
    return sum(1 for m in scheme.masks if m.site not in dropped)


def candidate_schemes(spec: Spec, cell: Cell | str) -> list[Scheme]:
    """The schemes that can name a case of ``cell``: every scheme for its kind but ``common``, whose
    clauses hold for every scheme and which defines no masks."""
    kind = _kind(cell)
    return [s for s in spec.schemes.values() if s.id != "common" and kind in s.cells]


def name_behaviour(
    fp: Fingerprint, spec: Spec, cell: Cell | str, prefer: str | None = None, scaling: str | None = None
) -> Behaviour:
    """The name of what ``fp`` does (see the module docstring). Deterministic: matching schemes
    are ordered by the number of their sites left undropped, then by id; the nearest scheme is the
    one with the fewest dropped sites it has no rule for, then the fewest rule differences (each
    weighted by ``Difference.weight``), then the fewest undropped sites, then ``prefer`` (the scheme the
    case's documentation claims: of two equally good names, the one the reader compares with), then the
    first id. Sites
    it lacks come first because a scheme without a rule for a dropped site describes less of the
    case than one whose rule for it differs in one aspect. ``scaling``: the scaling the claim declares
    (``Claim.scaling``), a parameter of the ``prefer`` scheme as its rates are: that scheme is held to it."""
    schemes = candidate_schemes(spec, cell)
    if scaling is not None:
        schemes = [
            s.model_copy(update={"masks": claimed_rules(s.masks, scaling)}) if s.id == prefer else s for s in schemes
        ]
    if not fp.sites and not fp.carried_state_dropped:
        # every scheme at rate 0: the name is the scheme that drops nothing
        if any(s.id == "none" for s in schemes):
            return Behaviour(schemes=["none"])
        return Behaviour(schemes=[s.id for s in schemes if not s.masks])
    scored = []
    for scheme in schemes:
        diffs = scheme_differences(fp, scheme)
        missing = sum(1 for d in diffs if d.aspect == "site")
        apart = sum(d.weight for d in diffs if d.aspect != "site")
        scored.append(((missing, apart, _unused(fp, scheme), scheme.id != prefer, scheme.id), scheme, diffs))
    matched = sorted((key, s.id) for key, s, diffs in scored if not diffs)
    if matched:
        return Behaviour(schemes=[sid for _, sid in matched])
    if not scored:
        return Behaviour(schemes=[])
    _, nearest, diffs = min(scored, key=lambda item: item[0])
    return Behaviour(schemes=[], nearest=nearest.id, details=diffs)


def behaves_as(fp: Fingerprint, spec: Spec, cell: Cell | str) -> list[str]:
    """The spec schemes whose rules the fingerprint matches, most specific first."""
    return name_behaviour(fp, spec, cell).schemes


def behaviour_from_record(
    fingerprint: dict[str, Any],
    cell: str,
    spec: Spec | None = None,
    prefer: str | None = None,
    scaling: str | None = None,
) -> Behaviour:
    """``name_behaviour`` for a case recorded before results carried a name: ``fingerprint`` is the
    record's fingerprint dict (``observation.fingerprint`` in a results file, ``fingerprint`` in a
    ``reports/matrix.json`` case) and ``cell`` its cell name (``lstm``, ``gru_reset_after_x2_bi``)."""
    return name_behaviour(Fingerprint.from_dict(fingerprint), spec or default_spec(), cell, prefer, scaling)

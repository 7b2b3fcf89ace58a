"""The spec as data: pydantic models for ``spec/*.yaml``, a loader with clear errors, the JSON Schema.

A scheme is a set of mask rules (site, gates, resampling, batch sharing, scaling) plus
the state it carries, and its clauses. A clause has a stable dotted id, a level, the
normative sentence, the source it comes from, and a ``check`` from a closed vocabulary
that the conformance engine knows how to evaluate.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

# spec/ at the repository root; an installed wheel carries a copy as dropspec/_spec
_PACKAGED_SPEC = Path(__file__).resolve().parent / "_spec"
SPEC_DIR = _PACKAGED_SPEC if _PACKAGED_SPEC.is_dir() else Path(__file__).resolve().parent.parent / "spec"

Level = Literal["MUST", "SHOULD", "MAY"]
SiteName = Literal[
    "input",
    "recurrent",
    "output",
    "carry_h",
    "carry_c",
    "candidate",
    "cell",
    "state_in",
    "weight_hh",
    "zone_h",
    "zone_c",
]
Resample = Literal["per_step", "per_sequence", "reused_across_calls"]
GateSharing = Literal["shared", "per_gate"]
BatchSharing = Literal["per_sample", "shared"]
# inverted: kept units times 1/(1-p) in training, nothing at inference; test_time: 0/1 masks in training and the
# site times 1-p at inference (Hinton et al. 2012; Semeniuta's and RNNDrop's code); none: 0/1 masks, nothing
# at inference (a wrong implementation, for the mutants)
Scaling = Literal["inverted", "none", "test_time"]
CellKindName = Literal["rnn", "lstm", "gru"]

CheckKind = Literal[
    "inference_matches_reference",  # training=False equals the reference without masks
    "runs",  # the documented configuration runs without an exception
    "seed_reproducible",  # the same seed gives the same masks
    "replay_explained",  # the recovered masks explain a run with random parameters
    "site_resample",  # the site's masks are resampled as the rule says
    "site_gates",  # one mask for all gates, or one per gate, as the rule says
    "site_batch",  # per sample or shared across the batch, as the rule says
    "site_scale",  # kept units scaled by 1/(1-p) (inverted) or 1 (none)
    "site_rate",  # the empirical drop rate matches p (statistical)
    "site_inactive",  # no mask at this site
    "only_scheme_sites",  # no site outside the scheme's is dropped
    "carried_state",  # the state passed to the next step is dropped or not, as the scheme says
    "new_call_new_masks",  # a second call draws new masks
    "flag_invariance",  # a performance-only flag does not change the masks drawn
    "site_independence",  # one site's masks keep their structure when another site's rate changes
    "mode_invariance",  # a call mode (compiled, unrolled, ...) draws the masks of the eager call
    "reload_invariance",  # a reloaded layer draws the masks of the original
    "training_flag",  # each call's training flag is honoured, whatever the calls before it were
    "rate_zero",  # at rate 0 a training call drops nothing
    "rate_one",  # at rate 1.0 the layer refuses the rate, or drops every unit with finite outputs
    "shared_mask",  # two sites carry one and the same mask in every call (ELMo: output and carried h)
]
SITE_CHECKS = {"site_resample", "site_gates", "site_batch", "site_scale", "site_rate", "site_inactive"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    citation: str = Field(description="Authors, year and title, as a reader would cite it.")
    arxiv: str | None = None
    url: str | None = None


class MaskRule(Strict):
    """How one site is dropped under a scheme."""

    site: SiteName
    gates: GateSharing = "shared"
    resample: Resample
    batch: BatchSharing = "per_sample"
    scaling: Scaling = "inverted"
    # the site whose mask this site carries, drawn once for both (ELMo: the carried h is the dropped output)
    same_as: SiteName | None = None

    @model_validator(mode="after")
    def _weight_mask_has_no_gate_axis(self) -> MaskRule:
        # weight_hh masks the whole (G*H, H) matrix elementwise: each gate's rows draw their own
        # elements, so "one mask for all gates" has no meaning there and only the default is accepted
        if self.site == "weight_hh" and self.gates != "shared":
            raise ValueError("site 'weight_hh' is masked elementwise over the whole matrix; leave 'gates' out")
        return self


class Check(Strict):
    kind: CheckKind
    site: SiteName | None = None
    # statistical checks: the bound is z standard errors; the clause states the false-alarm rate
    z: float | None = None
    # shared_mask: the two sites that must carry one mask
    sites: list[SiteName] | None = None

    @model_validator(mode="after")
    def _site_when_needed(self) -> Check:
        if self.kind in SITE_CHECKS and self.site is None:
            raise ValueError(f"check kind {self.kind!r} needs a 'site'")
        if self.kind == "shared_mask" and (self.sites is None or len(set(self.sites)) != 2):
            raise ValueError("check kind 'shared_mask' needs 'sites': two different sites, e.g. [output, carry_h]")
        if self.kind != "shared_mask" and self.sites is not None:
            raise ValueError(f"check kind {self.kind!r} takes no 'sites' (only shared_mask does)")
        return self


class Clause(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+(\.[a-z0-9_]+)+$", description="Stable dotted id; never renumbered.")
    level: Level
    text: str = Field(min_length=10, description="The normative sentence.")
    source: str = Field(min_length=3, description="Where the rule comes from.")
    check: Check
    false_alarm: str | None = Field(default=None, description="False-alarm rate of a statistical check.")


class Scheme(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    source: Source | None = None
    summary: str
    equations: str = ""
    cells: list[CellKindName]
    masks: list[MaskRule] = []
    carried_state: Literal["undropped", "dropped"] = "undropped"
    # identity: training=False runs the cell without masks; expectation: every mask is replaced by its mean,
    # 1 - p at a zoneout site (h_t = p h_{t-1} + (1 - p) h~_t, Krueger et al. 2016, section 3)
    inference: Literal["identity", "expectation"] = "identity"
    clauses: list[Clause]

    @model_validator(mode="after")
    def _consistent(self) -> Scheme:
        seen = [m.site for m in self.masks]
        if len(seen) != len(set(seen)):
            raise ValueError("a site appears twice in 'masks'")
        for rule in self.masks:
            source = self.rule(rule.same_as) if rule.same_as else None
            if rule.same_as and (source is None or seen.index(rule.same_as) > seen.index(rule.site) or source.same_as):
                raise ValueError(
                    f"masks: site {rule.site!r} has same_as {rule.same_as!r}, which must be a site listed before it "
                    "that draws its own mask"
                )
        for clause in self.clauses:
            if not clause.id.startswith(self.id + "."):
                raise ValueError(f"clause id {clause.id!r} must start with the scheme id {self.id!r} and a dot")
            if clause.check.kind in SITE_CHECKS - {"site_inactive"} and clause.check.site not in seen:
                raise ValueError(
                    f"clause {clause.id!r} checks site {clause.check.site!r}, which 'masks' does not define"
                )
            missing = [site for site in clause.check.sites or [] if site not in seen]
            if missing:
                raise ValueError(f"clause {clause.id!r} checks sites {missing}, which 'masks' does not define")
        return self

    def rule(self, site: str) -> MaskRule | None:
        return next((m for m in self.masks if m.site == site), None)


class CellEquations(Strict):
    kind: CellKindName
    title: str
    gates: list[str]
    equations: str
    conventions: dict[str, str] = {}


class CellsDoc(Strict):
    layout: str
    cells: list[CellEquations]
    sites: dict[str, str]


class SpecMeta(Strict):
    """``spec/spec.yaml``: the spec's version and what it deliberately leaves open."""

    version: str = Field(pattern=r"^\d+\.\d+$", description="The spec version every report states, e.g. '1.0'.")
    unspecified: dict[str, str] = Field(
        default={}, description="Questions the spec leaves open on purpose, each with why; no clause judges them."
    )
    changes: dict[str, str] = Field(
        default={}, description="What each version changed, by version: a report citing an older version reads it."
    )


class SpecError(ValueError):
    """A spec file that cannot be used, with the file, the field and the fix."""


def _format_validation(path: Path, error: ValidationError) -> str:
    lines = [f"{path}: the spec is malformed ({error.error_count()} problem(s))"]
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"  field {where}: {item['msg']}")
    lines.append("Fix the field(s) above; `dropspec spec validate` rechecks, `dropspec spec schema` lists every field.")
    return "\n".join(lines)


def load_scheme(path: Path) -> Scheme:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise SpecError(f"{path}: a scheme file must be a YAML mapping with 'id', 'title', 'clauses', ...")
    try:
        scheme = Scheme.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_format_validation(path, exc)) from exc
    ids = [c.id for c in scheme.clauses]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise SpecError(f"{path}: clauses: ids must be unique; repeated: {', '.join(repeated)}. Rename one.")
    return scheme


def read_yaml(path: Path) -> Any:
    """A YAML file's data, or a ``SpecError`` that names the file and what to fix."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"{path}: not valid YAML: {exc}. Fix the syntax at the position shown.") from exc
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text (byte {exc.start}); save it as UTF-8.") from exc
    except OSError as exc:
        raise SpecError(f"{path}: cannot be read ({exc.strerror}).") from exc


class Spec(Strict):
    schemes: dict[str, Scheme]
    cells: CellsDoc
    meta: SpecMeta = SpecMeta(version="0.0")
    # old clause id -> new clause id, from spec/renamed_ids.yaml (ids renamed once, at 1.0)
    renamed: dict[str, str] = {}

    @property
    def version(self) -> str:
        return self.meta.version

    def unknown_clause(self, clause_id: str) -> str:
        """Why ``clause_id`` names no clause, in one line: the new id when it is a renamed one."""
        if clause_id in self.renamed:
            return (
                f"clause {clause_id!r} was renamed to {self.renamed[clause_id]!r} in spec {self.version}; "
                "use the new id (spec/renamed_ids.yaml lists every renamed id)"
            )
        return f"unknown clause {clause_id!r}; `dropspec spec clauses` lists them"

    def clauses(self) -> list[tuple[Scheme, Clause]]:
        return [(s, c) for s in self.schemes.values() for c in s.clauses]

    def clause(self, clause_id: str) -> tuple[Scheme, Clause]:
        for scheme, clause in self.clauses():
            if clause.id == clause_id:
                return scheme, clause
        raise KeyError(self.unknown_clause(clause_id))

    def scheme(self, scheme_id: str) -> Scheme:
        try:
            return self.schemes[scheme_id]
        except KeyError:
            raise KeyError(f"unknown scheme {scheme_id!r}; known: {', '.join(sorted(self.schemes))}") from None


def load_spec(directory: Path | None = None) -> Spec:
    directory = directory or SPEC_DIR
    # the cross-cutting rules and the plain cells first, then the schemes by name
    first = {"common": 0, "none": 1}
    files = sorted((directory / "schemes").glob("*.yaml"), key=lambda p: (first.get(p.stem, 2), p.stem))
    if not files:
        raise SpecError(f"{directory}/schemes: no scheme files found; is this a dropspec checkout?")
    schemes = {}
    for path in files:
        scheme = load_scheme(path)
        if scheme.id != path.stem:
            raise SpecError(f"{path}: field id is {scheme.id!r} but the file is named {path.stem!r}; make them equal.")
        schemes[scheme.id] = scheme
    ids = [c.id for s in schemes.values() for c in s.clauses]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SpecError(f"{directory}: clause ids must be unique; repeated: {', '.join(duplicates)}")
    cells_path = directory / "cells.yaml"
    try:
        cells = CellsDoc.model_validate(yaml.safe_load(cells_path.read_text()))
    except ValidationError as exc:
        raise SpecError(_format_validation(cells_path, exc)) from exc
    meta_path = directory / "spec.yaml"
    try:
        meta = SpecMeta.model_validate(read_yaml(meta_path))
    except ValidationError as exc:
        raise SpecError(_format_validation(meta_path, exc)) from exc
    renamed_path = directory / "renamed_ids.yaml"
    renamed = (read_yaml(renamed_path) or {}) if renamed_path.exists() else {}
    if not isinstance(renamed, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in renamed.items()):
        raise SpecError(f"{renamed_path}: must map each old clause id to its new id, one 'old: new' per line")
    return Spec(schemes=schemes, cells=cells, meta=meta, renamed=renamed)


@lru_cache(maxsize=1)
def default_spec() -> Spec:
    return load_spec()


def json_schema() -> str:
    """The JSON Schema of a scheme file, for editors that validate YAML."""
    return json.dumps(Scheme.model_json_schema(), indent=2) + "\n"

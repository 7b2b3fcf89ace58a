"""The spec as a readable document: ``spec.md`` and ``index.html``, plus a page comparing schemes.

One anchor per clause id (``id="variational.recurrent.resample"``), so a bug report or
the matrix page can link to the exact rule. Each clause shows its level, sentence, source, its
scheme's equations and summary, and the check that verifies it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..spec import CellsDoc, Check, Clause, MaskRule, Scheme, Spec, default_spec
from .templating import render

#: What each check does, in words, for readers of the spec.
CHECK_TEXT = {
    "inference_matches_reference": "runs the cell with training=False twice and compares it with the reference "
    "cell without dropout (a site scaled at test time multiplied by 1-p; under zoneout's expectation rule, every mask "
    "by its mean)",
    "runs": "runs the documented configuration in training and inference mode",
    "seed_reproducible": "replays a training run with the same seed and compares the outputs bit for bit",
    "replay_explained": "drives the reference with the recovered masks and compares it with a training run "
    "with random parameters and the same seed",
    "site_resample": "compares the recovered masks of the site across time steps and across calls",
    "site_gates": "compares the recovered masks of the site across gates",
    "site_batch": "compares the recovered masks of the site across the samples of a batch",
    "site_scale": "reads the value of a kept unit in the recovered masks of the site",
    "site_rate": "counts the dropped units over the independent draws of the site's recovered masks",
    "site_inactive": "checks that no mask was recovered at the site",
    "only_scheme_sites": "lists the sites where masks were recovered",
    "carried_state": "checks whether the state returned by the layer is the dropped or the undropped state",
    "new_call_new_masks": "compares the recovered masks of two consecutive calls",
    "flag_invariance": "compares the masks of cases that differ only in a performance-only flag",
    "site_independence": "compares each site's mask structure across cases that differ only in another site's rate",
    "mode_invariance": "compares the masks of a call mode (compiled, unrolled, ...) with those of the eager call",
    "reload_invariance": "compares the masks of a reloaded layer with those of the original",
    "training_flag": "calls one model with training, inference and training flags and compares each call with the "
    "reference at inference",
    "shared_mask": "compares the recovered masks of two sites, element by element, in every call",
    "rate_zero": "sets every rate of the case to 0 and lists the sites where masks were recovered",
    "rate_one": "sets every rate of the case to 1.0 and records whether the layer refuses it (an error naming the "
    "rate) or drops every unit of those sites, with finite outputs",
}

POINTS = [
    ("site", "Site", "where the mask multiplies"),
    ("gates", "Gates", "one mask for all gates, or one per gate"),
    ("resample", "Resampling", "a fresh mask every step, or one per sequence"),
    ("batch", "Batch", "a mask per sample, or one for the whole batch"),
    ("scaling", "Scaling", "kept units times 1/(1-p) in training (inverted), or the site times 1-p at inference"),
    ("carried_state", "Carried state", "is the state passed to the next step the dropped one"),
    ("inference", "Inference", "what the cell does with training=False"),
]

WORDS = {
    "per_step": "fresh every step",
    "per_sequence": "one per sequence",
    "reused_across_calls": "reused across calls",
    "shared": "shared",
    "per_gate": "one per gate",
    "per_sample": "per sample",
    "inverted": "inverted 1/(1-p)",
    "test_time": "times 1-p at inference (test time)",
    "none": "none",
    "undropped": "undropped",
    "dropped": "dropped",
    "identity": "identity (no dropout)",
    "expectation": "the expectation of every mask (zoneout: p h_{t-1} + (1 - p) h~_t)",
}


def check_text(check: Check) -> str:
    where = f" at the {check.site} site" if check.site else ""
    what = CHECK_TEXT.get(check.kind, check.kind)
    bound = f" (bound: {check.z:g} standard errors)" if check.z else ""
    return f"`{check.kind}`{where}: {what}{bound}"


def site_meaning(cells: CellsDoc, site: str) -> str:
    return cells.sites.get(site, "")


def gates_words(rule: MaskRule) -> str:
    """``gates`` of a rule; the weight_hh mask is elementwise over the whole matrix, so it has no gate axis."""
    return "elementwise (no gate axis)" if rule.site == "weight_hh" else rule.gates


def scheme_rows(scheme: Scheme) -> list[dict[str, str]]:
    """One row per dropped site (a scheme without masks gets one row saying so)."""
    base = {"carried_state": scheme.carried_state, "inference": scheme.inference}
    if not scheme.masks:
        return [{"site": "none", "gates": "-", "resample": "-", "batch": "-", "scaling": "-", **base}]
    return [
        {
            "site": m.site,
            "gates": gates_words(m),
            "resample": m.resample,
            "batch": m.batch,
            "scaling": m.scaling,
            **base,
        }
        for m in scheme.masks
    ]


def differences(a: Scheme, b: Scheme) -> list[str]:
    """How scheme ``b`` differs from scheme ``a``, point by point, in sentences."""
    out = []
    sites_a, sites_b = {m.site: m for m in a.masks}, {m.site: m for m in b.masks}
    for site in sorted(set(sites_a) | set(sites_b)):
        ra, rb = sites_a.get(site), sites_b.get(site)
        if ra is None:
            out.append(f"{b.id} drops the {site} site ({_rule_words(rb)}); {a.id} does not")
        elif rb is None:
            out.append(f"{b.id} does not drop the {site} site; {a.id} does ({_rule_words(ra)})")
        else:
            gated = site != "weight_hh"  # the weight mask has no gate axis
            for field in ("resample", "gates", "batch", "scaling") if gated else ("resample", "batch", "scaling"):
                va, vb = getattr(ra, field), getattr(rb, field)
                if va != vb:
                    out.append(f"{site} {field}: {b.id} {WORDS.get(vb, vb)}, {a.id} {WORDS.get(va, va)}")
    if a.carried_state != b.carried_state:
        out.append(f"carried state: {b.id} {b.carried_state}, {a.id} {a.carried_state}")
    if a.inference != b.inference:
        out.append(f"inference: {b.id} {b.inference}, {a.id} {a.inference}")
    return out


def _rule_words(rule: MaskRule | None) -> str:
    if rule is None:
        return "-"
    return ", ".join(WORDS.get(v, v) for v in (rule.resample, gates_words(rule), rule.batch, rule.scaling))


def _schemes(spec: Spec) -> list[Scheme]:
    return list(spec.schemes.values())


def _context(spec: Spec) -> dict[str, Any]:
    schemes = _schemes(spec)
    comparable = [s for s in schemes if s.id != "common"]
    baseline = spec.schemes.get("variational", comparable[0] if comparable else None)
    return {
        "spec": spec,
        "schemes": schemes,
        "comparable": comparable,
        "baseline": baseline,
        "rows": {s.id: scheme_rows(s) for s in schemes},
        "diffs": {s.id: differences(baseline, s) for s in comparable if baseline is not None and s is not baseline},
        "pairs": {a.id: {b.id: differences(a, b) for b in comparable} for a in comparable},
        "default_b": "semeniuta" if "semeniuta" in spec.schemes else (comparable[-1].id if comparable else ""),
        "check_text": check_text,
        "points": POINTS,
        "words": WORDS,
        "n_clauses": len(spec.clauses()),
    }


def clause_markdown(scheme: Scheme, clause: Clause) -> list[str]:
    lines = [
        f'<a id="{clause.id}"></a>',
        "",
        f"#### `{clause.id}` · {clause.level}",
        "",
        f"> {clause.text}",
        "",
        f"- **Source:** {clause.source}",
        f"- **Verified by:** {check_text(clause.check)}",
        f"- **Scheme:** [{scheme.title}](#scheme-{scheme.id}): {scheme.summary}",
    ]
    if scheme.equations:
        lines.append(f"- **Equations:** `{' '.join(scheme.equations.split())}`")
    if clause.false_alarm:
        lines.append(f"- **False alarms:** {clause.false_alarm}")
    lines.append("")
    return lines


def unspecified_markdown(spec: Spec) -> list[str]:
    """What the spec leaves open on purpose (spec/spec.yaml ``unspecified``): measured, never judged."""
    if not spec.meta.unspecified:
        return []
    lines = ['<a id="unspecified"></a>', "", "## Left unspecified", ""]
    lines += [f"- **{topic.capitalize()}:** {why}" for topic, why in spec.meta.unspecified.items()]
    return lines + [""]


def changes_markdown(spec: Spec) -> list[str]:
    """What each version changed (spec/spec.yaml ``changes``), newest first."""
    if not spec.meta.changes:
        return []
    lines = ['<a id="changes"></a>', "", "## Changes by version", ""]
    lines += [f"- **{version}:** {what}" for version, what in reversed(spec.meta.changes.items())]
    return lines + [""]


def renamed_markdown(spec: Spec) -> list[str]:
    """The table of renamed clause ids (spec/renamed_ids.yaml): ids name properties, not values, since 1.0."""
    if not spec.renamed:
        return []
    lines = [
        '<a id="renamed"></a>',
        "",
        "## Renamed clause ids",
        "",
        "Spec 1.0 renamed every id that named a required value (`time_invariant`, `per_sample`, "
        "`carried_undropped`, ...) after the property it judges, so that a corrected rule keeps its id. "
        "`dropspec explain` and a deviations file given an old id name the new one.",
        "",
        "| old id | new id |",
        "|---|---|",
    ]
    lines += [f"| `{old}` | [`{new}`](#{new}) |" for old, new in sorted(spec.renamed.items())]
    return lines + [""]


def render_markdown(spec: Spec) -> str:
    ctx = _context(spec)
    lines = [
        "<!-- generated by `dropspec spec render`; do not edit: edit spec/*.yaml -->",
        f"# The dropspec specification, version {spec.version}",
        "",
        f"{len(ctx['schemes'])} schemes, {ctx['n_clauses']} clauses. Every clause id is published "
        "(spec/published_ids.yaml) and can be cited in a bug report: within a version an id keeps its meaning, "
        "the check and site it names. The conformance suite runs one test per (clause, case). Levels: MUST, "
        "SHOULD, MAY (a SHOULD or MAY clause is judged like a MUST; its level says how strong its source is).",
        "See [compare.md](compare.md) for the schemes side by side.",
        "",
        "## Contents",
        "",
    ]
    lines += [f"- [{s.title}](#scheme-{s.id}) (`{s.id}`, {len(s.clauses)} clauses)" for s in ctx["schemes"]]
    if spec.meta.unspecified:
        lines.append("- [Left unspecified](#unspecified)")
    if spec.meta.changes:
        lines.append("- [Changes by version](#changes)")
    if spec.renamed:
        lines.append("- [Renamed clause ids](#renamed)")
    cells = spec.cells
    lines += ["- [Cells and mask sites](#cells)", "", '<a id="cells"></a>', "", "## Cells and mask sites", ""]
    lines += [cells.layout, "", "| site | where it multiplies |", "|---|---|"]
    lines += [f"| `{site}` | {text} |" for site, text in cells.sites.items()]
    lines.append("")
    for cell in cells.cells:
        lines += [
            f"### {cell.title} (`{cell.kind}`, gates {', '.join(cell.gates)})",
            "",
            "```",
            cell.equations.rstrip(),
        ]
        lines += ["```", ""]
        lines += [f"- `{k}`: {v}" for k, v in cell.conventions.items()]
        if cell.conventions:
            lines.append("")
    lines += unspecified_markdown(spec) + changes_markdown(spec) + renamed_markdown(spec)
    for scheme in ctx["schemes"]:
        lines += [f'<a id="scheme-{scheme.id}"></a>', "", f"## {scheme.title} (`{scheme.id}`)", "", scheme.summary, ""]
        if scheme.source:
            link = scheme.source.url or (f"https://arxiv.org/abs/{scheme.source.arxiv}" if scheme.source.arxiv else "")
            lines += [f"**Source:** {scheme.source.citation}" + (f" <{link}>" if link else ""), ""]
        if scheme.equations:
            lines += ["```", scheme.equations.rstrip(), "```", ""]
        lines += [
            f"Cells: {', '.join(scheme.cells)} · carried state: {scheme.carried_state} · inference: {scheme.inference}",
            "",
        ]
        if scheme.masks:
            lines += ["| site | gates | resampling | batch | scaling |", "|---|---|---|---|---|"]
            for m in scheme.masks:
                lines.append(f"| `{m.site}` | {gates_words(m)} | {m.resample} | {m.batch} | {m.scaling} |")
            lines.append("")
        lines += ["### Clauses", ""]
        for clause in scheme.clauses:
            lines += clause_markdown(scheme, clause)
    return "\n".join(lines).rstrip() + "\n"


def render_compare_markdown(spec: Spec) -> str:
    ctx = _context(spec)
    header = "| scheme | " + " | ".join(p[1] for p in POINTS) + " |"
    lines = [
        "<!-- generated by `dropspec spec render`; do not edit: edit spec/*.yaml -->",
        "# Dropout schemes compared",
        "",
        "One row per dropped site. " + " · ".join(f"**{title}**: {hint}" for _, title, hint in POINTS) + ".",
        "",
        header,
        "|---|" + "---|" * len(POINTS),
    ]
    for scheme in ctx["comparable"]:
        for n, row in enumerate(ctx["rows"][scheme.id]):
            name = f"[`{scheme.id}`](index.md#scheme-{scheme.id})" if n == 0 else ""
            lines.append(f"| {name} | " + " | ".join(WORDS.get(row[p], row[p]) for p, _, _ in POINTS) + " |")
    if ctx["baseline"] is not None:
        base = ctx["baseline"]
        lines += ["", f"## How each scheme differs from `{base.id}`", ""]
        for scheme in ctx["comparable"]:
            if scheme is base:
                continue
            lines += [f"### `{scheme.id}`: {scheme.title}", ""]
            lines += [f"- {d}" for d in ctx["diffs"][scheme.id]] or ["- no difference in the mask rules"]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_spec_document(out_dir: Path, spec: Spec | None = None, matrix_href: str | None = None) -> list[Path]:
    """``out_dir/index.html``, ``spec.md``, ``compare.html``, ``compare.md``; returns the paths written."""
    spec = spec or default_spec()
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = {**_context(spec), "matrix_href": matrix_href}
    files = {
        "index.html": render("spec.html.j2", **ctx),
        "compare.html": render("compare.html.j2", **ctx),
        "spec.md": render_markdown(spec).replace("(index.md#", "(spec.md#"),
        "compare.md": render_compare_markdown(spec).replace("(index.md#", "(spec.md#"),
    }
    paths = []
    for name, text in files.items():
        (out_dir / name).write_text(text)
        paths.append(out_dir / name)
    return paths

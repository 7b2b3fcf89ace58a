"""The answer card: grouping by family, the Keras 3 backends sharing or splitting a row, kinds and variants sharing a
row only when they behave alike, the verdict words, and the README block. Built from a small fake matrix dict."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from dropspec.publish.card import (
    CARD_END,
    CARD_START,
    answer_card,
    render_card_html,
    render_card_markdown,
    update_readme_card,
)

SHARED_SEQ = {"resample": "per_sequence", "gates": "shared", "batch": "per_sample", "scale": 1.3333, "rate": 0.25}
PER_GATE_SEQ = {**SHARED_SEQ, "gates": "per_gate"}
PER_STEP = {**SHARED_SEQ, "resample": "per_step"}
KERAS = ("keras_tf", "keras_jax", "keras_torch")


def _fp(**sites: dict[str, Any]) -> dict[str, Any]:
    return {
        "sites": {name: {"site": name, "draws": 64, "binary": True, "observed": 1.0, **s} for name, s in sites.items()},
        "carried_state_dropped": False,
    }


def _case(case: str, cell: str, label: str, documented: str, fp: dict | None, error: dict | None = None) -> dict:
    return {
        "case": case,
        "cell": cell,
        "label": label,
        "config": {},
        "documented_as": documented,
        "behaves_as": [],
        "fingerprint": fp,
        "error": error,
        "doc": f"the docs of {cell} https://example.org/{cell}.html.",
    }


def _keras_cases() -> list[dict]:
    return [
        # impl1 with dropout: per-gate input masks on every backend, a known deviation
        _case(
            "lstm-layer-dropout-impl1",
            "lstm",
            "keras.layers.LSTM(8, dropout=0.25, return_sequences=True, implementation=1)",
            "variational",
            _fp(input=PER_GATE_SEQ),
        ),
        _case(
            "gru_reset_after-layer-dropout-impl1",
            "gru_reset_after",
            "keras.layers.GRU(8, dropout=0.25, return_sequences=True, implementation=1)",
            "variational",
            _fp(input=PER_GATE_SEQ),
        ),
        # impl2: shared masks, passes; the use_cudnn=False variant behaves alike
        _case(
            "lstm-layer-dropout-impl2",
            "lstm",
            "keras.layers.LSTM(8, dropout=0.25, return_sequences=True, implementation=2)",
            "variational",
            _fp(input=SHARED_SEQ),
        ),
        _case(
            "lstm-layer-dropout-impl2-nocudnn",
            "lstm",
            "keras.layers.LSTM(8, dropout=0.25, return_sequences=True, implementation=2, use_cudnn=False)",
            "variational",
            _fp(input=SHARED_SEQ),
        ),
        # a GRU that differs from the LSTM of the same configuration gets its own row
        _case(
            "gru_reset_after-layer-dropout-impl2",
            "gru_reset_after",
            "keras.layers.GRU(8, dropout=0.25, return_sequences=True, implementation=2)",
            "variational",
            _fp(input=PER_STEP),
        ),
        # the configuration where the backends disagree (changed per adapter below)
        _case(
            "lstm-layer-recurrent",
            "lstm",
            "keras.layers.LSTM(8, recurrent_dropout=0.25)",
            "variational",
            _fp(recurrent=SHARED_SEQ),
        ),
        _case(
            "lstm-layer-crash",
            "lstm",
            "keras.layers.LSTM(8, dropout=0.5, implementation=1)",
            "variational",
            None,
            {"type": "ValueError", "message": "boom", "traceback": ""},
        ),
    ]


def _results(adapter: str, statuses: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """cells: clause -> adapter -> {results}; ``statuses`` is case -> clause -> status."""
    cells: dict[str, dict[str, Any]] = {}
    for case, by_clause in statuses.items():
        for clause, status in by_clause.items():
            cell = cells.setdefault(clause, {}).setdefault(adapter, {"verdict": status, "counts": {}, "results": []})
            cell["results"].append({"case": case, "status": status, "message": "m"})
    return cells


def _merge_cells(*parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for part in parts:
        for clause, row in part.items():
            out.setdefault(clause, {}).update(row)
    return out


def fake_matrix(torch_disagrees: bool = False) -> dict[str, Any]:
    passing = {"variational.input.resample": "pass", "common.seed.reproducible": "pass"}
    keras_statuses = {
        "lstm-layer-dropout-impl1": {**passing, "variational.input.gates": "xfail"},
        "gru_reset_after-layer-dropout-impl1": {**passing, "variational.input.gates": "xfail"},
        "lstm-layer-dropout-impl2": dict(passing),
        "lstm-layer-dropout-impl2-nocudnn": dict(passing),
        "gru_reset_after-layer-dropout-impl2": {**passing, "variational.input.resample": "fail"},
        "lstm-layer-recurrent": {"variational.recurrent.resample": "pass"},
        "lstm-layer-crash": {"common.runs.documented_configuration": "error", "common.seed.reproducible": "error"},
    }
    cases: dict[str, list[dict]] = {}
    cells_parts = []
    for adapter in KERAS:
        mine = copy.deepcopy(_keras_cases())
        statuses = copy.deepcopy(keras_statuses)
        if torch_disagrees and adapter == "keras_torch":
            recurrent = next(c for c in mine if c["case"] == "lstm-layer-recurrent")
            recurrent["fingerprint"] = _fp(recurrent=PER_GATE_SEQ)
            statuses["lstm-layer-recurrent"] = {"variational.recurrent.gates": "xfail"}
        cases[adapter] = mine
        cells_parts.append(_results(adapter, statuses))
    cases["torch"] = [
        _case(
            "lstm-L2-dropout0.25",
            "lstm_x2",
            "nn.LSTM(16, 16, num_layers=2, dropout=0.25)",
            "zaremba",
            _fp(**{"input@2": PER_STEP}),
        ),
        _case("lstm-cuda", "lstm_x2", "nn.LSTM(16, 16, num_layers=2, dropout=0.25).cuda()", "zaremba", None),
    ]
    cells_parts.append(
        _results(
            "torch",
            {
                "lstm-L2-dropout0.25": {"zaremba.input.resample": "pass"},
                "lstm-cuda": {"zaremba.input.resample": "skip"},
            },
        )
    )
    cases["reference"] = [_case("lstm-variational", "lstm", "lstm(scheme='variational')", "variational", _fp())]
    adapters = {
        a: {"framework": "keras", "versions": {"keras": "3.15.1", "keras_backend": a[6:]}, "totals": {}} for a in KERAS
    }
    adapters["torch"] = {"framework": "pytorch", "versions": {"torch": "2.13.0", "numpy": "2.4"}, "totals": {}}
    adapters["reference"] = {"framework": "dropspec-reference", "versions": {}, "totals": {"pass": 7, "skip": 1}}
    return {"adapters": adapters, "cases": cases, "cells": _merge_cells(*cells_parts), "schemes": []}


def _row(groups, family: str, startswith: str):
    group = next(g for g in groups if g.family == family)
    found = [r for r in group.rows if r.configuration.startswith(startswith)]
    assert found, f"no row starting {startswith!r} in {[r.configuration for r in group.rows]}"
    return found


def test_families_in_order_and_the_oracle_left_out() -> None:
    groups = answer_card(fake_matrix())
    assert [g.family for g in groups] == ["Keras 3", "PyTorch"]
    assert all(a != "reference" for g in groups for r in g.rows for a, _ in r.cases)
    assert groups[0].versions == "keras 3.15.1"
    assert groups[1].versions == "torch 2.13.0"
    text = render_card_markdown(fake_matrix())
    assert "it passes 7 of its 7 checks" in text


def test_a_family_names_its_package_where_the_package_is_spelled_otherwise() -> None:
    from dropspec.publish.card import _versions

    matrix = {"adapters": {"haiku": {"framework": "haiku", "versions": {"dm-haiku": "0.0.17", "jax": "0.10.2"}}}}
    assert _versions(matrix, ("haiku",)) == "dm-haiku 0.0.17"  # not "()": the key contains the framework's name
    matrix["adapters"]["haiku"]["versions"] = {"jax": "0.10.2"}
    assert _versions(matrix, ("haiku",)) == ""  # no key names it: nothing rather than another package's version


def test_backends_share_a_row_where_they_agree() -> None:
    groups = answer_card(fake_matrix())
    (row,) = _row(groups, "Keras 3", "keras.layers.LSTM(8, recurrent_dropout=0.25)")
    assert row.where is None
    assert {a for a, _ in row.cases} == set(KERAS)
    assert row.verdict == "pass" and row.verdict_words == "as documented"


def test_backends_split_where_they_disagree() -> None:
    groups = answer_card(fake_matrix(torch_disagrees=True))
    rows = _row(groups, "Keras 3", "keras.layers.LSTM(8, recurrent_dropout=0.25)")
    assert len(rows) == 2
    by_where = {r.where: r for r in rows}
    assert set(by_where) == {"on tensorflow, jax", "on torch"}
    assert by_where["on tensorflow, jax"].verdict == "pass"
    assert by_where["on torch"].verdict == "xfail"
    assert by_where["on torch"].measured == ("recurrent: per sequence, per gate, per sample, x1.33",)
    assert by_where["on torch"].verdict_words == "deviates (known)"
    markdown = render_card_markdown(fake_matrix(torch_disagrees=True))
    assert "*on torch*" in markdown and "*on tensorflow, jax*" in markdown


def test_a_crash_on_every_backend_is_one_row_naming_the_exception() -> None:
    groups = answer_card(fake_matrix())
    (row,) = _row(groups, "Keras 3", "keras.layers.LSTM(8, dropout=0.5")
    assert row.verdict == "crash" and row.verdict_words == "crashes"
    assert row.measured == ("crashes: ValueError",)
    assert row.behaves_as == "-"
    assert row.why == ()  # the crash is the verdict; the clauses it errored are not deviations


def test_kinds_share_a_row_only_when_they_behave_alike() -> None:
    groups = answer_card(fake_matrix())
    # impl1: LSTM and GRU both per gate, a known deviation: one row, LSTM shown
    (impl1,) = _row(groups, "Keras 3", "keras.layers.LSTM(8, dropout=0.25, implementation=1)")
    assert impl1.kinds == ("GRU (reset_after=True)",)
    assert impl1.verdict == "xfail"
    assert impl1.behaves_as == "variational_untied"
    assert impl1.measured == ("input: per sequence, per gate, per sample, x1.33",)
    # impl2: the GRU draws per step and deviates (not listed): its own row
    (lstm2,) = _row(groups, "Keras 3", "keras.layers.LSTM(8, dropout=0.25, implementation=2)")
    assert lstm2.kinds == ()
    (gru2,) = _row(groups, "Keras 3", "keras.layers.GRU(8, dropout=0.25, implementation=2)")
    assert gru2.verdict == "fail" and gru2.verdict_words == "deviates"
    assert gru2.measured == ("input: per step, shared by gates, per sample, x1.33",)


def test_a_variant_that_behaves_alike_joins_the_row_named_by_what_it_adds() -> None:
    groups = answer_card(fake_matrix())
    (row,) = _row(groups, "Keras 3", "keras.layers.LSTM(8, dropout=0.25, implementation=2)")
    assert row.variants == ("use_cudnn=False",)
    assert row.configuration == "keras.layers.LSTM(8, dropout=0.25, implementation=2)"  # harness args dropped
    assert ("keras_jax", "lstm-layer-dropout-impl2-nocudnn") in row.cases
    assert row.doc_url == "https://example.org/lstm.html"  # the link out of the claim's doc text, '.' dropped


def test_unmeasured_cases_are_a_note_not_a_row() -> None:
    groups = answer_card(fake_matrix())
    torch = next(g for g in groups if g.family == "PyTorch")
    assert [r.configuration for r in torch.rows] == ["nn.LSTM(16, 16, num_layers=2, dropout=0.25)"]
    assert torch.rows[0].measured == ("input@2: per step, shared by gates, per sample, x1.33",)
    assert torch.unmeasured == ("nn.LSTM(16, 16, num_layers=2, dropout=0.25).cuda() (m)",)


def test_shared_rules_broken_are_said_in_words() -> None:
    matrix = fake_matrix()
    row = next(
        r for r in matrix["cells"]["common.seed.reproducible"]["keras_tf"]["results"] if r["case"].endswith("impl2")
    )
    assert row["status"] == "pass"
    for adapter in KERAS:
        cell = matrix["cells"].setdefault("common.flags.performance_only", {}).setdefault(adapter, {"results": []})
        cell["results"].append({"case": "lstm-layer-dropout-impl2", "status": "xfail", "message": "m"})
    (lstm2,) = _row(answer_card(matrix), "Keras 3", "keras.layers.LSTM(8, dropout=0.25, implementation=2)")
    assert lstm2.verdict == "xfail"
    assert lstm2.why == ("a performance flag changes the masks",)
    # the nocudnn variant does not break that rule, so it no longer shares the row
    assert lstm2.variants == ()
    assert "**deviates (known)**: a performance flag changes the masks" in render_card_markdown(matrix)


def test_markdown_table_is_well_formed() -> None:
    text = render_card_markdown(fake_matrix())
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert rows[0] == "| configuration | verdict | documented as | behaves as | measured, per site |"
    assert all(len(re.split(r"(?<!\\)\|", line)) == 7 for line in rows), rows  # five cells, escaped pipes kept
    assert "| **Keras 3** (keras 3.15.1) |" in text
    assert "[variational](https://example.org/lstm.html)" in text


def test_html_is_a_self_contained_section() -> None:
    page = render_card_html(fake_matrix(torch_disagrees=True))
    assert page.startswith('<section class="card" id="answer-card">') and page.rstrip().endswith("</section>")
    assert "<script" not in page and "style=" not in page
    assert page.count('<tbody class="family">') == 2
    assert page.count('class="verdict-xfail"') == 2  # impl1 and the torch split of recurrent
    assert page.count('class="verdict-crash"') == 1
    assert '<span class="where">on torch</span>' in page
    assert "keras.layers.LSTM(8, dropout=0.25, implementation=1)" in page
    assert 'data-cases="keras_tf:lstm-layer-recurrent keras_jax:lstm-layer-recurrent"' in page


def test_readme_block_is_replaced_between_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\nintro\n\n{CARD_START}\nold card\n{CARD_END}\n\n## Two commands\n")
    assert update_readme_card(readme, fake_matrix())
    text = readme.read_text()
    assert "old card" not in text
    assert text.startswith("# t\n\nintro\n\n" + CARD_START + "\n")
    assert text.rstrip().endswith(CARD_END + "\n\n## Two commands")
    assert "keras.layers.LSTM(8, dropout=0.25, implementation=1)" in text
    assert update_readme_card(readme, fake_matrix())  # idempotent: markers kept
    assert text == readme.read_text()
    plain = tmp_path / "PLAIN.md"
    plain.write_text("# no markers\n")
    assert not update_readme_card(plain, fake_matrix())
    assert plain.read_text() == "# no markers\n"
    assert not update_readme_card(tmp_path / "missing.md", fake_matrix())


def test_a_matrix_without_cells_is_refused() -> None:
    matrix = fake_matrix()
    del matrix["cells"]
    with pytest.raises(ValueError, match="'cells'.*reports/matrix.json"):
        answer_card(matrix)


def test_the_committed_readme_card_is_current() -> None:
    """The card in README.md is what the committed reports/matrix.json renders: `dropspec report` keeps it so."""
    import json

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    matrix = json.loads((root / "reports" / "matrix.json").read_text())
    block = readme[readme.index(CARD_START) + len(CARD_START) : readme.index(CARD_END)].strip()
    assert block == render_card_markdown(matrix).strip()
    # the README opens with the two commands and the card, before anything else it says
    assert readme.index("## Two commands") < readme.index(CARD_START) < readme.index("## What it finds today")


def test_only_the_oracle_gives_a_sentence_not_an_empty_table() -> None:
    matrix = fake_matrix()
    matrix["cases"] = {"reference": matrix["cases"]["reference"]}
    assert answer_card(matrix) == []
    text = render_card_markdown(matrix)
    assert "|" not in text and "No adapter besides the reference has results yet" in text


def test_the_doc_quote_is_on_the_page() -> None:
    page = render_card_html(fake_matrix())
    assert '<span class="doc" title="the docs of lstm https://example.org/lstm.html.">' in page


def test_a_row_that_breaks_only_the_rate_deviates_even_against_an_inferred_claim() -> None:
    """The rate is documented ("Fraction of the units to drop"), so breaking it deviates from the documentation;
    any other rule broken against an inferred scheme differs from the usual reading."""
    from dropspec.publish.card import CardRow

    def row(*broken: str) -> CardRow:
        return CardRow(
            "LSTM(8, dropout=1.0)", (), (), None, "variational (inferred)", None, "", (), "x", "xfail", broken, ()
        )

    assert row("common.rates.one", "variational.input.rate").verdict_words == "deviates (known)"
    assert (
        row("common.rates.one", "variational.input.resample").verdict_words == "differs from the usual reading (known)"
    )

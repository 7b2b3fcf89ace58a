"""Published clause ids keep their meaning: spec/published_ids.yaml against the spec as it is now.

A bug report cites a clause id; the id must still name the same check at the same site, or the spec's
version must say that it changed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dropspec.deviations import Deviations
from dropspec.publish.explain import ExplainError, explain
from dropspec.spec import SpecError, default_spec, load_spec

ROOT = Path(__file__).resolve().parent.parent
PUBLISHED = yaml.safe_load((ROOT / "spec" / "published_ids.yaml").read_text())
SPEC = load_spec(ROOT / "spec")


def meaning(clause_id: str) -> str:
    _, clause = SPEC.clause(clause_id)
    return clause.check.kind + (f" at {clause.check.site}" if clause.check.site else "")


def test_the_list_is_of_this_version() -> None:
    assert PUBLISHED["version"] == SPEC.version, (
        f"spec/spec.yaml says version {SPEC.version}, spec/published_ids.yaml lists the ids of "
        f"{PUBLISHED['version']}: publish the new version's ids there"
    )


@pytest.mark.parametrize("clause_id", sorted(PUBLISHED["ids"]))
def test_a_published_id_keeps_its_meaning(clause_id: str) -> None:
    if PUBLISHED["version"] != SPEC.version:
        pytest.skip("the version was bumped; test_the_list_is_of_this_version asks for the new list")
    ids = {c.id for _, c in SPEC.clauses()}
    assert clause_id in ids, f"published clause {clause_id!r} disappeared from spec {SPEC.version}; bump the version"
    assert meaning(clause_id) == PUBLISHED["ids"][clause_id], (
        f"{clause_id} now means {meaning(clause_id)!r}, published as {PUBLISHED['ids'][clause_id]!r}; bump the version"
    )


def test_renamed_ids_point_at_published_ids_and_are_gone() -> None:
    ids = {c.id for _, c in SPEC.clauses()}
    for old, new in SPEC.renamed.items():
        assert old not in ids, f"{old} is both renamed and still a clause"
        assert new in PUBLISHED["ids"], f"{old} is renamed to {new}, which is not published"


def test_the_spec_states_its_version() -> None:
    from dropspec.publish.specdoc import render_markdown

    text = render_markdown(SPEC)
    assert f"version {SPEC.version}" in text.splitlines()[1]
    assert "| `variational.input.time_invariant` | [`variational.input.resample`]" in text
    assert "Left unspecified" in text and "Bidirectional" in text


def test_an_old_id_names_the_new_one(tmp_path: Path) -> None:
    path = tmp_path / "deviations.yaml"
    path.write_text(
        "- clause: variational.input.time_invariant\n  case: '*'\n  reason: a reason long enough\n  link: x/1\n"
    )
    with pytest.raises(SpecError, match="renamed to 'variational.input.resample'"):
        Deviations.load(path, default_spec(), [])
    with pytest.raises(ExplainError, match="renamed to 'variational.input.resample'"):
        explain("reference", "lstm-variational", "variational.input.time_invariant", tmp_path)

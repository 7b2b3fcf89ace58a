"""The spec loads, every clause is checkable, and a malformed file says what is wrong and how to fix it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from dropspec.engine import Judge
from dropspec.spec import SPEC_DIR, Scheme, SpecError, json_schema, load_scheme, load_spec


def test_spec_loads_with_unique_stable_ids() -> None:
    spec = load_spec()
    ids = [c.id for _, c in spec.clauses()]
    assert len(ids) == len(set(ids)) > 50
    assert "variational.recurrent.resample" in ids
    assert "common.flags.performance_only" in ids


def test_every_check_kind_has_a_judge() -> None:
    for _, clause in load_spec().clauses():
        assert callable(getattr(Judge, clause.check.kind, None)), clause.check.kind


def test_json_schema_exports() -> None:
    schema = json.loads(json_schema())
    assert schema["title"] == "Scheme" and "clauses" in schema["properties"]


@pytest.fixture
def spec_copy(tmp_path: Path) -> Path:
    shutil.copytree(SPEC_DIR, tmp_path / "spec")
    return tmp_path / "spec"


def test_malformed_field_names_file_field_and_fix(spec_copy: Path) -> None:
    path = spec_copy / "schemes" / "variational.yaml"
    path.write_text(path.read_text().replace("resample: per_sequence", "resample: per_sentence", 1))
    with pytest.raises(SpecError) as err:
        load_spec(spec_copy)
    message = str(err.value)
    assert "variational.yaml" in message
    assert "masks.0.resample" in message
    assert "per_step" in message and "Fix the field" in message


def test_invalid_yaml_names_the_file(spec_copy: Path) -> None:
    path = spec_copy / "schemes" / "zaremba.yaml"
    path.write_text("id: zaremba\n  bad: [indent\n")
    with pytest.raises(SpecError, match=r"zaremba\.yaml: not valid YAML"):
        load_spec(spec_copy)


def test_clause_id_must_belong_to_its_scheme(spec_copy: Path) -> None:
    path = spec_copy / "schemes" / "zaremba.yaml"
    path.write_text(path.read_text().replace("id: zaremba.input.resample", "id: other.input.fresh_each_step"))
    with pytest.raises(SpecError, match="must start with the scheme id 'zaremba'"):
        load_spec(spec_copy)


def test_file_name_must_match_id(spec_copy: Path) -> None:
    (spec_copy / "schemes" / "zaremba.yaml").rename(spec_copy / "schemes" / "zaremba2.yaml")
    with pytest.raises(SpecError, match="make them equal"):
        load_spec(spec_copy)


def test_duplicate_clause_ids_are_refused(spec_copy: Path) -> None:
    path = spec_copy / "schemes" / "zaremba.yaml"
    data = yaml.safe_load(path.read_text())
    data["clauses"].append(data["clauses"][0])
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError, match="repeated: zaremba.input.resample"):
        load_spec(spec_copy)


def test_a_check_on_an_undefined_site_is_refused() -> None:
    data = load_scheme(SPEC_DIR / "schemes" / "zaremba.yaml").model_dump()
    data["clauses"][0]["check"]["site"] = "recurrent"
    with pytest.raises(ValueError, match="which 'masks' does not define"):
        Scheme.model_validate(data)

"""spec/schema.json, the JSON Schema editors validate the YAML with, is the one the models export."""

from __future__ import annotations

from dropspec.spec import SPEC_DIR, json_schema


def test_committed_json_schema_is_current() -> None:
    committed = (SPEC_DIR / "schema.json").read_text()
    assert committed == json_schema(), "spec/schema.json is stale: run `dropspec spec schema > spec/schema.json`"

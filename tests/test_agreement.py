"""Backends of one framework are compared case by case on the structure of what they drew."""

from __future__ import annotations

from dropspec.publish.agreement import compare, render_markdown


def _run(adapter: str, cases: dict, framework: str = "keras") -> dict:
    return {"adapter": adapter, "framework": framework, "cases": cases}


def _case(resample: str = "per_sequence", error: str | None = None) -> dict:
    if error:
        return {"observation": {"error": {"type": error}}}
    site = {"resample": resample, "gates": "shared", "batch": "per_sample", "scale": 1.333}
    return {"observation": {"fingerprint": {"sites": {"input": site}, "carried_state_dropped": False}}}


def test_a_backend_that_draws_differently_is_named_and_agreeing_ones_are_not() -> None:
    runs = [
        _run("keras_tf", {"same": _case(), "other": _case(), "crash": _case(error="InvalidArgumentError")}),
        _run("keras_jax", {"same": _case(), "other": _case("per_step"), "crash": _case(error="ValueError")}),
        _run("torch", {"same": _case("per_step")}, framework="torch"),  # alone in its framework: not compared
    ]
    rows = {r["case"]: r for r in compare(runs)}
    assert set(rows) == {"same", "other", "crash"}
    assert rows["same"]["differences"] == [] and rows["crash"]["differences"] == []
    assert rows["other"]["differences"] == [
        "input: keras_jax per_step, gates shared, batch per_sample, inverted; "
        "keras_tf per_sequence, gates shared, batch per_sample, inverted"
    ]
    text = render_markdown(list(rows.values()))
    assert "2 of 3 cases behave the same" in text and "`other`" in text


def test_a_crash_on_one_backend_only_is_a_difference() -> None:
    rows = compare([_run("a", {"c": _case()}), _run("b", {"c": _case(error="TypeError")})])
    assert rows[0]["differences"] == ["runs: a yes; b error: TypeError"]

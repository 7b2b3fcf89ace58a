"""The repro scripts' checks can see: the reference's repro passes each check, the same model module with the
CONFIG of the mutant that breaks the rule (tests/mutants.py) fails it and says what it saw. Every composed
script is ruff-clean, and prints its verdict in the suite's own words. NumPy only.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dropspec.adapters.base import MODELS_DIR, Case, compose_repro
from dropspec.adapters.reference import ReferenceAdapter, reference_cases
from dropspec.engine import Suite
from dropspec.repro import NoScript, group_of, partners_of, probes, repro_script
from dropspec.repro.compose import READABLE, SCRIPTED, model_text
from dropspec.spec import default_spec
from tests.mutants import PerGate, PerSample, PerStep

CASES = {c.id: c for c in reference_cases()}
ADAPTER = ReferenceAdapter(list(CASES.values()))
MODEL = (MODELS_DIR / "reference_model.py").read_text()
P = 0.25
REPRO_DIR = Path(__file__).resolve().parent.parent / "dropspec" / "repro"


def config(case_id: str) -> dict:
    """The CONFIG of the case's repro, as the reference adapter writes it."""
    return copy.deepcopy(model_text(ADAPTER.repro(CASES[case_id]), case_id).config)


def rules(case_id: str, **change: object) -> dict:
    return {site: {**rule, **change} for site, rule in config(case_id)["rules"].items()}


def with_carry(case_id: str) -> dict:
    """CarriedState: variational dropout that also drops the carried state, a fresh mask every step."""
    carry = {"p": P, "gates": "shared", "resample": "per_step", "batch": "per_sample", "scale": 1 / (1 - P)}
    return {**rules(case_id), "carry_h": carry}


def state_before_cell(case_id: str) -> dict:
    """Drops the state fed to each step, memory path and initial state included (Flax's recipe on a GRU)."""
    state = {"p": P, "gates": "shared", "resample": "per_sequence", "batch": "per_sample", "scale": 1 / (1 - P)}
    return {**rules(case_id), "state_in": state}


def state_instead_of_recurrent(case_id: str) -> dict:
    """StateInInsteadOfRecurrent: the recurrent rate goes to the state fed to the step."""
    out = state_before_cell(case_id)
    del out["recurrent"]
    return out


def state_and_carry(case_id: str) -> dict:
    """Drops the state fed to each step and the carried state: the initial state and the returned state are
    both dropped, which no one site does, and two that act on the memory path together are not separable."""
    return with_carry(case_id) | {"state_in": state_before_cell(case_id)["state_in"]}


# (check kind, case, clause, the mutant: a change to every rule, a function of the case id giving the
# rules, or a change to CONFIG itself)
PAIRS = [
    ("site_resample", "lstm-variational", "variational.input.resample", {"resample": "per_step"}),
    ("site_resample", "gru_reset_before-variational", "variational.recurrent.resample", {"resample": "per_step"}),
    ("site_resample", "rnn-zaremba", "zaremba.input.resample", {"resample": "per_sequence"}),
    ("site_gates", "lstm-variational", "variational.input.gates", {"gates": "per_gate"}),
    ("site_gates", "gru_reset_after-variational", "variational.recurrent.gates", {"gates": "per_gate"}),
    ("site_scale", "lstm-variational", "variational.input.scale", {"scale": 1.0}),  # NoScaling
    ("site_scale", "gru_reset_before-variational", "variational.recurrent.scale", {"scale": 1 - P}),  # KeepScaling
    ("site_rate", "lstm-variational", "variational.recurrent.rate", {"p": 2 * P}),  # WrongRate
    ("site_batch", "lstm-feature_dropout", "feature_dropout.input.batch", {"batch": "per_sample"}),
    ("site_batch", "gru_reset_after-output_dropout", "output_dropout.output.batch", {"batch": "shared"}),
    (
        "site_resample",
        "lstm-carried_state_variational",
        "carried_state_variational.carry_h.resample",
        {"resample": "reused_across_calls"},
    ),
    ("new_call_new_masks", "lstm-variational", "common.calls.resample", {"resample": "reused_across_calls"}),
    ("carried_state", "gru_reset_after-variational", "variational.state.carried", with_carry),
    ("carried_state", "lstm-variational", "variational.state.carried", with_carry),
    ("only_scheme_sites", "gru_reset_after-variational", "variational.sites.inactive", with_carry),
    (
        "only_scheme_sites",
        "gru_reset_before-variational",
        "variational.sites.inactive",
        state_before_cell,
    ),
    ("replay_explained", "gru_reset_after-variational", "common.replay.explained", state_and_carry),
    *(  # Flax's recipe on a GRU: the recurrent site draws nothing, the state fed to the step is dropped instead
        (kind, "gru_reset_after-variational", f"variational.recurrent.{clause}", state_instead_of_recurrent)
        for kind, clause in (
            ("site_resample", "resample"),
            ("site_gates", "gates"),
            ("site_scale", "scale"),
        )
    ),
    (
        "site_resample",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.state_in.resample",
        {"resample": "per_step"},
    ),
    ("site_rate", "gru_reset_before-state_in_per_sequence", "state_in_per_sequence.state_in.rate", {"p": 2 * P}),
    (
        "carried_state",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.state.carried",
        with_carry,
    ),
    (
        "only_scheme_sites",
        "gru_reset_after-state_in_per_sequence",
        "state_in_per_sequence.sites.inactive",
        lambda case_id: {**rules(case_id), **rules("gru_reset_after-variational")},
    ),
    (
        "inference_matches_reference",
        "lstm-variational",
        "common.mapping.inference_matches_reference",
        {"at_inference": True},  # DropoutAtInference
    ),
    ("seed_reproducible", "lstm-variational", "common.seed.reproducible", {"seeded": False}),  # Unseeded
    ("training_flag", "lstm-variational", "common.flags.training", {"sticky_training": True}),  # StickyTraining
    # DropsAtZero: rate 0 read as the default; KeepsAtOne: a mask applied only when 0 < p < 1 (Keras 3's cells)
    ("rate_zero", "lstm-variational+rate_zero", "common.rates.zero", lambda case_id: rules("lstm-variational")),
    ("rate_one", "lstm-variational+rate_one", "common.rates.one", {"p": 0.0, "scale": 1.0}),
    ("rate_one", "gru_reset_after-variational+rate_one", "common.rates.one", {"p": 0.0, "scale": 1.0}),
]
CONFIG_KEYS = {"at_inference", "seeded", "sticky_training"}


def snippet(case: Case, mutation: object = None) -> str:
    """The case's repro: the reference model module with the case's CONFIG, or with the mutant's."""
    if mutation is None:
        return ADAPTER.repro(case)
    cfg = config(case.id)
    if callable(mutation):
        cfg["rules"] = mutation(case.id)
    elif set(mutation) <= CONFIG_KEYS:
        cfg |= mutation
    else:
        cfg["rules"] = rules(case.id, **mutation)
    return compose_repro(MODEL, case.title, cfg)


def run_script(script: str) -> tuple[int, str]:
    """Runs a composed script in this process, as `python script.py` would (numpy only: fast); its exit
    status and what it printed."""
    namespace = {"__name__": "__main__"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        exec(compile(script, "<repro>", "exec"), namespace)
    return done.value.code, out.getvalue()


@pytest.mark.parametrize(("kind", "case_id", "clause", "mutation"), PAIRS, ids=[f"{p[0]}-{p[1]}" for p in PAIRS])
def test_the_reference_passes_and_the_mutant_is_caught(kind: str, case_id: str, clause: str, mutation: object) -> None:
    case = CASES[case_id]
    assert default_spec().clause(clause)[1].check.kind == kind
    good, good_out = run_script(repro_script(snippet(case), case, clause, adapter="reference"))
    assert good == 0, good_out
    bad, bad_out = run_script(repro_script(snippet(case, mutation), case, clause, adapter="reference"))
    assert bad == 1, bad_out
    verdict = bad_out.splitlines()[-1]
    assert ", but should be " in verdict and verdict.endswith(f"[{clause}; reference {case.title}, seed={case.seed}]")
    assert any(ch.isdigit() for ch in bad_out), "the script must print what it saw"


def test_every_scripted_check_kind_is_exercised() -> None:
    groups = {"flag_invariance", "site_independence", "mode_invariance", "reload_invariance"}
    covered = {p[0] for p in PAIRS} | groups | {"runs", "site_inactive"}
    assert SCRIPTED == covered, f"check kinds without a reference/mutant pair: {sorted(SCRIPTED - covered)}"


@pytest.mark.parametrize(
    ("kind", "case_id", "partner_id", "clause"),
    [
        (
            "flag_invariance",
            "lstm-variational_untied",
            "lstm-variational_untied-fused",
            "common.flags.performance_only",
        ),
        ("site_independence", "lstm-variational", "lstm-variational-input_only", "common.sites.independent"),
        ("mode_invariance", "lstm-variational+batch_one", "lstm-variational", "common.modes.masks"),
        ("reload_invariance", "lstm-variational+reload_config", "lstm-variational", "common.modes.reload"),
    ],
)
def test_group_checks_see_a_flag_or_rate_that_changes_the_masks(
    kind: str, case_id: str, partner_id: str, clause: str
) -> None:
    case, partner = CASES[case_id], CASES[partner_id]
    script = repro_script(snippet(case), case, clause, partners=[(partner, snippet(partner))])
    # one build/load/call: the partner is listed by its CONFIG, not pasted as a second model
    assert script.count("\ndef build(") == 1 and script.count("\ndef call(") == 1
    assert "PARTNERS = [" in script and repr(config(partner_id)["rules"]["input"]["p"]) in script
    good, out = run_script(script)
    assert good == 0, out
    # FusedSharesMasks: the fused twin shares its masks across gates; CoupledSites: input masks turn per-step
    change = {"gates": "shared"} if kind == "flag_invariance" else {"resample": "per_step"}
    bad, out = run_script(repro_script(snippet(case), case, clause, partners=[(partner, snippet(partner, change))]))
    assert bad == 1, out
    words = {"flag_invariance": "differ in=", "site_independence": "changed at="}.get(
        kind, "differ from the eager call="
    )
    assert f"{words}{partner.title}" in out, out


def test_partners_must_share_the_model_module() -> None:
    case, partner = CASES["lstm-variational"], CASES["lstm-variational-input_only"]
    other = snippet(partner).replace("def sigmoid(a):", "def sigmoid(a):\n    a = a + 0.0")
    with pytest.raises(NoScript, match="another model module"):
        repro_script(snippet(case), case, "common.sites.independent", partners=[(partner, other)])


def test_an_old_style_snippet_has_no_script() -> None:
    """Results written before model modules stored ``build(seed)`` snippets: said, not composed wrongly."""
    case = CASES["lstm-variational"]
    old = "import numpy as np\n\n\ndef build(seed):\n    return None\n"
    with pytest.raises(NoScript, match="not a model module"):
        repro_script(old, case, "common.runs.documented_configuration")


def test_a_crash_exits_non_zero_with_its_traceback() -> None:
    case = CASES["lstm-variational"]
    broken = snippet(case) + "\n\ndef call(model, x, h0, c0, training):\n    raise ValueError('no masks today')\n"
    for text, code in ((snippet(case), 0), (broken, 1)):
        done = subprocess.run(
            [sys.executable, "-c", repro_script(text, case, "common.runs.documented_configuration")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == code, done.stdout + done.stderr
    assert "ValueError: no masks today" in done.stderr


def test_a_script_never_pretends() -> None:
    """Where a short script cannot check a clause it says so: NoScript, or exit status 2, never 0."""
    with pytest.raises(NoScript, match="one gate"):
        repro_script(snippet(CASES["rnn-variational"]), CASES["rnn-variational"], "variational.input.gates")
    case = CASES["lstm-semeniuta"]
    status, out = run_script(repro_script(snippet(case), case, "semeniuta.state.carried"))
    assert status == 2, out


@pytest.mark.parametrize("mutant", [PerStep, PerGate, PerSample], ids=lambda m: m.name)
def test_the_script_and_the_suite_print_the_same_verdict(mutant: type) -> None:
    """One message grammar: where both measure the same thing, the script's verdict line is the suite's."""
    adapter = mutant()
    case = adapter.cases()[0]
    clause = {"per_step": "resample", "per_gate": "gates", "per_sample": "batch"}[adapter.name]
    clause = f"{case.claim.scheme}.input.{clause}"
    suite = Suite(adapter).evaluate(clause, case.id)
    assert suite.status == "fail", suite.message
    status, out = run_script(repro_script(snippet(case, adapter.change), case, clause, adapter=adapter.name))
    assert status == 1 and out.splitlines()[-1] == suite.message, (out, suite.message)


def reference_scripts() -> dict[str, str]:
    """A script for every (case, clause) of the reference that has one."""
    spec, cases = default_spec(), {c.id: c for c in ADAPTER.cases()}
    out = {}
    for case in cases.values():
        text = ADAPTER.repro(case)
        for scheme, clause in spec.clauses():
            if text is None or scheme.id not in ("common", case.claim.scheme):
                continue
            group = group_of(clause)
            others = partners_of(case.id, group, cases) if group else []
            partners = [(cases[o], ADAPTER.repro(cases[o])) for o in others]
            try:
                out[f"{case.id}--{clause.id}"] = repro_script(text, case, clause, None, {}, partners, "reference")
            except NoScript:
                continue
    return out


def ruff() -> list[str]:
    found = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("ruff is not installed here (it comes with the test extras)")
    return [found]


def test_every_reference_script_is_ruff_clean_and_short(tmp_path: Path) -> None:
    scripts = reference_scripts()
    assert len(scripts) > 150
    for name, text in scripts.items():
        (tmp_path / f"{name.replace('.', '_').replace('-', '_')}.py").write_text(text)
    settings = ["--config", str(REPRO_DIR.parent.parent / "pyproject.toml")]  # the project's rules, line length 120
    lint = subprocess.run([*ruff(), "check", *settings, str(tmp_path)], capture_output=True)
    assert lint.returncode == 0, lint.stdout.decode()[-3000:]
    layout = subprocess.run([*ruff(), "format", "--check", *settings, str(tmp_path)], capture_output=True)
    assert layout.returncode == 0, layout.stdout.decode()[-3000:]
    # the script holds what its check reaches, not every probe: a site check on input reads no carried state
    resample = scripts["lstm-variational--variational.input.resample"]
    assert "def carry_h_mask" not in resample and "def describe" not in resample
    assert max(len(t.splitlines()) for t in scripts.values()) <= 360


def test_every_readable_site_has_a_reader() -> None:
    for site in READABLE:
        assert callable(getattr(probes, f"{probes.SAME_READER.get(site, site)}_mask")), site


def test_the_check_modules_hold_no_program_text_in_strings() -> None:
    """The scripts are composed from real code: no string (an f-string read with 1 for each field) of
    dropspec/repro or dropspec/messages parses as a statement beyond a constant assignment (the header's
    `NAME = value` lines)."""
    paths = [*REPRO_DIR.glob("*.py"), REPRO_DIR.parent / "messages.py"]
    for path in paths:
        tree = ast.parse(path.read_text())
        parts = {id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values}
        for node in ast.walk(tree):
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "1" for v in node.values)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in parts:
                text = node.value
            else:
                continue
            try:
                body = ast.parse(text).body
            except SyntaxError:
                continue
            bad = [n for n in body if not isinstance(n, ast.Expr | ast.Assign)]
            assert not bad, f"{path.name}: program text in a string: {text[:80]!r}"

"""The conformance engine: observe a case once, then judge every clause against what was seen.

``observe`` runs the framework (inference check, mask recovery, replay) and never raises: a
crash or a hang becomes part of the observation. ``Suite.evaluate`` turns an observation into
one result per (clause, case), applies the adapter's known deviations, and hands the result to
the writer, so a later crash loses nothing already measured.
"""

from __future__ import annotations

import math
import re
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.random import default_rng  # numpy 2 imports numpy.random on first use: 10 ms of a first case

from .adapter import Adapter
from .case import CALLS, CallInputs, Case
from .deviations import Deviations
from .fingerprint import (
    COINCIDENCE,
    Fingerprint,
    SiteFingerprint,
    attribute_carried_state,
    complete,
    fill_hidden_carry,
    fingerprint,
    flat_masks,
)
from .growth import StateGrowth, output_norms, state_growth
from .masks import base_site, inference_masks, keep_scale, part_of, site_key
from .messages import case_tag, rate_one_error, verdict_message
from .modes import EAGER, MODES
from .naming import Behaviour, name_behaviour
from .paths import safe_name
from .recovery import TOL, Recovered, recover
from .reference import Cell, Params, Trace, run_calls, run_cell
from .result import Result
from .spec import SITE_CHECKS, Clause, Scheme, Spec, default_spec

ANSI = re.compile(r"\x1b\[[0-9;]*m")  # frameworks colour their error messages
# the checks that do not read the recovered masks, so they stand when the seed does not reproduce a run
SEED_INDEPENDENT = {"inference_matches_reference", "runs", "seed_reproducible"}


def case_dtype(adapter: Adapter, case: Case | None = None) -> np.dtype:
    """The precision a case runs in: its own ``dtype`` when it sets one, else its adapter's."""
    return np.dtype(case.dtype if case is not None and case.dtype else adapter.dtype)


def tolerance(adapter: Adapter, case: Case | None = None) -> tuple[float, float]:
    """(rtol, atol) for comparing a framework with the float64 reference, at the case's precision."""
    return (1e-9, 1e-10) if case_dtype(adapter, case) == np.float64 else (2e-3, 2e-4)


@dataclass
class Observation:
    """Everything measured for one case. ``error`` is set when the framework raised or hung."""

    case: Case
    error: dict[str, str] | None = None
    inference_error: float | None = None
    inference_deterministic: bool | None = None
    recovered: Recovered | None = None
    fingerprint: Fingerprint | None = None
    behaves_as: list[str] = field(default_factory=list)
    behaviour: Behaviour | None = None  # behaves_as, or the nearest scheme and how the case differs
    replay_error: float | None = None
    replay_unknown: int = 0
    seed_reproducible: bool | None = None
    training_sequence: dict[str, list] | None = None
    refusal: str | None = None  # at rate 1.0: the error that refused the rate, in words (then ``error`` is None)
    state_growth: StateGrowth | None = None
    runs: int = 0
    seconds: float = 0.0
    framework_seconds: float = 0.0  # inside the adapter's runs
    # the same two as CPU time of the worker process: what each side computed, without the time the process waited
    # for a core (two envs on two cores stall a case of 20 ms by 10 ms now and then; benchmarks/MATRIX.md)
    cpu_seconds: float = 0.0
    framework_cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "fingerprint": self.fingerprint.as_dict() if self.fingerprint else None,
            "behaves_as": self.behaves_as,
            "behaviour": self.behaviour.text if self.behaviour else None,
            "nearest": self.behaviour.nearest_dict() if self.behaviour else None,
            "inference_error": self.inference_error,
            "replay_error": self.replay_error,
            "replay_unknown": self.replay_unknown,
            "seed_reproducible": self.seed_reproducible,
            "training_sequence": self.training_sequence,
            "refusal": self.refusal,
            "runs": self.runs,
            # to 0.1 ms: a small case's own share is a ratio of a few ms (benchmarks/matrix_cost.py)
            "seconds": round(self.seconds, 4),
            "framework_seconds": round(self.framework_seconds, 4),
            "cpu_seconds": round(self.cpu_seconds, 4),
            "framework_cpu_seconds": round(self.framework_cpu_seconds, 4),
            "notes": self.recovered.notes if self.recovered else [],
            "state_growth": self.state_growth.as_dict() if self.state_growth else None,
        }


def _random_calls(case: Case, rng: np.random.Generator, same: bool = False, n: int = CALLS) -> list[CallInputs]:
    """Random inputs for ``n`` calls; with ``same`` every call gets the first call's inputs."""
    cell, shape = case.cell, (case.batch, case.cell.hidden_size)
    if cell.stacked:
        shape = (cell.parts, *shape)

    def one() -> CallInputs:
        return CallInputs(
            x=rng.standard_normal((case.steps, case.batch, cell.input_size)),
            h0=0.5 * rng.standard_normal(shape),
            c0=0.5 * rng.standard_normal(shape) if cell.kind == "lstm" else None,
        )

    calls = [one()]
    calls += [calls[0] if same else one() for _ in range(n - 1)]
    return calls


def _max_excess(got: Sequence[Trace], want: Sequence[Trace], rtol: float, atol: float) -> float:
    """The largest |got - want| / (atol + rtol |want|): at most 1 means equal within tolerance."""
    worst = 0.0
    for g, w in zip(got, want):
        for a, b in ((g.y, w.y), (g.h, w.h), (g.c, w.c)):
            if a is None or b is None:
                continue
            a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
            if a.shape != b.shape or not np.all(np.isfinite(a)):
                return math.inf
            worst = max(worst, float(np.max(np.abs(a - b) / (atol + rtol * np.abs(b)), initial=0.0)))
    return worst


def _identical(got: Sequence[Trace], want: Sequence[Trace]) -> bool:
    return all(
        np.array_equal(a, b, equal_nan=True)
        for g, w in zip(got, want)
        for a, b in ((g.y, w.y), (g.h, w.h), (g.c, w.c))
        if a is not None and b is not None
    )


def random_params(cell: Cell, rng: np.random.Generator) -> Params | list[Params]:
    if cell.stacked:
        return [Params.random(cell.layer(i), rng) for i in range(cell.parts)]
    return Params.random(cell, rng)


def replay_params(cell: Cell, rng: np.random.Generator) -> Params | list[Params]:
    """Random parameters for the replay. In a reset-before GRU the reset gate acts only through
    ``r * s * m_n``, so its masks cannot be seen where the n gate's recurrent mask is 0; the replay
    gives the reset gate diagonal weights, so that those unseen elements have no effect there either."""
    if cell.stacked:
        return [replay_params(cell.layer(i), rng) for i in range(cell.parts)]
    params = Params.random(cell, rng)
    if cell.kind == "gru" and not cell.reset_after:
        rows = params.rows(cell, "r")
        params.w_ih[rows] *= np.eye(cell.hidden_size, cell.input_size) * np.sqrt(cell.hidden_size)
        params.w_hh[rows] *= np.eye(cell.hidden_size) * np.sqrt(cell.hidden_size)
    return params


class ContractError(RuntimeError):
    """An adapter returned something the contract of ``Adapter.run`` rules out."""


def check_traces(case: Case, calls: Sequence[CallInputs], traces: Sequence[Trace]) -> list[Trace]:
    """What an adapter returned, checked before anything is read from it: one trace per call, outputs
    ``(T, B, ...)``, returned states shaped as the initial ones, every value finite. A violation is a
    ``ContractError`` naming the contract it broke, never a finding about dropout."""
    traces = list(traces)
    if len(traces) != len(calls):
        raise ContractError(f"adapter contract: {len(calls)} calls returned {len(traces)} traces (one per call)")
    for n, (trace, call) in enumerate(zip(traces, calls)):
        where = f"adapter contract, call {n}"
        y = np.asarray(trace.y)
        if y.ndim != 3 or y.shape[:2] != call.x.shape[:2]:
            raise ContractError(
                f"{where}: outputs y have shape {y.shape}, but should be (T, B, H) = {call.x.shape[:2]} x H"
            )
        states = [("h", trace.h, call.h0)] + ([("c", trace.c, call.c0)] if case.cell.kind == "lstm" else [])
        for name, got, initial in states:
            if got is None or np.shape(got) != np.shape(initial):
                shape = None if got is None else np.shape(got)
                raise ContractError(f"{where}: returned {name} has shape {shape}, but should be {np.shape(initial)}")
        for name, value in (("y", y), *((name, got) for name, got, _ in states)):
            finite = np.isfinite(value)  # in the framework's own dtype: no float64 copy of every output
            if not finite.all():
                bad = ~finite
                raise ContractError(f"{where}: {int(bad.sum())} of {bad.size} values of {name} are NaN or infinite")
    return traces


TRAINING_SEQUENCE = (True, False, True)  # on one model: is each call's flag honoured, whatever came before?


def inference_oracle(case: Case, spec: Spec):
    """The masks the reference applies to ``case`` at inference: None, or the means of the claimed scheme's
    masks where its inference rule is ``expectation`` (zoneout) or the claim scales a site at test time."""
    scheme = spec.scheme(case.claim.scheme)
    return inference_masks(case.cell, scheme, case.claim.rates, case.steps, case.batch, case.claim.scaling)


def training_sequence(
    case: Case,
    params: Params | list[Params],
    rng: np.random.Generator,
    run: Callable,
    rtol: float,
    atol: float,
    at_inference: Any = None,
) -> dict[str, list]:
    """Call one model with the flags of ``TRAINING_SEQUENCE`` on fresh inputs; per call, whether its
    outputs equal the reference at inference, with the masks ``at_inference`` (``inference_oracle``; None:
    without dropout): an inference call must; a training call of a layer that drops must not."""
    calls = [
        replace(c, training=flag)
        for c, flag in zip(_random_calls(case, rng, n=len(TRAINING_SEQUENCE)), TRAINING_SEQUENCE)
    ]
    got = run(params, calls, training=True)
    plain = run_calls(case.cell, params, [(c.x, c.h0, c.c0) for c in calls], [at_inference] * len(calls))
    return {
        "flags": list(TRAINING_SEQUENCE),
        "equals_reference": [_max_excess([g], [w], rtol, atol) <= 1.0 for g, w in zip(got, plain)],
    }


def observe(adapter: Adapter, case: Case, spec: Spec | None = None) -> Observation:
    """Run ``case`` through the inference check, mask recovery and the replay. Never raises."""
    spec = spec or default_spec()
    obs = Observation(case=case)
    start, start_cpu = time.perf_counter(), time.process_time()
    rtol, atol = tolerance(adapter, case)
    rng = default_rng(case.seed)

    def run(params: Params, calls: Sequence[CallInputs], training: bool) -> list[Trace]:
        obs.runs += 1
        started, started_cpu = time.perf_counter(), time.process_time()
        try:
            traces = adapter.run(case, params, calls, seed=case.seed, training=training)
        finally:  # a run that raises was the framework's time too; the rest of the case's time is dropspec's
            obs.framework_seconds += time.perf_counter() - started
            obs.framework_cpu_seconds += time.process_time() - started_cpu
        return check_traces(case, calls, traces)

    try:
        params = random_params(case.cell, rng)
        calls = _random_calls(case, rng, same=True)
        got = run(params, calls, training=False)
        at_inference = inference_oracle(case, spec)  # None, or zoneout's expectation
        # every call has these inputs
        expected = run_cell(case.cell, params, calls[0].x, calls[0].h0, calls[0].c0, at_inference)
        want = [expected] * len(calls)
        obs.inference_error = _max_excess(got, want, rtol, atol)
        obs.inference_deterministic = _identical(got[1:], got[:1])

        obs.recovered = recover(
            case.cell,
            case.steps,
            case.batch,
            CALLS,
            lambda name, p, c: run(p, c, training=True),
            eps=float(np.finfo(case_dtype(adapter, case)).eps),
            # the weight probes cost G (H - 1) runs, so only a claim that drops weights pays for them;
            # unclaimed weight drop still fails common.replay.explained (see recovery.weights)
            weight_hh=case.claim.rates.get("weight_hh", 0.0) > 0,
        )
        if not case.cell.stacked:  # carried-h masks hidden behind an output dropped for the whole sequence
            obs.recovered.masks, hidden = fill_hidden_carry(case.cell, obs.recovered.masks)
            if hidden:
                obs.recovered.notes.append(
                    f"{hidden} carried-h mask elements hidden behind an output dropped for the whole sequence were "
                    "set to the output mask (one mask at both sites), a hypothesis the replay tests"
                )
        obs.fingerprint = fingerprint(case.cell, obs.recovered.masks)
        obs.behaviour = name_behaviour(
            obs.fingerprint, spec, case.cell, prefer=case.claim.scheme, scaling=case.claim.scaling
        )
        obs.behaves_as = obs.behaviour.schemes
        if boundary_rate(case) == 1.0 and all_dropped(case, obs.fingerprint):  # no scheme names an all-zero mask
            sites = ",".join(sorted(k for k, p in case.claim.rates.items() if p >= 1.0))
            obs.behaviour, obs.behaves_as = Said(schemes=[], words=f"drops every unit at {sites}"), []

        params = replay_params(case.cell, rng)
        calls = _random_calls(case, rng)
        first, second = run(params, calls, training=True), run(params, calls, training=True)
        obs.seed_reproducible = _identical(second, first)
        masks, obs.replay_unknown = complete(case.cell, obs.recovered.masks)
        want = run_calls(case.cell, params, [(c.x, c.h0, c.c0) for c in calls], masks)
        obs.replay_error = _max_excess(first, want, rtol, atol)
        if adapter.per_call_training:  # train, eval, train on one model: one run more
            try:
                obs.training_sequence = training_sequence(case, params, rng, run, rtol, atol, at_inference)
            except Exception as exc:  # a layer that crashes only on this sequence breaks this one clause
                message = ANSI.sub("", str(exc)).splitlines()[0][:300] if str(exc) else ""
                obs.training_sequence = {
                    "flags": list(TRAINING_SEQUENCE),
                    "crashed": f"{type(exc).__name__}: {message}",
                }
        if obs.fingerprint.memory_dropped:  # how a state dropped on its memory path grows: 3 runs more
            obs.state_growth = state_growth(case.cell, case.steps, case.batch, run)
            if obs.state_growth is not None:
                obs.state_growth.random_training = output_norms(case.cell, first)
                obs.state_growth.random_inference = output_norms(case.cell, run(params, calls, training=False))
    except Exception as exc:  # a crash is a finding, recorded with its traceback
        obs.error = {
            "type": type(exc).__name__,
            "message": ANSI.sub("", str(exc))[:2000],
            "traceback": ANSI.sub("", "".join(traceback.format_exception(exc)))[-4000:],
        }
        if boundary_rate(case) == 1.0:  # an error naming the rate refuses it: recorded as that, not as a crash
            broken, observed, _ = rate_one_error(obs.error["type"], obs.error["message"])
            if not broken:
                obs.refusal, obs.error = observed, None
                obs.behaviour = Said(schemes=[], words=observed)
    obs.seconds, obs.cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return obs


def observe_with_timeout(adapter: Adapter, case: Case, spec: Spec, timeout: float) -> Observation:
    """``observe`` in a thread of this process; a case still running after ``timeout`` s is recorded as
    hung and its thread abandoned. For tests and debugging: a run isolates its cases in a worker process
    (``dropspec.worker``), which can also stop a hang that holds the GIL, a crash and an exit."""
    box: list[Observation] = []
    failed: list[BaseException] = []

    def target() -> None:
        try:
            box.append(observe(adapter, case, spec))
        except BaseException as exc:  # SystemExit or KeyboardInterrupt raised in adapter code
            failed.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(timeout)
    if box:
        return box[0]
    if failed:
        exc = failed[0]
        trace = "".join(traceback.format_exception(exc))[-4000:]
        error = {"type": type(exc).__name__, "message": str(exc)[:2000], "traceback": trace}
        return Observation(case=case, error=error)
    return Observation(
        case=case,
        error={
            "type": "Timeout",
            "message": f"the case did not finish within {timeout:g} s and was abandoned",
            "traceback": "",
        },
        seconds=timeout,
    )


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class Judge:
    """The clause checks. Each returns (status, what was observed, what should be, or None)."""

    def __init__(self, suite: Suite, scheme: Scheme, clause: Clause, obs: Observation) -> None:
        self.suite, self.scheme, self.clause, self.obs, self.case = suite, scheme, clause, obs, obs.case

    # statuses -------------------------------------------------------------------------------
    @staticmethod
    def ok(observed: str) -> tuple[str, str, None]:
        return "pass", observed, None

    @staticmethod
    def na(why: str) -> tuple[str, str, None]:
        return "not_applicable", why, None

    def verdict(self, good: bool, observed: str, expected: str) -> tuple[str, str, str | None]:
        return ("pass", observed, None) if good else ("fail", observed, expected)

    # helpers ---------------------------------------------------------------------------------
    def __call__(self) -> tuple[str, str, str | None]:
        kind = self.clause.check.kind
        if kind not in SITE_CHECKS:
            return getattr(self, kind)()
        targets = self.targets()
        if kind != "site_inactive" and not targets:
            return self.na(f"the case does not drop {self.clause.check.site} (p=0)")
        if kind == "site_inactive":
            names = [n for n, _, _ in self.targets(True)]
            dropped = [n for n in names if n in self.obs.fingerprint.sites]
            return self.verdict(not dropped, "dropped at=" + (",".join(dropped) or "none"), "none")
        verdicts = [
            self.na(f"at p=1 every unit of {name} is dropped: no mask structure or kept scale to see")
            if rate >= 1.0 and kind != "site_rate"
            else getattr(self, kind)(name, got, rate)
            for name, got, rate in targets
        ]
        verdicts = [v for v in verdicts if v[0] != "not_applicable"] or verdicts[:1]
        failed = [v for v in verdicts if v[0] == "fail"]
        if failed:
            return "fail", "; ".join(v[1] for v in failed), failed[0][2]
        if verdicts[0][0] == "not_applicable":
            return verdicts[0]
        return "pass", "; ".join(v[1] for v in verdicts), None

    def targets(self, every: bool = False) -> list[tuple[str, SiteFingerprint | None, float]]:
        """The results names the site check covers (``input``, or ``input@2``, ... in a stack),
        with what was found there and the documented rate; only those dropped unless ``every``."""
        site, cell = self.clause.check.site, self.case.cell
        names = [site_key(site, i, cell) for i in range(cell.parts)]
        rates = {n: float(self.case.claim.rates.get(n, 0.0)) for n in names}
        return [(n, self.obs.fingerprint.sites.get(n), rates[n]) for n in names if every or rates[n] > 0]

    def rule(self):
        return self.scheme.rule(self.clause.check.site)

    def group(self, attribute: str) -> list[Observation]:
        key = getattr(self.case, attribute)
        if key is None:
            return []
        return [
            self.suite.observation(c) for c in self.suite.cases if getattr(c, attribute) == key and c is not self.case
        ]

    # checks ----------------------------------------------------------------------------------
    def inference_matches_reference(self):
        worst, det = self.obs.inference_error, self.obs.inference_deterministic
        observed = f"inference output error={_fmt(worst)} tolerances, deterministic={det}"
        return self.verdict(worst <= 1.0 and det, observed, "within 1 tolerance of the reference and deterministic")

    def runs(self):
        return self.ok(f"{self.obs.runs} runs completed")

    def seed_reproducible(self):
        return self.verdict(
            bool(self.obs.seed_reproducible), f"same seed reproduces={self.obs.seed_reproducible}", "True"
        )

    def replay_explained(self):
        worst, unknown = self.obs.replay_error, self.obs.replay_unknown
        observed = f"replay error={_fmt(worst)} tolerances"
        if unknown:
            observed += f" with {unknown} unobservable mask elements set to 1"
        return self.verdict(worst <= 1.0, observed, "within 1 tolerance of the reference driven by the recovered masks")

    # site checks: one (name, what was found, documented rate) at a time ---------------------
    def site_resample(self, name: str, got: SiteFingerprint | None, rate: float):
        want = self.rule().resample
        if got is None:
            return "fail", f"{name} mask=none", want
        return self.verdict(got.resample == want, f"{name} mask resample={got.resample}", want)

    def site_gates(self, name: str, got: SiteFingerprint | None, rate: float):
        want = self.rule().gates
        if got is None:
            return "fail", f"{name} mask=none", want
        if got.gates is None:
            return self.na(f"{self.case.cell.name} has one gate")
        return self.verdict(got.gates == want, f"{name} mask gates={got.gates}", want)

    def site_batch(self, name: str, got: SiteFingerprint | None, rate: float):
        want = self.rule().batch
        if got is None:
            return "fail", f"{name} mask=none", want
        if got.batch is None:
            return self.na("a batch of one sample")
        return self.verdict(got.batch == want, f"{name} mask batch={got.batch}", want)

    def site_scale(self, name: str, got: SiteFingerprint | None, rate: float):
        # the claim's declared scaling, else the scheme's: test_time keeps 0/1 masks in training (the 1-p at
        # inference is common.mapping.inference_matches_reference's to check)
        scaling = self.case.claim.scaling or self.rule().scaling
        want = keep_scale(rate, scaling)
        if got is None:
            return "fail", f"{name} mask=none", f"kept units scaled by {want:.4g} ({scaling})"
        good = got.binary and abs(got.scale - want) <= TOL * want
        values = "" if got.binary else " (values are not 0 or one keep value)"
        return self.verdict(good, f"{name} keep scale={got.scale:.6g}{values}", f"{want:.6g} (p={rate:g}, {scaling})")

    def site_rate(self, name: str, got: SiteFingerprint | None, rate: float):
        if got is None:
            return "fail", f"{name} mask=none", f"drop rate {rate:g}"
        z = self.clause.check.z or 5.0
        bound = z * math.sqrt(rate * (1 - rate) / max(got.draws, 1))
        return self.verdict(
            abs(got.rate - rate) <= bound,
            f"{name} drop rate={got.rate:.4f} over {got.draws} draws",
            f"{rate:g} +- {bound:.4f} ({z:g} standard errors)",
        )

    def only_scheme_sites(self):
        sites = {m.site for m in self.scheme.masks}
        allowed = {key for key, p in self.case.claim.rates.items() if p > 0 and base_site(key) in sites}
        extra = sorted(set(self.obs.fingerprint.sites) - allowed)
        observed = "dropped sites=" + (",".join(sorted(self.obs.fingerprint.sites)) or "none")
        return self.verdict(not extra, observed, ",".join(sorted(allowed)) or "none")

    def shared_mask(self):
        first, second = self.clause.check.sites
        cell, rates = self.case.cell, self.case.claim.rates
        if cell.stacked:
            return self.na("one mask shared by two sites is judged on one-layer cells only")
        undropped = [s for s in (first, second) if rates.get(s, 0.0) <= 0]
        if undropped:
            return self.na(f"the case does not drop {','.join(undropped)} (p=0)")
        # the carried h of SimpleRNN and LSTM is recovered at the recurrent site: move it back (as the fingerprint does)
        masks = attribute_carried_state(cell, self.obs.recovered.masks)
        differ, compared = [], 0
        for call, m in enumerate(masks):
            a, b = m.get(first), m.get(second)
            if a is None or b is None:
                return "fail", f"call {call}: mask at {first}={a is not None}, at {second}={b is not None}", "both"
            a, b = np.broadcast_arrays(np.asarray(a, dtype=float), np.asarray(b, dtype=float))
            both = np.isfinite(a) & np.isfinite(b)
            compared += int(both.sum())
            scale = float(np.nanmax(np.abs(a))) if np.isfinite(a).any() else 1.0
            if np.any(np.abs(a[both] - b[both]) > TOL * max(1.0, scale)):
                differ.append(str(call))
        if not compared:
            return self.na(f"no element of the {first} and {second} masks could be seen in the same place")
        observed = f"{first} and {second} masks differ in calls=" + (",".join(differ) or "none")
        return self.verdict(not differ, observed + f" ({compared} elements compared)", "one mask at both sites")

    def carried_state(self):
        dropped = self.obs.fingerprint.carried_state_dropped
        want = self.scheme.carried_state == "dropped"
        return self.verdict(dropped == want, f"carried state dropped={dropped}", str(want))

    def new_call_new_masks(self):
        masks = [flat_masks(self.case.cell, m) for m in self.obs.recovered.masks]
        if not self.obs.fingerprint.sites:
            return self.na("no site is dropped")
        same, undecided = [], []
        for site, fp in self.obs.fingerprint.sites.items():
            a, b = masks[0].get(site), masks[1].get(site)
            if a is not None and b is not None:
                both = np.isfinite(a) & np.isfinite(b)
                if np.all(np.abs(a[both] - b[both]) <= TOL * 10):
                    (same if fp.coincidence < COINCIDENCE else undecided).append(site)
        if undecided and not same:
            chance = max(self.obs.fingerprint.sites[s].coincidence for s in undecided)
            return self.na(f"too few independent units to tell a reused mask from a repeat by chance ({chance:.2g})")
        return self.verdict(not same, "masks reused by the next call at=" + (",".join(same) or "none"), "none")

    def flag_invariance(self):
        others = [o for o in self.group("flag_group") if o.fingerprint is not None]
        if not others:
            return self.na("no other case differs from this one only in a performance flag")
        mine = self.obs.fingerprint.summary()
        differ = [o.case.id for o in others if _structure(o.fingerprint) != _structure(self.obs.fingerprint)]
        return self.verdict(
            not differ,
            f"masks={mine}; differ in=" + (",".join(differ) or "none"),
            "the same masks in every case of the flag group",
        )

    def mode_invariance(self):
        return self._same_masks_as_eager(reload=False)

    def reload_invariance(self):
        return self._same_masks_as_eager(reload=True)

    def _same_masks_as_eager(self, reload: bool):
        mode = self.case.mode
        if mode == EAGER:
            return self.na("the eager call is what the call modes are compared with")
        if MODES[mode].kind == "rate":
            return self.na(f"{mode} changes the rates: the scheme's site clauses and the rate clauses judge it")
        if (MODES[mode].kind == "reload") != reload:
            other = "the clause on call modes" if reload else "the clause on reloads"
            return self.na(f"{mode} is {'not ' if reload else ''}a reload; {other} judges it")
        eager = [
            self.suite.observation(c)
            for c in self.suite.cases
            if c.mode_group == self.case.mode_group and c.mode == EAGER and c is not self.case
        ]
        if not eager or eager[0].fingerprint is None:
            return self.na("the same configuration called eagerly was not measured")
        differ = mode_differences(eager[0].fingerprint, self.obs.fingerprint)
        return self.verdict(
            not differ,
            f"{mode} vs eager: " + ("; ".join(differ) if differ else "the same masks"),
            f"the masks of {eager[0].case.id}",
        )

    def training_flag(self):
        seq = self.obs.training_sequence
        if seq is None:
            return self.na("the adapter runs every call of a run with one training flag")
        dropped = bool(self.obs.fingerprint.sites)
        want = [not (flag and dropped) for flag in seq["flags"]]
        if seq.get("crashed"):
            return (
                "fail",
                f"calls on one model: train, eval, train crashed with {seq['crashed']}",
                "each call's flag honoured",
            )
        got = seq["equals_reference"]
        words = ", ".join(
            f"{'train' if flag else 'eval'}={'as without dropout' if same else 'dropped'}"
            for flag, same in zip(seq["flags"], got)
        )
        expected = ", ".join(
            f"{'train' if flag else 'eval'}={'as without dropout' if same else 'dropped'}"
            for flag, same in zip(seq["flags"], want)
        )
        return self.verdict(got == want, f"calls on one model: {words}", expected)

    def rate_zero(self):
        if boundary_rate(self.case) != 0.0:
            return self.na("the case does not set its rates to 0 (the rate_zero mode does)")
        dropped = sorted(self.obs.fingerprint.sites)
        return self.verdict(
            not dropped,
            "at rate 0, dropped at=" + (",".join(dropped) or "none"),
            "none: a training call equal to the call without dropout",
        )

    def rate_one(self):
        if boundary_rate(self.case) != 1.0:
            return self.na("the case does not set its rates to 1.0 (the rate_one mode does)")
        sites = sorted(key for key, p in self.case.claim.rates.items() if p >= 1.0)
        kept = []
        for key in sites:
            got = self.obs.fingerprint.sites.get(key)
            if got is None:
                kept.append(f"{key} kept every unit")
            elif got.rate < 1.0:
                kept.append(f"{key} kept {1 - got.rate:.1%} of {got.draws} draws")
        if kept:
            return "fail", "accepts rate 1.0 but " + "; ".join(kept), "every unit of a site at rate 1.0 dropped"
        return self.ok(f"accepts rate 1.0 and drops every unit at {','.join(sites)}; outputs finite")

    def site_independence(self):
        others = [o for o in self.group("rate_group") if o.fingerprint is not None]
        if not others:
            return self.na("no other case differs from this one only in a rate")
        mine = _structure(self.obs.fingerprint)
        changed = []
        for other in others:
            theirs = _structure(other.fingerprint)
            for site in set(mine) & set(theirs):
                if mine[site] != theirs[site]:
                    changed.append(f"{site} in {other.case.id}")
        return self.verdict(not changed, "structure changed at=" + (",".join(changed) or "none"), "none")


@dataclass(frozen=True)
class Said(Behaviour):
    """A behaviour no scheme names, said in words: a refusal of rate 1.0, or every unit of the sites dropped."""

    words: str = ""

    @property
    def text(self) -> str:
        return self.words


def all_dropped(case: Case, fp: Fingerprint) -> bool:
    """Whether every site the claim sets to rate 1.0 dropped every unit it showed."""
    sites = [k for k, p in case.claim.rates.items() if p >= 1.0]
    return bool(sites) and all(k in fp.sites and fp.sites[k].rate >= 1.0 for k in sites)


def boundary_rate(case: Case) -> float | None:
    """The rate a boundary-rate mode (``modes.MODES``, kind ``rate``) sets the case's rates to; None otherwise."""
    mode = MODES.get(case.mode)
    return mode.rate if mode is not None else None


def _structure(fp: Fingerprint) -> dict[str, tuple]:
    return {s.site: (s.resample, s.gates, s.batch, round(s.scale, 3)) for s in fp.sites.values()}


def mode_differences(eager: Fingerprint, other: Fingerprint) -> list[str]:
    """How a call mode's masks differ from the eager call's, in words: dropped sites, resampling, gates,
    batch sharing (where both calls can show it: a batch of one cannot), scale, and the carried state."""
    out = [f"{site} dropped only eagerly" for site in sorted(set(eager.sites) - set(other.sites))]
    out += [f"{site} dropped only in this mode" for site in sorted(set(other.sites) - set(eager.sites))]
    for site in sorted(set(eager.sites) & set(other.sites)):
        a, b = eager.sites[site], other.sites[site]
        for aspect in ("resample", "gates", "batch"):
            x, y = getattr(a, aspect), getattr(b, aspect)
            undecided = {x, y} == {"per_sequence", "reused_across_calls"} and max(
                a.coincidence, b.coincidence
            ) >= COINCIDENCE
            if x is not None and y is not None and x != y and not undecided:  # too few units to tell a reuse
                out.append(f"{site} {aspect}={y} (eager: {x})")
        if abs(a.scale - b.scale) > TOL * max(1.0, a.scale):
            out.append(f"{site} scale={b.scale:.4g} (eager: {a.scale:.4g})")
    if eager.carried_state_dropped != other.carried_state_dropped:
        out.append(f"carried state dropped={other.carried_state_dropped} (eager: {eager.carried_state_dropped})")
    return out


ProgressFn = Callable[[Result], None]


class Suite:
    """One adapter's conformance run: cases × clauses, observations cached per case."""

    def __init__(
        self,
        adapter: Adapter,
        spec: Spec | None = None,
        deviations: Deviations | None = None,
        timeout: float = 600.0,
        on_result: ProgressFn | None = None,
        isolate: bool = False,
    ) -> None:
        """``isolate``: observe every case in a worker process (``dropspec.worker``) that is killed and
        replaced when a case crashes, exits or hangs; else in a thread of this process."""
        self.adapter, self.spec = adapter, spec or default_spec()
        self.worker = None
        if isolate:
            from .worker import Worker

            self.worker = Worker(adapter, self.spec, observe)
        self.unavailable = adapter.unavailable_reason()
        self.cases: list[Case] = [] if self.unavailable else list(adapter.cases())
        ids = [c.id for c in self.cases]
        if len(ids) != len(set(ids)):
            raise ValueError(f"adapter {adapter.name!r} has repeated case ids; every case id must be unique")
        for case in self.cases:
            safe_name(case.id, f"adapter {adapter.name!r}: case id")  # it names files of the results
            self._check_claim(case)
        # a deviation must match a case of the adapter's whole catalogue, also when this suite runs a part of it
        catalogue = getattr(adapter, "catalogue", None)
        known = [c.id for c in catalogue()] if catalogue is not None and self.cases else ids
        if deviations is None and adapter.deviations_file:  # a third-party adapter ships its own
            deviations = Deviations.load(Path(adapter.deviations_file), self.spec, known)
        self.deviations = deviations or Deviations.for_adapter(adapter.name, self.spec, known)
        self.timeout, self.on_result = timeout, on_result
        self._observations: dict[str, Observation] = {}
        self._lock = threading.Lock()
        self.on_observe: Callable[[Case], None] | None = None  # before a case is observed

    def _check_claim(self, case: Case) -> None:
        """A case's claim must name a spec scheme and rates for that scheme's sites (``site@layer`` in a stack)."""
        where = f"adapter {self.adapter.name!r}, case {case.id!r}"
        try:
            scheme = self.spec.scheme(case.claim.scheme)
        except KeyError as exc:
            raise ValueError(f"{where}: {exc.args[0]}") from None
        sites, cell = {m.site for m in scheme.masks}, case.cell
        for key, p in case.claim.rates.items():
            site, at, _ = key.partition("@")
            bad_part = part_of(key, cell) is None if cell.stacked else bool(at)
            if site not in sites or bad_part or not 0.0 <= p <= 1.0:
                how = ""
                if cell.stacked:
                    how = ", written site@layer in a stack: input@2, and input@2r for layer 2's reverse direction"
                raise ValueError(
                    f"{where}: claim rate {key!r}={p} does not fit scheme {scheme.id!r} (sites: {sorted(sites)}{how};"
                    " 0 <= p <= 1)"
                )

    def pairs(self) -> list[tuple[Clause, Case]]:
        """Every (clause, case), grouped by case so each case is observed once, in order."""
        return [(clause, case) for case in self.cases for _, clause in self.spec.clauses()]

    def case(self, case_id: str) -> Case:
        for c in self.cases:
            if c.id == case_id:
                return c
        raise KeyError(f"unknown case {case_id!r} for adapter {self.adapter.name!r}")

    def observation(self, case: Case) -> Observation:
        with self._lock:
            if case.id not in self._observations:
                if self.on_observe:
                    self.on_observe(case)
                self._observations[case.id] = self._observe(case)
            return self._observations[case.id]

    def _observe(self, case: Case) -> Observation:
        if self.worker is None:
            return observe_with_timeout(self.adapter, case, self.spec, self.timeout)
        start = time.perf_counter()
        reply = self.worker.observe(case.id, self.timeout)
        if isinstance(reply, Observation):
            reply.case = case  # the worker's copy of the case, equal to this one
            return reply
        return Observation(case=case, error=reply, seconds=time.perf_counter() - start)

    def close(self) -> None:
        """Stop the worker process, if any."""
        if self.worker is not None:
            self.worker.close()

    def applies(self, scheme: Scheme, case: Case) -> str | None:
        """Why the clause does not apply to the case, or None when it does."""
        if scheme.id == "common":
            return None
        if case.claim.scheme != scheme.id:
            return f"the case is documented as {case.claim.scheme}, not {scheme.id}"
        return None

    def evaluate(self, clause_id: str, case_id: str) -> Result:
        scheme, clause = self.spec.clause(clause_id)
        case = self.case(case_id)
        reason = self.applies(scheme, case)
        unavailable = self.adapter.case_unavailable(case)
        if reason:
            result = Result(clause.id, case.id, "not_applicable", reason)
        elif unavailable:
            result = Result(clause.id, case.id, "skip", f"cannot run here: {unavailable}")
        else:
            obs = self.observation(case)
            tag = case_tag(clause.id, f"{self.adapter.name} {case.title}", case.seed)
            if obs.refusal or obs.error and boundary_rate(case) == 1.0:
                result = self._raised_at_rate_one(clause, case, obs, tag)
            elif obs.error and clause.check.kind == "runs":
                message = verdict_message(f"{obs.error['type']}: {obs.error['message']}", tag)
                result = Result(clause.id, case.id, "error", message, obs.error)
            elif obs.error:
                # a crash is one finding, counted on the runs clause; the other clauses were not measured
                runs_clause = next((c.id for _, c in self.spec.clauses() if c.check.kind == "runs"), "the runs clause")
                message = verdict_message(f"not measured: the case crashed, see {runs_clause}", tag)
                result = Result(clause.id, case.id, "not_measured", message)
            elif obs.seed_reproducible is False and clause.check.kind not in SEED_INDEPENDENT:
                # recovery reads masks across runs with one seed: where the seed does not reproduce them, what
                # it reports is not the layer's; the finding is the seed clause's, the rest is not measured
                seed_clause = next((c.id for _, c in self.spec.clauses() if c.check.kind == "seed_reproducible"), "")
                message = verdict_message(
                    f"not measured: the same seed does not reproduce the run, see {seed_clause}", tag
                )
                result = Result(clause.id, case.id, "not_measured", message)
            else:
                status, observed, expected = Judge(self, scheme, clause, obs)()
                if status == "not_applicable":
                    message = observed
                else:
                    message = verdict_message(observed, tag, expected if status == "fail" else None)
                result = Result(clause.id, case.id, status, message)
        result = self.deviations.apply(result)
        if self.on_result:
            self.on_result(result)
        return result

    def _raised_at_rate_one(self, clause: Clause, case: Case, obs: Observation, tag: str) -> Result:
        """A case at rate 1.0 that raised: the rate-1.0 clause records what the framework does (a refusal of the
        rate, outputs that are not finite, or a crash that does not name the rate); neither is a crash of a
        documented configuration, so the runs clause does not apply, and after a refusal nothing else is measured."""
        judged = next((c.id for _, c in self.spec.clauses() if c.check.kind == "rate_one"), "the rate-1.0 clause")
        observed, expected = obs.refusal, None
        if obs.error:
            _, observed, expected = rate_one_error(obs.error["type"], obs.error["message"])
        if clause.check.kind == "rate_one":
            message = verdict_message(observed, tag, expected)
            return Result(clause.id, case.id, "pass" if obs.refusal else "fail", message, obs.error)
        if obs.refusal or clause.check.kind == "runs":
            return Result(clause.id, case.id, "not_applicable", f"{observed}; {judged} judges it")
        message = verdict_message(f"not measured: {observed}, see {judged}", tag)
        return Result(clause.id, case.id, "not_measured", message)

    def run(self, progress: Callable[[int, int, Result], None] | None = None) -> list[Result]:
        pairs = self.pairs()
        out = []
        for n, (clause, case) in enumerate(pairs, 1):
            out.append(self.evaluate(clause.id, case.id))
            if progress:
                progress(n, len(pairs), out[-1])
        return out

"""Bug reports that prove themselves: a self-contained script per (clause, case), framework and numpy only.

An adapter's ``repro(case)`` returns a snippet, written with the framework alone, that defines

- ``build(seed)``: the case's model, built from its constructor arguments verbatim, the framework seeded;
- ``load(model, w_ih, w_hh, b_ih, b_hh)``: canonical parameters (PyTorch layout and gate order) loaded;
- ``call(model, x, h0, c0, training)``: one call, ``x`` time-major ``(T, B, I)``, returning
  ``(y (T, B, H), h (B, H), c (B, H) or None)`` as float64 numpy.

``repro_script`` appends to it a short numpy-only check of one clause, keyed by the clause's check
kind and site, and the lines that print what was seen. The script exits 1 when the clause is
violated (the deviation is present), 0 when it holds, 2 when a short script cannot tell (never a
silent pass). The checks use probe parameters in the spirit of ``recovery.py``: decoupled units,
saturated gates (+-40), so that whether a unit was dropped at a step is an exact test on the outputs.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .spec import SITE_CHECKS, Clause, Scheme, Spec, default_spec

EXIT_VIOLATED, EXIT_HOLDS, EXIT_UNTESTED = 1, 0, 2

# Check kinds with a script, and the sites each site check can read with a short probe
SCRIPTED = {
    "runs",
    "seed_reproducible",
    "new_call_new_masks",
    "inference_matches_reference",
    "flag_invariance",
    "site_independence",
    "site_resample",
    "site_gates",
    "site_batch",
    "site_scale",
    "site_rate",
    "site_inactive",
    "only_scheme_sites",
    "carried_state",
    "replay_explained",
}
READABLE = {"input", "recurrent", "output", "candidate", "cell", "carry_h", "carry_c", "state_in"}


@dataclass(frozen=True)
class ReproCase:
    """What a script needs to know about a case; built from an adapter ``Case`` or a results record."""

    id: str
    label: str
    kind: str
    reset_after: bool
    input_size: int
    hidden_size: int
    steps: int
    batch: int
    seed: int
    rates: Mapping[str, float]
    scheme: str
    doc: str = ""
    layers: int = 1
    config: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_case(cls, case: Any) -> ReproCase:
        cell = case.cell
        return cls(
            id=case.id,
            label=case.title,
            kind=cell.kind,
            reset_after=cell.reset_after,
            input_size=cell.input_size,
            hidden_size=cell.hidden_size,
            steps=case.steps,
            batch=case.batch,
            seed=case.seed,
            rates=dict(case.claim.rates),
            scheme=case.claim.scheme,
            doc=case.claim.doc,
            layers=cell.parts,  # a bidirectional layer counts as a stack: no script
            config=case.config,
        )

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ReproCase:
        """From a case record of a results file (``results.case_record``)."""
        cell = str(record.get("cell", ""))
        kind = cell.split("_")[0]
        sizes, claim = record.get("sizes") or {}, record.get("claim") or {}
        layers = int(cell.rsplit("_x", 1)[1].split("_")[0]) if "_x" in cell else 1
        layers = max(layers, 2) if cell.endswith("_bi") else layers  # bidirectional: a stack, no script
        return cls(
            id=record["id"],
            label=record.get("label") or record["id"],
            kind=kind,
            reset_after="reset_before" not in cell,
            input_size=int(sizes.get("input", 0)),
            hidden_size=int(sizes.get("hidden", 0)),
            steps=int(sizes.get("steps", 0)),
            batch=int(sizes.get("batch", 0)),
            seed=int(record.get("seed", 0)),
            rates=dict(claim.get("rates") or {}),
            scheme=str(claim.get("scheme", "")),
            doc=str(claim.get("doc", "")),
            layers=layers,
            config=record.get("config") or {},
        )


class NoScript(ValueError):
    """This clause cannot be checked by a short framework-only script for this case; the message says why."""


# --- the numpy-only part every script shares ---------------------------------------------------------
HELPERS = '''
SAT, BETA, GAMMA, W = 40.0, 0.5, 0.5, 0.5  # saturating bias (sigmoid = 0 or 1 exactly), a bias, h0, a probe weight
ZC = float(np.log(2 * T - 1))  # GRU update-gate bias: z = 1 - 1/(2T), the state fades slowly
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}[KIND]
MAIN = {"rnn": "h", "lstm": "g", "gru": "n"}[KIND]  # a gate read without memory
SECOND = {"rnn": None, "lstm": "i", "gru": "z"}[KIND]  # another gate, to compare the masks gates see


def atanh(v):
    with np.errstate(all="ignore"):
        return np.arctanh(v)


def logit(v):
    with np.errstate(all="ignore"):
        return np.log(v) - np.log1p(-v)


def probe(biases, w_in=None, w_rec=None):
    """Canonical parameters (PyTorch layout): gate biases, a diagonal weight W on one gate, all else 0."""
    w_ih, w_hh = np.zeros((len(GATES) * H, I)), np.zeros((len(GATES) * H, H))
    b_ih, b_hh = np.zeros(len(GATES) * H), np.zeros(len(GATES) * H)
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(GATES)}
    for gate, value in biases.items():
        b_ih[rows[gate]] = value
    if w_in:
        w_ih[rows[w_in]] = W * np.eye(H, I)
    if w_rec:
        w_hh[rows[w_rec]] = W * np.eye(H)
    return w_ih, w_hh, b_ih, b_hh


def random_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(len(GATES) * H, I), (len(GATES) * H, H), (len(GATES) * H,), (len(GATES) * H,)]
    params = [rng.uniform(-1, 1, s) / np.sqrt(H) for s in shapes]
    if KIND == "gru":  # some GRU cells (Flax NNX's) have no b_hn; no check here needs it
        params[3][2 * H :] = 0.0
    return params


def run(params, x=1.0, calls=2, seed=SEED, training=True, model_fns=None):
    """Build a model with `seed`, load `params`, call it `calls` times on the same batch: [(y, h, c)]."""
    b, l, c = model_fns or (build, load, call)
    model = b(CONFIG, seed) if "CONFIG" in globals() and model_fns is None else b(seed)
    l(model, *params)
    x = np.broadcast_to(np.asarray(x, float), (T, B, I)).copy()
    h0 = np.full((B, H), GAMMA)
    c0 = np.full((B, H), GAMMA) if KIND == "lstm" else None
    outs = [c(model, x, h0, c0, training) for _ in range(calls)]
    return [tuple(None if a is None else np.asarray(a, float) for a in out) for out in outs]


def readout(gate, center):
    """Biases under which only `gate` matters (its pre-activation `center` + what is probed), and the
    inverse of the output y_t back to that pre-activation (given the state the step received)."""
    if KIND == "rnn":
        return {"h": center}, lambda y, prev: atanh(y)
    if KIND == "lstm":  # f = 0: no memory; h = tanh(c) with o = 1
        biases = {"i": SAT, "f": -SAT, "g": SAT, "o": SAT, gate: center}
        if gate == "g":
            return biases, lambda y, prev: atanh(atanh(y))  # c = g
        return biases, lambda y, prev: logit(atanh(y))  # gate i: c = i
    if gate == "n":  # z = 0: h = n; r = 1
        return {"r": SAT, "z": -SAT, "n": center}, lambda y, prev: atanh(y)
    with np.errstate(all="ignore"):  # gate z, n = 0: h_t = z_t * h_(t-1)
        return {"r": SAT, "z": center, "n": 0.0}, lambda y, prev: logit(y / prev)


def previous(first, seq):
    return np.concatenate([np.broadcast_to(first, seq.shape[1:])[None], seq[:-1]])


def seen(outs, model_fns=None, rates=None):
    """The runs' outputs with the case's output mask taken out (NaN where it dropped a unit): the h behind y."""
    if (RATES if rates is None else rates).get("output", 0) <= 0:
        return outs
    m = mask("output", model_fns=model_fns)
    with np.errstate(all="ignore"):
        return [(np.where(dropped(mo), np.nan, y / mo), h, c) for (y, h, c), mo in zip(outs, m)]


def mask(site, gate=None, model_fns=None, rates=None):
    """The mask `site` applies as seen through `gate`, per call: (calls, T, B, units); 0 where dropped,
    the kept units' scale elsewhere. 'output' reads whatever multiplies the emitted output inside a
    step (output, candidate or cell-state mask)."""
    gate = gate or MAIN
    if site in ("input", "recurrent"):
        center = ZC if gate == "z" else (BETA if site == "recurrent" and gate != "i" else 0.0)
        biases, inverse = readout(gate, center)
        params = probe(biases, w_in=gate if site == "input" else None, w_rec=gate if site == "recurrent" else None)
        fed = state_in_mask(model_fns, rates) if site == "recurrent" else None
        out = []
        for n, (y, h, c) in enumerate(seen(run(params, model_fns=model_fns), model_fns, rates)):
            prev = previous(GAMMA, y)  # the state each step received: the previous output, h0 first
            if fed is not None:
                prev = prev * fed[n]  # times the mask on the state fed to the step, where there is one
            with np.errstate(all="ignore"):
                out.append((inverse(y, prev) - center) / (W * (1.0 if site == "input" else prev)))
        return np.array(out)
    if site in ("output", "candidate", "cell"):  # every gate saturated: the undropped h is a known constant
        ys = np.array([y for y, h, c in run(probe(readout(MAIN, BETA)[0]), model_fns=model_fns)])
        if KIND == "lstm" and site != "output":  # c = m tanh(BETA) with i = 1, f = 0; h = tanh(c)
            return atanh(ys) / np.tanh(BETA)
        return ys / (np.tanh(np.tanh(BETA)) if KIND == "lstm" else np.tanh(BETA))
    if site == "carry_h":  # the state a step received over the one emitted before it; the last: returned / emitted
        biases, inverse = readout(MAIN, BETA)
        out = []
        for y, h, c in seen(run(probe(biases, w_rec=MAIN), model_fns=model_fns), model_fns, rates):
            received = (inverse(y, None) - BETA) / W
            with np.errstate(all="ignore"):
                out.append(np.concatenate([received[1:] / y[:-1], (h / y[-1])[None]]))
        return np.array(out)
    if site == "state_in":  # GRU: what multiplied h_(t-1) on the memory path of step t, the initial state first
        return memory_path()
    if site == "carry_c":  # LSTM: c_t = 0.5 c'_(t-1) + tanh(BETA), read from h_t = tanh(c_t)
        out = []
        outs = run(probe({"i": SAT, "f": 0.0, "g": BETA, "o": SAT}), model_fns=model_fns)
        for y, h, c in seen(outs, model_fns, rates):
            cs = atanh(y)
            with np.errstate(all="ignore"):
                received = (cs - np.tanh(BETA)) / 0.5 / previous(GAMMA, cs)
                out.append(np.concatenate([received[1:], (c / cs[-1])[None]]))
        return np.array(out)
    raise ValueError(site)


def memory_path(model_fns=None, rates=None):
    """What multiplies the state on the cell's memory path (GRU: z * h_(t-1); LSTM: f * c_(t-1)), over
    the state the previous step emitted; index 0 is what happened to the initial state."""
    if KIND == "gru":  # z near 1 and a small constant candidate, so a unit dropped once is seen again later
        z, n = 1 - 1 / (2 * T), np.tanh(BETA)
        out = []
        for y, h, c in seen(run(probe({"r": SAT, "z": ZC, "n": BETA}), model_fns=model_fns), model_fns, rates):
            with np.errstate(all="ignore"):
                out.append((y - (1 - z) * n) / z / previous(GAMMA, y))
        return np.array(out)
    out = []
    for y, h, c in seen(run(probe({"i": SAT, "f": 0.0, "g": BETA, "o": SAT}))):
        cs = atanh(y)
        with np.errstate(all="ignore"):
            out.append((cs - np.tanh(BETA)) / 0.5 / previous(GAMMA, cs))
    return np.array(out)


def state_in_mask(model_fns=None, rates=None):
    """GRU: the mask on the state fed to each step (h dropped before the cell), or None. Only such a mask
    drops the initial state on the memory path."""
    if KIND != "gru":
        return None
    m = memory_path(model_fns, rates)
    return m if dropped(m[:, :1]).any() else None


def none_dropped(m):
    """True (and says so) when the mask drops no unit at all."""
    if dropped(m).any():
        return False
    print(f"{SITE}: no unit dropped in {m.size} mask values; the rule says p={RATES.get(SITE, 0)}")
    return True


def dropped(m):
    return np.abs(np.nan_to_num(m, nan=1.0)) < 0.05


def row(m, call=0, sample=0, unit=0):
    """Unit `unit` of sample `sample` over the steps of one call: 0 dropped, 1 kept."""
    return " ".join("0" if d else "1" for d in dropped(m)[call, :, sample, unit])


def structure(m):
    """(resample, batch sharing, kept value, values are 0 or one kept value) of a mask (calls, T, B, units)."""
    d = dropped(m)
    if np.any(d != d[:, :1]):
        resample = "per_step"
    elif np.array_equal(d[0], d[1]):
        resample = "reused_across_calls"
    else:
        resample = "per_sequence"
    batch = "shared" if np.all(d == d[:, :, :1]) else "per_sample"
    kept = m[~d & np.isfinite(m)]
    scale = float(np.median(kept)) if kept.size else float("nan")
    clean = bool(kept.size) and bool(np.all(np.abs(kept - scale) <= 1e-3 * max(1.0, abs(scale))))
    return resample, batch, scale, clean


def gate_sharing(site, model_fns=None, rates=None):
    """'shared' when the gates MAIN and SECOND see the same drop pattern (same seed), else 'per_gate'."""
    a, b = mask(site, MAIN, model_fns, rates), mask(site, SECOND, model_fns, rates)
    return ("shared" if np.array_equal(dropped(a), dropped(b)) else "per_gate"), a, b


def describe(model_fns=None, rates=None):
    """The structure of every dropped site, as the spec's fingerprint records it."""
    out = {}
    for s in ("input", "recurrent", "output", "carry_h", "state_in"):
        if (rates if rates is not None else RATES).get(s, 0) <= 0:
            continue
        m = mask(s, model_fns=model_fns, rates=rates)
        resample, batch, scale, clean = structure(m)
        gates = gate_sharing(s, model_fns, rates)[0] if SECOND and s in ("input", "recurrent") else "-"
        out[s] = (resample, gates, batch, round(scale, 3))
    return out
'''

# --- one check per check kind; each defines check() -> exit status ----------------------------------
CHECKS: dict[str, str] = {}

CHECKS["runs"] = """
def check():
    params = random_params()
    outs = run(params, x=np.random.default_rng(1).standard_normal((T, B, I)), calls=2, training=True)
    run(params, calls=1, training=False)
    print(f"training (2 calls) and inference ran; y has shape {outs[0][0].shape}")
    return 0
"""

CHECKS["seed_reproducible"] = """
def check():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, I))
    a, b = run(params, x=x, calls=1)[0][0], run(params, x=x, calls=1)[0][0]
    diff = float(np.max(np.abs(a - b)))
    print(f"two models built with seed {SEED}, same weights and input: max |y1 - y2| = {diff:.3g}")
    return 1 if diff > 1e-6 else 0
"""

CHECKS["new_call_new_masks"] = """
def check():
    x = np.random.default_rng(1).standard_normal((T, B, I))
    (y1, _, _), (y2, _, _) = run(random_params(), x=x, calls=2)
    diff = float(np.max(np.abs(y1 - y2)))
    print(f"two training calls on the same model with the same batch: max |y1 - y2| = {diff:.3g}")
    if diff <= 1e-6:
        print("the second call reused the first call's dropout masks")
        return 1
    return 0
"""

CHECKS["inference_matches_reference"] = """
def check():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, I))
    a = run(params, x=x, calls=2, training=False)
    b = run(params, x=x, calls=1, seed=SEED + 1, training=False)
    d_call = float(np.max(np.abs(a[0][0] - a[1][0])))
    d_seed = float(np.max(np.abs(a[0][0] - b[0][0])))
    print(f"inference (training=False): two calls differ by {d_call:.3g}; models built with seeds {SEED} and "
          f"{SEED + 1} differ by {d_seed:.3g} (without dropout at inference both are 0)")
    return 1 if max(d_call, d_seed) > 1e-5 else 0
"""

CHECKS["site_resample"] = """
def check():
    m = mask(SITE)
    if none_dropped(m):
        return 1
    resample, batch, scale, clean = structure(m)
    for call in range(2):
        print(f"{SITE} mask of sample 0, unit 0 over {T} steps, call {call + 1}: {row(m, call)}")
    print(f"measured: {SITE} mask resampled {resample}; the rule says {RULE['resample']}")
    return 0 if resample == RULE["resample"] else 1
"""

CHECKS["site_gates"] = """
def check():
    sharing, a, b = gate_sharing(SITE)
    if none_dropped(a) and none_dropped(b):
        return 1
    print(f"{SITE} mask seen by gate {MAIN}, sample 0, unit 0 over {T} steps: {row(a)}")
    print(f"{SITE} mask seen by gate {SECOND}, same seed:               {row(b)}")
    print(f"measured: {sharing}; the rule says {RULE['gates']}")
    return 0 if sharing == RULE["gates"] else 1
"""

CHECKS["site_batch"] = """
def check():
    m = mask(SITE)
    if none_dropped(m):
        return 1
    resample, batch, scale, clean = structure(m)
    for sample in range(3):
        print(f"{SITE} mask of sample {sample}, unit 0 over {T} steps: {row(m, 0, sample)}")
    print(f"measured: {batch} across the {B} samples of the batch; the rule says {RULE['batch']}")
    return 0 if batch == RULE["batch"] else 1
"""

CHECKS["site_scale"] = """
def check():
    m = mask(SITE)
    if none_dropped(m):
        return 1
    resample, batch, scale, clean = structure(m)
    want = 1 / (1 - RATES[SITE]) if RULE["scaling"] == "inverted" else 1.0
    values = np.unique(np.round(m[np.isfinite(m)], 4))
    print(f"{SITE} mask values seen: {values[:8]}; kept units scaled by {scale:.6g}, the rule says {want:.6g}")
    if not clean:
        print("the values are not 0 or one kept value")
    return 0 if clean and abs(scale - want) <= 1e-3 * want else 1
"""

CHECKS["site_rate"] = """
def check():
    m = mask(SITE)
    if none_dropped(m):
        return 1
    resample, batch, scale, clean = structure(m)
    d = dropped(m)
    d = d[:, :1] if resample != "per_step" else d  # one draw per sequence is counted once
    d = d[:1] if resample == "reused_across_calls" else d
    d = d[:, :, :1] if batch == "shared" else d
    p, n = RATES[SITE], d.size
    bound = Z * np.sqrt(p * (1 - p) / n)
    print(f"{SITE}: {d.mean():.4f} of {n} independent mask draws dropped; the rule says {p:g} +- {bound:.4f}")
    return 0 if abs(d.mean() - p) <= bound else 1
"""

CHECKS["site_inactive"] = """
def check():
    m = mask(SITE)
    n = int(dropped(m).sum())
    print(f"{SITE}: {n} of {m.size} units dropped; the rule says none")
    return 0 if n == 0 and np.allclose(m[np.isfinite(m)], 1.0, atol=1e-3) else 1
"""

CHECKS["only_scheme_sites"] = """
def check():
    allowed = {s for s, p in RATES.items() if p > 0}
    if allowed & {"candidate", "cell"}:
        print("a candidate or cell-state mask hides the other sites from this short script; run dropspec")
        return 2
    in_step = {"output", "candidate", "cell"}
    if allowed & in_step:
        allowed |= in_step
    if allowed & {"carry_h", "weight_hh", "state_in"}:
        allowed |= {"recurrent"}  # all act on the recurrent matmul: this script does not separate them
    found = []
    extra = {"lstm": ["carry_c"], "gru": ["state_in"]}.get(KIND, [])
    for site in ["input", "recurrent", "output", "carry_h"] + extra:
        if site in allowed or (site == "output" and allowed & in_step):
            continue
        m = mask(site)
        if site == "carry_h" and allowed & {"recurrent"}:
            m = m[:, -1:]  # only the returned state is free of the recurrent mask
        if site == "state_in":
            m = m[:, :1]  # only a mask on the state fed to the step reaches the initial state
        n = int(dropped(m).sum())
        print(f"{site}: {n} of {m.size} units dropped")
        if n:
            found.append(site)
    print(f"dropped outside the scheme's sites ({', '.join(sorted(allowed)) or 'none'}): {', '.join(found) or 'none'}")
    return 1 if found else 0
"""

CHECKS["carried_state"] = """
def check():
    if any(RATES.get(s, 0) > 0 for s in ("candidate", "cell")):
        print("an in-step mask hides the carried state from this short script; run dropspec for this clause")
        return 2
    returned = mask("carry_h")[:, -1]  # returned state over the last output
    seen = {"returned h": int(dropped(returned).sum())}
    if KIND == "gru":
        m = memory_path()
        if dropped(m[:, :1]).any():  # h0 is dropped too: a mask on the state fed to each step, not a carried one
            print("the memory path z * h drops the initial state: a mask on the state fed to each step (not carried)")
        else:
            seen["h on the memory path z * h"] = int(dropped(m).sum())
    if KIND == "lstm":
        seen["c carried to the next step"] = int(dropped(mask("carry_c")).sum())
    for what, n in seen.items():
        print(f"{what}: {n} units dropped")
    is_dropped = any(seen.values())
    print(f"measured: carried state dropped={is_dropped}; the scheme says {WANT_DROPPED}")
    return 0 if is_dropped == WANT_DROPPED else 1
"""

CHECKS["replay_explained"] = """
def check():
    # dropspec replays the framework with the masks it recovered; short of that, the part of it a
    # framework fails in practice: the memory path. A mask there either reaches the next step's state
    # and the returned one (carry_h / carry_c, never the initial state), or acts on the state fed to
    # each step (GRU: the initial state too, never the returned one); never both.
    if KIND == "rnn":
        print("a SimpleRNN has no memory path; run dropspec for the full replay")
        return 2
    m = memory_path()
    initial = int(dropped(m[:, :1]).sum())
    what = "z * h_(t-1)" if KIND == "gru" else "f * c_(t-1)"
    print(f"state on the memory path {what} over the state the previous step returned, sample 0, unit 0:")
    print(f"  call 1: {np.round(m[0, :, 0, 0], 3)}")
    print(f"the initial state is dropped on the memory path in {initial} of {m[:, 0].size} units")
    if not initial:
        return 0
    if KIND == "lstm":
        print("no mask site of the spec drops the initial cell state: the run is not explained by dropout masks")
        return 1
    returned = int(dropped(mask("carry_h")[:, -1]).sum())
    print(f"the returned state is dropped in {returned} units")
    if returned:
        print("a mask on the state fed to each step (initial state dropped) and a carried mask (returned state")
        print("dropped) act together: the spec's sites cannot explain the run")
        return 1
    return 0
"""

CHECKS["flag_invariance"] = """
def check():
    mine = describe()
    print(f"{LABEL}: {mine}")
    differ = []
    for label, rates, fns in PARTNERS:
        try:
            theirs = describe(fns, rates)
        except Exception as exc:  # a partner that crashes is reported, not compared
            print(f"{label}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        print(f"{label}: {theirs}")
        common = set(mine) & set(theirs) if COMMON_ONLY else set(mine) | set(theirs)
        if any(mine.get(s) != theirs.get(s) for s in common):
            differ.append(label)
    print("(site: resample, gates, batch, kept scale)")
    print(f"{WHAT}: " + ("differ in " + "; ".join(differ) if differ else "the same"))
    return 1 if differ else 0
"""
CHECKS["site_independence"] = CHECKS["flag_invariance"]


def _rule(scheme: Scheme, site: str | None) -> dict[str, str] | None:
    rule = scheme.rule(site) if site else None
    return None if rule is None else rule.model_dump()


def _indent(code: str) -> str:
    return textwrap.indent(code.strip("\n"), "    ")


def _partner_block(n: int, snippet: str) -> str:
    """A partner's snippet in its own scope, so its names cannot shadow the main case's."""
    seeded = "(lambda seed: build(CONFIG, seed)) if 'CONFIG' in locals() else build"
    return f"def _partner_{n}():\n{_indent(snippet)}\n    return {seeded}, load, call\n"


def repro_script(
    snippet: str,
    case: ReproCase | Any,
    clause: Clause | str,
    spec: Spec | None = None,
    versions: Mapping[str, str] | None = None,
    partners: Sequence[tuple[ReproCase | Any, str]] = (),
) -> str:
    """The self-contained script for ``clause`` on ``case``; ``partners`` are (case, snippet) of the other
    cases of its flag group (``flag_invariance``) or rate group (``site_independence``).
    Raises ``NoScript`` when the clause cannot be checked by a short script for this case."""
    spec = spec or default_spec()
    case = case if isinstance(case, ReproCase) else ReproCase.from_case(case)
    scheme, clause = spec.clause(clause if isinstance(clause, str) else clause.id)
    kind, site = clause.check.kind, clause.check.site
    if kind not in SCRIPTED:
        raise NoScript(f"no short script checks {kind!r} clauses")
    if case.layers > 1:
        raise NoScript("the short scripts probe one layer; a stack needs dropspec's recovery")
    if kind in SITE_CHECKS and site not in READABLE:
        raise NoScript(f"no short probe reads the {site} site")
    if kind in SITE_CHECKS and kind != "site_inactive" and case.rates.get(site, 0.0) <= 0:
        raise NoScript(f"the case does not drop {site}; the clause does not apply")
    if kind in ("flag_invariance", "site_independence") and not partners:
        raise NoScript("no other case of its group to compare with")
    if kind in ("new_call_new_masks", "flag_invariance", "site_independence") and not any(case.rates.values()):
        raise NoScript("the case drops no site")
    if kind == "site_gates" and case.kind == "rnn":
        raise NoScript("a SimpleRNN has one gate")

    versions_text = ", ".join(f"{k} {v}" for k, v in (versions or {}).items()) or "not recorded"
    doc = textwrap.fill(case.doc, 96, subsequent_indent="    ") if case.doc else "-"
    header = f'''"""dropspec repro: `{clause.id}` ({clause.level}) on {case.label}

Rule: {textwrap.fill(clause.text, 96, subsequent_indent="    ")}
Source: {clause.source}
Documented as: {case.scheme} with rates {json.dumps(dict(case.rates))}
    {doc}
Versions: {versions_text}

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.
"""'''
    constants = [
        "import sys",
        "",
        "import numpy as np",
        "",
        f"KIND, RESET_AFTER = {case.kind!r}, {case.reset_after!r}",
        f"T, B, I, H = {case.steps}, {case.batch}, {case.input_size}, {case.hidden_size}",
        f"SEED = {case.seed}",
        f"RATES = {json.dumps(dict(case.rates))}  # documented drop rate per site",
        f"LABEL = {case.label!r}",
    ]
    if site:
        constants.append(f"SITE, RULE = {site!r}, {_rule(scheme, site)!r}")
    if kind == "site_rate":
        constants.append(f"Z = {clause.check.z or 5.0}  # standard errors")
    if kind == "carried_state":
        constants.append(f"WANT_DROPPED = {scheme.carried_state == 'dropped'}")
    parts = [header, "", "# --- the model, with the framework only ---", snippet.strip("\n"), ""]
    if kind in ("flag_invariance", "site_independence"):
        parts.append("# --- the other cases of the group, each in its own scope ---")
        entries = []
        for n, (other, other_snippet) in enumerate(partners):
            other = other if isinstance(other, ReproCase) else ReproCase.from_case(other)
            parts.append(_partner_block(n, other_snippet))
            entries.append(f"    ({other.label!r}, {json.dumps(dict(other.rates))}, _partner_{n}()),")
        constants += ["PARTNERS = [", *entries, "]"]
        constants.append(f"COMMON_ONLY = {kind == 'site_independence'}")
        what = "masks across the performance flag" if kind == "flag_invariance" else "shared sites across the rates"
        constants.append(f"WHAT = {what!r}")
    parts += ["# --- the check, numpy only ---", *constants, HELPERS.strip("\n"), "", CHECKS[kind].strip("\n"), ""]
    parts += ['if __name__ == "__main__":', "    sys.exit(check())", ""]
    return "\n".join(parts)


def partners_of(case_id: str, group: str, cases: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The other case ids of ``case_id``'s flag or rate group (``group`` is 'flag_group' or 'rate_group'),
    from case records (results) or ``Case`` objects."""

    def get(c: Any, key: str) -> Any:
        return c.get(key) if isinstance(c, Mapping) else getattr(c, key, None)

    key = get(cases[case_id], group)
    if not key:
        return []
    return [other for other, c in cases.items() if other != case_id and get(c, group) == key]


def group_of(clause: Clause) -> str | None:
    return {"flag_invariance": "flag_group", "site_independence": "rate_group"}.get(clause.check.kind)


def script_from_results(
    data: Mapping[str, Any], case_id: str, clause_id: str, spec: Spec | None = None
) -> tuple[str | None, str]:
    """(script, why not) for one (case, clause) of a results file, from the snippets stored at run time."""
    spec = spec or default_spec()
    cases = data.get("cases") or {}
    record = cases.get(case_id)
    if record is None:
        return None, f"no case {case_id!r} in the results"
    snippet = record.get("repro")
    if not snippet:
        return None, record.get("repro_missing") or "the adapter stored no framework-only snippet for this case"
    try:
        _, clause = spec.clause(clause_id)
        partners = []
        group = group_of(clause)
        if group:
            for other in partners_of(case_id, group, cases):
                if cases[other].get("repro"):
                    partners.append((ReproCase.from_record(cases[other]), cases[other]["repro"]))
        script = repro_script(
            snippet, ReproCase.from_record(record), clause, spec, data.get("versions") or {}, partners
        )
    except (NoScript, KeyError) as exc:
        return None, str(exc.args[0]) if exc.args else type(exc).__name__
    return script, ""


def first_bad_clause(data: Mapping[str, Any], case_id: str) -> str | None:
    """The first clause the case breaks (fail, xfail or error) in a results file, preferring one with a script."""
    bad = [r["clause"] for r in data.get("results", []) if r["case"] == case_id and r["status"] in BAD]
    return bad[0] if bad else None


BAD = ("fail", "xfail", "error")

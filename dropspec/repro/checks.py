"""One check per check kind of the spec, as a repro script runs it: NumPy only, on the probes of
``probes.py``. Each returns ``(status, observed, expected)``: status 1 when the rule is broken (the
deviation is present), 0 when it holds, 2 when a short script cannot tell; ``main`` prints the verdict
in the suite's grammar (``dropspec.messages``) and returns the status as the script's exit status.

The composer copies ``main``, the chosen check and every function and constant they reach into the
script; the placeholders below stand for the constants it writes from the case and the clause.
"""

import numpy as np

from ..messages import rate_one_error, verdict_message
from .probes import (
    CONFIG,
    GAMMA,
    KIND,
    MAIN,
    SECOND,
    SEED,
    B,
    D,
    H,
    T,
    build,
    call,
    describe,
    dropped,
    gate_sharing,
    load,
    mask,
    memory_mask,
    random_params,
    row,
    run,
    structure,
)

# --- placeholders: a script defines these from its case and clause -------------------------------------
RATES: dict = {}
SITE = "input"
RULE: dict = {}
Z = 5.0  # standard errors a drop rate may be off by
WANT_DROPPED = False  # whether the scheme drops the carried state
LABEL = ""
PARTNERS: list = []  # (label, rates, config) of the other cases of the group
TAG = "[clause; case, seed=0]"
CHECK = "runs"  # the check kind of the clause


def main():
    with np.errstate(all="ignore"):  # the probes divide by dropped (zero) units and take logs of 0 on purpose
        status, observed, expected = globals()[f"check_{CHECK}"]()
    print(verdict_message(observed, TAG, expected if status == 1 else None))
    return status


def check_runs():
    params = random_params()
    run(params, x=np.random.default_rng(1).standard_normal((T, B, D)), calls=2)
    run(params, calls=1, training=False)
    return 0, "3 runs completed (2 training calls, 1 inference call)", None


def check_seed_reproducible():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, D))
    a, b = run(params, x=x, calls=1)[0][0], run(params, x=x, calls=1)[0][0]
    diff = float(np.max(np.abs(a - b)))
    print(f"two models built with seed {SEED}, same weights and input: max |y1 - y2| = {diff:.3g}")
    return int(diff > 1e-6), f"same seed reproduces={diff <= 1e-6}", "True"


def check_new_call_new_masks():
    x = np.random.default_rng(1).standard_normal((T, B, D))
    (y1, _, _), (y2, _, _) = run(random_params(), x=x, calls=2)
    diff = float(np.max(np.abs(y1 - y2)))
    print(f"two training calls on the same model with the same batch: max |y1 - y2| = {diff:.3g}")
    return int(diff <= 1e-6), f"masks reused by the next call={diff <= 1e-6}", "False"


def check_inference_matches_reference():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, D))
    a = run(params, x=x, calls=2, training=False)
    b = run(params, x=x, calls=1, seed=SEED + 1, training=False)
    d_call = float(np.max(np.abs(a[0][0] - a[1][0])))
    d_seed = float(np.max(np.abs(a[0][0] - b[0][0])))
    observed = f"inference: two calls differ by {d_call:.3g}, seeds {SEED} and {SEED + 1} by {d_seed:.3g}"
    return int(max(d_call, d_seed) > 1e-5), observed, "0 and 0 (no dropout at inference)"


def check_training_flag():
    """On one model: train, eval, train. The eval call must equal a fresh model's eval call; the training calls
    must differ from it where the case drops anything."""
    params, rng = random_params(), np.random.default_rng(1)
    xs = [rng.standard_normal((T, B, D)) for _ in range(3)]
    h0 = np.full((B, H), GAMMA)
    c0 = np.full((B, H), GAMMA) if KIND == "lstm" else None
    model = build(CONFIG, SEED)
    load(model, *params)
    try:
        got = [np.asarray(call(model, x, h0, c0, flag)[0], float) for x, flag in zip(xs, (True, False, True))]
    except Exception as exc:  # a layer that cannot take this sequence breaks the rule
        print(f"train, eval, train on one model raised {type(exc).__name__}: {str(exc)[:300]}")
        return 1, f"train, eval, train crashed with {type(exc).__name__}", "each call's flag honoured"
    fresh = build(CONFIG, SEED)
    load(fresh, *params)
    plain = [np.asarray(call(fresh, x, h0, c0, False)[0], float) for x in xs]
    same = [bool(np.max(np.abs(g - p)) <= 1e-5) for g, p in zip(got, plain)]
    drops = any(p > 0 for p in RATES.values())
    want = [not drops, True, not drops]
    words = ", ".join(
        f"{n}={'as without dropout' if s else 'dropped'}" for n, s in zip(("train", "eval", "train"), same)
    )
    expected = ", ".join(
        f"{n}={'as without dropout' if s else 'dropped'}" for n, s in zip(("train", "eval", "train"), want)
    )
    return int(same != want), f"calls on one model: {words}", expected


def check_site_resample():
    m = mask(SITE)
    if not dropped(m).any():
        return 1, f"{SITE} mask=none", RULE["resample"]
    for n in range(2):
        print(f"{SITE} mask of sample 0, unit 0 over {T} steps, call {n + 1}: {row(m, n)}")
    resample = structure(m)[0]
    return int(resample != RULE["resample"]), f"{SITE} mask resample={resample}", RULE["resample"]


def check_site_gates():
    sharing, a, b = gate_sharing(SITE)
    if not dropped(a).any() and not dropped(b).any():
        return 1, f"{SITE} mask=none", RULE["gates"]
    print(f"{SITE} mask seen by gate {MAIN}, sample 0, unit 0 over {T} steps: {row(a)}")
    print(f"{SITE} mask seen by gate {SECOND}, same seed:               {row(b)}")
    return int(sharing != RULE["gates"]), f"{SITE} mask gates={sharing}", RULE["gates"]


def check_site_batch():
    m = mask(SITE)
    if not dropped(m).any():
        return 1, f"{SITE} mask=none", RULE["batch"]
    for sample in range(3):
        print(f"{SITE} mask of sample {sample}, unit 0 over {T} steps: {row(m, 0, sample)}")
    batch = structure(m)[1]
    return int(batch != RULE["batch"]), f"{SITE} mask batch={batch}", RULE["batch"]


def check_site_scale():
    m = mask(SITE)
    want = 1 / (1 - RATES[SITE]) if RULE["scaling"] == "inverted" else 1.0
    if not dropped(m).any():
        return 1, f"{SITE} mask=none", f"kept units scaled by {want:.4g}"
    scale, clean = structure(m)[2:]
    print(f"{SITE} mask values seen: {np.unique(np.round(m[np.isfinite(m)], 4))[:8]}")
    values = "" if clean else " (values are not 0 or one keep value)"
    good = clean and abs(scale - want) <= 1e-3 * want
    return int(not good), f"{SITE} keep scale={scale:.6g}{values}", f"{want:.6g} (p={RATES[SITE]:g})"


def check_site_rate():
    m = mask(SITE)
    p = RATES[SITE]
    if not dropped(m).any():
        return 1, f"{SITE} mask=none", f"drop rate {p:g}"
    resample, batch = structure(m)[:2]
    d = dropped(m)
    d = d[:, :1] if resample != "per_step" else d  # one draw per sequence is counted once
    d = d[:1] if resample == "reused_across_calls" else d
    d = d[:, :, :1] if batch == "shared" else d
    bound = Z * np.sqrt(p * (1 - p) / d.size)
    observed = f"{SITE} drop rate={d.mean():.4f} over {d.size} draws"
    return int(abs(d.mean() - p) > bound), observed, f"{p:g} +- {bound:.4f} ({Z:g} standard errors)"


def check_site_inactive():
    m = mask(SITE)
    n = int(dropped(m).sum())
    print(f"{SITE}: {n} of {m.size} units dropped")
    clean = n == 0 and np.allclose(m[np.isfinite(m)], 1.0, atol=1e-3)
    return int(not clean), f"dropped at={SITE if n else 'none'}" + ("" if n or clean else " (values not 1)"), "none"


def check_only_scheme_sites():
    allowed = {s for s, p in RATES.items() if p > 0}
    if allowed & {"candidate", "cell"}:
        return 2, "a candidate or cell-state mask hides the other sites from this short script: run dropspec", None
    if allowed & {"output"}:
        allowed |= {"candidate", "cell"}  # the script reads whatever multiplies the output inside a step
    if allowed & {"carry_h", "weight_hh", "state_in"}:
        allowed |= {"recurrent"}  # all act on the recurrent matmul: this script does not separate them
    found = []
    for site in ["input", "recurrent", "output", "carry_h"] + {"lstm": ["carry_c"], "gru": ["state_in"]}.get(KIND, []):
        if site in allowed:
            continue
        m = mask(site)
        if site == "carry_h" and "recurrent" in allowed:
            m = m[:, -1:]  # only the returned state is free of the recurrent mask
        if site == "state_in":
            m = m[:, :1]  # only a mask on the state fed to the step reaches the initial state
        print(f"{site}: {int(dropped(m).sum())} of {m.size} units dropped")
        found += [site] if dropped(m).any() else []
    return int(bool(found)), "dropped outside the scheme's sites at=" + (",".join(found) or "none"), "none"


def check_carried_state():
    if any(RATES.get(s, 0) > 0 for s in ("candidate", "cell")):
        return 2, "an in-step mask hides the carried state from this short script: run dropspec", None
    counts = {"returned h": int(dropped(mask("carry_h")[:, -1]).sum())}  # the returned state over the last output
    if KIND == "gru":
        m = memory_mask()
        if dropped(m[:, :1]).any():  # h0 is dropped too: a mask on the state fed to each step, not a carried one
            print("the memory path z * h drops the initial state: a mask on the state fed to each step (not carried)")
        else:
            counts["h on the memory path z * h"] = int(dropped(m).sum())
    if KIND == "lstm":
        counts["c carried to the next step"] = int(dropped(mask("carry_c")).sum())
    for what, n in counts.items():
        print(f"{what}: {n} units dropped")
    is_dropped = any(counts.values())
    return int(is_dropped != WANT_DROPPED), f"carried state dropped={is_dropped}", str(WANT_DROPPED)


def check_rate_zero():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, D))
    train = run(params, x=x, calls=1)[0][0]
    plain = run(params, x=x, calls=1, training=False)[0][0]
    diff = float(np.max(np.abs(train - plain)))
    print(f"every rate 0: max |training call - inference call| = {diff:.3g} on the same model, weights and input")
    observed = "at rate 0, a training call differs from the call without dropout" if diff > 1e-5 else "dropped at=none"
    return int(diff > 1e-5), observed, "none: a training call equal to the call without dropout"


def check_rate_one():
    try:
        outs = run(random_params(), x=np.random.default_rng(1).standard_normal((T, B, D)), calls=1)
    except Exception as exc:  # a refusal naming the rate keeps the rule; any other error breaks it
        print(f"a training call with every rate set to 1.0 raised {type(exc).__name__}: {str(exc)[:300]}")
        return rate_one_error(type(exc).__name__, str(exc))
    if not all(np.all(np.isfinite(a)) for a in outs[0] if a is not None):
        return 1, "at rate 1.0 returns outputs that are not finite", "finite outputs, or a refusal"
    kept = []
    for site in sorted(s for s, p in RATES.items() if p >= 1.0):
        m = mask(site)
        seen = np.isfinite(m)
        n = int((seen & ~dropped(m)).sum())
        print(f"{site}: {n} of {int(seen.sum())} observable units kept")
        kept += [f"{site} kept {n} of {int(seen.sum())} units"] if n else []
    observed = "accepts rate 1.0 but " + "; ".join(kept) if kept else "accepts rate 1.0 and drops every unit"
    return int(bool(kept)), observed, "every unit of a site at rate 1.0 dropped"


def check_replay_explained():
    # dropspec replays the framework with the masks it recovered; short of that, the part of it a framework
    # fails in practice: the memory path. A mask there either reaches the next step's state and the returned
    # one (carry_h / carry_c, never the initial state), or acts on the state fed to each step (GRU: the
    # initial state too, never the returned one); never both.
    if KIND == "rnn":
        return 2, "a SimpleRNN has no memory path: run dropspec for the full replay", None
    m = memory_mask()
    initial = int(dropped(m[:, :1]).sum())
    print(f"memory path over the state the previous step returned, sample 0, unit 0: {np.round(m[0, :, 0, 0], 3)}")
    if not initial:
        return 0, f"initial state dropped on the memory path in 0 of {m[:, 0].size} units", None
    if KIND == "lstm":
        return 1, f"initial cell state dropped in {initial} units", "no mask site of the spec drops it"
    returned = int(dropped(mask("carry_h")[:, -1]).sum())
    observed = f"initial state dropped in {initial} units and returned state in {returned}"
    return int(bool(returned)), observed, "one of the two (a state_in or a carried mask), never both"


def compare_partners(common_only):
    """The structure of every dropped site, this case's against each partner's; the labels that differ."""
    mine, differ = describe(), []
    print(f"{LABEL}: {mine}")
    for label, rates, config in PARTNERS:
        try:
            theirs = describe(config, rates)
        except Exception as exc:  # a partner that crashes is reported, not compared
            print(f"{label}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        print(f"{label}: {theirs}")
        sites = set(mine) & set(theirs) if common_only else set(mine) | set(theirs)
        differ += [label] if any(mine.get(s) != theirs.get(s) for s in sites) else []
    print("(site: resample, gates, batch, kept scale)")
    return mine, differ


def check_flag_invariance():
    mine, differ = compare_partners(common_only=False)
    observed = f"masks={mine}; differ in=" + (",".join(differ) or "none")
    return int(bool(differ)), observed, "the same masks in every case of the flag group"


def check_site_independence():
    mine, differ = compare_partners(common_only=True)
    return int(bool(differ)), "structure changed at=" + (",".join(differ) or "none"), "none"


def check_mode_invariance():
    mine, differ = compare_partners(common_only=False)
    observed = f"masks={mine}; differ from the eager call=" + (",".join(differ) or "none")
    return int(bool(differ)), observed, "the masks of the same configuration called eagerly"


def check_reload_invariance():
    return check_mode_invariance()


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

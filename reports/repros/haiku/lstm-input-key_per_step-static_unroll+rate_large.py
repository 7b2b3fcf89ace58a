"""Haiku: hk.LSTM or hk.GRU unrolled by hk.dynamic_unroll or hk.static_unroll, with hk.dropout where users put it.

Haiku documents no recurrent dropout: its cores have no dropout argument and no guide or example puts
hk.dropout inside an unroll. Users write it one of two ways, in a core that wraps the stock one: a key per step
(``hk.next_rng_key()`` inside the core's step, which hk.scan threads through the unroll) or a key per sequence
(one mask drawn before the unroll and applied at every step).

``CONFIG`` reads as the user's code: ``core`` ("LSTM" or "GRU") and ``hidden_size``; ``unroll`` ("dynamic" or
"static"); ``dropout``: its ``site`` ("input": x_t; "state": the hidden state fed to the core), ``keys``
("per_step" or "per_sequence") and ``rate``; ``jit``, whether the apply is jitted, as users jit their step.
``mode``, where set, is how the model is called: "haiku_jit" (jax.jit of the transformed apply), "haiku_vmap"
(jax.vmap of the apply over the batch, each example a batch of one with its own key, jitted as the train step
is), "batch_one" (nothing changes here: the batch has one sequence).
"""

import functools
import json

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

# hk.static_unroll over a core wrapping hk.LSTM(8) whose step does x = hk.dropout(hk.next_rng_key(), 0.9, x), jitted
# apply, with every rate set to 0.9
CONFIG = {
    "core": "LSTM",
    "hidden_size": 8,
    "unroll": "static",
    "dropout": {"site": "input", "keys": "per_step", "rate": 0.9},
    "jit": True,
    "mode": "rate_large",
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

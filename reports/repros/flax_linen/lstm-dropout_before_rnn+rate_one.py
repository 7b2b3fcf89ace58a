"""Flax linen: nn.RNN over a stock cell (LSTMCell, OptimizedLSTMCell or GRUCell) with nn.Dropout where users put
it, after Flax's FLIP 2396 "Recurrent Dropout" and the nn.scan, nn.RNN and nn.Dropout docs.

``CONFIG`` reads as the user's code: ``cell`` (its ``type`` and ``features``); ``dropout_before_rnn``, an
nn.Dropout on the whole (B, T, F) sequence (``rate``, ``broadcast_dims``); ``cell_wrapper``, dropout inside the
scan (``input_dropout`` on x_t, ``recurrent_dropout`` on the h fed to the cell, drawn from the
``recurrent_rng_collection`` stream); ``split_rngs``, nn.RNN's, where not its default; ``apply_rngs``, the rng
streams a training apply gets; ``jit``, whether the apply is jitted, as users jit their train step. ``mode``,
where set, is how the model is called: "flax_jit" (jax.jit of the apply), "flax_vmap" (jax.vmap of the apply
over the batch, each example with its own key per rng stream, jitted as the train step is), "batch_one"
(nothing changes here: the batch has one sequence), "reload_state_dict" (the loaded variables saved with
flax.serialization.to_bytes and restored with from_bytes into the variables of a model init'ed anew).
"""

import functools
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

# nn.RNN(nn.LSTMCell(8))(nn.Dropout(1.0)(x)); apply(rngs={'dropout': k}), with every rate set to 1.0
CONFIG = {
    "cell": {"type": "LSTMCell", "features": 8},
    "dropout_before_rnn": {"rate": 1.0, "broadcast_dims": []},
    "apply_rngs": ["dropout"],
    "jit": True,
    "mode": "rate_one",
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

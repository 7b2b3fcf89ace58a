"""Equinox: eqx.nn.LSTMCell or eqx.nn.GRUCell in a jax.lax.scan, with eqx.nn.Dropout where users put it.

Equinox documents no recurrent dropout: its cells are single steps ("often used by wrapping it into a
jax.lax.scan", the GRUCell docs) and eqx.nn.Dropout takes an explicit key. Users write it one of two ways: the
key split per step (one key per scan step, scanned over with the inputs) or one key per sequence (the same key
at every step, so the same mask). As Equinox's examples do, the model handles one sample and is batched with
jax.vmap, one key per sample.

``CONFIG`` reads as the user's code: ``cell`` ("LSTMCell" or "GRUCell"), ``input_size``, ``hidden_size``;
``dropout``: its ``site`` ("input": x_t; "state": the hidden state fed to the cell), ``keys`` ("per_step" or
"per_sequence") and ``p``; ``jit``, whether the step is wrapped in eqx.filter_jit, as users jit their step.
``mode``, where set, is how the model is called: "eqx_filter_jit" (the step in eqx.filter_jit), "eqx_serialise"
(once loaded, the model saved with eqx.tree_serialise_leaves and restored with eqx.tree_deserialise_leaves into a
model built with another key), "batch_one" (nothing changes here: the batch has one sequence).
"""

import functools
import io

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

# lax.scan over (x, jax.random.split(key, T)) with x = eqx.nn.Dropout(0.9)(x, key=k) before eqx.nn.LSTMCell(8, 8),
# jax.vmap over the batch (a key per sample), eqx.filter_jit, with every rate set to 0.9
CONFIG = {
    "cell": "LSTMCell",
    "input_size": 8,
    "hidden_size": 8,
    "dropout": {"site": "input", "keys": "per_step", "p": 0.9},
    "jit": True,
    "mode": "rate_large",
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

"""jax.experimental.rnn: ``lstm_ref``, the pure-JAX reference of the cuDNN LSTM, or ``lstm`` itself (cuDNN, GPU
only), one layer.

``CONFIG`` names the ``function`` and its own arguments ``num_layers``, ``dropout`` and ``bidirectional``.
Neither op takes a key or a training flag, so the seed and the training flag cannot reach it.
"""

import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn

# jax.experimental.rnn.lstm(..., num_layers=1, dropout=0.25) on a GPU
CONFIG = {"function": "lstm", "num_layers": 1, "dropout": 0.25, "bidirectional": False}


def build(config, seed):
    return {"config": config}  # no key to seed


def load(model, w_ih, w_hh, b_ih, b_hh):
    # one layer: PyTorch's (4H, I), (4H, H), b_ih, b_hh, gates i, f, g, o, as dicts by layer
    model["weights"] = [{0: jnp.asarray(np.asarray(a, np.float32))} for a in (w_ih, w_hh, b_ih, b_hh)]
    model["sizes"] = w_ih.shape[1], w_hh.shape[1]


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64; the ops are batch-major."""
    cfg = model["config"]
    x = jnp.asarray(np.swapaxes(x, 0, 1), jnp.float32)
    lengths = jnp.full((x.shape[0],), x.shape[1], jnp.int32)
    h0, c0 = jnp.asarray(h0, jnp.float32)[None], jnp.asarray(c0, jnp.float32)[None]
    args = (*model["sizes"], cfg["num_layers"], cfg["dropout"], cfg["bidirectional"])
    if cfg["function"] == "lstm":
        # cuDNN's flat layout: W_ih, W_hh, then b_ih, b_hh (as jax.experimental.rnn.unpack_lstm_weights reads it)
        w_ih, w_hh, b_ih, b_hh = (w[0] for w in model["weights"])
        flat = jnp.concatenate([w_ih.ravel(), w_hh.ravel(), b_ih, b_hh])
        y, h_n, c_n = rnn.lstm(x, h0, c0, flat, lengths, *args)
    else:
        y, h_n, c_n = rnn.lstm_ref(x, h0, c0, *model["weights"], lengths, *args)
    y = np.swapaxes(np.asarray(y, float), 0, 1)
    return y, np.asarray(h_n[0], float), np.asarray(c_n[0], float)

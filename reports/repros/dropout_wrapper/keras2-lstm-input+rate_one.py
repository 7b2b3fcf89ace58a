"""TensorFlow's DropoutWrapper around an LSTM or GRU cell, as a user writes it in TF 2.21.

``CONFIG`` is the model: ``api``, ``"keras2"`` (the public TF2 ``tf.nn.RNNCellDropoutWrapper`` around a
``tf_keras.layers`` cell, run by ``tf_keras.layers.RNN``) or ``"v1"`` (``tf.compat.v1.nn.rnn_cell.DropoutWrapper``
around a ``tf.compat.v1.nn.rnn_cell`` cell, run by ``tf.compat.v1.nn.dynamic_rnn``); ``cell`` and ``cell_args``,
the cell's class in that API and its constructor arguments; ``wrapper_args``, the wrapper's constructor
arguments (``dtype`` by its name); ``state_filter``, where set to "c", a ``dropout_state_filter_visitor`` that
selects the LSTM's c and not h; ``input_shape``, (batch, steps, features). ``mode``, where set, is how the
model is called: "tf_function" / "jit_compile" (each call in a ``tf.function``, with ``jit_compile=True`` for the
latter, as a training step is compiled), "static_rnn" (the v1 wrapper run by ``tf.compat.v1.nn.static_rnn`` over
the unstacked steps), "unroll" (the keras2 wrapper in ``tf_keras.layers.RNN(..., unroll=True)``, which
static_rnn's deprecation note names its equivalent), "seed_argument" (the wrapper's own ``seed=``, the case's
seed), "reload_config" (the keras2 ``RNN`` rebuilt with ``RNN.from_config(rnn.get_config())``), "batch_one"
(nothing changes here: one sequence).
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the TF1 cells and DropoutWrapper live in legacy Keras
import numpy as np
import tensorflow as tf
import tf_keras

# tf.nn.RNNCellDropoutWrapper(tf_keras.layers.LSTMCell(64), input_keep_prob=0.0), with every rate set to 1.0
CONFIG = {
    "api": "keras2",
    "cell": "LSTMCell",
    "cell_args": {"units": 64},
    "wrapper_args": {"input_keep_prob": 0.0},
    "input_shape": [16, 8, 64],
    "mode": "rate_one",
}


def only_c(state):
    """A dropout_state_filter_visitor that drops the LSTM's c and keeps h: the TF1 cell's state is an
    LSTMStateTuple(c, h), a tf_keras LSTMCell's the list [h, c]; anything else is dropped as the default does."""
    if isinstance(state, tf.compat.v1.nn.rnn_cell.LSTMStateTuple):
        return tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c=True, h=False)
    if isinstance(state, (list, tuple)) and len(state) == 2:
        return type(state)([False, True])  # the state's own sequence type: nest compares the two structures
    return True


def build(config, seed):
    tf_keras.utils.set_random_seed(seed)  # python, numpy and TF's global seed; the wrapper's ops use it
    wargs = dict(config["wrapper_args"])
    if "dtype" in wargs:
        wargs["dtype"] = getattr(tf, wargs["dtype"])
    if config.get("state_filter") == "c":  # state dropout on the cell state c alone
        wargs["dropout_state_filter_visitor"] = only_c
    if config.get("mode") == "seed_argument":  # the wrapper's documented seed= argument
        wargs["seed"] = seed
    batch, steps, width = config["input_shape"]
    if config["api"] == "keras2":
        cell = getattr(tf_keras.layers, config["cell"])(**config["cell_args"])
        wrapper = tf.nn.RNNCellDropoutWrapper(cell, **wargs)
        unroll = config.get("mode") == "unroll"
        rnn = tf_keras.layers.RNN(wrapper, return_sequences=True, return_state=True, unroll=unroll)
        # the wrapper's build builds the cell (again, with new weights if it was built before): build it once
        wrapper.build(tf.TensorShape([batch, width]))
        rnn.build((batch, steps, width))
        if config.get("mode") == "reload_config":  # as a user copies a layer; load() then sets its weights
            rnn = tf_keras.layers.RNN.from_config(rnn.get_config())
            rnn.build((batch, steps, width))
            wrapper, cell = rnn.cell, rnn.cell.cell
        model = {"api": "keras2", "cell": cell, "wrapper": wrapper, "rnn": rnn}
    else:
        cell = getattr(tf.compat.v1.nn.rnn_cell, config["cell"])(**config["cell_args"])
        wrapper = tf.compat.v1.nn.rnn_cell.DropoutWrapper(cell, **wargs)
        cell.build(tf.TensorShape([batch, width]))
        model = {"api": "v1", "cell": cell, "wrapper": wrapper}
    model["mode"] = config.get("mode", "eager")
    if model["mode"] in ("tf_function", "jit_compile"):  # compiled as a training step is: once per training flag

        def step(x, h0, c0, training):  # training, a Python bool, traces one graph per flag
            return forward(model, x, h0, c0, training)

        model["forward"] = tf.function(step, jit_compile=model["mode"] == "jit_compile")
    return model


def load(model, w_ih, w_hh, b_ih, b_hh):
    """PyTorch layout and gate order -> the cell's own weights."""
    cell, H = model["cell"], w_hh.shape[1]
    gru = len(w_ih) == 3 * H
    if model["api"] == "keras2":  # kernel, recurrent_kernel and bias, as Keras 3
        if gru:  # Keras orders the GRU gates z, r, h
            order = np.r_[H : 2 * H, 0:H, 2 * H : 3 * H]
            w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]
        # reset_after (tf_keras' default) keeps both biases: b_hn is inside r * (.); LSTM gates i, f, c, o
        bias = np.stack([b_ih, b_hh]) if len(cell.bias.shape) == 2 else b_ih + b_hh
        cell.kernel.assign(np.asarray(w_ih, float).T.astype("float32"))
        cell.recurrent_kernel.assign(np.asarray(w_hh, float).T.astype("float32"))
        cell.bias.assign(np.asarray(bias, float).astype("float32"))
        return
    # TF1 cells keep one kernel over [x, h] and one bias (b_ih + b_hh), gates in their own order
    rows = {g: slice(k * H, (k + 1) * H) for k, g in enumerate("rzn" if gru else "ifgo")}  # PyTorch's order

    def stacked(gates):
        w = np.concatenate([np.concatenate([w_ih[rows[g]], w_hh[rows[g]]], axis=1) for g in gates])
        b = np.concatenate([b_ih[rows[g]] + b_hh[rows[g]] for g in gates])
        return w.T.astype("float32"), b.astype("float32")

    if gru:
        kernel, bias = stacked("rz")  # GRUCell: gates r, u (= z), then the candidate (reset before)
        cell._gate_kernel.assign(kernel)
        cell._gate_bias.assign(bias)
        kernel, bias = stacked("n")
        cell._candidate_kernel.assign(kernel)
        cell._candidate_bias.assign(bias)
    else:
        kernel, bias = stacked("igfo")  # LSTMCell: i, j (= g), f, o
        bias[2 * H : 3 * H] -= cell._forget_bias  # added to f at run time
        cell._kernel.assign(kernel)
        cell._bias.assign(bias)


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64. TF1 has no training flag: inference runs
    the unwrapped cell, as users build their eval graph."""
    x = tf.constant(np.transpose(x, (1, 0, 2)), tf.float32)
    h0, c0 = tf.constant(h0, tf.float32), None if c0 is None else tf.constant(c0, tf.float32)
    if "forward" in model:
        y, final = model["forward"](x, h0, c0, training)
    else:
        y, final = forward(model, x, h0, c0, training)
    y = np.transpose(np.asarray(y, float), (1, 0, 2))
    return y, np.asarray(final[0], float), None if c0 is None else np.asarray(final[1], float)


def forward(model, x, h0, c0, training):
    """x (B, T, I) -> (y (B, T, H), [h] or [h, c]): the wrapped cell run over the sequence."""
    if model["api"] == "keras2":
        state = [h0] + ([] if c0 is None else [c0])
        y, *final = model["rnn"](x, initial_state=state, training=training)
        return y, final
    init = h0 if c0 is None else tf.compat.v1.nn.rnn_cell.LSTMStateTuple(c0, h0)
    rnn_cell = model["wrapper"] if training else model["cell"]
    if model["mode"] == "static_rnn":  # one graph node per step, as TF1 users unrolled a known length
        ys, state = tf.compat.v1.nn.static_rnn(rnn_cell, tf.unstack(x, axis=1), initial_state=init)
        y = tf.stack(ys, axis=1)
    else:
        y, state = tf.compat.v1.nn.dynamic_rnn(rnn_cell, x, initial_state=init)
    return y, [state] if c0 is None else [state.h, state.c]

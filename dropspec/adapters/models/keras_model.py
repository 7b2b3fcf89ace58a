"""A Keras recurrent layer with dropout, as a user writes it: Keras 3 on any backend, or tf-keras (Keras 2).

``CONFIG`` is the model: ``layer``, the class in ``keras.layers`` (``"LSTM"``, ``"GRUCell"``, ...) and its
constructor ``args``; ``harness``, how it runs: ``"layer"`` (the layer itself), ``"rnn"`` (the cell inside
``keras.layers.RNN(cell, **rnn_args)``), ``"loop"`` (the cell called step by step in a Python loop, as a custom
training loop does) or ``"loop_reset"`` (the same loop, calling the cell's documented
``reset_dropout_mask()`` / ``reset_recurrent_dropout_mask()`` after every sequence, as ``keras.layers.RNN``
does); optional ``before`` / ``after`` layers (``{"layer": name, "args": {...}}``) applied to the inputs or to
the output sequence; ``input_shape``, (batch, steps, features) as the layer is built.

The imports below are Keras 3's; the Keras 3 adapters set ``KERAS_BACKEND`` before them, and tf-keras
imports ``tf_keras as keras`` in their place: the layers, cells and weights used here are the same in both.
"""

import keras
import numpy as np

KERAS_2 = keras.__version__.startswith("2.")  # tf-keras: Keras 2 as shipped for TensorFlow, without keras.ops


def make(spec):
    """``keras.layers.<layer>(**args)``; a noise shape is a tuple, as the Dropout layer expects."""
    args = dict(spec["args"])
    if "noise_shape" in args:
        args["noise_shape"] = tuple(args["noise_shape"])
    return getattr(keras.layers, spec["layer"])(**args)


def build(config, seed):
    # the seed first: layers draw their dropout seeds when constructed
    keras.utils.set_random_seed(seed)
    before = make(config["before"]) if "before" in config else None
    layer = make(config)
    if config["harness"] == "rnn":
        layer = keras.layers.RNN(layer, **config["rnn_args"])
    after = make(config["after"]) if "after" in config else None
    batch, steps, width = config["input_shape"]
    if config["harness"] in ("layer", "rnn"):
        layer.build((batch, steps, width))
        cell = layer.cell
    else:  # a cell called step by step takes one step's input
        layer.build((batch, width))
        cell = layer
    return {"before": before, "layer": layer, "cell": cell, "after": after, "harness": config["harness"]}


def load(model, w_ih, w_hh, b_ih, b_hh):
    """PyTorch layout and gate order -> kernel, recurrent_kernel, bias.

    SimpleRNN and LSTM (gates i, f, c, o = PyTorch's i, f, g, o) have one bias, b_ih + b_hh. The GRU orders its
    gates z, r, h; reset_after=True keeps both biases as a (2, 3H) bias because b_hn sits inside r * (W_hn h + b_hn);
    reset_after=False has one bias, b_ih + b_hh, exact because the reset gate multiplies h before the matmul."""
    cell, H = model["cell"], w_hh.shape[1]
    if len(w_ih) == 3 * H:  # three gates: a GRU
        order = np.r_[H : 2 * H, 0:H, 2 * H : 3 * H]
        w_ih, w_hh, b_ih, b_hh = w_ih[order], w_hh[order], b_ih[order], b_hh[order]
    bias = np.stack([b_ih, b_hh]) if len(cell.bias.shape) == 2 else b_ih + b_hh
    cell.kernel.assign(np.asarray(w_ih, float).T.astype("float32"))
    cell.recurrent_kernel.assign(np.asarray(w_hh, float).T.astype("float32"))
    cell.bias.assign(np.asarray(bias, float).astype("float32"))


def tensor(a):
    return keras.backend.constant(a) if KERAS_2 else keras.ops.convert_to_tensor(a)


def to_numpy(t):
    return np.asarray(keras.backend.get_value(t) if KERAS_2 else keras.ops.convert_to_numpy(t), float)


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64."""
    x = tensor(np.transpose(x, (1, 0, 2)).astype("float32"))
    state = [tensor(h0.astype("float32"))]
    if c0 is not None:
        state.append(tensor(c0.astype("float32")))
    if model["before"] is not None:
        x = model["before"](x, training=training)
    if model["harness"] in ("layer", "rnn"):
        y, *final = model["layer"](x, initial_state=state, training=training)
    else:
        cell, ys = model["cell"], []
        for t in range(x.shape[1]):  # the cell step by step, the returned state fed to the next step
            y_t, state = cell(x[:, t, :], state, training=training)
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            ys.append(y_t)
        if model["harness"] == "loop_reset":
            cell.reset_dropout_mask()
            cell.reset_recurrent_dropout_mask()
        y = keras.backend.stack(ys, axis=1) if KERAS_2 else keras.ops.stack(ys, axis=1)
        final = state
    if model["after"] is not None:
        y = model["after"](y, training=training)
    final = [to_numpy(s) for s in final]
    return np.transpose(to_numpy(y), (1, 0, 2)), final[0], final[1] if len(final) > 1 else None

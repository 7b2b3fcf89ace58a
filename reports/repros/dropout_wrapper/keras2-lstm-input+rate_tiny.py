"""dropspec repro: `common.mapping.inference_matches_reference` (MUST) on dropout_wrapper
    tf.nn.RNNCellDropoutWrapper(tf_keras.layers.LSTMCell(64), input_keep_prob=0.99), with every rate set to
    0.01 (a batch of 16)

Rule: With training=False, two calls on the same inputs MUST give identical outputs, equal to the reference
    cell without dropout within the case's tolerance (float32: rtol 2e-3, atol 2e-4; float64: rtol 1e-9, atol
    1e-10), except that a site the case scales at test time (its claim's or its scheme's scaling test_time) is
    multiplied by 1-p, and that a scheme whose inference rule is the expectation (zoneout) applies every
    mask's mean (zoneout: h_t = p h_{t-1} + (1 - p) h~_t); this also proves the parameter mapping.
Source: PyTorch nn.Dropout (https://pytorch.org/docs/stable/generated/torch.nn.Dropout.html): 'the outputs are
    scaled by a factor of 1/(1-p) during training. This means that during evaluation the module simply
    computes an identity function'; Keras layer call argument training: 'Python boolean indicating whether the
    layer should behave in training mode or in inference mode'
    (https://keras.io/api/layers/recurrent_layers/lstm/); the cell equations of spec/cells.yaml; test-time
    scaling: Srivastava et al. (2014), Dropout: A Simple Way to Prevent Neural Networks from Overfitting,
    section 1: 'If a unit is retained with probability p during training, the outgoing weights of that unit
    are multiplied by p at test time', and stas-semeniuta/drop-rnn layers.py: 'cand_t * mask_t if self.train
    else cand_t * (1 - self.hid_dropout_rate)'
Documented as: zaremba with rates {"input": 0.01}; input_keep_prob: "unit Tensor or float between 0 and 1,
    input keep probability" https://www.tensorflow.org/api_docs/python/tf/compat/v1/nn/rnn_cell/DropoutWrapper
Versions: tensorflow 2.21.0, tensorflow-cpu 2.21.0, tf-keras 2.21.0

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
TensorFlow's DropoutWrapper around an LSTM or GRU cell, as a user writes it in TF 2.21.
"""

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # the TF1 cells and DropoutWrapper live in legacy Keras
import numpy as np
import tensorflow as tf
import tf_keras

# tf.nn.RNNCellDropoutWrapper(tf_keras.layers.LSTMCell(64), input_keep_prob=0.99), with every rate set to 0.01 (a batch
# of 16)
CONFIG = {
    "api": "keras2",
    "cell": "LSTMCell",
    "cell_args": {"units": 64},
    "wrapper_args": {"input_keep_prob": 0.99},
    "input_shape": [16, 8, 64],
    "mode": "rate_tiny",
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


# --- the check: numpy only ---
KIND = "lstm"
T, B, D, H = 8, 16, 64, 64  # steps, batch, input width, hidden units
SEED = 7
CHECK = "inference_matches_reference"
TAG = (
    "[common.mapping.inference_matches_reference; dropout_wrapper "
    "tf.nn.RNNCellDropoutWrapper(tf_keras.layers.LSTMCell(64), input_keep_prob=0.99), with every "
    "rate set to 0.01 (a batch of 16), seed=7]"
)


def verdict_message(observed: str, tag: str, expected: str | None = None) -> str:
    """``X, but should be Y [tag]`` for a broken rule (``expected`` given), else ``X [tag]``."""
    if expected is None:
        return f"{observed} {tag}"
    return f"{observed}, but should be {expected} {tag}"


SAT, BETA, GAMMA, W = 40.0, 0.5, 0.5, 0.5  # saturating bias (sigmoid = 0 or 1 exactly), a bias, h0, a weight
GATES = {"rnn": "h", "lstm": "ifgo", "gru": "rzn"}[KIND]


def random_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(len(GATES) * H, D), (len(GATES) * H, H), (len(GATES) * H,), (len(GATES) * H,)]
    params = [rng.uniform(-1, 1, s) / np.sqrt(H) for s in shapes]
    if KIND == "gru":  # some GRU cells (Flax NNX's) have no b_hn; no check here needs it
        params[3][2 * H :] = 0.0
    return params


def run(params, x=1.0, calls=2, seed=SEED, training=True, config=CONFIG):
    """Build the model of `config` with `seed`, load `params`, call it `calls` times on one batch: [(y, h, c)]."""
    model = build(config, seed)
    load(model, *params)
    x = np.broadcast_to(np.asarray(x, float), (T, B, D)).copy()
    h0 = np.full((B, H), GAMMA)
    c0 = np.full((B, H), GAMMA) if KIND == "lstm" else None
    outs = [call(model, x, h0, c0, training) for _ in range(calls)]
    return [tuple(None if a is None else np.asarray(a, float) for a in out) for out in outs]


def main():
    with np.errstate(all="ignore"):  # the probes divide by dropped (zero) units and take logs of 0 on purpose
        status, observed, expected = globals()[f"check_{CHECK}"]()
    print(verdict_message(observed, TAG, expected if status == 1 else None))
    return status


def check_inference_matches_reference():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, D))
    a = run(params, x=x, calls=2, training=False)
    b = run(params, x=x, calls=1, seed=SEED + 1, training=False)
    d_call = float(np.max(np.abs(a[0][0] - a[1][0])))
    d_seed = float(np.max(np.abs(a[0][0] - b[0][0])))
    observed = f"inference: two calls differ by {d_call:.3g}, seeds {SEED} and {SEED + 1} by {d_seed:.3g}"
    return int(max(d_call, d_seed) > 1e-5), observed, "0 and 0 (no dropout at inference)"


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

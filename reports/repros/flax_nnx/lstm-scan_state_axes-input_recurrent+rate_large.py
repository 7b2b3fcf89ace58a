"""dropspec repro: `common.calls.resample` (MUST) on flax_nnx
    nnx.scan(in_axes=(nnx.StateAxes({'recurrent_dropout': None, ...: nnx.Carry}), nnx.Carry,
    1))(DropoutCell(nnx.LSTMCell(8, 8, rngs=rngs), nnx.Dropout(0.9, rngs=rngs), nnx.Dropout(0.9, rngs=rngs,
    rng_collection='recurrent_dropout'))) under nnx.jit, with every rate set to 0.9

Rule: At every dropped site, a second call MUST draw masks different from the first call's (where the site has
    too few units to tell a reused mask from a chance repeat, the clause does not apply).
Source: Gal and Ghahramani (2016), the authors' code draws new masks for every segment (yaringal/BayesianRNN
    LM_code/main_new_dropout_SOTA_v3.lua: sample_noise() in fp()); Keras Dropout 'randomly sets input units to
    0 with a frequency of rate at each step during training time'
    (https://keras.io/api/layers/regularization_layers/dropout/)
Documented as: flip_recurrent with rates {"input": 0.9, "recurrent": 0.9}; Flax FLIP 2396 (RNN), 'Recurrent
    Dropout': "Input dropout: regular dropout applied to the inputs, different for every step." ... "Flax's
    nn.scan can easily express both types of dropout via split_rns, input dropout would split rngs while
    recurrent dropout would not." https://github.com/google/flax/blob/main/docs/flip/2396-rnn.md | Flax FLIP
    2396 (RNN), 'Recurrent Dropout': "Recurrent dropout: applies dropout to a recurrent input/output, same for
    every step." ... "self.recurrent_dropout = nn.Dropout(..., rng_collection='recurrent_dropout')" ...
    "nn.scan(scan_fn, ..., split_rngs={'dropout': True, 'recurrent_dropout': False})"
    https://github.com/google/flax/blob/main/docs/flip/2396-rnn.md | Flax NNX randomness guide, "Recurrent
    dropout": "The key ingredient of recurrent dropout is to apply the same dropout mask across all time
    steps. Therefore, to achieve this you will pass nnx.StateAxes to nnx.scan's in_axes, specifying that the
    cell's recurrent_dropout PRNG stream will be broadcast, and the rest of the RNNCell's state will be
    carried over." ... "state_axes = nnx.StateAxes({'recurrent_dropout': None, ...: nnx.Carry})"
    "@nnx.scan(in_axes=(state_axes, nnx.Carry, 1), out_axes=(nnx.Carry, 1))"
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

# nnx.scan(in_axes=(nnx.StateAxes({'recurrent_dropout': None, ...: nnx.Carry}), nnx.Carry,
# 1))(DropoutCell(nnx.LSTMCell(8, 8, rngs=rngs), nnx.Dropout(0.9, rngs=rngs), nnx.Dropout(0.9, rngs=rngs,
# rng_collection='recurrent_dropout'))) under nnx.jit, with every rate set to 0.9
CONFIG = {
    "cell": {"type": "LSTMCell", "in_features": 8, "hidden_features": 8},
    "cell_wrapper": {"input_dropout": 0.9, "recurrent_dropout": 0.9},
    "scan": "state_axes",
    "jit": True,
    "mode": "rate_large",
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
KIND = "lstm"
T, B, D, H = 16, 32, 8, 8  # steps, batch, input width, hidden units
SEED = 7
CHECK = "new_call_new_masks"
TAG = (
    "[common.calls.resample; flax_nnx nnx.scan(in_axes=(nnx.StateAxes({'recurrent_dropout': None, "
    "...: nnx.Carry}), nnx.Carry, 1))(DropoutCell(nnx.LSTMCell(8, 8, rngs=rngs), nnx.Dropout(0.9, "
    "rngs=rngs), nnx.Dropout(0.9, rngs=rngs, rng_collection='recurrent_dropout'))) under nnx.jit, "
    "with every rate set to 0.9, seed=7]"
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


def check_new_call_new_masks():
    x = np.random.default_rng(1).standard_normal((T, B, D))
    (y1, _, _), (y2, _, _) = run(random_params(), x=x, calls=2)
    diff = float(np.max(np.abs(y1 - y2)))
    print(f"two training calls on the same model with the same batch: max |y1 - y2| = {diff:.3g}")
    return int(diff <= 1e-6), f"masks reused by the next call={diff <= 1e-6}", "False"


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

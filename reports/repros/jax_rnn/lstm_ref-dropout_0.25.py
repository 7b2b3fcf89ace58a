"""dropspec repro: `common.runs.documented_configuration` (MUST) on jax_rnn jax.experimental.rnn.lstm_ref(...,
    num_layers=1, dropout=0.25)

Rule: Every configuration the case's claim documents MUST run in training and in inference mode without
    raising.
Source: the framework's own documentation of the configuration, quoted in each case's claim (Claim.doc): a
    documented argument value is a promise that it can be used
Documented as: none with rates {}; jax.experimental.rnn: "We use notations and variable names similar to
    https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html" (torch: dropout "introduces a Dropout layer
    on the outputs of each LSTM layer except the last layer", so none in a one-layer LSTM); lstm_ref:
    "Reference implementation of LSTM." https://docs.jax.dev/en/latest/jax.experimental.rnn.html
Versions: jax 0.10.2, jaxlib 0.10.2, flax 0.12.8

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
jax.experimental.rnn: ``lstm_ref``, the pure-JAX reference of the cuDNN LSTM, or ``lstm`` itself (cuDNN, GPU
only), one layer.
"""

import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn

# jax.experimental.rnn.lstm_ref(..., num_layers=1, dropout=0.25)
CONFIG = {"function": "lstm_ref", "num_layers": 1, "dropout": 0.25, "bidirectional": False}


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


# --- the check: numpy only ---
KIND = "lstm"
T, B, D, H = 16, 32, 8, 8  # steps, batch, input width, hidden units
SEED = 7
CHECK = "runs"
TAG = (
    "[common.runs.documented_configuration; jax_rnn jax.experimental.rnn.lstm_ref(..., "
    "num_layers=1, dropout=0.25), seed=7]"
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


def check_runs():
    params = random_params()
    run(params, x=np.random.default_rng(1).standard_normal((T, B, D)), calls=2)
    run(params, calls=1, training=False)
    return 0, "3 runs completed (2 training calls, 1 inference call)", None


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

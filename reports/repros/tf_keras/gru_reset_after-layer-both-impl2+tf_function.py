"""dropspec repro: `common.seed.reproducible` (SHOULD) on tf_keras keras.layers.GRU(8, dropout=0.25,
    recurrent_dropout=0.25, reset_after=True, return_sequences=True, return_state=True, implementation=2),
    called in a tf.function

Rule: Two training runs with the same seed, parameters and inputs SHOULD give the same outputs, bit for bit.
Source: PyTorch, Reproducibility (https://pytorch.org/docs/stable/notes/randomness.html): 'Completely
    reproducible results are not guaranteed across PyTorch releases, individual commits, or different
    platforms'; and for cuDNN RNNs (https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html): 'There are
    known non-determinism issues for RNN functions on some versions of cuDNN and CUDA': hence SHOULD, for one
    platform and release
Documented as: variational with rates {"input": 0.25, "recurrent": 0.25}; Keras documents `dropout` as "Float
    between 0 and 1. Fraction of the units to drop for the linear transformation of the inputs." and
    `recurrent_dropout` as "Float between 0 and 1. Fraction of the units to drop for the linear transformation
    of the recurrent state." One fraction for the one linear transformation of the inputs (and one for the
    recurrent state), nothing about gates or steps: read as tied variational dropout (Gal and Ghahramani 2016;
    their code's README credits Keras with this scheme). https://keras.io/api/layers/recurrent_layers/gru/
Versions: tf-keras 2.21.0, tensorflow 2.21.0, tensorflow-cpu 2.21.0

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
A Keras recurrent layer with dropout, as a user writes it: Keras 3 on any backend, or tf-keras (Keras 2).
"""

import os
import tempfile

import numpy as np

KERAS = "tf_keras"  # "tensorflow", "jax" or "torch": Keras 3 on that backend; "tf_keras": tf-keras (Keras 2)

if KERAS == "tf_keras":
    import tf_keras as keras
else:
    os.environ["KERAS_BACKEND"] = KERAS  # read once, when Keras is first imported
    import keras

# keras.layers.GRU(8, dropout=0.25, recurrent_dropout=0.25, reset_after=True, return_sequences=True, return_state=True,
# implementation=2), called in a tf.function
CONFIG = {
    "layer": "GRU",
    "args": {
        "units": 8,
        "dropout": 0.25,
        "recurrent_dropout": 0.25,
        "reset_after": True,
        "return_sequences": True,
        "return_state": True,
        "implementation": 2,
    },
    "harness": "layer",
    "input_shape": [16, 8, 8],
    "mode": "tf_function",
}


KERAS_2 = keras.__version__.startswith("2.")  # tf-keras: Keras 2 as shipped for TensorFlow, without keras.ops


def make(spec, **extra):
    """``keras.layers.<layer>(**args, **extra)``; a noise shape is a tuple, as the Dropout layer expects."""
    args = dict(spec["args"]) | extra
    if "noise_shape" in args:
        args["noise_shape"] = tuple(args["noise_shape"])
    return getattr(keras.layers, spec["layer"])(**args)


def drops(spec):
    return any(spec["args"].get(k, 0) > 0 for k in ("rate", "dropout", "recurrent_dropout"))


def build(config, seed):
    # the seed first: layers draw their dropout seeds when constructed
    keras.utils.set_random_seed(seed)
    mode, harness = config.get("mode", "eager"), config["harness"]

    def seeded(spec):  # an explicit seed= for every layer that drops (mode seed_argument)
        return {"seed": seed} if mode == "seed_argument" and drops(spec) else {}

    # unroll= and stateful= belong to the recurrent layer: the layer itself, or keras.layers.RNN around the cell
    flags = {"unroll": True} if mode == "unroll" else {"stateful": True} if mode == "stateful" else {}
    before = make(config["before"], **seeded(config["before"])) if "before" in config else None
    layer = make(config, **seeded(config), **(flags if harness == "layer" else {}))
    if harness == "rnn":
        layer = keras.layers.RNN(layer, **config["rnn_args"], **flags)
    after = make(config["after"], **seeded(config["after"])) if "after" in config else None
    model = {"before": before, "layer": layer, "after": after, "harness": harness, "mode": mode}
    _build_layers(model, config["input_shape"])
    if mode == "reload_config":  # as a user copies a layer: from_config(get_config()), then its weights
        built = {part: model[part] for part in ("before", "layer", "after") if model[part] is not None}
        model |= {part: type(old).from_config(old.get_config()) for part, old in built.items()}
        _build_layers(model, config["input_shape"])
        for part, old in built.items():
            model[part].set_weights(old.get_weights())
    elif mode == "reload_saved":
        model = saved_and_loaded(model, config["input_shape"])
    model["cell"] = model["layer"].cell if harness in ("layer", "rnn") else model["layer"]
    if mode in ("tf_function", "jit_compile"):
        import tensorflow as tf

        def train_step(x, state, mask, training):  # a user's step, compiled as model.fit compiles it
            return forward(model, x, state, mask, training)

        model["forward"] = tf.function(train_step, jit_compile=mode == "jit_compile")
    elif mode == "jax_jit":
        model["forward"] = jax_forward(model, config)
    return model


def _build_layers(model, input_shape):
    batch, steps, width = input_shape
    if model["harness"] in ("layer", "rnn"):
        model["layer"].build((batch, steps, width))
    else:  # a cell called step by step takes one step's input
        model["layer"].build((batch, width))


def saved_and_loaded(model, input_shape):
    """The layers in a functional keras.Model, saved with model.save and loaded with keras.models.load_model;
    the loaded model's layers, found by name, take the place of the built ones."""
    batch, steps, width = input_shape
    layer = model["layer"]
    sizes = layer.cell.state_size
    sizes = list(sizes) if isinstance(sizes, (list, tuple)) else [sizes]
    x = keras.Input(batch_shape=(batch, steps, width))
    states = [keras.Input(batch_shape=(batch, size)) for size in sizes]
    y = model["before"](x) if model["before"] is not None else x
    y, *final = layer(y, initial_state=states)
    y = model["after"](y) if model["after"] is not None else y
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        keras.Model([x, *states], [y, *final]).save(path)
        loaded = keras.models.load_model(path)
    parts = {p: loaded.get_layer(model[p].name) if model[p] is not None else None for p in ("before", "layer", "after")}
    return {**model, **parts}


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


def forward(model, x, state, mask, training, apply=None):
    """The training forward: before -> recurrent layer (or the cell step by step) -> after, (y, final states).
    ``apply(layer, *args, **kwargs)`` calls one layer (``jax_forward`` passes a stateless call)."""
    apply = apply or (lambda layer, *args, **kwargs: layer(*args, **kwargs))
    if model["before"] is not None:
        x = apply(model["before"], x, training=training)
    if model["harness"] in ("layer", "rnn"):
        kwargs = {"training": training} | ({"mask": mask} if mask is not None else {})
        if state is not None:
            kwargs["initial_state"] = state
        y, *final = apply(model["layer"], x, **kwargs)
    else:
        cell, ys = model["cell"], []
        for t in range(x.shape[1]):  # the cell step by step, the returned state fed to the next step
            y_t, state = apply(cell, x[:, t, :], state, training=training)
            state = list(state) if isinstance(state, (list, tuple)) else [state]
            ys.append(y_t)
        if model["harness"] == "loop_reset":
            cell.reset_dropout_mask()
            cell.reset_recurrent_dropout_mask()
        y = keras.backend.stack(ys, axis=1) if KERAS_2 else keras.ops.stack(ys, axis=1)
        final = state
    if model["after"] is not None:
        y = apply(model["after"], y, training=training)
    return y, list(final)


# one jax.jit per configuration (its CONFIG as JSON), kept across builds: a fresh jit of each build's layers traced
# and compiled the same program again on every build. The jitted function reads every variable from its inputs,
# so the layers it was first traced with serve only as its structure, as a training step is jitted once and
# called with new state each step.
JITTED = {}


def jax_forward(model, config):
    """``forward`` under ``jax.jit``, every layer called with ``stateless_call``: the trainable and non-trainable
    values (the latter hold the dropout seed generators' state) go in, the new non-trainable values come out and
    are assigned back, as a JAX training loop does."""
    import json

    import jax

    key = json.dumps(config, sort_keys=True)
    if key not in JITTED:
        JITTED[key] = jax.jit(stateless_forward(model), static_argnames="training")
    jitted = JITTED[key]
    parts = [p for p in (model["before"], model["layer"], model["after"]) if p is not None]

    def run(x, state, mask, training):
        # this build's own values, not those of the layers the function was traced with
        values = [
            ([v.value for v in p.trainable_variables], [v.value for v in p.non_trainable_variables]) for p in parts
        ]
        y, final, new = jitted(values, x, state, mask, training=training)
        for part, non_trainable in zip(parts, new):
            for variable, value in zip(part.non_trainable_variables, non_trainable):
                variable.assign(value)
        return y, final

    return run


def stateless_forward(model):
    """``forward`` as a pure function of the layers' values: ``(values, x, state, mask, training) -> (y, final,
    new non-trainable values)``, ``values`` one ``(trainable, non_trainable)`` pair per layer, in the order
    before, layer, after."""
    parts = [p for p in (model["before"], model["layer"], model["after"]) if p is not None]

    def pure(values, x, state, mask, training):
        new = list(values)

        def apply(layer, *args, **kwargs):
            i = next(n for n, p in enumerate(parts) if p is layer)
            trainable, non_trainable = values[i]
            out, new_non_trainable = layer.stateless_call(trainable, non_trainable, *args, **kwargs)
            new[i] = (trainable, new_non_trainable)
            return out

        y, final = forward(model, x, state, mask, training, apply)
        return y, final, [nt for _, nt in new]

    return pure


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major -> (y (T, B, H), h, c) as float64."""
    x = tensor(np.transpose(x, (1, 0, 2)).astype("float32"))
    state = [tensor(h0.astype("float32"))]
    if c0 is not None:
        state.append(tensor(c0.astype("float32")))
    mode = model["mode"]
    mask = tensor(np.ones(x.shape[:2], bool)) if mode == "masked" else None
    if mode == "stateful":  # the layer carries its state in variables: set them to this call's initial state
        for variable, value in zip(model["layer"].states, state):
            variable.assign(value)
        state = None
    run = model.get("forward") or (lambda *args: forward(model, *args))
    y, final = run(x, state, mask, training)
    final = [to_numpy(s) for s in final]
    return np.transpose(to_numpy(y), (1, 0, 2)), final[0], final[1] if len(final) > 1 else None


# --- the check: numpy only ---
KIND = "gru"
T, B, D, H = 8, 16, 8, 8  # steps, batch, input width, hidden units
SEED = 7
CHECK = "seed_reproducible"
TAG = (
    "[common.seed.reproducible; tf_keras keras.layers.GRU(8, dropout=0.25, recurrent_dropout=0.25, "
    "reset_after=True, return_sequences=True, return_state=True, implementation=2), called in a "
    "tf.function, seed=7]"
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


def check_seed_reproducible():
    params, x = random_params(), np.random.default_rng(1).standard_normal((T, B, D))
    a, b = run(params, x=x, calls=1)[0][0], run(params, x=x, calls=1)[0][0]
    diff = float(np.max(np.abs(a - b)))
    print(f"two models built with seed {SEED}, same weights and input: max |y1 - y2| = {diff:.3g}")
    return int(diff > 1e-6), f"same seed reproduces={diff <= 1e-6}", "True"


if __name__ == "__main__":  # a script runs its check; this module on its own only has placeholders
    raise SystemExit(main())

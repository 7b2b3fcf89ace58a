"""dropspec repro: `common.runs.documented_configuration` (MUST) on paddle paddle.nn.GRU(8, 8, num_layers=1,
    dropout=0.25).to(dtype='float64')

Rule: Every configuration the case's claim documents MUST run in training and in inference mode without
    raising.
Source: the framework's own documentation of the configuration, quoted in each case's claim (Claim.doc): a
    documented argument value is a promise that it can be used
Documented as: none with rates {}; 'dropout (float, optional): The dropout probability. Dropout is applied to
    the input of each layer except for the first layer. The range of dropout from 0 to 1. Defaults to 0.'
    (https://www.paddlepaddle.org.cn/documentation/docs/en/api/paddle/nn/GRU_en.html): a single layer has only
    the first layer, so nothing is dropped
Versions: paddlepaddle 3.3.1, numpy 2.4.6

Uses only the framework and numpy. Exit status 1: the rule is broken (the deviation is present);
0: the rule holds; 2: this short script cannot tell. It prints what it saw.

The model:
PaddlePaddle's recurrent layers as users build them and the dropout they add around cells: paddle and numpy.
"""

import os
import tempfile

import numpy as np
import paddle

# paddle.nn.GRU(8, 8, num_layers=1, dropout=0.25).to(dtype='float64')
CONFIG = {
    "layer": "paddle.nn.GRU",
    "args": {
        "input_size": 8,
        "hidden_size": 8,
        "num_layers": 1,
        "direction": "forward",
        "time_major": False,
        "dropout": 0.25,
    },
    "to": {"dtype": "float64"},
}


def find(path):
    """The class at a dotted path, e.g. "paddle.nn.LSTM"."""
    return getattr(paddle.nn, path.rpartition(".")[2])


# -- dropout as Paddle users write it around the cells -------------------------------------------------------------


def zaremba_cell_loop(cell, drop, x, state):
    """Zaremba et al. (2014): paddle.nn.Dropout on the cell's input, a fresh mask at every step."""
    ys = []
    for t in range(x.shape[0]):  # x is time-major (T, B, I)
        y, state = cell(drop(x[t]), state)
        ys.append(y)
    return ys, state


def locked_cell_loop(cell, drop, x, state):
    """One input mask per sequence: paddle.nn.Dropout(p, axis=[1, 2]) on the time-major (T, B, I) sequence draws
    a mask over the batch and feature axes only, shared by every step (Gal and Ghahramani 2016, input site)."""
    x = drop(x)
    ys = []
    for t in range(x.shape[0]):
        y, state = cell(x[t], state)
        ys.append(y)
    return ys, state


LOOPS = {"zaremba_cell": zaremba_cell_loop, "locked_cell": locked_cell_loop}
DROPOUT_AXIS = {"zaremba_cell": None, "locked_cell": [1, 2]}


class UserModel(paddle.nn.Layer):
    """A user's model whose forward is the loop, as paddle.jit.to_static compiles it (train() and eval() on it
    reach the cell and the dropout, and pick the program of that flag)."""

    def __init__(self, cell, drop, loop):
        super().__init__()
        self.cell, self.drop, self.loop = cell, drop, loop

    def forward(self, x, state):
        return self.loop(self.cell, self.drop, x, state)


# -- the model ---------------------------------------------------------------------------------------------------


class Model:
    """What a user holds: ``net`` is the layer or the cell, ``drop`` the dropout layer of a user loop."""

    def __init__(self, config):
        self.config = config
        self.net = self.drop = self.user = None
        self.dtype = "float32"


def build(config, seed):
    paddle.seed(seed)  # before building: the initial weights, then every mask, come from this seed
    model = Model(config)
    default = paddle.get_default_dtype()
    # a script sets the default once at its top; restored here, so later models in this process keep float32
    paddle.set_default_dtype(config.get("paddle.set_default_dtype", default))
    try:
        model.net = find(config.get("layer") or config["cell"])(**config["args"])
    finally:
        paddle.set_default_dtype(default)
    if "to" in config:
        model.net.to(**config["to"])
    model.dtype = str(model.net.parameters()[0].dtype).removeprefix("paddle.")
    if "loop" in config:
        model.drop = paddle.nn.Dropout(config["p_input"], axis=DROPOUT_AXIS[config["loop"]])
    if config.get("mode") == "paddle_to_static":  # compiled before training, as a user compiles a model
        if "loop" not in config:
            model.net = paddle.jit.to_static(model.net, full_graph=True)
        else:  # the user's loop is their model's forward: compiled with the layers it calls
            model.user = paddle.jit.to_static(UserModel(model.net, model.drop, LOOPS[config["loop"]]), full_graph=True)
    return model


def load(model, w_ih, w_hh, b_ih, b_hh):
    """Paddle's layout is the canonical one: a copy. A stack's arguments are lists, one array per part in the
    layer's own order: l0, l0_reverse, l1, ..."""
    stack = isinstance(w_ih, list)
    parts = list(zip(w_ih, w_hh, b_ih, b_hh)) if stack else [(w_ih, w_hh, b_ih, b_hh)]
    directions = getattr(model.net, "num_directions", 1)
    for part, weights in enumerate(parts):
        layer, reverse = divmod(part, directions)
        # a layer's weights are named per layer (weight_ih_l0, weight_ih_l0_reverse, ...); a cell's are not
        suffix = f"_l{layer}{'_reverse' if reverse else ''}" if "layer" in model.config else ""
        for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights, strict=True):
            parameter = getattr(model.net, name + suffix)
            parameter.set_value(np.asarray(value, dtype=parameter.numpy().dtype))
    if model.config.get("mode") == "reload_state_dict":  # as a user restores a checkpoint into a new layer
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.pdparams")
            paddle.save(model.net.state_dict(), path)
            model.net = find(model.config.get("layer") or model.config["cell"])(**model.config["args"])
            model.net.set_state_dict(paddle.load(path))


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major; h0, c0 (B, H), or (parts, B, H) for a stack; c0 None but for the LSTM."""
    for layer in (model.net, model.drop, model.user):  # as model.train() / model.eval() reaches them
        if layer is None:
            continue
        if training:
            layer.train()
        else:
            layer.eval()

    def tensor(a):
        return None if a is None else paddle.to_tensor(np.asarray(a), dtype=model.dtype)

    x, h0, c0 = tensor(x), tensor(h0), tensor(c0)
    # a user trains with autograd on and evaluates under no_grad
    with paddle.no_grad() if not training else paddle.set_grad_enabled(True):
        y, h, c = (run_loop if "loop" in model.config else run_layer)(model, x, h0, c0)
    return tuple(None if t is None else t.numpy().astype(np.float64) for t in (y, h, c))


def run_loop(model, x, h0, c0):
    state = h0 if c0 is None else (h0, c0)
    if model.user is not None:
        ys, state = model.user(x, state)
    else:
        ys, state = LOOPS[model.config["loop"]](model.net, model.drop, x, state)
    h, c = (state, None) if c0 is None else state
    return paddle.stack(ys), h, c


def run_layer(model, x, h0, c0):
    time_major = model.config["args"].get("time_major", False)
    if not time_major:
        x = x.transpose([1, 0, 2])  # the user's sequence is batch-major (B, T, I), Paddle's default
    stacked = h0.ndim == 3  # a stack's states are (num_layers * num_directions, B, H), as Paddle takes them
    h0, c0 = (h0, c0) if stacked else (h0[None], None if c0 is None else c0[None])
    lengths = None
    if model.config.get("mode") == "masked":  # every sequence as long as the input: all steps valid
        steps, batch = x.shape[:2] if time_major else x.shape[1::-1]
        lengths = paddle.full([batch], steps, dtype="int64")
    y, state = model.net(x, h0 if c0 is None else (h0, c0), sequence_length=lengths)
    if not time_major:
        y = y.transpose([1, 0, 2])
    h, c = (state, None) if c0 is None else state
    return (y, h, c) if stacked else (y, h[0], None if c is None else c[0])


# --- the check: numpy only ---
KIND = "gru"
T, B, D, H = 8, 16, 8, 8  # steps, batch, input width, hidden units
SEED = 7
CHECK = "runs"
TAG = (
    "[common.runs.documented_configuration; paddle paddle.nn.GRU(8, 8, num_layers=1, "
    "dropout=0.25).to(dtype='float64'), seed=7]"
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

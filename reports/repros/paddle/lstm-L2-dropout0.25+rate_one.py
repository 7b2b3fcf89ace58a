"""PaddlePaddle's recurrent layers as users build them and the dropout they add around cells: paddle and numpy.

``CONFIG`` holds the configuration as a user writes it:
- ``layer`` ("paddle.nn.SimpleRNN", "paddle.nn.LSTM" or "paddle.nn.GRU") and ``args``, its constructor arguments
  verbatim (``num_layers``, ``direction``, ``time_major``, ``dropout``): on the CPU these run Paddle's fused ``rnn``
  kernel (``_C_ops.rnn``), which applies ``dropout`` inside;
- or ``cell`` ("paddle.nn.SimpleRNNCell", "paddle.nn.LSTMCell" or "paddle.nn.GRUCell") with ``args``, called step
  by step in a user's loop (``loop``, below) with ``p_input``;
- the precision, float32 unless set: ``paddle.set_default_dtype`` ("float64": the layer is built in it), or
  ``to`` (``{"dtype": "float64"}``: the built layer is cast with ``layer.to(dtype=...)``);
- ``mode``, how the model is called, where set: "paddle_to_static" (``paddle.jit.to_static(full_graph=True)`` of
  the layer, or of the user's loop, before training: the static graph; under the default ``full_graph=False`` the
  SOT translator leaves a Paddle layer's own forward to run eagerly), "reload_state_dict" (once loaded, the state_dict
  saved with ``paddle.save`` and restored with ``paddle.load`` and ``set_state_dict`` into a layer built anew),
  "masked" (``sequence_length=`` of every step: all valid), "batch_one" (nothing changes here: one sequence).
Paddle's parameter names, shapes and gate order are PyTorch's (weight_ih_l0, weight_hh_l0_reverse, ...; LSTM
i, f, g, o; GRU r, z, c with the reset gate on (W_hc h + b_hc)), so loading is a copy.
"""

import os
import tempfile

import numpy as np
import paddle

# paddle.nn.LSTM(8, 8, num_layers=2, dropout=1.0), with every rate set to 1.0
CONFIG = {
    "layer": "paddle.nn.LSTM",
    "args": {
        "input_size": 8,
        "hidden_size": 8,
        "num_layers": 2,
        "direction": "forward",
        "time_major": False,
        "dropout": 1.0,
    },
    "mode": "rate_one",
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

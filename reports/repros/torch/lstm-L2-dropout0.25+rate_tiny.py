"""PyTorch's recurrent layers as users build them, and the dropout they put around them: torch and numpy only.

``CONFIG`` holds the configuration as a user writes it:
- ``module`` (e.g. "torch.nn.LSTM" or "torch.nn.LSTMCell") and ``args``, its constructor arguments verbatim
  (``num_layers``, ``dropout``, ``bidirectional``, ``batch_first``); ``dtype``; ``device`` ("cpu" unless given);
- ``torch.backends.mkldnn.enabled`` / ``torch.backends.cudnn.enabled``: the kernel switches, on by default;
- ``input``: "tensor", or "PackedSequence" (every sequence full length);
- ``user_dropout`` and ``p``: a dropout layer on the input sequence before a module: "nn.Dropout",
  "LockedDropout" (AWD-LSTM's, below), or a third-party layer named by its dotted path;
- ``loop`` with ``p_input`` and ``p_recurrent``: a cell called step by step by a user loop, "zaremba_cell"
  or "variational_cell" (below); or "zoneout_cell" with ``p_zoneout``: ESPnet's ZoneOutCell around the cell;
- ``weight_drop`` and ``p``: a wrapper that drops ``weight_hh_l0`` (DropConnect, Merity et al. 2017),
  PyTorch-NLP's WeightDrop / WeightDropLSTM / WeightDropGRU or fastai's WeightDropout;
- ``mode``, how the module is called: "torch_script" (torch.jit.script of the module), "reload_state_dict" (a
  new module built from the same arguments, loaded from the first one's state_dict), or a plain call.
A third-party package is imported only when the configuration names one of its classes.
"""

import contextlib
import importlib
import warnings

import numpy as np
import torch

# nn.LSTM(16, 16, num_layers=2, dropout=0.01), with every rate set to 0.01 (a batch of 64)
CONFIG = {
    "module": "torch.nn.LSTM",
    "args": {
        "input_size": 16,
        "hidden_size": 16,
        "num_layers": 2,
        "dropout": 0.01,
        "batch_first": False,
        "bidirectional": False,
    },
    "torch.backends.mkldnn.enabled": True,
    "input": "tensor",
    "dtype": "float32",
    "mode": "rate_tiny",
}


QUIET = (
    "dropout option adds dropout after all but last",  # the documented warning for num_layers=1 with dropout
    "TF32 acceleration on top of oneDNN",  # oneDNN's note about Intel GPUs, printed on every build
)
# the weight-drop wrappers swap weight_hh_l0 for a plain tensor, so torch warns the weights are not contiguous
WEIGHT_DROP_QUIET = "RNN module weights are not part of single contiguous"


def find(path):
    """The class at a dotted path, e.g. "torch.nn.LSTM" or "fastai.text.models.awdlstm.RNNDropout"."""
    package, _, name = path.rpartition(".")
    return getattr(importlib.import_module(package), name)


def settings(config):
    """The configuration's kernel switches, and the known warnings silenced, around building and calling."""
    stack = contextlib.ExitStack()
    stack.enter_context(warnings.catch_warnings())
    for message in QUIET + ((WEIGHT_DROP_QUIET,) if "weight_drop" in config else ()):
        warnings.filterwarnings("ignore", message=message)
    stack.enter_context(torch.backends.mkldnn.flags(enabled=config.get("torch.backends.mkldnn.enabled", True)))
    stack.enter_context(torch.backends.cudnn.flags(enabled=config.get("torch.backends.cudnn.enabled", True)))
    return stack


# -- dropout as PyTorch users write it around the cells and modules ---------------------------------------------


def locked_dropout(x, p, training):
    """AWD-LSTM's LockedDropout (salesforce/awd-lstm-lm locked_dropout.py), in today's tensor API:
    one mask of shape (1, B, F) on a time-major (T, B, F) tensor, drawn anew at each call."""
    if not training or not p:
        return x
    mask = x.new_empty(1, x.size(1), x.size(2)).bernoulli_(1 - p) / (1 - p)
    return mask.expand_as(x) * x


def zaremba_cell_loop(cell, drop, x, state):
    """Zaremba et al. (2014): nn.Dropout on the cell's input, a fresh mask at every step."""
    ys = []
    for x_t in x:  # x is time-major (T, B, I)
        state = cell(drop(x_t), state)
        ys.append(state[0] if isinstance(state, tuple) else state)
    return ys, state


def variational_cell_loop(cell, x, state, p_input, p_recurrent, training):
    """Gal and Ghahramani (2016), tied: one input mask per sequence (LockedDropout) and one mask on the
    h_{t-1} fed to the cell, drawn once per sequence; the carried and returned state stay undropped."""
    x = locked_dropout(x, p_input, training)
    h = state[0] if isinstance(state, tuple) else state
    mask_h = None
    if training and p_recurrent:
        mask_h = h.new_empty(h.shape).bernoulli_(1 - p_recurrent) / (1 - p_recurrent)
    ys = []
    for x_t in x:
        if isinstance(state, tuple):  # LSTMCell: (h, c)
            h, c = state
            state = cell(x_t, (h if mask_h is None else h * mask_h, c))
            ys.append(state[0])
        else:
            state = cell(x_t, state if mask_h is None else state * mask_h)
            ys.append(state)
    return ys, state


def zoneout_cell_loop(cell, x, state, p, training):
    """ESPnet's Tacotron 2 ZoneOutCell (espnet/nets/pytorch_backend/tacotron2/decoder.py, lines 37-54 at commit
    056a9ad) around the cell: each part of the state keeps its previous value where its own Bernoulli(p) mask,
    drawn at every step, is 1; at inference every unit takes p times the previous value plus 1 - p the new."""

    def zoneout(h, next_h):
        if isinstance(h, tuple):  # LSTMCell: (h, c), a mask each
            return tuple(zoneout(a, b) for a, b in zip(h, next_h))
        if training:
            mask = h.new(*h.size()).bernoulli_(p)
            return mask * h + (1 - mask) * next_h
        return p * h + (1 - p) * next_h

    ys = []
    for x_t in x:
        state = zoneout(state, cell(x_t, state))
        ys.append(state[0] if isinstance(state, tuple) else state)
    return ys, state


def weight_drop(config):
    """(what the user calls, the torch module inside, the object holding ``weight_hh_l0_raw``)."""
    wrapper = find(config["weight_drop"])
    if wrapper.__name__ in ("WeightDropLSTM", "WeightDropGRU"):  # subclasses of the module itself
        module = wrapper(**config["args"], weight_dropout=config["p"])
        return module, module, module
    module = find(config["module"])(**config["args"])
    if wrapper.__name__ == "WeightDrop":  # PyTorch-NLP: the raw weight is registered on the wrapped module
        return wrapper(module, ["weight_hh_l0"], dropout=config["p"]), module, module
    user = wrapper(module, config["p"])  # fastai: the raw weight is the wrapper's parameter
    return user, module, user


# -- the model ---------------------------------------------------------------------------------------------------


class Model:
    """What a user holds: ``user`` is what they call and switch with .train() / .eval(), ``module`` holds the
    weights, ``raw`` holds ``weight_hh_l0_raw`` under a weight-drop wrapper, ``drop`` is a dropout layer on the
    sequence, ``after`` one on the module's outputs."""

    def __init__(self, config):
        self.config = config
        self.dtype = getattr(torch, config.get("dtype", "float32"))
        self.device = config.get("device", "cpu")
        self.user = self.module = self.raw = self.drop = self.after = None


def build(config, seed):
    torch.manual_seed(seed)  # before building: the initial weights, then every mask, come from this seed
    model = Model(config)
    with settings(config):
        if "weight_drop" in config:
            model.user, model.module, model.raw = weight_drop(config)
        else:
            model.module = find(config["module"])(**config["args"]).to(model.dtype).to(model.device)
            model.user = model.raw = model.module
    # the dropout layer the user's model holds (AWD-LSTM's LockedDropout is a function: see locked_dropout)
    if config.get("loop") == "zaremba_cell":
        model.drop = torch.nn.Dropout(config["p_input"])
    elif config.get("user_dropout") == "nn.Dropout":
        model.drop = torch.nn.Dropout(config["p"])
    elif config.get("user_dropout") not in (None, "LockedDropout"):
        model.drop = find(config["user_dropout"])(config["p"])
    if config.get("dropout_after"):  # a dropout layer on the outputs the module returns
        model.after = find(config["dropout_after"])(config["p"])
    return model


def load(model, w_ih, w_hh, b_ih, b_hh):
    """PyTorch's layout is the canonical one: a copy, no transpose, no reordering. A stack's arguments are
    lists, one array per part in torch's own order: l0, l0_reverse, l1, ..."""
    stack = isinstance(w_ih, list)
    parts = list(zip(w_ih, w_hh, b_ih, b_hh)) if stack else [(w_ih, w_hh, b_ih, b_hh)]
    directions = 2 if getattr(model.module, "bidirectional", False) else 1
    with torch.no_grad():
        for part, weights in enumerate(parts):
            layer, reverse = divmod(part, directions)
            # a module's weights are named per layer (weight_ih_l0, weight_ih_l0_reverse, ...); a cell's are not
            suffix = f"_l{layer}{'_reverse' if reverse else ''}" if hasattr(model.module, "num_layers") else ""
            for name, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), weights, strict=True):
                owner, attribute = model.module, name + suffix
                if name == "weight_hh" and "weight_drop" in model.config:  # the weight the wrapper drops from
                    owner, attribute = model.raw, "weight_hh_l0_raw"
                getattr(owner, attribute).copy_(torch.as_tensor(value))
    if model.config.get("mode") == "reload_state_dict":  # as a user restores a checkpoint into a new module
        state = model.module.state_dict()
        with settings(model.config):
            model.module = find(model.config["module"])(**model.config["args"]).to(model.dtype).to(model.device)
        model.module.load_state_dict(state)
        model.user = model.raw = model.module
    elif model.config.get("mode") == "torch_script":  # compiled once the weights are in, as a user deploys it
        with settings(model.config):
            model.user = torch.jit.script(model.module)


def call(model, x, h0, c0, training):
    """x (T, B, I) time-major; h0, c0 (B, H), or (parts, B, H) for a stack; c0 None but for the LSTM."""
    model.user.train(training)  # as model.train() / model.eval() reaches it
    for layer in (model.drop, model.after):
        if layer is not None:
            layer.train(training)

    def tensor(a):
        return None if a is None else torch.as_tensor(np.asarray(a), dtype=model.dtype, device=model.device)

    x, h0, c0 = tensor(x), tensor(h0), tensor(c0)
    # a user trains with autograd on and evaluates under no_grad
    with settings(model.config), torch.enable_grad() if training else torch.no_grad():
        y, h, c = (run_loop if "loop" in model.config else run_module)(model, x, h0, c0, training)
    return tuple(None if t is None else t.detach().to("cpu", torch.float64).numpy() for t in (y, h, c))


def run_loop(model, x, h0, c0, training):
    config, cell = model.config, model.user
    state = h0 if c0 is None else (h0, c0)
    if config["loop"] == "zaremba_cell":
        ys, state = zaremba_cell_loop(cell, model.drop, x, state)
    elif config["loop"] == "zoneout_cell":
        ys, state = zoneout_cell_loop(cell, x, state, config["p_zoneout"], training)
    else:
        ys, state = variational_cell_loop(cell, x, state, config["p_input"], config["p_recurrent"], training)
    h, c = (state, None) if c0 is None else state
    return torch.stack(ys), h, c


def run_module(model, x, h0, c0, training):
    config = model.config
    batch_first = config["args"].get("batch_first", False)
    if batch_first:
        x = x.transpose(0, 1).contiguous()  # the user's sequence is batch-first (B, T, I)
    if config.get("user_dropout") == "LockedDropout":  # AWD-LSTM's, on the time-major sequence
        x = locked_dropout(x, config["p"], training)
    elif model.drop is not None:  # a dropout layer on the sequence, in the module's own layout
        x = model.drop(x)
    stacked = h0.dim() == 3  # a stack's states are (num_layers * directions, B, H), as torch takes them
    h0, c0 = (h0, c0) if stacked else (h0[None], None if c0 is None else c0[None])
    hx = h0 if c0 is None else (h0, c0)
    if config.get("input") == "PackedSequence":
        packed = torch.nn.utils.rnn.pack_padded_sequence(x, [x.shape[0]] * x.shape[1], batch_first=False)
        y, state = model.user(packed, hx)
        y = torch.nn.utils.rnn.pad_packed_sequence(y, batch_first=False)[0]
    else:
        y, state = model.user(x, hx)
    if model.after is not None:  # on the output sequence, in the module's own layout; the states stay undropped
        y = model.after(y)
    if batch_first:
        y = y.transpose(0, 1)
    h, c = (state, None) if c0 is None else state
    return (y, h, c) if stacked else (y, h[0], None if c is None else c[0])

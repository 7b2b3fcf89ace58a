"""The float64 reference cell with dropout masks drawn as one scheme of the spec defines: NumPy only.

``CONFIG`` names the cell (``kind``: rnn, lstm or gru; ``reset_after`` for the GRU) and, per dropped site,
its rule: drop probability ``p``, one mask per gate or ``shared``, resampled ``per_step``,
``per_sequence`` or ``reused_across_calls``, ``per_sample`` or ``shared`` by the batch, and the value
``scale`` of a kept unit (``same_as``: the mask drawn for another site, listed before it); a rule with
``inference`` multiplies its site by that value when training=False (a site scaled at test time: 1 - p).
``seeded: False`` ignores the seed, ``at_inference: True`` keeps dropout on at inference and
``sticky_training: True`` keeps it on once a training call has run: the suite's mutants use them.
"""

import numpy as np

# gru_reset_after(scheme='variational', p_input=0.01, p_recurrent=0.01), with every rate set to 0.01 (a batch of 64)
CONFIG = {
    "kind": "gru",
    "reset_after": True,
    "rules": {
        "input": {
            "p": 0.01,
            "gates": "shared",
            "resample": "per_sequence",
            "batch": "per_sample",
            "scale": 1.0101010101010102,
        },
        "recurrent": {
            "p": 0.01,
            "gates": "shared",
            "resample": "per_sequence",
            "batch": "per_sample",
            "scale": 1.0101010101010102,
        },
    },
}


SITES = ("input", "recurrent", "output", "carry_h", "carry_c", "candidate", "cell", "state_in", "weight_hh")


class Model:
    def __init__(self, config, seed):
        self.config = config
        self.rng = np.random.default_rng(seed if config.get("seeded", True) else None)
        self.kept = {}  # masks drawn once, for rules reused across calls
        self.params = None
        self.trained = False  # whether a training call has run


def build(config, seed):
    return Model(config, seed)


def load(model, w_ih, w_hh, b_ih, b_hh):
    model.params = [np.asarray(a, float) for a in (w_ih, w_hh, b_ih, b_hh)]


def draw(model, site, gates, steps, batch, units):
    rule = model.config["rules"][site]
    if rule.get("same_as") in model.config["rules"]:  # one mask for two sites: the one just drawn for the other
        return model.kept[rule["same_as"]]
    if rule["resample"] == "reused_across_calls" and site in model.kept:
        return model.kept[site]
    if site == "weight_hh":  # DropConnect: one mask over the whole recurrent matrix per call
        shape = model.params[1].shape
    else:
        shape = (
            gates if rule["gates"] == "per_gate" else 1,
            steps if rule["resample"] == "per_step" else 1,
            batch if rule["batch"] == "per_sample" else 1,
            units,
        )
    model.kept[site] = (model.rng.random(shape) >= rule["p"]) * rule["scale"]
    return model.kept[site]


def at(m, k, t):
    """The mask of gate k at step t; m is (gates, steps, batch, units), 1 where a site is not dropped."""
    return m[min(k, m.shape[0] - 1), min(t, m.shape[1] - 1)]


def sigmoid(a):
    return 0.5 * (1 + np.tanh(0.5 * a))


def call(model, x, h0, c0, training):
    kind, rules = model.config["kind"], model.config["rules"]
    w_ih, w_hh, b_ih, b_hh = model.params
    (steps, batch, width), hid = x.shape, h0.shape[1]
    gates = len(w_ih) // hid
    m = {s: np.ones((1, 1, 1, 1)) for s in SITES + ("zone_h", "zone_c")}  # zoneout: 0 keeps the previous value
    model.trained = model.trained or training
    # the mutants: dropout left on at inference, or left on once the model has run a training call
    sticky = model.config.get("sticky_training", False) and model.trained
    if training or model.config.get("at_inference", False) or sticky:
        m.update({s: draw(model, s, gates, steps, batch, width if s == "input" else hid) for s in rules})
    else:  # a rule's "inference" value: zoneout's expectation, or 1 - p at a site scaled at test time
        m.update({s: np.full((1, 1, 1, 1), r["inference"]) for s, r in rules.items() if "inference" in r})
    wi, wh = np.split(w_ih, gates), np.split(w_hh * np.squeeze(m["weight_hh"]), gates)
    bi, bh = np.split(b_ih, gates), np.split(b_hh, gates)
    h, c = np.asarray(h0, float), np.zeros_like(h0) if c0 is None else np.asarray(c0, float)
    ys = []
    for t in range(steps):
        h = h * at(m["state_in"], 0, t)  # the state fed to the step, at every use inside it
        a = [(x[t] * at(m["input"], k, t)) @ wi[k].T + bi[k] for k in range(gates)]
        r = [(h * at(m["recurrent"], k, t)) @ wh[k].T + bh[k] for k in range(gates)]
        if kind == "rnn":
            new = np.tanh(a[0] + r[0])
        elif kind == "lstm":
            i, f, g, o = sigmoid(a[0] + r[0]), sigmoid(a[1] + r[1]), np.tanh(a[2] + r[2]), sigmoid(a[3] + r[3])
            fresh = at(m["cell"], 0, t) * (f * c + i * (at(m["candidate"], 0, t) * g))
            new, c = o * np.tanh(fresh), (c + at(m["zone_c"], 0, t) * (fresh - c) if "zone_c" in rules else fresh)
        else:
            rg, z = sigmoid(a[0] + r[0]), sigmoid(a[1] + r[1])
            if model.config["reset_after"]:
                n = np.tanh(a[2] + rg * r[2])
            else:
                n = np.tanh(a[2] + (rg * h * at(m["recurrent"], 2, t)) @ wh[2].T + bh[2])
            new = z * h + (1 - z) * (at(m["candidate"], 0, t) * n)
        new = h + at(m["zone_h"], 0, t) * (new - h) if "zone_h" in rules else new
        ys.append(at(m["output"], 0, t) * new)
        h, c = at(m["carry_h"], 0, t) * new, at(m["carry_c"], 0, t) * c
    return np.array(ys), h, c if kind == "lstm" else None

"""A cell a user writes themselves, measured through dropspec's plugin API: Keras' own test cell for its dropout
mixin, RNNCellWithDropout (keras/src/layers/rnn/dropout_rnn_cell_test.py, Keras 3.15.1, copied verbatim below).
It is a SimpleRNN-like cell with a linear activation and no bias that draws its masks through DropoutRNNCell, so
the reference cell is ``Cell("rnn", 8, 8, activation="linear", bias=False)``. From this folder:

    KERAS_BACKEND=tensorflow DROPSPEC_ADAPTERS="keras_mixin=keras_mixin_cell:KerasMixinCell" \
        dropspec run --adapter keras_mixin
"""

import numpy as np
from keras.src import backend, layers, ops
from keras.src.layers.rnn.dropout_rnn_cell import DropoutRNNCell

from dropspec.adapters.base import Adapter, Case, Claim
from dropspec.reference import Cell, Trace


# fmt: off
class RNNCellWithDropout(layers.Layer, DropoutRNNCell):
    def __init__(
        self, units, dropout=0.5, recurrent_dropout=0.5, seed=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = backend.random.SeedGenerator(seed)
        self.units = units
        self.state_size = units
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout

    def build(self, input_shape):
        self.kernel = self.add_weight(
            shape=(input_shape[-1], self.units),
            initializer="ones",
            name="kernel",
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, self.units),
            initializer="ones",
            name="recurrent_kernel",
        )

    def call(self, inputs, states, training=False):
        if training:
            dp_mask = self.get_dropout_mask(inputs)
            inputs = inputs * dp_mask
        prev_output = states[0]
        h = ops.matmul(inputs, self.kernel)
        if training:
            rdp_mask = self.get_recurrent_dropout_mask(prev_output)
            prev_output = prev_output * rdp_mask
        output = h + ops.matmul(prev_output, self.recurrent_kernel)
        return output, [output]
# fmt: on


# the plugin: one case in keras.layers.RNN, one in a loop of the user's own that never resets the masks
DOC = (
    'keras.src.layers.rnn.dropout_rnn_cell.DropoutRNNCell: "This object will create and cache dropout masks, and '
    'reuse them for all incoming steps, so that the same mask is used for every step."'
)
ASKS = (
    'DropoutRNNCell.reset_dropout_mask(): "The RNN layer invokes this in the `call()` method so that the cached mask '
    "is cleared after calling `cell.call()`. The mask should be cached across all timestep within the same batch, "
    "but shouldn't be cached between batches.\""
)


class KerasMixinCell(Adapter):
    name, framework, dtype = "keras_mixin", "keras", np.float32

    def cases(self):
        cell, config = Cell("rnn", 8, 8, activation="linear", bias=False), {"dropout": 0.25, "recurrent_dropout": 0.25}
        rates = {"input": 0.25, "recurrent": 0.25}
        layer = "keras.layers.RNN(RNNCellWithDropout(8, dropout=0.25, recurrent_dropout=0.25))"
        loop = "cell = RNNCellWithDropout(8, ...); cell(x_t, [h], training=True) for each t, no reset between sequences"
        own_loop = Claim("variational", rates, DOC, asks=ASKS)
        return [
            Case("mixin-rnn-layer", cell, config, Claim("variational", rates, doc=DOC), label=layer),
            Case("mixin-own-loop", cell, {**config, "harness": "loop"}, own_loop, label=loop),
        ]

    def run(self, case, params, calls, *, seed, training):
        config = dict(case.config)
        loop = config.pop("harness", None) == "loop"
        cell = RNNCellWithDropout(8, seed=seed, **config)  # the same seed draws the same masks
        cell.build((None, params.w_ih.shape[1]))
        cell.kernel.assign(params.w_ih.T), cell.recurrent_kernel.assign(params.w_hh.T)  # no bias: b_ih, b_hh are 0
        rnn = layers.RNN(cell, return_sequences=True, return_state=True)
        traces = []
        for call in calls:  # x is time-major (T, B, I); keras.layers.RNN reads (B, T, I)
            x, h = call.x.astype("float32"), call.h0.astype("float32")
            if loop:
                ys = []
                for x_t in x:
                    y, [h] = cell(x_t, [h], training=training)
                    ys.append(ops.convert_to_numpy(y))
                y = np.stack(ys)
            else:
                y, h = rnn(np.swapaxes(x, 0, 1), initial_state=[h], training=training)
                y = np.swapaxes(ops.convert_to_numpy(y), 0, 1)
            traces.append(Trace(y=np.asarray(y, np.float64), h=np.asarray(ops.convert_to_numpy(h), np.float64)))
        return traces

"""The PaddlePaddle adapter (``paddle``): ``paddle.nn.SimpleRNN`` / ``LSTM`` / ``GRU`` with their ``dropout=``
argument, and the cells (``SimpleRNNCell``, ``LSTMCell``, ``GRUCell``) in user loops with ``paddle.nn.Dropout``.

The framework code is ``models/paddle_model.py``; the cases, with the documentation their claims rest on, are in
``paddle_cases.py``. Paddle's parameters are PyTorch's (names, shapes, gate order, the reset-after GRU), so the
mapping is a copy, proven by ``common.mapping.inference_matches_reference`` on every case. On the CPU the layers
run Paddle's fused ``rnn`` kernel (``_C_ops.rnn``), which applies ``dropout`` between layers itself.

This module is named ``paddle_rnn`` (not ``paddle``) so that it never shadows the framework's own package; paddle
is imported inside methods and the model module only, so this module imports without it.
"""

from __future__ import annotations

from collections.abc import Sequence

from .base import Case, ModelAdapter
from .paddle_cases import paddle_cases


class PaddleAdapter(ModelAdapter):
    """PaddlePaddle 3.3 on the CPU: the layers through the fused ``rnn`` kernel, and the cells in user loops."""

    name, framework = "paddle", "paddlepaddle"
    model_module = "paddle_model.py"
    requires: tuple[str, ...] = ("paddle",)
    packages: tuple[str, ...] = ("paddlepaddle", "numpy")
    install = "`pip install paddlepaddle==3.3.1` (the CPU wheel), or run `tox -e paddle`"
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): the layers' dropout=, the loops' paddle.nn.Dropout
    rate_keys, keep_keys = frozenset({"dropout", "p_input"}), frozenset()

    def catalogue(self) -> Sequence[Case]:
        return paddle_cases(self)

    def device(self) -> str:
        import paddle

        return str(paddle.device.get_device())

"""tf-keras (``tf-keras==2.21.0``): Keras 2 as shipped for TensorFlow, ``import tf_keras``.

The cases and the run are Keras 3's (``keras3.KerasFamily``): the layers, cells and weights used
here have the same names and layouts. tf-keras has no ``use_cudnn`` argument; it picks its fused
(cuDNN-compatible) LSTM/GRU path by itself when ``recurrent_dropout == 0``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from .base import Case
from .keras3 import KerasFamily, keras_snippet

INSTALL = "`pip install tensorflow-cpu==2.21.0 tf-keras==2.21.0`, or run `tox -e tf_keras`"


class TFKerasAdapter(KerasFamily):
    """tf.keras 2 (tf-keras) LSTM, GRU and SimpleRNN with ``dropout`` / ``recurrent_dropout``."""

    name = "tf_keras"
    framework = "tf_keras"
    use_cudnn_flag = False

    def unavailable_reason(self) -> str | None:
        try:
            import tf_keras  # noqa: F401
        except Exception as exc:  # ImportError, or TensorFlow failing to load
            return f"tf_keras cannot be imported ({type(exc).__name__}: {exc}): {INSTALL}"
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for pkg in ("tf-keras", "tensorflow", "tensorflow-cpu"):
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                pass
        return out

    def _keras(self) -> Any:
        import tf_keras

        return tf_keras

    def snippet(self, case: Case) -> str:
        # set_random_seed seeds python, numpy and TF's global seed: tf-keras' dropout ops take op seeds from it
        header = "import tensorflow as tf\nimport tf_keras as keras"
        return keras_snippet(case, header, "tf.convert_to_tensor({})", "{}.numpy()", "tf.stack({}, axis=1)")

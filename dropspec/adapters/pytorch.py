"""The PyTorch adapters: ``torch`` (``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` and the cells in user loops),
``torchnlp`` (PyTorch-NLP) and ``fastai``, whose dropout layers and weight-drop wrappers run around torch's
modules. Each has its own adapter (and tox env), so a missing package never breaks the torch run.

PyTorch's parameter layout *is* the canonical layout (``weight_ih_l0`` etc.), so the mapping is a copy.
Besides the modules' own ``dropout=`` argument (a single-layer module has none: the documentation says it
only acts between layers), the cases include the dropout users write around the cells and modules:
``nn.Dropout`` on the input at each step (Zaremba et al. 2014) and a locked mask drawn once per sequence
(AWD-LSTM's ``LockedDropout``, Gal and Ghahramani 2016). All of it, the user loops and the weight-drop
builders included, is ``models/torch_model.py``; the cases are in ``torch_cases.py``. The CUDA cases
(cuDNN, and CUDA with cuDNN disabled) are skipped with the reason where no GPU is present.

torch and the third-party packages are imported only when an adapter runs, so this module imports without them.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Sequence

from .base import Case, ModelAdapter
from .torch_cases import third_party_after_cases, third_party_cases, torch_catalogue, weight_drop_cases


class TorchAdapter(ModelAdapter):
    """PyTorch 2.13 on the CPU: the fused modules through every CPU kernel, and the cells in user loops."""

    name, framework = "torch", "pytorch"
    model_module = "torch_model.py"
    requires: tuple[str, ...] = ("torch",)
    packages: tuple[str, ...] = ("numpy",)
    install = "`pip install torch==2.13.0` (the CPU wheel), or run `tox -e torch`"
    # the CONFIG keys of its rates (dropspec.modes.declared_rates): the modules' dropout=, the p of an nn.Dropout or
    # locked dropout around them, and the rates of the cell loops' input, recurrent and zoneout masks
    rate_keys = frozenset({"dropout", "p", "p_input", "p_recurrent", "p_zoneout"})
    keep_keys: frozenset[str] = frozenset()

    def catalogue(self) -> Sequence[Case]:
        return torch_catalogue(self)

    def versions(self) -> dict[str, str]:
        import torch

        found = re.findall(r"(?:MKL-DNN|oneDNN) v([\d.]+)", torch.__config__.show())
        onednn = found[0] if found and torch.backends.mkldnn.is_available() else "unavailable"
        return {"torch": torch.__version__, "onednn": onednn, **super().versions()}

    def device(self) -> str:
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def case_unavailable(self, case: Case) -> str | None:
        import torch

        if case.config.get("device") == "cuda" and not torch.cuda.is_available():
            return "needs a CUDA device: torch.cuda.is_available() is False here"
        return None


class ThirdPartyAdapter(TorchAdapter):
    """torch plus one third-party package (``name``, also its import name): its locked dropout layer before a
    one-layer module, and its weight-drop wrappers."""

    layer = ""  # the package's locked dropout layer, by its dotted path
    rate_keys = frozenset({"p"})  # the p of its locked dropout layer and its weight-drop wrappers

    def catalogue(self) -> Sequence[Case]:
        return third_party_cases(self.layer) + weight_drop_cases(self.name)

    def versions(self) -> dict[str, str]:
        own = importlib.import_module(self.name)
        return {**super().versions(), self.name: getattr(own, "__version__", "unknown")}


class TorchNLPAdapter(ThirdPartyAdapter):
    """pytorch-nlp 0.5.0: LockedDropout before and after torch's modules, and WeightDrop / WeightDropLSTM /
    WeightDropGRU."""

    name, framework = "torchnlp", "pytorch-nlp"
    requires = ("torch", "torchnlp.nn")
    install = "`pip install torch==2.13.0 pytorch-nlp==0.5.0`, or run `tox -e torchnlp`"
    layer = "torchnlp.nn.LockedDropout"

    def catalogue(self) -> Sequence[Case]:
        # AWD-LSTM also applies its LockedDropout to a layer's outputs: locked output dropout (issue 17, item 6)
        return [*super().catalogue(), *third_party_after_cases(self.layer)]


class FastaiAdapter(ThirdPartyAdapter):
    """fastai: RNNDropout before torch's modules, and WeightDropout around them."""

    name, framework = "fastai", "fastai"
    requires = ("torch", "fastai.text.models.awdlstm")
    install = "`pip install torch==2.13.0 fastai==2.8.12`, or run `tox -e fastai`"
    layer = "fastai.text.models.awdlstm.RNNDropout"

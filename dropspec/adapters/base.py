"""What every adapter shares. ``Adapter`` is the contract (``dropspec.adapter``); ``ModelAdapter`` is the
base of every built-in adapter: it runs a *model module*, and a case's repro is that module's own source.

A model module (``dropspec/adapters/models/*.py``) is plain framework code that imports nothing from
dropspec. It defines::

    build(config, seed)                     # seed the framework, build the model a user writes from ``config``
    load(model, w_ih, w_hh, b_ih, b_hh)     # canonical parameters (PyTorch's layout; lists for a stack)
    call(model, x, h0, c0, training)        # x (T, B, I) time-major -> (y (T, B, H), h, c) as float64 arrays

A case's repro is the module's source with the case's ``CONFIG`` (its ``config``, verbatim) and a
one-line comment naming the configuration inserted after the imports (and, where the adapter sets them in
``constants``, the values of the module's constants, such as which Keras it imports); ``ModelAdapter.run`` executes
exactly that text, so what the suite measures and what a user pastes cannot drift apart.
"""

from __future__ import annotations

import ast
import importlib
import json
import linecache
import textwrap
from collections.abc import Mapping, Sequence
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..adapter import Adapter
from ..case import CallInputs, Case, Claim
from ..reference import Params, Trace

__all__ = [
    "Adapter",
    "CallInputs",
    "Case",
    "Claim",
    "ModelAdapter",
    "UnrepresentableParams",
    "compose_repro",
    "python_literal",
]

MODELS_DIR = Path(__file__).resolve().parent / "models"
WIDTH = 100  # a literal longer than this is written one item per line


def python_literal(value: Any, indent: int = 0) -> str:
    """``value`` (dicts, lists, tuples, strings, numbers, booleans, None) as Python source that ruff
    formats as it stands: double quotes, one item per line where a line would be long."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool) or value is None or isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        items = [f"{python_literal(k)}: {python_literal(v, indent + 4)}" for k, v in value.items()]
        opening, closing = "{", "}"
    elif isinstance(value, list | tuple):
        items = [python_literal(v, indent + 4) for v in value]
        opening, closing = ("[", "]") if isinstance(value, list) else ("(", ")")
        if isinstance(value, tuple) and len(items) == 1:
            items = [items[0] + ","]
    else:
        raise TypeError(f"a case config holds {type(value).__name__} {value!r}; only plain Python data is allowed")
    flat = opening + ", ".join(items) + closing
    if len(flat) + indent <= WIDTH and "\n" not in flat:
        return flat
    pad = " " * (indent + 4)
    return opening + "\n" + "".join(f"{pad}{item},\n" for item in items) + " " * indent + closing


def compose_repro(source: str, title: str, config: dict[str, Any], constants: Mapping[str, Any] | None = None) -> str:
    """A model module's ``source`` with ``CONFIG = config`` and a comment naming the configuration as a user
    writes it (``title``) inserted after the module's imports (its last top-level statement that imports: an
    import, or an ``if`` choosing between imports). ``constants``: module constants, each a top-level
    ``NAME = value`` of the module, whose value the repro sets as ``CONFIG``'s is set, as data (Keras: ``KERAS``,
    which Keras the module imports)."""
    for name, value in (constants or {}).items():
        source = _set_constant(source, name, value)
    tree = ast.parse(source)
    nodes = [n for n in tree.body if _imports(n)]
    docstring = tree.body[0].end_lineno if ast.get_docstring(tree) else 0
    cut = nodes[-1].end_lineno if nodes else docstring
    lines = source.splitlines(keepends=True)
    head, tail = "".join(lines[:cut]).rstrip("\n"), "".join(lines[cut:]).strip("\n")
    # a long title is wrapped, so the repro stays within ruff's line length (120)
    comment = textwrap.fill(title, 120, initial_indent="# ", subsequent_indent="# ", break_long_words=False)
    block = f"{comment}\nCONFIG = {python_literal(config)}"
    return "\n\n".join(part for part in (head, block) if part) + "\n\n\n" + tail + "\n"


def _imports(node: ast.stmt) -> bool:
    """Whether a top-level statement imports: an import, or an ``if`` / ``try`` holding one (not a function's or a
    class's lazy import)."""
    if isinstance(node, ast.Import | ast.ImportFrom):
        return True
    return isinstance(node, ast.If | ast.Try) and any(
        isinstance(n, ast.Import | ast.ImportFrom) for n in ast.walk(node)
    )


def _set_constant(source: str, name: str, value: Any) -> str:
    """``source`` with the value of its top-level ``name = ...`` written as ``value`` (``python_literal``); what
    follows the value on its line (a comment) stays."""
    tree = ast.parse(source)
    found = [
        n.value
        for n in tree.body
        if isinstance(n, ast.Assign) and [t.id for t in n.targets if isinstance(t, ast.Name)] == [name]
    ]
    if len(found) != 1:
        raise ValueError(
            f"the model module has {len(found)} top-level assignments `{name} = ...`, not one: the repro sets that "
            f"constant's value; define it once at the top of the module, or do not pass {name!r} to compose_repro"
        )
    value_node = found[0]
    lines = source.splitlines(keepends=True)
    # ast's column offsets count UTF-8 bytes
    first = lines[value_node.lineno - 1].encode()[: value_node.col_offset]
    last = lines[value_node.end_lineno - 1].encode()[value_node.end_col_offset :]
    line = (first + python_literal(value).encode() + last).decode()
    return "".join(lines[: value_node.lineno - 1]) + line + "".join(lines[value_node.end_lineno :])


class UnrepresentableParams(ValueError):
    """The framework's layer has no parameter for a canonical one that is not zero (e.g. nnx.GRUCell has no
    b_hn). A model module's ``load`` raises ValueError for such parameters (it imports nothing from dropspec);
    ``ModelAdapter.run`` re-raises it as this."""


class ModelAdapter(Adapter):
    """An adapter whose framework code is one model module. Subclasses set the class attributes and list
    their cases in ``catalogue``; availability, versions, the case cache, the repro and the run live here."""

    model_module: str = ""  # a file of dropspec/adapters/models/, e.g. "torch_model.py"
    requires: tuple[str, ...] = ()  # modules that must import for the adapter to run
    packages: tuple[str, ...] = ()  # distributions whose versions the results record
    install: str = ""  # how to get the framework, e.g. "`pip install torch==2.13.0`, or run `tox -e torch`"
    per_call_training = True  # call() takes each call's flag, on a model built once per run

    def __init__(self, cases: Sequence[Case] | None = None) -> None:
        self._cases = list(cases) if cases is not None else None
        self._namespaces: dict[str, dict[str, Any]] = {}

    def catalogue(self) -> Sequence[Case]:
        """Every case of the adapter: a subclass returns its case catalogue."""
        raise NotImplementedError(f"{type(self).__name__} must define catalogue()")

    def cases(self) -> Sequence[Case]:
        if self._cases is None:
            self._cases = list(self.catalogue())
        return self._cases

    def unavailable_reason(self) -> str | None:
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # ImportError, or a framework that fails to load
                return f"{module} cannot be imported ({type(exc).__name__}: {exc}): {self.install}"
        return None

    def versions(self) -> dict[str, str]:
        out = {}
        for package in self.packages:
            try:
                out[package] = version(package)
            except PackageNotFoundError:
                continue
        return out

    @cached_property
    def model_source(self) -> str:
        return (MODELS_DIR / self.model_module).read_text()

    def constants(self) -> dict[str, Any]:
        """The model module's constants that the repro sets, besides ``CONFIG``, where they differ per adapter
        (Keras: ``KERAS``, which Keras the module imports); {} keeps the module's own values."""
        return {}

    def repro(self, case: Case) -> str:
        return compose_repro(self.model_source, case.title, case.config, self.constants())

    def functions(self, case: Case) -> dict[str, Any]:
        """The namespace of the case's repro, executed once per case."""
        if case.id not in self._namespaces:
            text = self.repro(case)
            filename = f"<repro {self.name} {case.id}>"
            linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)  # tracebacks
            namespace: dict[str, Any] = {"__name__": f"dropspec_repro_{self.name}"}
            # dont_inherit: compiled as the standalone script is, without this module's __future__ annotations
            # (which would turn a Flax module's dataclass fields into strings that linen cannot resolve)
            exec(compile(text, filename, "exec", dont_inherit=True), namespace)
            self._namespaces[case.id] = namespace
        return self._namespaces[case.id]

    def run(self, case: Case, params: Params, calls: Sequence[CallInputs], *, seed: int, training: bool) -> list[Trace]:
        reason = self.unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        fns = self.functions(case)
        model = fns["build"](fns["CONFIG"], seed)
        stack = params if isinstance(params, list) else None
        try:
            if stack is None:
                fns["load"](model, params.w_ih, params.w_hh, params.b_ih, params.b_hh)
            else:  # a stack: one array per part, in PyTorch's order l0, l0_reverse, l1, ...
                parts = ([getattr(p, name) for p in stack] for name in ("w_ih", "w_hh", "b_ih", "b_hh"))
                fns["load"](model, *parts)
        except ValueError as exc:  # the model refuses parameters its layer cannot hold
            raise UnrepresentableParams(f"{self.name} {case.id}: {exc}") from exc
        traces = []
        for c in calls:
            y, h, c_n = fns["call"](model, c.x, c.h0, c.c0, training if c.training is None else c.training)
            traces.append(Trace(y=y, h=h, c=c_n if case.cell.kind == "lstm" else None))
        return traces

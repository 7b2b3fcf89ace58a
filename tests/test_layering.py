"""The layering holds: the core imports neither ``adapters/`` nor ``publish/``, ``publish/`` never loads an
adapter, and no module imports itself through a cycle. Read from the source, so it needs no framework."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dropspec"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every dropspec module ``path`` imports, at any depth of its code (lazy imports count)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dropspec")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("dropspec"):
                continue
            for alias in node.names:  # `from . import page` imports the module dropspec.publish.page
                candidate = f"{target}.{alias.name}"
                found.add(candidate if MODULES.get(candidate) else target)
    return {m for m in found if m in MODULES}


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports(path) for name, path in MODULES.items()}


def is_core(name: str) -> bool:
    return not name.startswith(("dropspec.adapters", "dropspec.publish", "dropspec.conformance")) and name not in (
        "dropspec.cli",
    )


@pytest.mark.parametrize("name", sorted(n for n in MODULES if is_core(n)))
def test_core_imports_neither_adapters_nor_publish(name: str) -> None:
    bad = sorted(m for m in GRAPH[name] if m.startswith(("dropspec.adapters", "dropspec.publish")))
    assert not bad, f"{name} imports {bad}: the core must not depend on adapters/ or publish/"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("dropspec.publish")))
def test_publish_never_loads_an_adapter(name: str) -> None:
    bad = sorted(m for m in GRAPH[name] if m.startswith("dropspec.adapters") or m == "dropspec.registry")
    assert not bad, f"{name} imports {bad}: publish/ reads results only"


def test_no_import_cycles() -> None:
    cycles, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == "open":
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_imports() -> None:
    """The checks above can fail: the engine's known imports are found."""
    assert {"dropspec.fingerprint", "dropspec.recovery", "dropspec.case"} <= GRAPH["dropspec.engine"]

"""Plain Python data as source text that ruff formats as it stands: the constants of a generated repro."""

from __future__ import annotations

import json
from typing import Any

WIDTH = 100  # a literal longer than this is written one item per line
LINE = 120  # ruff's line length: a string that does not fit is written as implicitly joined parts


def string_literal(text: str, indent: int = 0) -> str:
    """``text`` as a double-quoted string; where it would not fit on a line that starts at ``indent``, as
    parts of at most WIDTH characters joined implicitly, one per line (ruff keeps them so; it joins them back
    when they fit)."""
    flat = json.dumps(text, ensure_ascii=False)
    if indent + len(flat) + 1 <= LINE:
        return flat
    parts, current = [], ""
    for word in text.split(" "):
        if current and len(json.dumps(current + word, ensure_ascii=False)) + indent > WIDTH:
            parts.append(current)
            current = ""
        current += word + " "
    parts.append(current[:-1])
    return ("\n" + " " * indent).join(json.dumps(p, ensure_ascii=False) for p in parts)


def python_literal(value: Any, indent: int = 0) -> str:
    """``value`` (dicts, lists, tuples, strings, numbers, booleans, None) as Python source that ruff
    formats as it stands: double quotes, one item per line where a line would be long."""
    if isinstance(value, str):
        return string_literal(value, indent)
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

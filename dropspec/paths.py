"""Names that become paths: adapter names and case ids name files under ``--out`` and ``reports/``.

Results files can come from someone else's CI, so a name is checked wherever it becomes a path, when a
run writes it and when a report reads it: one path component, no separators, no ``..``, no hidden files.
"""

from __future__ import annotations

import re

SAFE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.=+,@-]*")


class UnsafeName(ValueError):
    """A name that would escape its directory or hide as a dotfile."""


def safe_name(name: object, what: str) -> str:
    """``name`` when it is one safe path component, else ``UnsafeName`` saying why and what to use."""
    if not isinstance(name, str) or not SAFE.fullmatch(name) or ".." in name or len(name) > 200:
        raise UnsafeName(
            f"{what} {name!r} cannot name a file: use letters, digits and _ . = + , @ - only "
            "(no '/', no '..', not starting with '.', at most 200 characters)"
        )
    return name

"""Jinja2 templates for the static pages; everything a page needs is inlined (no network, no server)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

TEMPLATES = Path(__file__).resolve().parent / "templates"


def _json_script(value: Any) -> str:
    """JSON safe inside a <script type="application/json"> element."""
    text = json.dumps(value, default=str, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _breakable(identifier: str) -> Markup:
    """A dotted id (``variational.recurrent.resample``) that a narrow column may wrap after a dot or an
    underscore, never inside a word."""
    text = str(Markup.escape(identifier))
    return Markup(text.replace(".", ".<wbr>").replace("_", "_<wbr>"))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["json_script"] = lambda v: Markup(_json_script(v))
    env.filters["breakable"] = _breakable
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)

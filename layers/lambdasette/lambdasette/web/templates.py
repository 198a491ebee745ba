"""The page templates (`web/templates/*.html`), rendered with Jinja2.

Imported only when a page is rendered (`web.html.render`), so the JSON API never loads
Jinja2. Autoescaping is on for every template whatever its name, and undefined names are
errors: a value reaches a page only escaped, and a typo fails a test instead of showing
nothing. Templates never mark data safe, take no inline script or style (the CSP forbids
them), and build URLs only with `path` (tilde-encoding) and `|urlencode`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import jinja2

from lambdasette.tilde import tilde_encode
from lambdasette.web import assets, humanize

_env: jinja2.Environment | None = None
_lock = threading.Lock()


def path(*parts: str, ext: str = "") -> str:
    """`/<db>/<table>...` with each name tilde-encoded, and an optional `.json`/`.csv`."""
    return "/" + "/".join(tilde_encode(p) for p in parts) + (f".{ext}" if ext else "")


def environment() -> jinja2.Environment:
    global _env
    if _env is None:
        with _lock:
            if _env is None:
                env = jinja2.Environment(
                    loader=jinja2.FileSystemLoader(str(Path(__file__).resolve().parent / "templates")),
                    autoescape=True,
                    undefined=jinja2.StrictUndefined,
                    trim_blocks=True,
                    lstrip_blocks=True,
                )
                env.globals.update(
                    static=assets.url, path=path, relative=humanize.relative,
                    timestamp=humanize.timestamp, iso=humanize.iso,
                    describe_restrictions=humanize.restrictions, span=humanize.span,
                )
                _env = env
    return _env


def render(name: str, values: dict[str, Any]) -> str:
    return environment().get_template(name).render(values)

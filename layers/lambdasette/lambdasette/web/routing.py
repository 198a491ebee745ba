"""Routing: a request path to what it names (`resolve` → `Target`), and the route table that
maps what it names and the method to one handler (`Router`).

Routes are data, as in Starlette: `Route(kind, action, methods, handler)`. `kind` is what the
path names (`index`, `special`, `database`, `table`, `row`, or `<that>-action` for a path
with a `/-/<action>` tail); `action` is that tail, where `{name}` matches one segment and
lands in `Context.path_params`. Every handler has the one signature `(Context) -> Response`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.responses import Response

    from lambdasette.web.context import Context

    Handler = Callable[[Context], Response]

FORMATS = ("json", "csv", "jsono", "blob", "md")
# Formats only the routes that name them serve (`.blob` downloads, `.md` schemas). "html" and
# "form" are never a suffix of a path: how the dispatcher asks for a route that answers a
# browser's page request or form post before any other (see `web.app`).
PAGE, FORM = "html", "form"
CLAIMED_FORMATS = ("blob", "md", PAGE, FORM)


def decode_segment(raw: str) -> str:
    """Tilde-decode one raw path segment; percent-encoding is accepted as well."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch in "~%" and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        if ch == "+":
            out.append(0x20)
        else:
            out += ch.encode("utf-8")
        i += 1
    return out.decode("utf-8", errors="replace")


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class Target:
    kind: str
    database: str | None = None
    table: str | None = None
    pk: list[str] = field(default_factory=list)
    format: str | None = None
    action: str | None = None

    @property
    def ext(self) -> str:
        return self.format or "json"


def split_format(segment: str) -> tuple[str, str | None]:
    for fmt in FORMATS:
        if segment.endswith("." + fmt):
            return segment[: -len(fmt) - 1], fmt
    return segment, None


def resolve(raw_path: str) -> Target:
    """`raw_path` is the still-encoded path, without the query string."""
    path = raw_path.strip("/")
    if not path:
        return Target("index")
    segments = path.split("/")
    segments[-1], fmt = split_format(segments[-1])
    if segments[0] == "-":
        rest = segments[1:]
        if not rest or rest == [""]:
            return Target("index", format=fmt)
        return Target("special", action="/".join(rest), format=fmt)
    database = decode_segment(segments[0])
    if len(segments) == 1:
        if database == "" and fmt:
            return Target("index", format=fmt)
        return Target("database", database=database, format=fmt)
    if segments[1] == "-":
        return Target("database-action", database=database, action="/".join(segments[2:]), format=fmt)
    table = decode_segment(segments[1])
    if len(segments) == 2:
        return Target("table", database=database, table=table, format=fmt)
    if segments[2] == "-":
        return Target("table-action", database=database, table=table, action="/".join(segments[3:]),
                      format=fmt)
    pk = [decode_segment(part) for part in segments[2].split(",")]
    if len(segments) == 3:
        return Target("row", database=database, table=table, pk=pk, format=fmt)
    if segments[3] == "-":
        return Target("row-action", database=database, table=table, pk=pk,
                      action="/".join(segments[4:]), format=fmt)
    return Target("unknown")


@dataclass(frozen=True)
class Route:
    """One resource: what the path names, its action pattern, the methods it answers (GET
    also answers HEAD) and the handler."""

    kind: str
    action: str | None
    methods: tuple[str, ...]
    handler: Handler
    # The path's format suffixes this route answers; None: any but those another route claims
    # explicitly (`.blob` downloads, pages and forms are their own routes).
    formats: tuple[str, ...] | None = None
    # "1.0": the resource exists only in Datasette 1.0a41, so it answers in 1.0a41's format
    # whatever `default_json_api` says (see `web.context.Context.api`).
    api: str | None = None
    # Reachable without credentials on a private instance: signing in, and the static files
    # the sign-in page loads.
    open: bool = False
    # The answer is the same for everyone (static files): cacheable whatever the credentials.
    shared: bool = False

    def serves(self, fmt: str | None) -> bool:
        if self.formats is None:
            return fmt not in CLAIMED_FORMATS
        return (fmt or "json") in self.formats  # no suffix: JSON

    def pattern(self) -> re.Pattern[str] | None:
        if self.action is None:
            return None
        parts = re.split(r"(\{[a-z_]+\})", self.action)
        regex = "".join(
            f"(?P<{part[1:-1]}>[^/]+)" if part.startswith("{") else re.escape(part) for part in parts
        )
        return re.compile(f"^{regex}$")


@dataclass
class Match:
    """The route a target and method reached; `allowed` lists the methods the path answers
    when `route` is None because only the method was wrong (a 405, not a 404)."""

    route: Route | None
    params: dict[str, str]
    allowed: tuple[str, ...] = ()


class Router:
    """The route table, indexed by kind; matched in order, first full match wins."""

    def __init__(self, routes: Iterable[Route]) -> None:
        self.routes = list(routes)
        self._by_kind: dict[str, list[tuple[Route, re.Pattern[str] | None]]] = {}
        for route in self.routes:
            self._by_kind.setdefault(route.kind, []).append((route, route.pattern()))

    def match(self, target: Target, method: str) -> Match:
        method = "GET" if method == "HEAD" else method
        allowed: list[str] = []
        for route, pattern in self._by_kind.get(target.kind, ()):
            if not route.serves(target.format):
                continue
            if pattern is None:
                if target.action is not None:
                    continue
                params: dict[str, str] = {}
            else:
                found = pattern.match(target.action or "")
                if found is None:
                    continue
                params = found.groupdict()
            if method in route.methods:
                return Match(route, params)
            allowed += [m for m in route.methods if m not in allowed]
        return Match(None, {}, tuple(allowed))

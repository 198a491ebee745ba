"""What every endpoint receives: the instance, the request, what its path names, its
arguments, body and actor."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from lambdasette.args import Args
from lambdasette.auth import authorizer
from lambdasette.auth.tokens import SessionRecord, TokenRecord
from lambdasette.instance import Lambdasette
from lambdasette.query import execute, visibility
from lambdasette.query.schema import Schema
from lambdasette.web.responses import absolute_url, url_with_args
from lambdasette.web.routing import Route, Target


def choose_api(route: Route | None, args: Args, default: str) -> str:
    """The format of an answer, chosen by the request, never guessed (CONTRACT §2): 1.0a41's
    for a 1.0-only resource and for any request with `?_extra=`; otherwise the instance's
    `default_json_api` setting ("0.65" unless set)."""
    if (route is not None and route.api == "1.0") or "_extra" in args:
        return "1.0"
    return default


@dataclass
class Context:
    """One request, as the dispatcher has read it.

    `path` is the raw (still percent/tilde-encoded) path without the query string; `body` is
    the request body, already read and capped at `max_post_body_bytes` (empty for GET);
    `path_params` are the `{name}` parts of the route's action pattern; `actor` is who the
    token says the caller is (None: anonymous) and `token` its record, verified once the body
    had arrived, when the request is acted on. `session` is the signed-in browser session the
    token came from (None for a bearer token), and `form` the fields of a form POST (its CSRF
    token already checked)."""

    ds: Lambdasette
    request: Request
    target: Target
    args: Args
    path: str
    actor: dict[str, Any] | None = None
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)
    # Set by `open`: the caller may not view some user table of that database.
    hides_tables: bool = False
    token: TokenRecord | None = None
    session: SessionRecord | None = None
    form: Args | None = None
    # The request's one deadline for SQL, set when it is acted on (`web.app`): every query
    # it runs gets at most what is left of it (`query.execute.Deadline`).
    deadline: execute.Deadline | None = None

    def recheck(self) -> None:
        """InvalidToken unless the caller's token (and every token it was minted from) is
        still valid: what a write calls right before its commit (`Writer.run(before_commit=)`),
        so a token revoked while the write waited for the lock writes nothing."""
        self.ds.recheck(self.token)
    # The JSON format of the answer: "0.65" or "1.0" (Datasette 1.0a41), see `choose_api`.
    api: str = "0.65"

    @property
    def v10(self) -> bool:
        """Answer in Datasette 1.0a41's format."""
        return self.api == "1.0"

    @property
    def database(self) -> str:
        return self.target.database or ""

    @property
    def table(self) -> str:
        return self.target.table or ""

    def url(self, args: Args) -> str:
        """This page's absolute URL with other arguments."""
        return url_with_args(self.request, self.path, args, force_https=self.ds.settings.force_https_urls)

    def relative(self, args: Args) -> str:
        """This page's path (not made absolute) with other arguments."""
        qs = args.query_string()
        return self.path + (f"?{qs}" if qs else "")

    def absolute(self, path_and_query: str) -> str:
        return absolute_url(self.request, path_and_query, force_https=self.ds.settings.force_https_urls)

    def open(self, database: str, *,
             conn: sqlite3.Connection | None = None) -> tuple[sqlite3.Connection, Schema]:
        """A read connection and the schema as this caller may see it. The connection is
        guarded so that no statement on it can read a table the caller may not view, call a
        function that is not allowed, or read the schema of hidden tables."""
        if conn is None:
            conn = self.ds.connection(database)
        if not getattr(conn, "prepared", False):
            execute.prepare(conn, max_value_bytes=max(self.ds.settings.max_value_mb, 1) * execute.MiB)
        schema = self.ds.schema(database, conn)
        visibility.warm(conn, schema)
        hidden = self.ds.hidden_tables(self.actor, database, schema)
        authorizer.install(conn, visibility.guard_for(schema, hidden))
        self.hides_tables = visibility.user_hidden(schema, hidden)
        return conn, schema.without(hidden)

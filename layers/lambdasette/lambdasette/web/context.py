"""What every endpoint receives: the instance, the request, what its path names, its
arguments, body and actor."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from lambdasette.args import Args
from lambdasette.auth import authorizer
from lambdasette.instance import Lambdasette
from lambdasette.query import execute
from lambdasette.query.schema import Schema
from lambdasette.web.responses import absolute_url, url_with_args
from lambdasette.web.routing import Target


@dataclass
class Context:
    """One request, as the dispatcher has read it.

    `path` is the raw (still percent/tilde-encoded) path without the query string; `body` is
    the request body, already read and capped at `max_post_body_bytes` (empty for GET);
    `path_params` are the `{name}` parts of the route's action pattern; `actor` is who the
    token says the caller is (None: anonymous)."""

    ds: Lambdasette
    request: Request
    target: Target
    args: Args
    path: str
    actor: dict[str, Any] | None = None
    body: bytes = b""
    path_params: dict[str, str] = field(default_factory=dict)

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

    def open(self, database: str, *, strict: bool = False,
             conn: sqlite3.Connection | None = None) -> tuple[sqlite3.Connection, Schema]:
        """A read connection and the schema as this caller may see it. The connection is
        guarded so that no statement on it can read a table the caller may not view;
        `strict` also keeps arbitrary SQL away from the schema table."""
        if conn is None:
            conn = self.ds.connection(database)
        execute.prepare(conn)
        authorizer.install(conn, None)
        schema = self.ds.schema(database, conn)
        hidden = self.ds.hidden_tables(self.actor, database, schema)
        if hidden:
            schema = schema.without(hidden)
            authorizer.install(conn, authorizer.TableGuard(hidden, strict))
        return conn, schema

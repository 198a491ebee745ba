"""What every endpoint receives: the app state, the request, its arguments and actor."""

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
from lambdasette.web.responses import url_with_args
from lambdasette.web.routing import Target


@dataclass
class Context:
    ds: Lambdasette
    request: Request
    target: Target
    args: Args
    actor: dict[str, Any] | None = None
    facets_timed_out: list[str] = field(default_factory=list)
    txid: int | None = None  # the replica's transaction id of this request's write

    def url(self, args: Args) -> str:
        return url_with_args(self.request, args, force_https=self.ds.settings.force_https_urls)

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

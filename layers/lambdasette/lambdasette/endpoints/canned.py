"""Named queries at `/<db>/<name>.json` (and `.csv`), `:named` parameters from the query
string: metadata `queries:` (0.65's canned queries, trusted: `view-query` runs them) and
queries stored through the API (1.0a41's stored queries, untrusted: running one also needs
`execute-sql`). A metadata query's name is looked up before a table's, as in 0.65; a table's
before a stored query's, as in 1.0a41 (`endpoints.table.table`).
"""

from __future__ import annotations

import sqlite3

from starlette.responses import Response

from lambdasette.endpoints import database, extras
from lambdasette.errors import ApiError
from lambdasette.query.internal import StoredQuery
from lambdasette.web.context import Context
from lambdasette.web.responses import cache_control, json_response
from lambdasette.writes import sql as write_sql_run


def opened(ctx: Context, query: StoredQuery, conn: sqlite3.Connection | None = None) -> sqlite3.Connection:
    """The caller's guarded connection for running `query`, once it may: `view-query` on it
    (someone else's private query is a 404, as a missing table), and `execute-sql` for an
    untrusted (stored) read query. The JSON answer and the query's page both check here."""
    name = ctx.database
    if conn is None:
        conn = ctx.ds.connection(name)
    if not ctx.ds.query_allowed(ctx.actor, "view-query", query):
        if query.source == "user":
            # Someone else's private query is not there at all, as far as this caller can tell.
            raise ApiError(404, "Table not found")
        raise ApiError(403, "You do not have permission to view this query")
    if not query.is_trusted and not query.is_write:
        ctx.ds.require(ctx.actor, "execute-sql", name,
                       message="You do not have permission to execute SQL against this database")
    conn, _ = ctx.open(name, conn=conn)
    return conn


def canned(ctx: Context, query: StoredQuery) -> Response:
    """Run a named query (GET). A writable one is only described, in either format: writes
    go through `POST /<db>/-/execute-write` or the write API."""
    name = ctx.database
    conn = ctx.ds.connection(name)
    names = extras.requested(ctx.args)
    if ctx.v10:
        extras.check(names, extras.QUERY)
    conn = opened(ctx, query, conn)
    headers = cache_control(ctx.args, ctx.ds.settings.default_cache_ttl)
    if query.is_write:
        if ctx.v10:
            return json_response({"ok": True, "rows": [], "truncated": False}, headers=headers)
        # Described, never compiled: its parameters as 1.0a41 finds them (a regex that skips
        # comments and strings), or as declared.
        names = list(query.parameters) or write_sql_run.named_parameters(query.sql)
        params = {p: "" for p in names if not p.startswith("_")}
        body = {"ok": True, "database": name, "query_name": query.name, "rows": [],
                "truncated": False, "columns": [], "query": {"sql": query.sql, "params": params},
                "private": False}
        return json_response(body, headers=headers)
    ran = database.run_query(ctx, conn, query.sql, query_name=query.name, stored=query,
                             max_bytes=database.answer_budget(ctx))
    return database.render_query(ctx, ran, filename=query.name)

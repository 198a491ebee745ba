"""Canned queries: read-only SQL named in metadata `queries:`, served at `/<db>/<name>.json`
(and `.csv`) with `:named` parameters from the query string, as Datasette 0.65 serves them.
A canned query's name is looked up before a table's (`Lambdasette.canned_query`)."""

from __future__ import annotations

from starlette.responses import Response

from lambdasette.endpoints import database
from lambdasette.metadata import CannedQuery
from lambdasette.web.context import Context
from lambdasette.web.responses import cache_control, json_response


def canned(ctx: Context, query: CannedQuery) -> Response:
    name = ctx.database
    conn = ctx.ds.connection(name)
    ctx.ds.require(ctx.actor, "view-query", name, query.name,
                   message="You do not have permission to view this query")
    conn, _ = ctx.open(name, conn=conn)
    if query.write:
        # A writable query runs on POST in 0.65; a GET only describes it. (Writes through
        # canned queries are not served: the write API is the way to change data.)
        params = {p: "" for p in database.named_parameters(conn, query.sql) if not p.startswith("_")}
        body = {"ok": True, "database": name, "query_name": query.name, "rows": [],
                "truncated": False, "columns": [], "query": {"sql": query.sql, "params": params},
                "private": False}
        return json_response(body, headers=cache_control(ctx.args, ctx.ds.settings.default_cache_ttl))
    ran = database.run_query(ctx, conn, query.sql, query_name=query.name)
    return database.render_query(ctx, ran, filename=query.name)

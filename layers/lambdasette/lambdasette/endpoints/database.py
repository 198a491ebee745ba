"""Database endpoints: `/<db>.json` and arbitrary read-only SQL (`?sql=`)."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints import extras
from lambdasette.errors import ApiError
from lambdasette.query import execute
from lambdasette.query.internal import StoredQuery
from lambdasette.query.render import (
    as_objects,
    check_shape,
    page_worst,
    parse_json_columns,
    response_budget,
    row_too_big,
    with_base64_blobs,
    within_budget,
)
from lambdasette.query.schema import Schema
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import byte_limit, csv_response
from lambdasette.web.responses import cache_control, json_response, rows_alone


def table_summaries(
    ctx: Context, database: str, conn: sqlite3.Connection, schema: Schema, *, cap: int | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The tables and views the caller may see (`schema` is already narrowed to them). With a
    `cap`, counting stops after that many rows and each table says `count_truncated` (1.0a41)."""
    tables = []
    views = []
    for table in schema.tables.values():
        if table.is_view:
            views.append({"name": table.name, "private": False})
            continue
        count = None
        if not _count_unsafe(table.name, schema):
            try:
                sql = (f"select count(*) from (select 1 from {_q(table.name)} limit {cap})" if cap
                       else f"select count(*) from {_q(table.name)}")
                count = ctx.ds.count(database, conn, sql, {}, time_limit_ms=100)
            except ApiError:
                pass  # e.g. an FTS table over content the caller may not read: no count
        tables.append({
            "name": table.name,
            "columns": table.all_columns,
            "primary_keys": table.pks,
            "count": count,
            "hidden": table.hidden or ctx.ds.table_config(database, table.name).hidden,
            **({"count_truncated": count is not None and count >= cap} if cap else {}),
            "fts_table": table.fts_table,
            "foreign_keys": {
                "incoming": table.incoming,
                "outgoing": [fk.outgoing() for fk in table.outgoing],
            },
            "private": False,
        })
    tables.sort(key=lambda t: (t["hidden"], t["name"]))
    views.sort(key=lambda v: v["name"])
    return tables, views


def _q(name: str) -> str:
    from lambdasette.query.quote import quote

    return quote(name)


def _count_unsafe(name: str, schema: Any) -> bool:
    # Counting a virtual table other than FTS can run arbitrary module code.
    table = schema.get(name)
    return bool(table and table.is_virtual and not table.fts_table)


def database(ctx: Context) -> Response:
    """`/<db>.json`: the database's tables, views and queries (0.65's body or 1.0a41's), or with
    `?sql=` a query."""
    name = ctx.target.database or ""
    if ctx.args.get("sql"):
        return query(ctx)
    ctx.ds.require(ctx.actor, "view-database", name,
                   message="You do not have permission to view this database")
    conn, schema = ctx.open(name)
    if ctx.target.ext == "csv":
        raise ApiError(400, "?sql= is required")
    if ctx.v10:
        return database_v10(ctx, conn, schema)
    start = time.perf_counter()
    tables, views = table_summaries(ctx, name, conn, schema)
    info = ctx.ds.storage.info(name)
    body = {
        "ok": True,
        "database": name,
        "private": False,
        "path": "/" + tilde_encode(name),
        "size": info.size,
        "tables": tables,
        "hidden_count": sum(1 for t in tables if t["hidden"]),
        "views": views,
        "queries": [
            {**q.as_065(), "private": False} for q in ctx.ds.canned_queries(name).values()
            if ctx.ds.query_allowed(ctx.actor, "view-query", q)
        ],
        "allow_execute_sql": ctx.ds.can(ctx.actor, "execute-sql", name),
        "query_ms": (time.perf_counter() - start) * 1000,
        **ctx.ds.metadata.about(),
    }
    return json_response(body, headers=cache_control(ctx.args, ctx.ds.settings.default_cache_ttl))


def database_v10(ctx: Context, conn: sqlite3.Connection, schema: Schema) -> Response:
    """`/<db>.json` in Datasette 1.0a41's format: table counts capped at 10,001 (with
    `count_truncated`), the first five named queries as full query objects, every table's
    columns."""
    names = extras.requested(ctx.args)
    if names:
        raise ApiError(400, f"Unknown _extra: {', '.join(sorted(names))}")  # none on this page
    name = ctx.database
    tables, views = table_summaries(ctx, name, conn, schema, cap=COUNT_CAP)
    info = ctx.ds.storage.info(name)
    queries = [q for q in ctx.ds.canned_queries(name).values()
               if ctx.ds.query_allowed(ctx.actor, "view-query", q)]
    queries.sort(key=lambda q: ((q.title or q.name).lower(), q.name))
    body = {
        "ok": True,
        "database": name,
        "private": extras.private(ctx, "view-database", name),
        "path": "/" + tilde_encode(name),
        "size": info.size,
        "tables": tables,
        "hidden_count": sum(1 for t in tables if t["hidden"]),
        "views": views,
        "queries": [q.as_json(private=query_private(ctx, q)) for q in queries[:5]],
        "queries_more": len(queries) > 5,
        "queries_count": len(queries),
        "allow_execute_sql": ctx.ds.can(ctx.actor, "execute-sql", name),
        "table_columns": {t.name: sorted(t.all_columns) for t in schema.tables.values() if not t.is_view},
        "metadata": ctx.ds.metadata.database(name),
    }
    return json_response(body, headers=cache_control(ctx.args, ctx.ds.settings.default_cache_ttl))


# 1.0a41 counts at most 10,001 rows of a table for a listing.
COUNT_CAP = 10_001


def query_private(ctx: Context, query: StoredQuery) -> bool:
    """1.0a41's `private` for a query: the caller may see it, an anonymous caller could not."""
    public = ctx.ds.options.public and ctx.ds.query_allowed(None, "view-query", query)
    return not public and ctx.ds.query_allowed(ctx.actor, "view-query", query)


@dataclass
class QueryRun:
    """A read-only query that ran: its SQL, the parameters echoed back and what came out."""

    sql: str
    params: dict[str, Any]
    result: execute.Result
    query_ms: float
    query_name: str | None = None
    # The `:named` parameters and the values they were bound to (1.0a41 echoes only these).
    named: dict[str, Any] | None = None
    # The stored query that ran, if it was one.
    stored: StoredQuery | None = None


def checked_sql(ctx: Context) -> tuple[sqlite3.Connection, str]:
    """The `?sql=` of the request and a connection to run it on, once the caller may."""
    name = ctx.database
    sql = ctx.args.get("sql") or ""
    conn = ctx.ds.connection(name)  # 404 for an unknown database before anything else
    if not sql.strip():
        raise ApiError(400, "?sql= is required")
    ctx.ds.require(ctx.actor, "execute-sql", name,
                   message="You do not have permission to execute SQL against this database")
    conn, _ = ctx.open(name, conn=conn)
    execute.validate_select(sql)
    return conn, sql


def run_query(ctx: Context, conn: sqlite3.Connection, sql: str, *,
              query_name: str | None = None, stored: StoredQuery | None = None,
              max_bytes: int | None = None) -> QueryRun:
    """Run read-only `sql` with its `:named` parameters from the query string (the first of
    repeated ones, as 0.65 reads them; missing ones bind as ""). A stored query's declared
    `parameters` are its named parameters. In 1.0a41's format an SQL error's answer also
    carries `"rows": []` and `"truncated": false`, as 1.0a41 answers it."""
    params: dict[str, Any] = {}
    for key, value in ctx.args.items:
        if key not in ("sql", "_shape"):
            params.setdefault(key, value)
    # The statement is compiled once: the parameters it has are the ones the driver asks for
    # as it binds them (missing ones bind as "").
    bind = execute.Parameters({k: v for k, v in params.items() if not k.startswith("_")})
    start = time.perf_counter()
    try:
        result = execute.run(
            conn, sql, bind, time_limit_ms=ctx.ds.time_limit(ctx.args.get("_timelimit")),
            max_rows=ctx.ds.settings.max_returned_rows, max_bytes=max_bytes,
        )
    except ApiError as exc:
        if ctx.v10 and exc.status == 400:
            exc.extra = {"rows": [], "truncated": False, **exc.extra}
        raise
    names = bind.names()
    if stored is not None and stored.parameters:
        names = list(dict.fromkeys(list(stored.parameters) + names))
    for param in names:
        params.setdefault(param, "")
    named = {name: params.get(name) or "" for name in names if not name.startswith("_")}
    return QueryRun(sql, params, result, (time.perf_counter() - start) * 1000, query_name,
                    named=named, stored=stored)


def query(ctx: Context) -> Response:
    """`/<db>.json?sql=` (0.65's format unless the request asks for 1.0a41's) and
    `/<db>/-/query.json?sql=` (1.0a41's): read-only SQL."""
    names = extras.requested(ctx.args)
    if ctx.v10:
        extras.check(names, extras.QUERY)
    conn, sql = checked_sql(ctx)
    return render_query(ctx, run_query(ctx, conn, sql, max_bytes=answer_budget(ctx)), filename=ctx.database)


def answer_budget(ctx: Context) -> int:
    """What the rows of a query's answer may hold: the response budget, or for CSV its own
    cap (`max_csv_mb`, and `max_response_bytes` where set) - never more than the budget of a
    buffered answer."""
    budget = response_budget(ctx.ds.settings)
    if ctx.target.ext == "csv":
        csv_limit = byte_limit(ctx.ds.settings.max_csv_mb, ctx.ds.settings.max_response_bytes)
        return min(csv_limit, budget) if csv_limit else budget
    return budget


def render_query(ctx: Context, ran: QueryRun, *, filename: str) -> Response:
    """A query's answer in the requested format and shape."""
    shape = check_shape(ctx.args.get("_shape"))
    if shape == "object":
        raise ApiError(400, "_shape=object is only available on tables")
    result = ran.result
    if ctx.target.ext != "csv":
        # Too big for one answer (a Lambda answer is at most 6 MB; any answer is held in
        # memory): fewer rows, marked `truncated` as a capped result is, rather than a body
        # cut off mid-way.
        limit = response_budget(ctx.ds.settings)
        columns = result.columns
        if result.cut and not result.rows:
            raise row_too_big(limit)
        infinity = query_bool(ctx.args.get("_json_infinity"), "_json_infinity")

        def measured(page: QueryRun) -> list[Any]:
            rows = parse_json_columns(page.result.rows, columns, ctx.args.getlist("_json"))
            if shape == "arrayfirst":
                return [r[0] for r in rows]
            return as_objects(columns, with_base64_blobs(rows) if ctx.v10 else rows)

        def cut(page: QueryRun, keep: int) -> QueryRun:
            if keep < 1:
                raise row_too_big(limit)
            return replace(page, result=replace(page.result, rows=page.result.rows[:keep], truncated=True))

        return within_budget(
            ran, limit, worst=page_worst(result.text_bytes, len(result.rows), columns),
            rows=lambda page: len(page.result.rows), render=lambda page: _render_query(ctx, page, shape),
            without_rows=lambda page: replace(page, result=replace(page.result, rows=[])),
            measured=measured, cut=cut, too_big=lambda: row_too_big(limit), infinity=infinity,
        )
    rows = parse_json_columns(result.rows, result.columns, ctx.args.getlist("_json"))
    return csv_response(ctx, result.columns, [query_blob_links(ctx, result.columns, rows)],
                        filename=filename, cut=lambda: result.cut)


def answer_private(ctx: Context, ran: QueryRun) -> bool:
    """Datasette's `private` for a query's answer: this caller may run it and an anonymous
    caller could not (a stored query by its `view-query`, `?sql=` by `execute-sql`)."""
    if ran.stored is not None:
        return query_private(ctx, ran.stored)
    return extras.private(ctx, "execute-sql", ctx.database)


def _render_query(ctx: Context, ran: QueryRun, shape: str | None) -> Response:
    """One page of a query's answer in the format asked for: the rows-alone shapes as both
    formats give them, else 0.65's body (`_query_body`) or 1.0a41's (`_query_body_v10`)."""
    result = ran.result
    rows = parse_json_columns(result.rows, result.columns, ctx.args.getlist("_json"))
    if ctx.v10:
        rows = with_base64_blobs(rows)
    infinity = query_bool(ctx.args.get("_json_infinity"), "_json_infinity")
    headers = cache_control(ctx.args, ctx.ds.settings.default_cache_ttl)
    headers["Referrer-Policy"] = "no-referrer"
    alone = rows_alone(shape, result.columns, rows, nl=ctx.args.flag("_nl"), headers=headers,
                       infinity=infinity)
    if alone is not None:
        return alone
    body = (_query_body_v10 if ctx.v10 else _query_body)(ctx, ran, shape, rows)
    return json_response(body, headers=headers, infinity=infinity)


def _query_body(ctx: Context, ran: QueryRun, shape: str | None, rows: list[Any]) -> dict[str, Any]:
    """Datasette 0.65's query answer: `{"ok", "database", "query_name", "rows", "truncated",
    "columns", "query", "error", "private", "allow_execute_sql", "query_ms", <metadata>}`."""
    name, result = ctx.database, ran.result
    return {
        "ok": True,
        "database": name,
        "query_name": ran.query_name,
        "rows": as_objects(result.columns, rows) if shape == "objects" else rows,
        "truncated": result.truncated,
        "columns": result.columns,
        "query": {"sql": ran.sql, "params": ran.params},
        "error": None,
        "private": answer_private(ctx, ran),
        "allow_execute_sql": ctx.ds.can(ctx.actor, "execute-sql", name),
        "query_ms": ran.query_ms,
        **ctx.ds.metadata.about(),
    }


def _query_body_v10(ctx: Context, ran: QueryRun, shape: str | None, rows: list[Any]) -> dict[str, Any]:
    """Datasette 1.0a41's query answer: `{"ok", "rows", <the blocks `?_extra=` asked for>,
    "truncated"}`, rows as objects (`_shape=arrays`: lists), every BLOB already as
    `{"$base64": true, "encoded": ...}`."""
    name, result, stored = ctx.database, ran.result, ran.stored
    names = extras.requested(ctx.args)

    def metadata() -> dict[str, Any]:
        if stored is not None:
            return {k: v for k, v in stored.as_json().items() if k != "source"}
        return ctx.ds.metadata.database(name)

    providers: dict[str, Callable[[], Any]] = {
        "columns": lambda: result.columns,
        "render_cell": lambda: [{} for _ in rows],
        "debug": lambda: {"url_vars": {"database": name, "format": ctx.target.ext}},
        "request": lambda: extras.request_block(ctx),
        "query": lambda: {"sql": ran.sql, "params": ran.named or {}},
        "metadata": metadata,
        "extras": lambda: extras.extras_block(ctx, extras.QUERY, names),
        "database": lambda: name,
        "database_color": lambda: extras.database_color(name),
        "private": lambda: answer_private(ctx, ran),
    }
    return {
        "ok": True,
        "rows": rows if shape == "arrays" else as_objects(result.columns, rows),
        **extras.resolve(names, providers),
        "truncated": result.truncated,
    }


def query_blob_links(ctx: Context, columns: list[str], rows: list[Any]) -> list[Any]:
    """CSV cells for BLOBs in a query's answer: as in Datasette 0.65, a link to this query's
    `.blob` download of that column, the row found again by the value's SHA-256."""
    out = []
    path = ctx.path.rsplit(".", 1)[0] + ".blob"
    for row in rows:
        if any(isinstance(v, bytes) for v in row):
            row = tuple(
                ctx.absolute(path + "?" + ctx.args.replaced([
                    ("_blob_column", c), ("_blob_hash", hashlib.sha256(v).hexdigest())
                ]).query_string()) if isinstance(v, bytes) else v
                for c, v in zip(columns, row)
            )
        out.append(row)
    return out

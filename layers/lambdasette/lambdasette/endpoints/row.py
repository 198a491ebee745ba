"""Row pages: `/<db>/<table>/<pk>.json` and `.csv`."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints import extras
from lambdasette.endpoints.table import blob_links, get_table, row_path
from lambdasette.errors import ApiError
from lambdasette.query import execute
from lambdasette.query.quote import quote
from lambdasette.query.render import (
    MEASURE_FIRST,
    as_objects,
    check_shape,
    fitting,
    parse_json_columns,
    response_budget,
    with_base64_blobs,
    worst_size,
)
from lambdasette.query.schema import Table
from lambdasette.query.values import decode_component, from_url
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import csv_response
from lambdasette.web.responses import cache_control, json_response, rows_alone
from lambdasette.web.routing import split_format


@dataclass
class FoundRow:
    """The row a row URL names: its table, the columns selected (rowid first for a rowid
    table) and the values, and the key values from the URL, bound by column affinity."""

    table: Table
    columns: list[str]
    values: tuple[Any, ...]
    key_values: list[Any]
    conn: sqlite3.Connection
    time_limit: int
    sql: str = ""
    params: dict[str, Any] | None = None


def key_values(ctx: Context, tbl: Table) -> list[Any]:
    """The row's key values from its URL. Each is read as `next` tokens are (`values`): the
    text bound as the column's affinity would store it, or a typed `$...` component for a
    BLOB or NULL key. Typed components are taken from the raw path, where Datasette's own
    encoding never leaves a `$`."""
    keys = tbl.row_keys
    decoded = ctx.target.pk
    if len(decoded) != len(keys):
        raise ApiError(400, "URL row identifier does not match the primary key for this table")
    segments = ctx.path.strip("/").split("/")
    raw = split_format(segments[2])[0].split(",") if len(segments) > 2 else []
    if len(raw) != len(keys):
        raw = [""] * len(keys)
    out = []
    for key, text, part in zip(keys, decoded, raw):
        affinity = tbl.affinity(key)
        if part.startswith(("$", "%24")):
            out.append(decode_component(part.replace("%24", "$", 1), affinity))
        else:
            out.append(from_url(text, affinity))
    return out


def fetch_row(ctx: Context, *, checked_after: bool = False) -> FoundRow:
    """The row the URL names; 404 if there is none, 413 if it cannot fit in the response
    budget. `checked_after`: the caller checks the rendered answer against the budget
    (`row`), so only a row whose worst case is far over it is measured here."""
    conn, _, tbl = get_table(ctx)
    keys = tbl.row_keys
    missing = "Row not found" if ctx.v10 else "Record not found"  # each version's words
    if not keys:
        raise ApiError(404, missing)
    values = key_values(ctx, tbl)
    columns = (["rowid"] if tbl.uses_rowid else []) + tbl.columns
    select = ", ".join("rowid" if (c == "rowid" and tbl.uses_rowid) else quote(c) for c in columns)
    where = " and ".join(
        f"{'rowid' if k == 'rowid' else quote(k)} {'is' if v is None else '='} :p{i}"
        for i, (k, v) in enumerate(zip(keys, values))
    )
    params = {f"p{i}": v for i, v in enumerate(values)}
    time_limit = ctx.ds.time_limit(ctx.args.get("_timelimit"))
    sql = f"select {select} from {quote(tbl.name)} where {where}"
    budget = response_budget(ctx.ds.settings)
    result = execute.run(conn, sql, params, time_limit_ms=time_limit, max_bytes=budget)
    if not result.rows and not result.cut:
        raise ApiError(404, missing)
    # One row, held and rendered only if it fits the response budget (its worst case, then
    # exactly: 6 bytes a character where every one is a control character). Where the
    # rendered answer is checked after, rendering first costs less than measuring - unless
    # the worst case is so far over the budget that rendering could hold several of it.
    worst = worst_size(result.text_bytes, len(columns))
    measure = worst > (MEASURE_FIRST * budget if checked_after else budget)
    if result.cut or (measure and fitting([result.rows[0]], budget - 4096) < 1):
        raise row_larger(budget)
    return FoundRow(tbl, columns, result.rows[0], values, conn, time_limit, sql, params)


def row_larger(budget: int) -> ApiError:
    """The 413 for a row that cannot fit in the response budget."""
    return ApiError(413, f"This row is larger than max_response_bytes ({budget} bytes): "
                         "ask for some of its columns with ?sql=, or its BLOBs as .blob")


def row(ctx: Context) -> Response:
    """A row page: 0.65's body, or 1.0a41's with its `?_extra=` blocks (`render_row_v10`),
    or its CSV; a JSON answer over the response budget is the row's 413 (see `fetch_row`)."""
    response = _row(ctx)
    budget = response_budget(ctx.ds.settings)
    if ctx.target.ext != "csv" and len(response.body) > budget:
        raise row_larger(budget)
    return response


def _row(ctx: Context) -> Response:
    database = ctx.database
    ds, args = ctx.ds, ctx.args
    start = time.perf_counter()
    names = extras.requested(args)
    if ctx.v10:
        extras.check(names, extras.ROW)
    found = fetch_row(ctx, checked_after=ctx.target.ext != "csv")
    tbl, columns, keys, values = found.table, found.columns, found.table.row_keys, ctx.target.pk
    shape = check_shape(args.get("_shape"))
    infinity = query_bool(args.get("_json_infinity"), "_json_infinity")
    rows = parse_json_columns([found.values], columns, args.getlist("_json"))
    conn, time_limit = found.conn, found.time_limit
    headers = cache_control(args, ds.settings.default_cache_ttl)
    if ctx.target.ext == "csv":
        return csv_response(ctx, columns, [blob_links(ctx, tbl, columns, rows)], filename=tbl.name)
    if ctx.v10:
        return render_row_v10(ctx, found, rows, shape, names, headers, start, infinity=infinity)
    alone = rows_alone(shape, columns, rows, nl=False, headers=headers, infinity=infinity)
    if alone is not None:
        return alone
    objects = as_objects(columns, rows)
    if shape == "object":
        key = row_path(tbl, objects[0])
        return json_response({key: objects[0]}, headers=headers, infinity=infinity)
    body: dict[str, Any] = {
        "ok": True,
        "database": database,
        "table": tbl.name,
        "rows": objects if shape == "objects" else rows,
        "columns": columns,
        "primary_keys": keys,
        "primary_key_values": values,
        "units": ds.table_config(database, tbl.name).units,
        "query_ms": (time.perf_counter() - start) * 1000,
        **ctx.ds.metadata.about(),
    }
    legacy = set(",".join(args.getlist("_extras")).split(","))  # 0.65's name for `_extra`
    if "foreign_key_tables" in legacy:
        body["foreign_key_tables"] = foreign_key_tables(ctx, conn, tbl, objects[0], time_limit)
    return json_response(body, headers=headers, infinity=infinity)


def render_row_v10(ctx: Context, found: FoundRow, rows: list[tuple[Any, ...]], shape: str | None,
                   names: list[str], headers: dict[str, str], start: float, *,
                   infinity: bool) -> Response:
    """A row in Datasette 1.0a41's format: `{"ok", "database", "table", "rows": [{...}],
    "primary_keys", "primary_key_values", <the blocks `?_extra=` asked for>, "query_ms",
    "truncated"}`, every BLOB as `{"$base64": true, "encoded": ...}`."""
    tbl, columns, database = found.table, found.columns, ctx.database
    headers["Referrer-Policy"] = "no-referrer"
    shown = with_base64_blobs(rows)
    alone = rows_alone(shape, columns, shown, nl=False, headers=headers, infinity=infinity)
    if alone is not None:
        return alone
    objects = as_objects(columns, shown)
    if shape == "object":
        return json_response({row_path(tbl, as_objects(columns, rows)[0]): objects[0]},
                             headers=headers, infinity=infinity)
    wanted = set(names)
    assigned = ctx.ds.column_types(database, tbl) if wanted & {"column_types", "render_cell"} else {}
    providers: dict[str, Callable[[], Any]] = {
        "columns": lambda: columns,
        "primary_keys": lambda: tbl.row_keys,
        "column_details": lambda: extras.column_details(found.conn, tbl.name),
        "render_cell": lambda: extras.render_cells(columns, rows, assigned,
                                                   room=response_budget(ctx.ds.settings)),
        "debug": lambda: {"url_vars": {"database": database, "table": tbl.name,
                                       "pks": ",".join(ctx.target.pk), "format": ctx.target.ext},
                          "resolved": {"table": tbl.name, "sql": found.sql, "params": found.params,
                                       "pks": tbl.row_keys, "pk_values": ctx.target.pk}},
        "request": lambda: extras.request_block(ctx),
        "query": lambda: {"sql": found.sql, "params": found.params},
        "column_types": lambda: extras.column_types_block(assigned),
        "metadata": lambda: ctx.ds.metadata.resource(database, tbl.name),
        "extras": lambda: extras.extras_block(ctx, extras.ROW, names),
        "database": lambda: database,
        "table": lambda: tbl.name,
        "database_color": lambda: extras.database_color(database),
        "private": lambda: extras.private(ctx, "view-table", database, tbl.name),
        "foreign_key_tables": lambda: foreign_key_tables(ctx, found.conn, tbl,
                                                          as_objects(columns, rows)[0], found.time_limit),
    }
    body: dict[str, Any] = {
        "ok": True,
        "database": database,
        "table": tbl.name,
        "rows": shown if shape == "arrays" else objects,
        "primary_keys": tbl.row_keys,  # ["rowid"] for a rowid table, as 1.0a41 says
        "primary_key_values": ctx.target.pk,
        **extras.resolve(names, providers),
        "query_ms": (time.perf_counter() - start) * 1000,
        "truncated": False,
    }
    return json_response(body, headers=headers, infinity=infinity)


def foreign_key_tables(ctx: Context, conn: Any, tbl: Any, row: dict[str, Any],
                       time_limit: int) -> list[dict[str, Any]]:
    database = ctx.target.database or ""
    out = []
    for fk in tbl.incoming:
        value = row.get(fk["column"])
        sql = f"select count(*) from {quote(fk['other_table'])} where {quote(fk['other_column'])} = :v"
        try:
            count = execute.scalar(conn, sql, {"v": value}, time_limit_ms=time_limit)
        except ApiError:
            count = None
        link = (f"/{tilde_encode(database)}/{tilde_encode(fk['other_table'])}?"
                f"{fk['other_column']}={value}")
        out.append({**fk, "count": count, "link": link})
    return out


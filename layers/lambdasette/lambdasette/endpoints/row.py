"""Row pages: `/<db>/<table>/<pk>.json` and `.csv`."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints.table import blob_links, get_table, row_path
from lambdasette.errors import ApiError
from lambdasette.query import execute
from lambdasette.query.quote import quote
from lambdasette.query.render import as_objects, check_shape, parse_json_columns
from lambdasette.query.schema import Table
from lambdasette.query.values import decode_component, from_url
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import csv_response
from lambdasette.web.responses import cache_control, json_response
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


def fetch_row(ctx: Context) -> FoundRow:
    """The row the URL names; 404 if there is none."""
    conn, _, tbl = get_table(ctx)
    keys = tbl.row_keys
    if not keys:
        raise ApiError(404, "Record not found")
    values = key_values(ctx, tbl)
    columns = (["rowid"] if tbl.uses_rowid else []) + tbl.columns
    select = ", ".join("rowid" if (c == "rowid" and tbl.uses_rowid) else quote(c) for c in columns)
    where = " and ".join(
        f"{'rowid' if k == 'rowid' else quote(k)} {'is' if v is None else '='} :p{i}"
        for i, (k, v) in enumerate(zip(keys, values))
    )
    params = {f"p{i}": v for i, v in enumerate(values)}
    time_limit = ctx.ds.time_limit(ctx.args.get("_timelimit"))
    result = execute.run(conn, f"select {select} from {quote(tbl.name)} where {where}", params,
                         time_limit_ms=time_limit)
    if not result.rows:
        raise ApiError(404, "Record not found")
    return FoundRow(tbl, columns, result.rows[0], values, conn, time_limit)


def row(ctx: Context) -> Response:
    database = ctx.database
    ds, args = ctx.ds, ctx.args
    start = time.perf_counter()
    found = fetch_row(ctx)
    tbl, columns, keys, values = found.table, found.columns, found.table.row_keys, ctx.target.pk
    shape = check_shape(args.get("_shape"))
    infinity = query_bool(args.get("_json_infinity"), "_json_infinity")
    rows = parse_json_columns([found.values], columns, args.getlist("_json"))
    conn, time_limit = found.conn, found.time_limit
    headers = cache_control(args, ds.settings.default_cache_ttl)
    if ctx.target.ext == "csv":
        return csv_response(ctx, columns, [blob_links(ctx, tbl, columns, rows)], filename=tbl.name)
    objects = as_objects(columns, rows)
    if shape == "array":
        return json_response(objects, headers=headers, infinity=infinity)
    if shape == "arrayfirst":
        return json_response([r[0] for r in rows], headers=headers, infinity=infinity)
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
    extras = set(",".join(args.getlist("_extras") + args.getlist("_extra")).split(","))
    if "foreign_key_tables" in extras:
        body["foreign_key_tables"] = foreign_key_tables(ctx, conn, tbl, objects[0], time_limit)
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


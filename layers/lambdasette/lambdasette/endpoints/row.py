"""Row pages: `/<db>/<table>/<pk>.json` and `.csv`."""

from __future__ import annotations

import time
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints.table import get_table
from lambdasette.errors import ApiError
from lambdasette.query import execute
from lambdasette.query.quote import quote
from lambdasette.query.render import as_objects, check_shape, parse_json_columns
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import csv_response
from lambdasette.web.responses import cache_control, json_response


def row(ctx: Context) -> Response:
    database = ctx.target.database or ""
    conn, schema, tbl = get_table(ctx)
    ds, args = ctx.ds, ctx.args
    keys = tbl.row_keys
    if not keys:
        raise ApiError(404, "Record not found")
    values = ctx.target.pk
    if len(values) != len(keys):
        raise ApiError(400, "URL row identifier does not match the primary key for this table")
    shape = check_shape(args.get("_shape"))
    infinity = query_bool(args.get("_json_infinity"), "_json_infinity")
    columns = (["rowid"] if tbl.uses_rowid else []) + tbl.columns
    select = ", ".join("rowid" if (c == "rowid" and tbl.uses_rowid) else quote(c) for c in columns)
    where = " and ".join(
        f"{'rowid' if k == 'rowid' else quote(k)} = :p{i}" for i, k in enumerate(keys)
    )
    params = {f"p{i}": v for i, v in enumerate(values)}
    time_limit = ds.time_limit(args.get("_timelimit"))
    start = time.perf_counter()
    result = execute.run(conn, f"select {select} from {quote(tbl.name)} where {where}", params,
                        time_limit_ms=time_limit)
    if not result.rows:
        raise ApiError(404, "Record not found")
    rows = parse_json_columns(result.rows, columns, args.getlist("_json"))
    headers = cache_control(args, ds.settings.default_cache_ttl)
    if ctx.target.ext == "csv":
        return csv_response(ctx, columns, [rows], filename=tbl.name)
    objects = as_objects(columns, rows)
    if shape == "array":
        return json_response(objects, headers=headers, infinity=infinity)
    if shape == "arrayfirst":
        return json_response([r[0] for r in rows], headers=headers, infinity=infinity)
    if shape == "object":
        key = ",".join(tilde_encode(str(objects[0][k])) for k in keys)
        return json_response({key: objects[0]}, headers=headers, infinity=infinity)
    body: dict[str, Any] = {
        "ok": True,
        "database": database,
        "table": tbl.name,
        "rows": objects if shape == "objects" else rows,
        "columns": columns,
        "primary_keys": keys,
        "primary_key_values": values,
        "units": {},
        "query_ms": (time.perf_counter() - start) * 1000,
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


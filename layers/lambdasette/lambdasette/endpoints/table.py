"""Table and view pages: `/<db>/<table>.json` and `.csv`."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.responses import Response

from lambdasette.args import Args
from lambdasette.endpoints.canned import canned
from lambdasette.errors import ApiError
from lambdasette.query import execute, facets, labels
from lambdasette.query.csvout import labelled
from lambdasette.query.pagination import encode_token
from lambdasette.query.render import as_objects, check_shape, ndjson, parse_json_columns
from lambdasette.query.schema import Schema, Table
from lambdasette.query.table_plan import TablePlan, plan_table, walk
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import csv_response
from lambdasette.web.responses import cache_control, json_response, redirect

log = logging.getLogger("lambdasette")

TABLE_DENIED = "You do not have permission to view this table"
_FILTER_ARG = re.compile(r"^_filter_(column|op|value)_?(\d*)$")


def legacy_redirect(ctx: Context) -> Response | None:
    """Old-style arguments Datasette answers with a redirect to their modern form."""
    args = ctx.args
    path = ctx.path
    if any(_FILTER_ARG.match(k) for k, _ in args.items):
        groups: dict[str, dict[str, str]] = {}
        kept = []
        for k, v in args.items:
            m = _FILTER_ARG.match(k)
            if m:
                groups.setdefault(m.group(2), {})[m.group(1)] = v
            else:
                kept.append((k, v))
        for _, g in sorted(groups.items()):
            column, op = g.get("column"), g.get("op") or "exact"
            if column:
                if op.endswith("__x"):
                    op = op[:-3]
                kept.append((f"{column}__{op}" if op != "exact" else column, g.get("value", "")))
        qs = Args(kept).query_string()
        return redirect(path + (f"?{qs}" if qs else ""))
    if "_sort_by_desc" in args:
        sort = args.get("_sort")
        new = args.without("_sort_by_desc", "_sort")
        if sort:
            new = new.replaced([("_sort_desc", sort)])
        qs = new.query_string()
        return redirect(path + (f"?{qs}" if qs else ""))
    return None


def get_table(ctx: Context) -> tuple[sqlite3.Connection, Schema, Table]:
    database, name = ctx.target.database or "", ctx.target.table or ""
    conn = ctx.ds.connection(database)  # 404 for an unknown database before anything else
    # Checked before the lookup, so a caller cannot tell hidden tables from missing ones.
    ctx.ds.require(ctx.actor, "view-table", database, name, message=TABLE_DENIED)
    conn, schema = ctx.open(database, conn=conn)
    table = schema.get(name)
    if table is None:
        # A caller who may not view some table gets the same answer for a missing one: a
        # 404 here would tell the hidden names apart.
        if ctx.hides_tables:
            raise ApiError(403, TABLE_DENIED)
        raise ApiError(404, "Table not found")
    return conn, schema, table


def row_path(tbl: Table, row: dict[str, Any]) -> str:
    """The key part of a row's URL, `a,1` (a row's keys, written as `next` tokens write them,
    so that BLOB and NULL keys make URLs that find the row too)."""
    keys = tbl.row_keys
    return encode_token([_plain(row)[k] for k in keys], [tbl.affinity(k) for k in keys])


def blob_links(
    ctx: Context, tbl: Table, columns: list[str], rows: list[tuple[Any, ...]]
) -> list[tuple[Any, ...]]:
    """CSV cells for BLOBs: as in Datasette 0.65, a link to the row's `.blob` download of
    that column rather than the bytes themselves."""
    out = []
    base = f"/{tilde_encode(ctx.database)}/{tilde_encode(tbl.name)}/"
    for row in rows:
        if any(isinstance(v, bytes) for v in row):
            path = row_path(tbl, dict(zip(columns, row)))
            row = tuple(
                ctx.absolute(f"{base}{path}.blob?_blob_column={urllib.parse.quote_plus(c)}")
                if isinstance(v, bytes) else v
                for c, v in zip(columns, row)
            )
        out.append(row)
    return out


@dataclass
class TablePage:
    """One page of a table or view, built and not yet rendered: its rows (FK labels expanded,
    `_json` columns parsed), the count, facets and the way to the next page."""

    database: str
    table: Table
    plan: TablePlan
    columns: list[str]
    rows: list[tuple[Any, ...]]
    expanded: list[str]
    expandable: list[Any]
    count: int | None
    facets: facets.Facets
    next_token: str | None
    next_url: str | None
    query_ms: float
    # The rows as the page's SQL returned them (with the columns only pagination needs).
    raw_rows: list[tuple[Any, ...]] = field(default_factory=list)


def table(ctx: Context) -> Response:
    query = ctx.ds.canned_query(ctx.database, ctx.table)
    if query is not None:  # as in 0.65, a canned query's name comes before a table's
        return canned(ctx, query)
    if ctx.target.format == "jsono":
        path = ctx.path
        path = path[: -len(".jsono")] + ".json"
        qs = ctx.args.replaced([("_shape", "objects")]).query_string()
        return redirect(f"{path}?{qs}")
    redirected = legacy_redirect(ctx)
    if redirected is not None:
        return redirected
    conn, schema, tbl = get_table(ctx)
    shape = check_shape(ctx.args.get("_shape"))
    if ctx.args.getlist("_where") and not ctx.ds.can(ctx.actor, "execute-sql", ctx.database):
        raise ApiError(403, "_where= is not allowed")
    time_limit = ctx.ds.time_limit(ctx.args.get("_timelimit"))
    if ctx.target.ext == "csv":
        return table_csv(ctx, conn, schema, tbl, time_limit)
    infinity = query_bool(ctx.args.get("_json_infinity"), "_json_infinity")
    if shape == "object" and not tbl.pks:
        raise ApiError(400, "_shape=object not available for tables with no primary keys")
    page = build_page(ctx, conn, schema, tbl, time_limit,
                      # The bare shapes carry only rows: skip the count and facets nobody sees.
                      envelope=shape not in ("array", "arrayfirst", "object"))
    response = render_page(ctx, page, shape, infinity=infinity)
    limit = ctx.ds.settings.max_response_bytes
    while limit and len(response.body) > limit:
        # Too big for one answer (a Lambda answer is at most 6 MB): a smaller page, whose
        # `next` resumes where it stops, tells the truth; a cut-off body would not.
        keep = min(len(page.rows) - 1, int(len(page.rows) * limit / len(response.body) * 0.9))
        if keep < 1:
            raise ApiError(413, f"A single row of this page is larger than max_response_bytes "
                                f"({limit} bytes): choose fewer columns with _col= or _nocol=")
        log.info("%s: %d rows are %d bytes, over max_response_bytes; answering %d rows",
                 ctx.path, len(page.rows), len(response.body), keep)
        page = shorter(ctx, page, keep)
        response = render_page(ctx, page, shape, infinity=infinity)
    return response


def shorter(ctx: Context, page: TablePage, keep: int) -> TablePage:
    """`page` cut to its first `keep` rows, its next page starting after them."""
    token = page.plan.next_token(page.raw_rows[keep - 1], index=keep - 1)
    return replace(page, rows=page.rows[:keep], raw_rows=page.raw_rows[:keep], next_token=token,
                   next_url=next_url(ctx, page.plan, token))


def next_url(ctx: Context, plan: TablePlan, token: str) -> str:
    """This page's URL with `_next=token`, the sort argument last (as 0.65 writes it)."""
    updates: list[tuple[str, str | None]] = [("_next", token)]
    if plan.sort:
        updates.append(("_sort_desc" if plan.sort_desc else "_sort", plan.sort))
        updates.insert(0, ("_sort" if plan.sort_desc else "_sort_desc", None))
    return ctx.url(ctx.args.replaced(updates))


def build_page(
    ctx: Context, conn: sqlite3.Connection, schema: Schema, tbl: Table, time_limit: int, *,
    envelope: bool,
) -> TablePage:
    """Run the page's query and everything around it: the count and facets (only for an
    `envelope`, the shapes that show them), labels, `_json` columns and the next page."""
    ds, args, database = ctx.ds, ctx.args, ctx.database
    config = ds.table_config(database, tbl.name)
    plan = plan_table(tbl, schema, args, ds.settings, config)
    start = time.perf_counter()
    result = execute.run(conn, plan.page_sql(plan.size + 1), plan.page_params, time_limit_ms=time_limit)
    rows = result.rows
    next_token = None
    if plan.size and len(rows) > plan.size:
        next_token = plan.next_token(rows[plan.size - 1])
    raw_rows = rows[: plan.size]
    rows = plan.visible(raw_rows)
    columns = plan.columns
    count = None
    if envelope and not args.flag("_nocount"):
        count = ds.count(database, conn, plan.count_sql(), plan.params, time_limit)
    expand = labels.requested(tbl, args, columns)
    rows = labels.expand_rows(conn, schema, ds.metadata, database, tbl, columns, rows, expand, time_limit)
    rows = parse_json_columns(rows, columns, args.getlist("_json"))
    found = facets.Facets()
    if envelope:
        facet_page = facets.FacetPage(
            database=database, args=args, settings=ds.settings, metadata=ds.metadata, url=ctx.url,
            cached=lambda key, compute: ds.cached(database, key, compute), path=ctx.relative,
        )
        found = facets.compute(facet_page, conn, schema, tbl, plan, config, count)
    return TablePage(
        database=database, table=tbl, plan=plan, columns=columns, rows=rows, expanded=expand,
        expandable=labels.expandable(schema, ds.metadata, database, tbl) if envelope else [],
        count=count, facets=found, next_token=next_token, raw_rows=raw_rows,
        next_url=next_url(ctx, plan, next_token) if next_token is not None else None,
        query_ms=(time.perf_counter() - start) * 1000,
    )


def render_page(ctx: Context, page: TablePage, shape: str | None, *, infinity: bool) -> Response:
    """A built page in the requested `_shape` (the 0.65 object by default)."""
    args = ctx.args
    headers = cache_control(args, ctx.ds.settings.default_cache_ttl)
    headers["Referrer-Policy"] = "no-referrer"
    if page.next_url is not None:
        headers["Link"] = f'<{page.next_url}>; rel="next"'
    columns, rows = page.columns, page.rows
    if shape == "arrayfirst":
        return json_response([r[0] for r in rows], headers=headers, infinity=infinity)
    if shape == "object":
        keyed = {row_path(page.table, o): o for o in as_objects(columns, rows)}
        return json_response(keyed, headers=headers, infinity=infinity)
    if shape == "array":
        if args.flag("_nl"):
            return Response(ndjson(columns, rows, infinity=infinity), headers=headers,
                            media_type="text/plain")
        return json_response(as_objects(columns, rows), headers=headers, infinity=infinity)
    plan, tbl = page.plan, page.table
    body = {
        "ok": True,
        "database": page.database,
        "table": tbl.name,
        "is_view": tbl.is_view,
        "human_description_en": plan.human,
        # Datasette 0.65 returns expanded rows as objects whatever the shape.
        "rows": as_objects(columns, rows) if shape == "objects" or page.expanded else rows,
        "truncated": False,
        "filtered_table_rows_count": page.count,
        "expanded_columns": page.expanded,
        "expandable_columns": page.expandable,
        "columns": columns,
        "primary_keys": tbl.pks,
        "units": ctx.ds.table_config(page.database, tbl.name).units,
        "query": {"sql": plan.page_sql(plan.size + 1), "params": plan.page_params},
        "facet_results": page.facets.results,
        "suggested_facets": page.facets.suggested,
        **({"facets_timed_out": page.facets.timed_out} if page.facets.timed_out else {}),
        "next": page.next_token,
        "next_url": page.next_url,
        "private": False,
        "allow_execute_sql": ctx.ds.can(ctx.actor, "execute-sql", page.database),
        "query_ms": page.query_ms,
        **ctx.ds.metadata.about(),
    }
    return json_response(body, headers=headers, infinity=infinity)


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in row.items()}



def table_csv(
    ctx: Context, conn: sqlite3.Connection, schema: Schema, tbl: Table, time_limit: int
) -> Response:
    """A table page as CSV; with `_stream=on` every page of it, walked from the plan."""
    ds, args = ctx.ds, ctx.args
    database = ctx.database
    stream = args.flag("_stream")
    if stream and not ds.settings.allow_csv_stream:
        raise ApiError(400, "CSV streaming is disabled")
    if stream and args.get("_next"):
        raise ApiError(400, "_next not allowed for CSV streaming")
    config = ds.table_config(database, tbl.name)
    size = ds.settings.max_returned_rows if stream else None
    owned = None
    if stream:
        # A stream outlives this call and is iterated from worker threads: give it its own
        # connection rather than this thread's shared one.
        owned = ds.storage.connect(database)
        conn, schema = ctx.open(database, conn=owned)
    try:
        plan = plan_table(tbl, schema, args, ds.settings, config, size=size)
        # Fetch the first page now so that bad input is a clean 4xx before streaming starts.
        first = execute.run(conn, plan.page_sql(plan.size + 1), plan.page_params,
                            time_limit_ms=time_limit).rows
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    expand = labels.requested(tbl, args, plan.columns)
    headers: dict[str, str] = {}
    if not stream and plan.size and len(first) > plan.size:
        token = plan.next_token(first[plan.size - 1])
        headers["Link"] = f'<{ctx.url(args.replaced([("_next", token)]))}>; rel="next"'
    header = plan.columns
    if expand:
        header, _ = labelled(plan.columns, [], set(expand))

    def pages() -> Iterator[list[Any]]:
        walked = walk(conn, plan, time_limit, first) if stream else iter([first[: plan.size]])
        for rows in walked:
            rows = blob_links(ctx, tbl, plan.columns, plan.visible(rows))
            rows = labels.expand_rows(conn, schema, ds.metadata, database, tbl, plan.columns,
                                      rows, expand, time_limit)
            if expand:
                _, rows = labelled(plan.columns, rows, set(expand))
            yield rows

    return csv_response(ctx, header, pages(), filename=tbl.name, stream=stream, headers=headers,
                        close=owned.close if owned is not None else None)


def table_schema(ctx: Context) -> Response:
    """1.0a41's `/<db>/<table>/-/schema.json`: the table's or view's CREATE statement."""
    conn, _, tbl = get_table(ctx)
    sql = execute.scalar(conn, "select sql from sqlite_master where name = :name and type in "
                               "('table', 'view')", {"name": tbl.name}, time_limit_ms=None)
    return json_response({"ok": True, "database": ctx.database, "table": tbl.name, "schema": sql})

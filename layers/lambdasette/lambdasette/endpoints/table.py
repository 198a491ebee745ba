"""Table and view pages: `/<db>/<table>.json` and `.csv`."""

from __future__ import annotations

import logging
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from typing import Any

from starlette.responses import Response

from lambdasette import column_types
from lambdasette.args import Args
from lambdasette.endpoints import extras
from lambdasette.endpoints.canned import canned
from lambdasette.endpoints.database import answer_budget
from lambdasette.errors import ApiError
from lambdasette.instance import from_metadata
from lambdasette.query import execute, facets, labels
from lambdasette.query.csvout import labelled
from lambdasette.query.internal import StoredQuery
from lambdasette.query.pagination import encode_token
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
from lambdasette.query.schema import Schema, Table
from lambdasette.query.table_plan import TablePlan, plan_table, walk
from lambdasette.settings import query_bool
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.csvresponse import byte_limit, csv_response
from lambdasette.web.responses import cache_control, json_response, redirect, rows_alone

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
    # The schema as the caller may see it.
    schema: Schema | None = None
    # The text and BLOB bytes of the rows, labels included: what bounds their JSON.
    text_bytes: int = 0


def table_or_query(ctx: Context) -> tuple[sqlite3.Connection, Schema, Table] | StoredQuery | Response:
    """What `/<db>/<name>` names, for the JSON answer and the page alike: a named query, a
    table or view as `get_table` gives it, or a redirect (`.jsono`, a legacy URL).

    As in 0.65, a metadata query's name comes before a table's; as in 1.0a41, a table's
    before a stored query's (storing one with a table's name is refused, but a table may be
    created later) - so stored queries are only looked for where no table is. Raises
    `get_table`'s ApiError (403/404) where there is neither; someone else's private query
    answers exactly as a missing table does."""
    configured = ctx.ds.metadata.queries(ctx.database).get(ctx.table)
    if configured is not None:
        return from_metadata(ctx.database, configured)
    if ctx.target.format == "jsono":
        path = ctx.path[: -len(".jsono")] + ".json"
        return redirect(f"{path}?{ctx.args.replaced([('_shape', 'objects')]).query_string()}")
    redirected = legacy_redirect(ctx)
    if redirected is not None:
        return redirected
    try:
        return get_table(ctx)
    except ApiError as exc:
        stored = ctx.ds.stored_queries(ctx.database).get(ctx.table) if exc.status in (403, 404) else None
        if stored is None or not ctx.ds.query_allowed(ctx.actor, "view-query", stored):
            raise
        return stored


def table(ctx: Context) -> Response:
    """A table or view page (or a named query of that name): built once (`build_page`), then
    rendered in 0.65's format (`render_page`) or 1.0a41's (`render_page_v10`)."""
    found = table_or_query(ctx)
    if isinstance(found, Response):
        return found
    if isinstance(found, StoredQuery):
        return canned(ctx, found)
    conn, schema, tbl = found
    shape = check_shape(ctx.args.get("_shape"))
    names = extras.requested(ctx.args)
    if ctx.v10:
        extras.check(names, extras.TABLE)
    if ctx.args.getlist("_where") and not ctx.ds.can(ctx.actor, "execute-sql", ctx.database):
        raise ApiError(403, "_where= is not allowed")
    time_limit = ctx.ds.time_limit(ctx.args.get("_timelimit"))
    if ctx.target.ext == "csv":
        return table_csv(ctx, conn, schema, tbl, time_limit)
    infinity = query_bool(ctx.args.get("_json_infinity"), "_json_infinity")
    if shape == "object" and not tbl.pks:
        raise ApiError(400, "_shape=object not available for tables with no primary keys")
    # The bare shapes carry only rows: skip the count and facets nobody sees.
    envelope = shape not in ("array", "arrayfirst", "object")
    work = v10_work(ctx.args, names, envelope) if ctx.v10 else None

    def render(page: TablePage) -> Response:
        if ctx.v10:
            return render_page_v10(ctx, conn, page, shape, names, infinity=infinity)
        return render_page(ctx, page, shape, infinity=infinity)

    limit = response_budget(ctx.ds.settings)
    page = build_page(ctx, conn, schema, tbl, time_limit, envelope=envelope, work=work, max_bytes=limit)
    # Too big for one answer (a Lambda answer is at most 6 MB; any answer is held in memory):
    # a smaller page, whose `next` resumes where it stops, tells the truth; a cut-off body
    # would not.
    return within_budget(
        page, limit, worst=page_worst(page.text_bytes, len(page.rows), page.columns),
        rows=lambda p: len(p.rows), render=render, without_rows=lambda p: replace(p, rows=[], raw_rows=[]),
        measured=lambda p: measured(p.columns, p.rows, shape, v10=ctx.v10),
        cut=lambda p, keep: cut(ctx, p, keep, limit), too_big=lambda: blocks_too_big(limit),
        infinity=infinity,
    )


def blocks_too_big(limit: int) -> ApiError:
    return ApiError(413, f"This page's facets and other blocks alone are larger than max_response_bytes "
                         f"({limit} bytes): ask for fewer (_facet_size=, fewer _facet= or _extra=)")


def cut(ctx: Context, page: TablePage, keep: int, limit: int) -> TablePage:
    """`page` cut to `keep` rows (logged), or a 413 when not even one row fits."""
    if keep < 1:
        raise row_too_big(limit, table=True)
    log.info("%s: %d rows are over the response budget (%d bytes); answering %d rows",
             ctx.path, len(page.rows), limit, keep)
    return shorter(ctx, page, keep)


def measured(columns: list[str], rows: list[Any], shape: str | None, *, v10: bool) -> list[Any]:
    """The rows in the form they are measured in for the response budget: as they render, or
    larger (objects where a shape renders lists, keys included)."""
    if shape == "arrayfirst":
        return [r[0] for r in rows]
    return as_objects(columns, with_base64_blobs(rows) if v10 else rows)


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


@dataclass(frozen=True)
class PageWork:
    """What a page computes besides its rows: the count (`count_cap`: counting stops after
    that many rows), facets and facet suggestions."""

    count: bool = True
    count_cap: int | None = None
    facets: bool = True
    suggest: bool = True


# What one facet's values may hold: this share of the response budget (with toggle URLs,
# which can be several times a value's size, facets stay within the budget's order).
FACET_SHARE = 16
# 1.0a41 counts a page's rows up to 10,000 and says when there were more (`count_truncated`).
COUNT_LIMIT = 10_000
_FACET_EXTRAS = ("facet_results", "facets_timed_out", "sorted_facet_results")


def v10_work(args: Args, names: list[str], envelope: bool) -> PageWork:
    """What a 1.0a41 page computes: only the blocks asked for (`?_extra=`). Any `_facet...`
    argument asks for `facet_results` (as in 1.0a41); the bare shapes compute nothing."""
    if not envelope:
        return PageWork(count=False, facets=False, suggest=False)
    facet_args = any(k == "_facet" or k.startswith("_facet_") for k, _ in args.items)
    return PageWork(
        count="count" in names or "count_truncated" in names,
        count_cap=COUNT_LIMIT + 1,
        facets=facet_args or any(n in names for n in _FACET_EXTRAS),
        suggest="suggested_facets" in names and not args.get("_next"),
    )


def build_page(
    ctx: Context, conn: sqlite3.Connection, schema: Schema, tbl: Table, time_limit: int, *,
    envelope: bool, work: PageWork | None = None, max_bytes: int | None = None,
) -> TablePage:
    """Run the page's query and everything around it: the count and facets (by default only
    for an `envelope`, the shapes that show them; `work` says exactly what), labels, `_json`
    columns and the next page. Both formats render from what this builds. Rows stop before
    their text passes `max_bytes` (the page is then shorter, with a `next`)."""
    ds, args, database = ctx.ds, ctx.args, ctx.database
    if work is None:
        work = PageWork() if envelope else PageWork(count=False, facets=False, suggest=False)
    config = ds.table_config(database, tbl.name)
    plan = plan_table(tbl, schema, args, ds.settings, config)
    start = time.perf_counter()
    result = execute.run(conn, plan.page_sql(plan.size + 1), plan.page_params, time_limit_ms=time_limit,
                         max_bytes=max_bytes)
    rows = result.rows
    next_token = None
    if result.cut:
        # The rows' text reached the response budget: the page ends at the last whole row.
        if not rows:
            raise row_too_big(max_bytes or 0, table=True)
        rows = rows[: plan.size] if plan.size else rows
        next_token = plan.next_token(rows[-1], index=len(rows) - 1)
    elif plan.size and len(rows) > plan.size:
        next_token = plan.next_token(rows[plan.size - 1])
    raw_rows = rows[: plan.size]
    rows = plan.visible(raw_rows)
    columns = plan.columns
    count = None
    if work.count and not args.flag("_nocount"):
        count = ds.count(database, conn, plan.count_sql(work.count_cap), plan.params, time_limit)
    expand = labels.requested(tbl, args, columns)
    rows = labels.expand_rows(conn, schema, ds.metadata, database, tbl, columns, rows, expand, time_limit)
    text_bytes = result.text_bytes + (labels.label_bytes(rows) if expand else 0)
    rows = parse_json_columns(rows, columns, args.getlist("_json"))
    found = facets.Facets()
    if work.facets or work.suggest:
        facet_page = facets.FacetPage(
            database=database, args=args, settings=ds.settings, metadata=ds.metadata, url=ctx.url,
            cached=lambda key, compute: ds.cached(database, key, compute), path=ctx.relative,
            max_bytes=max_bytes // FACET_SHARE if max_bytes else None,
        )
        found = facets.compute(facet_page, conn, schema, tbl, plan, config, count,
                               facets_wanted=work.facets, suggestions=work.suggest)
    return TablePage(
        database=database, table=tbl, plan=plan, columns=columns, rows=rows, expanded=expand,
        expandable=labels.expandable(schema, ds.metadata, database, tbl) if envelope else [],
        count=count, facets=found, next_token=next_token, raw_rows=raw_rows, schema=schema,
        next_url=next_url(ctx, plan, next_token) if next_token is not None else None,
        query_ms=(time.perf_counter() - start) * 1000, text_bytes=text_bytes,
    )


def render_page(ctx: Context, page: TablePage, shape: str | None, *, infinity: bool) -> Response:
    """A built page in the requested `_shape` (the 0.65 object by default)."""
    args = ctx.args
    headers = cache_control(args, ctx.ds.settings.default_cache_ttl)
    headers["Referrer-Policy"] = "no-referrer"
    if page.next_url is not None:
        headers["Link"] = f'<{page.next_url}>; rel="next"'
    columns, rows = page.columns, page.rows
    alone = rows_alone(shape, columns, rows, nl=args.flag("_nl"), headers=headers, infinity=infinity)
    if alone is not None:
        return alone
    if shape == "object":
        keyed = {row_path(page.table, o): o for o in as_objects(columns, rows)}
        return json_response(keyed, headers=headers, infinity=infinity)
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


def render_page_v10(ctx: Context, conn: sqlite3.Connection, page: TablePage, shape: str | None,
                    names: list[str], *, infinity: bool) -> Response:
    """A built page in Datasette 1.0a41's format: `{"ok", "next", "next_url", <the blocks
    `?_extra=` asked for>, "rows", "truncated"}`, rows as objects (`_shape=arrays`: lists)
    and every BLOB as `{"$base64": true, "encoded": ...}`; the bare shapes as in 0.65."""
    args, ds = ctx.args, ctx.ds
    headers = cache_control(args, ds.settings.default_cache_ttl)
    headers["Referrer-Policy"] = "no-referrer"
    if page.next_url is not None:
        headers["Link"] = f'<{page.next_url}>; rel="next"'
    columns, rows = page.columns, with_base64_blobs(page.rows)
    alone = rows_alone(shape, columns, rows, nl=args.flag("_nl"), headers=headers, infinity=infinity)
    if alone is not None:
        return alone
    if shape == "object":
        keyed = {row_path(page.table, o): o for o in as_objects(columns, page.rows)}
        return json_response({k: with_base64_blobs([v])[0] for k, v in keyed.items()},
                             headers=headers, infinity=infinity)
    body: dict[str, Any] = {"ok": True, "next": page.next_token, "next_url": page.next_url}
    wanted = list(names)
    if "count" in wanted and "count_truncated" not in wanted:
        wanted.append("count_truncated")  # as 1.0a41 adds it
    if any(k == "_facet" or k.startswith("_facet_") for k, _ in args.items) and "facet_results" not in wanted:
        wanted.append("facet_results")
    body.update(extras.resolve(wanted, table_extras(ctx, conn, page, wanted)))
    body["rows"] = rows if shape == "arrays" else as_objects(columns, rows)
    body["truncated"] = False
    return json_response(body, headers=headers, infinity=infinity)


def table_extras(ctx: Context, conn: sqlite3.Connection, page: TablePage,
                 names: list[str]) -> dict[str, Callable[[], Any]]:
    """How a table page computes each of 1.0a41's `?_extra=` blocks (called only for those
    asked for)."""
    ds, args, database, tbl, plan = ctx.ds, ctx.args, page.database, page.table, page.plan
    name = tbl.name
    assigned = ds.column_types(database, tbl) if {"column_types", "display_columns", "render_cell",
                                                  "set_column_type_ui"} & set(names) else {}

    def facet_list() -> list[Any]:
        return sorted_facets(page.facets.results, ds.table_config(database, name).facets)

    def definition(kind: str) -> str | None:
        if tbl.is_view != (kind == "view"):
            return None
        from lambdasette.endpoints.schema import definition as create_statement

        return create_statement(ctx, database, name, kind, page.schema or ctx.open(database)[1])

    return {
        "count": lambda: page.count,
        "count_truncated": lambda: page.count is not None and page.count > COUNT_LIMIT,
        "count_sql": lambda: plan.count_sql(),
        "facet_results": lambda: {"results": page.facets.results, "timed_out": page.facets.timed_out},
        "facets_timed_out": lambda: page.facets.timed_out,
        "suggested_facets": lambda: page.facets.suggested,
        "human_description_en": lambda: plan.human,
        "columns": lambda: page.columns,
        "all_columns": lambda: list(tbl.columns),
        "primary_keys": lambda: tbl.pks,
        "column_details": lambda: extras.column_details(conn, name),
        "display_columns": lambda: display_columns(ctx, page, assigned),
        "render_cell": lambda: extras.render_cells(page.columns, page.rows, assigned,
                                                   room=response_budget(ds.settings)),
        "debug": lambda: {"url_vars": {"database": database, "table": name, "format": ctx.target.ext},
                          "nofacet": args.get("_nofacet"), "nosuggest": args.get("_nosuggest")},
        "request": lambda: extras.request_block(ctx),
        "query": lambda: {"sql": plan.page_sql(plan.size + 1), "params": plan.page_params},
        "column_types": lambda: extras.column_types_block(assigned),
        "set_column_type_ui": lambda: set_column_type_ui(ctx, tbl, assigned),
        "metadata": lambda: ds.metadata.resource(database, name),
        "extras": lambda: extras.extras_block(ctx, extras.TABLE, names),
        "database": lambda: database,
        "table": lambda: name,
        "database_color": lambda: extras.database_color(database),
        "renderers": lambda: {"json": ctx.relative(args)},
        "custom_table_templates": lambda: [
            f"_table-{extras.css_class(database)}-{extras.css_class(name)}.html",
            f"_table-table-{extras.css_class(database)}-{extras.css_class(name)}.html",
            "_table.html",
        ],
        "sorted_facet_results": facet_list,
        "table_definition": lambda: definition("table"),
        "view_definition": lambda: definition("view"),
        "is_view": lambda: tbl.is_view,
        "private": lambda: extras.private(ctx, "view-table", database, name),
        "expandable_columns": lambda: page.expandable,
        "form_hidden_args": lambda: [
            [k, v] for k, v in args.items
            if k.startswith("_") and k not in ("_sort", "_sort_desc", "_search", "_next") and "__" not in k
        ],
    }


def sorted_facets(results: dict[str, Any], configured: list[Any]) -> list[Any]:
    """1.0a41's `sorted_facet_results`: configured facets first, in their order, then the
    others by number of results (then name), most first."""
    order: dict[str, int] = {}
    for item in configured:
        if isinstance(item, str):
            order.setdefault(item, len(order))
        elif isinstance(item, dict) and item:
            order.setdefault(str(list(item.values())[0]), len(order))
    listed = [f for f in results.values() if f["name"] in order]
    others = [f for f in results.values() if f["name"] not in order]
    listed.sort(key=lambda f: order[f["name"]])
    others.sort(key=lambda f: (len(f["results"]), f["name"]), reverse=True)
    return listed + others


def display_columns(ctx: Context, page: TablePage, assigned: dict[str, tuple[str, Any]]) -> list[Any]:
    """1.0a41's `display_columns`: per column shown, whether it sorts and is a key, its type
    and NOT NULL; other than keys also its description and column type."""
    tbl = page.table
    config = ctx.ds.table_config(page.database, tbl.name)
    sortable = set(config.sortable_columns) if config.sortable_columns is not None else None
    described = ctx.ds.metadata.resource(page.database, tbl.name)["columns"]
    keys = tbl.pks or ["rowid"]
    out = []
    for column in page.columns:
        entry: dict[str, Any] = {
            "name": column,
            "sortable": sortable is None or column in sortable,
            "is_pk": column in keys,
            "type": tbl.column_types.get(column, "integer" if column == "rowid" else ""),
            "notnull": int(column in tbl.not_null),
        }
        if column not in keys:
            kind = assigned.get(column)
            entry.update({"description": described.get(column),
                          "column_type": kind[0] if kind else None,
                          "column_type_config": kind[1] if kind else None})
        out.append(entry)
    return out


def set_column_type_ui(ctx: Context, tbl: Table, assigned: dict[str, tuple[str, Any]]) -> Any:
    """1.0a41's `set_column_type_ui`: for a caller who may set column types on this table,
    the endpoint's path and, per column, its current type and the types that fit it."""
    if tbl.is_view or not ctx.ds.can(ctx.actor, "set-column-type", ctx.database, tbl.name):
        return None
    columns = {}
    for column in tbl.columns:
        current = assigned.get(column)
        declared = tbl.column_types.get(column, "")
        columns[column] = {
            "current": {"type": current[0], "config": current[1]} if current else None,
            "options": [{"name": kind.name, "description": kind.description}
                        for _, kind in sorted(column_types.TYPES.items()) if kind.applies_to(declared)],
        }
    return {"path": f"/{tilde_encode(ctx.database)}/{tilde_encode(tbl.name)}/-/set-column-type",
            "columns": columns}


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
    # What one page's rows may hold: the answer's cap (a buffered answer's is also the
    # response budget); a stream's pages each at most the response budget (it is not held).
    csv_limit = byte_limit(ds.settings.max_csv_mb, ds.settings.max_response_bytes)
    max_bytes = answer_budget(ctx)
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
                            time_limit_ms=time_limit, max_bytes=max_bytes)
    except BaseException:
        if owned is not None:
            owned.close()
        raise
    expand = labels.requested(tbl, args, plan.columns)
    headers: dict[str, str] = {}
    if not stream and first.cut and first.rows:
        token = plan.next_token(first.rows[-1], index=len(first.rows) - 1)
        headers["Link"] = f'<{ctx.url(args.replaced([("_next", token)]))}>; rel="next"'
    elif not stream and plan.size and len(first.rows) > plan.size:
        token = plan.next_token(first.rows[plan.size - 1])
        headers["Link"] = f'<{ctx.url(args.replaced([("_next", token)]))}>; rel="next"'
    header = plan.columns
    if expand:
        header, _ = labelled(plan.columns, [], set(expand))
    # Every page of a stream draws from this request's one deadline (B09), the time it waits
    # for its client between pages left out (`pause`).
    deadline = ctx.deadline
    stopped = [first.cut and not stream]

    def pages() -> Iterator[list[Any]]:
        walked = (walk(conn, plan, time_limit, first, max_bytes=max_bytes) if stream
                  else iter([first.rows[: plan.size]]))
        while True:
            if deadline is not None:
                deadline.resume()
            try:
                with deadline.current() if deadline is not None else nullcontext():
                    rows = next(walked, None)
                    if rows is None:
                        return
                    rows = blob_links(ctx, tbl, plan.columns, plan.visible(rows))
                    rows = labels.expand_rows(conn, schema, ds.metadata, database, tbl, plan.columns,
                                              rows, expand, time_limit)
            except ApiError as exc:
                if deadline is not None and deadline.spent and exc.title == "SQL Interrupted":
                    raise stream_stopped(deadline) from None
                if exc.status == 413 and csv_limit and max_bytes >= csv_limit:
                    stopped[0] = True  # a row over the export's cap: it ends as one that is
                    return
                raise
            finally:
                if deadline is not None:
                    deadline.pause()
            if expand:
                _, rows = labelled(plan.columns, rows, set(expand))
            yield rows

    if deadline is not None:
        deadline.pause()  # the first page is fetched; the rest is the client's pace
    return csv_response(ctx, header, pages(), filename=tbl.name, stream=stream, headers=headers,
                        close=owned.close if owned is not None else None, cut=lambda: stopped[0])


def stream_stopped(deadline: execute.Deadline) -> ApiError:
    """The line a CSV export ends with when its time is spent."""
    if deadline.cancelled:
        return ApiError(400, "CSV export stopped: the client went away")
    return ApiError(400, f"CSV export stopped: its queries took more than {deadline.budget_ms} ms, "
                         f"this request's time limit ({execute.REQUEST_TIME_LIMITS} x sql_time_limit_ms)",
                    title="SQL Interrupted")


def count(ctx: Context) -> Response:
    """1.0a41's `POST /<db>/<table>/-/count`: the exact number of rows the table page's
    filters (from the query string: column filters, `_search`, `_where`, `_through`) select,
    uncounted by any cap: `{"ok": true, "count": N}`, never cached. Running out of
    `sql_time_limit_ms` is a 400."""
    conn, schema, tbl = get_table(ctx)
    if ctx.args.getlist("_where") and not ctx.ds.can(ctx.actor, "execute-sql", ctx.database):
        raise ApiError(403, "_where= is not allowed")
    plan = plan_table(tbl, schema, ctx.args, ctx.ds.settings, ctx.ds.table_config(ctx.database, tbl.name))
    found = execute.scalar(conn, plan.count_sql(), plan.params,
                           time_limit_ms=ctx.ds.time_limit(ctx.args.get("_timelimit")))
    return json_response({"ok": True, "count": found}, headers={"Cache-Control": "no-store"})

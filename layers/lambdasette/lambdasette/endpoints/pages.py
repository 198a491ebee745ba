"""The pages a browser sees at the JSON API's own URLs (Datasette's URLs, without `.json`):
the instance (`/`), a database (`/<db>`, and its SQL results with `?sql=`), a table or view
(`/<db>/<table>`) and a row (`/<db>/<table>/<pk>`).

Each page runs exactly what its JSON answer runs - the same permission checks, the same
page of rows - and links to the JSON and CSV of that very view. Values reach the templates
as plain data; the templates escape every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints import canned
from lambdasette.endpoints import database as database_endpoint
from lambdasette.endpoints.database import table_summaries
from lambdasette.endpoints.openapi import table_tag
from lambdasette.endpoints.row import fetch_row
from lambdasette.endpoints.table import build_page, cut, row_path, table_or_query
from lambdasette.errors import ApiError
from lambdasette.query.internal import StoredQuery
from lambdasette.query.render import BYTES_PER_CHAR, parse_json_columns, response_budget, row_too_big
from lambdasette.query.schema import Table
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.html import render

# A cell's text is cut here on pages (the JSON has it whole).
MAX_CELL = 2000
# What a page holds besides its rows (layout, headers, forms, facets' chrome), at most: the
# room the rows get is the response budget less this.
PAGE_BYTES = 64 * 1024
# What one cell adds to a page beyond its escaped text and link (its <td>, class, <a>).
CELL_HTML = 64


@dataclass
class Cell:
    """One value as a page shows it: its text, a CSS class, and a link if it has one."""

    text: str
    kind: str = ""
    href: str | None = None


def cell(value: Any, href: str | None = None) -> Cell:
    if value is None:
        return Cell("null", "null")
    if isinstance(value, dict) and "value" in value:  # an expanded foreign key (`_labels`)
        label = value.get("label")
        return Cell(str(label if label is not None else value["value"]), "", href)
    if isinstance(value, bytes):
        return Cell(f"<Binary: {len(value):,} bytes>", "null")
    if isinstance(value, dict) and value.get("$base64"):
        return Cell("<Binary>", "null")
    if isinstance(value, bool):
        return Cell(str(value).lower(), "num")
    if isinstance(value, (int, float)):
        return Cell(str(value), "num", href)
    if isinstance(value, (dict, list)):
        import json

        return Cell(json.dumps(value, ensure_ascii=False)[:MAX_CELL])
    text = str(value)
    return Cell(text if len(text) <= MAX_CELL else text[:MAX_CELL] + "…", "", href)


def fitting_rows(rows: list[list[Cell]], room: int) -> int:
    """How many rows of cells fit in `room` bytes of HTML at their worst (every character of
    a text or link escaped in 6 bytes): a page keeps the response budget JSON keeps, counted
    from what it shows (each cell at most MAX_CELL characters), before it is rendered."""
    used = 0
    for index, row in enumerate(rows):
        used += sum(BYTES_PER_CHAR * (len(c.text) + len(c.href or "")) + CELL_HTML for c in row)
        if used > room:
            return index
    return len(rows)


def with_ext(ctx: Context, ext: str) -> str:
    """This page's URL as `.json` or `.csv`, with exactly its query string."""
    qs = ctx.args.query_string()
    return f"{ctx.path}.{ext}" + (f"?{qs}" if qs else "")


def index(ctx: Context) -> Response:
    """`/` for a browser: the databases the caller may see."""
    ctx.ds.require(ctx.actor, "view-instance")
    databases = []
    for name in ctx.ds.database_names():
        if not ctx.ds.can(ctx.actor, "view-database", name):
            continue
        conn, schema = ctx.open(name)
        tables, views = table_summaries(ctx, name, conn, schema)
        visible = [t for t in tables if not t["hidden"]]
        databases.append({
            "name": name,
            "tables": visible[:8],
            "more": max(len(visible) - 8, 0),
            "tables_count": len(visible),
            "rows": sum(t["count"] or 0 for t in visible),
            "views_count": len(views),
        })
    return render(ctx, "index.html", {"databases": databases, "json_url": with_ext(ctx, "json")
                                      if ctx.path != "/" else "/.json"})


def database(ctx: Context) -> Response:
    """`/<db>` for a browser: its tables, views and queries; with `?sql=` the query's rows."""
    name = ctx.database
    if ctx.args.get("sql"):
        return query(ctx)
    ctx.ds.require(ctx.actor, "view-database", name,
                   message="You do not have permission to view this database")
    conn, schema = ctx.open(name)
    tables, views = table_summaries(ctx, name, conn, schema)
    queries = [q for q in ctx.ds.canned_queries(name).values()
               if ctx.ds.query_allowed(ctx.actor, "view-query", q)]
    for t in tables:
        t["explorer"] = explorer_url(name, t["name"])
    return render(ctx, "database.html", {
        "database": name, "tables": tables, "views": views, "queries": queries,
        "allow_sql": ctx.ds.can(ctx.actor, "execute-sql", name), "sql": "",
        "json_url": with_ext(ctx, "json"),
    })


def query(ctx: Context, named: StoredQuery | None = None) -> Response:
    """A read-only query's rows: `?sql=` on a database page, or a named query (metadata's or a
    stored one) at its own URL, under exactly the JSON answer's checks (`canned.opened`)."""
    name = ctx.database
    if named is not None:
        conn = canned.opened(ctx, named)
        if named.is_write:
            raise ApiError(400, "Writable queries are not run from a page: use POST /<db>/-/execute-write")
        sql = named.sql
    else:
        conn, sql = database_endpoint.checked_sql(ctx)
    # The rows fetched stop at the response budget, as the JSON answer's do (B01)...
    limit = response_budget(ctx.ds.settings)
    ran = database_endpoint.run_query(ctx, conn, sql, query_name=named.name if named else None,
                                      stored=named, max_bytes=limit)
    result = ran.result
    if result.cut and not result.rows:
        raise row_too_big(limit)
    rows = parse_json_columns(result.rows, result.columns, ctx.args.getlist("_json"))
    cells = [[cell(v) for v in row] for row in rows]
    # ... and what the page shows of them too (cells, each cut at MAX_CELL characters).
    keep = fitting_rows(cells, limit - PAGE_BYTES - BYTES_PER_CHAR * len(sql))
    if keep < 1 and cells:
        raise row_too_big(limit)
    return render(ctx, "query.html", {
        "database": name, "sql": sql, "named": named, "columns": result.columns,
        "rows": cells[:keep], "truncated": result.truncated or keep < len(cells),
        "allow_sql": named is None, "json_url": with_ext(ctx, "json"), "csv_url": with_ext(ctx, "csv"),
        "query_ms": ran.query_ms,
    })


def table(ctx: Context) -> Response:
    """`/<db>/<table>` for a browser: the page of rows the JSON answer would hold, as a
    table, with the link to the next page and to this view's JSON and CSV."""
    found = table_or_query(ctx)  # the same resource the JSON answer would be
    if isinstance(found, Response):
        return found
    if isinstance(found, StoredQuery):
        return query(ctx, found)
    conn, schema, tbl = found
    if ctx.args.getlist("_where") and not ctx.ds.can(ctx.actor, "execute-sql", ctx.database):
        raise ApiError(403, "_where= is not allowed")
    # The rows (and facets) fetched stop at the response budget, as the JSON page's do (B01):
    # the page is then shorter, with its next page's link.
    limit = response_budget(ctx.ds.settings)
    page = build_page(ctx, conn, schema, tbl, ctx.ds.time_limit(ctx.args.get("_timelimit")), envelope=True,
                      max_bytes=limit)
    columns = page.columns
    links = row_links(ctx, tbl, columns)
    rows = []
    for row in page.rows:
        values = dict(zip(columns, row))
        href = links(values)
        rows.append([cell(v, fk_href(ctx, tbl, c, v) if href is None or i else href)
                     for i, (c, v) in enumerate(zip(columns, row))])
    # What the page shows must fit too: cut before rendering (`table.cut`: 413 for no row).
    facet_bytes = sum(BYTES_PER_CHAR * (len(str(v.get("label") or v.get("value")))
                                        + len(v.get("toggle_url") or ""))
                      + CELL_HTML
                      for result in page.facets.results.values() for v in result.get("results", []))
    keep = fitting_rows(rows, limit - PAGE_BYTES - facet_bytes)
    if keep < len(rows):
        page = cut(ctx, page, keep, limit)
        rows = rows[:keep]
    sort = page.plan.sort
    headers = []
    config = ctx.ds.table_config(ctx.database, tbl.name)
    sortable = config.sortable_columns
    if sortable is None:
        sortable = tbl.columns + (["rowid"] if tbl.uses_rowid else [])
    for column in columns:
        href = None
        if column in sortable:
            key = "_sort_desc" if sort == column and not page.plan.sort_desc else "_sort"
            href = "?" + ctx.args.replaced([("_sort", None), ("_sort_desc", None), ("_next", None),
                                            (key, column)]).query_string()
        marker = ("▼" if page.plan.sort_desc else "▲") if column == sort else ""
        headers.append({"name": column, "href": href, "marker": marker})
    facets = [
        {"name": name, "values": [
            {"label": str(v.get("label") if v.get("label") is not None else v.get("value")),
             "count": v.get("count"), "href": v.get("toggle_url"), "selected": v.get("selected")}
            for v in result.get("results", [])
        ]}
        for name, result in page.facets.results.items()
    ]
    return render(ctx, "table.html", {
        "database": ctx.database, "table": tbl.name, "is_view": tbl.is_view, "headers": headers,
        "rows": rows, "count": page.count, "human": page.plan.human, "next_url": page.next_url,
        "json_url": with_ext(ctx, "json"), "csv_url": with_ext(ctx, "csv"),
        "first_url": ctx.path + ("?" + q if (q := ctx.args.without("_next").query_string()) else ""),
        "paged": ctx.args.get("_next") is not None, "facets": facets,
        "suggested": [
            {"name": s["name"] + (f" ({s['type']})" if s.get("type") else ""), "href": s["toggle_url"]}
            for s in page.facets.suggested[:10]
        ],
        "explorer": explorer_url(ctx.database, tbl.name),
    })


def explorer_url(database: str, table: str) -> str:
    """The API explorer, opened at a table's operations."""
    import urllib.parse

    return "/-/api#/" + urllib.parse.quote(table_tag(database, table), safe="")


def row_links(ctx: Context, tbl: Table, columns: list[str]) -> Any:
    """A function from a row (column → value) to its row page's URL, or None (a view)."""
    keys = tbl.row_keys
    if not keys or any(k not in columns for k in keys):
        return lambda values: None
    base = f"/{tilde_encode(ctx.database)}/{tilde_encode(tbl.name)}/"

    def link(values: dict[str, Any]) -> str | None:
        return base + row_path(tbl, values)

    return link


def fk_href(ctx: Context, tbl: Table, column: str, value: Any) -> str | None:
    """The page of the row a foreign key points at."""
    fk = tbl.fk_for(column)
    if fk is None or value is None:
        return None
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, (bytes, dict, list)) or value is None:
        return None
    return f"/{tilde_encode(ctx.database)}/{tilde_encode(fk.other_table)}/{tilde_encode(str(value))}"


def row(ctx: Context) -> Response:
    """`/<db>/<table>/<pk>` for a browser: one row, column by column."""
    found = fetch_row(ctx)
    tbl = found.table
    values = parse_json_columns([found.values], found.columns, ctx.args.getlist("_json"))[0]
    return render(ctx, "row.html", {
        "database": ctx.database, "table": tbl.name,
        "key": ", ".join(str(v) for v in ctx.target.pk),
        "fields": [(c, cell(v, fk_href(ctx, tbl, c, v))) for c, v in zip(found.columns, values)],
        "json_url": with_ext(ctx, "json"), "csv_url": with_ext(ctx, "csv"),
    })

"""Facets: counts of distinct values (column, JSON array, date) for a table page,
and the suggestions of columns worth faceting by."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lambdasette.args import Args, ascii_count
from lambdasette.errors import ApiError
from lambdasette.metadata import Metadata, TableConfig
from lambdasette.query import execute, labels, values
from lambdasette.query import filters as flt
from lambdasette.query.filters import json_array_cell
from lambdasette.query.quote import quote
from lambdasette.query.schema import Schema, Table
from lambdasette.settings import Settings

if TYPE_CHECKING:
    from lambdasette.query.table_plan import TablePlan

KINDS = {"_facet": "column", "_facet_array": "array", "_facet_date": "date"}
TOGGLE_ARG = {"column": "_facet", "array": "_facet_array", "date": "_facet_date"}
# The most facets a request may ask for (`_facet`, `_facet_array`, `_facet_date`; the same one
# twice counts once, and metadata's facets do not count): a 10 KB URL holds a thousand.
MAX_FACETS = 30


# A facet or suggestion query that ran out of time (re-exported: callers test for it here).
TimedOut = execute.TimedOut


@dataclass(frozen=True)
class FacetPage:
    """What facets need to know about the page they count for: its database, arguments and
    settings, how to build the page's URL with other arguments (`url`), and the instance's
    memo of figures per data version (`cached(key, compute)`)."""

    database: str
    args: Args
    settings: Settings
    metadata: Metadata
    url: Callable[[Args], str]
    cached: Callable[[Hashable, Callable[[], Any]], Any]
    # The page's path with other arguments, not made absolute: Datasette gives each facet's
    # own toggle_url (the one that removes the facet) in this form.
    path: Callable[[Args], str] = lambda args: "?" + args.query_string()
    # What one facet's values may hold (text and BLOBs): a facet of 30 values of 8 MB each,
    # with a toggle URL each, would be far over any answer's budget.
    max_bytes: int | None = None


@dataclass
class Facets:
    """Facet results by name, suggested facets, and the facets that ran out of time."""

    results: dict[str, Any] = field(default_factory=dict)
    suggested: list[dict[str, Any]] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class FacetRequest:
    column: str
    kind: str
    from_config: bool = False


def requested(args: Args, config: TableConfig) -> list[FacetRequest]:
    """The facets a page asks for: metadata's, then the request's, each (kind, column) once
    (Datasette 0.65 counts a repeated one again, as `col_2`, `col_3`, ...); 400 for more
    than MAX_FACETS from the request."""
    out: list[FacetRequest] = []
    for item in config.facets:
        if isinstance(item, str):
            out.append(FacetRequest(item, "column", True))
        elif isinstance(item, dict) and len(item) == 1:
            ((kind, column),) = item.items()
            kind = {"simple": "column"}.get(kind, kind)
            if kind in TOGGLE_ARG:
                out.append(FacetRequest(str(column), kind, True))
    for key, value in args.items:
        kind = KINDS.get(key)
        if kind is None or not value:
            continue
        if key == "_facet" and value.startswith("{"):
            parsed = flt.json_param("_facet", value, "in _facet")
            if not isinstance(parsed, dict) or len(parsed) != 1:
                raise ApiError(400, "_facet JSON must be an object with one key")
            ((kind, value),) = parsed.items()
            kind = {"simple": "column"}.get(kind, kind)
            if kind not in TOGGLE_ARG:
                raise ApiError(400, f"Unknown facet type: {kind}")
        out.append(FacetRequest(str(value), kind))
    seen: set[tuple[str, str]] = set()
    merged: list[FacetRequest] = []
    for facet in out:
        if (facet.kind, facet.column) not in seen:
            seen.add((facet.kind, facet.column))
            merged.append(facet)
    asked = sum(1 for f in merged if not f.from_config)
    if asked > MAX_FACETS:
        raise ApiError(400, f"Too many facets: {asked} (at most {MAX_FACETS} per request)")
    return merged


def facet_size(args: Args, config: TableConfig, default: int, maximum: int) -> int:
    raw = args.get("_facet_size")
    size: int | str | None = config.facet_size if config.facet_size is not None else default
    if raw == "max":
        size = maximum
    elif (count := ascii_count(raw, ceiling=maximum)) is not None:
        size = count
    if size == "max":
        size = maximum
    return min(int(size or 0), maximum)


def _sql(kind: str, column: str, base: str, limit: int, identity: str) -> str:
    col = quote(column)
    if kind == "array":
        # Each row counts once per distinct element (`["a", "a"]` is one "a"), elements are
        # counted as text, the way the `arraycontains` filter of their toggle_url compares
        # them, and cells that are not JSON arrays (blank, malformed) hold nothing.
        cell = json_array_cell(f'"_inner".{col}')
        return (f"select value, count(*) as count from (select distinct {identity},"
                f" cast(j.value as text) as value from ({base}) as \"_inner\", json_each({cell}) as j)"
                f" where value is not null group by value order by count desc, value limit {limit}")
    if kind == "date":
        return (f"select date({col}) as value, count(*) as count from ({base})"
                f" where date({col}) is not null group by date({col})"
                f" order by count desc, value limit {limit}")
    return (f"select {col} as value, count(*) as count from ({base}) where {col} is not null"
            f" group by {col} order by count desc, value limit {limit}")


def _filter_key(kind: str, column: str) -> str:
    # A bare `?_city_id=1` would be a special argument: columns starting with "_" need __exact.
    exact = f"{column}__exact" if column.startswith("_") else column
    return {"column": exact, "array": f"{column}__arraycontains", "date": f"{column}__date"}[kind]


def base_sql(table: Table, plan: TablePlan) -> str:
    """The rows facets count: the page's filtered rows, with the rowid where the table has one
    (so that `_facet=rowid` works and array facets can tell rows apart)."""
    rowid = "rowid as rowid, " if _has_rowid(table) else ""
    return f"select {rowid}* {plan.from_where(paged=True)}"


def _has_rowid(table: Table) -> bool:
    return table.has_rowid and not table.is_view and not table.is_virtual


def _identity(table: Table) -> str:
    """SQL that tells the rows of `base_sql` apart."""
    if _has_rowid(table):
        return '"_inner".rowid'
    if table.pks:
        return ", ".join(f'"_inner".{quote(pk)}' for pk in table.pks)
    return '"_inner".*'


def compute(
    page: FacetPage, conn: sqlite3.Connection, schema: Schema, table: Table, plan: TablePlan,
    config: TableConfig, count: int | None, *, facets_wanted: bool = True, suggestions: bool = True,
) -> Facets:
    """The page's facets (`_facet`, `_facet_array`, `_facet_date`, metadata facets) and
    suggestions, each counted within `facet_time_limit_ms`. Raises ApiError 400 for a facet
    on an unknown column or when `allow_facet` is off. `facets_wanted`/`suggestions` off: that
    part is not computed (a 1.0a41 page computes only the blocks it was asked for)."""
    args, settings = page.args, page.settings
    facets = [] if args.flag("_nofacet") or not facets_wanted else requested(args, config)
    if facets and not settings.allow_facet and any(not f.from_config for f in facets):
        raise ApiError(400, "_facet= is not allowed")
    columns = set(table.columns) | ({"rowid"} if table.uses_rowid else set())
    for facet in facets:
        if facet.column not in columns:
            raise ApiError(400, f"no such column: {facet.column}", title="Invalid SQL")
    base = base_sql(table, plan)
    size = facet_size(args, config, settings.default_facet_size, settings.max_returned_rows)
    out = Facets()
    for facet in facets:
        sql = _sql(facet.kind, facet.column, base, size + 1, _identity(table))
        found = execute.within_deadline(
            page.cached, ("facet", sql, _key(plan.page_params)), settings.facet_time_limit_ms,
            lambda limit, sql=sql: execute.run(conn, sql, plan.page_params, time_limit_ms=limit,
                                                          max_bytes=page.max_bytes))
        if isinstance(found, TimedOut):
            out.timed_out.append(facet.column)
            continue
        rows = found.rows
        name = facet.column
        suffix = 2
        while name in out.results:
            name = f"{facet.column}_{suffix}"
            suffix += 1
        out.results[name] = _facet_result(page, conn, schema, table, facet, rows, size)
        if found.cut:  # its values reached the facets' share of the response budget
            out.results[name]["truncated"] = True
    if (suggestions and settings.suggest_facets and settings.allow_facet and not args.flag("_nosuggest")
            and not args.flag("_nofacet")):
        out.suggested = suggest(page, conn, table, plan, facets, size, count)
    return out


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    # Typed, so that 1, 1.0, "1" and b"1" (which SQLite compares differently) stay apart.
    return tuple(sorted((k, type(v).__name__, repr(v)) for k, v in params.items()))


def _facet_result(
    page: FacetPage, conn: sqlite3.Connection, schema: Schema, table: Table, facet: FacetRequest,
    rows: list[tuple[Any, ...]], size: int,
) -> dict[str, Any]:
    args = page.args
    label_map: dict[Any, Any] = {}
    if facet.kind == "column" and table.fk_for(facet.column):
        label_map = labels.fetch_labels(conn, schema, page.metadata, page.database, table, facet.column,
                                        {r[0] for r in rows[:size]}, page.settings.facet_time_limit_ms)
    out = []
    for value, n in rows[:size]:
        key, text = toggle_arg(facet, value, table)
        selected = (key, text) in args.items
        if selected:
            toggle = Args([(k, v) for k, v in args.items if not (k == key and v == text)])
        else:
            toggle = Args(args.items + [(key, text)])
        out.append({
            "value": value,
            "label": label_map.get(value, value),
            "count": n,
            "toggle_url": page.url(toggle),
            "selected": selected,
        })
    remove = TOGGLE_ARG[facet.kind]
    return {
        "name": facet.column,
        "type": facet.kind,
        "hideable": not facet.from_config,
        "toggle_url": page.path(Args([(k, v) for k, v in args.items
                                     if not (k == remove and v == facet.column)])),
        "results": out,
        "truncated": len(rows) > size,
    }


def toggle_arg(facet: FacetRequest, value: Any, table: Table) -> tuple[str, str]:
    """The query-string argument that selects exactly the rows a facet value counted: `col=v`
    where the text reads back as that value (see `values`), else a typed `col__in=[v]` (a
    NULL-free JSON list keeps 3 apart from "3", and carries BLOBs and infinities)."""
    if facet.kind != "column":
        return _filter_key(facet.kind, facet.column), str(value)
    plain = values.to_url(value, table.affinity(facet.column))
    if plain is not None:
        return _filter_key("column", facet.column), plain
    return f"{facet.column}__in", values.typed_json(value)


def suggest(
    page: FacetPage, conn: sqlite3.Connection, table: Table, plan: TablePlan,
    facets: list[FacetRequest], size: int, count: int | None,
) -> list[dict[str, Any]]:
    """Columns worth faceting by, computed once per data version and query - when complete:
    suggestions cut short by the request's deadline are shown, not remembered."""
    base = base_sql(table, plan)
    enabled = {(f.kind, f.column) for f in facets}
    key = ("suggest", base, _key(plan.page_params), size, tuple(sorted(enabled)))

    def compute(_limit: int | None) -> list[tuple[str, str]]:
        # Each of its queries takes its own limit (`_suggestions`); this one only decides
        # whether the whole may be remembered.
        found, complete = _suggestions(page, conn, table, base, plan.page_params, enabled, size, count)
        if not complete:
            raise execute.Partial(found)
        return found

    found = execute.within_deadline(page.cached, key, page.settings.facet_suggest_time_limit_ms, compute)
    if isinstance(found, execute.TimedOut):
        found = []
    out = []
    for kind, column in found:
        entry: dict[str, Any] = {"name": column}
        if kind != "column":
            entry["type"] = kind
        entry["toggle_url"] = page.url(Args(page.args.items + [(TOGGLE_ARG[kind], column)]))
        out.append(entry)
    return out


def _suggestions(
    page: FacetPage, conn: sqlite3.Connection, table: Table, base: str, params: dict[str, Any],
    enabled: set[tuple[str, str]], size: int, count: int | None,
) -> tuple[list[tuple[str, str]], bool]:
    """The suggestions, and whether every query behind them had its own full time limit
    (False: the request's deadline cut some short or skipped them, or was cancelled)."""
    own_ms = page.settings.facet_suggest_time_limit_ms
    complete = True
    found: list[tuple[str, str]] = []

    def rows(sql: str) -> list[tuple[Any, ...]] | None:
        nonlocal complete
        limit = execute.effective_limit(own_ms)
        if limit is not None and limit < own_ms:
            complete = False
            if limit <= 0:
                return None
        try:
            return execute.run(conn, sql, params, time_limit_ms=limit).rows
        except ApiError as exc:
            if exc.title == "SQL Interrupted" and not execute.had_full_time(
                    limit, own_ms, execute.current_deadline()):
                complete = False  # the client went away mid-query: not a verdict on the data
            return None

    if count is None:
        counted = rows(f"select count(*) from ({base})")
        if not counted:
            return [], complete
        count = counted[0][0]
    columns = table.columns
    # Datasette's order: column facets, then dates, then arrays. Only counts come back, never
    # the values themselves (a column of 8 MB texts would bring back 31 of them).
    for column in columns:
        if ("column", column) in enabled:
            continue
        col = quote(column)
        distinct = rows(f"select count(*) as n from ({base}) where {col} is not null"
                        f" group by {col} limit {size + 1}")
        if distinct is not None and 1 < len(distinct) < (count or 0) and len(distinct) <= size and any(
            r[0] > 1 for r in distinct
        ):
            found.append(("column", column))
    for column in columns:
        if ("date", column) in enabled:
            continue
        col = quote(column)
        dates = rows(f"select date({col}) is not null from ({base}) where {col} glob '????-??-*' limit 100")
        if dates and any(r[0] for r in dates):
            found.append(("date", column))
    for column in columns:
        if ("array", column) in enabled:
            continue
        # Blank cells are empty arrays to the facet and its filter: skip them here too.
        cell = json_array_cell(quote(column))
        types = rows(f"select distinct json_type({cell}) from ({base}) where {cell} is not null")
        if types is None or tuple(sorted((r[0] for r in types), key=str)) not in (
            ("array",), ("array", None), (None, "array")
        ):
            continue
        # Arrays of strings only, judged by SQLite's JSON (which reads any nesting it stores):
        # how many of the first 100 non-empty arrays hold something other than a string.
        first = rows("select count(*), coalesce(sum(exists("
                     "select 1 from json_each(c) where type != 'text')), 0)"
                     f" from (select {cell} as c from ({base}) where {cell} is not null"
                     f" and json_array_length({cell}) > 0 limit 100)")
        if first and first[0][0] and not first[0][1]:
            found.append(("array", column))
    return found, complete

"""SQL for a table or view page: columns, filters, search, sort and the page window."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from lambdasette.args import Args, ascii_count
from lambdasette.errors import ApiError
from lambdasette.metadata import TableConfig
from lambdasette.query import execute, units
from lambdasette.query import filters as flt
from lambdasette.query.pagination import column_sql, decode_token, encode_token, keys_after, sorted_after
from lambdasette.query.quote import quote
from lambdasette.query.schema import Schema, Table
from lambdasette.settings import Settings


@dataclass
class TablePlan:
    """The SQL of one table page: columns, WHERE (filters, search, `_where`, `_through`), order
    and window. `params` binds the filtered set (what is counted and faceted); `after` and
    `after_params` resume after the previous page's last row (keyset) and are not counted."""

    table: Table
    columns: list[str]
    where: list[str]
    params: dict[str, Any]
    order_by: list[str]
    sort: str | None
    sort_desc: bool
    size: int
    offset: int = 0
    human: str = ""
    extra_columns: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)
    after_params: dict[str, Any] = field(default_factory=dict)

    @property
    def page_params(self) -> dict[str, Any]:
        """Everything a page's SQL binds: the filters' values and the resume position."""
        return {**self.params, **self.after_params}

    def select_sql(self) -> str:
        exprs = [quote(c) if c != "rowid" or not self.table.uses_rowid else "rowid" for c in self.columns]
        exprs += [column_sql(c) for c in self.extra_columns]
        return ", ".join(exprs)

    def from_where(self, *, paged: bool = False) -> str:
        sql = f"from {quote(self.table.name)}"
        where = self.where + self.after if paged else self.where
        if where:
            sql += " where " + " and ".join(where)
        return sql

    def page_sql(self, limit: int, offset: int | None = None) -> str:
        sql = f"select {self.select_sql()} {self.from_where(paged=True)}"
        if self.order_by:
            sql += " order by " + ", ".join(self.order_by)
        sql += f" limit {int(limit)}"
        offset = self.offset if offset is None else offset
        if offset:
            sql += f" offset {int(offset)}"
        return sql

    def count_sql(self, cap: int | None = None) -> str:
        """The count of the filtered rows; with a `cap`, counting stops there (1.0a41 counts
        at most 10,001 rows for a page and says when it stopped: `count_truncated`)."""
        if cap is not None:
            return f"select count(*) from (select 1 {self.from_where()} limit {int(cap)})"
        return f"select count(*) {self.from_where()}"

    def visible(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """`rows` of this plan's select without the extra columns only pagination needs."""
        if not self.extra_columns:
            return rows
        width = len(self.columns)
        return [r[:width] for r in rows]

    def position_columns(self, *, with_rowid: bool) -> list[str]:
        """The columns a `next` token holds: the sort column, the row's keys and, to tell
        rows with NULL keys apart, the rowid (`with_rowid`)."""
        columns = ([self.sort] if self.sort else []) + self.table.row_keys
        return columns + (["rowid"] if with_rowid else [])

    def _position(self, row: tuple[Any, ...]) -> list[Any]:
        """The values of `row` (a row of this plan's select) that the next page resumes after."""
        names = self.columns + self.extra_columns
        keys = [row[names.index(k)] for k in self.table.row_keys]
        values = ([row[names.index(self.sort)]] if self.sort else []) + keys
        if self.table.rowid_tiebreak and any(k is None for k in keys):
            values.append(row[names.index("rowid")])
        return values

    def next_token(self, row: tuple[Any, ...], index: int | None = None) -> str:
        """The `next` value that resumes after `row` (a row of this plan's select, the
        `index`th of its page: by default the last of a full page)."""
        if not self.table.row_keys:
            return str(self.offset + (self.size if index is None else index + 1))
        values = self._position(row)
        columns = self.position_columns(with_rowid=False)
        columns += ["rowid"] if len(values) > len(columns) else []
        return encode_token(values, [self.table.affinity(c) for c in columns])

    def decode_token(self, token: str) -> list[Any]:
        """The position a `next` token names (ApiError 400 for one that names none)."""
        plain = self.position_columns(with_rowid=False)
        with_rowid = self.table.rowid_tiebreak and token.count(",") == len(plain)
        columns = self.position_columns(with_rowid=with_rowid)
        return decode_token(token, [self.table.affinity(c) for c in columns])

    def resume_after(self, position: list[Any]) -> TablePlan:
        """This plan for the page after the row at `position` (see `position_columns`)."""
        keys = list(self.table.row_keys)
        values = list(position)
        sort_value = values.pop(0) if self.sort else None
        if len(values) > len(keys):
            keys.append("rowid")
        # Bound after the filters' values, so that the names (:p0, :p1, ...) never collide.
        params = dict(self.params)
        if self.sort:
            clause = sorted_after(self.sort, self.sort_desc, sort_value, keys, values, params)
        else:
            clause = keys_after(keys, values, params)
        after_params = {k: v for k, v in params.items() if k not in self.params}
        return replace(self, after=[clause], after_params=after_params, offset=0)

    def following(self, row: tuple[Any, ...], count: int | None = None) -> TablePlan:
        """This plan for the page after `row` (a row of this plan's select, the last of the
        `count` rows of its page - by default a full one): how an export walks every page
        without a round trip through a `next` token."""
        if not self.table.row_keys:
            return replace(self, offset=self.offset + (self.size if count is None else count))
        return self.resume_after(self._position(row))


def walk(
    conn: sqlite3.Connection, plan: TablePlan, time_limit_ms: int,
    first: execute.Result | None = None, *, max_bytes: int | None = None,
) -> Iterator[list[tuple[Any, ...]]]:
    """Every page of `plan` in turn, each as the rows of its select (extra columns included):
    the keyset continues from each page's last row. `first`: the first page, already fetched.
    A page whose rows' text reaches `max_bytes` ends at its last whole row and the next page
    starts after it; a single row over it ends the walk with an ApiError."""
    result = first
    while True:
        if result is None:
            result = execute.run(conn, plan.page_sql(plan.size + 1), plan.page_params,
                                 time_limit_ms=time_limit_ms, max_bytes=max_bytes)
        rows = result.rows
        if result.cut:
            if not rows:
                raise ApiError(413, f"A row of this table is larger than {max_bytes} bytes: "
                                    "export fewer columns with _col= or _nocol=")
            rows = rows[: plan.size] if plan.size else rows
            yield rows
            plan = plan.following(rows[-1], len(rows))
            result = None
            continue
        yield rows[: plan.size]
        if not plan.size or len(rows) <= plan.size:
            return
        plan = plan.following(rows[plan.size - 1])
        result = None


def parse_size(raw: str | None, settings: Settings, default: int) -> int:
    if raw is None or raw == "":
        return default
    if raw == "max":
        return settings.max_returned_rows
    size = ascii_count(raw, ceiling=settings.max_returned_rows + 1)
    if size is None:
        raise ApiError(400, "_size must be a positive integer")
    if size > settings.max_returned_rows:
        raise ApiError(400, f"_size must be <= {settings.max_returned_rows}")
    return size


def _columns(table: Table, args: Args) -> list[str]:
    table_columns = table.columns + table.hidden_columns
    keys = table.row_keys
    col = args.getlist("_col")
    nocol = args.getlist("_nocol")
    if col:
        invalid = [c for c in col if c not in table_columns]
        if invalid:
            raise ApiError(400, f"_col={', '.join(invalid)} - invalid columns")
        # In the order given (as 0.65 does), each once; the keys always come first.
        chosen = [c for c in dict.fromkeys(col) if c not in keys]
    else:
        chosen = [c for c in table_columns if c not in keys]
    if nocol:
        invalid = [c for c in nocol if c not in table_columns or c in keys]
        if invalid:
            raise ApiError(400, f"_nocol={', '.join(invalid)} - invalid columns")
        chosen = [c for c in chosen if c not in nocol]
    if table.uses_rowid:
        return ["rowid", *chosen]
    return [*keys, *chosen] if keys else chosen


def _sort(table: Table, args: Args, config: TableConfig) -> tuple[str | None, bool]:
    sort, sort_desc = args.get("_sort") or None, args.get("_sort_desc") or None
    if sort and sort_desc:
        raise ApiError(400, "Cannot use _sort and _sort_desc at the same time")
    if not sort and not sort_desc:
        sort, sort_desc = config.sort, config.sort_desc
    column = sort or sort_desc
    if column is None:
        return None, False
    sortable = config.sortable_columns
    if sortable is None:
        sortable = table.columns + (["rowid"] if table.uses_rowid else [])
    if column not in sortable:
        raise ApiError(400, f"Cannot sort table by {column}")
    return column, bool(sort_desc)


def search_clauses(
    table: Table, schema: Schema, args: Args, config: TableConfig, params: dict[str, Any]
) -> tuple[list[str], list[str]]:
    # 0.65: `_fts_table` and `_fts_pk` name the FTS table and the key it indexes for this
    # request, over the metadata's and the detected ones. Only tables the caller can see.
    fts_table = args.get("_fts_table") or config.fts_table or table.fts_table
    if not fts_table:
        return [], []
    fts_pk = args.get("_fts_pk") or config.fts_pk or "rowid"
    if fts_table not in schema.tables:
        raise ApiError(400, f"Invalid _fts_table: {fts_table}")
    if fts_pk != "rowid" and fts_pk not in table.columns:
        raise ApiError(400, f"Invalid _fts_pk: {fts_pk}")
    raw_mode = (args.get("_searchmode") or config.searchmode or "") == "raw"
    clauses: list[str] = []
    human: list[str] = []
    fts = quote(fts_table)
    pk = "rowid" if fts_pk == "rowid" else quote(fts_pk)

    def match(value: str, name: str) -> str:
        params[name] = value
        return f":{name}" if raw_mode else f"escape_fts(:{name})"

    search = args.get("_search")
    if search:
        clauses.append(f"{pk} in (select rowid from {fts} where {fts} match {match(search, 'search')})")
        human.append(f'search matches "{search}"')
    fts_columns = schema.tables[fts_table].columns
    index = 0
    # As in 0.65, `_search` searches the whole index and `_search_COL` only without it.
    for key, value in [] if search else args.items:
        if not key.startswith("_search_") or not value:
            continue
        column = key[len("_search_"):]
        if column not in fts_columns:
            raise ApiError(400, "Cannot search by that column")
        name = f"search_{index}"
        index += 1
        clauses.append(
            f"{pk} in (select rowid from {fts} where {quote(column)} match {match(value, name)})"
        )
        human.append(f'search column "{column}" matches "{value}"')
    return clauses, human


def through_clause(
    table: Table, schema: Schema, raw: str, params: dict[str, Any]
) -> tuple[str, str]:
    through = flt.json_param("_through", raw, "in _through")
    if not isinstance(through, dict) or not {"table", "column", "value"} <= set(through):
        raise ApiError(400, '_through must be a JSON object with "table", "column" and "value" keys')
    through_table = schema.get(str(through["table"]))
    if through_table is None or through_table.is_view:
        raise ApiError(400, f"Invalid _through - table not found: {through['table']}")
    column = str(through["column"])
    if column not in through_table.columns:
        raise ApiError(400, f"Invalid _through - no such column: {column}")
    fk = next((fk for fk in through_table.outgoing if fk.other_table == table.name), None)
    if fk is None:
        raise ApiError(400, "Invalid _through - could not find corresponding foreign key")
    name = f"p{len(params)}"
    value = through["value"]
    params[name] = value if not isinstance(value, (dict, list)) else json.dumps(value)
    sql = (
        f"{quote(fk.other_column)} in (select {quote(fk.column)} from {quote(through_table.name)}"
        f" where {quote(column)} = :{name})"
    )
    return sql, f'{through_table.name}.{column} = "{value}"'


def plan_table(
    table: Table,
    schema: Schema,
    args: Args,
    settings: Settings,
    config: TableConfig,
    *,
    size: int | None = None,
) -> TablePlan:
    columns = _columns(table, args)
    sort, sort_desc = _sort(table, args, config)
    page_size = size if size is not None else parse_size(
        args.get("_size"), settings, config.size or settings.default_page_size
    )
    params: dict[str, Any] = {}
    filterable = set(table.columns) | ({"rowid"} if table.uses_rowid else set())
    filters = flt.parse_filters(args.items, filterable)
    if config.units:
        filters = [
            replace(f, bound=units.convert(f.value, config.units[f.column], config.custom_units))
            if f.column in config.units and f.op.typed and not f.op.no_argument else f
            for f in filters
        ]
    where = flt.where_clauses(filters, table.name, params,
                              {c: table.affinity(c) for c in filterable})
    where += [f"({w})" for w in args.getlist("_where") if w.strip()]
    search, search_human = search_clauses(table, schema, args, config, params)
    where += search
    extra_human = list(search_human)
    through = args.get("_through")
    if through:
        clause, text = through_clause(table, schema, through, params)
        where.append(clause)
        extra_human.append(text)
    human = flt.human_description(extra_human + [f.human() for f in filters])
    if sort:
        sorted_by = f"sorted by {sort}{' descending' if sort_desc else ''}"
        human = f"{human} {sorted_by}" if human else sorted_by

    keys = table.row_keys
    order_by: list[str] = []
    if sort:
        sort_sql = "rowid" if sort == "rowid" and table.uses_rowid else quote(sort)
        order_by.append(sort_sql + (" desc" if sort_desc else ""))
    order_by += ["rowid" if k == "rowid" else quote(k) for k in keys if k != sort]
    tiebreak = ["rowid"] if table.rowid_tiebreak and sort != "rowid" else []
    order_by += tiebreak

    plan = TablePlan(table, columns, where, params, order_by, sort, sort_desc, page_size, human=human)
    extra = [k for k in keys + tiebreak if k not in columns]
    if sort and sort not in columns and sort not in extra:
        extra.append(sort)
    plan.extra_columns = extra

    token = args.get("_next")
    if token:
        if not keys:
            offset = ascii_count(token, ceiling=flt.INT64_MAX)
            if offset is None:
                raise ApiError(400, "Invalid _next: expected a row offset")
            plan.offset = offset
        else:
            plan = plan.resume_after(plan.decode_token(token))
    return plan

"""Foreign-key labels: `_labels=on` / `_label=COL` expand a key to {"value", "label"}."""

from __future__ import annotations

import sqlite3
from operator import length_hint
from typing import Any

from lambdasette.args import Args
from lambdasette.errors import ApiError
from lambdasette.metadata import Metadata
from lambdasette.query import execute
from lambdasette.query.quote import quote
from lambdasette.query.schema import Schema, Table
from lambdasette.settings import parse_bool


def label_column(schema: Schema, metadata: Metadata, database: str, table_name: str) -> str | None:
    """The configured label column, else `name`/`title`, else the non-id column of a pair."""
    explicit = metadata.table(database, table_name).label_column
    if explicit:
        return explicit
    table = schema.get(table_name)
    if table is None:
        return None
    named = [c for c in table.columns if c.lower() in ("name", "title")]
    if named:
        return named[0]
    columns = table.columns
    if len(columns) == 2 and ("id" in columns or "pk" in columns):
        return next(c for c in columns if c not in ("id", "pk"))
    return None


def expandable(schema: Schema, metadata: Metadata, database: str, table: Table) -> list[Any]:
    return [
        [fk.outgoing(), label_column(schema, metadata, database, fk.other_table)]
        for fk in table.outgoing
    ]


def requested(table: Table, args: Args, columns: list[str], *, default: bool = False) -> list[str]:
    """The foreign-key columns to expand for this request."""
    fk_columns = [fk.column for fk in table.outgoing if fk.column in columns]
    raw = args.get("_labels")
    wanted = default
    if raw is not None:
        try:
            wanted = parse_bool(raw)
        except ValueError:
            wanted = False
    if wanted:
        return fk_columns
    singles = set(args.getlist("_label"))
    return [c for c in fk_columns if c in singles]


def fetch_labels(
    conn: sqlite3.Connection,
    schema: Schema,
    metadata: Metadata,
    database: str,
    table: Table,
    column: str,
    values: set[Any],
    time_limit_ms: int,
) -> dict[Any, Any]:
    fk = table.fk_for(column)
    values.discard(None)
    if fk is None or not values:
        return {}
    label = label_column(schema, metadata, database, fk.other_table)
    if not label:
        return {v: str(v) for v in values}
    placeholders = ", ".join("?" for _ in values)
    sql = (
        f"select {quote(fk.other_column)}, {quote(label)} from {quote(fk.other_table)}"
        f" where {quote(fk.other_column)} in ({placeholders})"
    )
    try:
        result = execute.run(conn, sql, list(values), time_limit_ms=time_limit_ms)
    except ApiError:
        # A label lookup that fails or runs out of time leaves the raw values in place.
        return {}
    return {key: value for key, value in result.rows}


def label_bytes(rows: list[tuple[Any, ...]]) -> int:
    """The text of the labels `expand_rows` put in `rows`, counted once per use: one label of
    a few MB shared by a thousand rows renders a thousand times."""
    return sum(length_hint(cell["label"]) for row in rows for cell in row
               if type(cell) is dict and "label" in cell)


def expand_rows(
    conn: sqlite3.Connection,
    schema: Schema,
    metadata: Metadata,
    database: str,
    table: Table,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    expand: list[str],
    time_limit_ms: int,
) -> list[tuple[Any, ...]]:
    if not expand or not rows:
        return rows
    out = [list(row) for row in rows]
    for column in expand:
        i = columns.index(column)
        labels = fetch_labels(
            conn, schema, metadata, database, table, column, {r[i] for r in rows}, time_limit_ms
        )
        for row in out:
            value = row[i]
            if value is not None and value in labels:
                row[i] = {"value": value, "label": labels[value]}
    return [tuple(r) for r in out]

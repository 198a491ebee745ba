"""Tables as the write API sees them, and the statements that create and drop them.

A writable table is a `query.schema.Table` that is not a view, a virtual table or a shadow
table. sqlite-utils builds new tables from example rows (type inference, its schema format).
`alter` lives in `writes.alter`.
"""

from __future__ import annotations

from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote
from lambdasette.query.schema import Table
from lambdasette.writes.transaction import Transaction


def column_ref(name: str) -> str:
    """A column in SQL: `rowid` as itself, any other name quoted."""
    return "rowid" if name == "rowid" else quote(name)


def key_where(table: Table, prefix: str = "k") -> tuple[str, list[str]]:
    """`"a" = :k0 and "b" = :k1` over the columns that identify a row (`Table.row_keys`:
    the primary key, or rowid), and the parameter names in that order."""
    names = [f"{prefix}{i}" for i in range(len(table.row_keys))]
    where = " and ".join(f"{column_ref(k)} = :{n}" for k, n in zip(table.row_keys, names))
    return where, names


def find_writable(tx: Transaction, name: str) -> Table | None:
    """The table the write API may change, None if there is no table or view by that name;
    404 for one it may not change: a view, a virtual table, a shadow table (an FTS index's
    storage), SQLite's own tables. (Litestream's tables are not in the schema at all.)"""
    schema = tx.schema()
    table = schema.get(name)
    if table is None:
        return None
    if table.is_view or table.is_virtual or table.hidden or schema.is_shadow(name):
        raise NotWritable(name)
    return table


NOT_FOUND = "Table not found"


class NotWritable(ApiError):
    """404 for a table or view the write API may not change, named as 1.0a41 names it
    (`Table not found: v`); `unnamed()` is the answer for a caller who may not view it,
    worded exactly as a missing table's, so that a hidden view, virtual or shadow table
    cannot be told from nothing (`endpoints.write.perform` chooses)."""

    def __init__(self, table: str) -> None:
        super().__init__(404, f"{NOT_FOUND}: {table}")
        self.table = table

    @staticmethod
    def unnamed() -> ApiError:
        return ApiError(404, NOT_FOUND)


def writable(tx: Transaction, name: str) -> Table:
    """`find_writable`, with a missing table a 404 too."""
    table = find_writable(tx, name)
    if table is None:
        raise ApiError(404, NOT_FOUND)
    return table


def add_missing_columns(tx: Transaction, table: Table, rows: list[dict[str, Any]]) -> Table:
    """`alter`: new columns typed from the first value seen (sqlite-utils' inference)."""
    known = set(table.columns) | {"rowid"}
    if all(c in known for row in rows for c in row):
        return table
    tx.db[table.name].add_missing_columns(rows)
    return writable(tx, table.name)


def create_from_rows(tx: Transaction, name: str, rows: list[dict[str, Any]], pks: list[str], *,
                     ignore: bool = False, replace: bool = False) -> None:
    """A new table from example rows: sqlite-utils infers the column types and lays out the
    schema; columns that only later rows have are added too."""
    if rows and not any(rows):
        raise ApiError(400, "Cannot create a table from rows without columns")
    pk = (pks[0] if len(pks) == 1 else tuple(pks)) if pks else None
    if rows and not rows[0]:
        # sqlite-utils lays a table out from its first row, and an empty one has no columns:
        # lay it out from all of them instead, then insert as usual.
        import sqlite_utils

        tx.db[name].create(sqlite_utils.suggest_column_types(rows), pk=pk)
    tx.db[name].insert_all(rows, pk=pk, alter=True, ignore=ignore, replace=replace)


def drop(tx: Transaction, name: str) -> None:
    """Drop a table and the FTS index that sqlite-utils or Datasette built for it."""
    db = tx.db
    table = db[name]
    fts = table.detect_fts()
    if fts:
        db[fts].drop()
        for trigger in [t for t in table.triggers if t.name.startswith(f"{name}_a")]:
            db.execute(f"DROP TRIGGER IF EXISTS {quote(trigger.name)}")
    table.drop()


COLUMN_TYPES = {"text": "TEXT", "integer": "INTEGER", "float": "REAL", "blob": "BLOB"}


DEFAULT_EXPRESSIONS = {
    "current_timestamp": "CURRENT_TIMESTAMP",
    "current_date": "CURRENT_DATE",
    "current_time": "CURRENT_TIME",
    "current_unixtime": "(unixepoch())",
    "current_unixtime_ms": "(CAST(unixepoch('subsec') * 1000 AS INTEGER))",
}


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def create_sql(tx: Transaction, name: str, columns: list[dict[str, Any]], pks: list[str]) -> str:
    """CREATE TABLE from `columns` specs, laid out as sqlite-utils lays out its schemas."""
    names = [c["name"] for c in columns]
    lines = []
    for pk in pks:
        if pk not in names and len(pks) == 1:
            lines.append(f"{quote(pk)} INTEGER PRIMARY KEY")
    for column in columns:
        kind = COLUMN_TYPES[column.get("type") or "text"]
        line = f"{quote(column['name'])} {kind}"
        if len(pks) == 1 and column["name"] == pks[0]:
            line += " PRIMARY KEY"
        if column.get("not_null"):
            line += " NOT NULL"
        if column.get("default") is not None:
            line += f" DEFAULT {literal(column['default'])}"
        elif column.get("default_expr"):
            line += f" DEFAULT {DEFAULT_EXPRESSIONS[column['default_expr']]}"
        if column.get("fk_table"):
            other = column["fk_table"]
            other_column = column.get("fk_column") or single_pk(tx, other)
            line += f" REFERENCES {quote(other)}({quote(other_column)})"
        lines.append(line)
    if len(pks) > 1:
        lines.append("PRIMARY KEY (" + ", ".join(quote(p) for p in pks) + ")")
    return f"CREATE TABLE {quote(name)} (\n   " + ",\n   ".join(lines) + "\n)"


def single_pk(tx: Transaction, table: str) -> str:
    """The one primary key column of `table`, for a foreign key that names no column."""
    info = find_writable(tx, table)
    if info is None:
        raise ApiError(400, f"fk_table {table} does not exist")
    if len(info.pks) != 1:
        raise ApiError(400, f"fk_table {table} needs fk_column: it has no single primary key")
    return info.pks[0]


def schema_of(tx: Transaction, name: str) -> str:
    """The table's `CREATE TABLE` statement as SQLite keeps it."""
    row = tx.conn.execute(
        "select sql from sqlite_master where type = 'table' and name = ?", [name]
    ).fetchone()
    return row[0] if row else ""

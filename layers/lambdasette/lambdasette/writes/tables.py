"""Tables as the write API sees them, and the statements that change them: create, drop, alter.

`TableInfo` is a writable table (not a view, a virtual table or a shadow table); sqlite-utils
builds new tables (type inference from example rows, its schema format) and performs the
`alter` operations through its `transform`.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote


@dataclass
class TableInfo:
    name: str
    columns: list[str]
    pks: list[str]  # declared primary key columns; empty for a rowid table
    has_rowid: bool = True  # False for WITHOUT ROWID tables

    @property
    def keys(self) -> list[str]:
        """The columns that identify a row: the primary key, or rowid."""
        return self.pks or ["rowid"]

    def key_sql(self, prefix: str = "k") -> tuple[str, list[str]]:
        names = [f"{prefix}{i}" for i in range(len(self.keys))]
        where = " and ".join(f"{column_ref(k)} = :{n}" for k, n in zip(self.keys, names))
        return where, names


def column_ref(name: str) -> str:
    return "rowid" if name == "rowid" else quote(name)


def table_info(conn: sqlite3.Connection, name: str) -> TableInfo | None:
    """A writable table (not a view, virtual table or FTS shadow table), or None.
    Remembered per schema version on the writer's connection: every request asks."""
    version = conn.execute("PRAGMA schema_version").fetchone()[0]
    cache: dict[tuple[str, int], TableInfo | None] | None = getattr(conn, "table_infos", None)
    if cache is not None and (name, version) in cache:
        return cache[(name, version)]
    info = _table_info(conn, name)
    if cache is not None:
        if len(cache) > 1000:
            cache.clear()
        cache[(name, version)] = info
    return info


def _table_info(conn: sqlite3.Connection, name: str) -> TableInfo | None:
    if name.startswith("_litestream_"):
        return None  # Litestream's own tables are not the API's to change
    row = conn.execute(
        "select type, sql from sqlite_master where name = ? and type in ('table', 'view')", [name]
    ).fetchone()
    if row is None:
        return None
    if row[0] != "table" or (row[1] or "").lstrip().upper().startswith("CREATE VIRTUAL"):
        raise ApiError(404, f"Table not found: {name}")
    if is_shadow(conn, name):
        raise ApiError(404, f"Table not found: {name}")
    info = conn.execute(f"PRAGMA table_info({quote(name)})").fetchall()
    pks = [r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    without_rowid = re.search(r"\)\s*WITHOUT\s+ROWID\s*;?\s*$", row[1] or "", re.I) is not None
    return TableInfo(name=name, columns=[r[1] for r in info], pks=pks, has_rowid=not without_rowid)


def is_shadow(conn: sqlite3.Connection, name: str) -> bool:
    for (fts,) in conn.execute(
        "select name from sqlite_master where type = 'table' and sql like 'CREATE VIRTUAL TABLE%'"
    ):
        if name.startswith(fts + "_"):
            return True
    return False


def add_missing_columns(db: Any, table: TableInfo, rows: list[dict[str, Any]]) -> TableInfo:
    """`alter`: new columns typed from the first value seen (sqlite-utils' inference)."""
    known = set(table.columns) | {"rowid"}
    if all(c in known for row in rows for c in row):
        return table
    db[table.name].add_missing_columns(rows)
    refreshed = table_info(db.conn, table.name)
    assert refreshed is not None
    return refreshed


def create_from_rows(db: Any, name: str, rows: list[dict[str, Any]], pks: list[str], *,
                     ignore: bool = False, replace: bool = False) -> None:
    """A new table from example rows: sqlite-utils infers the column types and lays out the
    schema; columns that only later rows have are added too."""
    pk = (pks[0] if len(pks) == 1 else tuple(pks)) if pks else None
    db[name].insert_all(rows, pk=pk, alter=True, ignore=ignore, replace=replace)


def drop(db: Any, name: str) -> None:
    """Drop a table and the FTS index that sqlite-utils or Datasette built for it."""
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


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def create_sql(conn: sqlite3.Connection, name: str, columns: list[dict[str, Any]],
               pks: list[str]) -> str:
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
            line += f" DEFAULT {_literal(column['default'])}"
        elif column.get("default_expr"):
            line += f" DEFAULT {DEFAULT_EXPRESSIONS[column['default_expr']]}"
        if column.get("fk_table"):
            other = column["fk_table"]
            other_column = column.get("fk_column") or _single_pk(conn, other)
            line += f" REFERENCES {quote(other)}({quote(other_column)})"
        lines.append(line)
    if len(pks) > 1:
        lines.append("PRIMARY KEY (" + ", ".join(quote(p) for p in pks) + ")")
    return f"CREATE TABLE {quote(name)} (\n   " + ",\n   ".join(lines) + "\n)"


def _single_pk(conn: sqlite3.Connection, table: str) -> str:
    info = table_info(conn, table)
    if info is None:
        raise ApiError(400, f"fk_table {table} does not exist")
    if len(info.pks) != 1:
        raise ApiError(400, f"fk_table {table} needs fk_column: it has no single primary key")
    return info.pks[0]


def schema_of(conn: sqlite3.Connection, name: str) -> str:
    row = conn.execute("select sql from sqlite_master where type = 'table' and name = ?", [name]).fetchone()
    return row[0] if row else ""



# -- alter ---------------------------------------------------------------------------------------


ALTER_OPS = ("add_column", "rename_column", "rename_table", "alter_column", "drop_column",
             "set_primary_key", "reorder_columns", "add_foreign_key", "drop_foreign_key",
             "set_foreign_keys")


def _default_sql(args: dict[str, Any]) -> str | None:
    """A column default as sqlite-utils' transform wants it: SQL text."""
    if args.get("default_expr"):
        return DEFAULT_EXPRESSIONS[args["default_expr"]]
    if args.get("default") is not None:
        return _literal(args["default"])
    return None


def alter(db: Any, name: str, operations: list[dict[str, Any]]) -> str:
    """Apply `operations` to table `name`; returns the table's name afterwards. Columns are
    added with ALTER TABLE where SQLite allows it; everything else is one sqlite-utils
    transform (a rebuild of the table); a rename comes last."""
    table = db[name]
    columns = {c.name for c in table.columns}
    transform: dict[str, Any] = {}
    not_null: dict[str, bool] = {}
    defaults: dict[str, Any] = {}
    rename_to = None
    for op in operations:
        kind, args = op["op"], op["args"]
        if kind == "add_column":
            if args["name"] in columns:
                raise ApiError(400, f"Column already exists: {args['name']}")
            column_type = COLUMN_TYPES[args.get("type") or "text"]
            default = _default_sql(args)
            add = f"ALTER TABLE {quote(name)} ADD COLUMN {quote(args['name'])} {column_type}"
            if args.get("default_expr"):
                # SQLite cannot ADD a column with a non-constant default: add it plain, give
                # existing rows the default's value, then rebuild with the default in place.
                db.execute(add)
                db.execute(f"UPDATE {quote(name)} SET {quote(args['name'])} = {default}")
                if args.get("not_null"):
                    not_null[args["name"]] = True
                defaults[args["name"]] = default
            else:
                suffix = " NOT NULL" if args.get("not_null") else ""
                suffix += f" DEFAULT {default}" if default is not None else ""
                db.execute(add + suffix)
            columns.add(args["name"])
        elif kind == "rename_column":
            _need(columns, args["name"])
            transform.setdefault("rename", {})[args["name"]] = args["to"]
        elif kind == "drop_column":
            _need(columns, args["name"])
            transform.setdefault("drop", set()).add(args["name"])
        elif kind == "alter_column":
            _need(columns, args["name"])
            if args.get("type"):
                transform.setdefault("types", {})[args["name"]] = COLUMN_TYPES[args["type"]]
            if "not_null" in args:
                not_null[args["name"]] = bool(args["not_null"])
            if "default_expr" in args or "default" in args:
                defaults[args["name"]] = _default_sql(args)
        elif kind == "set_primary_key":
            for column in args["columns"]:
                _need(columns, column)
            pk = args["columns"]
            transform["pk"] = pk[0] if len(pk) == 1 else tuple(pk)
        elif kind == "reorder_columns":
            transform["column_order"] = args["columns"]
        elif kind == "add_foreign_key":
            _need(columns, args["column"])
            other = args.get("fk_column") or _single_pk(db.conn, args["fk_table"])
            transform.setdefault("add_foreign_keys", []).append((args["column"], args["fk_table"], other))
        elif kind == "drop_foreign_key":
            transform.setdefault("drop_foreign_keys", []).append(args["column"])
        elif kind == "set_foreign_keys":
            transform["foreign_keys"] = [
                (fk["column"], fk["fk_table"], fk.get("fk_column") or _single_pk(db.conn, fk["fk_table"]))
                for fk in args["foreign_keys"]
            ]
        elif kind == "rename_table":
            rename_to = args["to"]
    if any(not_null.values()):
        transform["not_null"] = {c: True for c, v in not_null.items() if v}
    if defaults:
        transform["defaults"] = defaults
    if transform:
        table.transform(**transform)
    dropped = {c: False for c, v in not_null.items() if not v}
    if dropped:
        # A separate pass: sqlite-utils 4.2 turns not_null=False into NOT NULL when the same
        # transform also sets defaults.
        table.transform(not_null=dropped)
    if rename_to is not None and rename_to != name:
        if table_info(db.conn, rename_to) is not None:
            raise ApiError(400, f'table "{rename_to}" already exists')
        db.execute(f"ALTER TABLE {quote(name)} RENAME TO {quote(rename_to)}")
        return rename_to
    return name


def _need(columns: set[str], name: str) -> None:
    if name not in columns:
        raise ApiError(400, f"No such column: {name}")

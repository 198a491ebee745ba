"""The row vocabulary - `write_rows` (insert, upsert, create from rows), `update_row`,
`delete_row` - as SQL inside a `Transaction`, and JSON values into SQLite values.

Callers (endpoints/write.py, imports) have validated the request and checked permissions;
these functions raise ApiError for what only the data can tell (missing rows or tables,
unknown columns, keys). Row writes are plain parameterised statements, grouped so that rows
with the same columns go through one `executemany`.
"""

from __future__ import annotations

import base64
import binascii
import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote
from lambdasette.query.schema import Table
from lambdasette.writes.tables import (
    add_missing_columns,
    column_ref,
    create_from_rows,
    find_writable,
    key_where,
    writable,
)
from lambdasette.writes.transaction import Transaction


def decode_value(value: Any) -> Any:
    """JSON in, SQLite value out: `{"$base64": true, "encoded": ...}` becomes a BLOB,
    other objects and arrays are stored as JSON text (as sqlite-utils stores them)."""
    if isinstance(value, dict):
        if value.get("$base64") is True and set(value) == {"$base64", "encoded"}:
            try:
                return base64.b64decode(str(value["encoded"]), validate=True)
            except (binascii.Error, ValueError):
                raise ApiError(400, "Invalid $base64 encoded value") from None
        return json.dumps(value, default=repr, ensure_ascii=False)
    if isinstance(value, list):
        return json.dumps(value, default=repr, ensure_ascii=False)
    return value


def decode_row(row: dict[str, Any]) -> dict[str, Any]:
    for value in row.values():
        if isinstance(value, (dict, list)):
            return {k: decode_value(v) for k, v in row.items()}
    return row  # the common case: scalars only, nothing to convert


def _check_columns(table: Table, rows: list[dict[str, Any]]) -> None:
    """Every row's unknown columns, all reported at once."""
    known = set(table.columns) | ({"rowid"} if table.uses_rowid else set())
    seen: set[str] = set()
    for row in rows:
        seen.update(row)
    if seen <= known:
        return  # the usual case, found with one set operation per row
    errors = []
    for i, row in enumerate(rows):
        bad = [c for c in row if c not in known]
        if bad:
            errors.append(f"Row {i} has invalid columns: {', '.join(bad)}")
    raise ApiError(400, *errors)


def _groups(rows: list[dict[str, Any]]) -> Iterable[tuple[tuple[str, ...], list[dict[str, Any]]]]:
    """Consecutive rows with the same columns, so each group is one executemany."""
    group: list[dict[str, Any]] = []
    columns: tuple[str, ...] | None = None
    for row in rows:
        keys = tuple(row)
        if keys != columns and group:
            yield columns or (), group
            group = []
        columns = keys
        group.append(row)
    if group:
        yield columns or (), group


def _insert_sql(table: str, columns: tuple[str, ...], verb: str) -> str:
    if not columns:
        return f"{verb} INTO {quote(table)} DEFAULT VALUES"
    names = ", ".join(column_ref(c) for c in columns)
    marks = ", ".join("?" for _ in columns)
    return f"{verb} INTO {quote(table)} ({names}) VALUES ({marks})"


def _insert(conn: sqlite3.Connection, table: Table, rows: list[dict[str, Any]], *,
           ignore: bool = False, replace: bool = False, want_rowids: bool = False) -> list[int]:
    """Insert rows; with `want_rowids`, the rowid of each row as stored (for an ignored
    duplicate, the existing row's)."""
    verb = "INSERT OR IGNORE" if ignore else "INSERT OR REPLACE" if replace else "INSERT"
    rowids: list[int] = []
    for columns, group in _groups(rows):
        sql = _insert_sql(table.name, columns, verb)
        if not want_rowids:
            conn.executemany(sql, [tuple(r.values()) for r in group])
            continue
        for row in group:
            cursor = conn.execute(sql, tuple(row.values()))
            if cursor.rowcount == 1:
                rowids.append(cursor.lastrowid or 0)
            else:
                existing = _existing_rowid(conn, table, row)
                if existing is not None:
                    rowids.append(existing)
    return rowids


def _existing_rowid(conn: sqlite3.Connection, table: Table, row: dict[str, Any]) -> int | None:
    if not all(k in row for k in table.row_keys):
        return None
    where, names = key_where(table)
    found = conn.execute(f"select rowid from {quote(table.name)} where {where}",
                         dict(zip(names, (row[k] for k in table.row_keys)))).fetchone()
    return found[0] if found else None


def _check_upsert_keys(table: Table, rows: list[dict[str, Any]]) -> None:
    errors = []
    for i, row in enumerate(rows):
        missing = [k for k in table.row_keys if k not in row]
        if missing:
            errors.append(f"Row {i} is missing primary key column(s): "
                          + ", ".join(f'"{k}"' for k in missing))
            continue
        nulls = [k for k in table.row_keys if row[k] is None]
        if nulls:
            errors.append(f"Row {i} has null primary key column(s): "
                          + ", ".join(f'"{k}"' for k in nulls))
    if errors:
        raise ApiError(400, *errors)


def _upsert(conn: sqlite3.Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Update the columns each row names - and only those - or insert the row if its key is new.
    (Datasette 1.0a41 widens mixed batches and nulls the columns a row leaves out; not here.)"""
    where, names = key_where(table)
    for columns, group in _groups(rows):
        values = [c for c in columns if c not in table.row_keys]
        insert_sql = _insert_sql(table.name, columns, "INSERT")
        update_sql = None
        if values:
            sets = ", ".join(f"{column_ref(c)} = :v{i}" for i, c in enumerate(values))
            update_sql = f"UPDATE {quote(table.name)} SET {sets} WHERE {where}"
        exists_sql = f"SELECT 1 FROM {quote(table.name)} WHERE {where}"
        for row in group:
            params = dict(zip(names, (row[k] for k in table.row_keys)))
            if update_sql is not None:
                params.update({f"v{i}": row[c] for i, c in enumerate(values)})
                if conn.execute(update_sql, params).rowcount:
                    continue
            elif conn.execute(exists_sql, params).fetchone():
                continue
            conn.execute(insert_sql, tuple(row.values()))


def _fetch_by_rowids(conn: sqlite3.Connection, table: Table, rowids: list[int],
                    *, with_rowid: bool = False) -> list[dict[str, Any]]:
    if not rowids:
        return []
    select = ("rowid, *" if with_rowid and not table.pks else "*")
    out = []
    # Fetched one by one, so the order (and repeats) follow the request's rows.
    sql = f"select {select} from {quote(table.name)} where rowid = ?"
    for rowid in rowids:
        cursor = conn.execute(sql, [rowid])
        row = cursor.fetchone()
        if row is not None:
            out.append(dict(zip([d[0] for d in cursor.description], row)))
    return out


def _fetch_by_keys(conn: sqlite3.Connection, table: Table, keys: list[list[Any]]) -> list[dict[str, Any]]:
    where, names = key_where(table)
    select = "*" if table.pks else "rowid, *"
    sql = f"select {select} from {quote(table.name)} where {where}"
    out = []
    for values in keys:
        cursor = conn.execute(sql, dict(zip(names, values)))
        row = cursor.fetchone()
        if row is not None:
            out.append(dict(zip([d[0] for d in cursor.description], row)))
    return out


def _require_row(conn: sqlite3.Connection, table: Table, values: list[str]) -> None:
    where, names = key_where(table)
    if conn.execute(f"select 1 from {quote(table.name)} where {where}",
                    dict(zip(names, values))).fetchone() is None:
        raise ApiError(404, f"Record not found: {values!r}")


def _update(conn: sqlite3.Connection, table: Table, values: list[str], changes: dict[str, Any]) -> None:
    _require_row(conn, table, values)
    if not changes:
        return
    where, names = key_where(table)
    sets = ", ".join(f"{column_ref(c)} = :v{i}" for i, c in enumerate(changes))
    params = dict(zip(names, values))
    params.update({f"v{i}": v for i, v in enumerate(changes.values())})
    conn.execute(f"UPDATE {quote(table.name)} SET {sets} WHERE {where}", params)


def _delete(conn: sqlite3.Connection, table: Table, values: list[str]) -> None:
    _require_row(conn, table, values)
    where, names = key_where(table)
    conn.execute(f"DELETE FROM {quote(table.name)} WHERE {where}", dict(zip(names, values)))


def write_rows(
    tx: Transaction,
    name: str,
    rows: list[dict[str, Any]],
    *,
    upsert: bool = False,
    ignore: bool = False,
    replace: bool = False,
    alter: bool = False,
    create_pks: list[str] | None = None,
    returning: bool = False,
    check_columns: bool = True,
) -> list[dict[str, Any]]:
    """Write `rows` (JSON already decoded to SQLite values) into table `name`: the one way
    the write API's insert, upsert and create, and scheduled imports, write rows.

    - `upsert`: update the columns each row names, or insert the row if its key is new
      (rows must name the whole key); otherwise insert, with `ignore` (keep the existing row
      on a key conflict) or `replace` (replace it).
    - `alter`: add the columns rows have and the table lacks (typed from their values);
      without it, an unknown column is a 400 naming every offending row.
    - `create_pks`: when given and the table does not exist, create it from the rows with
      this primary key (sqlite-utils infers the types); otherwise a missing table is a 404.
    - `returning`: fetch the rows back as stored (by key, or by rowid).
    - `check_columns`: name every row's unknown columns in one 400 (the insert API); off,
      SQLite reports the first one, as 1.0a41's create does.

    Returns the stored rows when `returning`, else []. Raises ApiError (400, 404)."""
    table = find_writable(tx, name)
    if table is None:
        if create_pks is None:
            raise ApiError(404, "Table not found")
        create_from_rows(tx, name, rows, create_pks, ignore=ignore, replace=replace)
        return []
    if alter:
        table = add_missing_columns(tx, table, rows)
    elif check_columns:
        _check_columns(table, rows)
    if upsert:
        _check_upsert_keys(table, rows)
        _upsert(tx.conn, table, rows)
        if not returning:
            return []
        return _fetch_by_keys(tx.conn, table, [[r[k] for k in table.row_keys] for r in rows])
    if not table.has_rowid:
        # WITHOUT ROWID: every row names its whole key, so rows are found again by key.
        _insert(tx.conn, table, rows, ignore=ignore, replace=replace)
        keys = [[r.get(k) for k in table.row_keys] for r in rows]
        return _fetch_by_keys(tx.conn, table, keys) if returning else []
    rowids = _insert(tx.conn, table, rows, ignore=ignore, replace=replace, want_rowids=returning)
    # A rowid table's rows come back with their rowid (as upsert and update return them), so
    # the caller can address what it created; 1.0a41 leaves it out.
    return _fetch_by_rowids(tx.conn, table, rowids, with_rowid=True) if returning else []


def update_row(tx: Transaction, name: str, key: list[str], changes: dict[str, Any], *,
               alter: bool = False, returning: bool = False) -> list[dict[str, Any]]:
    """Update the row whose key (in `Table.row_keys` order) is `key`; 404 if there is none.
    Returns the row as stored afterwards when `returning` (its key may have changed)."""
    table = writable(tx, name)
    _check_key(table, key)
    if alter:
        table = add_missing_columns(tx, table, [changes])
    _update(tx.conn, table, key, changes)
    if not returning:
        return []
    return _fetch_by_keys(tx.conn, table, [[changes.get(k, v) for k, v in zip(table.row_keys, key)]])


def delete_row(tx: Transaction, name: str, key: list[str]) -> None:
    """Delete the row whose key is `key`; 404 if there is none."""
    table = writable(tx, name)
    _check_key(table, key)
    _delete(tx.conn, table, key)


def _check_key(table: Table, key: list[str]) -> None:
    if len(key) != len(table.row_keys):
        raise ApiError(400, "URL row identifier does not match the primary key for this table")

"""Writing lambdasette's own tables (`query.internal`): column types and stored queries.

Every function here runs inside a writer transaction (`writes.transaction.Writer.run`), so
these changes are as durable and as serialized as any row, and are replicated with the
database. The tables are created on first use.
"""

from __future__ import annotations

import json
from typing import Any

from lambdasette.query import internal
from lambdasette.writes.transaction import Transaction


def set_column_type(tx: Transaction, table: str, column: str, kind: str | None,
                    config: dict[str, Any] | None) -> None:
    """Assign column type `kind` (with `config`) to `table.column`; `kind` None removes it."""
    if kind is None:
        if _exists(tx, internal.COLUMN_TYPES):
            tx.conn.execute(f'delete from "{internal.COLUMN_TYPES}" where table_name = ? and column_name = ?',
                            [table, column])
        return
    tx.conn.execute(internal.COLUMN_TYPES_DDL)
    tx.conn.execute(
        f'insert or replace into "{internal.COLUMN_TYPES}" (table_name, column_name, column_type, config) '
        "values (?, ?, ?, ?)",
        [table, column, kind, json.dumps(config) if config else None],
    )


def column_types(tx: Transaction, table: str) -> dict[str, tuple[str, Any]]:
    """The column types assigned to `table` as this transaction sees them."""
    return internal.read_column_types(tx.conn).get(table, {})


def stored_query(tx: Transaction, name: str) -> internal.StoredQuery | None:
    """The stored query `name` as this transaction sees it."""
    return internal.read_stored_queries(tx.conn, tx.database).get(name)


def store_query(tx: Transaction, query: internal.StoredQuery) -> None:
    """Insert a new stored query (the caller has checked that the name is free)."""
    tx.conn.execute(internal.QUERIES_DDL)
    tx.conn.execute(
        f'insert into "{internal.QUERIES}" (name, sql, title, description, description_html, options, '
        "parameters, is_write, is_private, owner_id) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [query.name, query.sql, query.title, query.description, query.description_html,
         _options(query.options), json.dumps(list(query.parameters)), int(query.is_write),
         int(query.is_private), query.owner_id],
    )


def update_query(tx: Transaction, query: internal.StoredQuery) -> None:
    """Replace a stored query's fields with `query`'s (same name)."""
    tx.conn.execute(
        f'update "{internal.QUERIES}" set sql = ?, title = ?, description = ?, description_html = ?, '
        "options = ?, parameters = ?, is_write = ?, is_private = ?, updated_at = CURRENT_TIMESTAMP "
        "where name = ?",
        [query.sql, query.title, query.description, query.description_html, _options(query.options),
         json.dumps(list(query.parameters)), int(query.is_write), int(query.is_private), query.name],
    )


def delete_query(tx: Transaction, name: str) -> None:
    """Delete a stored query (nothing if there is none)."""
    if _exists(tx, internal.QUERIES):
        tx.conn.execute(f'delete from "{internal.QUERIES}" where name = ?', [name])


def _options(options: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in options.items() if v is not None and v is not False},
                      sort_keys=True)


def _exists(tx: Transaction, table: str) -> bool:
    return tx.conn.execute("select 1 from sqlite_master where type = 'table' and name = ?",
                           [table]).fetchone() is not None

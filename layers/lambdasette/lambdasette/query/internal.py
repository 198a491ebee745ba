"""lambdasette's own tables inside each database: stored queries and column types.

Datasette 1.0a41 keeps both in its internal database, which lives as long as the process.
Here a process lives as long as a Lambda container, so they live where the data does: in
tables of the database they describe, written through the database's one writer (so they
are as durable as a row, and Litestream replicates them with everything else), read by every
reader. Their names start with `_lambdasette_`; like Litestream's tables they are left out of
the schema, so no listing, table page, `?sql=`, write endpoint or `execute-write` can name
them — only this module and `writes.internal` touch them.

- `_lambdasette_queries`: one row per stored query (`StoredQuery`).
- `_lambdasette_column_types`: one row per column with an assigned column type.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from lambdasette.names import fold

PREFIX = "_lambdasette_"
QUERIES = "_lambdasette_queries"
COLUMN_TYPES = "_lambdasette_column_types"

QUERIES_DDL = f"""CREATE TABLE IF NOT EXISTS "{QUERIES}" (
    name TEXT PRIMARY KEY,
    sql TEXT NOT NULL,
    title TEXT,
    description TEXT,
    description_html TEXT,
    options TEXT NOT NULL DEFAULT '{{}}',
    parameters TEXT NOT NULL DEFAULT '[]',
    is_write INTEGER NOT NULL DEFAULT 0,
    is_private INTEGER NOT NULL DEFAULT 0,
    owner_id TEXT,
    created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)"""

COLUMN_TYPES_DDL = f"""CREATE TABLE IF NOT EXISTS "{COLUMN_TYPES}" (
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    column_type TEXT NOT NULL,
    config TEXT,
    PRIMARY KEY (table_name, column_name)
)"""

# The options a stored query keeps besides its columns (1.0a41's QUERY_OPTION_FIELDS).
OPTION_FIELDS = ("hide_sql", "fragment", "on_success_message", "on_success_message_sql",
                 "on_success_redirect", "on_error_message", "on_error_redirect")


def is_internal(name: str) -> bool:
    """One of lambdasette's own tables (whatever the ASCII case, as SQLite compares names)."""
    return fold(name).startswith(PREFIX)


@dataclass(frozen=True)
class StoredQuery:
    """A named query of a database, as 1.0a41's `StoredQuery`: stored through the API
    (`source` "user", untrusted: running it needs `execute-sql`, or for a writable one
    `execute-write-sql` and the per-table actions) or from metadata `queries:` (`source`
    "config", trusted: `view-query` alone runs it)."""

    database: str
    name: str
    sql: str
    title: str | None = None
    description: str | None = None
    description_html: str | None = None
    parameters: tuple[str, ...] = ()
    is_write: bool = False
    is_private: bool = False
    is_trusted: bool = False
    source: str = "user"
    owner_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # A metadata query's entry as written there (0.65 lists its queries that way).
    config: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_065(self) -> dict[str, Any]:
        """The query as 0.65's database page lists it: its metadata entry with its name (a
        stored query: its SQL, title and description)."""
        if self.source == "config":
            return {**self.config, "name": self.name}
        return {"sql": self.sql, "title": self.title, "description": self.description,
                "name": self.name}

    def as_json(self, private: bool | None = None) -> dict[str, Any]:
        """1.0a41's `stored_query_to_dict`, with `private` (visible to this caller but not to
        anonymous callers) when given."""
        options = self.options
        out: dict[str, Any] = {
            "database": self.database,
            "name": self.name,
            "sql": self.sql,
            "title": self.title,
            "description": self.description,
            "description_html": self.description_html,
            "hide_sql": bool(options.get("hide_sql")),
            "fragment": options.get("fragment"),
            "parameters": list(self.parameters),
            "is_write": self.is_write,
            "is_private": self.is_private,
            "is_trusted": self.is_trusted,
            "source": self.source,
            "owner_id": self.owner_id,
            "on_success_message": options.get("on_success_message"),
            "on_success_message_sql": options.get("on_success_message_sql"),
            "on_success_redirect": options.get("on_success_redirect"),
            "on_error_message": options.get("on_error_message"),
            "on_error_redirect": options.get("on_error_redirect"),
        }
        if private is not None:
            out["private"] = private
        return out


def _tables(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "select name from sqlite_master where type = 'table' and name in (?, ?)",
        [QUERIES, COLUMN_TYPES],
    ).fetchall()
    return {row[0] for row in rows}


def read_stored_queries(conn: sqlite3.Connection, database: str) -> dict[str, StoredQuery]:
    """Every query stored in the database `conn` opens (an unguarded connection: these
    tables are nobody's to read through SQL), by name."""
    if QUERIES not in _tables(conn):
        return {}
    rows = conn.execute(
        f'select name, sql, title, description, description_html, options, parameters, '
        f'is_write, is_private, owner_id from "{QUERIES}" order by name'
    ).fetchall()
    out = {}
    for name, sql, title, description, description_html, options, parameters, is_write, \
            is_private, owner_id in rows:
        out[name] = StoredQuery(
            database=database, name=name, sql=sql, title=title, description=description,
            description_html=description_html, parameters=tuple(_json(parameters, [])),
            is_write=bool(is_write), is_private=bool(is_private), is_trusted=False, source="user",
            owner_id=owner_id, options=_json(options, {}),
        )
    return out


def read_column_types(conn: sqlite3.Connection) -> dict[str, dict[str, tuple[str, Any]]]:
    """Every assigned column type of the database `conn` opens: table -> column ->
    (type name, config)."""
    if COLUMN_TYPES not in _tables(conn):
        return {}
    out: dict[str, dict[str, tuple[str, Any]]] = {}
    for table, column, kind, config in conn.execute(
        f'select table_name, column_name, column_type, config from "{COLUMN_TYPES}"'
    ).fetchall():
        out.setdefault(table, {})[column] = (kind, _json(config, None))
    return out


def _json(text: str | None, default: Any) -> Any:
    if not text:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default

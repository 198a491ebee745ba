"""What one caller sees of a schema: the guard on their connection, and the shadow schema
that words their errors.

A hidden table and a missing one must answer alike. The guard refuses every statement that
touches a hidden table, but SQLite resolves names before it asks the authorizer, so the errors
differ: `select nosuch from hidden` says "no such column" where a missing table says "no such
table". When a statement fails for a caller with hidden tables, it is compiled again on a
shadow: an empty in-memory database with the schema as this caller sees it (hidden tables,
their indexes and the views over them left out). Its error is, by construction, the one the
caller would get if the hidden tables did not exist.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sqlite3
import threading

from lambdasette.auth import authorizer
from lambdasette.names import fold
from lambdasette.query.quote import quote
from lambdasette.query.schema import Schema

# Modules that read sqlite_stat1 when a connection first opens one of their tables; a
# guard refuses that read, so these are opened before the guard goes on (`warm`).
_STAT_READERS = re.compile(r"\bUSING\s+(rtree|rtree_i32|geopoly)\b", re.I)


def guard_for(schema: Schema, hidden: frozenset[str]) -> authorizer.Guard:
    """The guard for a caller who may not view `hidden` (from `hidden_tables`); one object
    per schema version and hidden set, so that `authorizer.install` rarely touches SQLite."""
    return schema.remember("guard", hidden, lambda: _guard(schema, hidden))


def _guard(schema: Schema, hidden: frozenset[str]) -> authorizer.Guard:
    user_hidden = hidden - schema.always_hidden
    return authorizer.Guard(
        hidden=hidden,
        known=schema.known,
        hidden_indexes=frozenset(i for i, t in schema.indexes.items() if t in hidden),
        secret_schema=bool(user_hidden),
        fk_to_hidden=frozenset(
            fold(t.name) for t in schema.tables.values()
            if any(fold(fk.other_table) in hidden for fk in t.outgoing)
        ),
        shadow=functools.partial(_shadow, schema, hidden),
    )


def user_hidden(schema: Schema, hidden: frozenset[str]) -> bool:
    """Whether the caller may not view some user table (not only SQLite's own)."""
    return bool(hidden - schema.always_hidden)


def warm(conn: sqlite3.Connection, schema: Schema) -> None:
    """Open the tables of modules that read sqlite_stat1 on connect (R*Tree), with no
    authorizer, once per connection and schema version."""
    if getattr(conn, "warmed", None) == schema.version:
        return
    names = [o.name for o in schema.objects
             if o.type == "table" and o.sql and _STAT_READERS.search(o.sql)]
    if names:
        with authorizer.trusted(conn):
            for name in names:
                try:
                    conn.execute(f"select 1 from {quote(name)} limit 0").fetchall()
                except sqlite3.Error:
                    pass  # a table this build cannot open fails for every caller alike
    try:
        conn.warmed = schema.version  # type: ignore[attr-defined]
    except AttributeError:
        pass


_shadow_lock = threading.Lock()


def _shadow(schema: Schema, hidden: frozenset[str]) -> tuple[sqlite3.Connection, threading.Lock]:
    """This caller's shadow (built once per schema version and hidden set) and the lock to
    hold while using it."""
    with _shadow_lock:
        return schema.remember("shadow", hidden,
                               lambda: (_build(schema, hidden), threading.Lock()), limit=16)


def _build(schema: Schema, hidden: frozenset[str]) -> sqlite3.Connection:
    from lambdasette.query import execute  # execute words errors with shadows: import late

    conn = sqlite3.connect(":memory:", check_same_thread=False)
    order = {"table": 0, "view": 1, "index": 2}
    for obj in sorted(schema.objects, key=lambda o: order.get(o.type, 3)):
        if obj.type not in order or not obj.sql:
            continue
        if fold(obj.name) in hidden or fold(obj.tbl_name) in hidden:
            continue
        if fold(obj.name).startswith("sqlite_") or authorizer.is_internal(obj.name):
            continue
        # No AUTOINCREMENT: it would create sqlite_sequence, which a caller must find missing.
        sql = re.sub(r"\bAUTOINCREMENT\b", "", obj.sql, flags=re.I) if obj.type == "table" else obj.sql
        try:
            conn.execute(sql)
        except sqlite3.Error:
            pass  # FTS storage tables already made by their FTS table; unknown modules
    execute.prepare(conn)
    # Lenient: no hidden table exists here, so a hidden name can only be a CTE's.
    authorizer.install(conn, dataclasses.replace(guard_for(schema, hidden), lenient=True))
    return conn

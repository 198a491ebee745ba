"""An SQLite authorizer that keeps a caller's SQL away from the tables it may not view.

Endpoints already hide such tables from listings, labels, `_through` and `_search`; this is
the guarantee underneath: any statement that would read one of them (directly, through a
view or a subquery) fails to prepare, whatever SQL the caller wrote.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from lambdasette.errors import ApiError

SCHEMA_TABLES = frozenset({"sqlite_master", "sqlite_schema", "sqlite_temp_master", "sqlite_temp_schema"})
DENIED_MESSAGE = "Permission denied: the query reads a table you may not view"


@dataclass(frozen=True)
class TableGuard:
    hidden: frozenset[str]  # lower-cased table names
    # Arbitrary SQL also may not read the schema table or run pragmas on hidden tables,
    # which would reveal their names and columns.
    strict: bool = False

    def __call__(self, code: int, arg1: str | None, arg2: str | None, db: str | None,
                 trigger: str | None) -> int:
        if code == sqlite3.SQLITE_READ and arg1 is not None:
            name = arg1.lower()
            if name in self.hidden:
                return sqlite3.SQLITE_DENY
            # Table-valued pragmas read sqlite_master's rowid internally; allow only that.
            if self.strict and name in SCHEMA_TABLES and arg2 != "ROWID":
                return sqlite3.SQLITE_DENY
        elif code == sqlite3.SQLITE_PRAGMA and self.strict and arg2 is not None:
            if arg2.lower() in self.hidden:
                return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def install(conn: sqlite3.Connection, guard: TableGuard | None) -> None:
    """Put `guard` on the connection (None removes it), touching SQLite only on a change:
    setting an authorizer expires every cached statement."""
    if not hasattr(conn, "guard"):  # not one of ours: nothing remembered, always set
        conn.set_authorizer(guard)
    elif conn.guard != guard:
        conn.set_authorizer(guard)
        conn.guard = guard


def is_denial(exc: sqlite3.Error) -> bool:
    message = str(exc)
    return message == "not authorized" or (
        message.startswith("access to ") and message.endswith(" is prohibited")
    )


def denied_error() -> ApiError:
    return ApiError(403, DENIED_MESSAGE)

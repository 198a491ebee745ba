"""Running SQL on a read connection: time limits, row caps, read-only validation."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lambdasette.auth import authorizer
from lambdasette.errors import ApiError
from lambdasette.query.fts import escape_fts

TIMEOUT_MESSAGE = (
    "SQL query took too long. The time limit is controlled by the sql_time_limit_ms setting."
)

_ALLOWED_PRAGMAS = (
    "database_list", "foreign_key_list", "function_list", "index_info", "index_list",
    "index_xinfo", "page_count", "max_page_count", "page_size", "schema_version",
    "table_info", "table_xinfo",
)
_DISALLOWED_PRAGMA = re.compile(r"pragma(?!_(" + "|".join(_ALLOWED_PRAGMAS) + r")\b)")
_PRAGMA_MESSAGE = "Statement contained a disallowed PRAGMA. Allowed pragma functions are " + ", ".join(
    f"pragma_{name}()" for name in _ALLOWED_PRAGMAS
)
_ALLOWED_START = re.compile(r"^(explain\s+(query\s+plan\s+)?)?(select|with)\b")
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)+", re.S)


def validate_select(sql: str) -> None:
    """Only one read-only SELECT/WITH statement may run as arbitrary SQL."""
    text = _LEADING_COMMENTS.sub("", sql).strip().lower()
    if not _ALLOWED_START.match(text):
        raise ApiError(400, "Statement must be a SELECT", title="Invalid SQL")
    if _DISALLOWED_PRAGMA.search(text):
        raise ApiError(400, _PRAGMA_MESSAGE, title="Invalid SQL")


def prepare(conn: sqlite3.Connection) -> None:
    """Set up a read connection for callers' SQL, once per connection: the SQL functions
    every read connection offers (Datasette's `escape_fts`)."""
    if getattr(conn, "prepared", False):
        return
    conn.create_function("escape_fts", 1, escape_fts, deterministic=True)
    if hasattr(conn, "prepared"):
        conn.prepared = True


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


class TimeLimit:
    """Interrupts SQLite through a progress handler once the deadline has passed."""

    def __init__(self, conn: sqlite3.Connection, ms: int | None) -> None:
        self.conn = conn
        self.deadline = None if ms is None else time.monotonic() + ms / 1000

    def __enter__(self) -> TimeLimit:
        if self.deadline is not None:
            deadline = self.deadline
            self.conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.deadline is not None:
            self.conn.set_progress_handler(None, 0)


def sql_error(exc: sqlite3.Error, sql: str = "") -> ApiError:
    message = str(exc)
    if message == "interrupted":
        return ApiError(400, TIMEOUT_MESSAGE, title="SQL Interrupted")
    if authorizer.is_denial(exc):
        return authorizer.denied_error()
    return ApiError(400, message, title="Invalid SQL")


def run(
    conn: sqlite3.Connection,
    sql: str,
    params: dict[str, Any] | Sequence[Any] | None = None,
    *,
    time_limit_ms: int | None,
    max_rows: int | None = None,
) -> Result:
    if time_limit_ms is not None and time_limit_ms <= 0:
        raise ApiError(400, TIMEOUT_MESSAGE, title="SQL Interrupted")
    try:
        with TimeLimit(conn, time_limit_ms):
            cursor = conn.execute(sql, params or {})
            if max_rows is None:
                rows = cursor.fetchall()
                truncated = False
            else:
                rows = cursor.fetchmany(max_rows + 1)
                truncated = len(rows) > max_rows
                rows = rows[:max_rows]
            columns = [d[0] for d in cursor.description or ()]
    except (sqlite3.Error, OverflowError) as exc:
        if isinstance(exc, OverflowError):
            raise ApiError(400, str(exc), title="Invalid SQL") from None
        raise sql_error(exc, sql) from None
    return Result(columns, rows, truncated)



def scalar(conn: sqlite3.Connection, sql: str, params: dict[str, Any] | None = None,
           *, time_limit_ms: int | None) -> Any:
    result = run(conn, sql, params, time_limit_ms=time_limit_ms)
    return result.rows[0][0] if result.rows else None

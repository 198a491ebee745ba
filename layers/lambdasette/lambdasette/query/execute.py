"""Running a caller's SQL: the connection's limits and functions, time limits, row and byte
caps, read-only validation, and errors worded so that they reveal nothing hidden.

`prepare` readies any connection for SQL an untrusted caller wrote (today the read
connections; tomorrow an `execute-write` connection): the function allow-list and table rules
of `auth.authorizer` (the guard is installed separately, per caller), SQLite limits on the
size of values and statements, and a heap limit for the process.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lambdasette.auth import authorizer
from lambdasette.errors import ApiError
from lambdasette.query.fts import escape_fts

MiB = 1024 * 1024

TIMEOUT_MESSAGE = (
    "SQL query took too long. The time limit is controlled by the sql_time_limit_ms setting."
)

# The largest string or BLOB a query may make or read (SQLITE_LIMIT_LENGTH): it bounds what
# one call of randomblob, zeroblob, printf, replace, group_concat, ... can allocate and how
# long it can run (SQLite checks the clock between steps, never inside a function).
DEFAULT_MAX_VALUE_BYTES = 8 * MiB
# The longest statement (SQLITE_LIMIT_SQL_LENGTH). Generated SQL stays far below it (a query
# string is at most a few tens of KB); it bounds how many calls one expression can hold.
MAX_SQL_BYTES = 100_000
# What one query's randomblob and zeroblob calls may make in all.
MAX_GENERATED_BYTES = 64 * MiB
# What one query may fetch into the server (strings and BLOBs): rows that repeat a large
# value (`select printf('%.8000000c', 'x') from big_table`) would otherwise fill memory far
# faster than any time limit ends them. SQLite's heap limit bounds one row.
MAX_RESULT_BYTES = 128 * MiB
# Rows are fetched in small chunks; only a chunk that took this long to fetch can hold
# enough bytes to matter (copying 8 MB alone takes longer), so only those are measured:
# measuring every cell of every page would cost more than the rest of a page.
_CHUNK_ROWS = 16
_SLOW_CHUNK_S = 0.002

_ALLOWED_PRAGMAS = authorizer.ALLOWED_PRAGMA_NAMES
_DISALLOWED_PRAGMA = re.compile(r"pragma(?!_(" + "|".join(_ALLOWED_PRAGMAS) + r")\b)")
_PRAGMA_MESSAGE = "Statement contained a disallowed PRAGMA. Allowed pragma functions are " + ", ".join(
    f"pragma_{name}()" for name in _ALLOWED_PRAGMAS
)
_ALLOWED_START = re.compile(r"^(explain\s+(query\s+plan\s+)?)?(select|with)\b")
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)+", re.S)
_EXPLAIN = re.compile(r"^explain\s+(query\s+plan\s+)?", re.I)


def validate_select(sql: str) -> None:
    """Only one read-only SELECT/WITH statement may run as arbitrary SQL."""
    text = _LEADING_COMMENTS.sub("", sql).strip().lower()
    if not _ALLOWED_START.match(text):
        raise ApiError(400, "Statement must be a SELECT", title="Invalid SQL")
    if _DISALLOWED_PRAGMA.search(text):
        raise ApiError(400, _PRAGMA_MESSAGE, title="Invalid SQL")
    if len(sql.encode("utf-8", "surrogatepass")) > MAX_SQL_BYTES:
        raise ApiError(400, f"SQL is too long: the limit is {MAX_SQL_BYTES} bytes", title="Invalid SQL")


# -- preparing a connection ----------------------------------------------------------------


@dataclass
class QueryState:
    """Per connection: the running query's deadline and value limit, for our own functions
    (they run inside SQLite, where the progress handler cannot stop them), and why one of
    them stopped the query (SQLite only reports that a Python function raised)."""

    max_value: int
    deadline: float | None = None
    reason: str | None = None
    generated: int = 0

    def start(self, deadline: float | None) -> None:
        self.deadline, self.reason, self.generated = deadline, None, 0

    def check(self, size: int = 0) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.reason = "interrupted"
            raise TimeoutError
        self.generated += size
        if size > self.max_value or self.generated > MAX_GENERATED_BYTES:
            self.reason = "toobig"
            raise OverflowError


def limits(max_value_bytes: int) -> dict[int, int]:
    return {
        sqlite3.SQLITE_LIMIT_LENGTH: max_value_bytes,
        sqlite3.SQLITE_LIMIT_SQL_LENGTH: MAX_SQL_BYTES,
        sqlite3.SQLITE_LIMIT_ATTACHED: 0,  # one database per connection, never another file
    }


def prepare(conn: sqlite3.Connection, *, max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES) -> None:
    """Ready `conn` for SQL an untrusted caller wrote, once per connection: Datasette's
    `escape_fts`; `randomblob`/`zeroblob` that stop at the deadline; SQLite limits; the
    process's heap limit; and, until the caller's guard replaces it, a guard that already
    enforces the function allow-list."""
    if getattr(conn, "prepared", False):
        return
    state = QueryState(max_value=max_value_bytes)
    conn.create_function("escape_fts", 1, escape_fts, deterministic=True)
    conn.create_function("randomblob", 1, _randomblob(state))
    conn.create_function("zeroblob", 1, _zeroblob(state), deterministic=True)
    for name in ("printf", "format"):
        conn.create_function(name, -1, _printf(state, max_value_bytes), deterministic=True)
    for category, value in limits(max_value_bytes).items():
        conn.setlimit(category, value)
    _limit_heap(conn)
    if getattr(conn, "guard", None) is None:
        authorizer.install(conn, authorizer.UNTRUSTED)
    # Remembered on our connection classes (a plain sqlite3.Connection takes no attributes:
    # it is prepared again if asked, and its functions then see no deadline).
    try:
        conn.query_state = state  # type: ignore[attr-defined]
        conn.prepared = True  # type: ignore[attr-defined]
    except AttributeError:
        pass


def _sqlite_int(value: object) -> int:
    """An argument as SQLite's integer conversion reads it (text: its leading integer)."""
    if isinstance(value, bool) or value is None:
        return int(value or 0)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value:
            return 0
        return int(max(min(value, 2.0**63), -(2.0**63)))
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    match = re.match(r"\s*([+-]?\d+)", text)
    return int(match.group(1)[:20]) if match else 0


def _randomblob(state: QueryState) -> Callable[[object], bytes]:
    def randomblob(n: object) -> bytes:
        size = max(_sqlite_int(n), 1)
        state.check(size)
        return os.urandom(size)

    return randomblob


def _zeroblob(state: QueryState) -> Callable[[object], bytes]:
    def zeroblob(n: object) -> bytes:
        size = max(_sqlite_int(n), 0)
        state.check(size)
        return bytes(size)

    return zeroblob


# A printf conversion: flags, width, precision, length, type. SQLite's `%c` repeats its
# character `precision` times in a loop that goes on even once the value is too big: one
# `printf('%.*c', 2000000000, 'x')` runs for half a minute. Everything else in printf fails
# fast at SQLITE_LIMIT_LENGTH.
_PRINTF_SPEC = re.compile(r"%([-+ #0!,]*)(\*|\d+)?(?:\.(\*|\d*))?(l{0,2})(.?)", re.S)


def _char_repeat(args: tuple[object, ...]) -> int:
    """The largest repeat count a `%c` conversion in printf(*args) asks for."""
    fmt = args[0]
    if isinstance(fmt, bytes):
        fmt = fmt.decode("utf-8", "replace")
    if not isinstance(fmt, str) or "c" not in fmt:
        return 0
    largest, index = 0, 1
    for match in _PRINTF_SPEC.finditer(fmt):
        width, precision, kind = match.group(2), match.group(3), match.group(5)
        if kind == "%":
            continue
        if width == "*":
            index += 1
        if precision == "*":
            precision = str(abs(_sqlite_int(args[index] if index < len(args) else 0)))
            index += 1
        if kind == "c" and precision:
            largest = max(largest, int(precision[:12]))
        index += 1
    return largest


def _printf(state: QueryState, max_value: int) -> Callable[..., object]:
    """SQLite's own printf, run on a private connection, after refusing a `%c` repeat
    beyond the value limit and checking the deadline."""
    helper: sqlite3.Connection | None = None
    statements: dict[int, str] = {}

    def printf(*args: object) -> object:
        nonlocal helper
        state.check()
        if args and _char_repeat(args) > max_value:
            state.check(max_value + 1)  # too big: raises
        if helper is None:
            helper = sqlite3.connect(":memory:", check_same_thread=False)
            helper.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, max_value)
        sql = statements.get(len(args))
        if sql is None:
            sql = statements[len(args)] = "select printf(" + ", ".join("?" * len(args)) + ")"
        return helper.execute(sql, args).fetchone()[0]

    return printf


_heap_limited = False


def heap_limit_bytes() -> int:
    """A quarter of the memory (Lambda's configured size, else the machine's), between
    256 and 512 MiB: what SQLite may hold at once across the whole process. (A result row
    is held by SQLite, then copied into Python: a row that fits here costs at most twice.)"""
    configured = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    if configured.isdigit():
        total = int(configured) * MiB
    else:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            total = 4096 * MiB
    return max(256 * MiB, min(512 * MiB, total // 4))


def _limit_heap(conn: sqlite3.Connection) -> None:
    # Process-wide in SQLite: set once. The hard limit fails an allocation past it (the query
    # gets "out of memory", the process lives); the soft limit makes SQLite shed caches first.
    global _heap_limited
    if _heap_limited:
        return
    hard = heap_limit_bytes()
    conn.execute(f"PRAGMA soft_heap_limit = {hard // 2}")
    conn.execute(f"PRAGMA hard_heap_limit = {hard}")
    _heap_limited = True


# -- running a query -----------------------------------------------------------------------


@dataclass
class Result:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False


class TimeLimit:
    """Interrupts SQLite through a progress handler once the deadline has passed (and tells
    our own SQL functions the deadline)."""

    def __init__(self, conn: sqlite3.Connection, deadline: float | None) -> None:
        self.conn = conn
        self.deadline = deadline  # time.monotonic()
        self.state: QueryState | None = getattr(conn, "query_state", None)

    def __enter__(self) -> TimeLimit:
        if self.state is not None:
            self.state.start(self.deadline)
        if self.deadline is not None:
            deadline = self.deadline
            self.conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.deadline is not None:
            self.conn.set_progress_handler(None, 0)
        if self.state is not None:
            self.state.deadline = None  # the reason stays, for `sql_error`


def _max_value(conn: sqlite3.Connection) -> int:
    state = getattr(conn, "query_state", None)
    return state.max_value if state is not None else conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)


def too_big_error(limit: int) -> ApiError:
    return ApiError(400, f"SQL query made or read a value larger than {limit} bytes "
                         "(the max_value_mb setting)", title="SQL Interrupted")


def result_too_big_error(limit: int) -> ApiError:
    return ApiError(400, f"SQL query result is larger than {limit} bytes", title="SQL Interrupted")


def _size(rows: list[tuple[Any, ...]]) -> int:
    size = 0
    for row in rows:
        for value in row:
            kind = type(value)
            if kind is str or kind is bytes:
                size += len(value)
    return size


def memory_error() -> ApiError:
    return ApiError(400, "SQL query needed more memory than a query may use", title="SQL Interrupted")


def sql_error(exc: sqlite3.Error, conn: sqlite3.Connection | None = None) -> ApiError:
    """The API error for an SQLite error, as it is (no hidden tables involved)."""
    message = str(exc)
    if message == "interrupted":
        return ApiError(400, TIMEOUT_MESSAGE, title="SQL Interrupted")
    if message == "user-defined function raised exception" and conn is not None:
        state = getattr(conn, "query_state", None)
        reason = state.reason if state is not None else None
        if reason == "interrupted":
            return ApiError(400, TIMEOUT_MESSAGE, title="SQL Interrupted")
        if reason == "toobig":
            return too_big_error(_max_value(conn))
    if message == "string or blob too big":
        return too_big_error(_max_value(conn) if conn is not None else DEFAULT_MAX_VALUE_BYTES)
    if message == "out of memory":
        return memory_error()
    function = authorizer.denied_function(exc)
    if function is not None:
        return authorizer.function_error(function)
    if message == "not authorized":  # a pragma or ATTACH the guard refused
        return ApiError(400, "Statement is not allowed: it uses a disallowed PRAGMA or ATTACH, or a "
                             "table-valued function that is not allowed (dbstat, sqlite_stmt, ...)",
                        title="Invalid SQL")
    if authorizer.is_denial(exc):
        return authorizer.denied_error()
    return ApiError(400, message, title="Invalid SQL")


_RUNTIME = ("interrupted", "string or blob too big", "out of memory",
            "user-defined function raised exception")


def caller_error(conn: sqlite3.Connection, exc: sqlite3.Error, sql: str,
                 params: dict[str, Any] | Sequence[Any] | None) -> ApiError | None:
    """The API error for `exc`, worded as if the tables the caller may not view did not
    exist (see `query.visibility`): the statement is compiled again on the caller's shadow
    schema, and if that fails too, its error is the answer. None: the guard refused a
    statement that compiles without any hidden table — it named a recursive CTE like one —
    so it may run again with a lenient guard."""
    guard = getattr(conn, "guard", None)
    if (guard is None or not guard.hidden or guard.shadow is None
            or str(exc) in _RUNTIME):
        return sql_error(exc, conn)
    shadow, lock = guard.shadow()
    text = _EXPLAIN.sub("", _LEADING_COMMENTS.sub("", sql))
    with lock:
        try:
            shadow.execute("explain " + text, params or {}).fetchall()
        except sqlite3.Error as shadow_exc:
            return sql_error(shadow_exc, shadow)
        except (OverflowError, ValueError, TypeError):
            pass
    if authorizer.is_denial(exc) and not guard.lenient:
        return None
    return sql_error(exc, conn)


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
    deadline = None if time_limit_ms is None else time.monotonic() + time_limit_ms / 1000
    try:
        try:
            return _run(conn, sql, params, deadline, max_rows)
        except sqlite3.Error as exc:
            error = caller_error(conn, exc, sql, params)
            if error is not None:
                raise error from None
        guard = conn.guard
        authorizer.install(conn, dataclasses.replace(guard, lenient=True))
        try:
            return _run(conn, sql, params, deadline, max_rows)
        except sqlite3.Error as exc:
            raise caller_error(conn, exc, sql, params) or sql_error(exc, conn) from None
        finally:
            authorizer.install(conn, guard)
    except OverflowError as exc:  # a Python int beyond SQLite's 64 bits as a parameter
        raise ApiError(400, str(exc), title="Invalid SQL") from None
    except UnicodeEncodeError:  # a lone surrogate in a parameter: not text SQLite can hold
        raise ApiError(400, "A parameter is not valid Unicode text", title="Invalid SQL") from None


def _run(conn: sqlite3.Connection, sql: str, params: dict[str, Any] | Sequence[Any] | None,
         deadline: float | None, max_rows: int | None) -> Result:
    rows: list[tuple[Any, ...]] = []
    with TimeLimit(conn, deadline):
        cursor = conn.execute(sql, params or {})
        wanted = None if max_rows is None else max_rows + 1
        size = 0
        while wanted is None or len(rows) < wanted:
            started = time.perf_counter()
            chunk = cursor.fetchmany(_CHUNK_ROWS if wanted is None
                                     else min(_CHUNK_ROWS, wanted - len(rows)))
            if not chunk:
                break
            if time.perf_counter() - started > _SLOW_CHUNK_S:
                size += _size(chunk)
                if size > MAX_RESULT_BYTES:
                    raise result_too_big_error(MAX_RESULT_BYTES)
            rows += chunk
        columns = [d[0] for d in cursor.description or ()]
    truncated = max_rows is not None and len(rows) > max_rows
    return Result(columns, rows[:max_rows] if truncated else rows, truncated)


def scalar(conn: sqlite3.Connection, sql: str, params: dict[str, Any] | None = None,
           *, time_limit_ms: int | None) -> Any:
    result = run(conn, sql, params, time_limit_ms=time_limit_ms)
    return result.rows[0][0] if result.rows else None

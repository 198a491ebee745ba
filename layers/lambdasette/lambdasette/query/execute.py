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
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from operator import length_hint
from typing import Any, TypeVar

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
# What one query may fetch into the server (its text and BLOB cells, every one counted),
# unless the caller gives a budget of its own (`run(max_bytes=)`: what the answer may hold):
# rows that repeat a large value (`select printf('%.8000000c', 'x') from big_table`) would
# otherwise fill memory far faster than any time limit ends them. SQLite's heap limit bounds
# one row. The answer is then `truncated` (a table page gets a `next`), as any answer over
# the response budget is (`query.render`).
MAX_RESULT_BYTES = 32 * MiB
# The longest LIKE or GLOB pattern (SQLITE_LIMIT_LIKE_PATTERN_LENGTH; SQLite's own is 50,000).
# One comparison costs up to length(value) x length(pattern) inside one call, which the time
# limit cannot interrupt: at the 8 MiB value limit and 100 bytes, about 1.5 s for LIKE and up
# to 6 s for GLOB character classes on a quiet core here (README, "Known gaps"); at 50,000
# bytes it was 25 minutes. A `__contains` filter's value may be 98 characters.
MAX_LIKE_PATTERN_BYTES = 100

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
        sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: MAX_LIKE_PATTERN_BYTES,
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


# -- a request's time ----------------------------------------------------------------------

# One request's queries together - a page's rows, count, facets, suggestions and labels, or
# every page of a CSV export - take at most this many times its time limit
# (`sql_time_limit_ms`, lowered by `_timelimit`): room for a count after a slow page, never
# one full limit per facet.
REQUEST_TIME_LIMITS = 3


class Deadline:
    """One request's time for SQL: every query it runs gets at most what is left of it
    (`limit`), whatever its own limit, so a page that runs many queries (its rows, count,
    facets, suggestions, labels, each page of a CSV export) ends near one deadline instead of
    one per query. Set when the request is acted on (`web.app`), held on the `Context`, and
    current (`current()`) while its handler runs, so that every `run` draws from it.

    `cancel()` (the client went away) spends it at once, and a query running at the time is
    interrupted at its next progress check. `pause()`/`resume()` leave out the time a CSV
    stream waits for its client between pages."""

    def __init__(self, budget_ms: int | None) -> None:
        self.budget_ms = budget_ms
        self.end = None if budget_ms is None else time.monotonic() + budget_ms / 1000
        self.cancelled = False
        self._paused_at: float | None = None

    def start(self) -> None:
        """Start the budget now (a request is acted on once its body has arrived)."""
        self.end = None if self.budget_ms is None else time.monotonic() + self.budget_ms / 1000
        self._paused_at = None

    def remaining_ms(self) -> int | None:
        """What is left (None: no deadline); 0 once spent or cancelled."""
        if self.cancelled:
            return 0
        if self.end is None:
            return None
        now = self._paused_at if self._paused_at is not None else time.monotonic()
        return max(0, int((self.end - now) * 1000))

    def limit(self, own_ms: int | None) -> int | None:
        """The time limit for one query whose own limit is `own_ms`."""
        left = self.remaining_ms()
        if left is None:
            return own_ms
        return left if own_ms is None else min(own_ms, left)

    @property
    def spent(self) -> bool:
        return self.remaining_ms() == 0

    def cancel(self) -> None:
        self.cancelled = True

    def pause(self) -> None:
        if self._paused_at is None:
            self._paused_at = time.monotonic()

    def resume(self) -> None:
        if self._paused_at is not None:
            if self.end is not None:
                self.end += time.monotonic() - self._paused_at
            self._paused_at = None

    @contextmanager
    def current(self) -> Iterator[Deadline]:
        """This deadline as the one every `run` in this context draws from."""
        token = _CURRENT.set(self)
        try:
            yield self
        finally:
            _CURRENT.reset(token)


_CURRENT: ContextVar[Deadline | None] = ContextVar("lambdasette_request_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the request being served in this context, if any."""
    return _CURRENT.get()


def effective_limit(own_ms: int | None, deadline: Deadline | None = None) -> int | None:
    """The time limit a query with its own limit `own_ms` runs under now."""
    deadline = deadline if deadline is not None else _CURRENT.get()
    return own_ms if deadline is None else deadline.limit(own_ms)


@dataclass(frozen=True)
class TimedOut:
    """A query (a count, a facet, the suggestions) that ran out of time under `limit_ms`; when
    it had its own full limit it is remembered for the data version (`within_deadline`):
    asking again with no more time costs nothing."""

    limit_ms: int | None


class Partial(Exception):
    """Raised by a `within_deadline` query whose result is incomplete (some of its queries were
    cut short or skipped): `value` is shown, never remembered."""

    def __init__(self, value: Any) -> None:
        super().__init__("partial result")
        self.value = value


class _NotRemembered(Exception):
    """Carries a result out of the cache's `compute` so that it is not stored."""

    def __init__(self, value: Any) -> None:
        super().__init__("not remembered")
        self.value = value


def had_full_time(limit_ms: int | None, own_ms: int | None, deadline: Deadline | None) -> bool:
    """Whether a query that ran under `limit_ms` and was interrupted truly ran out of its own
    time (`own_ms`): not cut short by what was left of the request, and not stopped because
    the client went away (`Deadline.cancel`) - those may well finish another time."""
    return limit_ms == own_ms and not (deadline is not None and deadline.cancelled)


_T = TypeVar("_T")


def within_deadline(
    cached: Callable[[Hashable, Callable[[], Any]], Any], key: Hashable, own_ms: int | None,
    query: Callable[[int | None], _T],
) -> _T | TimedOut:
    """`query(limit)`'s result, remembered per data version by `cached(key, compute)` (which
    stores what is not None), or `TimedOut`: at once, with no query, when the request's
    deadline is spent, or when the same query already ran out of its own full limit. Only
    such a timeout is remembered (`had_full_time`); one cut short by the request's deadline
    or by a client that went away is answered as timed out this time only, and a `Partial`
    result is shown but not remembered either."""
    deadline = current_deadline()
    limit = effective_limit(own_ms, deadline)
    if limit is not None and limit <= 0:
        return TimedOut(0)

    def compute() -> Any:
        try:
            return query(limit)
        except Partial as partial:
            raise _NotRemembered(partial.value) from None
        except ApiError as exc:
            if exc.title != "SQL Interrupted":
                raise
            timed_out = TimedOut(limit)
            if not had_full_time(limit, own_ms, deadline):
                raise _NotRemembered(timed_out) from None
            return timed_out

    try:
        return cached(key, compute)
    except _NotRemembered as kept_out:
        return kept_out.value


# -- running a query -----------------------------------------------------------------------


@dataclass
class Result:
    """What a query returned: its columns and rows (at most `max_rows`; `truncated` when there
    were more, or when `cut`: the rows' text and BLOBs reached `max_bytes`, so the rest was
    never fetched); `text_bytes` is the length of every text and BLOB cell fetched, which
    bounds what rendering them can make (`query.render.worst_size`)."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    truncated: bool = False
    cut: bool = False
    text_bytes: int = 0


class Parameters(dict):  # type: ignore[type-arg]
    """A statement's `:named` parameters, taken from the one prepare that runs it: the
    driver looks each name up here as it binds, so `asked` lists the names SQLite found in
    the statement (in order) and a name nobody gave binds as "" (as Datasette binds missing
    ones) - no second compile (an `EXPLAIN`) is needed to find them. Names starting with `_`
    are never filled in: they are Datasette's magic parameters, which lambdasette does not
    offer, and stay a 400."""

    def __init__(self, given: dict[str, Any] | None = None) -> None:
        super().__init__(given or {})
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> Any:
        if key not in self.asked:
            self.asked.append(key)
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        if key.startswith("_"):
            raise KeyError(key)
        return ""

    def names(self) -> list[str]:
        """The parameters the statement has, in order, magic ones left out."""
        return [name for name in self.asked if not name.startswith("_")]


class TimeLimit:
    """Interrupts SQLite through a progress handler once the deadline has passed or the
    request was cancelled (and tells our own SQL functions the deadline)."""

    def __init__(self, conn: sqlite3.Connection, deadline: float | None,
                 request: Deadline | None = None) -> None:
        self.conn = conn
        self.deadline = deadline  # time.monotonic()
        self.request = request
        self.state: QueryState | None = getattr(conn, "query_state", None)

    def __enter__(self) -> TimeLimit:
        if self.state is not None:
            self.state.start(self.deadline)
        if self.deadline is not None:
            deadline, request = self.deadline, self.request
            if request is None:
                self.conn.set_progress_handler(lambda: time.monotonic() > deadline, 1000)
            else:
                self.conn.set_progress_handler(
                    lambda: request.cancelled or time.monotonic() > deadline, 1000)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.deadline is not None:
            self.conn.set_progress_handler(None, 0)
        if self.state is not None:
            self.state.deadline = None  # the reason stays, for `sql_error`


@contextmanager
def driver_errors() -> Iterator[None]:
    """Python's sqlite3 driver raises more than sqlite3.Error for what SQLite reports: every
    SQLITE_NOMEM becomes MemoryError, and an error message quoting the caller's bytes that are
    not UTF-8 (`json_extract('{}', x'ff')`, an FTS MATCH syntax error) a UnicodeDecodeError.
    Both are SQLite refusing the caller's SQL: as sqlite3.Error here, every statement of a
    caller's SQL (its run, its shadow compile, execute-write's analysis and run) answers a
    400 for them, never a 500."""
    try:
        yield
    except MemoryError:
        raise sqlite3.OperationalError("out of memory") from None
    except UnicodeDecodeError as exc:
        raw = exc.object if isinstance(exc.object, bytes) else b""
        message = bytes(raw).decode("utf-8", "replace") or "SQL error (its message is not valid UTF-8)"
        raise sqlite3.OperationalError(message) from None


def _max_value(conn: sqlite3.Connection) -> int:
    state = getattr(conn, "query_state", None)
    return state.max_value if state is not None else conn.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)


def too_big_error(limit: int) -> ApiError:
    return ApiError(400, f"SQL query made or read a value larger than {limit} bytes "
                         "(the max_value_mb setting)", title="SQL Interrupted")


def memory_error() -> ApiError:
    return ApiError(400, "SQL query needed more memory than a query may use", title="SQL Interrupted")


def timeout_error() -> ApiError:
    return ApiError(400, TIMEOUT_MESSAGE, title="SQL Interrupted")


def sql_error(exc: sqlite3.Error, conn: sqlite3.Connection | None = None) -> ApiError:
    """The API error for an SQLite error, as it is (no hidden tables involved)."""
    message = str(exc)
    if message == "interrupted":
        return timeout_error()
    if message == "user-defined function raised exception" and conn is not None:
        state = getattr(conn, "query_state", None)
        reason = state.reason if state is not None else None
        if reason == "interrupted":
            return timeout_error()
        if reason == "toobig":
            return too_big_error(_max_value(conn))
    if message == "string or blob too big":
        return too_big_error(_max_value(conn) if conn is not None else DEFAULT_MAX_VALUE_BYTES)
    if message == "out of memory":
        return memory_error()
    if message == "LIKE or GLOB pattern too complex":
        return ApiError(400, f"LIKE or GLOB pattern too complex: a pattern may be at most "
                             f"{MAX_LIKE_PATTERN_BYTES} bytes long", title="Invalid SQL")
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
# A statement that failed after more than this share of its time limit is not compiled
# again to word its error (`caller_error`): compiling is the one part of a statement the time
# limit cannot interrupt, and a statement whose compile is slow (CTEs that expand
# exponentially) would otherwise be paid for up to three times.
SHADOW_SHARE = 0.25


def caller_error(conn: sqlite3.Connection, exc: sqlite3.Error, sql: str,
                 params: dict[str, Any] | Sequence[Any] | None, *,
                 elapsed: float = 0.0, limit_ms: int | None = None) -> ApiError | None:
    """The API error for `exc`, worded as if the tables the caller may not view did not
    exist (see `query.visibility`): the statement is compiled again on the caller's shadow
    schema, and if that fails too, its error is the answer. None: the guard refused a
    statement that compiles without any hidden table — it named a recursive CTE like one —
    so it may run again with a lenient guard.

    `elapsed`: how long the failed attempt took. A failure slower than a quarter of the time
    limit (`limit_ms`) is answered as a timeout instead, for every caller who may not view
    some table, whatever the statement names: the shadow compile would cost as much again,
    and a timeout tells nothing about which names exist."""
    guard = getattr(conn, "guard", None)
    if (guard is None or not guard.hidden or guard.shadow is None
            or str(exc) in _RUNTIME):
        return sql_error(exc, conn)
    allowed = (limit_ms / 1000 if limit_ms is not None else 1.0) * SHADOW_SHARE
    if elapsed > allowed:
        return timeout_error()
    shadow, lock = guard.shadow()
    text = _EXPLAIN.sub("", _LEADING_COMMENTS.sub("", sql))
    with lock:
        try:
            with driver_errors():
                shadow.execute("explain " + text, params if params is not None else {}).fetchall()
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
    max_bytes: int | None = None,
    deadline: Deadline | None = None,
) -> Result:
    """Run one read statement of a caller's (or generated from a caller's arguments) under
    its time limit - or less, what is left of the request's `deadline` (by default the
    current one) - fetching at most `max_rows` rows and stopping before the rows' text and
    BLOBs pass `max_bytes` (the answer is then `truncated` and `cut`). Every error is an
    ApiError worded for the caller (`caller_error`)."""
    deadline = deadline if deadline is not None else _CURRENT.get()
    limit = time_limit_ms if deadline is None else deadline.limit(time_limit_ms)
    if limit is not None and limit <= 0:
        raise timeout_error()
    started = time.monotonic()
    end = None if limit is None else started + limit / 1000
    try:
        try:
            return _run(conn, sql, params, end, max_rows, max_bytes, deadline)
        except sqlite3.Error as exc:
            error = caller_error(conn, exc, sql, params, elapsed=time.monotonic() - started, limit_ms=limit)
            if error is not None:
                raise error from None
        guard = conn.guard
        authorizer.install(conn, dataclasses.replace(guard, lenient=True))
        try:
            return _run(conn, sql, params, end, max_rows, max_bytes, deadline)
        except sqlite3.Error as exc:
            raise caller_error(conn, exc, sql, params, elapsed=time.monotonic() - started,
                               limit_ms=limit) or sql_error(exc, conn) from None
        finally:
            authorizer.install(conn, guard)
    except OverflowError as exc:  # a Python int beyond SQLite's 64 bits as a parameter
        raise ApiError(400, str(exc), title="Invalid SQL") from None
    except UnicodeEncodeError:  # a lone surrogate in a parameter: not text SQLite can hold
        raise ApiError(400, "A parameter is not valid Unicode text", title="Invalid SQL") from None


def _run(conn: sqlite3.Connection, sql: str, params: dict[str, Any] | Sequence[Any] | None,
         end: float | None, max_rows: int | None, max_bytes: int | None,
         deadline: Deadline | None) -> Result:
    rows: list[tuple[Any, ...]] = []
    append = rows.append
    wanted = None if max_rows is None else max_rows + 1
    cap = max_bytes if max_bytes is not None else MAX_RESULT_BYTES
    size = 0
    cut = False
    with TimeLimit(conn, end, deadline), driver_errors():
        cursor = conn.execute(sql, params if params is not None else {})
        # Row by row, every text and BLOB cell counted (at C speed: length_hint is len() for
        # them and 0 for numbers and NULL): what is held never passes the cap by more than
        # one row, and SQLite's heap limit bounds one row.
        for row in cursor:
            size += sum(map(length_hint, row))
            if size > cap:
                cut = True
                break
            append(row)
            if wanted is not None and len(rows) >= wanted:
                break
        columns = [d[0] for d in cursor.description or ()]
    truncated = cut or (max_rows is not None and len(rows) > max_rows)
    if max_rows is not None and len(rows) > max_rows:
        del rows[max_rows:]
    return Result(columns, rows, truncated, cut, size)


def scalar(conn: sqlite3.Connection, sql: str, params: dict[str, Any] | None = None,
           *, time_limit_ms: int | None) -> Any:
    result = run(conn, sql, params, time_limit_ms=time_limit_ms)
    return result.rows[0][0] if result.rows else None

"""A caller's write SQL (1.0a41's execute-write), run inside a writer transaction.

`run` analyses the statement on the transaction's own connection (`auth.write_sql`: SQLite's
authorizer says what it does), lets the caller's `check` judge that analysis (permissions:
the endpoint's business), then runs it in the sandbox callers' SQL runs in — the function
allow-list, SQLite's limits, a time limit — and checks afterwards that it touched none of
the tables no caller may touch. Any refusal raises before COMMIT: the writer rolls back.
"""

from __future__ import annotations

import base64
import binascii
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from lambdasette.auth import write_sql
from lambdasette.errors import ApiError
from lambdasette.query import execute
from lambdasette.query.quote import quote
from lambdasette.writes.transaction import Transaction

# 1.0a41 returns at most this many RETURNING rows (and says `truncated`).
RETURNING_LIMIT = 10

_RESERVED_OBJECTS = (
    "select type, name, tbl_name, sql from sqlite_master where "
    "lower(name) like '\\_lambdasette\\_%' escape '\\' or lower(name) like '\\_litestream\\_%' escape '\\' "
    "or lower(tbl_name) like '\\_lambdasette\\_%' escape '\\' "
    "or lower(tbl_name) like '\\_litestream\\_%' escape '\\' order by 1, 2"
)


@dataclass
class WriteResult:
    """What the statement did: rows changed (-1 when its RETURNING rows were cut), the
    RETURNING rows (objects), whether they were cut, and the analysis that allowed it."""

    rowcount: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    analysis: write_sql.Analysis | None = None

    @property
    def message(self) -> str:
        """1.0a41's message: `Query executed, N rows affected`."""
        if self.rowcount == -1:
            return "Query executed"
        return f"Query executed, {self.rowcount} row{'' if self.rowcount == 1 else 's'} affected"


def bind_value(name: str, value: Any) -> Any:
    """A JSON parameter as SQLite binds it: text, numbers and null as they are, booleans as
    1/0, `{"$base64": true, "encoded": ...}` as a BLOB; anything else is a 400."""
    if isinstance(value, bool):
        return int(value)
    if value is None or isinstance(value, (str, int, float)):
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise ApiError(400, f"Parameter {name}: integers must fit in 64 bits")
        return value
    if isinstance(value, dict) and value.get("$base64") is True and isinstance(value.get("encoded"), str):
        try:
            return base64.b64decode(value["encoded"], validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "Invalid $base64 encoded value") from None
    raise ApiError(400, f"Parameter {name} must be a string, number, boolean or null")


def analyze(conn: sqlite3.Connection, sql: str, params: dict[str, Any], *,
            restore: Callable[..., int] | None = None,
            word: Callable[[BaseException, float], str] = lambda exc, elapsed: str(exc),
            ) -> write_sql.Analysis:
    """The statement's analysis on `conn` (then `restore` is its authorizer again); 400 for
    SQL SQLite cannot compile (or more than one statement), in the words `word(exc, elapsed)`
    gives (the caller's: see `endpoints.execute.compile_error`; `elapsed`, the seconds the
    failed compile took), and for a statement that writes nothing."""
    started = time.monotonic()
    try:
        with execute.driver_errors():
            analysis = write_sql.analyze(conn, sql, params, restore=restore)
    except (sqlite3.Error, OverflowError) as exc:
        if str(exc) == "out of memory":
            raise execute.memory_error() from None
        raise ApiError(400, f"Could not analyze query: {word(exc, time.monotonic() - started)}") from None
    if analysis.stopped:
        return analysis  # a refused PRAGMA or ATTACH: the judge says so
    if not analysis.is_write:
        raise ApiError(400, "Use /-/query for read-only SQL; this endpoint only executes writes")
    return analysis


def run(tx: Transaction, sql: str, params: dict[str, Any], *,
        check: Callable[[write_sql.Analysis], None], time_limit_ms: int,
        sandbox: Callable[[sqlite3.Connection], AbstractContextManager[Any]] | None = None,
        word: Callable[[BaseException], str] = str) -> WriteResult:
    """Analyse, `check` (raises to refuse), run and verify one write statement in `tx`.
    `sandbox(conn)` is a context manager that readies the connection for a caller's SQL (the
    function allow-list, limits) for both the analysis and the run, yields the authorizer the
    statement must run under, and puts the connection back afterwards. `word(exc, elapsed)`
    words a compile error for the caller."""
    conn = tx.conn
    with (sandbox(conn) if sandbox is not None else _nothing()) as guard:
        # Taken once the sandbox is on (readying a connection sets the process's heap limit
        # the first time).
        with state_kept(conn, guard, changed=lambda: setattr(tx, "discard", True)):
            return _run(tx, sql, params, check, time_limit_ms, guard, word)


class ConnectionChanged(ApiError):
    """A caller's statement changed the connection it was compiled or run on (500)."""

    def __init__(self) -> None:
        super().__init__(500, "The statement changed the database connection; nothing was written")


@contextmanager
def state_kept(conn: sqlite3.Connection, guard: Callable[..., int] | None = None,
               changed: Callable[[], None] = lambda: None) -> Iterator[None]:
    """Around anything that compiles or runs a caller's SQL on `conn`: a 500 if the
    connection's settings (`connection_state`) are not what they were. Nothing a caller's
    statement may do changes them — every pragma is refused before SQLite can carry it out —
    so this is the backstop: `changed()` marks the connection to be thrown away (the writer
    closes it after the rollback), and the soft heap limit, which is the whole process's, is
    put back at once. (The hard heap limit cannot be: SQLite lets a pragma only lower it, and
    one below what the process holds fails every statement of the process — which is why no
    caller's pragma may ever reach SQLite.) `guard` is the connection's authorizer, put back
    after each look."""
    state = connection_state(conn, guard)
    try:
        yield
    finally:
        if connection_state(conn, guard) != state:
            changed()
            conn.set_authorizer(None)
            soft = int(state[_STATE_PRAGMAS.index("soft_heap_limit")])
            conn.execute(f"PRAGMA soft_heap_limit = {soft}")
            conn.set_authorizer(guard)
            raise ConnectionChanged


# What a statement could change about the writer's connection (and, for the heap limit, the
# process) if a PRAGMA ever got through: checked around every caller's statement.
_STATE_PRAGMAS = ("query_only", "writable_schema", "foreign_keys", "defer_foreign_keys",
                  "recursive_triggers", "ignore_check_constraints", "trusted_schema",
                  "reverse_unordered_selects", "cell_size_check", "journal_mode", "synchronous",
                  "locking_mode", "cache_size", "mmap_size", "busy_timeout", "max_page_count",
                  "hard_heap_limit", "soft_heap_limit", "automatic_index", "temp_store",
                  "secure_delete", "case_sensitive_like", "count_changes", "legacy_alter_table")


def connection_state(conn: sqlite3.Connection, guard: Callable[..., int] | None) -> tuple[Any, ...]:
    """The connection's settings that a PRAGMA could change, read with no authorizer (then
    `guard` is the connection's authorizer again)."""
    conn.set_authorizer(None)
    try:
        values = []
        for name in _STATE_PRAGMAS:
            row = conn.execute(f"PRAGMA {name}").fetchone()
            values.append(row[0] if row else None)
        return tuple(values)
    finally:
        conn.set_authorizer(guard)


def _run(tx: Transaction, sql: str, params: dict[str, Any],
         check: Callable[[write_sql.Analysis], None], time_limit_ms: int,
         guard: Callable[..., int] | None, word: Callable[[BaseException, float], str]) -> WriteResult:
    conn = tx.conn
    # The analysis leaves no authorizer behind: wording its errors and `check` run our own
    # statements (the schema, introspected), not the caller's.
    analysis = analyze(conn, sql, params, restore=None, word=word)
    check(analysis)
    if analysis.stopped:  # the check must have refused it; never run it regardless
        raise ApiError(403, "Unsupported SQL operation: pragma")
    conn.set_authorizer(guard)
    before = conn.execute(_RESERVED_OBJECTS).fetchall()
    deadline = time.monotonic() + time_limit_ms / 1000
    with execute.TimeLimit(conn, deadline):
        try:
            with execute.driver_errors():
                cursor = conn.execute(sql, params)
                rows = cursor.fetchmany(RETURNING_LIMIT + 1) if cursor.description else []
                columns = [d[0] for d in cursor.description or ()]
                truncated = len(rows) > RETURNING_LIMIT
                if truncated:
                    # The statement still runs to its end: every row is written, only the
                    # answer is cut (and then cannot say how many rows changed).
                    while cursor.fetchmany(1000):
                        pass
                    rows = rows[:RETURNING_LIMIT]
                rowcount = -1 if truncated else cursor.rowcount
        except sqlite3.Error as exc:
            # The sandbox's words (time limit, value sizes, a refused function or pragma);
            # anything else is SQLite's own message (a constraint, a bad value).
            raise execute.sql_error(exc, conn) from None
        except OverflowError as exc:
            raise ApiError(400, str(exc)) from None
    after = conn.execute(_RESERVED_OBJECTS).fetchall()
    if after != before:
        raise ApiError(403, "Names starting with _lambdasette_ or _litestream_ are reserved")
    conn.set_authorizer(None)
    for view in analysis.created_views:
        # A view's SELECT is compiled only when it is read: read it back, analysed and
        # judged like the statement itself (a view over a table the caller may not read is
        # refused, and everything rolls back).
        started = time.monotonic()
        try:
            with execute.driver_errors():
                read_back = write_sql.analyze(conn, f"SELECT * FROM main.{quote(view)}", {})
        except sqlite3.Error as exc:
            if str(exc) == "out of memory":
                raise execute.memory_error() from None
            raise ApiError(400, f"Could not analyze query: {word(exc, time.monotonic() - started)}") from None
        check(read_back)
    return WriteResult(rowcount, [dict(zip(columns, row)) for row in rows], truncated, analysis)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


_COMMENTS_AND_STRINGS = re.compile(
    r"""--[^\n]*|/\*.*?(?:\*/|\Z)|'(?:''|[^'])*'|"(?:""|[^"])*"|\[(?:[^\]])*\]|`(?:``|[^`])*`""",
    re.S,
)
_NAMED = re.compile(r":(\w+)")


def named_parameters(sql: str) -> list[str]:
    """The `:name` parameters of `sql`, each once, in order (1.0a41's `named_parameters`:
    comments, string literals and quoted identifiers are skipped)."""
    return list(dict.fromkeys(_NAMED.findall(_COMMENTS_AND_STRINGS.sub("", sql))))

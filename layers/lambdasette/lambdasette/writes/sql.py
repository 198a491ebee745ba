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
            restore: Callable[..., int] | None = None) -> write_sql.Analysis:
    """The statement's analysis on `conn` (then `restore` is its authorizer again); 400 for
    SQL SQLite cannot compile (or more than one statement) and for a statement that writes
    nothing."""
    try:
        analysis = write_sql.analyze(conn, sql, params, restore=restore)
    except (sqlite3.Error, OverflowError) as exc:
        raise ApiError(400, f"Could not analyze query: {exc}") from None
    if not analysis.is_write:
        raise ApiError(400, "Use /-/query for read-only SQL; this endpoint only executes writes")
    return analysis


def run(tx: Transaction, sql: str, params: dict[str, Any], *,
        check: Callable[[write_sql.Analysis], None], time_limit_ms: int,
        sandbox: Callable[[sqlite3.Connection], AbstractContextManager[Any]] | None = None,
        ) -> WriteResult:
    """Analyse, `check` (raises to refuse), run and verify one write statement in `tx`.
    `sandbox(conn)` is a context manager that readies the connection for a caller's SQL (the
    function allow-list, limits) for both the analysis and the run, yields the authorizer the
    statement must run under, and puts the connection back afterwards."""
    conn = tx.conn
    with (sandbox(conn) if sandbox is not None else _nothing()) as guard:
        analysis = analyze(conn, sql, params, restore=guard)
        check(analysis)
        # Checking may have read the schema, which takes the authorizer off: put it back.
        conn.set_authorizer(guard)
        before = conn.execute(_RESERVED_OBJECTS).fetchall()
        deadline = time.monotonic() + time_limit_ms / 1000
        with execute.TimeLimit(conn, deadline):
            try:
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

"""1.0a41's `POST /<db>/-/execute-write` and `GET /<db>/-/execute-write/analyze`: arbitrary
write SQL, the most dangerous endpoint there is.

A request needs `execute-write-sql` on the database (which also needs `view-database`), and
then exactly what its statement does: `auth.write_sql` lists that from SQLite's authorizer
and decides it (deny by default), `writes.sql` runs it in the database's one writer
transaction, in the sandbox, and checks it afterwards. Answers are 1.0a41's:
`{"ok", "message", "rowcount", "rows" (RETURNING, at most 10), "truncated", "analysis"}`.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from starlette.responses import Response

from lambdasette.auth import authorizer, write_sql
from lambdasette.endpoints.schema import names_in
from lambdasette.endpoints.write import perform, written
from lambdasette.errors import ApiError, reject_unknown_keys
from lambdasette.names import fold
from lambdasette.query import execute, visibility
from lambdasette.query.quote import quote
from lambdasette.query.render import fitting, response_budget, with_base64_blobs
from lambdasette.query.schema import Schema
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response
from lambdasette.writes import sql as write_sql_run
from lambdasette.writes.transaction import Transaction

FORM_PREFIX = "_sql_param_"
# 1.0a41 sends these on execute-write answers (its HTML form must not be framed).
FRAMING = {"Content-Security-Policy": "frame-ancestors 'none'", "X-Frame-Options": "DENY"}


def payload(ctx: Context) -> tuple[Any, dict[str, Any]]:
    """The body's `sql` and `params`: a JSON object `{"sql", "params"}` (other keys are a
    400), or, from a form (`application/x-www-form-urlencoded`), `sql` and every other field
    as a parameter (`_sql_param_x` as `x`), as 1.0a41 reads them. A "form" whose body is a
    JSON object (`curl -d '{...}'` labels JSON as a form) is read as the JSON it is, as every
    other write endpoint reads its body whatever the Content-Type says."""
    content_type = ctx.request.headers.get("content-type", "")
    json_body = ctx.body.lstrip().startswith(b"{")
    if content_type.startswith("application/x-www-form-urlencoded") and not json_body:
        try:
            fields = urllib.parse.parse_qsl(ctx.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            raise ApiError(400, "Invalid form body: not UTF-8") from None
        data = dict(fields)
        params = {}
        for key, value in fields:
            if key in ("sql", "csrftoken", "_json"):
                continue
            params[key[len(FORM_PREFIX):] if key.startswith(FORM_PREFIX) else key] = value
        return data.get("sql"), params
    data = parse_object(ctx.body)
    reject_unknown_keys(data, {"sql", "params"})
    params = data.get("params") or {}
    if not isinstance(params, dict):
        raise ApiError(400, "params must be a dictionary")
    return data.get("sql"), params


def parameters(sql: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The values to bind: every `:name` of `sql`, from `given` ("" when missing). 400 for
    no SQL, a magic parameter (`:_actor_id`: only trusted queries have those) or a parameter
    the SQL does not have."""
    if not sql or not isinstance(sql, str):
        raise ApiError(400, "SQL is required")
    names = write_sql_run.named_parameters(sql)
    if any(name.startswith("_") for name in names):
        raise ApiError(400, "Magic parameters are not allowed")
    extra = sorted(set(given) - set(names))
    if extra:
        raise ApiError(400, f"Unknown parameters: {', '.join(extra)}")
    return {name: write_sql_run.bind_value(name, given.get(name, "")) for name in names}


def judge(ctx: Context, schema: Schema, analysis: write_sql.Analysis) -> write_sql.Verdict:
    """The caller's verdict on an analysis: what it does, measured against what the caller
    may do on this database (FTS indexes and their storage count as the table they index),
    and every read it makes against the read path's rule for this caller (`read_rule`)."""
    database, actor, ds = ctx.database, ctx.actor, ctx.ds
    owners = schema.owners()
    return write_sql.judge(
        analysis, database,
        allowed=lambda action, table: ds.can(actor, action, database, table),
        owner=lambda name: owners.get(name, name),
        function_allowed=function_allowed,
        read_allowed=read_rule(ctx, schema),
    )


def read_rule(ctx: Context, schema: Schema) -> Callable[[str, str | None], bool]:
    """Whether the caller may read a column of a table: the very guard their `?sql=` runs
    under (`query.visibility.guard_for`: hidden tables, views over them, the schema tables
    while anything is hidden, SQLite's and our own tables, `dbstat` and the like), with
    pragma functions refused as well (write SQL runs no pragma at all)."""
    hidden = ctx.ds.hidden_tables(ctx.actor, ctx.database, schema)
    guard = dataclasses.replace(visibility.guard_for(schema, hidden), pragmas=False)
    return guard.allows_read


def compile_error(ctx: Context, schema: Schema, exc: BaseException, sql: str,
                  params: dict[str, Any], elapsed: float = 0.0) -> str:
    """SQLite's words for SQL that does not compile, as they would be if the tables the
    caller may do nothing with did not exist: otherwise `insert into hidden(nosuch) ...`
    ("table hidden has no column named nosuch") would tell a hidden table from a missing
    one. It is the read path's rule (`query.visibility`): the statement is compiled again
    on the caller's shadow schema, where those tables are missing, and its error is the
    answer. `elapsed`: how long the failed compile took (see `shadow_error`)."""
    if not isinstance(exc, sqlite3.Error):
        return str(exc)
    return shadow_error(ctx, schema, sql, params, elapsed=elapsed) or str(exc)


def shadow_error(ctx: Context, schema: Schema, sql: str, params: dict[str, Any], *,
                 then: str | None = None, elapsed: float = 0.0) -> str | None:
    """SQLite's error for `sql` on the caller's shadow schema (`query.visibility`: the
    schema without the tables the caller may do nothing with, and the views over them), or
    None when it compiles there. With `then`, `sql` runs on the shadow first (in a
    savepoint, rolled back) and `then` is what is compiled: a new view's SELECT is only
    compiled when the view is read. The shadow is an in-memory copy of the schema alone,
    carrying the read path's guard (no pragma that sets anything).

    A failed compile that took `elapsed` seconds, more than a share of the time limit, is
    worded as a timeout instead, as on the read path (`query.execute.caller_error`, B05):
    compiling is the one part of a statement the time limit cannot interrupt, the shadow
    compile would cost as much again, and a timeout tells nothing about which names exist."""
    owners, readable = schema.owners(), read_hidden(ctx, schema)
    hidden = schema.closed({fold(name) for name in schema.tables
                            if unseen(ctx, owners.get(name, name), readable)})
    guard = visibility.guard_for(schema, hidden)
    if guard.shadow is None:
        return None
    if elapsed > ctx.ds.settings.sql_time_limit_ms / 1000 * execute.SHADOW_SHARE:
        return execute.TIMEOUT_MESSAGE
    # The shadow's own guard (the read path's, lenient: `query.visibility`) as write SQL runs
    # it: no pragma at all, and SQLite's own functions for ALTER TABLE.
    installed = dataclasses.replace(guard, lenient=True)
    writing = dataclasses.replace(installed, pragmas=False)

    def shadow_guard(code: int, arg1: str | None, arg2: str | None, db: str | None,
                     source: str | None) -> int:
        if code == sqlite3.SQLITE_FUNCTION and arg2 in write_sql.RENAME_FUNCTIONS:
            return sqlite3.SQLITE_OK
        return writing(code, arg1, arg2, db, source)

    conn, lock = guard.shadow()
    with lock:
        conn.set_authorizer(shadow_guard)
        try:
            if then is None:
                conn.execute("EXPLAIN " + sql, params).fetchall()
                return None
            conn.execute("SAVEPOINT probe")
            try:
                conn.execute(sql, params)
                # The shadow's guard knows only the schema it was built from, not what `sql`
                # just made; compiling a SELECT of it changes nothing, so no guard is needed.
                conn.set_authorizer(None)
                conn.execute("EXPLAIN " + then).fetchall()
            finally:
                conn.execute("ROLLBACK TO probe")
                conn.execute("RELEASE probe")
        except sqlite3.Error as exc:
            return str(exc)
        except (OverflowError, ValueError, TypeError):
            pass
        finally:
            conn.set_authorizer(installed)
    return None


def check_new_views(ctx: Context, schema: Schema, analysis: write_sql.Analysis, sql: str,
                    params: dict[str, Any]) -> None:
    """400 for a CREATE VIEW whose SELECT does not compile for this caller — a view over a
    table hidden from them fails exactly as one over a missing table does (on their shadow
    schema). What a view that compiles reads is judged once it exists (`writes.sql.run`
    reads it back under the analysis), before COMMIT."""
    for view in analysis.created_views:
        error = shadow_error(ctx, schema, sql, params, then=f"SELECT * FROM main.{quote(view)}")
        if error is not None:
            raise ApiError(400, f"Could not analyze query: {error}")


def function_allowed(name: str) -> bool:
    """The SQL functions a caller's write SQL may call: the read sandbox's allow-list."""
    return authorizer.function_allowed(name)


def write_guard(code: int, arg1: str | None, arg2: str | None, schema: str | None,
                source: str | None) -> int:
    """The read sandbox's guard for write SQL (`authorizer.UNTRUSTED_WRITE`: the function
    allow-list, no ATTACH, no pragma at all), plus the functions SQLite itself calls while
    it carries out an ALTER TABLE (no caller's SQL can call those: SQLite keeps them to
    itself)."""
    if code == sqlite3.SQLITE_FUNCTION and arg2 in write_sql.RENAME_FUNCTIONS:
        return sqlite3.SQLITE_OK
    return authorizer.UNTRUSTED_WRITE(code, arg1, arg2, schema, source)


@contextmanager
def sandbox(conn: sqlite3.Connection, max_value_bytes: int) -> Iterator[Callable[..., int]]:
    """The sandbox every caller's SQL runs in (`query.execute.prepare`: the function
    allow-list, pragma and ATTACH rules in the authorizer, SQLite's limits on values, statement
    length and attached databases, the heap limit), put on the writer's connection for this
    one statement and taken off again: the write API's own statements (sqlite-utils) run
    without it, as before."""
    saved = {category: conn.getlimit(category) for category in execute.limits(max_value_bytes)}
    execute.prepare(conn, max_value_bytes=max_value_bytes)
    conn.set_authorizer(write_guard)
    try:
        yield write_guard
    finally:
        conn.set_authorizer(None)
        for category, value in saved.items():
            conn.setlimit(category, value)


# Every action a caller may hold on a table: one who holds none of them on a table may not
# even learn that it exists.
TABLE_ACTIONS = ("view-table", "insert-row", "update-row", "delete-row", "alter-table", "drop-table",
                 "drop-view", "set-column-type")


HIDDEN_MESSAGE = "Permission denied: the statement reads or writes a table you may not view"


def unseen(ctx: Context, table: str | None, hidden: frozenset[str] = frozenset()) -> bool:
    """A table the caller may do nothing with: as far as they can tell, it does not exist.
    Holding only `view-table` on something the read path hides anyway (`hidden`: a view
    over a table hidden from them) is holding nothing."""
    if table is None or any(ctx.ds.can(ctx.actor, action, ctx.database, table)
                            for action in TABLE_ACTIONS if action != "view-table"):
        return False
    return fold(table) in hidden or not ctx.ds.can(ctx.actor, "view-table", ctx.database, table)


def read_hidden(ctx: Context, schema: Schema | None) -> frozenset[str]:
    """What the read path hides from the caller (lower-cased), for `unseen`."""
    return frozenset() if schema is None else ctx.ds.hidden_tables(ctx.actor, ctx.database, schema)


def refuse(ctx: Context, verdict: write_sql.Verdict, sql: str, schema: Schema | None = None) -> None:
    """Raise the verdict's first problem, if any. A table the caller may do nothing with is
    never named: one their SQL names is worded as missing (`no such table`, as every read path
    words it); one only a trigger, a view or a foreign-key action reaches gets a 403 that does
    not say which (1.0a41 names it either way)."""
    if not verdict.problems:
        return
    hidden, named = read_hidden(ctx, schema), names_in(sql)
    # Naming a table that does not exist fails before anything is judged: so does naming one
    # the caller may do nothing with, whichever problem comes first.
    for requirement in verdict.missing:
        table = requirement.table if requirement is not None else None
        if table is not None and fold(table) in named and unseen(ctx, table, hidden):
            raise ApiError(400, f"Could not analyze query: no such table: {table}")
    status, text = verdict.problems[0]
    requirement = verdict.missing[0]
    if requirement is not None and unseen(ctx, requirement.table, hidden):
        raise ApiError(403, HIDDEN_MESSAGE)
    raise ApiError(status, text)


def redacted(ctx: Context, rows: list[dict[str, Any]], schema: Schema | None = None) -> list[dict[str, Any]]:
    """Analysis rows without the names of tables the caller may do nothing with."""
    hidden = read_hidden(ctx, schema)
    return [{**row, "table": None} if unseen(ctx, row.get("table") or None, hidden) else row  # type: ignore[arg-type]
            for row in rows]


def missing_table_error(ctx: Context, verdict: write_sql.Verdict, sql: str, schema: Schema) -> str | None:
    """For the analyze endpoints: the `analysis_error` a statement gets when it names a
    table the caller may do nothing with — the one it would get were the table missing
    (SQLite's `no such table`), so that analysing tells a hidden table from a missing one
    no more than running does."""
    try:
        refuse(ctx, verdict, sql, schema)
    except ApiError as exc:
        text = "; ".join(exc.messages)
        if text.startswith("Could not analyze query: "):
            return text
    return None


def require_access(ctx: Context) -> None:
    """404 for an unknown database, then 403 without `execute-write-sql` (1.0a41's words)."""
    ctx.ds.storage.info(ctx.database)
    if not ctx.ds.can(ctx.actor, "execute-write-sql", ctx.database):
        raise ApiError(403, "Permission denied: need execute-write-sql", headers=FRAMING)


def execute_write(ctx: Context) -> Response:
    """`POST /<db>/-/execute-write` `{"sql": "...", "params": {...}}`: run one write
    statement. 200 with what it did; 400 for SQL that does not compile, is not a write or has
    the wrong parameters; 403 for anything the caller may not do (nothing has run)."""
    require_access(ctx)
    database = ctx.database
    if not ctx.ds.storage.info(database).is_mutable:
        raise ApiError(403, "Database is immutable")
    sql, given = payload(ctx)
    params = parameters(sql, given)
    shown: list[dict[str, Any]] = []

    def work(tx: Transaction) -> write_sql_run.WriteResult:
        def check(analysis: write_sql.Analysis) -> None:
            schema = tx.schema()
            verdict = judge(ctx, schema, analysis)
            refuse(ctx, verdict, sql, schema)
            check_new_views(ctx, schema, analysis, sql, params)
            shown.extend({k: v for k, v in row.items() if k != "allowed"} for row in verdict.rows)

        max_value = max(ctx.ds.settings.max_value_mb, 1) * execute.MiB
        return write_sql_run.run(tx, sql, params, check=check,
                                 time_limit_ms=ctx.ds.settings.sql_time_limit_ms,
                                 sandbox=lambda conn: sandbox(conn, max_value),
                                 word=lambda exc, elapsed: compile_error(ctx, tx.schema(), exc, sql, params,
                                                                         elapsed))

    result, txid = perform(ctx, work)
    rows, truncated = with_base64_blobs(result.rows), result.truncated
    # RETURNING rows are made by the caller's SQL (`returning printf('%.8000000c', char(1))`):
    # the answer keeps those that fit the response budget, and says it was cut.
    budget = response_budget(ctx.ds.settings) // 2
    keep = fitting(rows, budget)
    if keep < len(rows):
        rows, truncated = rows[:keep], True
    body = {"ok": True, "message": result.message, "rowcount": result.rowcount,
            "rows": rows, "truncated": truncated, "analysis": shown}
    response = written(body, txid)
    response.headers.update(FRAMING)
    return response


def analyze(ctx: Context) -> Response:
    """`GET /<db>/-/execute-write/analyze?sql=...` (unstable in 1.0a41): what the statement
    would do and whether the caller may, without running it: `{"ok", "parameters",
    "analysis_error", "analysis_rows" (each with `allowed`), "execute_disabled",
    "execute_disabled_reason"}`."""
    require_access(ctx)
    reject_unknown_keys((k for k, _ in ctx.args.items), {"sql"})
    sql = ctx.args.get("sql") or ""
    names: list[str] = []
    rows: list[dict[str, Any]] = []
    error = None
    if sql:
        try:
            names = write_sql_run.named_parameters(sql)
            if any(name.startswith("_") for name in names):
                raise ApiError(400, "Magic parameters are not allowed")

            # Compiling a statement changes nothing (the analysis refuses every pragma as
            # SQLite asks about it): any connection will do, the read function's included
            # (this is a GET); a fresh one, checked and closed all the same.
            conn = ctx.ds.storage.connect(ctx.database)
            try:
                schema = ctx.ds.schema(ctx.database, conn)
                params = {name: "" for name in names}
                with write_sql_run.state_kept(conn):  # a fresh connection, closed below
                    analysis = write_sql_run.analyze(
                        conn, sql, params,
                        word=lambda exc, elapsed: compile_error(ctx, schema, exc, sql, params, elapsed))
                verdict = judge(ctx, schema, analysis)
                missing = missing_table_error(ctx, verdict, sql, schema)
                if missing is not None:
                    raise ApiError(400, missing)
                rows = redacted(ctx, verdict.rows, schema)
            finally:
                conn.close()
        except write_sql_run.ConnectionChanged:
            raise
        except ApiError as exc:
            error = "; ".join(exc.messages)
    reason = None
    if not sql.strip():
        reason = "Enter writable SQL before executing."
    elif error:
        reason = error
    elif any(row.get("allowed") is False for row in rows):
        reason = "You do not have permission for every operation listed above."
    body = {"ok": error is None, "parameters": names, "analysis_error": error, "analysis_rows": rows,
            "execute_disabled": reason is not None, "execute_disabled_reason": reason,
            "unstable": "This API is not part of Datasette's stable interface and may change at any time"}
    return json_response(body, headers=FRAMING)

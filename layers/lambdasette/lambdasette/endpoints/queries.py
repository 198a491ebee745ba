"""Stored queries (Datasette 1.0a41's named queries): list, store, show, update, delete.

- `GET /<db>/-/queries.json`, `GET /-/queries.json`: the queries the caller may see
  (`_size`, `_next`, `q`, `is_write`, `is_private`, `source`, `owner_id`).
- `POST /<db>/-/queries/store` `{"query": {"name", "sql", "title", "description",
  "is_private", "parameters", "hide_sql", ...}}`: needs `execute-sql` and `store-query`; a
  writable query also needs what its SQL does (`auth.write_sql`). Private by default: a
  private query is its owner's alone.
- `GET /<db>/<name>/-/definition`, `POST /<db>/<name>/-/update` `{"update": {...},
  "return": true}`, `POST /<db>/<name>/-/delete`: `view-query`, `update-query`,
  `delete-query` (the owner may update and delete their own). Metadata `queries:` are
  trusted and read-only here.

Stored queries run at `/<db>/<name>.json` (`endpoints.canned`) and live in the database's
`_lambdasette_queries` table (`query.internal`), written through the writer.
"""

from __future__ import annotations

import re
import time
import urllib.parse
from dataclasses import replace
from typing import Any

from starlette.responses import Response

from lambdasette.auth import write_sql
from lambdasette.endpoints import extras
from lambdasette.endpoints.execute import compile_error, judge, missing_table_error, redacted, refuse
from lambdasette.endpoints.write import perform, written
from lambdasette.errors import ApiError, reject_unknown_keys
from lambdasette.names import fold
from lambdasette.query import execute
from lambdasette.query.internal import StoredQuery
from lambdasette.tilde import tilde_encode
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response
from lambdasette.writes import internal as write_internal
from lambdasette.writes import sql as write_sql_run
from lambdasette.writes.transaction import Transaction

UNSTABLE = "This API is not part of Datasette's stable interface and may change at any time"
FIELDS = {"sql", "title", "description", "hide_sql", "fragment", "parameters", "is_private",
          "on_success_message", "on_success_redirect", "on_error_message", "on_error_redirect"}
CREATE_FIELDS = FIELDS | {"name", "mode", "csrftoken"}
WRITE_FIELDS = {"on_success_message", "on_success_redirect", "on_error_message", "on_error_redirect"}
OPTION_KEYS = ("hide_sql", "fragment", "on_success_message", "on_success_redirect", "on_error_message",
               "on_error_redirect")
_NAME = re.compile(r"^[^/.\n]+$")
TRUE_WORDS = {"1", "true", "t", "yes", "on"}
FALSE_WORDS = {"0", "false", "f", "no", "off"}


def as_bool(value: Any) -> bool:
    """1.0a41's `_as_bool`: booleans, numbers and words such as "on" or "yes"."""
    if isinstance(value, str):
        return value.lower() in TRUE_WORDS
    return bool(value)


def optional_bool(value: str | None, name: str) -> bool | None:
    """A `0`/`1` filter argument: None when absent, 400 for anything else."""
    if value is None or value == "":
        return None
    if value.lower() in TRUE_WORDS:
        return True
    if value.lower() in FALSE_WORDS:
        return False
    raise ApiError(400, f"{name} must be 0 or 1")


def parameters_of(value: Any, derived: list[str]) -> list[str]:
    """A query's declared `parameters`: a list (or a comma/space separated string) of names
    that must be exactly the SQL's own; absent: the SQL's."""
    if value is None:
        return derived
    if isinstance(value, str):
        names = [p for p in re.split(r"[\s,]+", value) if p]
    elif isinstance(value, list):
        names = value
    else:
        raise ApiError(400, "parameters must be a list of strings")
    if not all(isinstance(p, str) for p in names):
        raise ApiError(400, "parameters must be a list of strings")
    if any(p.startswith("_") for p in names):
        raise ApiError(400, "Magic parameters are not allowed")
    if set(names) != set(derived):
        raise ApiError(400, "parameters must match SQL named parameters")
    return names


def checked_sql(ctx: Context, tx: Transaction, sql: Any) -> tuple[bool, list[str]]:
    """Whether `sql` writes, and its named parameters. A read must be one SELECT; a write
    is analysed as execute-write analyses it, and storing it needs what running it would."""
    if not sql or not isinstance(sql, str):
        raise ApiError(400, "SQL is required")
    derived = write_sql_run.named_parameters(sql)
    if any(p.startswith("_") for p in derived):
        raise ApiError(400, "Magic parameters are not allowed")
    params = {p: "" for p in derived}
    started = time.monotonic()
    try:
        # With no authorizer of its own on the writer: the analysis's recording one refuses
        # what SQLite would carry out while compiling (pragmas). Driver exceptions (out of
        # memory, an error quoting non-UTF-8 bytes) are SQLite's refusals too (B03).
        with write_sql_run.state_kept(tx.conn, changed=lambda: setattr(tx, "discard", True)), \
                execute.driver_errors():
            analysis = write_sql.analyze(tx.conn, sql, params)
    except write_sql_run.ConnectionChanged:
        raise
    except Exception as exc:  # sqlite3.Error, or more than one statement
        # A slow failed compile is not paid for again on the shadow (B05: `shadow_error`).
        worded = compile_error(ctx, tx.schema(), exc, sql, params, time.monotonic() - started)
        raise ApiError(400, f"Could not analyze query: {worded}") from None
    if not analysis.is_write:
        execute.validate_select(sql)
        return False, derived
    schema = tx.schema()
    refuse(ctx, judge(ctx, schema, analysis), sql, schema)
    return True, derived


def options_of(data: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """A query's options (`hide_sql`, `fragment`, `on_*`) from `data`, over `base`."""
    options = dict(base or {})
    for key in OPTION_KEYS:
        if key in data:
            value = as_bool(data[key]) if key == "hide_sql" else data[key]
            if value is None or value is False:
                options.pop(key, None)
            else:
                options[key] = value
    return options


def text(data: dict[str, Any], key: str) -> str | None:
    """`data[key]`, which must be text when given (400 otherwise)."""
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"{key} must be a string")
    return value


def store(ctx: Context) -> Response:
    """`POST /<db>/-/queries/store`: 201 `{"ok", "unstable", "query"}`."""
    ds, database, actor = ctx.ds, ctx.database, ctx.actor
    ds.storage.info(database)  # 404 for an unknown database first
    if not ds.can(actor, "execute-sql", database):
        raise ApiError(403, "Permission denied: need execute-sql")
    if not ds.can(actor, "store-query", database):
        raise ApiError(403, "Permission denied: need store-query")
    body = parse_object(ctx.body)
    data = body.get("query")
    if not isinstance(data, dict):
        raise ApiError(400, "JSON must contain a query dictionary")
    reject_unknown_keys(data, CREATE_FIELDS)
    name = data.get("name")
    if not name or not isinstance(name, str):
        raise ApiError(400, "Query name is required")
    if not _NAME.match(name) or "\x00" in name:
        raise ApiError(400, "Invalid query name")
    for key in ("title", "description", "fragment"):
        text(data, key)
    actor_id = actor.get("id") if actor else None

    def work(tx: Transaction) -> StoredQuery:
        if tx.table(name) is not None or fold(name) in tx.schema().known:
            raise ApiError(400, "Query name conflicts with a table or view")
        if name in ds.metadata.queries(database) or write_internal.stored_query(tx, name) is not None:
            raise ApiError(400, "Query already exists")
        is_write, derived = checked_sql(ctx, tx, data.get("sql"))
        if not is_write and any(data.get(f) for f in WRITE_FIELDS):
            raise ApiError(400, "Writable query fields require writable SQL")
        query = StoredQuery(
            database=database, name=name, sql=data["sql"], title=data.get("title"),
            description=data.get("description"),
            parameters=tuple(parameters_of(data.get("parameters"), derived)),
            is_write=is_write, is_private=as_bool(data.get("is_private", True)), is_trusted=False,
            source="user", owner_id=None if actor_id is None else str(actor_id),
            options=options_of(data),
        )
        write_internal.store_query(tx, query)
        return query

    query, txid = perform(ctx, work)
    return written({"ok": True, "unstable": UNSTABLE, "query": query.as_json()}, txid, status=201)


def _visible(ctx: Context) -> StoredQuery:
    """The query the path names, if the caller may see it (404 otherwise: a private query
    of someone else's is nobody else's business, not even that it exists)."""
    ctx.ds.connection(ctx.database)
    name = ctx.table
    query = ctx.ds.canned_query(ctx.database, name)
    if query is None or not ctx.ds.query_allowed(ctx.actor, "view-query", query):
        raise ApiError(404, f"Query not found: {name}")
    return query


def definition(ctx: Context) -> Response:
    """`GET /<db>/<name>/-/definition`: `{"ok", "unstable", "query"}`."""
    query = _visible(ctx)
    return json_response({"ok": True, "unstable": UNSTABLE, "query": query.as_json()})


def update(ctx: Context) -> Response:
    """`POST /<db>/<name>/-/update` `{"update": {...}, "return": true}`: change a stored
    query's SQL, title, description, privacy, parameters or options."""
    ds, database = ctx.ds, ctx.database
    existing = _visible(ctx)
    if not ds.query_allowed(ctx.actor, "update-query", existing):
        raise ApiError(403, "Permission denied: need update-query")
    if existing.is_trusted:
        raise ApiError(403, "Trusted queries cannot be updated using the API")
    data = parse_object(ctx.body)
    reject_unknown_keys(data, {"update", "return"})
    changes = data.get("update")
    if not isinstance(changes, dict):
        raise ApiError(400, "JSON must contain an update dictionary")
    if "sql" in changes and not ds.can(ctx.actor, "execute-sql", database):
        raise ApiError(403, "Permission denied: need execute-sql")
    reject_unknown_keys(changes, FIELDS)
    for key in ("title", "description", "fragment"):
        text(changes, key)

    def work(tx: Transaction) -> StoredQuery:
        current = write_internal.stored_query(tx, existing.name)
        if current is None:
            raise ApiError(404, f"Query not found: {existing.name}")
        sql, is_write, parameters = current.sql, current.is_write, list(current.parameters)
        derived = write_sql_run.named_parameters(sql)
        if "sql" in changes:
            is_write, derived = checked_sql(ctx, tx, changes["sql"])
            sql, parameters = changes["sql"], derived
        if "parameters" in changes:
            parameters = parameters_of(changes["parameters"], derived)
        if not is_write and any(changes.get(f) for f in WRITE_FIELDS):
            raise ApiError(400, "Writable query fields require writable SQL")
        query = replace(
            current, sql=sql, is_write=is_write, parameters=tuple(parameters),
            title=changes["title"] if "title" in changes else current.title,
            description=changes["description"] if "description" in changes else current.description,
            is_private=as_bool(changes["is_private"]) if "is_private" in changes else current.is_private,
            options=options_of(changes, current.options),
        )
        write_internal.update_query(tx, query)
        return query

    query, txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True}
    if as_bool(data.get("return")):
        out["query"] = query.as_json()
    return written(out, txid)


def delete(ctx: Context) -> Response:
    """`POST /<db>/<name>/-/delete`: delete a stored query."""
    ds = ctx.ds
    existing = _visible(ctx)
    if not ds.query_allowed(ctx.actor, "delete-query", existing):
        raise ApiError(403, "Permission denied: need delete-query")
    if existing.is_trusted:
        raise ApiError(403, "Trusted queries cannot be deleted using the API")

    def work(tx: Transaction) -> None:
        write_internal.delete_query(tx, existing.name)

    _, txid = perform(ctx, work)
    return written({"ok": True}, txid)


# -- listing -----------------------------------------------------------------------------------


def _sort_key(query: StoredQuery) -> str:
    return (query.title or query.name).lower()


def _filters(ctx: Context) -> dict[str, Any]:
    args = ctx.args
    return {
        "q": args.get("q") or None,
        "is_write": optional_bool(args.get("is_write"), "is_write"),
        "is_private": optional_bool(args.get("is_private"), "is_private"),
        "source": args.get("source") or None,
        "owner_id": args.get("owner_id") or None,
    }


def _matches(query: StoredQuery, filters: dict[str, Any]) -> bool:
    q = filters["q"]
    if q and not any(q.lower() in (v or "").lower()
                     for v in (query.name, query.title, query.description, query.sql)):
        return False
    for key in ("is_write", "is_private", "source", "owner_id"):
        wanted = filters[key]
        if wanted is not None and getattr(query, key) != wanted:
            return False
    return True


def list_queries(ctx: Context) -> Response:
    """`GET /<db>/-/queries.json`: the database's queries the caller may see, sorted by
    title (or name), a page at a time."""
    ctx.ds.require(ctx.actor, "view-database", ctx.database,
                   message="You do not have permission to view this database")
    return _listing(ctx, [ctx.database], f"/{tilde_encode(ctx.database)}/-/queries")


def list_all_queries(ctx: Context) -> Response:
    """`GET /-/queries.json`: the queries of every database the caller may see."""
    names = [n for n in ctx.ds.database_names() if ctx.ds.can(ctx.actor, "view-database", n)]
    return _listing(ctx, names, "/-/queries")


def _listing(ctx: Context, databases: list[str], path: str) -> Response:
    ds, args = ctx.ds, ctx.args
    single = path != "/-/queries"
    raw = args.get("_size")
    limit = 50
    if raw not in (None, ""):
        if raw == "max":
            limit = ds.settings.max_returned_rows
        elif not raw.isdigit():
            raise ApiError(400, "_size must be a positive integer")
        elif int(raw) > ds.settings.max_returned_rows:
            raise ApiError(400, f"_size must be <= {ds.settings.max_returned_rows}")
        else:
            limit = int(raw)
    limit = max(1, limit)
    filters = _filters(ctx)
    visible = [(db, q) for db in databases for q in ds.canned_queries(db).values()
               if ds.query_allowed(ctx.actor, "view-query", q)]

    def key(item: tuple[str, StoredQuery]) -> tuple[str, ...]:
        db, q = item
        return (_sort_key(q), q.name) if single else (db, _sort_key(q), q.name)

    visible.sort(key=key)
    matching = [item for item in visible if _matches(item[1], filters)]
    token = args.get("_next")
    if token:
        parts = [urllib.parse.unquote_plus(p.replace("~", "%")) for p in token.split(",")]
        matching = [item for item in matching if list(key(item)) > parts]
    page, more = matching[:limit], len(matching) > limit
    next_token = None
    if more and page:
        next_token = ",".join(tilde_encode(p) for p in key(page[-1]))
    next_url = ctx.url(args.replaced([("_next", next_token)])) if next_token else None

    def count(field: str, value: bool) -> int:
        if filters[field] is not None and filters[field] != value:
            return 0
        return sum(1 for _, q in visible if _matches(q, {**filters, field: value}))

    def href(field: str, value: bool) -> str | None:
        kept = [(k, v) for k, v in args.items if k not in (field, "_next")]
        if filters[field] != value:
            if filters[field] is not None:
                return None
            kept.append((field, str(int(value))))
        qs = urllib.parse.urlencode(kept)
        return path + (f"?{qs}" if qs else "")

    def items(choices: list[tuple[str, str, bool]]) -> list[dict[str, Any]]:
        out = []
        for label, field, value in choices:
            n, active = count(field, value), filters[field] == value
            if n or active:
                out.append({"label": label, "count": n, "href": href(field, value), "active": active})
        return out

    queries = [q for _, q in page]
    body = {
        "ok": True,
        "database": databases[0] if single else None,
        "database_color": extras.database_color(databases[0]) if single else None,
        "queries": [q.as_json(private=_private(ctx, q)) for q in queries],
        "next": next_token,
        "next_url": next_url,
        "limit": limit,
        "show_private_note": any(q.is_private for q in queries),
        "show_trusted_note": any(q.is_trusted for q in queries),
        "query_list_path": path,
        "show_database": not single,
        "facets": [
            {"title": "Mode", "items": items([("Read-only", "is_write", False),
                                              ("Writable", "is_write", True)])},
            {"title": "Visibility", "items": items([("Not private", "is_private", False),
                                                    ("Private", "is_private", True)])},
        ],
        "filters": {k: args.get(k) or "" for k in ("q", "is_write", "is_private", "source", "owner_id")},
    }
    return json_response(body)


def _private(ctx: Context, query: StoredQuery) -> bool:
    public = ctx.ds.options.public and ctx.ds.query_allowed(None, "view-query", query)
    return not public


def analyze_store(ctx: Context) -> Response:
    """`GET /<db>/-/queries/analyze?sql=` (unstable in 1.0a41): what storing `sql` would
    mean — its parameters, whether it writes, and whether the caller may."""
    ds, database = ctx.ds, ctx.database
    ds.connection(database)
    if not ds.can(ctx.actor, "execute-sql", database):
        raise ApiError(403, "Permission denied: need execute-sql")
    if not ds.can(ctx.actor, "store-query", database):
        raise ApiError(403, "Permission denied: need store-query")
    reject_unknown_keys((k for k, _ in ctx.args.items), {"sql"})
    sql = ctx.args.get("sql") or ""
    names: list[str] = []
    rows: list[dict[str, Any]] = []
    error = None
    is_write = False
    if sql.strip():
        conn = ds.storage.connect(database)
        try:
            names = write_sql_run.named_parameters(sql)
            schema = ds.schema(database, conn)
            params = {n: "" for n in names}
            started = time.monotonic()
            try:
                # A fresh connection, closed below; driver exceptions are SQLite's refusals (B03).
                with write_sql_run.state_kept(conn), execute.driver_errors():
                    analysis = write_sql.analyze(conn, sql, params)
            except write_sql_run.ConnectionChanged:
                raise
            except Exception as exc:  # what SQLite cannot compile, worded for the caller
                elapsed = time.monotonic() - started  # a slow failure: no shadow compile (B05)
                raise ValueError(compile_error(ctx, schema, exc, sql, params, elapsed)) from None
            is_write = analysis.is_write
            verdict = judge(ctx, schema, analysis)
            missing = missing_table_error(ctx, verdict, sql, schema)
            if missing is not None:  # worded as SQLite words a missing table, as above
                raise ValueError(missing.removeprefix("Could not analyze query: "))
            rows = redacted(ctx, verdict.rows, schema)
        except write_sql_run.ConnectionChanged:
            raise
        except Exception as exc:
            error = str(exc)
        finally:
            conn.close()
    body = {"ok": error is None, "parameters": names, "analysis_error": error, "analysis_rows": rows,
            "has_sql": bool(sql.strip()), "analysis_is_write": is_write,
            "save_disabled": bool(not sql.strip() or error or any(r["allowed"] is False for r in rows)),
            "unstable": UNSTABLE}
    return json_response(body)

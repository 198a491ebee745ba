"""The write API (Datasette 1.0a41): create, insert, upsert, update, delete, drop.

Each endpoint validates the body, checks permissions (before saying whether a table exists),
then hands one function to the database's writer, which runs it in a single transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import Response

from lambdasette import column_types
from lambdasette.errors import ApiError, reject_unknown_keys
from lambdasette.query import internal
from lambdasette.query.quote import quote
from lambdasette.tilde import tilde_encode
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import TXID_HEADER, json_response
from lambdasette.writes import alter as write_alter
from lambdasette.writes import internal as write_internal
from lambdasette.writes import rows as write_rows
from lambdasette.writes import tables as write_tables
from lambdasette.writes.transaction import Transaction

NO_STORE = {"Cache-Control": "private, no-store"}
T = TypeVar("T")


def flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool) and value not in (0, 1, None):
        raise ApiError(400, f'"{key}" must be true or false')
    return bool(value)


def one_of(value: Any, names: Any) -> bool:
    """Is the JSON `value` one of `names`? (A list or object is never, and must not be
    looked up: it is unhashable.)"""
    return isinstance(value, str) and value in names


def perform(ctx: Context, work: Callable[[Transaction], T]) -> tuple[T, int | None]:
    """Run `work(tx)` in the database's writer transaction: its result, and the replica's
    transaction id of the write (None without a replica) for the answer's txid header. The
    caller's token is checked again right before the commit. A table the write API may not
    change (a view, virtual or shadow table) is named in the 404 only to a caller who may
    view it: to others it answers exactly as a missing table does."""
    try:
        return ctx.ds.writer.run(ctx.database, work, before_commit=ctx.recheck)
    except write_tables.NotWritable as exc:
        _, seen = ctx.open(ctx.database)
        if exc.table not in seen.tables:
            raise exc.unnamed() from None
        raise


def written(body: dict[str, Any], txid: int | None, status: int = 200) -> Response:
    """The answer to a durable write: JSON, never cached, with its transaction id."""
    headers = dict(NO_STORE)
    if txid is not None:
        headers[TXID_HEADER] = str(txid)
    return json_response(body, status=status, headers=headers)


def rows_from(
    data: dict[str, Any], max_rows: int, raw: bytes | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """The body's `row` or `rows`, decoded; and whether it was a single `row`. Given the raw
    body, rows are only inspected for objects and arrays (BLOBs, JSON text) when its brackets
    show that some value could be one: every nested value adds a '{' or a '['."""
    if "row" not in data and "rows" not in data:
        raise ApiError(400, 'JSON must have one or other of "row" or "rows"')
    if "row" in data and "rows" in data:
        raise ApiError(400, 'Cannot use "row" and "rows" at the same time')
    if "row" in data:
        if not isinstance(data["row"], dict):
            raise ApiError(400, '"row" must be a dictionary')
        rows, single = [data["row"]], True
    else:
        if not isinstance(data["rows"], list):
            raise ApiError(400, '"rows" must be a list')
        if not all(isinstance(r, dict) for r in data["rows"]):
            raise ApiError(400, '"rows" must be a list of dictionaries')
        rows, single = data["rows"], False
    if max_rows and len(rows) > max_rows:
        raise ApiError(400, f"Too many rows, maximum allowed is {max_rows}")
    if raw is not None and raw.count(b"{") == len(rows) + 1 and raw.count(b"[") == (0 if single else 1):
        return rows, single
    return [write_rows.decode_row(r) for r in rows], single


def shown(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON: BLOBs as {"$base64": true, "encoded": ...}, as reads show them."""
    return [{k: _blob(v) if isinstance(v, bytes) else v for k, v in r.items()} for r in rows]


def _blob(value: bytes) -> dict[str, Any]:
    return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}


# -- insert and upsert ------------------------------------------------------------------------

INSERT_KEYS = {"row", "rows", "return", "ignore", "replace", "alter"}


def insert(ctx: Context) -> Response:
    return _insert_or_upsert(ctx, upsert=False)


def upsert(ctx: Context) -> Response:
    return _insert_or_upsert(ctx, upsert=True)


def _insert_or_upsert(ctx: Context, *, upsert: bool) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    raw = ctx.body
    data = parse_object(raw)
    for key in data:
        if key not in INSERT_KEYS:
            raise ApiError(400, f'Invalid parameter: "{key}"')
    ignore, replace, alter = flag(data, "ignore"), flag(data, "replace"), flag(data, "alter")
    if upsert:
        if ignore or replace:
            raise ApiError(400, "Upsert does not support ignore or replace")
        if not (ds.can(actor, "insert-row", database, name) and ds.can(actor, "update-row", database, name)):
            raise ApiError(403, "Permission denied: need both insert-row and update-row")
    else:
        ds.require(actor, "insert-row", database, name, message="Permission denied")
        if ignore and replace:
            raise ApiError(400, 'Cannot use "ignore" and "replace" at the same time')
        if replace:
            ds.require(actor, "update-row", database, name,
                       message='Permission denied: need update-row to use "replace"')
    if alter:
        ds.require(actor, "alter-table", database, name, message="Permission denied for alter-table")
    rows, single = rows_from(data, ds.settings.max_insert_rows, raw)
    want_return = flag(data, "return") or single
    # Returned rows are a read: only for callers who may view the table.
    want_return = want_return and ds.can(actor, "view-table", database, name)

    def work(tx: Transaction) -> list[dict[str, Any]]:
        check_column_types(tx, name, rows)
        return write_rows.write_rows(tx, name, rows, upsert=upsert, ignore=ignore, replace=replace,
                                     alter=alter, returning=want_return)

    returned, txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True}
    if want_return:
        out["rows"] = shown(returned)
    return written(out, txid, status=200 if upsert else 201)


# -- update and delete ------------------------------------------------------------------------

UPDATE_KEYS = {"update", "return", "alter"}


def update(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name, values = ctx.target.database or "", ctx.target.table or "", ctx.target.pk
    data = parse_object(ctx.body)
    if not isinstance(data.get("update"), dict):
        raise ApiError(400, "JSON must contain an update dictionary")
    reject_unknown_keys(data, UPDATE_KEYS, sort=False)
    ds.require(actor, "update-row", database, name, message="Permission denied")
    alter = flag(data, "alter")
    if alter:
        ds.require(actor, "alter-table", database, name, message="Permission denied for alter-table")
    changes = write_rows.decode_row(data["update"])
    want_return = flag(data, "return") and ds.can(actor, "view-table", database, name)

    def work(tx: Transaction) -> list[dict[str, Any]]:
        check_column_types(tx, name, [changes])
        return write_rows.update_row(tx, name, values, changes, alter=alter, returning=want_return)

    returned, txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True}
    if want_return:
        out["rows"] = shown(returned)
    return written(out, txid)


def delete(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name, values = ctx.target.database or "", ctx.target.table or "", ctx.target.pk
    ds.require(actor, "delete-row", database, name, message="Permission denied")

    def work(tx: Transaction) -> None:
        write_rows.delete_row(tx, name, values)

    _, txid = perform(ctx, work)
    return written({"ok": True}, txid)


# -- drop ---------------------------------------------------------------------------------------

def drop(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    data = parse_object(ctx.body, empty={})
    ds.require(actor, "drop-table", database, name, message="Permission denied")
    confirm = flag(data, "confirm")
    # The row count is a read: only for callers who may also view the table.
    counted = ds.can(actor, "view-table", database, name)

    def work(tx: Transaction) -> int | None:
        table = write_tables.writable(tx, name)
        if not confirm:
            if not counted:
                return None
            return tx.conn.execute(f"select count(*) from {quote(table.name)}").fetchone()[0]
        write_tables.drop(tx, table.name)
        return None

    count, txid = perform(ctx, work)
    if confirm:
        return written({"ok": True}, txid)
    out: dict[str, Any] = {"ok": True, "database": database, "table": name}
    if counted:
        out["row_count"] = count
    out["message"] = 'Pass "confirm": true to confirm'
    return written(out, txid)


# -- create -------------------------------------------------------------------------------------

CREATE_KEYS = {"table", "columns", "rows", "row", "pk", "pks", "ignore", "replace", "alter"}
COLUMN_KEYS = {"name", "type", "not_null", "default", "default_expr", "fk_table", "fk_column"}


def _validate_columns(columns: Any) -> list[dict[str, Any]]:
    if not isinstance(columns, list) or not columns:
        raise ApiError(400, "columns must be a list of objects")
    seen: set[str] = set()
    for i, column in enumerate(columns):
        if not isinstance(column, dict):
            raise ApiError(400, f"columns.{i}: Input should be a valid dictionary")
        errors = [f"columns.{i}.{k}: Extra inputs are not permitted" for k in column if k not in COLUMN_KEYS]
        if errors:
            raise ApiError(400, *errors)
        if not isinstance(column.get("name"), str) or not column["name"]:
            raise ApiError(400, f"columns.{i}.name: Field required")
        kind = column.get("type") or "text"
        if not one_of(kind, write_tables.COLUMN_TYPES):
            raise ApiError(400, f"Unsupported column type: {kind}")
        expr = column.get("default_expr")
        if expr is not None and not one_of(expr, write_tables.DEFAULT_EXPRESSIONS):
            raise ApiError(400, f"Unsupported default_expr: {expr}")
        if column["name"] in seen:
            raise ApiError(400, f"Duplicate column name: {column['name']}")
        seen.add(column["name"])
    return columns


def _pks(data: dict[str, Any]) -> list[str]:
    if "pk" in data and "pks" in data:
        raise ApiError(400, "Cannot specify both pk and pks")
    if "pk" in data:
        if not isinstance(data["pk"], str) or not data["pk"]:
            raise ApiError(400, "pk must be a column name")
        return [data["pk"]]
    if "pks" in data:
        pks = data["pks"]
        if not isinstance(pks, list) or not pks or not all(isinstance(p, str) and p for p in pks):
            raise ApiError(400, "pks must be a list of column names")
        return pks
    return []


def create(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database = ctx.target.database or ""
    data = parse_object(ctx.body, message="JSON must be an object")
    reject_unknown_keys(data, CREATE_KEYS)
    name = data.get("table")
    if not name:
        raise ApiError(400, "Table is required")
    if not isinstance(name, str) or not write_alter.reserved_ok(name) or "\n" in name or "\r" in name:
        raise ApiError(400, "Invalid table name")
    has_rows = "row" in data or "rows" in data
    if "columns" not in data and not has_rows:
        raise ApiError(400, "columns, rows or row is required")
    if "columns" in data and has_rows:
        raise ApiError(400, "Cannot specify columns with rows or row")
    if "row" in data and "rows" in data:
        raise ApiError(400, "Cannot specify both rows and row")
    pks = _pks(data)
    ignore, replace, alter = flag(data, "ignore"), flag(data, "replace"), flag(data, "alter")
    if (ignore or replace) and not (has_rows and pks):
        raise ApiError(400, '"ignore" and "replace" need "row" or "rows" and a "pk" or "pks"')
    if ignore and replace:
        raise ApiError(400, 'Cannot use "ignore" and "replace" at the same time')
    ds.require(actor, "create-table", database, message="Permission denied")
    columns = _validate_columns(data["columns"]) if "columns" in data else None
    rows: list[dict[str, Any]] = []
    if has_rows:
        ds.require(actor, "insert-row", database, name, message="Permission denied")
        if replace:
            ds.require(actor, "update-row", database, name,
                       message='Permission denied: need update-row to use "replace"')
        rows, _ = rows_from(data, ds.settings.max_insert_rows)

    def work(tx: Transaction) -> tuple[str, bool]:
        table = write_tables.find_writable(tx, name)
        if columns is not None:
            if table is not None:
                raise ApiError(400, f'table "{name}" already exists')
            tx.conn.execute(write_tables.create_sql(tx, name, columns, pks))
            return write_tables.schema_of(tx, name), True
        if table is not None:
            if pks and pks != table.pks:
                raise ApiError(400, "pk cannot be changed for existing table")
            if alter and not ds.can(actor, "alter-table", database, name):
                raise ApiError(403, "Permission denied for alter-table")
            check_column_types(tx, table.name, rows)
        write_rows.write_rows(tx, name, rows, ignore=ignore, replace=replace, alter=alter, create_pks=pks,
                              check_columns=False)
        return write_tables.schema_of(tx, name), table is None

    (schema, created), txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True, "database": database, "table": name,
                           **table_urls(ctx, database, name)}
    # A table's CREATE statement is a read: only for callers who may view the table (rows
    # into an existing table need only insert-row, and a write-only caller must not learn
    # its columns, constraints and defaults this way) - or for the caller who has just made
    # the table, whose statement holds nothing but what its own request said (as 1.0a41
    # answers a create-table + insert-row token).
    if created or ds.can(actor, "view-table", database, name):
        out["schema"] = schema
    if has_rows:
        out["row_count"] = len(rows)
    return written(out, txid, status=201)


# -- alter --------------------------------------------------------------------------------------

def alter(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    data = parse_object(ctx.body)
    ds.require(actor, "alter-table", database, name, message="Permission denied: need alter-table")
    operations = write_alter.validate(data)

    def work(tx: Transaction) -> tuple[str, str, str]:
        write_tables.writable(tx, name)
        before = write_tables.schema_of(tx, name)
        new_name = write_alter.alter(tx, name, operations)
        return new_name, before, write_tables.schema_of(tx, new_name)

    (new_name, before, after), txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True, "database": database, "table": new_name,
                           **table_urls(ctx, database, new_name), "altered": True}
    # The statements are a read, as for create: before and after, the caller must be one who
    # may view the table (under its old name, and its new one).
    if ds.can(actor, "view-table", database, name) and ds.can(actor, "view-table", database, new_name):
        out.update({"schema": after, "before_schema": before})
    out["operations_applied"] = len(operations)
    return written(out, txid)


def table_urls(ctx: Context, database: str, table: str) -> dict[str, str]:
    path = f"/{tilde_encode(database)}/{tilde_encode(table)}"
    return {"table_url": ctx.absolute(path), "table_api_url": ctx.absolute(path + ".json")}



# -- set-column-type ----------------------------------------------------------------------------

def set_column_type(ctx: Context) -> Response:
    """1.0a41's `POST /<db>/<table>/-/set-column-type`: `{"column": "c", "column_type":
    {"type": "url|email|json|textarea", "config": {...}}}` assigns a column type,
    `"column_type": null` removes it. Needs `set-column-type` on the table (checked before
    the table is looked up). 200 with `database`, `table`, `column`, `column_type`; 400 for an
    unknown column or type, or a type that does not fit the column's SQLite type."""
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    # 404 for an unknown database before anything else (its data is the writer's business:
    # a front would only wait for its copy to catch up).
    ds.storage.info(database)
    ds.require(actor, "set-column-type", database, name, message="Permission denied")
    data = parse_object(ctx.body)
    unknown = sorted(set(data) - {"column", "column_type"})
    if unknown:
        raise ApiError(400, 'Invalid parameter: "{}"'.format('", "'.join(unknown)))
    if "column" not in data:
        raise ApiError(400, '"column" is required')
    column = data["column"]
    if not isinstance(column, str):
        raise ApiError(400, '"column" must be a string')
    if "column_type" not in data:
        raise ApiError(400, '"column_type" is required')
    spec = data["column_type"]
    kind: column_types.ColumnType | None = None
    config: dict[str, Any] | None = None
    if spec is not None:
        if not isinstance(spec, dict):
            raise ApiError(400, '"column_type" must be an object or null')
        bad = sorted(set(spec) - {"type", "config"})
        if bad:
            raise ApiError(400, 'Invalid column_type parameter: "{}"'.format('", "'.join(bad)))
        if "type" not in spec:
            raise ApiError(400, '"column_type.type" is required')
        if not isinstance(spec["type"], str):
            raise ApiError(400, '"column_type.type" must be a string')
        config = spec.get("config")
        if config is not None and not isinstance(config, dict):
            raise ApiError(400, '"column_type.config" must be a dictionary')

    def work(tx: Transaction) -> None:
        nonlocal kind
        table = tx.table(name)
        if table is None:
            raise ApiError(404, "Table not found")
        declared = {c: t for c, t in table.column_types.items()}
        if column not in declared:
            raise ApiError(400, f"Column not found: {column}")
        if spec is None:
            write_internal.set_column_type(tx, table.name, column, None, None)
            return
        kind = column_types.TYPES.get(spec["type"])
        if kind is None:
            raise ApiError(400, f"Unknown column type: {spec['type']}")
        if not kind.applies_to(declared[column]):
            raise ApiError(400, column_types.not_applicable(kind, database, table.name, column,
                                                            declared[column]))
        write_internal.set_column_type(tx, table.name, column, kind.name, config)

    _, txid = perform(ctx, work)
    return written({"ok": True, "database": database, "table": name, "column": column,
                    "column_type": None if spec is None else {"type": spec["type"], "config": config}},
                   txid)


def check_column_types(tx: Transaction, table: str, rows: list[dict[str, Any]]) -> None:
    """400 listing every value that does not fit its column's assigned type (as 1.0a41's
    insert, upsert and update check them)."""
    if internal.COLUMN_TYPES not in tx.schema().lambdasette_tables:
        return  # the hot path: no column types in this database
    assigned = write_internal.column_types(tx, table)
    if assigned:
        found = tx.table(table)
        if found is not None:
            assigned = {c: v for c, v in assigned.items()
                        if c in found.column_types and column_types.TYPES.get(v[0]) is not None
                        and column_types.TYPES[v[0]].applies_to(found.column_types[c])}
        errors = column_types.validation_errors(assigned, rows)
        if errors:
            raise ApiError(400, *errors)

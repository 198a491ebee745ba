"""The write API (Datasette 1.0a41): create, insert, upsert, update, delete, drop.

Each endpoint validates the body, checks permissions (before saying whether a table exists),
then hands one function to the database's writer, which runs it in a single transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.responses import Response

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote
from lambdasette.tilde import tilde_encode
from lambdasette.web.body import parse_object
from lambdasette.web.context import Context
from lambdasette.web.responses import TXID_HEADER, json_response
from lambdasette.writes import rows as write_rows
from lambdasette.writes import tables as write_tables

NO_STORE = {"Cache-Control": "private, no-store"}
T = TypeVar("T")


def flag(data: dict[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if not isinstance(value, bool) and value not in (0, 1, None):
        raise ApiError(400, f'"{key}" must be true or false')
    return bool(value)


def perform(ctx: Context, work: Callable[[Any], T]) -> tuple[T, int | None]:
    """Run `work(db)` in the database's writer transaction: its result, and the replica's
    transaction id of the write (None without a replica) for the answer's txid header."""
    return ctx.ds.writer.run(ctx.database, work)


def written(body: dict[str, Any], txid: int | None, status: int = 200) -> Response:
    """The answer to a durable write: JSON, never cached, with its transaction id."""
    headers = dict(NO_STORE)
    if txid is not None:
        headers[TXID_HEADER] = str(txid)
    return json_response(body, status=status, headers=headers)


def existing_table(db: Any, name: str) -> write_tables.TableInfo:
    table = write_tables.table_info(db.conn, name)
    if table is None:
        raise ApiError(404, "Table not found")
    return table


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

    def work(db: Any) -> list[dict[str, Any]]:
        table = existing_table(db, name)
        if alter:
            table = write_tables.add_missing_columns(db, table, rows)
        else:
            write_rows.check_columns(table, rows)
        if upsert:
            write_rows.check_upsert_keys(table, rows)
            write_rows.upsert(db.conn, table, rows)
            if not want_return:
                return []
            return write_rows.fetch_by_keys(db.conn, table, [[r[k] for k in table.keys] for r in rows])
        if not table.has_rowid:
            # WITHOUT ROWID: every row names its whole key, so rows are found again by key.
            write_rows.insert(db.conn, table, rows, ignore=ignore, replace=replace)
            keys = [[r.get(k) for k in table.keys] for r in rows]
            return write_rows.fetch_by_keys(db.conn, table, keys) if want_return else []
        rowids = write_rows.insert(db.conn, table, rows, ignore=ignore, replace=replace,
                               want_rowids=want_return)
        return write_rows.fetch_by_rowids(db.conn, table, rowids) if want_return else []

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
    unknown = [k for k in data if k not in UPDATE_KEYS]
    if unknown:
        raise ApiError(400, f"Invalid keys: {', '.join(unknown)}")
    ds.require(actor, "update-row", database, name, message="Permission denied")
    alter = flag(data, "alter")
    if alter:
        ds.require(actor, "alter-table", database, name, message="Permission denied for alter-table")
    changes = write_rows.decode_row(data["update"])
    want_return = flag(data, "return") and ds.can(actor, "view-table", database, name)

    def work(db: Any) -> list[dict[str, Any]]:
        table = existing_table(db, name)
        _check_key_count(table, values)
        if alter:
            table = write_tables.add_missing_columns(db, table, [changes])
        write_rows.update(db.conn, table, values, changes)
        if not want_return:
            return []
        # The key may itself have changed: fetch the row by its key after the update.
        keys = [changes.get(k, v) for k, v in zip(table.keys, values)]
        return write_rows.fetch_by_keys(db.conn, table, [keys])

    returned, txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True}
    if want_return:
        out["rows"] = shown(returned)
    return written(out, txid)


def _check_key_count(table: write_tables.TableInfo, values: list[str]) -> None:
    if len(values) != len(table.keys):
        raise ApiError(400, "URL row identifier does not match the primary key for this table")


def delete(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name, values = ctx.target.database or "", ctx.target.table or "", ctx.target.pk
    ds.require(actor, "delete-row", database, name, message="Permission denied")

    def work(db: Any) -> None:
        table = existing_table(db, name)
        _check_key_count(table, values)
        write_rows.delete(db.conn, table, values)

    _, txid = perform(ctx, work)
    return written({"ok": True}, txid)


# -- drop ---------------------------------------------------------------------------------------

def drop(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    data = parse_object(ctx.body, empty={})
    ds.require(actor, "drop-table", database, name, message="Permission denied")
    confirm = flag(data, "confirm")

    def work(db: Any) -> int | None:
        table = existing_table(db, name)
        if not confirm:
            return db.conn.execute(f"select count(*) from {quote(table.name)}").fetchone()[0]
        write_tables.drop(db, table.name)
        return None

    count, txid = perform(ctx, work)
    if confirm:
        return written({"ok": True}, txid)
    return written({"ok": True, "database": database, "table": name, "row_count": count,
                    "message": 'Pass "confirm": true to confirm'}, txid)


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
        if kind not in write_tables.COLUMN_TYPES:
            raise ApiError(400, f"Unsupported column type: {kind}")
        expr = column.get("default_expr")
        if expr is not None and expr not in write_tables.DEFAULT_EXPRESSIONS:
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
    unknown = sorted(set(data) - CREATE_KEYS)
    if unknown:
        raise ApiError(400, f"Invalid keys: {', '.join(unknown)}")
    name = data.get("table")
    if not name:
        raise ApiError(400, "Table is required")
    if not isinstance(name, str) or name.startswith("sqlite_") or "\n" in name or "\r" in name:
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

    def work(db: Any) -> str:
        table = write_tables.table_info(db.conn, name)
        if columns is not None:
            if table is not None:
                raise ApiError(400, f'table "{name}" already exists')
            db.conn.execute(write_tables.create_sql(db.conn, name, columns, pks))
            return write_tables.schema_of(db.conn, name)
        if table is not None:
            if pks and pks != table.pks:
                raise ApiError(400, "pk cannot be changed for existing table")
            if alter:
                if not ds.can(actor, "alter-table", database, name):
                    raise ApiError(403, "Permission denied for alter-table")
                table = write_tables.add_missing_columns(db, table, rows)
            write_rows.insert(db.conn, table, rows, ignore=ignore, replace=replace)
        else:
            write_tables.create_from_rows(db, name, rows, pks, ignore=ignore, replace=replace)
        return write_tables.schema_of(db.conn, name)

    schema, txid = perform(ctx, work)
    out: dict[str, Any] = {"ok": True, "database": database, "table": name,
                           **table_urls(ctx, database, name), "schema": schema}
    if has_rows:
        out["row_count"] = len(rows)
    return written(out, txid, status=201)


# -- alter --------------------------------------------------------------------------------------

ALTER_ARGS: dict[str, tuple[set[str], set[str]]] = {  # op: (required args, optional args)
    "add_column": ({"name"}, {"type", "not_null", "default", "default_expr"}),
    "rename_column": ({"name", "to"}, set()),
    "rename_table": ({"to"}, set()),
    "alter_column": ({"name"}, {"type", "not_null", "default", "default_expr"}),
    "drop_column": ({"name"}, set()),
    "set_primary_key": ({"columns"}, set()),
    "reorder_columns": ({"columns"}, set()),
    "add_foreign_key": ({"column", "fk_table"}, {"fk_column"}),
    "drop_foreign_key": ({"column"}, set()),
    "set_foreign_keys": ({"foreign_keys"}, set()),
}


def _validate_operations(data: dict[str, Any]) -> list[dict[str, Any]]:
    unknown = sorted(set(data) - {"operations"})
    if unknown:
        raise ApiError(400, f"Invalid keys: {', '.join(unknown)}")
    if "operations" not in data:
        raise ApiError(400, "operations: Field required")
    operations = data["operations"]
    if not isinstance(operations, list) or not operations:
        raise ApiError(400, "operations: List should have at least 1 item")
    tags = ", ".join(f"'{op}'" for op in write_tables.ALTER_OPS)
    errors = []
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("args", {}), dict):
            errors.append(f"operations.{i}: Input should be an object with \"op\" and \"args\"")
            continue
        kind, args = op.get("op"), op.setdefault("args", {})
        if kind not in ALTER_ARGS:
            errors.append(f"operations.{i}: Input tag '{kind}' found using 'op' does not match any of "
                          f"the expected tags: {tags}")
            continue
        required, optional = ALTER_ARGS[kind]
        errors += [f"operations.{i}.args.{k}: Field required" for k in sorted(required - set(args))]
        errors += [f"operations.{i}.args.{k}: Extra inputs are not permitted"
                   for k in sorted(set(args) - required - optional)]
        kind_type = args.get("type")
        if kind_type is not None and kind_type not in write_tables.COLUMN_TYPES:
            errors.append(f"Unsupported column type: {kind_type}")
        expr = args.get("default_expr")
        if expr is not None and expr not in write_tables.DEFAULT_EXPRESSIONS:
            errors.append(f"Unsupported default_expr: {expr}")
        for key in ("name", "to", "column", "fk_table", "fk_column"):
            if key in args and not (isinstance(args[key], str) and args[key]):
                errors.append(f"operations.{i}.args.{key}: Input should be a non-empty string")
        for key in ("columns",):
            value = args.get(key)
            if value is not None and not (isinstance(value, list) and value
                                          and all(isinstance(c, str) for c in value)):
                errors.append(f"operations.{i}.args.{key}: Input should be a list of column names")
        if kind == "set_foreign_keys":
            fks = args.get("foreign_keys")
            if not isinstance(fks, list) or not all(
                isinstance(fk, dict) and isinstance(fk.get("column"), str)
                and isinstance(fk.get("fk_table"), str) for fk in fks
            ):
                errors.append(f"operations.{i}.args.foreign_keys: Input should be a list of "
                              '{"column", "fk_table"} objects')
    if errors:
        raise ApiError(400, *errors)
    return operations


def alter(ctx: Context) -> Response:
    ds, actor = ctx.ds, ctx.actor
    database, name = ctx.target.database or "", ctx.target.table or ""
    data = parse_object(ctx.body)
    ds.require(actor, "alter-table", database, name, message="Permission denied: need alter-table")
    operations = _validate_operations(data)

    def work(db: Any) -> tuple[str, str, str]:
        existing_table(db, name)
        before = write_tables.schema_of(db.conn, name)
        new_name = write_tables.alter(db, name, operations)
        return new_name, before, write_tables.schema_of(db.conn, new_name)

    (new_name, before, after), txid = perform(ctx, work)
    out = {"ok": True, "database": database, "table": new_name,
           **table_urls(ctx, database, new_name),
           "altered": True, "schema": after, "before_schema": before,
           "operations_applied": len(operations)}
    return written(out, txid)


def table_urls(ctx: Context, database: str, table: str) -> dict[str, str]:
    path = f"/{tilde_encode(database)}/{tilde_encode(table)}"
    return {"table_url": ctx.absolute(path), "table_api_url": ctx.absolute(path + ".json")}


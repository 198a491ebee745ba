"""`alter` (Datasette 1.0a41's `POST /<db>/<table>/-/alter`): a list of operations, each a
small function, applied as one change to the table.

`OPERATIONS` is the one table of what exists: each operation's required and optional
arguments (which `validate` checks) and the function that applies it. Columns are added with
`ALTER TABLE` where SQLite allows it; every other change accumulates into one sqlite-utils
`transform` (a rebuild of the table); a rename comes last.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdasette.auth import write_sql
from lambdasette.errors import ApiError, reject_unknown_keys
from lambdasette.query.quote import quote
from lambdasette.writes.tables import (
    COLUMN_TYPES,
    DEFAULT_EXPRESSIONS,
    find_writable,
    literal,
    single_pk,
)
from lambdasette.writes.transaction import Transaction


@dataclass
class Change:
    """What the operations so far add up to, for table `table` with `columns`."""

    table: str
    columns: set[str]
    transform: dict[str, Any] = field(default_factory=dict)
    not_null: dict[str, bool] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    rename_to: str | None = None

    def need(self, column: str) -> None:
        if column not in self.columns:
            raise ApiError(400, f"No such column: {column}")


Apply = Callable[[Transaction, Change, dict[str, Any]], None]


@dataclass(frozen=True)
class Operation:
    required: frozenset[str]
    optional: frozenset[str]
    apply: Apply


def _default_sql(args: dict[str, Any]) -> str | None:
    """A column default as sqlite-utils' transform wants it: SQL text."""
    if args.get("default_expr"):
        return DEFAULT_EXPRESSIONS[args["default_expr"]]
    if args.get("default") is not None:
        return literal(args["default"])
    return None


def add_column(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    name = args["name"]
    if name in change.columns:
        raise ApiError(400, f"Column already exists: {name}")
    column_type = COLUMN_TYPES[args.get("type") or "text"]
    default = _default_sql(args)
    add = f"ALTER TABLE {quote(change.table)} ADD COLUMN {quote(name)} {column_type}"
    if args.get("default_expr"):
        # SQLite cannot ADD a column with a non-constant default: add it plain, give
        # existing rows the default's value, then rebuild with the default in place.
        tx.conn.execute(add)
        tx.conn.execute(f"UPDATE {quote(change.table)} SET {quote(name)} = {default}")
        if args.get("not_null"):
            change.not_null[name] = True
        change.defaults[name] = default
    else:
        suffix = " NOT NULL" if args.get("not_null") else ""
        suffix += f" DEFAULT {default}" if default is not None else ""
        tx.conn.execute(add + suffix)
    change.columns.add(name)


def rename_column(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.need(args["name"])
    change.transform.setdefault("rename", {})[args["name"]] = args["to"]


def drop_column(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.need(args["name"])
    change.transform.setdefault("drop", set()).add(args["name"])


def alter_column(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    name = args["name"]
    change.need(name)
    if args.get("type"):
        change.transform.setdefault("types", {})[name] = COLUMN_TYPES[args["type"]]
    if "not_null" in args:
        change.not_null[name] = bool(args["not_null"])
    if "default_expr" in args or "default" in args:
        change.defaults[name] = _default_sql(args)


def set_primary_key(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    for column in args["columns"]:
        change.need(column)
    pk = args["columns"]
    change.transform["pk"] = pk[0] if len(pk) == 1 else tuple(pk)


def reorder_columns(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.transform["column_order"] = args["columns"]


def add_foreign_key(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.need(args["column"])
    other = args.get("fk_column") or single_pk(tx, args["fk_table"])
    change.transform.setdefault("add_foreign_keys", []).append((args["column"], args["fk_table"], other))


def drop_foreign_key(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.transform.setdefault("drop_foreign_keys", []).append(args["column"])


def set_foreign_keys(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    change.transform["foreign_keys"] = [
        (fk["column"], fk["fk_table"], fk.get("fk_column") or single_pk(tx, fk["fk_table"]))
        for fk in args["foreign_keys"]
    ]


def rename_table(tx: Transaction, change: Change, args: dict[str, Any]) -> None:
    if not reserved_ok(str(args["to"])):
        raise ApiError(400, "Invalid table name")
    change.rename_to = args["to"]


def reserved_ok(name: str) -> bool:
    """A name a caller may give a table: not SQLite's (`sqlite_`), Litestream's or ours. The
    one rule for every path that names a new table (create, rename_table, and execute-write's
    CREATE and ALTER ... RENAME TO): `auth.write_sql.reserved_name`."""
    return not write_sql.reserved_name(name)


COLUMN_ARGS = frozenset({"type", "not_null", "default", "default_expr"})
OPERATIONS: dict[str, Operation] = {
    "add_column": Operation(frozenset({"name"}), COLUMN_ARGS, add_column),
    "rename_column": Operation(frozenset({"name", "to"}), frozenset(), rename_column),
    "rename_table": Operation(frozenset({"to"}), frozenset(), rename_table),
    "alter_column": Operation(frozenset({"name"}), COLUMN_ARGS, alter_column),
    "drop_column": Operation(frozenset({"name"}), frozenset(), drop_column),
    "set_primary_key": Operation(frozenset({"columns"}), frozenset(), set_primary_key),
    "reorder_columns": Operation(frozenset({"columns"}), frozenset(), reorder_columns),
    "add_foreign_key": Operation(
        frozenset({"column", "fk_table"}), frozenset({"fk_column"}), add_foreign_key
    ),
    "drop_foreign_key": Operation(frozenset({"column"}), frozenset(), drop_foreign_key),
    "set_foreign_keys": Operation(frozenset({"foreign_keys"}), frozenset(), set_foreign_keys),
}


def validate(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The request body's `operations`, checked against `OPERATIONS` before anything runs;
    ApiError 400 listing every problem, worded as 1.0a41's (pydantic's) messages."""
    reject_unknown_keys(data, {"operations"})
    if "operations" not in data:
        raise ApiError(400, "operations: Field required")
    operations = data["operations"]
    if not isinstance(operations, list) or not operations:
        raise ApiError(400, "operations: List should have at least 1 item")
    tags = ", ".join(f"'{op}'" for op in OPERATIONS)
    errors = []
    for i, op in enumerate(operations):
        if not isinstance(op, dict) or not isinstance(op.get("args", {}), dict):
            errors.append(f"operations.{i}: Input should be an object with \"op\" and \"args\"")
            continue
        kind, args = op.get("op"), op.setdefault("args", {})
        operation = OPERATIONS.get(kind) if isinstance(kind, str) else None
        if operation is None:
            errors.append(f"operations.{i}: Input tag '{kind}' found using 'op' does not match any of "
                          f"the expected tags: {tags}")
            continue
        missing = sorted(operation.required - set(args))
        errors += [f"operations.{i}.args.{k}: Field required" for k in missing]
        errors += [f"operations.{i}.args.{k}: Extra inputs are not permitted"
                   for k in sorted(set(args) - operation.required - operation.optional)]
        errors += _argument_errors(i, kind, args)
    if errors:
        raise ApiError(400, *errors)
    return operations


def _argument_errors(i: int, kind: str, args: dict[str, Any]) -> list[str]:
    errors = []
    # A list or an object is never a type or an expression (and cannot be looked up).
    kind_type = args.get("type")
    if kind_type is not None and not (isinstance(kind_type, str) and kind_type in COLUMN_TYPES):
        errors.append(f"Unsupported column type: {kind_type}")
    expr = args.get("default_expr")
    if expr is not None and not (isinstance(expr, str) and expr in DEFAULT_EXPRESSIONS):
        errors.append(f"Unsupported default_expr: {expr}")
    for key in ("name", "to", "column", "fk_table", "fk_column"):
        if key in args and not (isinstance(args[key], str) and args[key]):
            errors.append(f"operations.{i}.args.{key}: Input should be a non-empty string")
    value = args.get("columns")
    names = isinstance(value, list) and value and all(isinstance(c, str) for c in value)
    if value is not None and not names:
        errors.append(f"operations.{i}.args.columns: Input should be a list of column names")
    if kind == "set_foreign_keys":
        fks = args.get("foreign_keys")
        if not isinstance(fks, list) or not all(
            isinstance(fk, dict) and isinstance(fk.get("column"), str)
            and isinstance(fk.get("fk_table"), str) for fk in fks
        ):
            errors.append(f"operations.{i}.args.foreign_keys: Input should be a list of "
                          '{"column", "fk_table"} objects')
    return errors


def alter(tx: Transaction, name: str, operations: list[dict[str, Any]]) -> str:
    """Apply validated `operations` to table `name`; returns the table's name afterwards."""
    table = tx.db[name]
    change = Change(table=name, columns={c.name for c in table.columns})
    for op in operations:
        OPERATIONS[op["op"]].apply(tx, change, op["args"])
    if any(change.not_null.values()):
        change.transform["not_null"] = {c: True for c, v in change.not_null.items() if v}
    if change.defaults:
        change.transform["defaults"] = change.defaults
    if change.transform:
        table.transform(**change.transform)
    dropped = {c: False for c, v in change.not_null.items() if not v}
    if dropped:
        # A separate pass: sqlite-utils 4.2 turns not_null=False into NOT NULL when the same
        # transform also sets defaults.
        table.transform(not_null=dropped)
    if change.rename_to is not None and change.rename_to != name:
        if find_writable(tx, change.rename_to) is not None:
            raise ApiError(400, f'table "{change.rename_to}" already exists')
        tx.conn.execute(f"ALTER TABLE {quote(name)} RENAME TO {quote(change.rename_to)}")
        return change.rename_to
    return name

"""1.0a41's schema pages: `/-/schema`, `/<db>/-/schema` and `/<db>/<table>/-/schema`, as
`.json` (`{"ok", "database", "schema"}`) or `.md` (a Markdown SQL block).

Only what the caller may see: an instance's page lists the databases the caller may view; a
database's holds the `CREATE` statements of its tables and views the caller may view and of
their indexes and triggers (never lambdasette's or Litestream's own tables); a table's needs
`view-table`. 1.0a41 shows every statement of a database to anyone who may view it.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints.table import get_table
from lambdasette.errors import ApiError
from lambdasette.names import fold
from lambdasette.query.schema import LITESTREAM_PREFIX, Schema
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response

MARKDOWN = "text/markdown; charset=utf-8"


def master(ctx: Context, database: str) -> list[tuple[str, str, str, str]]:
    """sqlite_master's statements, read on a connection of our own (a caller's connection
    may be guarded against reading it)."""
    conn = ctx.ds.storage.connect(database)
    try:
        return conn.execute(
            "select type, name, tbl_name, sql from sqlite_master where sql is not null order by rowid"
        ).fetchall()
    finally:
        conn.close()


# Identifiers however quoted, string literals, and bare words: every name a statement could
# mention (a literal too, to be safe).
_NAMES = re.compile(r'"((?:[^"]|"")*)"|\[([^\]]*)\]|`((?:[^`]|``)*)`|'
                    r"'((?:[^']|'')*)'|([A-Za-z_][A-Za-z0-9_$]*)")


def names_in(sql: str) -> set[str]:
    """Every name `sql` mentions (folded: `names.fold`)."""
    return {fold(next(g for g in match.groups() if g is not None)) for match in _NAMES.finditer(sql)}


def hidden_names(ctx: Context, database: str, seen: Schema) -> frozenset[str]:
    """The tables and views of `database` the caller may not view (folded): `seen` is the
    caller's view of the schema."""
    everything = ctx.ds.schema(database, ctx.ds.connection(database))
    visible = {fold(name) for name in seen.tables}
    return frozenset(fold(name) for name in everything.tables if fold(name) not in visible)


def database_schema_sql(rows: list[tuple[str, str, str, str]], schema: Schema,
                        hidden: frozenset[str] = frozenset()) -> str:
    """The `CREATE` statements of the database (`rows` of sqlite_master), as 1.0a41 joins
    them (`;` and a newline), of what `schema` (the caller's view of it) holds: its tables
    and views, and the indexes and triggers on them — leaving out any statement that names a
    `hidden` table (a trigger that writes one, a foreign key to one)."""
    visible = {fold(name) for name in schema.tables}
    kept = []
    for kind, name, table, sql in rows:
        if fold(name).startswith(LITESTREAM_PREFIX) or fold(name) in schema.lambdasette_tables:
            continue
        owner = name if kind in ("table", "view") else table
        if fold(owner) in visible or (kind == "table" and fold(name).startswith("sqlite_")):
            if not (hidden and names_in(sql) & hidden):
                kept.append(sql)
    return ";\n".join(kept)


def definition(ctx: Context, database: str, name: str, kind: str, seen: Schema) -> str | None:
    """The `CREATE` statement of a table or view (`kind`), None if there is none or if it
    names a table or view the caller may not view."""
    sql = next((row[3] for row in master(ctx, database) if row[0] == kind and row[1] == name), None)
    if sql is not None and names_in(sql) & hidden_names(ctx, database, seen):
        return None
    return sql


def _answer(ctx: Context, body: dict[str, Any], heading: str, sql: str) -> Response:
    if ctx.target.format == "md":
        return Response(f"# {heading}\n\n```sql\n{sql}\n```\n", media_type=MARKDOWN)
    return json_response({"ok": True, **body})


def instance_schema(ctx: Context) -> Response:
    """`/-/schema.json`: `{"ok", "schemas": [{"database", "schema"}]}` for each database the
    caller may view (`.md`: a section per database)."""
    schemas = []
    for name in ctx.ds.database_names():
        if not ctx.ds.can(ctx.actor, "view-database", name):
            continue
        _, schema = ctx.open(name)
        sql = database_schema_sql(master(ctx, name), schema, hidden_names(ctx, name, schema))
        schemas.append({"database": name, "schema": sql})
    if ctx.target.format == "md":
        text = "\n\n".join(f"# Schema for {s['database']}\n\n```sql\n{s['schema']}\n```" for s in schemas)
        return Response(text, media_type=MARKDOWN)
    return json_response({"ok": True, "schemas": schemas})


def database_schema(ctx: Context) -> Response:
    """`/<db>/-/schema.json`: the database's schema; needs `view-database`, checked before
    the database is looked up."""
    name = ctx.database
    ctx.ds.require(ctx.actor, "view-database", name,
                   message="You do not have permission to view this database")
    _, schema = ctx.open(name)
    sql = database_schema_sql(master(ctx, name), schema, hidden_names(ctx, name, schema))
    return _answer(ctx, {"database": name, "schema": sql}, f"Schema for {name}", sql)


def table_schema(ctx: Context) -> Response:
    """`/<db>/<table>/-/schema.json`: the table's or view's `CREATE` statement; needs
    `view-table`, checked before the table is looked up."""
    _, schema, tbl = get_table(ctx)
    sql = definition(ctx, ctx.database, tbl.name, "view" if tbl.is_view else "table", schema)
    if sql is None:
        raise ApiError(403, "You may not view this table's schema: it names a table you may not view")
    return _answer(ctx, {"database": ctx.database, "table": tbl.name, "schema": sql},
                   f"Schema for {ctx.database}.{tbl.name}", sql or "")

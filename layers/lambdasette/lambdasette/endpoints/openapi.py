"""`GET /-/openapi.json`: an OpenAPI 3.1 document of this instance's API as the CALLER may use
it, and `GET /-/api`: Swagger UI (shipped in the package) rendering it.

The document is generated per request from the live schema and the caller's permissions,
so it shows only what the caller may see and do: the databases, tables and views it may
view (with their read endpoints: filters, sort, shapes, pagination, facets, search, and
row schemas typed from the columns), the write endpoints it holds the actions for (with
JSON Schemas of their bodies), the token API if it may manage tokens, and the errors every
operation can answer. A caller who may not view a table finds no trace of it here, exactly
as in the API itself.

Paths are the `.json` URLs (never the extensionless ones, which answer HTML to browsers),
with names tilde-encoded as the API reads them.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.responses import Response

from lambdasette import __version__, column_types
from lambdasette.endpoints import extras
from lambdasette.endpoints.database import table_summaries
from lambdasette.query import values
from lambdasette.query.schema import Table
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.html import render
from lambdasette.web.responses import json_response
from lambdasette.writes import alter as write_alter
from lambdasette.writes import tables as write_tables

SWAGGER_UI = "swagger-ui-5.35.0"
FILTER_OPERATORS = ("exact not contains notcontains startswith endswith gt gte lt lte like notlike glob "
                    "in notin arraycontains arraynotcontains date isnull notnull isblank notblank").split()
JSON = "application/json"
ERROR_RESPONSES = {
    "400": "BadRequest", "401": "Unauthorized", "403": "Forbidden", "404": "NotFound",
}
WRITE_ERRORS = {**ERROR_RESPONSES, "413": "PayloadTooLarge", "503": "Unavailable"}
_MARKDOWN_PUNCTUATION = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def md(text: str) -> str:
    """`text` (a name, a type, a caller's description) as literal text in a Markdown field.

    Swagger UI renders every `description` as Markdown with HTML allowed (then sanitised): names
    and descriptions come from callers (`create-table`, `store-query`), so each ASCII punctuation
    character is backslash-escaped (CommonMark's rule, which Remarkable follows) and line breaks
    become spaces: no link, image, tag, heading or code span can be planted in another user's
    explorer.
    """
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", " ".join(text.splitlines()))


def md_code_block(code: str, language: str = "sql") -> str:
    """`code` in a fenced block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{language}\n{code}\n{fence}"


def explorer(ctx: Context) -> Response:
    """`GET /-/api`: the interactive explorer. Its script is a file (no inline script); a
    signed-in browser's requests carry the session cookie, and its POSTs the session's CSRF
    token from the page's `<meta name="csrf-token">` (never the session id itself)."""
    return render(ctx, "explorer.html", {"swagger": SWAGGER_UI})


def document(ctx: Context) -> Response:
    """`GET /-/openapi.json`. Anyone who reaches the API gets it (a token restricted to one
    table may not view the instance, but may read that table): it lists what they may use."""
    return json_response(build(ctx), headers={"Cache-Control": "private, no-store"})


class Names:
    """Component names and operation ids, unique and within OpenAPI's `[A-Za-z0-9._-]`."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, *parts: str) -> str:
        base = ".".join(re.sub(r"[^A-Za-z0-9_-]+", "_", p).strip("_") or "_" for p in parts)
        name, n = base, 2
        while name in self.used:
            name, n = f"{base}_{n}", n + 1
        self.used.add(name)
        return name


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def responses(ok: dict[str, Any], errors: dict[str, str] = ERROR_RESPONSES, status: str = "200",
              description: str = "Success") -> dict[str, Any]:
    out: dict[str, Any] = {status: {"description": description, "content": {JSON: {"schema": ok}}}}
    out.update({code: ref("responses", name) for code, name in errors.items()})
    return out


def body(schema: dict[str, Any], example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"required": True, "content": {JSON: content}}


def column_schema(table: Table, column: str) -> dict[str, Any]:
    """A column's JSON values: typed by its affinity, null unless the column is NOT NULL."""
    affinity = table.affinity(column)
    kinds = {
        values.INTEGER: {"type": ["integer"]},
        values.REAL: {"type": ["number"]},
        values.NUMERIC: {"type": ["number"]},
        values.TEXT: {"type": ["string"]},
    }
    declared = table.column_types.get(column, "")
    schema: dict[str, Any] = dict(kinds.get(affinity, {}))
    if "type" in schema and column not in table.not_null:
        schema["type"] = [*schema["type"], "null"]
    if declared:
        schema["description"] = f"SQLite type {md(declared)}"
    if affinity == values.BLOB and declared.upper() == "BLOB":
        schema = {"anyOf": [ref("schemas", "Blob"), {"type": "null"}], "description": "SQLite type BLOB"}
    return schema


def build(ctx: Context) -> dict[str, Any]:
    """The document for this caller."""
    ds, actor = ctx.ds, ctx.actor
    names = Names()
    schemas: dict[str, Any] = dict(BASE_SCHEMAS)
    paths: dict[str, Any] = {}
    tags: list[dict[str, str]] = [{"name": "instance", "description": "The instance"}]
    for name in ds.database_names():
        conn, schema = ctx.open(name)  # only the tables this caller may view
        db = tilde_encode(name)
        if ds.can(actor, "view-database", name):
            tags.append({"name": name, "description": f"Database {md(name)}"})
            tables, views = table_summaries(ctx, name, conn, schema)
            listed = [t["name"] for t in tables if not t["hidden"]] + [v["name"] for v in views]
            paths[f"/{db}.json"] = {"get": database_operation(ctx, name, names, listed)}
        if ds.can(actor, "execute-sql", name):
            paths[f"/{db}/-/query.json"] = {"get": query_operation(name, names)}
        if ds.can(actor, "create-table", name):
            if not any(t["name"] == name for t in tags):
                tags.append({"name": name, "description": f"Database {md(name)}"})
            paths[f"/{db}/-/create"] = {"post": create_operation(name, names)}
        if ds.can(actor, "view-database", name):
            paths[f"/{db}/-/schema.json"] = {"get": {
                "tags": [name], "operationId": names(name, "schema"),
                "summary": f"The CREATE statements of {name} you may see (1.0a41; also .md)",
                "responses": responses(ref("schemas", "SchemaPage"))}}
            listing = queries_listing(name, names, f"Named queries of {name}")
            paths[f"/{db}/-/queries.json"] = {"get": listing}
        if ds.can(actor, "execute-write-sql", name):
            paths[f"/{db}/-/execute-write"] = {"post": execute_write_operation(name, names)}
            paths[f"/{db}/-/execute-write/analyze"] = {"get": {
                "tags": [name], "operationId": names(name, "execute-write-analyze"),
                "summary": "What a write statement would do and need; runs nothing",
                "parameters": [{"name": "sql", "in": "query", "required": True, "schema": {"type": "string"},
                                "example": "delete from t where id = 1"}],
                "responses": responses({"type": "object"})}}
        if ds.can(actor, "execute-sql", name) and ds.can(actor, "store-query", name):
            paths[f"/{db}/-/queries/store"] = {"post": store_query_operation(name, names)}
            paths[f"/{db}/-/queries/analyze"] = {"get": {
                "tags": [name], "operationId": names(name, "queries-analyze"),
                "summary": "What storing this SQL as a query would need",
                "parameters": [{"name": "sql", "in": "query", "required": True,
                                "schema": {"type": "string"}}],
                "responses": responses({"type": "object"})}}
        for query in ds.canned_queries(name).values():
            if not ds.query_allowed(actor, "view-query", query):
                continue
            if schema.get(query.name) is not None and query.source == "user":
                continue  # a table of that name answers at that URL
            paths.update(query_paths(ctx, db, name, query, names))
        for table in sorted(schema.tables.values(), key=lambda t: t.name.lower()):
            if table.hidden or ds.table_config(name, table.name).hidden:
                continue
            if ds.canned_query(name, table.name) is not None:
                continue  # the query's name wins at that URL
            tag = table_tag(name, table.name)
            tags.append({"name": tag, "description": f"{'View' if table.is_view else 'Table'} "
                                                     f"{md(table.name)} of {md(name)}"})
            table_paths(ctx, name, table, tag, names, schemas, paths)
    paths.update(instance_paths(ctx, names))
    if ds.can(actor, "view-instance"):
        paths["/-/queries.json"] = {"get": queries_listing(None, names, "Named queries of every database")}
    if ds.tokens is not None and actor is not None and ds.can(actor, "create-token"):
        tags.append({"name": "tokens", "description": "API tokens: create, list, show, revoke"})
        paths.update(token_paths(names))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lambdasette",
            "version": __version__,
            "description": (
                "A Datasette-compatible JSON API (Datasette 0.65 reads, 1.0a41 writes), as "
                + (f"the actor {md(str(actor['id']))} may use it" if actor
                   else "an anonymous caller may use it")
                + ": only the databases, tables and operations this caller may see are listed. "
                "Names in paths are tilde-encoded. Every error is JSON: "
                '`{"ok": false, "error": "...", "errors": [...], "status": N}`.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}] if not ds.options.public else [{"bearer": []}, {}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {
                "type": "http", "scheme": "bearer", "bearerFormat": "lstok_<id>_<secret>",
                "description": "An API token. In the explorer, a signed-in browser's session is used "
                               "when no token is given.",
            }},
            "schemas": schemas,
            "parameters": PARAMETERS,
            "responses": RESPONSES,
        },
    }


def table_tag(database: str, table: str) -> str:
    """The explorer's group for a table's operations (`/-/api#/<tag>` opens it)."""
    return f"{database}: {table}"


def database_operation(ctx: Context, name: str, names: Names, listed: list[str]) -> dict[str, Any]:
    parameters: list[Any] = []
    description = f"Tables and views: {', '.join(map(md, listed)) or 'none you may see'}."
    if ctx.ds.can(ctx.actor, "execute-sql", name):
        parameters = [
            {"name": "sql", "in": "query", "schema": {"type": "string"},
             "description": "A read-only SQL query (one SELECT or WITH statement); without it, "
                            "the database's tables and views.",
             "example": "select * from sqlite_master limit 0"},
            ref("parameters", "shape"), ref("parameters", "named"), ref("parameters", "timelimit"),
        ]
    return {
        "tags": [name], "operationId": names(name, "database"),
        "summary": f"The database {name} (with ?sql=: a query's rows, 0.65 format)",
        "description": description, "parameters": parameters,
        "responses": responses({"oneOf": [ref("schemas", "DatabasePage"), ref("schemas", "QueryResult")]}),
    }


def query_operation(name: str, names: Names) -> dict[str, Any]:
    return {
        "tags": [name], "operationId": names(name, "query"),
        "summary": f"Run read-only SQL on {name}",
        "parameters": [
            {"name": "sql", "in": "query", "required": True, "schema": {"type": "string"},
             "example": "select 1 as one"},
            ref("parameters", "shape"), ref("parameters", "named"), ref("parameters", "timelimit"),
        ],
        "responses": responses(ref("schemas", "QueryResult")),
    }


def create_operation(name: str, names: Names) -> dict[str, Any]:
    column = {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {
            "name": {"type": "string"}, "type": {"enum": sorted(write_tables.COLUMN_TYPES)},
            "not_null": {"type": "boolean"}, "default": {},
            "default_expr": {"enum": sorted(write_tables.DEFAULT_EXPRESSIONS)},
            "fk_table": {"type": "string"}, "fk_column": {"type": "string"},
        },
    }
    schema = {
        "type": "object", "required": ["table"], "additionalProperties": False,
        "properties": {
            "table": {"type": "string", "minLength": 1},
            "columns": {"type": "array", "items": column, "minItems": 1},
            "row": {"type": "object"}, "rows": {"type": "array", "items": {"type": "object"}},
            "pk": {"type": "string"}, "pks": {"type": "array", "items": {"type": "string"}, "minItems": 1},
            "ignore": {"type": "boolean"}, "replace": {"type": "boolean"}, "alter": {"type": "boolean"},
        },
    }
    example = {"table": "birds", "pk": "id", "rows": [{"id": 1, "name": "wren", "weight_g": 9.5}]}
    return {
        "tags": [name], "operationId": names(name, "create"), "summary": f"Create a table in {name}",
        "description": "From `columns`, or from example `row`/`rows` (which are inserted). Needs "
                       "create-table (and insert-row with rows).",
        "requestBody": body(schema, example),
        "responses": responses(ref("schemas", "WriteResult"), WRITE_ERRORS, "201", "Created"),
    }


def table_paths(ctx: Context, database: str, table: Table, tag: str, names: Names,
                schemas: dict[str, Any], paths: dict[str, Any]) -> None:
    """A table's or view's read endpoints, and the write endpoints the caller may use."""
    ds, actor = ctx.ds, ctx.actor
    base = f"/{tilde_encode(database)}/{tilde_encode(table.name)}"
    columns = (["rowid"] if table.uses_rowid else []) + table.columns
    row_name = names(database, table.name, "Row")
    schemas[row_name] = {
        "type": "object", "title": f"A row of {table.name}",
        "properties": {c: column_schema(table, c) for c in columns},
    }
    page_name = names(database, table.name, "Page")
    schemas[page_name] = {"allOf": [ref("schemas", "TablePage"), {"properties": {"rows": {
        "type": "array", "description": "Arrays in column order, or objects with `_shape=objects`",
        "items": {"anyOf": [{"type": "array"}, ref("schemas", row_name)]},
    }}}]}
    filters = [
        {"name": c, "in": "query", "required": False, "schema": {"type": "string"},
         "description": f"Rows whose {md(c)} equals this (`{c}__gt=...` and the other operators: see "
                        "`filters`)" if "`" not in c else f"Rows whose {md(c)} equals this"}
        for c in columns if not c.startswith("_")
    ]
    fts = [ref("parameters", "search")] if table.fts_table else []
    read = {
        "tags": [tag], "operationId": names(database, table.name, "rows"),
        "summary": f"Rows of {table.name}" + (" (a view)" if table.is_view else ""),
        "description": f"Columns: {', '.join(map(md, columns))}. Rows are identified by: "
                       f"{', '.join(map(md, table.row_keys)) or 'nothing (a view)'}.",
        "parameters": [*(ref("parameters", p) for p in TABLE_PARAMETERS), *fts, *filters,
                       ref("parameters", "filters"), ref("parameters", "extra_table")],
        "responses": {**responses(ref("schemas", page_name)), "200": {
            "description": "A page of rows. `next` (and the `Link` header) leads to the next page.",
            "headers": {"Link": {"schema": {"type": "string"}, "description": 'rel="next"'}},
            "content": {JSON: {"schema": ref("schemas", page_name)}},
        }},
    }
    paths[f"{base}.json"] = {"get": read}
    paths[f"{base}.csv"] = {"get": {
        "tags": [tag], "operationId": names(database, table.name, "csv"),
        "summary": f"Rows of {table.name} as CSV",
        "parameters": [*(ref("parameters", p) for p in TABLE_PARAMETERS if p not in ("shape", "nl")),
                       ref("parameters", "stream"), ref("parameters", "dl"), *filters,
                       ref("parameters", "filters")],
        "responses": {"200": {"description": "CSV", "content": {"text/csv": {"schema": {"type": "string"}}}},
                      **{code: ref("responses", n) for code, n in ERROR_RESPONSES.items()}},
    }}
    paths[f"{base}/-/count"] = {"post": {
        "tags": [tag], "operationId": names(database, table.name, "count"),
        "summary": f"The exact number of rows of {table.name} the filters select (1.0a41)",
        "parameters": [*fts, *filters, ref("parameters", "filters"), ref("parameters", "where")],
        "responses": responses({"type": "object", "properties": {"ok": {"const": True},
                                                                 "count": {"type": "integer"}}}),
    }}
    paths[f"{base}/-/schema.json"] = {"get": {
        "tags": [tag], "operationId": names(database, table.name, "schema"),
        "summary": f"The CREATE statement of {table.name} (1.0a41)",
        "responses": responses({"type": "object", "properties": {
            "ok": {"const": True}, "database": {"type": "string"}, "table": {"type": "string"},
            "schema": {"type": ["string", "null"]}}}),
    }}
    pk_param = {
        "name": "pk", "in": "path", "required": True, "schema": {"type": "string"},
        "description": f"The row's {', '.join(map(md, table.row_keys))}: comma-separated, each tilde-encoded",
    }
    if table.row_keys:
        paths[f"{base}/{{pk}}.json"] = {"get": {
            "tags": [tag], "operationId": names(database, table.name, "row"),
            "summary": f"One row of {table.name}",
            "parameters": [pk_param, ref("parameters", "shape"), ref("parameters", "extra_row")],
            "responses": responses(ref("schemas", "RowPage")),
        }}
    if table.is_view or table.is_virtual:
        return  # views and virtual tables are not writable
    can = {a: ds.can(actor, a, database, table.name)
           for a in ("insert-row", "update-row", "delete-row", "drop-table", "alter-table")}
    max_rows = ds.settings.max_insert_rows
    partial = {"type": "object", "properties": schemas[row_name]["properties"],
               "description": "Column values; unknown columns need `\"alter\": true`"}
    keyed = {**partial, "required": list(table.pks)} if table.pks else partial
    write_errors = WRITE_ERRORS
    example_row = {c: example_value(table, c) for c in table.columns[:3]}
    if can["insert-row"]:
        paths[f"{base}/-/insert"] = {"post": {
            "tags": [tag], "operationId": names(database, table.name, "insert"),
            "summary": f"Insert rows into {table.name}",
            "description": f"At most {max_rows} rows a request; all or nothing.",
            "requestBody": body(rows_body(partial, max_rows, insert=True), {"row": example_row}),
            "responses": responses(ref("schemas", "WriteResult"), write_errors, "201", "Inserted"),
        }}
    if can["insert-row"] and can["update-row"]:
        paths[f"{base}/-/upsert"] = {"post": {
            "tags": [tag], "operationId": names(database, table.name, "upsert"),
            "summary": f"Insert or update rows of {table.name} by primary key",
            "description": "Each row updates only the columns it names, or is inserted.",
            "requestBody": body(rows_body(keyed, max_rows, insert=False), {"rows": [example_row]}),
            "responses": responses(ref("schemas", "WriteResult"), write_errors),
        }}
    if table.row_keys:
        pk_path = f"{base}/{{pk}}"
        if can["update-row"]:
            paths[f"{pk_path}/-/update"] = {"post": {
                "tags": [tag], "operationId": names(database, table.name, "update"),
                "summary": f"Update one row of {table.name}", "parameters": [pk_param],
                "requestBody": body({"type": "object", "required": ["update"], "additionalProperties": False,
                                     "properties": {"update": partial, "return": {"type": "boolean"},
                                                    "alter": {"type": "boolean"}}},
                                    {"update": {k: v for k, v in list(example_row.items())[1:]}}),
                "responses": responses(ref("schemas", "WriteResult"), write_errors),
            }}
        if can["delete-row"]:
            paths[f"{pk_path}/-/delete"] = {"post": {
                "tags": [tag], "operationId": names(database, table.name, "delete"),
                "summary": f"Delete one row of {table.name}", "parameters": [pk_param],
                "responses": responses(ref("schemas", "WriteResult"), write_errors),
            }}
    if can["drop-table"]:
        paths[f"{base}/-/drop"] = {"post": {
            "tags": [tag], "operationId": names(database, table.name, "drop"),
            "summary": f"Drop {table.name}",
            "description": 'Without `"confirm": true`, only says how many rows it would drop.',
            "requestBody": body({"type": "object", "additionalProperties": False,
                                 "properties": {"confirm": {"type": "boolean"}}}, {"confirm": True}),
            "responses": responses(ref("schemas", "WriteResult"), write_errors),
        }}
    if ds.can(actor, "set-column-type", database, table.name):
        paths[f"{base}/-/set-column-type"] = {"post": {
            "tags": [tag], "operationId": names(database, table.name, "set-column-type"),
            "summary": f"Give a column of {table.name} a column type (1.0a41; null removes it)",
            "requestBody": body({"type": "object", "required": ["column", "column_type"],
                                 "additionalProperties": False, "properties": {
                                     "column": {"type": "string", "enum": table.columns},
                                     "column_type": {"anyOf": [{"type": "null"}, {
                                         "type": "object", "required": ["type"],
                                         "properties": {"type": {"enum": sorted(column_types.TYPES)},
                                                        "config": {"type": "object"}}}]}}},
                                {"column": table.columns[0] if table.columns else "column",
                                 "column_type": {"type": "url"}}),
            "responses": responses(ref("schemas", "WriteResult"), write_errors),
        }}
    if can["alter-table"]:
        paths[f"{base}/-/alter"] = {"post": {
            "tags": [tag], "operationId": names(database, table.name, "alter"),
            "summary": f"Change {table.name}'s schema",
            "requestBody": body({"type": "object", "required": ["operations"], "additionalProperties": False,
                                 "properties": {"operations": {"type": "array", "minItems": 1, "items": {
                                     "type": "object", "required": ["op"],
                                     "properties": {"op": {"enum": sorted(write_alter.OPERATIONS)},
                                                    "args": {"type": "object"}}}}}},
                                {"operations": [{"op": "add_column",
                                                 "args": {"name": "notes", "type": "text"}}]}),
            "responses": responses(ref("schemas", "WriteResult"), write_errors),
        }}


def query_paths(ctx: Context, db: str, database: str, query: Any, names: Names) -> dict[str, Any]:
    """A named query's URL (a read one runs; a writable one is only described on GET), and
    for a stored query its definition, update and delete as the caller may use them."""
    ds, actor = ctx.ds, ctx.actor
    base = f"/{db}/{tilde_encode(query.name)}"
    params = [{"name": p, "in": "query", "required": False, "schema": {"type": "string"}}
              for p in query.parameters if not p.startswith("_")]
    out: dict[str, Any] = {f"{base}.json": {"get": {
        "tags": [database], "operationId": names(database, query.name, "query"),
        "summary": (query.title or f"Run the query {query.name}")
        + (" (writable: only described here; run it with execute-write)" if query.is_write else ""),
        "description": md(query.description or "") + "\n\n" + md_code_block(query.sql),
        "parameters": [*params, ref("parameters", "shape"), ref("parameters", "extra_query"),
                       *([] if params else [ref("parameters", "named")])],
        "responses": responses(ref("schemas", "QueryResult")),
    }}}
    if query.source != "user":
        return out  # metadata's queries are read-only
    out[f"{base}/-/definition"] = {"get": {
        "tags": [database], "operationId": names(database, query.name, "definition"),
        "summary": f"The stored query {query.name}", "responses": responses({"type": "object"})}}
    if ds.query_allowed(actor, "update-query", query):
        out[f"{base}/-/update"] = {"post": {
            "tags": [database], "operationId": names(database, query.name, "update-query"),
            "summary": f"Change the stored query {query.name}",
            "requestBody": body({"type": "object", "required": ["update"], "properties": {
                "update": ref("schemas", "StoredQuery"), "return": {"type": "boolean"}}},
                {"update": {"title": "A better title"}, "return": True}),
            "responses": responses({"type": "object"}, WRITE_ERRORS)}}
    if ds.query_allowed(actor, "delete-query", query):
        out[f"{base}/-/delete"] = {"post": {
            "tags": [database], "operationId": names(database, query.name, "delete-query"),
            "summary": f"Delete the stored query {query.name}",
            "responses": responses({"type": "object"}, WRITE_ERRORS)}}
    return out


def queries_listing(database: str | None, names: Names, summary: str) -> dict[str, Any]:
    return {
        "tags": [database or "instance"], "operationId": names(database or "instance", "queries"),
        "summary": summary + " (1.0a41)",
        "parameters": [ref("parameters", "size"), ref("parameters", "next"),
                       _param("q", "Search names, titles, descriptions and SQL"),
                       _param("is_write", "Only writable (1) or read (0) queries", BIT),
                       _param("is_private", "Only private (1) or shared (0) queries", BIT),
                       _param("source", "Stored through the API or from metadata",
                              {"type": "string", "enum": ["user", "config"]}),
                       _param("owner_id", "Stored by this actor")],
        "responses": responses({"type": "object"}),
    }


def execute_write_operation(database: str, names: Names) -> dict[str, Any]:
    return {
        "tags": [database], "operationId": names(database, "execute-write"),
        "summary": f"Run one write statement on {database} (1.0a41)",
        "description": "Analysed by SQLite before it runs: every table it reads or writes (through "
                       "triggers, views and foreign keys too) needs its own action; refused "
                       "statements run nothing.",
        "requestBody": body({"type": "object", "required": ["sql"], "additionalProperties": False,
                             "properties": {"sql": {"type": "string"},
                                            "params": {"type": "object"}}},
                            {"sql": "update t set v = :v where id = :id", "params": {"v": "x", "id": 1}}),
        "responses": responses({"type": "object", "properties": {
            "ok": {"const": True}, "message": {"type": "string"}, "rowcount": {"type": "integer"},
            "rows": {"type": "array"}, "truncated": {"type": "boolean"}, "analysis": {"type": "array"}}},
            WRITE_ERRORS),
    }


def store_query_operation(database: str, names: Names) -> dict[str, Any]:
    return {
        "tags": [database], "operationId": names(database, "store-query"),
        "summary": f"Store a named query in {database} (1.0a41; private by default)",
        "requestBody": body({"type": "object", "required": ["query"],
                             "properties": {"query": ref("schemas", "StoredQuery")}},
                            {"query": {"name": "tallest", "sql": "select 1", "title": "Tallest"}}),
        "responses": responses({"type": "object"}, WRITE_ERRORS, "201", "Stored"),
    }


def rows_body(row: dict[str, Any], max_rows: int, *, insert: bool) -> dict[str, Any]:
    properties: dict[str, Any] = {
        "row": row, "rows": {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows},
        "return": {"type": "boolean"}, "alter": {"type": "boolean"},
    }
    if insert:
        properties.update(ignore={"type": "boolean"}, replace={"type": "boolean"})
    return {"type": "object", "additionalProperties": False, "properties": properties,
            "oneOf": [{"required": ["row"]}, {"required": ["rows"]}]}


def example_value(table: Table, column: str) -> Any:
    affinity = table.affinity(column)
    if affinity == values.INTEGER:
        return 1
    if affinity in (values.REAL, values.NUMERIC):
        return 1.5
    return "text"


def instance_paths(ctx: Context, names: Names) -> dict[str, Any]:
    """The instance's own endpoints: `/-/actor.json` and this document for everyone, the rest
    for callers who may view the instance."""

    def simple(summary: str, schema: dict[str, Any], op: str) -> dict[str, Any]:
        return {"get": {"tags": ["instance"], "operationId": names("instance", op), "summary": summary,
                        "responses": responses(schema)}}

    obj = {"type": "object"}
    everyone = {
        "/-/actor.json": simple("Who you are", {"type": "object", "properties": {
            "actor": {"type": ["object", "null"]}}}, "actor"),
        "/-/openapi.json": simple("This document: the API as you may use it", obj, "openapi"),
    }
    if not ctx.ds.can(ctx.actor, "view-instance"):
        return everyone
    return {
        **everyone,
        "/.json": simple("Every database you may see, with a summary of its tables", obj, "databases"),
        "/-/databases.json": simple("The databases you may see", {"type": "array", "items": obj}, "list"),
        "/-/versions.json": simple("Versions of Python, SQLite and lambdasette", obj, "versions"),
        "/-/settings.json": simple("The instance's settings", obj, "settings"),
        "/-/metadata.json": simple("The instance's metadata", obj, "metadata"),
        "/-/plugins.json": simple("Plugins (none)", {"type": "array"}, "plugins"),
        "/-/schema.json": simple("The CREATE statements of every database you may see (1.0a41; "
                                 "also .md)", obj, "schema"),
        **({"/-/actions.json": simple("Every action, with abbreviation and description (1.0a41)", obj,
                                      "actions")} if ctx.ds.can(ctx.actor, "permissions-debug") else {}),
    }


def token_paths(names: Names) -> dict[str, Any]:
    token_id = {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}}
    shown = {"type": "object", "properties": {"ok": {"const": True}, "token": ref("schemas", "Token")}}
    return {
        "/-/api/tokens": {
            "get": {"tags": ["tokens"], "operationId": names("tokens", "list"),
                    "summary": "The tokens you may manage",
                    "parameters": [{"name": "actor", "in": "query", "schema": {"type": "string"},
                                    "description": "root only: one actor's tokens"}],
                    "responses": responses({"type": "object", "properties": {
                        "ok": {"const": True},
                        "tokens": {"type": "array", "items": ref("schemas", "Token")}}})},
            "post": {"tags": ["tokens"], "operationId": names("tokens", "create"),
                     "summary": "Create a token (minted from yours: never more than it, never longer)",
                     "requestBody": body(ref("schemas", "TokenCreate"),
                                         {"description": "read trees", "expires_after": 3600,
                                          "restrictions": {"r": {"demo": {"trees": ["vt"]}}}}),
                     "responses": responses({"allOf": [ref("schemas", "Token"), {
                         "type": "object",
                         "properties": {"token": {"type": "string", "description": "The secret: shown once"}},
                     }]}, WRITE_ERRORS, "201", "Created")},
        },
        "/-/api/tokens/{token_id}": {"get": {
            "tags": ["tokens"], "operationId": names("tokens", "show"), "summary": "One token",
            "parameters": [token_id], "responses": responses(shown)}},
        "/-/api/tokens/{token_id}/-/revoke": {"post": {
            "tags": ["tokens"], "operationId": names("tokens", "revoke"),
            "summary": "Revoke a token, and every token minted from it",
            "parameters": [token_id], "responses": responses(shown, WRITE_ERRORS)}},
    }


NAMES = {"type": "array", "items": {"type": "string"}}
BIT = {"type": "string", "enum": ["0", "1"]}


def _param(name: str, description: str, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema or {"type": "string"},
            "description": description, **extra}


TABLE_PARAMETERS = ("size", "next", "sort", "sort_desc", "shape", "col", "nocol", "facet", "facet_array",
                    "facet_date", "facet_size", "nocount", "labels", "json", "where", "nl", "timelimit")
PARAMETERS: dict[str, Any] = {
    "size": _param("_size", "Rows a page (`max`: max_returned_rows)",
                   {"type": "string", "pattern": "^([1-9][0-9]*|max)$"}),
    "next": _param("_next", "The `next` token of the previous page"),
    "sort": _param("_sort", "Sort by this column, ascending"),
    "sort_desc": _param("_sort_desc", "Sort by this column, descending"),
    "shape": _param("_shape", "The shape of the answer",
                    {"type": "string", "enum": ["arrays", "objects", "array", "arrayfirst", "object"]}),
    "col": _param("_col", "Only these columns (repeat it)", NAMES,
                  style="form", explode=True),
    "nocol": _param("_nocol", "Leave out these columns (repeat it)", NAMES,
                    style="form", explode=True),
    "facet": _param("_facet", "Count the rows for each value of these columns",
                    NAMES, style="form", explode=True),
    "facet_array": _param("_facet_array", "Facet a column of JSON arrays by element",
                          NAMES, style="form", explode=True),
    "facet_date": _param("_facet_date", "Facet a column by date",
                         NAMES, style="form", explode=True),
    "facet_size": _param("_facet_size", "Values a facet shows (`max`)"),
    "nocount": _param("_nocount", "Skip counting the rows", {"type": "string", "enum": ["1"]}),
    "labels": _param("_labels", "Expand foreign keys to their labels",
                     {"type": "string", "enum": ["on", "off"]}),
    "json": _param("_json", "Parse these columns' text as JSON", NAMES,
                   style="form", explode=True),
    "where": _param("_where", "An SQL WHERE clause (needs execute-sql)",
                    NAMES, style="form", explode=True),
    "nl": _param("_nl", "With `_shape=array`: newline-delimited JSON", {"type": "string", "enum": ["on"]}),
    "timelimit": _param("_timelimit", "Lower the time limit (ms)", {"type": "integer", "minimum": 1}),
    "search": _param("_search", "Full-text search"),
    **{f"extra_{scope}": _param(
        "_extra", "Blocks of Datasette 1.0a41's format to add (asking for any answers in 1.0a41's format)",
        {"type": "array",
         "items": {"type": "string", "enum": [e.name for e in extras.EXTRAS if scope in e.scopes]}},
        style="form", explode=True) for scope in (extras.TABLE, extras.ROW, extras.QUERY)},
    "stream": _param("_stream", "Every matching row, page by page", {"type": "string", "enum": ["on"]}),
    "dl": _param("_dl", "Download as a file", {"type": "string", "enum": ["1"]}),
    "named": {"name": "params", "in": "query", "required": False, "style": "form", "explode": True,
              "schema": {"type": "object", "additionalProperties": {"type": "string"}},
              "example": {},  # Swagger UI would otherwise send made-up keys
              "description": "Values for the query's `:named` parameters, one query argument each"},
    "filters": {"name": "filters", "in": "query", "required": False, "style": "form", "explode": True,
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}, "example": {},
                "description": "Filters, one query argument each: `column__operator=value`, where the "
                               f"operator is one of {', '.join(FILTER_OPERATORS)} "
                               "(e.g. `height_m__gt=30`, `id__in=[1,2]`)"},
}

_error = {"description": "Error", "content": {JSON: {"schema": {"$ref": "#/components/schemas/Error"}}}}
RESPONSES: dict[str, Any] = {
    "BadRequest": {**_error, "description": "Bad request: the message says what to change"},
    "Unauthorized": {**_error, "description": (
        "No token (on a private instance), or a bad, expired or revoked one "
        '(`WWW-Authenticate: Bearer error="invalid_token"`)')},
    "Forbidden": {**_error, "description": "Permission denied"},
    "NotFound": {**_error, "description": "Not found"},
    "PayloadTooLarge": {**_error, "description": "The body (or the answer) is too large"},
    "Unavailable": {**_error, "description": "The replica cannot be reached or a write could not be made "
                                             "durable in time: retry (`Retry-After`)"},
}

BASE_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["ok", "error", "errors", "status"],
        "properties": {"ok": {"const": False}, "error": {"type": "string"},
                       "errors": NAMES,
                       "status": {"type": "integer"}, "title": {"type": ["string", "null"]}},
    },
    "Blob": {"type": "object", "required": ["$base64", "encoded"],
             "properties": {"$base64": {"const": True},
                            "encoded": {"type": "string", "contentEncoding": "base64"}}},
    "TablePage": {
        "type": "object",
        "properties": {
            "ok": {"const": True}, "database": {"type": "string"}, "table": {"type": "string"},
            "is_view": {"type": "boolean"}, "human_description_en": {"type": "string"},
            "rows": {"type": "array"}, "truncated": {"type": "boolean"},
            "filtered_table_rows_count": {"type": ["integer", "null"]},
            "columns": NAMES,
            "primary_keys": NAMES,
            "next": {"type": ["string", "null"]}, "next_url": {"type": ["string", "null"]},
            "facet_results": {"type": "object"}, "suggested_facets": {"type": "array"},
            "expanded_columns": {"type": "array"}, "expandable_columns": {"type": "array"},
            "query": {"type": "object"}, "query_ms": {"type": "number"},
        },
    },
    "RowPage": {"type": "object", "properties": {
        "ok": {"const": True}, "database": {"type": "string"}, "table": {"type": "string"},
        "rows": {"type": "array"}, "columns": NAMES,
        "primary_keys": NAMES,
        "primary_key_values": {"type": "array"}}},
    "DatabasePage": {"type": "object", "properties": {
        "ok": {"const": True}, "database": {"type": "string"}, "tables": {"type": "array"},
        "views": {"type": "array"}, "queries": {"type": "array"}, "allow_execute_sql": {"type": "boolean"}}},
    "QueryResult": {"type": "object", "properties": {
        "ok": {"const": True}, "database": {"type": "string"}, "rows": {"type": "array"},
        "columns": NAMES, "truncated": {"type": "boolean"},
        "query": {"type": "object",
                  "properties": {"sql": {"type": "string"}, "params": {"type": "object"}}}}},
    "WriteResult": {"type": "object", "properties": {
        "ok": {"const": True}, "rows": {"type": "array", "items": {"type": "object"}},
        "row": {"type": "object"}, "row_count": {"type": "integer"}, "table": {"type": "string"},
        "schema": {"type": "string"}}},
    "Restrictions": {
        "type": "object", "additionalProperties": False,
        "description": "Datasette's `_r`: actions everywhere (`a`), per database (`d`), per table (`r`); "
                       "full names or abbreviations",
        "properties": {
            "a": NAMES,
            "d": {"type": "object", "additionalProperties": NAMES},
            "r": {"type": "object", "additionalProperties": {
                "type": "object", "additionalProperties": NAMES}},
        },
        "examples": [{"a": ["view-instance"], "d": {"demo": ["view-database"]},
                      "r": {"demo": {"trees": ["view-table", "insert-row"]}}}],
    },
    "SchemaPage": {"type": "object", "properties": {
        "ok": {"const": True}, "database": {"type": "string"}, "schema": {"type": "string"}}},
    "StoredQuery": {"type": "object", "properties": {
        "name": {"type": "string"}, "sql": {"type": "string"}, "title": {"type": ["string", "null"]},
        "description": {"type": ["string", "null"]}, "is_private": {"type": "boolean"},
        "parameters": NAMES, "hide_sql": {"type": "boolean"}}},
    "TokenCreate": {"type": "object", "additionalProperties": False, "properties": {
        "restrictions": {"$ref": "#/components/schemas/Restrictions"},
        "expires_after": {"type": "integer", "minimum": 1, "description": "Seconds"},
        "description": {"type": "string", "maxLength": 500}}},
    "Token": {"type": "object", "properties": {
        "id": {"type": "string"}, "actor": {"type": "string"}, "description": {"type": ["string", "null"]},
        "restrictions": {"$ref": "#/components/schemas/Restrictions"},
        "created": {"type": "integer"}, "expires": {"type": ["integer", "null"]},
        "last_used": {"type": ["integer", "null"]}, "revoked": {"type": "boolean"},
        "revoked_at": {"type": ["integer", "null"]}, "ended": {"type": ["integer", "null"]},
        "parent": {"type": ["string", "null"]},
        "status": {"type": "string", "enum": ["active", "expired", "revoked"]}}},
}

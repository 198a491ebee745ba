"""The application: every resource lambdasette serves, as one route table, handed to the web
layer. Read this file to see the whole API surface at a glance.

`kind` is what the path names (see `web.routing.resolve`); `action` is the `/-/...` tail.
Reads are GET (which also answers HEAD); writes are POST and reach the write function.
"""

from __future__ import annotations

from starlette.applications import Starlette

from lambdasette.endpoints import (
    blob,
    database,
    execute,
    index,
    queries,
    row,
    schema,
    special,
    table,
    tokens,
    write,
)
from lambdasette.instance import Lambdasette
from lambdasette.web import app as web
from lambdasette.web.routing import Route

GET = ("GET",)
POST = ("POST",)
JSON_MD = ("json", "md")  # the schema pages' formats

ROUTES = [
    # The instance
    Route("index", None, GET, index.index),
    Route("special", "versions", GET, special.versions),
    Route("special", "settings", GET, special.settings),
    Route("special", "databases", GET, special.databases),
    Route("special", "actor", GET, special.actor),
    Route("special", "config", GET, special.config),
    Route("special", "plugins", GET, special.plugins),
    Route("special", "metadata", GET, special.metadata),
    Route("special", "schema", GET, schema.instance_schema, formats=JSON_MD, api="1.0"),
    Route("special", "actions", GET, special.actions, api="1.0"),
    Route("special", "queries", GET, queries.list_all_queries, api="1.0"),
    # The token API
    Route("special", "api/tokens", GET, tokens.list_tokens),
    Route("special", "api/tokens", POST, tokens.create),
    Route("special", "api/tokens/create", POST, tokens.create),
    Route("special", "api/tokens/{token_id}", GET, tokens.show),
    Route("special", "api/tokens/{token_id}/-/revoke", POST, tokens.revoke),
    # A database: its page (and `?sql=`), its query page, creating a table
    Route("database", None, GET, database.database),
    Route("database", None, GET, blob.query, formats=("blob",)),
    Route("database-action", "query", GET, database.query, api="1.0"),
    Route("database-action", "query", GET, blob.query, formats=("blob",)),
    Route("database-action", "create", POST, write.create),
    Route("database-action", "execute-write", POST, execute.execute_write, api="1.0"),
    Route("database-action", "execute-write/analyze", GET, execute.analyze, api="1.0"),
    # Stored queries: listed and stored on the database, managed at /<db>/<name>/-/...
    Route("database-action", "queries", GET, queries.list_queries, api="1.0"),
    Route("database-action", "queries/store", POST, queries.store, api="1.0"),
    Route("database-action", "queries/analyze", GET, queries.analyze_store, api="1.0"),
    Route("database-action", "schema", GET, schema.database_schema, formats=JSON_MD, api="1.0"),
    # A table or view: its page, and the write API on it
    Route("table", None, GET, table.table),
    Route("table-action", "schema", GET, schema.table_schema, formats=JSON_MD, api="1.0"),
    Route("table-action", "count", POST, table.count, api="1.0"),
    Route("table-action", "set-column-type", POST, write.set_column_type, api="1.0"),
    Route("table-action", "insert", POST, write.insert),
    Route("table-action", "upsert", POST, write.upsert),
    Route("table-action", "drop", POST, write.drop),
    Route("table-action", "alter", POST, write.alter),
    Route("table-action", "definition", GET, queries.definition, api="1.0"),
    Route("table-action", "update", POST, queries.update, api="1.0"),
    Route("table-action", "delete", POST, queries.delete, api="1.0"),
    # A row
    Route("row", None, GET, row.row),
    Route("row", None, GET, blob.row, formats=("blob",)),
    Route("row-action", "update", POST, write.update),
    Route("row-action", "delete", POST, write.delete),
]


def create_app(ds: Lambdasette) -> Starlette:
    """The ASGI app for the instance `ds`, serving `ROUTES`."""
    return web.create_app(ds, ROUTES)

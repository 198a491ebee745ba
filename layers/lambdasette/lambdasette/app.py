"""The application: every resource lambdasette serves, as one route table, handed to the web
layer. Read this file to see the whole API surface at a glance.

`kind` is what the path names (see `web.routing.resolve`); `action` is the `/-/...` tail.
Reads are GET (which also answers HEAD); writes are POST and reach the write function.

Browsers: a route with `formats=PAGE` answers an extensionless GET that asks for HTML, one
with `formats=FORM` a form post (without a bearer token); where a path has neither, the
JSON route answers as for everyone else. `open` routes need no credentials on a private
instance (signing in, and the files its page loads).
"""

from __future__ import annotations

from starlette.applications import Starlette

from lambdasette.endpoints import (
    blob,
    database,
    execute,
    index,
    openapi,
    pages,
    queries,
    row,
    schema,
    signin,
    special,
    static,
    table,
    tokens,
    tokens_pages,
    write,
)
from lambdasette.instance import Lambdasette
from lambdasette.web import app as web
from lambdasette.web.routing import FORM, PAGE, Route

GET = ("GET",)
POST = ("POST",)
JSON_MD = ("json", "md")  # the schema pages' formats
HTML = (PAGE,)
FORMS = (FORM,)

ROUTES = [
    # Signing in and out, and the files pages load
    Route("special", "login", GET, signin.login_form, open=True),
    Route("special", "login", POST, signin.login, formats=FORMS, open=True),
    Route("special", "logout", POST, signin.logout, formats=FORMS),
    Route("special", "static/{name}", GET, static.asset, open=True, shared=True),
    Route("special", "static/{folder}/{name}", GET, static.asset, open=True, shared=True),
    # The instance
    Route("index", None, GET, pages.index, formats=HTML),
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
    # The API described (OpenAPI 3.1, for this caller) and explored (Swagger UI)
    Route("special", "openapi", GET, openapi.document),
    Route("special", "api", GET, openapi.explorer),
    # The token API, and its pages: the list, the create form (posted to /-/api/tokens), one token
    Route("special", "api/tokens", GET, tokens_pages.list_page, formats=HTML),
    Route("special", "api/tokens", POST, tokens_pages.create, formats=FORMS),
    Route("special", "api/tokens/create", GET, tokens_pages.create_form, formats=HTML),
    Route("special", "api/tokens/{token_id}", GET, tokens_pages.token_page, formats=HTML),
    Route("special", "api/tokens/{token_id}/-/revoke", POST, tokens_pages.revoke, formats=FORMS),
    Route("special", "api/tokens", GET, tokens.list_tokens),
    Route("special", "api/tokens", POST, tokens.create),
    Route("special", "api/tokens/create", POST, tokens.create),
    Route("special", "api/tokens/{token_id}", GET, tokens.show),
    Route("special", "api/tokens/{token_id}/-/revoke", POST, tokens.revoke),
    # A database: its page (and `?sql=`), its query page, creating a table
    Route("database", None, GET, pages.database, formats=HTML),
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
    Route("table", None, GET, pages.table, formats=HTML),
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
    Route("row", None, GET, pages.row, formats=HTML),
    Route("row", None, GET, row.row),
    Route("row", None, GET, blob.row, formats=("blob",)),
    Route("row-action", "update", POST, write.update),
    Route("row-action", "delete", POST, write.delete),
]


def create_app(ds: Lambdasette) -> Starlette:
    """The ASGI app for the instance `ds`, serving `ROUTES`."""
    return web.create_app(ds, ROUTES)

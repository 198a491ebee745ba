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

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

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
from lambdasette.web.routing import FORM, PAGE, Route

if TYPE_CHECKING:
    from starlette.responses import Response

    from lambdasette.web.context import Context

GET = ("GET",)
POST = ("POST",)
JSON_MD = ("json", "md")  # the schema pages' formats
HTML = (PAGE,)
FORMS = (FORM,)



def ui(module: str, name: str) -> Callable[[Context], Response]:
    """The pages' handler `name` of `lambdasette.endpoints.<module>`, imported on its first
    call: the modules behind the pages (templates aside, ~10-20 ms of imports on a busy
    two-core machine) stay out of the JSON API's cold start."""

    def handler(ctx: Context) -> Response:
        return getattr(importlib.import_module(f"lambdasette.endpoints.{module}"), name)(ctx)

    handler.__qualname__ = f"{module}.{name}"
    return handler


ROUTES = [
    # Signing in and out, and the files pages load
    Route("special", "login", GET, ui("signin", "login_form"), open=True),
    Route("special", "login", POST, ui("signin", "login"), formats=FORMS, open=True),
    Route("special", "logout", POST, ui("signin", "logout"), formats=FORMS),
    Route("special", "static/{name}", GET, ui("static", "asset"), open=True, shared=True),
    Route("special", "static/{folder}/{name}", GET, ui("static", "asset"), open=True, shared=True),
    # The instance
    Route("index", None, GET, ui("pages", "index"), formats=HTML),
    Route("index", None, GET, index.index),
    Route("special", "versions", GET, special.versions),
    Route("special", "settings", GET, special.settings),
    Route("special", "databases", GET, special.databases),
    Route("special", "restore-drill", GET, special.restore_drill),
    Route("special", "actor", GET, special.actor),
    Route("special", "config", GET, special.config),
    Route("special", "plugins", GET, special.plugins),
    Route("special", "metadata", GET, special.metadata),
    Route("special", "schema", GET, schema.instance_schema, formats=JSON_MD, api="1.0"),
    Route("special", "actions", GET, special.actions, api="1.0"),
    Route("special", "queries", GET, queries.list_all_queries, api="1.0"),
    # The API described (OpenAPI 3.1, for this caller) and explored (Swagger UI)
    Route("special", "openapi", GET, ui("openapi", "document")),
    Route("special", "api", GET, ui("openapi", "explorer")),
    # The token API, and its pages: the list, the create form (posted to /-/api/tokens), one token
    Route("special", "api/tokens", GET, ui("tokens_pages", "list_page"), formats=HTML),
    Route("special", "api/tokens", POST, ui("tokens_pages", "create"), formats=FORMS),
    Route("special", "api/tokens/create", GET, ui("tokens_pages", "create_form"), formats=HTML),
    Route("special", "api/tokens/{token_id}", GET, ui("tokens_pages", "token_page"), formats=HTML),
    Route("special", "api/tokens/{token_id}/-/revoke", POST, ui("tokens_pages", "revoke"), formats=FORMS),
    Route("special", "api/tokens", GET, tokens.list_tokens),
    Route("special", "api/tokens", POST, tokens.create),
    Route("special", "api/tokens/create", POST, tokens.create),
    Route("special", "api/tokens/{token_id}", GET, tokens.show),
    Route("special", "api/tokens/{token_id}/-/revoke", POST, tokens.revoke),
    # A database: its page (and `?sql=`), its query page, creating a table
    Route("database", None, GET, ui("pages", "database"), formats=HTML),
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
    Route("table", None, GET, ui("pages", "table"), formats=HTML),
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
    Route("row", None, GET, ui("pages", "row"), formats=HTML),
    Route("row", None, GET, row.row),
    Route("row", None, GET, blob.row, formats=("blob",)),
    Route("row-action", "update", POST, write.update),
    Route("row-action", "delete", POST, write.delete),
]


def create_app(ds: Lambdasette) -> Starlette:
    """The ASGI app for the instance `ds`, serving `ROUTES`."""
    return web.create_app(ds, ROUTES)

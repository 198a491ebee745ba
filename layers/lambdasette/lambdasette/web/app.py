"""The Starlette application: one route that resolves paths to endpoints."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lambdasette.args import Args
from lambdasette.endpoints import database, index, row, special, table, tokens, write
from lambdasette.errors import ApiError
from lambdasette.instance import Lambdasette
from lambdasette.storage.base import DatabaseNotFound
from lambdasette.web.context import Context
from lambdasette.web.responses import CORS_HEADERS, READ_CORS_HEADERS, error_response, redirect
from lambdasette.web.routing import resolve

log = logging.getLogger("lambdasette")

# Sent with every durable write; sent back with a read, it makes the read wait for that write.
TXID_HEADER = "X-Lambdasette-Txid"

Handler = Callable[[Context], Response]

READ_HANDLERS: dict[str, Handler] = {
    "index": index.index,
    "special": special.special,
    "database": database.database,
    "table": table.table,
    "row": row.row,
}


def _database_action(ctx: Context) -> Response:
    if ctx.target.action == "query":
        return database.query(ctx)
    raise ApiError(404, "Not found")


READ_HANDLERS["database-action"] = _database_action


WRITE_ACTIONS = frozenset(
    {"create", "insert", "upsert", "update", "delete", "drop", "alter", "execute-write"}
)


def is_write_path(path: str) -> bool:
    segments = path.strip("/").split("/")
    return len(segments) >= 3 and segments[-2] == "-" and segments[-1] in WRITE_ACTIONS


def raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    # Adapters without raw_path (Mangum) give a decoded path: re-encode it so '%'
    # in a name is not read as an escape.
    return urllib.parse.quote(request.scope["path"], safe="/~+,")


def create_app(ds: Lambdasette) -> Starlette:
    async def dispatch(request: Request) -> Response:
        path = raw_path(request)
        request.scope["lambdasette.path"] = path
        try:
            response = await handle(ds, request, path)
        except ApiError as exc:
            response = error_response(exc)
        except Exception:  # a bug, never the client's fault: log it, answer JSON
            log.exception("Unhandled error for %s %s", request.method, path)
            response = error_response(ApiError(500, "Internal server error"))
        response.headers["Vary"] = "Cookie, Authorization"
        if request.method == "POST" or (
            "authorization" in request.headers and "cache-control" in response.headers
        ):
            # What a token may see is nobody else's business: keep it out of shared caches.
            response.headers["Cache-Control"] = "private, no-store"
        if ds.options.cors:
            write = request.method == "POST" or is_write_path(path)
            response.headers.update(CORS_HEADERS if write else READ_CORS_HEADERS)
        return response

    app = Starlette(
        routes=[Route("/{path:path}", dispatch,
                      methods=["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"])]
    )
    app.state.lambdasette = ds
    return app


async def handle(ds: Lambdasette, request: Request, path: str) -> Response:
    if len(path) > 1 and path.endswith("/"):
        query = request.url.query
        return redirect(path.rstrip("/") + (f"?{query}" if query else ""))
    method = request.method
    if method == "OPTIONS":
        if ds.options.cors:
            return Response(b"ok", media_type="text/plain; charset=utf-8")
        raise ApiError(405, "Method not allowed")
    actor = ds.actor_for(request.headers.get("authorization"))
    if actor is None and not ds.options.public:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    reading = method in ("GET", "HEAD")
    if reading and ds.options.role == "write":
        raise ApiError(405, "This function serves writes only; reads go to the read function")
    if not reading and ds.options.role == "read":
        raise ApiError(405, "This function serves reads only; writes go to the write function")
    if tokens.handles(path):
        return await tokens.dispatch(ds, request, path, actor)
    target = resolve(path)
    args = Args.parse(request.url.query)
    ctx = Context(ds, request, target, args, actor=actor)
    if reading:
        if is_write_path(path):
            raise ApiError(405, "Method not allowed")
        handler = READ_HANDLERS.get(target.kind)
        if handler is None:
            raise ApiError(404, "Not found")
        if TXID_HEADER in request.headers:
            if ds.options.threaded:
                await run_in_threadpool(wait_for_txid, ds, request, target.database)
            else:
                wait_for_txid(ds, request, target.database)
        if ds.options.threaded:
            return await run_in_threadpool(handler, ctx)
        return handler(ctx)
    writer = write.HANDLERS.get((target.kind, target.action or "")) if method == "POST" else None
    if writer is None:
        raise ApiError(405, "Method not allowed")
    response = await writer(ctx)
    if ctx.txid is not None:
        response.headers[TXID_HEADER] = str(ctx.txid)
    return response


def wait_for_txid(ds: Lambdasette, request: Request, database: str | None) -> None:
    """Read-your-writes: `X-Lambdasette-Txid: N` (as a write answered) makes a read wait,
    bounded, until this copy of the database has that transaction."""
    raw = request.headers.get(TXID_HEADER)
    if raw is None or not database:
        return
    try:
        txid = int(raw)
    except ValueError:
        raise ApiError(400, f"{TXID_HEADER} must be a transaction id (an integer)") from None
    try:
        caught_up = ds.storage.wait_for(database, txid, ds.settings.txid_wait_ms / 1000)
    except DatabaseNotFound:
        raise ApiError(404, "Database not found", extra={"database": database}) from None
    if not caught_up:
        raise ApiError(503, f"This replica has not caught up with transaction {txid} yet; retry",
                       headers={"Retry-After": "1"})


"""The Starlette application: one way through every request.

    request → path (`resolve`) → actor (the token) → route (`Router`) → body → handler → response

Every handler has the signature `(Context) -> Response` and runs in a worker thread locally
(`lambdasette serve` stays concurrent) or directly in Lambda (one request per container).
Errors map to HTTP here and only here (`as_api_error`), and the headers every response
carries are added here.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute

from lambdasette.args import Args
from lambdasette.errors import (
    ApiError,
    DatabaseNotFound,
    InvalidToken,
    LambdasetteError,
    ReplicaUnavailable,
)
from lambdasette.instance import Lambdasette
from lambdasette.web.body import read_bytes
from lambdasette.web.context import Context
from lambdasette.web.responses import (
    CORS_HEADERS,
    READ_CORS_HEADERS,
    TXID_HEADER,
    error_response,
    redirect,
)
from lambdasette.web.routing import Route, Router, resolve

log = logging.getLogger("lambdasette")

T = TypeVar("T")


def as_api_error(exc: LambdasetteError, *, writing: bool = False) -> ApiError:
    """The one mapping from a domain error to the answer a client gets (see `errors`);
    `writing`: the request was a write."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DatabaseNotFound):
        return ApiError(404, "Database not found", extra={"database": exc.name})
    if isinstance(exc, ReplicaUnavailable):
        # Nothing was acknowledged: the client may retry. (A commit whose sync timed out is
        # still replicated once the replica is back, so a retried insert can land twice.)
        what = "The write could not be made durable" if writing else "The replica is unavailable"
        return ApiError(503, f"{what}: {exc}", headers={"Retry-After": "2"})
    if isinstance(exc, InvalidToken):
        return ApiError(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    return ApiError(500, "Internal server error")


def raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    # Adapters without raw_path (Mangum) give a decoded path: re-encode it so '%'
    # in a name is not read as an escape.
    return urllib.parse.quote(request.scope["path"], safe="/~+,")


def is_write_path(path: str) -> bool:
    """A write API path (`.../-/insert` and the like), whatever the method: such paths send
    the write API's CORS headers."""
    segments = path.strip("/").split("/")
    return len(segments) >= 3 and segments[-2] == "-" and segments[-1] in WRITE_ACTIONS


WRITE_ACTIONS = frozenset(
    {"create", "insert", "upsert", "update", "delete", "drop", "alter", "execute-write"}
)


def create_app(ds: Lambdasette, routes: list[Route]) -> Starlette:
    """The ASGI app serving `routes` for the instance `ds`."""
    router = Router(routes)

    async def dispatch(request: Request) -> Response:
        path = raw_path(request)
        try:
            response = await handle(ds, router, request, path)
        except LambdasetteError as exc:
            response = error_response(as_api_error(exc, writing=request.method == "POST"))
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
        routes=[StarletteRoute("/{path:path}", dispatch,
                               methods=["GET", "HEAD", "POST", "OPTIONS", "PUT", "PATCH", "DELETE"])]
    )
    app.state.lambdasette = ds
    return app


async def handle(ds: Lambdasette, router: Router, request: Request, path: str) -> Response:
    if len(path) > 1 and path.endswith("/"):
        query = request.url.query
        return redirect(path.rstrip("/") + (f"?{query}" if query else ""))
    method = request.method
    if method == "OPTIONS":
        # As 0.65 answers it, with or without --cors (which only adds the CORS headers).
        return Response(b"ok", media_type="text/plain; charset=utf-8")
    actor = ds.actor_for(request.headers.get("authorization"))
    if actor is None and not ds.options.public:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    reading = method in ("GET", "HEAD")
    if reading and ds.options.role == "write":
        raise ApiError(405, "This function serves writes only; reads go to the read function")
    if not reading and ds.options.role == "read":
        raise ApiError(405, "This function serves reads only; writes go to the write function")
    target = resolve(path)
    match = router.match(target, method)
    if match.route is None:
        if match.allowed:
            raise ApiError(405, "Method not allowed", headers={"Allow": ", ".join(match.allowed)})
        raise ApiError(404, "Not found")
    body = b"" if reading else await read_bytes(request, ds.settings.max_post_body_bytes)
    ctx = Context(ds, request, target, Args.parse(request.url.query), path, actor=actor, body=body,
                  path_params=match.params)
    if reading and TXID_HEADER in request.headers:
        await call(ds, wait_for_txid, ds, request, target.database)
    return await call(ds, match.route.handler, ctx)


async def call(ds: Lambdasette, function: Callable[..., T], *args: Any) -> T:
    """Run blocking work: in a worker thread locally, directly in Lambda."""
    if ds.options.threaded:
        return await run_in_threadpool(function, *args)
    return function(*args)


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
    if not ds.storage.wait_for(database, txid, ds.settings.txid_wait_ms / 1000):
        raise ApiError(503, f"This replica has not caught up with transaction {txid} yet; retry",
                       headers={"Retry-After": "1"})


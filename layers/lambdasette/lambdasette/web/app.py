"""The Starlette application: one way through every request.

    request → path (`resolve`) → credential (its shape) → route (`Router`) → body
            → token or session (verified, chain included) → CSRF → handler → response

The token is verified when the request is acted on - after its body has arrived, however
slowly it came - and writes check it once more right before their commit (`Context.recheck`).
Before the body only its presence and shape are checked, which needs no store: a private
instance turns away a request without one at once.

Every handler has the signature `(Context) -> Response` and runs in a worker thread locally
(`lambdasette serve` stays concurrent) or directly in Lambda (one request per container).
Errors map to HTTP here and only here (`as_api_error`), and the headers every response
carries are added here: `X-Content-Type-Options: nosniff` on all, `Cache-Control: private,
no-store` on all to a request with credentials (or a POST), CORS when enabled, and
`X-Request-Id` on all (also in a 5xx's body as `request_id`). Every request is logged
here, once, as one JSON line when its answer has been sent (`requestlog`); an unexpected
error is logged with its traceback and the request id.

Browsers: an extensionless URL asked for as HTML reaches the path's page route when it has
one (`negotiate`), a form post its form route; everything else is the JSON API, unchanged.
A signed-in browser's session cookie (`web.cookies`) stands for its token when there is no
bearer token: it is resolved where the token would be verified, and a POST it speaks for
must carry the session's CSRF token (`check_csrf`). Pages get the page headers (CSP and
the rest, `web.html`), and errors to a page request are pages (401: the way to sign in).
"""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as StarletteRoute
from starlette.types import Message, Receive, Scope, Send

from lambdasette.args import Args
from lambdasette.auth.sessions import csrf_matches
from lambdasette.auth.tokens import SessionRecord, parse_token
from lambdasette.errors import (
    ApiError,
    DatabaseNotFound,
    DatabaseRestoring,
    ForwardToWriter,
    InsufficientStorage,
    InvalidToken,
    LambdasetteError,
    ReplicaUnavailable,
    UnknownTransaction,
)
from lambdasette.instance import Lambdasette, actor_of
from lambdasette.query import execute
from lambdasette.web import cookies
from lambdasette.web.body import read_bytes
from lambdasette.web.context import Context, choose_api
from lambdasette.web.html import HTML, PAGE_HEADERS, error_page, login_redirect, wants_html
from lambdasette.web.requestlog import REQUEST_ID_HEADER, RequestRecord, request_id
from lambdasette.web.responses import (
    CORS_HEADERS,
    READ_CORS_HEADERS,
    TXID_HEADER,
    error_response,
    redirect,
    with_txid,
)
from lambdasette.web.routing import FORM, PAGE, Match, Route, Router, Target, resolve

log = logging.getLogger("lambdasette")

# On a front's answer (Options.forward_writes) in place of one: the request is the write
# function's to serve (`handlers.lambda_app` replaces it with the writer's answer).
FORWARD_HEADER = "x-lambdasette-forward"
# The placeholder's status: an error, so that a front without its wrapper (nothing written)
# fails loudly instead of looking accepted. Its log line says FORWARDED_STATUS, the front's
# own outcome (handed on); the writer's line, with the same request id, has the answer's.
FORWARD_PLACEHOLDER_STATUS = 500
FORWARDED_STATUS = 202

T = TypeVar("T")


def as_api_error(exc: LambdasetteError, *, writing: bool = False) -> ApiError:
    """The one mapping from a domain error to the answer a client gets (see `errors`);
    `writing`: the request was a write."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DatabaseNotFound):
        return ApiError(404, "Database not found", extra={"database": exc.name})
    if isinstance(exc, DatabaseRestoring):
        # Not an outage: the copy will be ready. (In Lambda the restore advances only while
        # some invocation runs, so an early retry is what moves it on.)
        return ApiError(503, str(exc), title="Restoring",
                        headers={"Retry-After": str(exc.retry_after)}, extra={"database": exc.name})
    if isinstance(exc, InsufficientStorage):
        return ApiError(507, str(exc))
    if isinstance(exc, ReplicaUnavailable):
        # Nothing was acknowledged: the client may retry. (A commit whose sync timed out is
        # still replicated once the replica is back, so a retried insert can land twice.)
        what = "The write could not be made durable" if writing else "The replica is unavailable"
        return ApiError(503, f"{what}: {exc}", headers={"Retry-After": "2"})
    if isinstance(exc, InvalidToken):
        return ApiError(401, str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    if isinstance(exc, UnknownTransaction):
        return ApiError(400, f"{TXID_HEADER}: {exc}")
    return ApiError(500, "Internal server error")


def raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if raw:
        return raw.decode("latin-1").split("?", 1)[0]
    # Adapters without raw_path (Mangum) give a decoded path: re-encode it so '%'
    # in a name is not read as an escape.
    return urllib.parse.quote(request.scope["path"], safe="/~+,")


def create_app(ds: Lambdasette, routes: list[Route]) -> Starlette:
    """The ASGI app serving `routes` for the instance `ds`."""
    router = Router(routes)

    async def dispatch(request: Request, record: RequestRecord) -> Response:
        path = record.path
        # A browser asking for a page gets its errors as pages too (a 401 as the way to sign in).
        page = request.method in ("GET", "HEAD") and wants_html(request.headers.get("accept"))
        page = page and resolve(path).format is None
        try:
            response = await handle(ds, router, request, path, page)
        except ForwardToWriter:
            record.forwarded = True
            response = Response(b"", status_code=FORWARD_PLACEHOLDER_STATUS, headers={FORWARD_HEADER: "1"})
        except LambdasetteError as exc:
            error = as_api_error(exc, writing=request.method == "POST")
            if error.status >= 500:
                log.warning("%s %s: %s", request.method, path, exc, extra=record.context())
            response = answer_error(request, error, path, page, record)
        except Exception:  # a bug, never the client's fault: log it, answer JSON (or a page)
            log.exception("Unhandled error for %s %s", request.method, path, extra=record.context())
            response = answer_error(request, ApiError(500, "Internal server error"), path, page, record)
        headers = response.headers
        headers[REQUEST_ID_HEADER] = record.request_id
        vary = "Cookie, Authorization" + (", Accept" if resolve(path).format is None else "")
        headers["Vary"] = f"{headers['Vary']}, {vary}" if "vary" in headers else vary
        headers["X-Content-Type-Options"] = "nosniff"
        route = getattr(request.state, "route", None)
        credentials = "authorization" in request.headers or cookies.SESSION_COOKIE in request.cookies
        if (request.method == "POST" or credentials) and not (route is not None and route.shared):
            # What a token may see is nobody else's business: keep every answer to it - data,
            # listings, CSV, pages, errors - out of shared caches. (Static files are the same
            # for everyone.)
            headers["Cache-Control"] = "private, no-store"
        if response.media_type == HTML or headers.get("content-type", "").startswith("text/html"):
            for name, value in PAGE_HEADERS.items():
                headers.setdefault(name, value)
        if ds.options.cors:
            # The write API and every 1.0a41 answer send 1.0a41's set of CORS headers.
            write = (request.method == "POST" or takes_post(router, path)
                     or getattr(request.state, "api", None) == "1.0")
            headers.update(with_txid(CORS_HEADERS if write else READ_CORS_HEADERS, request, response))
            if request.method == "OPTIONS":  # the preflight answer depends on what it asked
                headers["Vary"] += ", Access-Control-Request-Headers"
        return response

    first = [True]  # this process has served no request yet: its first one is a cold start

    class Dispatch:
        """Every request, whatever its path or method (TRACE, made-up verbs), reaches
        `dispatch`, so every answer is JSON (or a page, to a browser) with the headers above,
        and is logged."""

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                return
            request = Request(scope, receive)
            cold = scope.get("lambdasette.cold_start")  # Lambda's handler knows; else our own
            if cold is None:
                cold = first[0]
            first[0] = False
            record = RequestRecord(request_id(request.headers.get(REQUEST_ID_HEADER), scope),
                                   request.method, raw_path(request), scope.get("query_string", b"")
                                   .decode("latin-1"), cold_start=bool(cold))
            request.state.log = record
            response = await dispatch(request, record)

            async def counted(message: Message) -> None:
                # What was really sent: a streamed CSV's size is known only at its end.
                if message["type"] == "http.response.start":
                    record.status = FORWARDED_STATUS if record.forwarded else message["status"]
                elif message["type"] == "http.response.body":
                    record.bytes += len(message.get("body", b""))
                await send(message)

            try:
                await response(scope, receive, counted)
            except Exception:
                # A streamed answer that failed half-way: its status went out long ago.
                log.exception("Error while sending the answer", extra=record.context())
                raise
            finally:
                record.write()

    app = Starlette(routes=[StarletteRoute("/{path:path}", Dispatch())])
    app.router.default = Dispatch()  # paths outside "/..." too (`OPTIONS *`)
    app.state.lambdasette = ds
    return app


def answer_error(request: Request, error: ApiError, path: str, page: bool,
                 record: RequestRecord) -> Response:
    """The one answer to an error: JSON, or for a browser's page request or form post (`handle`
    says whether a form route took it) a page - a 401 there is the way to sign in."""
    page = page or getattr(request.state, "form", False)
    if page and error.status == 401:
        back = path if request.method in ("GET", "HEAD") else "/"
        return login_redirect(back, request.url.query if back == path else "", {
            k: v for k, v in error.headers.items() if k.lower() == "set-cookie"})
    if page:  # the page says who is signed in, if the request got that far
        return error_page(error, path, getattr(request.state, "ctx", None), body_request_id(error, record))
    return error_response(error, body_request_id(error, record))


def body_request_id(error: ApiError, record: RequestRecord) -> str | None:
    """The request id for an error's body: every error carries it (issue 18), so whoever
    reports one - a 4xx they do not understand or a failure on our side, logged with its
    traceback - can quote the id that finds its log line. Datasette's bodies have no such key;
    clients ignore it, but a byte-for-byte comparison with the reference sees one more key."""
    return record.request_id


def token_id_of(token: str) -> str | None:
    """The id of a token in our format (not a secret): its log line says which token was
    used, even when it turns out to be revoked or wrong."""
    parsed = parse_token(token)
    return parsed[0] if parsed else None


def takes_post(router: Router, path: str) -> bool:
    """Does the path answer POST (the write API, the token API)? Such paths send the CORS
    headers a POST needs - with their preflight, whatever its method."""
    return bool(router.match(resolve(path), "POST").route)


def negotiate(router: Router, target: Target, method: str, page: bool, form: bool) -> tuple[Match, Target]:
    """The route for the request: a browser's page request (`page`) or form post (`form`)
    reaches a page or form route where the path has one, and the JSON API's route otherwise
    - so API clients, which never ask for HTML nor send forms without a token, see no
    change."""
    if page or form:
        wanted = replace(target, format=PAGE if page else FORM)
        match = router.match(wanted, method)
        if match.route is not None:
            return match, wanted
    return router.match(target, method), target


async def handle(ds: Lambdasette, router: Router, request: Request, path: str, page: bool) -> Response:
    if len(path) > 1 and path.endswith("/"):
        query = request.url.query
        return redirect(path.rstrip("/") + (f"?{query}" if query else ""))
    method = request.method
    if method == "OPTIONS":
        # As 0.65 answers it, with or without --cors (which only adds the CORS headers).
        return Response(b"ok", media_type="text/plain; charset=utf-8")
    token = ds.credential(request.headers.get("authorization"))  # its shape only: no store yet
    record: RequestRecord | None = getattr(request.state, "log", None)
    if record is not None and token is not None:
        record.token_id = token_id_of(token)
    # A browser's session cookie counts only without a bearer token (which always wins).
    session_id = cookies.session_id(request) if token is None else None
    form = method == "POST" and "authorization" not in request.headers and cookies.is_form(request)
    match, target = negotiate(router, resolve(path), method, page, form)
    route = match.route
    request.state.route = route
    request.state.form = target.format == FORM
    open_route = route is not None and route.open
    if token is None and session_id is None and not ds.options.public and not open_route:
        raise ApiError(401, "Authentication required: send Authorization: Bearer <token>",
                       headers={"WWW-Authenticate": "Bearer"})
    reading = method in ("GET", "HEAD")
    if reading and ds.options.role == "write":
        raise ApiError(405, "This function serves writes only; reads go to the read function")
    if not reading and ds.options.role == "read" and not ds.options.forward_writes:
        raise ApiError(405, "This function serves reads only; writes go to the write function")
    if record is not None:
        record.database = target.database
    if route is None:
        if match.allowed:
            raise ApiError(405, "Method not allowed", headers={"Allow": ", ".join(match.allowed)})
        raise ApiError(404, "Not found")
    body = b"" if reading else await read_bytes(request, ds.settings.max_post_body_bytes)
    handler = route.handler
    args = Args.parse(request.url.query)
    api = choose_api(route, args, ds.settings.default_json_api)
    request.state.api = api
    force_https = ds.settings.force_https_urls

    # One deadline for all the SQL the request runs, started when it is acted on (B02).
    deadline = execute.Deadline(execute.REQUEST_TIME_LIMITS * ds.time_limit(args.get("_timelimit")))

    def act() -> Response:
        # The request is acted on now, its body in hand: only now is the token verified, so
        # a token revoked (or expired) while a slow body was on its way does nothing.
        actor, verified = ds.authenticate(token) if token is not None else (None, None)
        session = None
        ended = False  # a session cookie whose session is over: clear it
        if session_id is not None and not (open_route and not page):
            signed_in = ds.signed_in(session_id)
            if signed_in is not None:
                session, verified = signed_in
                actor = actor_of(verified)
                if record is not None:
                    record.token_id = verified.id
            else:
                ended = True
                # Anonymous on a private instance is nothing; and a form posted by a browser
                # that believes it is signed in must not go ahead as anonymous.
                if (not ds.options.public or target.format == FORM) and not open_route:
                    raise ApiError(401, "Your session has ended: sign in again", headers={
                        "WWW-Authenticate": "Bearer",
                        "Set-Cookie": cookies.clearing_header(cookies.SESSION_COOKIE,
                                                              secure=cookies.secure(request, force_https)),
                    })
        if record is not None and actor is not None:
            record.actor_id = actor.get("id")
        deadline.start()  # now, not while the body was arriving
        fields = None
        if target.format == FORM:
            try:
                fields = Args.parse(body.decode("utf-8"))
            except UnicodeDecodeError:
                raise ApiError(400, "The form is not UTF-8") from None
        if method == "POST":
            check_csrf(request, session, fields, open_route and target.format == FORM, force_https)
        ctx = Context(ds, request, target, args, path, actor=actor, body=body,
                      path_params=match.params, token=verified, api=api, session=session, form=fields,
                      deadline=deadline)
        request.state.ctx = ctx
        if reading and TXID_HEADER in request.headers:
            wait_for_txid(ds, request, target.database)
        with deadline.current():
            response = handler(ctx)
        if ended:
            cookies.clear_cookie(response, cookies.SESSION_COOKIE,
                                 secure=cookies.secure(request, force_https))
        return response

    return await call(ds, act, cancel=deadline.cancel, receive=request.receive)


def check_csrf(request: Request, session: SessionRecord | None, fields: Args | None,
               sign_in: bool, force_https: bool) -> None:
    """403 unless a POST that a browser's cookie speaks for carries its CSRF token: the
    session's (in the form, or in the X-CSRF-Token header), or for the sign-in form the
    `ls_csrf` cookie's; and unless it comes from this site. Forms are always checked; other
    POSTs when a session authenticates them (a bearer token is not ambient: never checked)."""
    given = (fields.get(cookies.CSRF_FIELD) if fields is not None else None) \
        or request.headers.get(cookies.CSRF_HEADER)
    if session is not None and not sign_in:
        expected: str | None = session.csrf
    elif fields is not None:
        expected = request.cookies.get(cookies.LOGIN_CSRF_COOKIE) if sign_in else None
    else:
        return  # no cookie speaks for it: a bearer token, or nobody
    if not expected or not csrf_matches(expected, given):
        raise ApiError(403, "CSRF token missing or invalid: reload the page and try again")
    if not cookies.same_origin(request, force_https):
        raise ApiError(403, "Cross-site request refused")


async def call(ds: Lambdasette, function: Callable[..., T], *args: Any,
               cancel: Callable[[], None] | None = None, receive: Receive | None = None) -> T:
    """Run blocking work: in a worker thread locally, directly in Lambda (one request per
    container, and nothing to watch). Locally, `cancel` is called if the client goes away
    meanwhile (`receive`, once its body has been read, brings nothing but that): the
    request's deadline is spent at once, so its queries stop at their next progress check
    and its remaining facets are skipped."""
    if not ds.options.threaded:
        return function(*args)
    if cancel is None or receive is None:
        return await run_in_threadpool(function, *args)
    watcher = asyncio.ensure_future(_until_disconnected(receive, cancel))
    try:
        return await run_in_threadpool(function, *args)
    finally:
        watcher.cancel()


async def _until_disconnected(receive: Receive, cancel: Callable[[], None]) -> None:
    """Wait for the client to go away (any body has been read: what else arrives is an empty
    request message, then the disconnect)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            cancel()
            return


_TXID = re.compile(r"[0-9]{1,19}")


def wait_for_txid(ds: Lambdasette, request: Request, database: str | None) -> None:
    """Read-your-writes: `X-Lambdasette-Txid: N` (as a write answered) makes a read wait,
    bounded, until this copy of the database has that transaction."""
    raw = request.headers.get(TXID_HEADER)
    if raw is None or not database:
        return
    if not _TXID.fullmatch(raw):  # digits only: not "+5", " 7 " or "1_0", as int() takes them
        raise ApiError(400, f"{TXID_HEADER} must be a transaction id (an integer)")
    txid = int(raw)
    if not ds.storage.wait_for(database, txid, ds.settings.txid_wait_ms / 1000):
        raise ApiError(503, f"This replica has not caught up with transaction {txid} yet; retry",
                       headers={"Retry-After": "1"})


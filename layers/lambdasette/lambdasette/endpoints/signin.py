"""Signing in and out: `GET /-/login` (the form), `POST /-/login` (a token in, a session
cookie out), `POST /-/logout`.

A session (`auth.sessions`) acts as the token it was started with; the browser keeps only the
opaque session id, in an HttpOnly cookie (`web.cookies`). The sign-in form is protected by a
double-submit CSRF cookie (checked by the dispatcher), so another site cannot sign a browser
in with a token of its choosing; every new sign-in gets a new session id (no fixation).
"""

from __future__ import annotations

import time

from starlette.responses import Response

from lambdasette.auth import sessions, tokens
from lambdasette.errors import InvalidToken
from lambdasette.web import cookies
from lambdasette.web.context import Context
from lambdasette.web.html import render
from lambdasette.web.humanize import span
from lambdasette.web.responses import local_location


def safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, never another host."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    return local_location(value)


def login_form(ctx: Context, *, message: str | None = None, status: int = 200) -> Response:
    """`GET /-/login`: the sign-in form, with its double-submit CSRF value."""
    csrf = cookies.login_csrf(ctx.request)
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    next_path = ctx.form.get("next") if ctx.form is not None else ctx.args.get("next")
    response = render(ctx, "login.html", {
        "login_csrf": csrf, "next": safe_next(next_path), "message": message,
        "max_age": span(sessions.MAX_AGE),
    }, status=status, headers=headers)
    cookies.set_cookie(response, cookies.LOGIN_CSRF_COOKIE, csrf, max_age=3600,
                       secure=cookies.secure(ctx.request, ctx.ds.settings.force_https_urls))
    return response


def login(ctx: Context) -> Response:
    """`POST /-/login` (a form; its CSRF checked): start a session acting as the token."""
    assert ctx.form is not None
    store = ctx.ds.tokens
    if store is None:
        return login_form(ctx, message="API tokens are not configured on this instance", status=404)
    token = (ctx.form.get("token") or "").strip()
    try:
        record = tokens.verify(store, token) if token else None
    except InvalidToken as exc:
        return login_form(ctx, message=f"That token cannot sign in: {exc}", status=401)
    if record is None:
        return login_form(ctx, message="That is not a lambdasette token (lstok_...)", status=401)
    secure = cookies.secure(ctx.request, ctx.ds.settings.force_https_urls)
    previous = cookies.session_id(ctx.request)
    if previous:
        sessions.end(store, previous)  # one browser, one session
    session_id, session = sessions.start(store, record)
    response = Response(b"", status_code=303,
                        headers={"Location": safe_next(ctx.form.get("next"))})
    cookies.set_cookie(response, cookies.SESSION_COOKIE, session_id,
                       max_age=session.expires - int(time.time()), secure=secure)
    cookies.clear_cookie(response, cookies.LOGIN_CSRF_COOKIE, secure=secure)
    return response


def logout(ctx: Context) -> Response:
    """`POST /-/logout` (a form; the session's CSRF checked): end the session."""
    session_id = cookies.session_id(ctx.request)
    if session_id and ctx.ds.tokens is not None:
        sessions.end(ctx.ds.tokens, session_id)
    response = Response(b"", status_code=303, headers={"Location": "/"})
    cookies.clear_cookie(response, cookies.SESSION_COOKIE,
                         secure=cookies.secure(ctx.request, ctx.ds.settings.force_https_urls))
    return response

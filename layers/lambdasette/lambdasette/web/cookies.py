"""The cookies a browser holds, and the checks on the requests it sends with them.

- `ls_session`: the opaque session id (`auth.sessions`) - `HttpOnly` (no page script can
  read it), `SameSite=Lax` (never sent on another site's POST; sent when a link from
  elsewhere is followed, so a link to a page lands signed in), `Secure` on HTTPS, `Path=/`,
  and a `Max-Age` that ends with the session. Never the token itself.
- `ls_csrf`: before there is a session, the sign-in form's CSRF token (double submit: the
  form carries the same random value as the cookie, which another site can neither read
  nor set), so nobody can sign a browser in with their own token behind its back.

Every form POST carries a CSRF token (`csrf_token` field), and so does every other POST a
session authenticates (the `X-CSRF-Token` header: the API explorer sends it). Requests with
`Authorization: Bearer` carry no ambient credential and are not checked.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "ls_session"
LOGIN_CSRF_COOKIE = "ls_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
FORM_TYPE = "application/x-www-form-urlencoded"


def secure(request: Request, force_https: bool = False) -> bool:
    """Is the browser talking HTTPS? (API Gateway says so in X-Forwarded-Proto, which Mangum
    turns into the scheme; `lambdasette serve` is plain HTTP unless behind a TLS proxy on
    127.0.0.1, whose X-Forwarded-Proto uvicorn honours.)"""
    return force_https or request.url.scheme == "https"


def session_id(request: Request) -> str | None:
    return request.cookies.get(SESSION_COOKIE) or None


def set_cookie(response: Response, name: str, value: str, *, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max(max_age, 0), path="/", secure=secure,
                        httponly=True, samesite="lax")


def clear_cookie(response: Response, name: str, *, secure: bool) -> None:
    response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")


def clearing_header(name: str, *, secure: bool) -> str:
    """A Set-Cookie value that removes `name` (for error answers, built as plain headers)."""
    response = Response()
    clear_cookie(response, name, secure=secure)
    return response.headers["set-cookie"]


def login_csrf(request: Request) -> str:
    """The sign-in form's CSRF value: the browser's `ls_csrf` cookie if it has a sound one,
    else a new one (the caller sets it)."""
    value = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if 32 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum():
        return value
    return secrets.token_urlsafe(32)


def is_form(request: Request) -> bool:
    """Was this POST sent by an HTML form (the only encoding our forms use)?"""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == FORM_TYPE


def same_origin(request: Request, force_https: bool = False) -> bool:
    """False when the browser says the request comes from another site: an `Origin` that is
    not this one (or `null`), or `Sec-Fetch-Site: cross-site`. Browsers send Origin on every
    POST; clients that send neither are not browsers, and CSRF needs a browser."""
    if request.headers.get("sec-fetch-site", "") == "cross-site":
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host") or request.url.netloc
    schemes = {request.url.scheme, "https"} if force_https else {request.url.scheme}
    return origin in {f"{scheme}://{host}" for scheme in schemes}

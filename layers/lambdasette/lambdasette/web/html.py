"""HTML beside the JSON: which requests get a page, and how a page is answered.

Extensionless URLs answer HTML only to a client that asks for it - `Accept` naming
`text/html` (every browser's navigation does) at least as high as `application/json` -
and JSON to everyone else (curl, `fetch`, Swagger UI send `*/*`). `.json` and `.csv` URLs
never change.

Every page is rendered from a template (`web.templates`, Jinja2 with autoescaping on every
value) and carries the same headers: a Content-Security-Policy that allows no inline script
or style and no framing, no referrer beyond this site, and `no-store` (pages show who is
signed in and hold CSRF tokens). Jinja2 is imported on the first page only: the JSON API's
cold start never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from lambdasette.errors import ApiError
from lambdasette.web.responses import local_location

if TYPE_CHECKING:
    from lambdasette.web.context import Context

HTML = "text/html; charset=utf-8"
# No inline script or style anywhere (scripts and styles are files under /-/static/), no
# plugins, no framing; forms post only here. Swagger UI works within it (data: images).
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "private, no-store",
}


def wants_html(accept: str | None) -> bool:
    """Does `accept` ask for HTML before JSON? `text/html` (or XHTML) must be named with a
    quality above zero and above that of `application/json` (on a tie, named first);
    wildcards never count."""
    if not accept or "html" not in accept:
        return False
    html: tuple[float, int] = (0.0, 0)
    json: tuple[float, int] = (0.0, 0)
    for position, part in enumerate(accept.split(",")):
        kind, _, params = part.strip().partition(";")
        kind = kind.strip().lower()
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        # Higher quality first, then earlier: (q, -position) orders them.
        if kind in ("text/html", "application/xhtml+xml"):
            html = max(html, (q, -position))
        elif kind == "application/json":
            json = max(json, (q, -position))
    return html[0] > 0 and html > json


def render(ctx: Context | None, template: str, values: dict[str, Any] | None = None, *,
           status: int = 200, headers: dict[str, str] | None = None,
           request: Request | None = None) -> Response:
    """A page: `template` with `values` and what every page shows (who is signed in, the
    session's CSRF token for its forms), with the page headers."""
    from lambdasette.web import templates  # Jinja2: on the HTML path only

    body = templates.render(template, {**page_values(ctx), **(values or {})})
    return Response(body.encode("utf-8"), status_code=status,
                    headers={**PAGE_HEADERS, **(headers or {})}, media_type=HTML)


def page_values(ctx: Context | None) -> dict[str, Any]:
    """What the layout needs from the request: who is signed in and how."""
    if ctx is None:
        return {"actor": None, "token_id": None, "signed_in": False, "csrf": "", "tokens_enabled": False,
                "public": True}
    session = ctx.session
    return {
        "actor": ctx.actor,
        "token_id": ctx.token.id if ctx.token else None,
        "signed_in": session is not None,
        # Forms work only for a signed-in browser (a bearer token's page gets no CSRF token).
        "csrf": session.csrf if session is not None else "",
        "tokens_enabled": ctx.ds.tokens is not None,
        "public": ctx.ds.options.public,
    }


def error_page(error: ApiError, path: str, ctx: Context | None = None,
               request_id: str | None = None) -> Response:
    """An error for a browser: the same status and message as the JSON error, as a page
    (`ctx`: the request as far as it got, to say who is signed in; `request_id`: a 5xx's, to
    quote when reporting it)."""
    headers = {k: v for k, v in error.headers.items() if k.lower() != "content-type"}
    return render(ctx, "error.html", {"error": error, "path": path, "request_id": request_id},
                  status=error.status, headers=headers)


def login_redirect(path: str, query: str, headers: dict[str, str] | None = None) -> Response:
    """Send a browser that must sign in to the sign-in page, which brings it back here."""
    import urllib.parse

    back = path + (f"?{query}" if query else "")
    location = "/-/login?" + urllib.parse.urlencode({"next": back}) if back != "/" else "/-/login"
    return Response(b"", status_code=302,
                    headers={"Location": local_location(location), "Cache-Control": "private, no-store",
                             **(headers or {})})

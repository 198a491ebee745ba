"""`/-/static/<path>`: the CSS, scripts and Swagger UI files the pages load (`web.assets`)."""

from __future__ import annotations

from starlette.responses import Response

from lambdasette.errors import ApiError
from lambdasette.web import assets
from lambdasette.web.context import Context

# Links carry the file's hash (`assets.url`), so a cached copy is never stale.
CACHED = "public, max-age=31536000, immutable"


def asset(ctx: Context) -> Response:
    """One static file, gzipped for clients that accept it; 404 for anything not shipped."""
    name = "/".join(ctx.path_params[k] for k in ("folder", "name") if k in ctx.path_params)
    found = assets.get(name)
    if found is None:
        raise ApiError(404, "Not found")
    headers = {"Cache-Control": CACHED, "Vary": "Accept-Encoding"}
    body = found.body
    if len(body) > 1024 and "gzip" in ctx.request.headers.get("accept-encoding", ""):
        body = assets.gzipped(found)
        headers["Content-Encoding"] = "gzip"
    return Response(body, headers=headers, media_type=found.media_type)

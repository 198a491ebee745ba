"""HTTP responses: JSON bodies, errors, caching, Link and CORS headers."""

from __future__ import annotations

import urllib.parse
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from lambdasette.args import Args, ascii_count
from lambdasette.errors import ApiError
from lambdasette.query.render import as_objects, dumps, ndjson
from lambdasette.tilde import tilde_encode

JSON = "application/json; charset=utf-8"

# Sent with every durable write; sent back with a read, it makes the read wait for that write.
TXID_HEADER = "X-Lambdasette-Txid"

# Datasette 0.65's set for reads; paths that take a POST (the write API, a 1.0 feature, and
# the token API) send the 1.0 set - exactly as the reference does (`with_txid` adds what
# read-your-writes needs, only where it is needed).
READ_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization",
    "Access-Control-Expose-Headers": "Link",
}
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Expose-Headers": "Link",
    "Access-Control-Allow-Methods": "GET, POST, HEAD, OPTIONS",
    "Access-Control-Max-Age": "3600",
}


def with_txid(cors: dict[str, str], request: Request, response: Response) -> dict[str, str]:
    """The CORS headers for read-your-writes in a browser: a preflight that asks to send the
    txid header (with a read) is allowed to; an answer that carries one (a durable write)
    exposes it. Otherwise the set is the reference's, unchanged."""
    asked = request.headers.get("access-control-request-headers", "")
    cors = dict(cors)
    if request.method == "OPTIONS" and TXID_HEADER.lower() in asked.lower():
        cors["Access-Control-Allow-Headers"] += f", {TXID_HEADER}"
    if TXID_HEADER in response.headers:
        cors["Access-Control-Expose-Headers"] += f", {TXID_HEADER}"
    return cors


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, *, infinity: bool = False
) -> Response:
    return Response(dumps(body, infinity=infinity), status_code=status, headers=headers,
                    media_type=JSON)


def rows_alone(shape: str | None, columns: list[str], rows: list[Any], *, nl: bool,
               headers: dict[str, str], infinity: bool) -> Response | None:
    """The shapes that answer with the rows and nothing around them, as Datasette 0.65 (and
    1.0a41) give them: `_shape=array` (a list of objects; with `_nl`, newline-delimited JSON
    as text/plain) and `_shape=arrayfirst` (each row's first value). None for every other
    shape: the page's own renderer wraps the rows."""
    if shape == "arrayfirst":
        return json_response([r[0] for r in rows], headers=headers, infinity=infinity)
    if shape == "array" and nl:
        return Response(ndjson(columns, rows, infinity=infinity), headers=headers, media_type="text/plain")
    if shape == "array":
        return json_response(as_objects(columns, rows), headers=headers, infinity=infinity)
    return None


def error_response(error: ApiError, request_id: str | None = None) -> Response:
    """The contract's error body; with the request's id (`request_id`), which finds its log
    line - and, for a 5xx, the logged traceback."""
    body = error.body()
    if request_id is not None:
        body["request_id"] = request_id
    return Response(dumps(body), status_code=error.status, headers=error.headers, media_type=JSON)


def cache_control(args: Args, default_ttl: int) -> dict[str, str]:
    """`_ttl=N` overrides the default max-age; `_ttl=0` means no-cache."""
    ttl = default_ttl
    requested = ascii_count(args.get("_ttl"), ceiling=10**9)
    if requested is not None:
        ttl = requested
    return {"Cache-Control": f"max-age={ttl}" if ttl else "no-cache"}


def absolute_url(request: Request, path_and_query: str, *, force_https: bool = False) -> str:
    scheme = "https" if force_https else request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    return f"{scheme}://{host}{path_and_query}"


def url_with_args(request: Request, path: str, args: Args, *, force_https: bool = False) -> str:
    """`path` (raw) with `args` as its query string, made absolute for this request's host."""
    qs = args.query_string()
    return absolute_url(request, path + (f"?{qs}" if qs else ""), force_https=force_https)


def attachment(filename: str) -> str:
    """A Content-Disposition header value for a download called `filename`. Header values are
    Latin-1 and a quoted name ends at its first `"`: a name that is not plain printable ASCII
    gets an ASCII fallback (its stem tilde-encoded, as Datasette 0.65 names such downloads) and
    the real name as RFC 6266's `filename*=UTF-8''...`."""
    if all(32 <= ord(c) < 127 for c in filename) and '"' not in filename and "\\" not in filename:
        return f'attachment; filename="{filename}"'
    stem, dot, ext = filename.rpartition(".")
    if not dot or not ext.isalnum():
        stem, dot, ext = filename, "", ""
    fallback = tilde_encode(stem) + dot + ext
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{urllib.parse.quote(filename, safe='')}"


def redirect(location: str) -> Response:
    """A 302 to a path on this host. `location` is made safe first: however a client spelled
    the path, the answer can never send a browser to another host (see `local_location`)."""
    return Response(b"", status_code=302, headers={"Location": local_location(location)})


# What may stay as it is in a Location path; everything else (backslashes, which browsers
# read as '/', spaces, control characters) is percent-encoded. '%' stays: the path is raw.
_LOCATION_SAFE = "/%~+,:;=@!$&'()*-._?"


def local_location(location: str) -> str:
    """`location` as a path on this host: `//evil.example` (protocol-relative) and `/\\evil`
    (read as `//` by browsers) become `/evil.example` and `/%5Cevil`."""
    quoted = urllib.parse.quote(location, safe=_LOCATION_SAFE)
    return "/" + quoted.lstrip("/")

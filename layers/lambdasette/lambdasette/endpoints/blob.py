"""`.blob` downloads of one BLOB cell, as Datasette 0.65 links them from CSV:
`/<db>/<table>/<pk>.blob?_blob_column=COL` and `/<db>.blob?sql=...&_blob_column=COL&_blob_hash=SHA256`
(the query's row whose COL has that SHA-256)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints import database
from lambdasette.endpoints.row import fetch_row
from lambdasette.errors import ApiError
from lambdasette.web.context import Context
from lambdasette.web.responses import attachment

BLOB_COLUMN = "_blob_column"
BLOB_HASH = "_blob_hash"
_CSS_CLASS = re.compile(r"^[a-zA-Z]+[_a-zA-Z0-9-]*$")


def row(ctx: Context) -> Response:
    found = fetch_row(ctx)
    pks = ctx.path.strip("/").split("/")[2].rsplit(".", 1)[0]
    return render(ctx, found.columns, [found.values], table=found.table.name, pks=pks)


def query(ctx: Context) -> Response:
    conn, sql = database.checked_sql(ctx)
    ran = database.run_query(ctx, conn, sql)
    return render(ctx, ran.result.columns, ran.result.rows, table=None, pks=None)


def render(ctx: Context, columns: list[str], rows: Sequence[Sequence[Any]], *,
           table: str | None, pks: str | None) -> Response:
    column = ctx.args.get(BLOB_COLUMN)
    if column is None:
        raise ApiError(400, f"?{BLOB_COLUMN}= is required")
    if column not in columns:
        raise ApiError(400, f"{column} is not a valid column")
    index = columns.index(column)
    wanted = ctx.args.get(BLOB_HASH)
    if wanted is not None:
        for candidate in rows:
            if hashlib.sha256(_bytes(candidate[index])).hexdigest() == wanted:
                value = candidate[index]
                break
        else:
            raise ApiError(400, "Link has expired - the requested binary content has changed "
                                "or could not be found.")
    elif rows:
        value = rows[0][index]
    else:
        raise ApiError(404, "No rows")
    bits = [_css_class(table)] if table else []
    bits += [pks] if pks else []
    bits.append(_css_class(column))
    if wanted:
        bits.append(wanted[:6])
    headers = {"X-Content-Type-Options": "nosniff",
               "Content-Disposition": attachment("-".join(bits) + ".blob")}
    return Response(_bytes(value), headers=headers, media_type="application/binary")


def _bytes(value: Any) -> bytes:
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


def _css_class(name: str) -> str:
    """Datasette's `to_css_class`, which names its `.blob` downloads."""
    if _CSS_CLASS.match(name):
        return name
    suffix = hashlib.md5(name.encode("utf-8")).hexdigest()[:6]
    cleaned = "-".join(name.lstrip("_").lstrip("-").split())
    cleaned = re.sub(r"[^a-zA-Z0-9_-]", "", cleaned)
    return "-".join(b for b in (cleaned, suffix) if b)

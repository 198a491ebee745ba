"""Request bodies: JSON, whatever the Content-Type says, capped at `max_post_body_bytes`, and
checked at the edge for what SQLite and the token stores can hold.

Every JSON body goes through `parse_object`, so no endpoint ever sees a value that would fail
deep inside a write or a token store: lone surrogates (`"\\ud800"` is valid JSON but not
encodable text), integers outside SQLite's 64 bits, non-finite numbers (`NaN`, `Infinity`,
`1e999`) and nesting deeper than `MAX_DEPTH` are a 400 that names the field, before anything
is stored.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from starlette.requests import Request

from lambdasette.errors import ApiError

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Deep enough for any JSON document a column holds; shallow enough that nothing that walks a
# value (json.dumps of a JSON column, the checks below) can hit Python's recursion limit.
MAX_DEPTH = 100

# A body can hold a value out of range only if its text has one of these; a body without
# them (nearly every body) is accepted with no walk at all.
_SURROGATE = re.compile("[\ud800-\udfff]|\\\\u[dD][89abcdefABCDEF]")
_BIG_NUMBER = re.compile(r"\d{19}|[eE][+]?\d{3}")


async def read_bytes(request: Request, limit: int) -> bytes:
    """The body, or 413 as soon as it passes `limit` bytes (0: no limit) - without reading
    the rest of an oversized upload into memory."""
    declared = request.headers.get("content-length", "")
    if limit and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body exceeded maximum size of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit and size > limit:
            raise ApiError(413, f"Request body exceeded maximum size of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_object(raw: bytes, *, empty: Any = ...,
                 message: str = "JSON must be a dictionary") -> dict[str, Any]:
    """A JSON object from a body; `empty` stands for a bodiless request when given. Raises a
    400 for invalid JSON and for any value SQLite or a token store could not hold."""
    if not raw.strip() and empty is not ...:
        return empty
    try:
        # Decoded here rather than by json.loads, which lets raw UTF-8 surrogates through
        # ("surrogatepass"); the text is then checked like every \\u escape.
        text = raw.decode(json.detect_encoding(raw))
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Invalid JSON: {_printable(str(exc))}") from None
    if not isinstance(data, dict):
        raise ApiError(400, message)
    if (_SURROGATE.search(text) or _BIG_NUMBER.search(text)
            or text.count("{") + text.count("[") > MAX_DEPTH):
        problem = check_value(data)
        if problem:
            raise ApiError(400, problem)
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def check_value(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The first problem with a parsed JSON value, as a message naming where it is
    (`rows.3.seed: ...`), or None when SQLite and the stores can hold all of it."""
    where = path or "body"
    if isinstance(value, str):
        if not _encodable(value):
            return f"{where}: string is not valid Unicode text (a lone surrogate such as \\ud800)"
        return None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            return f"{where}: integer out of range (integers must fit in 64 bits)"
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{where}: number out of range"
        return None
    if depth >= MAX_DEPTH:
        return f"{where}: nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, dict):
        for key, item in value.items():
            if not _encodable(key):
                return (f"{_join(path, _printable(key))}: key is not valid Unicode text"
                        " (a lone surrogate such as \\ud800)")
            problem = check_value(item, _join(path, key), depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list):
        for i, item in enumerate(value):
            problem = check_value(item, _join(path, str(i)), depth + 1)
            if problem:
                return problem
    return None


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """Text for a message: lone surrogates written as \\udXXX escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")

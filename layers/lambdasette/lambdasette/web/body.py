"""Request bodies: JSON, whatever the Content-Type says, capped at `max_post_body_bytes`, and
checked at the edge for what SQLite and the token stores can hold.

Every JSON body goes through `parse_object`, so no endpoint ever sees a value that would fail
deep inside a write or a token store: lone surrogates (`"\\ud800"` is valid JSON but not
encodable text), integers outside SQLite's 64 bits, non-finite numbers (`NaN`, `Infinity`,
`1e999`) and nesting deeper than `MAX_DEPTH` are a 400 that names the field, before anything
is stored.
"""

from __future__ import annotations

import itertools
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

# A body can hold a value SQLite cannot only if its UTF-8 shows one of these signs; a body
# without them (nearly every body) is accepted without walking the parsed value (a Python
# walk costs several times json.loads). The tests are C-speed scans - a literal-prefixed
# regex, a byte translation, substring searches - a small fraction of json.loads' own time.
#  - a lone surrogate: only as a \uD800-\uDFFF escape (strict decoding refuses raw ones);
#  - an integer beyond 64 bits has 19 digits or more; a float that overflows has an exponent of
#    3 digits or more;
#  - nesting deeper than MAX_DEPTH needs more than MAX_DEPTH brackets, and then `_too_deep`
#    measures it exactly (a 100-row insert has more brackets, but is 3 levels deep).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_SHAPE = bytes(ord("0") if c in b"0123456789" else ord("e") if c in b"eE" else ord("[") if c in b"[{"
               else c if c == ord("+") else ord(" ") for c in range(256))
_LONG_DIGITS = b"0" * 19
_NOT_BRACKETS_OR_QUOTES = bytes(c for c in range(256) if c not in b'[]{}"')
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


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
        # Decoded here, strictly, rather than by json.loads, which lets raw UTF-8 surrogates
        # through ("surrogatepass"): then only \\u escapes can make a lone one.
        encoding = json.detect_encoding(raw)
        text = raw.decode(encoding)
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"Invalid JSON: {_printable(str(exc))}") from None
    if not isinstance(data, dict):
        raise ApiError(400, message)
    utf8 = raw if encoding.startswith("utf-8") else text.encode("utf-8")
    shape = utf8.translate(_SHAPE)
    if (_SURROGATE_ESCAPE.search(utf8) or _LONG_DIGITS in shape or b"e000" in shape
            or b"e+000" in shape or (shape.count(b"[") > MAX_DEPTH and _too_deep(utf8))):
        problem = check_value(data)
        if problem:
            raise ApiError(400, problem)
    return data


def _too_deep(utf8: bytes) -> bool:
    """Does the (valid) JSON text nest deeper than MAX_DEPTH? Exact, every step at C speed:
    with escapes cut out, only brackets and quotes kept and empty strings dropped, what is left
    between quotes is brackets inside strings (rare: cut out too); the running sum of the
    remaining brackets is the nesting depth. (Dropping `""` may merge two strings, but only
    non-brackets ever lie between them, so no structural bracket is lost.)"""
    if b"\\" in utf8:
        utf8 = utf8.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = utf8.translate(None, _NOT_BRACKETS_OR_QUOTES).replace(b'""', b"")
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])
    return max(itertools.accumulate(map(_STEP.__getitem__, kept)), default=0) > MAX_DEPTH


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


def check_value(value: Any, path: str = "", depth: int = 0) -> str | None:
    """The first problem with a parsed JSON value, as a message naming where it is
    (`rows.3.seed: ...`), or None when SQLite and the stores can hold all of it."""
    where = path or "body"
    if len(where) > 80:  # a path 100 levels deep says no more than its start
        where = where[:60] + "..."
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

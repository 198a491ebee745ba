"""Values in URLs: how a cell value is written into a link (a `next` token, a facet's
`toggle_url`) and how a value read from a URL is bound, so that it finds the same cell again.

A URL carries text. SQLite compares a bound value with a column by the column's *affinity*
(declared type): INTEGER, REAL and NUMERIC columns convert numeric-looking text to a number,
TEXT columns compare text, and a column with no affinity (no declared type, `BLOB`, most view
expressions) converts nothing, so the text `'3'` never equals the integer 3 there. `from_url`
therefore binds what SQLite would have stored for the column: a number for numeric-looking
text in any column but a TEXT one. `to_url` gives that plain text form only for values it
reads back exactly; NULLs, BLOBs, non-finite floats and numeric-looking text in a column that
would read it as a number need a typed form instead (`typed_token`, `typed_json`).
"""

from __future__ import annotations

import base64
import json
import math
import re
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.tilde import tilde_decode, tilde_encode

INTEGER, TEXT, BLOB, REAL, NUMERIC = "INTEGER", "TEXT", "BLOB", "REAL", "NUMERIC"

_INT = re.compile(r"[+-]?[0-9]+\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z")
_INT64 = range(-(2**63), 2**63)


def affinity(declared: str, *, strict: bool = False) -> str:
    """SQLite's rules for a column's affinity from its declared type (§3.1 of its datatype
    documentation); BLOB stands for "no affinity". `strict`: a STRICT table, where ANY
    columns keep every value as given."""
    t = declared.upper()
    if "INT" in t:
        return INTEGER
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return TEXT
    if "BLOB" in t or not t or (strict and t == "ANY"):
        return BLOB
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return REAL
    return NUMERIC


def from_url(text: str, column_affinity: str) -> Any:
    """The value to bind for `text` from a URL, compared with a column of this affinity."""
    if column_affinity == TEXT:
        return text
    if _INT.match(text):
        if len(text) > 20:  # beyond 64 bits whatever the digits (and `int` refuses 4,301)
            return text
        number = int(text)
        # Beyond 64 bits SQLite has no integer: leave such text as text.
        return number if number in _INT64 else text
    if _FLOAT.match(text):
        real = float(text)
        if math.isfinite(real):
            return real
    return text


def same(a: Any, b: Any) -> bool:
    """Equal and of the same storage class (1 and 1.0 are the same number to SQLite)."""
    if a is None or b is None:
        return a is b
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric) and not isinstance(a, bool):
        return a == b
    return type(a) is type(b) and a == b


def to_url(value: Any, column_affinity: str) -> str | None:
    """The plain text form of `value` that `from_url` reads back as the same value in a column
    of this affinity, or None when only a typed form can carry it."""
    if isinstance(value, bool) or value is None or isinstance(value, (bytes, bytearray, memoryview)):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        text = repr(value)
    elif isinstance(value, int):
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return None
    return text if same(from_url(text, column_affinity), value) else None


# -- next tokens -------------------------------------------------------------------------------
#
# A token is comma-separated components, each the tilde-encoded plain form of a value, as
# Datasette writes them ("100", "a,2", "42~2E0,11"), or, where the plain form would not read
# back, a typed component: `$null` (as Datasette writes a NULL sort value), `$x<hex>` a BLOB,
# `$s<text>` text, `$i<int>` an integer, `$f<float>` a float (`$finf`). Tilde-encoding never
# leaves a `$`, so the two cannot be confused.

NULL_TOKEN = "$null"


def encode_component(value: Any, column_affinity: str) -> str:
    plain = to_url(value, column_affinity)
    if plain:  # an empty token would read as no token at all: page 1 again
        return tilde_encode(plain)
    if value is None:
        return NULL_TOKEN
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "$x" + bytes(value).hex()
    if isinstance(value, str):
        return "$s" + tilde_encode(value)
    if isinstance(value, float):
        return "$f" + tilde_encode(repr(value))
    return "$i" + tilde_encode(str(value))


def decode_component(part: str, column_affinity: str) -> Any:
    """The value of one token component; ApiError 400 for a typed component that is not one."""
    if not part.startswith("$"):
        return from_url(tilde_decode(part), column_affinity)
    if part == NULL_TOKEN:
        return None
    kind, payload = part[1:2], part[2:]
    try:
        if kind == "x":
            return bytes.fromhex(payload)
        text = tilde_decode(payload)
        if kind == "s":
            return text
        if kind == "i":
            number = int(text)
            if number in _INT64:
                return number
        elif kind == "f":
            return float(text)
    except ValueError:
        pass
    raise ApiError(400, f"Invalid _next: {part!r} is not a value")


# -- typed filter values -----------------------------------------------------------------------


def typed_json(value: Any) -> str:
    """`value` as a one-item JSON array for a `column__in=` filter, which binds JSON values
    with their types: `[3]`, `["3"]`, `[Infinity]`, and BLOBs the way the API writes them,
    `[{"$base64": true, "encoded": "..."}]`."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        value = {"$base64": True, "encoded": base64.b64encode(bytes(value)).decode("ascii")}
    return json.dumps([value])

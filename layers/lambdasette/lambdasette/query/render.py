"""Rendering rows and bodies as JSON: cell values, `_json` columns and `_shape`s."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Sequence
from typing import Any

from lambdasette.errors import ApiError

SHAPES = ("objects", "arrays", "array", "arrayfirst", "object")


def blob(value: bytes) -> Any:
    # Datasette 0.65: bytes that are valid UTF-8 come out as a string.
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}


def _default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return blob(bytes(value))
    raise TypeError(f"Cannot serialise {type(value).__name__}")


def _without_infinity(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _without_infinity(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_infinity(v) for v in value]
    return value


def dumps(body: Any, *, infinity: bool = False) -> bytes:
    """JSON bytes; non-finite floats become null unless `infinity` (`_json_infinity=on`)."""
    if not infinity:
        try:
            text = json.dumps(body, ensure_ascii=False, allow_nan=False, default=_default)
        except ValueError:
            body = _without_infinity(body)
            text = json.dumps(body, ensure_ascii=False, allow_nan=False, default=_default)
    else:
        text = json.dumps(body, ensure_ascii=False, default=_default)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON text such as "\\ud800" parsed by `_json`) cannot be UTF-8:
        # escape it as JSON does, rather than fail the response.
        return json.dumps(body, ensure_ascii=True, allow_nan=infinity, default=_default).encode("ascii")


def parse_json_columns(
    rows: list[tuple[Any, ...]], columns: Sequence[str], json_columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """`_json=COL`: embed that column's TEXT as parsed JSON (invalid JSON stays a string)."""
    indexes = [i for i, c in enumerate(columns) if c in json_columns]
    if not indexes:
        return rows
    out = []
    for row in rows:
        cells = list(row)
        for i in indexes:
            if isinstance(cells[i], str):
                try:
                    cells[i] = json.loads(cells[i])
                except ValueError:
                    pass
        out.append(tuple(cells))
    return out


def check_shape(shape: str | None) -> str | None:
    if shape is not None and shape not in SHAPES:
        raise ApiError(400, f"Invalid _shape: {shape}")
    return shape


def as_objects(columns: Sequence[str], rows: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(columns, row)) for row in rows]


def ndjson(columns: Sequence[str], rows: list[Any], *, infinity: bool) -> bytes:
    return b"\n".join(dumps(dict(zip(columns, row)), infinity=infinity) for row in rows)


def base64_blob(value: bytes) -> dict[str, Any]:
    """A BLOB as Datasette 1.0a41 writes every one (0.65 writes UTF-8 bytes as text)."""
    return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}


def with_base64_blobs(rows: list[Any]) -> list[Any]:
    """`rows` (tuples, lists or dicts) with each BLOB cell as 1.0a41 writes it; rows without
    one are returned as they are."""
    out = []
    for row in rows:
        values = row.values() if isinstance(row, dict) else row
        if any(isinstance(v, (bytes, bytearray, memoryview)) for v in values):
            if isinstance(row, dict):
                row = {k: base64_blob(bytes(v)) if isinstance(v, (bytes, bytearray, memoryview)) else v
                       for k, v in row.items()}
            else:
                row = tuple(base64_blob(bytes(v)) if isinstance(v, (bytes, bytearray, memoryview)) else v
                            for v in row)
        out.append(row)
    return out

"""Rendering rows and bodies as JSON: cell values, `_json` columns and `_shape`s - within the
response budget.

**The response budget** (`response_budget`: `max_response_bytes`, or 32 MiB where that is 0)
is what one buffered answer may hold, and it is kept while rendering, not checked after: a
page's rows are fetched counting their text (`query.execute`), so their JSON is bounded from
that count (`worst_size`: 6 bytes a character, for `\u0001`). `within_budget` renders a page
once and cuts it to what fits (`fitting`, which never renders more than about the room left)
only when it came out over the budget; only a page whose worst case is far over the budget
(`MEASURE_FIRST` times) is measured row by row before it is rendered, so that rendering never
holds more than a few budgets.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from lambdasette import celljson
from lambdasette.errors import ApiError
from lambdasette.settings import Settings

SHAPES = ("objects", "arrays", "array", "arrayfirst", "object")

MiB = 1024 * 1024
# The budget of a buffered answer where `max_response_bytes` is 0 (locally): its memory. A
# CSV stream is bounded by `max_csv_mb` instead (it is not held).
DEFAULT_RESPONSE_BYTES = 32 * MiB
# What rendering one cell can make beyond 6 bytes per character of its text: quotes, the
# ", " after it, a number (at most 24 characters) or null, a foreign-key label's
# {"value": ..., "label": ...}, a BLOB's {"$base64": true, "encoded": ...}.
CELL_BYTES = 64
# JSON escapes a character in at most 6 bytes (`\u0001`); UTF-8 takes at most 4.
BYTES_PER_CHAR = 6


def response_budget(settings: Settings) -> int:
    """The most one buffered answer may hold (bytes)."""
    return settings.max_response_bytes or DEFAULT_RESPONSE_BYTES


def worst_size(text_bytes: int, cells: int, *, key_bytes: int = 0) -> int:
    """An upper bound on the JSON of `cells` cells holding `text_bytes` of text and BLOBs
    (characters or bytes, as `query.execute.Result.text_bytes` counts them; a `_json` cell's
    parsed value renders in no more than its text would), plus `key_bytes` of object keys."""
    return BYTES_PER_CHAR * (text_bytes + key_bytes) + CELL_BYTES * cells


def page_worst(text_bytes: int, rows: int, columns: Sequence[str]) -> int:
    """`worst_size` of `rows` rows of `columns` holding `text_bytes` of text and BLOBs, each
    row rendered as an object (its keys included)."""
    return worst_size(text_bytes, rows * max(len(columns), 1),
                      key_bytes=rows * sum(len(c) + 4 for c in columns))


# Where a page's worst case (`page_worst`) is over this many times the budget, its rows are
# measured before it is rendered: rendering first would hold up to that much JSON, twice (the
# text and its UTF-8 bytes). Below it, rendering first is cheaper - most text renders in
# about a byte a character, far below its 6-byte worst case - and holds a few budgets at most.
MEASURE_FIRST = 4
# Room kept beside the rows for what cutting a page changes in its envelope (a `next` URL).
ENVELOPE_SLACK = 1024


class Rendered(Protocol):
    """A rendered answer: its JSON body (a Starlette `Response`)."""

    body: bytes


_Page = TypeVar("_Page")
_Answer = TypeVar("_Answer", bound=Rendered)


def within_budget(
    page: _Page, limit: int, *, worst: int, rows: Callable[[_Page], int],
    render: Callable[[_Page], _Answer], without_rows: Callable[[_Page], _Page],
    measured: Callable[[_Page], Sequence[Any]], cut: Callable[[_Page, int], _Page],
    too_big: Callable[[], ApiError], infinity: bool,
) -> _Answer:
    """`page` rendered, with only as many of its rows as fit in `limit` bytes (`cut(page,
    keep)`: its first `keep` rows, marked as cut - a `next` or `truncated` - and raising the
    one-row 413 when `keep` < 1). `rows(page)` counts its rows, `without_rows(page)` is its
    envelope alone, `measured(page)` its rows as they are measured (`fitting`), `worst` their
    worst case (`page_worst`); `too_big()` is the 413 for an envelope over the budget alone.

    Rendered once, and cut only when over the limit: the rows were fetched within the budget
    (`execute.run`'s `max_bytes`), so rendering first holds a few budgets at most - except
    where their worst case passes `MEASURE_FIRST` budgets (control characters, 6 bytes
    each): then they are measured before anything is rendered."""
    measure_first = worst > MEASURE_FIRST * limit
    answer = None if measure_first else render(page)
    if answer is None or len(answer.body) > limit:
        room = limit - len(render(without_rows(page)).body) - ENVELOPE_SLACK
        if room <= 0:
            raise too_big()
        keep = fitting(measured(page), room, infinity=infinity)
        if keep < rows(page):
            answer = None  # not held while the shorter page renders
            page = cut(page, keep)
        if answer is None:
            answer = render(page)
    while len(answer.body) > limit:
        # What the rows' measure does not cover (the envelope's blocks, which can grow with
        # the rows: labels, facets): shrink in proportion until it fits.
        count, size = rows(page), len(answer.body)
        if not count:
            raise too_big()
        del answer
        page = cut(page, min(count - 1, int(count * limit / size * 0.9)))
        answer = render(page)
    return answer


def row_too_big(limit: int, *, table: bool = False) -> ApiError:
    """The 413 for a page or result of which not even one row fits in the response budget."""
    if table:
        return ApiError(413, f"A single row of this page is larger than max_response_bytes "
                             f"({limit} bytes): choose fewer columns with _col= or _nocol=")
    return ApiError(413, f"A single row of this result is larger than max_response_bytes "
                         f"({limit} bytes): select fewer or smaller columns")


def fitting(items: Sequence[Any], room: int, *, infinity: bool = False, separator: int = 2) -> int:
    """How many of `items` (each as it will be rendered: a row as a list, tuple or dict, or
    a value) fit, one after another, in `room` bytes of JSON, `separator` bytes between
    them. Each is measured exactly, and never rendered whole when its worst case passes the
    room left: it is measured cell by cell, stopping at the first that does not fit - so
    measuring holds about the room left at most, never the gigabytes a row could become."""
    used = 2  # [ ]
    for index, item in enumerate(items):
        size = _size_within(item, room - used, infinity)
        if size is None:
            return index
        used += size + (separator if index else 0)
        if used > room:
            return index
    return len(items)


def _size_within(value: Any, room: int, infinity: bool) -> int | None:
    """The size of `value`'s JSON if it is at most `room` bytes, else None."""
    if room <= 0:
        return None
    kind = type(value)
    if kind is str or kind is bytes or kind is bytearray or kind is memoryview:
        if len(value) + 2 > room:  # every character or byte renders as one byte at least
            return None
        if BYTES_PER_CHAR * len(value) + CELL_BYTES > room:
            size = len(dumps(value, infinity=infinity))
            return size if size <= room else None
        return len(dumps(value, infinity=infinity))
    if kind is dict or kind is list or kind is tuple:
        cells = list(value.items()) if kind is dict else value
        if _cheap_bound(cells, pairs=kind is dict) <= room:
            size = len(dumps(value, infinity=infinity))
            return size if size <= room else None
        total = 2
        for cell in cells:
            if kind is dict:
                key, cell = cell
                key_size = _size_within(key, room - total, infinity)
                if key_size is None:
                    return None
                total += key_size + 2  # ": "
            size = _size_within(cell, room - total, infinity)
            if size is None:
                return None
            total += size + 2
            if total > room:
                return None
        return total
    size = len(dumps(value, infinity=infinity))
    return size if size <= room else None


def _cheap_bound(cells: Sequence[Any], *, pairs: bool = False) -> int:
    """An upper bound on the JSON of a row's cells (`pairs`: an object's (key, value) items),
    or a number over any room when a cell is a container (a `_json` or label value, then
    measured on its own)."""
    bound = 2
    for cell in cells:
        if pairs:
            key, cell = cell
            bound += BYTES_PER_CHAR * len(str(key)) + 4
        kind = type(cell)
        if kind is str or kind is bytes or kind is bytearray or kind is memoryview:
            bound += BYTES_PER_CHAR * len(cell) + CELL_BYTES
        elif kind is dict or kind is list or kind is tuple:
            return 1 << 62
        else:
            bound += CELL_BYTES
    return bound


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


_SURROGATE = re.compile("[\ud800-\udfff]")


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
        # escape it as JSON does - it can only be inside a string - and only it, so that
        # no character renders in more than 6 bytes (`worst_size`).
        return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text).encode("utf-8")


def parse_json_columns(
    rows: list[tuple[Any, ...]], columns: Sequence[str], json_columns: Sequence[str]
) -> list[tuple[Any, ...]]:
    """`_json=COL`: embed that column's TEXT as parsed JSON. What `celljson.parse` will not
    parse stays a string: invalid JSON, nesting too deep, a cell over 1 MiB, or more values
    than one response's budget (`celljson.MAX_NODES`)."""
    indexes = [i for i, c in enumerate(columns) if c in json_columns]
    if not indexes:
        return rows
    nodes = celljson.Nodes()
    out = []
    for row in rows:
        cells = list(row)
        for i in indexes:
            if isinstance(cells[i], str):
                parsed = celljson.parse(cells[i], nodes=nodes)
                if parsed is not celljson.NOT_JSON:
                    cells[i] = parsed
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

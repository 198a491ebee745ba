"""Column types (Datasette 1.0a26+): a meaning assigned to a column — `url`, `email`, `json`,
`textarea` — that the write API checks values against and `?_extra=render_cell` renders.

Assigned with `POST /<db>/<table>/-/set-column-type`, read with `?_extra=column_types`;
stored in the database itself (`query.internal`). These are Datasette 1.0a41's built-in
types, with its rules: each applies only to columns of certain SQLite types (all four: TEXT).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdasette import celljson


def sqlite_type(declared: str | None) -> str:
    """The SQLite type (affinity) of a declared column type, as 1.0a41's
    `SQLiteType.from_declared_type`: INTEGER, TEXT, BLOB, REAL or NUMERIC."""
    normalized = (declared or "").strip().upper()
    if not normalized:
        return "BLOB"
    if "INT" in normalized:
        return "INTEGER"
    if any(token in normalized for token in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in normalized:
        return "BLOB"
    if any(token in normalized for token in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


def _url(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "URL must be a string"
    if not re.match(r"^https?://\S+$", value.strip()):
        return "Invalid URL"
    return None


def _email(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        return "Email must be a string"
    if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value.strip()):
        return "Invalid email address"
    return None


def _json_value(value: Any) -> str | None:
    # The value is part of a request body, already bounded by its size: no length cap.
    if isinstance(value, str) and value != "" and celljson.parse(value, max_chars=None) is celljson.NOT_JSON:
        return "Invalid JSON"
    return None


def _render_link(prefix: str) -> Callable[[Any], str | None]:
    def render(value: Any) -> str | None:
        if not value or not isinstance(value, str):
            return None
        escaped = html.escape(value.strip())
        return f'<a href="{prefix}{escaped}">{escaped}</a>'

    return render


# Pretty-printing indents every value by twice its depth: a 1 MiB cell nested a few hundred
# levels deep would become hundreds of MB. Indented only while that stays within this many
# times the compact text (or PRETTY_FREE bytes); otherwise the compact JSON is shown.
PRETTY_FACTOR = 4
PRETTY_FREE = 64 * 1024


def _pretty_size(parsed: Any) -> int:
    """How many bytes of indentation and line breaks `json.dumps(parsed, indent=2)` adds, at
    most (each value on its own line, indented by twice its depth), walked without recursion."""
    extra, stack = 0, [(parsed, 0)]
    while stack:
        value, depth = stack.pop()
        extra += 2 * depth + 2
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            extra += 2 * depth + 2  # the closing brace's line
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
            extra += 2 * depth + 2
    return extra


def _render_json(value: Any) -> str | None:
    if value is None:
        return None
    parsed = celljson.parse(value) if isinstance(value, str) else value
    if parsed is celljson.NOT_JSON:
        return None
    try:
        compact = json.dumps(parsed)
        if _pretty_size(parsed) <= max(PRETTY_FACTOR * len(compact), PRETTY_FREE):
            return f"<pre>{html.escape(json.dumps(parsed, indent=2))}</pre>"
        return f"<pre>{html.escape(compact)}</pre>"
    except (TypeError, ValueError, RecursionError):
        return None


@dataclass(frozen=True)
class ColumnType:
    """One column type: its name and description, the SQLite types it fits, how it checks a
    value (an error message, or None) and renders one as HTML (None: as the plain value)."""
    name: str
    description: str
    sqlite_types: tuple[str, ...] = ("TEXT",)
    validate: Callable[[Any], str | None] = lambda value: None
    render: Callable[[Any], str | None] = lambda value: None

    def applies_to(self, declared: str | None) -> bool:
        """Does the type fit a column declared `declared`?"""
        return sqlite_type(declared) in self.sqlite_types


TYPES: dict[str, ColumnType] = {
    ct.name: ct for ct in (
        ColumnType("url", "URL", validate=_url, render=_render_link("")),
        ColumnType("email", "Email address", validate=_email, render=_render_link("mailto:")),
        ColumnType("json", "JSON data", validate=_json_value, render=_render_json),
        ColumnType("textarea", "Multiline text"),
    )
}


def not_applicable(kind: ColumnType, database: str, table: str, column: str, declared: str) -> str:
    """1.0a41's message for a type assigned to a column of another SQLite type."""
    return (f"Column type {kind.name!r} is only applicable to SQLite types "
            f"{', '.join(kind.sqlite_types)} but {database}.{table}.{column} has SQLite type "
            f"{sqlite_type(declared)}")


def validation_errors(assigned: dict[str, tuple[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """What is wrong with `rows` for the column types `assigned` (column -> (type, config)):
    `col: Invalid URL` per bad value, as 1.0a41's write API lists them."""
    errors = []
    for row in rows:
        for column, (name, _) in assigned.items():
            kind = TYPES.get(name)
            if kind is None or column not in row:
                continue
            error = kind.validate(row[column])
            if error:
                errors.append(f"{column}: {error}")
    return errors

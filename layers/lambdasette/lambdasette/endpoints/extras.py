"""Datasette 1.0a41's `?_extra=` blocks: which exist on which page, and how a page's values
for them are chosen.

`?_extra=a,b&_extra=c` asks for blocks by name (repeatable and comma-separated). Each page
kind (`TABLE`, `ROW`, `QUERY`) offers its own set, in 1.0a41's order (`EXTRAS`); a name the
page does not offer is a 400 `Unknown _extra: name` (1.0a41 answers HTML-only names such as
`filters` the same way). A page computes only the blocks asked for: it hands `resolve` one
function per block it offers and `resolve` calls those requested (see `endpoints.table`,
`endpoints.row` and `endpoints.database`).
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdasette import column_types
from lambdasette.args import Args
from lambdasette.errors import ApiError
from lambdasette.query.quote import quote

if TYPE_CHECKING:
    from lambdasette.web.context import Context

TABLE, ROW, QUERY = "table", "row", "query"
_ALL = frozenset({TABLE, ROW, QUERY})


@dataclass(frozen=True)
class Extra:
    """One `?_extra=` block: its name, 1.0a41's description of it, the page kinds offering it."""
    name: str
    description: str
    scopes: frozenset[str]


# 1.0a41's public extras, in its registry's order (which its `_extra=extras` list follows).
EXTRAS: tuple[Extra, ...] = (
    Extra("count", "Total count of rows matching these filters", frozenset({TABLE})),
    Extra("count_truncated", "True if the count hit Datasette's counting limit, meaning the real "
          "number of matching rows is at least the reported count.", frozenset({TABLE})),
    Extra("count_sql", "SQL query string used to calculate the total count for the current table "
          "view, including active filters.", frozenset({TABLE})),
    Extra("facet_results", "Results of facets calculated against this data. A dictionary with "
          "``results`` and ``timed_out`` keys: ``results`` maps facet names to facet dictionaries "
          "with ``name``, ``type``, ``results`` and URL keys, and each facet result item includes "
          "``value``, ``label``, ``count`` and ``toggle_url``.", frozenset({TABLE})),
    Extra("facets_timed_out", "List of names of facet calculations that exceeded the facet time "
          "limit.", frozenset({TABLE})),
    Extra("suggested_facets", "Suggestions for facets that might return interesting results. Each "
          "item is a dictionary with ``name`` and ``toggle_url`` keys, and may include extra keys "
          "such as ``type`` or ``label`` depending on the facet class.", frozenset({TABLE})),
    Extra("human_description_en", "Human-readable description of the filters", frozenset({TABLE})),
    Extra("columns", "List of column names returned by this table, row or query.", _ALL),
    Extra("all_columns", "List of all column names in the table, regardless of ``_col=`` or "
          "``_nocol=`` filtering.", frozenset({TABLE})),
    Extra("primary_keys", "List of primary key column names for this table, or an empty list if "
          "the table has no explicit primary key.", frozenset({TABLE, ROW})),
    Extra("column_details", "SQLite schema details for columns in this table. The dictionary maps "
          "column names to objects describing the schema for each column.", frozenset({TABLE, ROW})),
    Extra("display_columns", "Column metadata used by the HTML table display. Each item includes "
          "``name``, ``sortable``, ``is_pk``, ``type``, ``notnull``, ``description``, "
          "``column_type`` and ``column_type_config`` keys.", frozenset({TABLE})),
    Extra("render_cell", "Rendered HTML for each cell using the render_cell plugin hook", _ALL),
    Extra("debug", "Extra debug information dictionary. This is intended for development only and "
          "its shape is not part of the stable template contract.", _ALL),
    Extra("request", "Dictionary with request details: ``url``, ``path``, ``full_path``, ``host`` "
          "and ``args`` where ``args`` maps query string parameter names to their values.", _ALL),
    Extra("query", "Details of the underlying SQL query as a dictionary with ``sql`` and "
          "``params`` keys.", _ALL),
    Extra("column_types", "Column type assignments for this table. A dictionary mapping column "
          'names to ``{"type": type_name, "config": config}`` dictionaries.', frozenset({TABLE, ROW})),
    Extra("set_column_type_ui", "Information needed to build an interface for assigning column "
          "types, or ``None`` if unavailable. When present it has ``path`` and ``columns`` keys; "
          "``columns`` maps column names to ``current`` and ``options`` values.", frozenset({TABLE})),
    Extra("metadata", "Metadata dictionary for the table, database or stored query. Table and row "
          "metadata include a ``columns`` dictionary mapping column names to descriptions; stored "
          "query metadata returns the stored query configuration.", _ALL),
    Extra("extras", "List of ``?_extra=`` blocks that can be used on this page. Each item has "
          "``name``, ``description``, ``toggle_url`` and ``selected`` keys.", _ALL),
    Extra("database", "Database name", _ALL),
    Extra("table", "Table name", frozenset({TABLE, ROW})),
    Extra("database_color", "Color assigned to the database", _ALL),
    Extra("renderers", "Dictionary mapping output format names such as ``json`` or plugin-provided "
          "renderer names to URLs for this data in that format.", frozenset({TABLE})),
    Extra("custom_table_templates", "List of custom template names considered for rendering table "
          "rows, in lookup order.", frozenset({TABLE})),
    Extra("sorted_facet_results", "Facet result dictionaries sorted for display. Each item has the "
          "same shape as an entry from ``facet_results['results']``.", frozenset({TABLE})),
    Extra("table_definition", "SQL definition for this table", frozenset({TABLE})),
    Extra("view_definition", "SQL definition for this view", frozenset({TABLE})),
    Extra("is_view", "Whether this resource is a view instead of a table", frozenset({TABLE})),
    Extra("private", "Whether this resource is private to the current actor", _ALL),
    Extra("expandable_columns", "List of foreign key columns that can be expanded with labels. Each "
          "item is a ``(foreign_key, label_column)`` pair where ``foreign_key`` is the SQLite "
          "foreign key dictionary and ``label_column`` is the label column in the referenced "
          "table, or ``None``.", frozenset({TABLE})),
    Extra("foreign_key_tables", "List of tables that link to this row using foreign keys. Each "
          "item includes the foreign key fields plus ``count`` for matching rows and ``link`` for "
          "the filtered table URL.", frozenset({ROW})),
    Extra("form_hidden_args", "List of ``(name, value)`` pairs for hidden form fields used by the "
          "HTML table interface to preserve current query string options.", frozenset({TABLE})),
)


def offered(scope: str) -> list[Extra]:
    """The extras a page of kind `scope` offers, in 1.0a41's order."""
    return [extra for extra in EXTRAS if scope in extra.scopes]


def requested(args: Args) -> list[str]:
    """The names `?_extra=` asks for, in the order given, each once."""
    names: list[str] = []
    for value in args.getlist("_extra"):
        for name in value.split(","):
            if name and name not in names:
                names.append(name)
    return names


def check(names: list[str], scope: str) -> None:
    """400 `Unknown _extra: a, b` for names the page does not offer (1.0a41's message)."""
    known = {extra.name for extra in offered(scope)}
    unknown = sorted(name for name in names if name not in known)
    if unknown:
        raise ApiError(400, f"Unknown _extra: {', '.join(unknown)}")


def resolve(names: list[str], providers: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """The blocks asked for, in 1.0a41's order, each from its provider (called only if asked:
    this is where a page's optional work happens)."""
    wanted = set(names)
    return {extra.name: providers[extra.name]() for extra in EXTRAS
            if extra.name in wanted and extra.name in providers}


def extras_block(ctx: Context, scope: str, names: list[str]) -> list[dict[str, Any]]:
    """The `extras` block: every extra of the page, whether it was asked for, and the page's
    URL with it added (or, if asked for, removed)."""
    out = []
    for extra in offered(scope):
        selected = extra.name in names
        if selected:
            kept = []
            for key, value in ctx.args.items:
                if key == "_extra":
                    value = ",".join(n for n in value.split(",") if n != extra.name)
                    if not value:
                        continue
                kept.append((key, value))
            args = Args(kept)
        else:
            args = Args(ctx.args.items + [("_extra", extra.name)])
        out.append({"name": extra.name, "description": extra.description,
                    "toggle_url": ctx.url(args), "selected": selected})
    return out


def request_block(ctx: Context) -> dict[str, Any]:
    """The `request` block: the request's URL, path, host and arguments (the last value of
    repeated ones, as 1.0a41's `args._data` holds lists of every value)."""
    args: dict[str, list[str]] = {}
    for key, value in ctx.args.items:
        args.setdefault(key, []).append(value)
    qs = ctx.args.query_string()
    return {
        "url": ctx.url(ctx.args),
        "path": ctx.path,
        "full_path": ctx.path + (f"?{qs}" if qs else ""),
        "host": ctx.request.headers.get("host") or ctx.request.url.netloc,
        "args": args,
    }


# -- blocks several page kinds share ------------------------------------------------------------


def database_color(database: str) -> str:
    """The six hex digits 1.0a41 colours a database with (from its name's MD5)."""
    return hashlib.md5(database.encode("utf-8")).hexdigest()[:6]


def private(ctx: Context, action: str, database: str, name: str | None = None) -> bool:
    """1.0a41's `private`: the caller may see this, an anonymous caller could not."""
    if ctx.ds.options.public and ctx.ds.can(None, action, database, name):
        return False
    return ctx.ds.can(ctx.actor, action, database, name)


def column_details(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    """`column_details`: each column's declared type, SQLite type, NOT NULL, default, key
    position and hidden flag, from `PRAGMA table_xinfo`."""
    rows = conn.execute(f"PRAGMA table_xinfo({quote(table)})").fetchall()
    return {
        name: {
            "type": declared or "",
            "sqlite_type": column_types.sqlite_type(declared),
            "notnull": bool(notnull),
            "default": default,
            "is_pk": bool(pk),
            "pk_position": pk,
            "hidden": hidden,
        }
        for _, name, declared, notnull, default, pk, hidden in rows
    }


def column_types_block(assigned: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    """`column_types`: {column: {"type", "config"}} for the columns with an assigned type."""
    return {column: {"type": name, "config": config} for column, (name, config) in assigned.items()}


def render_cells(columns: list[str], rows: list[Any], assigned: dict[str, tuple[str, Any]],
                 room: int | None = None) -> list[dict[str, str]]:
    """`render_cell`: per row, the HTML of each cell whose rendering differs from the plain
    value — here the cells of columns with a column type that renders (there are no plugins).
    At most about `room` bytes of HTML are made (the response budget): the rows past it get
    none, and the answer, then over its budget, is cut to fewer rows by its endpoint."""
    renderers = {}
    for column, (name, _) in assigned.items():
        kind = column_types.TYPES.get(name)
        if kind is not None and column in columns:
            renderers[columns.index(column)] = (column, kind)
    out: list[dict[str, str]] = []
    used = 0
    for row in rows:
        rendered: dict[str, str] = {}
        out.append(rendered)
        if room is not None and used > room:
            continue  # past the budget: nothing more is made (see above)
        values = list(row.values()) if isinstance(row, dict) else list(row)
        for index, (column, kind) in renderers.items():
            if index < len(values):
                value = values[index]
                if isinstance(value, dict) and "value" in value:  # an expanded label
                    value = value["value"]
                html = kind.render(value)
                if html:
                    rendered[column] = html
                    used += len(html)
    return out


_CSS_CLASS = re.compile(r"^[a-zA-Z]+[_a-zA-Z0-9-]*$")
_CSS_INVALID = re.compile(r"[^a-zA-Z0-9_\-]")


def css_class(name: str) -> str:
    """Datasette's `to_css_class`: the name if it is a valid CSS class, else a cleaned-up
    version with an MD5 suffix that keeps different names apart."""
    if _CSS_CLASS.match(name):
        return name
    suffix = hashlib.md5(name.encode("utf-8")).hexdigest()[:6]
    cleaned = _CSS_INVALID.sub("", "-".join(name.lstrip("_").lstrip("-").split()))
    return "-".join(part for part in (cleaned, suffix) if part)

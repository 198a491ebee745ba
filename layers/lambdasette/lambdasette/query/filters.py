"""Column filters: `?column__op=value` arguments turned into WHERE clauses."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote
from lambdasette.query.values import BLOB, from_url

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_value(name: str, value: Any) -> Any:
    """`value` (from the query string, or JSON in it) if SQLite can hold it; else a 400 that
    names the parameter. JSON can spell what SQLite cannot: integers beyond 64 bits and lone
    surrogates ("\\ud800"), which are not Unicode text."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError(400, f"{name}: text that is not valid Unicode (a lone surrogate "
                                "such as \\ud800)") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ApiError(400, f"{name}: integer out of range (SQLite integers are 64-bit)")
    elif isinstance(value, list):
        for item in value:
            check_value(name, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_value(name, key)
            check_value(name, item)
    return value


def json_param(name: str, raw: str, what: str) -> Any:
    """The JSON in query-string parameter `name`, checked with `check_value`."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        detail = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise ApiError(400, f"Invalid JSON {what}: {detail}") from None
    return check_value(name, parsed)


def _plain(value: str) -> str:
    return value if value.isdigit() else f'"{value}"'


@dataclass(frozen=True)
class Operator:
    key: str
    sql: str  # {c} quoted column, {t} quoted table, {p} parameter name
    human: Callable[[str, str], str]
    # The bound value from the URL's text: `typed` binds it as the column's affinity would
    # store it (`values.from_url`), else `pattern` turns it into a LIKE pattern or the text.
    typed: bool = True
    pattern: str = "{v}"
    no_argument: bool = False


OPERATORS: dict[str, Operator] = {
    op.key: op
    for op in [
        Operator("exact", "{c} = :{p}", lambda c, v: f"{c} = {_plain(v)}"),
        Operator("not", "{c} != :{p}", lambda c, v: f"{c} != {_plain(v)}"),
        Operator("contains", "{c} like :{p}", lambda c, v: f'{c} contains "{v}"', False, "%{v}%"),
        Operator("notcontains", "{c} not like :{p}", lambda c, v: f'{c} does not contain "{v}"',
                 False, "%{v}%"),
        Operator("endswith", "{c} like :{p}", lambda c, v: f'{c} ends with "{v}"', False, "%{v}"),
        Operator("startswith", "{c} like :{p}", lambda c, v: f'{c} starts with "{v}"', False, "{v}%"),
        Operator("gt", "{c} > :{p}", lambda c, v: f"{c} > {v}"),
        Operator("gte", "{c} >= :{p}", lambda c, v: f"{c} \u2265 {v}"),
        Operator("lt", "{c} < :{p}", lambda c, v: f"{c} < {v}"),
        Operator("lte", "{c} <= :{p}", lambda c, v: f"{c} \u2264 {v}"),
        Operator("like", "{c} like :{p}", lambda c, v: f'{c} like "{v}"', False),
        Operator("notlike", "{c} not like :{p}", lambda c, v: f'{c} not like "{v}"', False),
        Operator("glob", "{c} glob :{p}", lambda c, v: f'{c} glob "{v}"', False),
        Operator("in", "", lambda c, v: f"{c} in {json.dumps(split_in(v), default=_blob_json)}"),
        Operator("notin", "", lambda c, v: f"{c} not in {json.dumps(split_in(v), default=_blob_json)}"),
        # Array elements are compared as text, so that a link made from any element (a facet's
        # toggle_url: `array_texts` below) finds it again; blank cells contain nothing.
        Operator("arraycontains", ":{p} in (select value from {a})",
                 lambda c, v: f'{c} contains "{v}"', False),
        Operator("arraynotcontains", ":{p} not in (select value from {a})",
                 lambda c, v: f'{c} does not contain "{v}"', False),
        Operator("date", "date({c}) = :{p}", lambda c, v: f'"{c}" is on date {v}', False),
        Operator("isnull", "{c} is null", lambda c, v: f"{c} is null", no_argument=True),
        Operator("notnull", "{c} is not null", lambda c, v: f"{c} is not null", no_argument=True),
        Operator("isblank", "({c} is null or {c} = '')", lambda c, v: f"{c} is blank", no_argument=True),
        Operator("notblank", "({c} is not null and {c} != '')", lambda c, v: f"{c} is not blank",
                 no_argument=True),
    ]
}


def json_array_cell(column_sql: str) -> str:
    """`column_sql` as `json_each` should read it: a blank cell is an empty list, as NULL is
    (to a user a blank cell means "no tags"). Malformed JSON is still an error, as in 0.65."""
    return f"(case when trim({column_sql}, ' ' || char(9, 10, 13)) = '' then null else {column_sql} end)"


def array_texts(column_sql: str) -> str:
    """The elements of a JSON-array cell as text: `json_each` rows with `value` cast to text
    (`["a", 1]` gives 'a' and '1'; NULL elements stay NULL)."""
    return f"(select cast(value as text) as value from json_each({json_array_cell(column_sql)}))"


def _blob_json(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$base64": True, "encoded": base64.b64encode(value).decode("ascii")}
    raise TypeError(type(value).__name__)


def _json_item(item: Any) -> Any:
    """One item of a JSON `__in` array: a scalar keeps its JSON type; a BLOB is written as the
    API writes BLOBs, `{"$base64": true, "encoded": "..."}`."""
    if isinstance(item, dict) and item.get("$base64") is True and set(item) == {"$base64", "encoded"}:
        try:
            return base64.b64decode(str(item["encoded"]), validate=True)
        except (binascii.Error, ValueError):
            raise ApiError(400, "__in filter: invalid base64 in a $base64 value") from None
    if isinstance(item, (list, dict)):
        raise ApiError(400, "__in filter JSON must be an array of scalar values")
    return item


def split_in(value: str, name: str = "__in") -> list[Any]:
    """`[1, "a"]` is a JSON array (types kept); anything else is comma-separated."""
    if value.startswith("["):
        parsed = json_param(name, value, "array for __in filter")
        if not isinstance(parsed, list):
            raise ApiError(400, "__in filter JSON must be an array of scalar values")
        return [_json_item(item) for item in parsed]
    return [part.strip() for part in value.split(",")]


@dataclass(frozen=True)
class Filter:
    column: str
    op: Operator
    value: str
    # What to bind instead of `value`, e.g. `75000.0` for `75km` on a column in metres.
    bound: str | None = None

    @property
    def key(self) -> str:
        return self.column if self.op.key == "exact" else f"{self.column}__{self.op.key}"

    def human(self) -> str:
        return self.op.human(self.column, self.value)


def is_special(key: str) -> bool:
    return key.startswith("_") and "__" not in key


def parse_filters(items: list[tuple[str, str]], columns: Iterable[str]) -> list[Filter]:
    """Filters from the query string, sorted by key as Datasette sorts them.

    Unknown columns and unknown operators are a 400, where Datasette would compare against a
    string literal and match nothing, or drop the filter and match everything. A key that is
    itself a column's name (`a__b`) is an exact filter on that column.
    """
    columns = set(columns)
    filters: list[Filter] = []
    for key, value in sorted(items, key=lambda item: item[0]):
        if is_special(key):
            continue
        column, op_key = key.rsplit("__", 1) if "__" in key else (key, "exact")
        op = OPERATORS.get(op_key)
        if op is None:
            if key in columns:
                column, op = key, OPERATORS["exact"]
            else:
                raise ApiError(400, f"Unknown filter operator: {op_key} (in {key}); operators are "
                               + ", ".join(OPERATORS))
        if column not in columns:
            raise ApiError(400, f"Cannot filter on column: {column} (no such column)")
        filters.append(Filter(column, op, value))
    return filters


def where_clauses(
    filters: list[Filter], table: str, params: dict[str, Any],
    affinities: Mapping[str, str] | None = None,
) -> list[str]:
    """SQL for each filter; values bound into `params` as :p0, :p1, ... Each value from the
    URL is bound as the column's affinity would store it (`affinities`: column -> affinity,
    see `values`), so `?n=0` finds the integer 0 in a column with no declared type too."""
    clauses = []
    for f in filters:
        column = quote(f.column)
        column_affinity = (affinities or {}).get(f.column, BLOB)
        if f.op.key in ("in", "notin"):
            names = []
            raw = f.value
            items = split_in(raw, f.key)
            if not raw.startswith("["):
                items = [from_url(item, column_affinity) for item in items]
            for value in items:
                name = f"p{len(params)}"
                params[name] = value
                names.append(f":{name}")
            keyword = "in" if f.op.key == "in" else "not in"
            clauses.append(f"{column} {keyword} ({', '.join(names)})")
            continue
        name = f"p{len(params)}"
        if not f.op.no_argument:
            value = f.op.pattern.format(v=f.value if f.bound is None else f.bound)
            params[name] = from_url(value, column_affinity) if f.op.typed else value
        clauses.append(f.op.sql.format(c=column, t=quote(table), p=name,
                                       a=array_texts(f"{quote(table)}.{column}")))
    return clauses


def human_description(bits: list[str]) -> str:
    if not bits:
        return ""
    head, tail = bits[:-1], bits[-1]
    text = f"{', '.join(head)} and {tail}" if head else tail
    return f"where {text}"

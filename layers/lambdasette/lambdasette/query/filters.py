"""Column filters: `?column__op=value` arguments turned into WHERE clauses."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote


def _number(value: str) -> Any:
    if value.isdigit():
        return int(value)
    try:
        number = float(value)
    except ValueError:
        return value
    return number if number not in (float("inf"), float("-inf")) and number == number else value


def _plain(value: str) -> str:
    return value if value.isdigit() else f'"{value}"'


@dataclass(frozen=True)
class Operator:
    key: str
    sql: str  # {c} quoted column, {t} quoted table, {p} parameter name
    human: Callable[[str, str], str]
    value: Callable[[str], Any] = str
    no_argument: bool = False


OPERATORS: dict[str, Operator] = {
    op.key: op
    for op in [
        Operator("exact", "{c} = :{p}", lambda c, v: f"{c} = {_plain(v)}"),
        Operator("not", "{c} != :{p}", lambda c, v: f"{c} != {_plain(v)}"),
        Operator("contains", "{c} like :{p}", lambda c, v: f'{c} contains "{v}"', lambda v: f"%{v}%"),
        Operator("notcontains", "{c} not like :{p}", lambda c, v: f'{c} does not contain "{v}"',
                 lambda v: f"%{v}%"),
        Operator("endswith", "{c} like :{p}", lambda c, v: f'{c} ends with "{v}"', lambda v: f"%{v}"),
        Operator("startswith", "{c} like :{p}", lambda c, v: f'{c} starts with "{v}"', lambda v: f"{v}%"),
        Operator("gt", "{c} > :{p}", lambda c, v: f"{c} > {v}", _number),
        Operator("gte", "{c} >= :{p}", lambda c, v: f"{c} \u2265 {v}", _number),
        Operator("lt", "{c} < :{p}", lambda c, v: f"{c} < {v}", _number),
        Operator("lte", "{c} <= :{p}", lambda c, v: f"{c} \u2264 {v}", _number),
        Operator("like", "{c} like :{p}", lambda c, v: f'{c} like "{v}"'),
        Operator("notlike", "{c} not like :{p}", lambda c, v: f'{c} not like "{v}"'),
        Operator("glob", "{c} glob :{p}", lambda c, v: f'{c} glob "{v}"'),
        Operator("in", "", lambda c, v: f"{c} in {json.dumps(split_in(v))}"),
        Operator("notin", "", lambda c, v: f"{c} not in {json.dumps(split_in(v))}"),
        Operator("arraycontains", ":{p} in (select value from json_each({t}.{c}))",
                 lambda c, v: f'{c} contains "{v}"'),
        Operator("arraynotcontains", ":{p} not in (select value from json_each({t}.{c}))",
                 lambda c, v: f'{c} does not contain "{v}"'),
        Operator("date", "date({c}) = :{p}", lambda c, v: f'"{c}" is on date {v}'),
        Operator("isnull", "{c} is null", lambda c, v: f"{c} is null", no_argument=True),
        Operator("notnull", "{c} is not null", lambda c, v: f"{c} is not null", no_argument=True),
        Operator("isblank", "({c} is null or {c} = '')", lambda c, v: f"{c} is blank", no_argument=True),
        Operator("notblank", "({c} is not null and {c} != '')", lambda c, v: f"{c} is not blank",
                 no_argument=True),
    ]
}


def split_in(value: str) -> list[Any]:
    """`[1, "a"]` is a JSON array (types kept); anything else is comma-separated."""
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ApiError(400, f"Invalid JSON array for __in filter: {exc}") from None
        if not isinstance(parsed, list) or any(isinstance(v, (list, dict)) for v in parsed):
            raise ApiError(400, "__in filter JSON must be an array of scalar values")
        return parsed
    return [part.strip() for part in value.split(",")]


@dataclass(frozen=True)
class Filter:
    column: str
    op: Operator
    value: str

    def human(self) -> str:
        return self.op.human(self.column, self.value)


def is_special(key: str) -> bool:
    return key.startswith("_") and "__" not in key


def parse_filters(items: list[tuple[str, str]], columns: set[str]) -> list[Filter]:
    """Filters from the query string, sorted by key as Datasette sorts them.

    Unknown operators are ignored (as Datasette does); unknown columns are a 400,
    where Datasette would compare against a string literal and match nothing.
    """
    filters: list[Filter] = []
    for key, value in sorted(items, key=lambda item: item[0]):
        if is_special(key):
            continue
        column, op_key = key.rsplit("__", 1) if "__" in key else (key, "exact")
        op = OPERATORS.get(op_key)
        if op is None:
            continue
        if column not in columns:
            raise ApiError(400, f"Cannot filter on column: {column} (no such column)")
        filters.append(Filter(column, op, value))
    return filters


def where_clauses(filters: list[Filter], table: str, params: dict[str, Any]) -> list[str]:
    """SQL for each filter; values bound into `params` as :p0, :p1, ..."""
    clauses = []
    for f in filters:
        column = quote(f.column)
        if f.op.key in ("in", "notin"):
            names = []
            for value in split_in(f.value):
                name = f"p{len(params)}"
                params[name] = value
                names.append(f":{name}")
            keyword = "in" if f.op.key == "in" else "not in"
            clauses.append(f"{column} {keyword} ({', '.join(names)})")
            continue
        name = f"p{len(params)}"
        if not f.op.no_argument:
            params[name] = f.op.value(f.value)
        clauses.append(f.op.sql.format(c=column, t=quote(table), p=name))
    return clauses


def human_description(bits: list[str]) -> str:
    if not bits:
        return ""
    head, tail = bits[:-1], bits[-1]
    text = f"{', '.join(head)} and {tail}" if head else tail
    return f"where {text}"

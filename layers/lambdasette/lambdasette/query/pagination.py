"""Keyset pagination: `next` tokens and the WHERE clauses that resume after a row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdasette.errors import ApiError
from lambdasette.query.quote import quote
from lambdasette.query.values import decode_component, encode_component


def encode_token(values: Sequence[Any], affinities: Sequence[str]) -> str:
    """A `next` token for a position: each value written so that it reads back with its type
    (see `values`): Datasette's own tokens for ordinary keys, typed components otherwise."""
    return ",".join(encode_component(v, a) for v, a in zip(values, affinities))


def decode_token(token: str, affinities: Sequence[str]) -> list[Any]:
    """The values of a `next` token, one per affinity; ApiError 400 if it does not have that
    many components (an invalid token never quietly means page 1)."""
    parts = token.split(",")
    if len(parts) != len(affinities):
        raise ApiError(400, f"Invalid _next: expected {len(affinities)} comma-separated values")
    return [decode_component(p, a) for p, a in zip(parts, affinities)]


def column_sql(column: str) -> str:
    """`rowid` is SQLite's own; every other name is quoted."""
    return "rowid" if column == "rowid" else quote(column)


def _bind(params: dict[str, Any], value: Any) -> str:
    name = f"p{len(params)}"
    params[name] = value
    return f":{name}"


def keys_after(keys: Sequence[str], values: Sequence[Any], params: dict[str, Any]) -> str:
    """(k1 > :a) or (k1 = :a and k2 > :b) or ... — rows strictly after `values` in key order.
    A NULL key sorts first: after it comes every non-NULL value; equal to it is `is null`."""
    names = [None if v is None else _bind(params, v) for v in values]
    ors = []
    for i, key in enumerate(keys):
        ands = [_equal(column_sql(keys[j]), names[j]) for j in range(i)]
        col = column_sql(key)
        ands.append(f"{col} is not null" if names[i] is None else f"{col} > {names[i]}")
        ors.append("(" + " and ".join(ands) + ")")
    return "(" + " or ".join(ors) + ")"


def _equal(col: str, name: str | None) -> str:
    return f"{col} is null" if name is None else f"{col} = {name}"


def sorted_after(
    column: str, descending: bool, sort_value: Any, keys: Sequence[str], key_values: Sequence[Any],
    params: dict[str, Any],
) -> str:
    """WHERE for the rows after (`sort_value`, `key_values`) when sorting by `column` with the
    keys as tie-breaker. NULLs sort first ascending and last descending, as SQLite sorts."""
    key_clause = keys_after(keys, key_values, params)
    col = column_sql(column)
    if sort_value is None:
        if descending:
            return f"({col} is null and {key_clause})"
        return f"({col} is not null or ({col} is null and {key_clause}))"
    name = _bind(params, sort_value)
    if descending:
        return f"({col} < {name} or {col} is null or ({col} = {name} and {key_clause}))"
    return f"({col} > {name} or ({col} = {name} and {key_clause}))"

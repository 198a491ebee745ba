"""Keyset pagination: `next` tokens and the WHERE clauses that resume after them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lambdasette.query.quote import quote
from lambdasette.tilde import tilde_decode, tilde_encode

NULL_TOKEN = "$null"


def encode_token(values: Sequence[Any]) -> str:
    return ",".join(tilde_encode(str(v)) for v in values)


def decode_token(token: str) -> list[str]:
    return [tilde_decode(part) for part in token.split(",")]


def sort_token(sort_value: Any, key_values: Sequence[Any]) -> str:
    head = NULL_TOKEN if sort_value is None else tilde_encode(str(sort_value))
    return ",".join([head, *(tilde_encode(str(v)) for v in key_values)])


def keys_after(keys: list[str], params: dict[str, Any], values: list[str]) -> str:
    """(k1 > :a) or (k1 = :a and k2 > :b) or ... — rows strictly after `values`."""
    names = []
    for value in values:
        name = f"p{len(params)}"
        params[name] = value
        names.append(name)
    ors = []
    for i in range(len(keys)):
        ands = [f"{quote(keys[j])} = :{names[j]}" for j in range(i)]
        ands.append(f"{quote(keys[i])} > :{names[i]}")
        ors.append("(" + " and ".join(ands) + ")")
    return "(" + " or ".join(ors) + ")"


def sorted_after(
    column: str, descending: bool, token: str, keys: list[str], params: dict[str, Any]
) -> str | None:
    """WHERE for the page after `token` when sorting by `column` with a key tie-breaker."""
    parts = token.split(",")
    sort_raw, key_parts = parts[0], parts[1:]
    if len(key_parts) != len(keys):
        return None
    key_clause = keys_after(keys, params, [tilde_decode(p) for p in key_parts])
    col = quote(column)
    if sort_raw == NULL_TOKEN:
        if descending:
            return f"({col} is null and {key_clause})"
        return f"({col} is not null or ({col} is null and {key_clause}))"
    name = f"p{len(params)}"
    params[name] = tilde_decode(sort_raw)
    if descending:
        return f"({col} < :{name} or {col} is null or ({col} = :{name} and {key_clause}))"
    return f"({col} > :{name} or ({col} = :{name} and {key_clause}))"

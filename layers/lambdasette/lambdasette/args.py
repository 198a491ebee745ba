"""Query-string arguments: ordered, repeatable, as the API reads them."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterable


class Args:
    """An ordered multi-dict of query-string arguments."""

    __slots__ = ("items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self.items: list[tuple[str, str]] = list(items)

    @classmethod
    def parse(cls, query_string: str) -> Args:
        return cls(urllib.parse.parse_qsl(query_string, keep_blank_values=True))

    def get(self, key: str, default: str | None = None) -> str | None:
        for k, v in self.items:
            if k == key:
                return v
        return default

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self.items if k == key]

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self.items)

    def flag(self, key: str) -> bool:
        """Presence-style flags (`_nocount=1`): truthy if given a non-empty value."""
        return bool(self.get(key))

    def replaced(self, updates: list[tuple[str, str | None]]) -> Args:
        """Drop every key in `updates`, then append the non-None replacements."""
        keys = {k for k, _ in updates}
        kept = [(k, v) for k, v in self.items if k not in keys]
        return Args(kept + [(k, v) for k, v in updates if v is not None])

    def without(self, *keys: str) -> Args:
        return Args([(k, v) for k, v in self.items if k not in keys])

    def query_string(self) -> str:
        return urllib.parse.urlencode(self.items)


def ascii_count(raw: str | None, *, ceiling: int) -> int | None:
    """A non-negative integer written in ASCII digits, capped at `ceiling`; None for anything
    else. (`str.isdigit` accepts '²' and other digits `int` refuses, and `int` refuses more
    than 4,300 digits: both would be a 500.)"""
    if not raw or not raw.isascii() or not raw.isdigit():
        return None
    if len(raw) > len(str(ceiling)):
        return ceiling
    return min(int(raw), ceiling)

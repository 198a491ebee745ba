"""SQL identifier quoting: always double quotes, embedded quotes doubled."""

from __future__ import annotations


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'

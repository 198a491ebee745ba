"""Datasette's tilde-encoding of names and primary keys in URL path segments."""

from __future__ import annotations

import urllib.parse

_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


def tilde_encode(value: str) -> str:
    """Keep [A-Za-z0-9_-], a space becomes '+', every other UTF-8 byte '~XX'."""
    out = []
    for byte in value.encode("utf-8"):
        if byte in _SAFE:
            out.append(chr(byte))
        elif byte == 0x20:
            out.append("+")
        else:
            out.append(f"~{byte:02X}")
    return "".join(out)


def tilde_decode(value: str) -> str:
    # A literal '%' must survive the percent-decoding that follows.
    value = value.replace("%", "~25")
    return urllib.parse.unquote_plus(value.replace("~", "%"))

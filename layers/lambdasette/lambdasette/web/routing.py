"""Resolving a request path to what it names: instance, database, table, row, action."""

from __future__ import annotations

from dataclasses import dataclass, field

FORMATS = ("json", "csv", "jsono", "blob")


def decode_segment(raw: str) -> str:
    """Tilde-decode one raw path segment; percent-encoding is accepted as well."""
    out = bytearray()
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch in "~%" and _is_hex(raw[i + 1 : i + 3]):
            out.append(int(raw[i + 1 : i + 3], 16))
            i += 3
            continue
        if ch == "+":
            out.append(0x20)
        else:
            out += ch.encode("utf-8")
        i += 1
    return out.decode("utf-8", errors="replace")


def _is_hex(text: str) -> bool:
    return len(text) == 2 and all(c in "0123456789abcdefABCDEF" for c in text)


@dataclass
class Target:
    kind: str
    database: str | None = None
    table: str | None = None
    pk: list[str] = field(default_factory=list)
    format: str | None = None
    action: str | None = None

    @property
    def ext(self) -> str:
        return self.format or "json"


def split_format(segment: str) -> tuple[str, str | None]:
    for fmt in FORMATS:
        if segment.endswith("." + fmt):
            return segment[: -len(fmt) - 1], fmt
    return segment, None


def resolve(raw_path: str) -> Target:
    """`raw_path` is the still-encoded path, without the query string."""
    path = raw_path.strip("/")
    if not path:
        return Target("index")
    segments = path.split("/")
    segments[-1], fmt = split_format(segments[-1])
    if segments[0] == "-":
        rest = segments[1:]
        if not rest or rest == [""]:
            return Target("index", format=fmt)
        return Target("special", action="/".join(rest), format=fmt)
    database = decode_segment(segments[0])
    if len(segments) == 1:
        if database == "" and fmt:
            return Target("index", format=fmt)
        return Target("database", database=database, format=fmt)
    if segments[1] == "-":
        return Target("database-action", database=database, action="/".join(segments[2:]), format=fmt)
    table = decode_segment(segments[1])
    if len(segments) == 2:
        return Target("table", database=database, table=table, format=fmt)
    if segments[2] == "-":
        return Target("table-action", database=database, table=table, action="/".join(segments[3:]),
                      format=fmt)
    pk = [decode_segment(part) for part in segments[2].split(",")]
    if len(segments) == 3:
        return Target("row", database=database, table=table, pk=pk, format=fmt)
    if segments[3] == "-":
        return Target("row-action", database=database, table=table, pk=pk,
                      action="/".join(segments[4:]), format=fmt)
    return Target("unknown")

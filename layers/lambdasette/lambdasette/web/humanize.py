"""Times and restrictions as people read them: "3 minutes ago", "in 2 hours",
"view-table on demo/trees". Plain functions (no template engine), so tests and the JSON side
can use them too."""

from __future__ import annotations

import datetime
from typing import Any

_UNITS = [("year", 365 * 24 * 3600), ("month", 30 * 24 * 3600), ("day", 24 * 3600),
          ("hour", 3600), ("minute", 60)]


def span(seconds: int) -> str:
    """A duration in its largest whole unit: `3 minutes`, `1 hour`, `less than a minute`."""
    for name, size in _UNITS:
        if seconds >= size:
            count = seconds // size
            return f"{count} {name}{'' if count == 1 else 's'}"
    return "less than a minute"


def relative(when: int | None, now: int, *, never: str = "never") -> str:
    """`when` (epoch seconds) from `now`: `3 minutes ago`, `in 2 hours`, `just now`."""
    if when is None:
        return never
    delta = when - now
    if abs(delta) < 60:
        return "just now"
    return f"in {span(delta)}" if delta > 0 else f"{span(-delta)} ago"


def timestamp(when: int | None) -> str:
    """`when` as an exact UTC time (`2026-11-22 10:00 UTC`), for titles and tables."""
    if when is None:
        return ""
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(when: int | None) -> str:
    """`when` as an ISO 8601 UTC timestamp (for `<time datetime=...>`)."""
    if when is None:
        return ""
    return datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def restrictions(r: dict[str, Any] | None) -> list[str]:
    """Token restrictions as lines: `insert-row, view-table on demo/trees`; one line
    `everything its actor may do` when there are none."""
    if not r:
        return ["everything its actor may do"]
    lines = []
    if r.get("a"):
        lines.append(f"{', '.join(r['a'])} everywhere")
    for db, actions in (r.get("d") or {}).items():
        lines.append(f"{', '.join(actions)} on database {db}")
    for db, tables in (r.get("r") or {}).items():
        for table, actions in tables.items():
            lines.append(f"{', '.join(actions)} on {db}/{table}")
    return lines or ["nothing"]

"""Full-text search over FTS4/FTS5 tables: escaping user input, the match clause."""

from __future__ import annotations

import re

_SPLIT = re.compile(r'\s+|(".*?")')


def escape_fts(query: str) -> str:
    """Every term becomes a quoted phrase, so FTS operators are searched as words."""
    if query.count('"') % 2:
        query += '"'
    bits = [b for b in _SPLIT.split(query) if b and b != '""']
    return " ".join(b if b.startswith('"') else '"' + b + '"' for b in bits)

"""JSON text found in a cell (or bound for one): the one way lambdasette parses it - `_json=`
columns, the `json` column type's checks and rendering.

A cell is whatever a caller put there or a query made, so parsing it is bounded: Python's
parser raises RecursionError (not ValueError) past about 1,000 levels, where SQLite's JSON
accepts 1,000-2,000; a cell of `[{},{},...]` becomes Python objects some 25 times its size;
and a response may hold many cells. `parse` answers NOT_JSON - the text stays text - for
anything it will not parse: invalid JSON, nesting Python cannot follow, a cell longer than
`max_chars`, or more nodes than the response's `Nodes` budget has left.
"""

from __future__ import annotations

import json
from typing import Any

MiB = 1024 * 1024

# The longest cell `_json=` parses (characters); longer ones are rendered as text.
MAX_CHARS = 1 * MiB
# How many JSON values (nodes) one response's `_json=` cells may become: at 60-250 bytes of
# Python objects each, at most some 60-250 MB. The rest stays text.
MAX_NODES = 1_000_000


class _NotJson:
    def __repr__(self) -> str:
        return "NOT_JSON"


NOT_JSON: Any = _NotJson()


class Nodes:
    """What is left of one response's budget of parsed JSON values."""

    def __init__(self, limit: int = MAX_NODES) -> None:
        self.left = limit

    def take(self, text: str) -> bool:
        """Take what parsing `text` can make (an upper bound, counted at C speed: every
        value but the first follows a ',' or ':', or opens with '[' or '{'); False, taking
        nothing, if that is more than is left."""
        wanted = text.count(",") + text.count(":") + text.count("[") + text.count("{") + 1
        if wanted > self.left:
            return False
        self.left -= wanted
        return True


def parse(text: Any, *, max_chars: int | None = MAX_CHARS, nodes: Nodes | None = None) -> Any:
    """`text` parsed as JSON, or NOT_JSON (see the module's docstring). `max_chars` None: no
    length cap (for a value already bounded, e.g. by the request body's size)."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return NOT_JSON
    if not isinstance(text, str):
        return NOT_JSON
    if max_chars is not None and len(text) > max_chars:
        return NOT_JSON
    if nodes is not None and not nodes.take(text):
        return NOT_JSON
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError):
        return NOT_JSON

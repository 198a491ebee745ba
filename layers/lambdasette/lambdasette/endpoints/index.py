"""The instance page: `/.json`, every database the caller may see with a summary of its tables."""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.responses import Response

from lambdasette.endpoints.database import COUNT_CAP, table_summaries
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response

UNSTABLE = "This API is not part of Datasette's stable interface and may change at any time"


def index(ctx: Context) -> Response:
    """The instance: each database the caller may see, with up to five of its tables and
    views (0.65: an object keyed by database; 1.0a41: a list)."""
    ctx.ds.require(ctx.actor, "view-instance")
    body: dict[str, Any] = {}
    for name in ctx.ds.database_names():
        if not ctx.ds.can(ctx.actor, "view-database", name):
            continue
        conn, schema = ctx.open(name)
        tables, views = table_summaries(ctx, name, conn, schema, cap=COUNT_CAP if ctx.v10 else None)
        visible = [t for t in tables if not t["hidden"]]
        hidden = [t for t in tables if t["hidden"]]
        by_relationships = ctx.args.get("_sort") == "relationships"
        for t in visible:
            fks = t.pop("foreign_keys", None) or {}
            t.pop("count_truncated", None)
            # 0.65 counts a table's relationships only when asked to sort by them.
            t["num_relationships_for_sorting"] = (
                len(fks.get("incoming", [])) + len(fks.get("outgoing", [])) if by_relationships else 0
            )
        ordered = sorted(visible, key=lambda t: (t["num_relationships_for_sorting"], t["count"] or 0,
                                                 t["name"]), reverse=True)[:5]
        # Views fill what is left of the five places, in their order.
        truncated: list[dict[str, Any]] = ordered + views[: 5 - len(ordered)]
        body[name] = {
            "name": name,
            "hash": None,
            "color": hashlib.md5(name.encode("utf-8")).hexdigest()[:6],
            "path": "/" + tilde_encode(name),
            "tables_and_views_truncated": truncated,
            "tables_and_views_more": len(visible) + len(views) > 5,
            "tables_count": len(visible),
            "table_rows_sum": sum(t["count"] or 0 for t in visible),
            "show_table_row_counts": True,
            "hidden_table_rows_sum": sum(t["count"] or 0 for t in hidden),
            "hidden_tables_count": len(hidden),
            "views_count": len(views),
            "private": False,
        }
    if ctx.v10:
        # 1.0a41: a list, flagged unstable, with the instance's metadata.
        return json_response({"ok": True, "unstable": UNSTABLE, "databases": list(body.values()),
                              "metadata": ctx.ds.metadata.instance()})
    return json_response(body)

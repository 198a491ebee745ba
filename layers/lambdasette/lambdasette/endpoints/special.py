"""Instance-level pages under `/-/`: versions, settings, databases, actor."""

from __future__ import annotations

import sqlite3
import sys

from starlette.responses import Response

from lambdasette import __version__
from lambdasette.auth.actions import LAMBDASETTE_ACTIONS, REGISTRY
from lambdasette.tilde import tilde_encode
from lambdasette.web.context import Context
from lambdasette.web.responses import json_response

# The Datasette versions whose JSON APIs this one follows.
DATASETTE_READ, DATASETTE_WRITE = "0.65.5", "1.0a41"


def datasette_api(default_json_api: str) -> dict[str, str]:
    """Which Datasette each API follows, for a client deciding what it may send: reads as
    0.65 (or 1.0a41 when `default_json_api` is 1.0), 1.0a41 whenever a request asks for it
    (`?_extra=`, 1.0-only URLs), writes as 1.0a41."""
    return {"read": DATASETTE_WRITE if default_json_api == "1.0" else DATASETTE_READ,
            "read_on_request": DATASETTE_WRITE, "write": DATASETTE_WRITE}


def versions(ctx: Context) -> Response:
    ctx.ds.require(ctx.actor, "view-instance")
    conn = sqlite3.connect(":memory:")
    try:
        compile_options = [row[0] for row in conn.execute("pragma compile_options")]
        fts_versions = []
        for fts in ("FTS5", "FTS4", "FTS3"):
            try:
                conn.execute(f"CREATE VIRTUAL TABLE v{fts} USING {fts} (data)")
                fts_versions.append(fts)
            except sqlite3.OperationalError:
                continue
        try:
            json1 = conn.execute("select json('{}')").fetchone()[0] is not None
        except sqlite3.OperationalError:
            json1 = False
    finally:
        conn.close()
    body = {
        "python": {"version": ".".join(map(str, sys.version_info[:3])), "full": sys.version},
        "datasette": {"version": DATASETTE_READ, "note": f"lambdasette {__version__}"},
        # Which Datasette each API follows, for a client deciding what it may send.
        "lambdasette": {"version": __version__,
                        "datasette_api": datasette_api(ctx.ds.settings.default_json_api)},
        "asgi": "3.0",
        "sqlite": {
            "version": sqlite3.sqlite_version,
            "fts_versions": fts_versions,
            "extensions": {"json1": None} if json1 else {},
            "compile_options": compile_options,
        },
    }
    return json_response({"ok": True, **body} if ctx.v10 else body)


def settings(ctx: Context) -> Response:
    ctx.ds.require(ctx.actor, "view-instance")
    body = ctx.ds.settings.as_json()
    return json_response({"ok": True, **body} if ctx.v10 else body)


def databases(ctx: Context) -> Response:
    ctx.ds.require(ctx.actor, "view-instance")
    out = []
    for name in ctx.ds.database_names():
        if not ctx.ds.can(ctx.actor, "view-database", name):
            continue
        info = ctx.ds.storage.info(name)
        out.append({
            "name": name,
            "route": tilde_encode(name),
            "path": name,
            "size": info.size,
            "is_mutable": info.is_mutable,
            "is_memory": info.is_memory,
            "hash": None,
        })
    return json_response({"ok": True, "databases": out} if ctx.v10 else out)


def restore_drill(ctx: Context) -> Response:
    """The restore drill's latest report (run by the write function's scheduled maintenance,
    storage/drill.py): per database, whether a restore from the replica passed its integrity
    check and held the newest acknowledged transaction. Only databases the caller may see."""
    ctx.ds.require(ctx.actor, "view-instance")
    report = ctx.ds.storage.drill_report()
    if report is None:
        return json_response({"ok": None, "message": "No restore drill has run (or there is no replica)",
                              "databases": {}})
    visible = {name for name in report.get("databases") or {}
               if ctx.ds.can(ctx.actor, "view-database", name)}
    last = dict(report.get("last_run") or {})
    for key in ("drilled", "failed", "not_reached"):
        last[key] = [n for n in last.get(key) or [] if n in visible]
    body = {
        "ok": all(r.get("ok") is not False for n, r in report["databases"].items() if n in visible),
        "updated": report.get("updated"),
        "last_run": last,
        "databases": {n: r for n, r in report["databases"].items() if n in visible},
    }
    return json_response(body)


def actor(ctx: Context) -> Response:
    """Who the caller is (anyone may ask)."""
    return json_response({"ok": True, "actor": ctx.actor} if ctx.v10 else {"actor": ctx.actor})


def config(ctx: Context) -> Response:
    """`/-/config(.json)` is 0.65's old name for the settings page."""
    suffix = ".json" if ctx.target.format == "json" else ""
    return Response(b"", status_code=301, headers={"Location": f"/-/settings{suffix}"})


def plugins(ctx: Context) -> Response:
    """No plugins: lambdasette is one fixed program."""
    ctx.ds.require(ctx.actor, "view-instance")
    return json_response([])


def metadata(ctx: Context) -> Response:
    ctx.ds.require(ctx.actor, "view-instance")
    body = ctx.ds.metadata.as_json()
    return json_response({"ok": True, **body} if ctx.v10 else body)


def actions(ctx: Context) -> Response:
    """1.0a41's `/-/actions.json` (needs `permissions-debug`): every action Datasette 1.0a41
    registers, by name, with abbreviation, description, resource and `also_requires`; the
    actions only lambdasette has (`create-token`) under `lambdasette_actions`."""
    ctx.ds.require(ctx.actor, "permissions-debug",
                   message="You do not have permission to debug permissions (permissions-debug)")
    return json_response({
        "ok": True,
        "actions": [a.as_json() for a in sorted(REGISTRY, key=lambda a: a.name)],
        "lambdasette_actions": [a.as_json() for a in LAMBDASETTE_ACTIONS],
    })

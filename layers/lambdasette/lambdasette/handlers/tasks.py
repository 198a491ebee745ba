"""Invocations of the write function that do not come through API Gateway: EventBridge's
maintenance schedule and the import function's batches. IAM decides who may invoke the
function directly, so these carry no token."""

from __future__ import annotations

import time
from typing import Any

from lambdasette.instance import Lambdasette


def is_task(event: Any) -> bool:
    return isinstance(event, dict) and "lambdasette" in event


def run(ds: Lambdasette, event: dict[str, Any]) -> dict[str, Any]:
    task = event.get("lambdasette")
    if task == "maintenance":
        return maintenance(ds, float(event.get("seconds", 40)))
    if task == "import-batch":
        from lambdasette.imports.importing import apply_batch

        return apply_batch(ds, event)
    return {"ok": False, "error": f"Unknown task: {task!r}"}


def maintenance(ds: Lambdasette, seconds: float) -> dict[str, Any]:
    """Keep the writer awake for a while: Litestream compacts (and takes snapshots) only while
    its daemon runs, and Lambda freezes it between invocations. Restarts a dead daemon."""
    storage = ds.storage
    daemon = getattr(storage, "daemon", None)
    if daemon is None:
        return {"ok": True, "message": "no replica: nothing to maintain"}
    started = time.monotonic()
    names = storage.names()
    storage.open_all()  # restarts the daemon if it died; restores databases pushed since
    time.sleep(max(0.0, min(seconds, 600.0)))
    return {"ok": True, "databases": names, "awake_seconds": round(time.monotonic() - started, 1),
            "daemon_running": daemon.running()}

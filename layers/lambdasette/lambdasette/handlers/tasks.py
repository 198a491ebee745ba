"""Invocations of the write function that do not come through API Gateway: EventBridge's
maintenance schedule and the import function's batches. IAM decides who may invoke the
function directly, so these carry no token."""

from __future__ import annotations

from typing import Any

from lambdasette.instance import Lambdasette


def is_task(event: Any) -> bool:
    return isinstance(event, dict) and "lambdasette" in event


def run(ds: Lambdasette, event: dict[str, Any]) -> dict[str, Any]:
    task = event.get("lambdasette")
    if task == "maintenance":
        return maintenance(ds, float(event.get("seconds", 40)))
    if task == "restore-drill":  # the drill alone, now (maintenance runs it too)
        return ds.storage.drill()
    if task == "import-batch":
        from lambdasette.imports.sinks import apply_batch

        return apply_batch(ds, event)
    return {"ok": False, "error": f"Unknown task: {task!r}"}


def maintenance(ds: Lambdasette, seconds: float) -> dict[str, Any]:
    """Keep the writer awake for a while: Litestream compacts (and takes snapshots) only while
    its daemon runs, and Lambda freezes it between invocations. Meanwhile the restore drill
    restores each database into scratch space and checks it (`storage/drill.py`); its report
    is `/-/restore-drill.json`."""
    return ds.storage.maintain(seconds)

"""The import function's handler: an EventBridge schedule's event names the definition to run.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from lambdasette import logs
from lambdasette.imports.definition import load_definitions
from lambdasette.imports.runs import Progress, run
from lambdasette.imports.sinks import LambdaSink

log = logging.getLogger("lambdasette.imports")


def lambda_handler(event: Any, folder: Path, context: Any = None) -> dict[str, Any]:
    """EventBridge: the schedule's Input `{"import": NAME}`, or a raw "Scheduled Event" whose
    rule or schedule name ends with the definition's name. Definitions are read from `folder`.
    Logs a JSON line per page and one for the run (never secrets: URLs are scrubbed)."""
    logs.configure("stdout")
    request_id = getattr(context, "aws_request_id", None)
    available = {d.name: d for d in load_definitions(folder)}
    name = event.get("import") if isinstance(event, dict) else None
    if name is None and isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        for resource in event.get("resources", []):
            name = next((n for n in available if resource.endswith(n)), None)
            if name:
                break
    if name not in available:
        result = {"ok": False, "error": f"no import definition named {name!r} in {folder}"}
        log.error("Import %r not found", name, extra={"fields": {"request_id": request_id, **result}})
        return result
    sink = LambdaSink(os.environ["LAMBDASETTE_WRITE_FUNCTION"])

    logged = [0]

    def page_done(p: Progress) -> None:
        if p.pages == logged[0]:
            return  # the run's final update: its line follows
        logged[0] = p.pages
        log.info("Import %s: page %d", name, p.pages, extra={"fields": {
            "request_id": request_id, "import": name, "page": p.pages, "url": p.url,
            "page_records": p.page_records, "records": p.received, "rows_written": p.written}})

    result = run(available[name], sink, progress=Progress(listeners=[page_done]))
    level = logging.INFO if result["status"] == "ok" else logging.ERROR
    log.log(level, "Import %s: %s", name, result["status"],
            extra={"fields": {"request_id": request_id, "import": name, **result}})
    return result

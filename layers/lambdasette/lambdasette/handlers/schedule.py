"""The import function's handler: an EventBridge schedule's event names the definition to run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lambdasette.imports.definition import load_definitions
from lambdasette.imports.runs import run
from lambdasette.imports.sinks import LambdaSink


def lambda_handler(event: Any, folder: Path) -> dict[str, Any]:
    """EventBridge: the schedule's Input `{"import": NAME}`, or a raw "Scheduled Event" whose
    rule or schedule name ends with the definition's name. Definitions are read from `folder`."""
    available = {d.name: d for d in load_definitions(folder)}
    name = event.get("import") if isinstance(event, dict) else None
    if name is None and isinstance(event, dict) and event.get("detail-type") == "Scheduled Event":
        for resource in event.get("resources", []):
            name = next((n for n in available if resource.endswith(n)), None)
            if name:
                break
    if name not in available:
        return {"ok": False, "error": f"no import definition named {name!r} in {folder}"}
    sink = LambdaSink(os.environ["LAMBDASETTE_WRITE_FUNCTION"])
    result = run(available[name], sink)
    print(json.dumps({"import": name, **result}))  # the run, in CloudWatch Logs (never secrets)
    return result

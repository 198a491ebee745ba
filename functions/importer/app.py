"""Import function: EventBridge schedules (one per file in imports/) run an import, which
fetches and maps records here and hands each batch to the write function."""

import os
from pathlib import Path
from typing import Any

from lambdasette.handlers.schedule import lambda_handler

# The definitions ship with this function (imports/); LAMBDASETTE_IMPORTS_DIR points elsewhere.
DEFINITIONS = Path(os.environ.get("LAMBDASETTE_IMPORTS_DIR", Path(__file__).resolve().parent / "imports"))


def handler(event: Any, context: Any) -> dict[str, Any]:
    return lambda_handler(event, DEFINITIONS, context)

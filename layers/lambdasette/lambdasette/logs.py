"""Structured logs: one JSON object per line, the same in `lambdasette serve` and in Lambda.

Every line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; a record logged with
`extra={"fields": {...}}` adds those keys (the request log: `request_id`, `status`, ...), and one
logged with a traceback carries it as `traceback` - inside the line, so a search for a request
id finds the error and its traceback together (CloudWatch Logs keeps each line as one event).

The standard library does this in well under a millisecond at import; AWS Lambda Powertools'
`Logger` does the same and more but costs a cold start tens of milliseconds to import
(measured: README, "Logs"), so it is not used.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from typing import IO, Any

LOGGER = "lambdasette"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["traceback"] = self.formatException(record.exc_info)
        # default=str: a field that is not JSON (a Path, an exception) must never lose a line.
        return json.dumps(out, default=str)


class _StdHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to `sys.stdout` or `sys.stderr` as it is when a line is written, not as it was
    when logging was set up (a test's captured stream, a replaced one)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name_of_stream = name

    @property  # type: ignore[override]
    def stream(self) -> IO[str]:
        return getattr(sys, self.name_of_stream)

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # StreamHandler's constructor sets it; ours is always looked up


def configure(stream: str = "stderr", level: int = logging.INFO) -> logging.Logger:
    """Send the package's logs (`lambdasette` and below) to sys.`stream` ("stderr" or
    "stdout") as JSON lines, once: calling it again changes nothing. They do not propagate to
    the root logger, whose handler in Lambda would print each line a second time as text."""
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(h, _StdHandler) for h in logger.handlers):
        handler = _StdHandler(stream)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger

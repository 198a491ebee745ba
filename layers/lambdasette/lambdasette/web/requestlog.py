"""Request ids and the one log line per request, without secrets.

- `request_id`: the caller's `X-Request-Id` when it is a sane one (so a client's own id finds
  our line), else Lambda's request id (so our line and Lambda's REPORT line share it), else a
  new one.
- `RequestRecord`: what the line says - method, path, query, status, duration, bytes, database,
  actor and token id, request id, cold start - filled in as the dispatcher learns it.
- `redact_path`, `redact_query`: a token never reaches a log. Tokens travel in headers, which
  are never logged; a token or another well-known secret pasted into a URL is replaced, and so
  is every value of a parameter whose name says it is a secret (`api_key=`, `_token=`).
"""

from __future__ import annotations

import logging
import re
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lambdasette.request")

REQUEST_ID_HEADER = "X-Request-Id"
REDACTED = "[redacted]"

# Ids from a caller: printable, no spaces or quotes, short - they go into headers and logs.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+=/-]{0,127}")
# Secrets worth recognising by their shape wherever they appear: our tokens, JWTs, AWS access
# key ids, GitHub/OpenAI/Slack-style API keys.
_SECRET_VALUE = re.compile(
    r"lstok_[A-Za-z0-9_-]*"
    r"|eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"
    r"|\b(?:gh[pousr]|github_pat|sk|xox[abpr])[-_][A-Za-z0-9_-]{16,}"
)
# Parameter names that say their value is a secret (whole words within the name, so `monkey`
# and `keyboard` are not, `api_key`, `X-Auth-Token` and `key__exact` are).
_SECRET_NAME = re.compile(
    r"(?:^|[_.-])(?:token|secret|password|passwd|pwd|passphrase|key|apikey|auth|authorization"
    r"|signature|sig|credentials?|session|cookie|bearer)s?(?:$|[_.-])",
    re.IGNORECASE,
)
# A log line stays readable (and far below CloudWatch's 256 KB per event) whatever the URL.
MAX_QUERY_CHARS = 2000


def request_id(header: str | None, scope: dict[str, Any]) -> str:
    if header and _SANE_ID.fullmatch(header) and not _SECRET_VALUE.search(header):
        return header
    context = scope.get("aws.context")  # Mangum: the Lambda invocation's context
    lambda_id = getattr(context, "aws_request_id", None)
    if isinstance(lambda_id, str) and lambda_id:
        return lambda_id
    return str(uuid.uuid4())


def redact_path(path: str) -> str:
    return _SECRET_VALUE.sub(REDACTED, path)


def redact_query(query: str) -> str:
    """The raw query string with secret values replaced (names and order kept)."""
    parts = []
    for pair in query.split("&"):
        name, eq, value = pair.partition("=")
        if eq and value and _SECRET_NAME.search(urllib.parse.unquote_plus(name)):
            value = REDACTED
        parts.append(_SECRET_VALUE.sub(REDACTED, f"{name}{eq}{value}"))
    out = "&".join(parts)
    if len(out) > MAX_QUERY_CHARS:
        out = f"{out[:MAX_QUERY_CHARS]}...({len(out)} chars)"
    return out


@dataclass
class RequestRecord:
    """One request, as its log line tells it."""

    request_id: str
    method: str
    path: str
    query: str = ""
    cold_start: bool = False
    started: float = field(default_factory=time.perf_counter)
    status: int | None = None
    bytes: int = 0
    database: str | None = None
    actor_id: str | None = None
    token_id: str | None = None
    # A front's POST handed to the write function (B10): the writer's line, with the same
    # request id, tells how it ended; this one says the front passed it on.
    forwarded: bool = False

    def fields(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "method": self.method,
            "path": redact_path(self.path),
            "query": redact_query(self.query),
            "status": self.status,
            "duration_ms": round((time.perf_counter() - self.started) * 1000, 1),
            "bytes": self.bytes,
            "database": self.database,
            "actor_id": self.actor_id,
            "token_id": self.token_id,
            "cold_start": self.cold_start,
        }
        if self.forwarded:
            out["forwarded"] = True
        return out

    def context(self) -> dict[str, Any]:
        """What an error logged while handling this request carries, to be found with it."""
        return {"fields": {"request_id": self.request_id, "method": self.method,
                           "path": redact_path(self.path)}}

    def write(self) -> None:
        """The request's line: INFO, or WARNING for a 5xx (someone should look)."""
        status = self.status or 0
        level = logging.WARNING if status >= 500 else logging.INFO
        if log.isEnabledFor(level):
            log.log(level, "%s %s %s", self.method, redact_path(self.path), status,
                    extra={"fields": self.fields()})

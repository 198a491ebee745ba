"""Every error lambdasette raises on purpose, and the one place each becomes HTTP.

    LambdasetteError
    ├── ApiError            the client's request was judged: a status and messages, raised where
    │                       the judging happens (bad input 400, permission 403, missing 404, ...)
    ├── DatabaseNotFound    storage: no database by that name                       → 404
    ├── ReplicaUnavailable  storage: the replica cannot be reached, or a write could
    │                       not be made durable in time                             → 503, Retry-After
    │   └── DatabaseRestoring  storage: this copy is still being restored (or its first
    │                       snapshot uploaded) and the request's time is up; the work goes on
    │                       in the background                                       → 503, Retry-After
    ├── InsufficientStorage storage: the database does not fit in the local storage
    │                       this process may use, even after evicting what it can   → 507
    ├── InvalidToken        auth: a token that is malformed, bad, expired or revoked, or
    │                       minted from one that is revoked or expired              → 401, WWW-Authenticate
    ├── UnknownTransaction  storage: a read asked to wait for a transaction the replica
    │                       does not hold (no write was ever answered with it)      → 400
    ├── DataDirLocked       storage: another process holds the data directory (at start-up,
    │                       never an HTTP answer: the process refuses to start)
    └── ForwardToWriter     a front (the read function taking POSTs) found a request valid
                            up to its write: the write function serves it (not an error)

The layers below the web raise these; `web.app` maps them to responses (`as_api_error`), so
no endpoint translates a domain error itself. Anything else that escapes is a bug: it is
logged with its traceback and answered with a JSON 500.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any


class LambdasetteError(Exception):
    """The base of every error raised on purpose."""


class ApiError(LambdasetteError):
    """A client-visible error: `status` plus one or more messages (the contract's §4 body)."""

    def __init__(
        self,
        status: int,
        *messages: str,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__("; ".join(messages))
        self.status = status
        self.messages = list(messages) or ["Error"]
        self.title = title
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error": "; ".join(self.messages),
            "errors": self.messages,
            "status": self.status,
            "title": self.title,
        }
        body.update(self.extra)
        return body


def reject_unknown_keys(given: Iterable[str], allowed: Collection[str], *, sort: bool = True) -> None:
    """ApiError 400 `Invalid keys: a, b` (1.0a41's wording) for the keys of a body or query
    string that are not in `allowed`: sorted, or in the order given with `sort=False` (as
    1.0a41's update answers)."""
    unknown = [key for key in given if key not in allowed]
    if unknown:
        raise ApiError(400, f"Invalid keys: {', '.join(sorted(set(unknown)) if sort else unknown)}")


class DatabaseNotFound(LambdasetteError, KeyError):
    """No database by this name (the name is the error's only argument)."""

    def __str__(self) -> str:  # KeyError would quote it
        return str(self.args[0]) if self.args else ""

    @property
    def name(self) -> str:
        return str(self.args[0]) if self.args else ""


class ReplicaUnavailable(LambdasetteError):
    """The replica (S3 or file://) cannot be reached, or a commit could not be made durable
    in time. Nothing was acknowledged: the client may retry."""


class DatabaseRestoring(ReplicaUnavailable):
    """The database is being restored from the replica and is not ready within the time this
    request has (`budget`): the restore carries on, and a retry is served once it is done."""

    def __init__(self, name: str, detail: str, retry_after: int = 1) -> None:
        super().__init__(f"{name} is being restored from the replica ({detail}); "
                         "retry - the restore continues meanwhile")
        self.name = name
        self.retry_after = retry_after


class InsufficientStorage(LambdasetteError):
    """The database needs more local storage than this process may use (its data directory's
    size, e.g. Lambda's ephemeral storage), even after evicting every copy it could."""


class InvalidToken(LambdasetteError):
    """A token that cannot be valid (not `lstok_...`), or one in our format that is bad,
    expired or revoked, or whose chain (the tokens it was minted from) is no longer valid."""


class UnknownTransaction(LambdasetteError):
    """A read carried `X-Lambdasette-Txid: N` for a transaction beyond the newest the replica
    holds. A write is answered only once its transaction is in the replica, so no client was
    ever given N: waiting for it would only hold the reader."""

    def __init__(self, txid: int, newest: int) -> None:
        super().__init__(f"transaction {txid} is beyond the newest this database's replica holds ({newest})")
        self.txid, self.newest = txid, newest


class ForwardToWriter(LambdasetteError):
    """Raised in a front - a process that authenticates and authorizes POSTs but does not
    write (`Options.forward_writes`) - where a request would now write (the writer, or the
    token store): everything before it held, so the write function is to serve the request
    (`handlers.lambda_app` forwards it). Never an answer to a client."""


class DataDirLocked(LambdasetteError):
    """Another process holds the lock on this data directory: two processes working on one
    directory would delete and restore each other's copies."""

    def __init__(self, directory: str) -> None:
        super().__init__(f"the data directory {directory} is in use by another lambdasette process")
        self.directory = directory

"""The storage interface: where SQLite files are and how a connection to one is opened.

Everything above storage sees databases only by name. `LocalStorage` (storage/local.py)
serves files from disk; `ReplicatedStorage` (storage/replicated.py) keeps restored copies of
Litestream replicas.
"""

from __future__ import annotations

import sqlite3
import threading
import urllib.parse
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    size: int
    is_mutable: bool = True
    is_memory: bool = False


class Storage(Protocol):
    """Where databases live. Every method that takes a name raises DatabaseNotFound for a
    name the storage does not have; replicated storage may raise ReplicaUnavailable."""

    def names(self) -> list[str]:
        """Every database's name, in a stable order."""
        ...

    def info(self, name: str) -> DatabaseInfo:
        """The database's name and size, without making a copy of it."""
        ...

    def open_all(self) -> None:
        """Get every database ready to serve now (a no-op where files are simply there).
        Replicated storage otherwise gets each one ready on its first request."""
        ...

    def close(self) -> None:
        """Stop what the storage started (Litestream processes); connections stay usable
        for reading local copies."""
        ...

    def maintain(self, seconds: float) -> dict[str, Any]:
        """The write function's scheduled maintenance: keep replication running for up to
        `seconds`, and run the restore drill meanwhile; a JSON-able report of what was done."""
        ...

    def drill(self) -> dict[str, Any]:
        """The restore drill now, for as long as the current request's budget allows; its
        report (also kept for `drill_report`)."""
        ...

    def drill_report(self) -> dict[str, Any] | None:
        """The restore drill's latest report (`storage/drill.py`); None if none has run (or
        there is no replica to drill)."""
        ...

    def read_connection(self, name: str) -> sqlite3.Connection:
        """A read-only connection, owned by the calling thread; do not close it."""
        ...

    def connect(self, name: str) -> sqlite3.Connection:
        """A new read-only connection that the caller owns."""
        ...

    def write_connection(self, name: str) -> sqlite3.Connection:
        """A new read-write connection in autocommit mode; the writer owns it."""
        ...

    def make_durable(self, name: str) -> int | None:
        """Return once every committed transaction of `name` is durable (with the replica's
        transaction id, if there is a replica); raise ReplicaUnavailable if it cannot be."""
        ...

    def is_stale(self, name: str) -> bool:
        """Before a write: has someone else written a newer transaction than this copy has?"""
        ...

    def refresh(self, name: str) -> None:
        """Replace a stale copy (its write connection is closed first)."""
        ...

    def data_version(self, name: str) -> Hashable | None:
        """A value that changes with every transaction, when SQLite's data_version cannot tell."""
        ...

    def wait_for(self, name: str, txid: int, timeout: float) -> bool:
        """Wait until this copy has the replica's transaction `txid` (read-your-writes)."""
        ...


def read_only_uri(path: Path) -> str:
    return "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"


class ReadConnection(sqlite3.Connection):
    """A read connection that remembers what the query layer has set up on it: its SQL
    functions and limits (`prepared`, `query_state`), the guard (authorizer) it carries, and
    the schema version whose R*Tree tables it has opened (`warmed`)."""

    prepared: bool = False
    guard: object = None
    query_state: object = None
    warmed: object = None


def thread_connection(local: threading.local, name: str, key: Hashable, path: Path) -> sqlite3.Connection:
    """This thread's read-only connection to `name`, reused while `key` stays the same."""
    cache: dict[str, tuple[Hashable, sqlite3.Connection]] = local.__dict__.setdefault("connections", {})
    cached = cache.get(name)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    conn = open_read_only(path)
    cache[name] = (key, conn)
    return conn


def open_read_only(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(read_only_uri(path), uri=True, check_same_thread=False,
                           factory=ReadConnection)
    conn.execute("PRAGMA query_only = 1")
    return conn


def open_read_write(path: Path) -> sqlite3.Connection:
    # Autocommit at the driver level: the writer issues BEGIN IMMEDIATE / COMMIT itself.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    # WAL lets readers keep reading while a write commits (and is what Litestream needs);
    # synchronous=FULL so that a commit is on disk when it returns.
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def database_name(path: Path) -> str:
    return path.stem

"""Database change detection, so figures that depend only on the data can be cached."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Hashable
from typing import Any


class DataVersions:
    """A counter per database that moves whenever any connection commits to it.

    One watcher connection per database asks `PRAGMA data_version`, which changes
    when another connection (in any process) has committed since the last ask.
    """

    def __init__(self, opener: Callable[[str], sqlite3.Connection]) -> None:
        self._opener = opener
        self._watchers: dict[str, tuple[sqlite3.Connection, list[int]]] = {}
        self._lock = threading.Lock()

    def version(self, name: str) -> Hashable:
        with self._lock:
            watcher = self._watchers.get(name)
            if watcher is None:
                conn = self._opener(name)
                watcher = (conn, [conn.execute("PRAGMA data_version").fetchone()[0], 0])
                self._watchers[name] = watcher
            conn, state = watcher
            current = conn.execute("PRAGMA data_version").fetchone()[0]
            if current != state[0]:
                state[0] = current
                state[1] += 1
            return (id(conn), state[1])


class VersionedCache:
    """Values keyed by (database, data version, key); stale versions are dropped."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._data: dict[tuple[str, Hashable], dict[Hashable, Any]] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def get(self, database: str, version: Hashable, key: Hashable) -> Any:
        bucket = self._data.get((database, version))
        return None if bucket is None else bucket.get(key)

    def put(self, database: str, version: Hashable, key: Hashable, value: Any) -> None:
        with self._lock:
            for stale in [k for k in self._data if k[0] == database and k[1] != version]:
                del self._data[stale]
            bucket = self._data.setdefault((database, version), {})
            if len(bucket) >= self._max:
                bucket.clear()
            bucket[key] = value

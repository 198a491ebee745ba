"""Local storage: SQLite files in folders or given one by one (the embedded default)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from lambdasette.errors import DatabaseNotFound
from lambdasette.storage.base import (
    DatabaseInfo,
    database_name,
    open_read_only,
    open_read_write,
    thread_connection,
)


class LocalStorage:
    """SQLite files in local folders or given one by one."""

    def __init__(self, paths: list[Path]) -> None:
        self._files: dict[str, Path] = {}
        self._dirs: list[Path] = []
        for path in paths:
            if path.is_dir():
                self._dirs.append(path)
            else:
                self._files[database_name(path)] = path
        self._local = threading.local()

    def _all(self) -> dict[str, Path]:
        found = dict(self._files)
        for folder in self._dirs:
            for child in sorted(folder.iterdir()):
                if child.suffix in (".db", ".sqlite", ".sqlite3") and child.is_file():
                    found.setdefault(database_name(child), child)
        return found

    def names(self) -> list[str]:
        return list(self._all())

    def open_all(self) -> None:
        pass  # files on disk are ready as they are

    def close(self) -> None:
        pass

    def maintain(self, seconds: float) -> dict[str, Any]:
        return {"ok": True, "message": "no replica: nothing to maintain"}

    def path(self, name: str) -> Path:
        path = self._files.get(name)
        if path is None:
            path = self._all().get(name)
        if path is None or not path.exists():
            raise DatabaseNotFound(name)
        return path

    def info(self, name: str) -> DatabaseInfo:
        return DatabaseInfo(name=name, size=self.path(name).stat().st_size)

    def connect(self, name: str) -> sqlite3.Connection:
        return open_read_only(self.path(name))

    def write_connection(self, name: str) -> sqlite3.Connection:
        return open_read_write(self.path(name))

    def make_durable(self, name: str) -> None:
        """A local commit with synchronous=FULL is on disk when COMMIT returns."""

    def is_stale(self, name: str) -> bool:
        return False  # local files have no other writer to be behind

    def refresh(self, name: str) -> None:
        pass

    def data_version(self, name: str) -> Hashable | None:
        return None

    def wait_for(self, name: str, txid: int, timeout: float) -> bool:
        return True

    def read_connection(self, name: str) -> sqlite3.Connection:
        path = self.path(name)
        stat = os.stat(path)
        # Reopened if the file was replaced (a new inode), e.g. by a restore.
        return thread_connection(self._local, name, (stat.st_dev, stat.st_ino), path)

"""Local storage: SQLite files in folders or given one by one (the embedded default).

A folder serves its `*.db`, `*.sqlite` and `*.sqlite3` files, except hidden ones (a leading
dot: internal files by convention) and the protected files (`datadir.Protected`: the token
store and its companions, however they are linked into the folder). Naming a protected file
on its own is refused outright.
"""

from __future__ import annotations

import os
import sqlite3
import stat
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
from lambdasette.storage.datadir import Protected

SUFFIXES = (".db", ".sqlite", ".sqlite3")


class LocalStorage:
    """SQLite files in local folders or given one by one."""

    def __init__(self, paths: list[Path], protected: Protected | None = None) -> None:
        """ValueError if one of `paths` is a protected file (the token store)."""
        self.protected = protected or Protected()
        self._files: dict[str, Path] = {}
        self._dirs: list[Path] = []
        for path in paths:
            if path.is_dir():
                self._dirs.append(path)
            elif self.protected.covers(path):
                raise ValueError(f"{path} is the token store (or part of it): it is never served "
                                 "as a database")
            else:
                self._files[database_name(path)] = path
        self._local = threading.local()

    def _all(self) -> dict[str, Path]:
        found = dict(self._files)
        if not self._dirs:
            return found
        protected = {(s.st_dev, s.st_ino) for s in map(_stat, self.protected.paths) if s is not None}
        for folder in self._dirs:
            for child in sorted(folder.iterdir()):
                if child.suffix not in SUFFIXES or child.name.startswith("."):
                    continue
                found_stat = _stat(child)  # follows symlinks: a link to the store is the store
                if found_stat is None or not stat.S_ISREG(found_stat.st_mode):
                    continue
                if (found_stat.st_dev, found_stat.st_ino) in protected:
                    continue
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

    def drill(self) -> dict[str, Any]:
        return {"ok": True, "message": "no replica: nothing to drill"}

    def drill_report(self) -> dict[str, Any] | None:
        return None  # files on disk: no replica to restore from

    def path(self, name: str) -> Path:
        path = self._files.get(name)
        if path is not None and self.protected.covers(path):
            path = None  # replaced by a link to the token store since start-up
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


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None

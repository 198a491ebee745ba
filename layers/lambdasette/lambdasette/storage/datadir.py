"""What storage must never touch as a database, and the lock that keeps one process per
data directory.

- `Protected`: files that are never served, listed or written as a database whatever their
  name or the path used to reach them - the token store (which holds every token's hash: served
  as data, anyone could read it, and a caller allowed to insert rows could mint a root token)
  and its SQLite companions (`-wal`, `-shm`, `-journal`). Matched by real path (symlinks) and
  by inode (hard links).
- `DataDirLock`: an exclusive `flock` on `<data dir>/.lambdasette.lock`, held while the
  process runs. Two processes on one data directory would delete and restore each other's
  copies; the second one is refused at once (`DataDirLocked`). The kernel releases the lock
  when the process ends, however it ends, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path

from lambdasette.errors import DataDirLocked

SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")
LOCK_NAME = ".lambdasette.lock"


class Protected:
    """Files that are never a database (see the module's docstring)."""

    def __init__(self, files: Iterable[Path] = ()) -> None:
        # Companions sit next to the file SQLite really opens: the link's target's name.
        bases = dict.fromkeys(base for f in files for base in (os.path.abspath(f), os.path.realpath(f)))
        self.paths = [Path(f"{base}{suffix}") for base in bases for suffix in SQLITE_COMPANIONS]
        self._real = {os.path.realpath(p) for p in self.paths}

    def __bool__(self) -> bool:
        return bool(self.paths)

    def covers(self, path: Path) -> bool:
        """Is `path` - or what it links to - one of the protected files?"""
        if not self.paths:
            return False
        if os.path.realpath(path) in self._real:
            return True
        try:
            stat = os.stat(path)
        except OSError:
            return False
        return self.covers_inode(stat.st_dev, stat.st_ino)

    def covers_inode(self, dev: int, ino: int) -> bool:
        """Is the file with this inode one of the protected files (a hard link to one)?"""
        for protected in self.paths:
            try:
                stat = os.stat(protected)
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) == (dev, ino):
                return True
        return False


class DataDirLock:
    """An exclusive lock on a data directory for as long as this object is open."""

    def __init__(self, directory: Path) -> None:
        self._fd: int | None = None
        self.directory = directory.resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DataDirLocked(str(self.directory)) from None
        # Who holds it, for whoever finds the file; the lock itself is the flock.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def __del__(self) -> None:
        self.release()

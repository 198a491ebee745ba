"""`lambdasette db push|pull|list`: put a SQLite file into a replica, get one back."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from lambdasette.errors import ReplicaUnavailable
from lambdasette.storage.litestream import Daemon, Replica, commit_nothing

Progress = Callable[[str, int, int], None]  # (phase, done, total)


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def push(replica: Replica, source: Path, name: str, progress: Progress | None = None,
         timeout: float = 3600.0) -> int:
    """Publish `source` as database `name`; returns its first transaction id. Refuses to
    overwrite a database the replica already has."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid database name: {name!r}")
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if check.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise ValueError(f"{source} fails PRAGMA quick_check")
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{source} is not a SQLite database: {exc}") from None
    finally:
        check.close()
    if name in replica.names():
        raise ValueError(f"the replica already has a database named {name}")
    work = Path(tempfile.mkdtemp(prefix="lambdasette-push-"))
    try:
        path = work / f"{name}.db"
        # SQLite's backup API: a consistent copy even if the source is in use.
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(str(path))
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode = WAL")  # what litestream replicates
        finally:
            src.close()
            dst.close()
        total = path.stat().st_size
        daemon = Daemon(replica, work)
        daemon.databases[name] = path
        daemon.start()
        try:
            commit_nothing(path)  # the first sync then snapshots the whole file
            result: dict[str, object] = {}

            def sync() -> None:
                try:
                    result["txid"] = daemon.sync(name, timeout)
                except Exception as exc:  # surfaced below, in the caller's thread
                    result["error"] = exc

            thread = threading.Thread(target=sync, daemon=True)
            thread.start()
            meta = work / f".{name}.db-litestream"
            while thread.is_alive():
                if progress:
                    progress("snapshot", min(_bytes_under(meta), total), total)
                thread.join(0.2)
            if "error" in result:
                raise ReplicaUnavailable(str(result["error"]))
            if progress:
                progress("done", total, total)
            return int(result["txid"])  # type: ignore[arg-type]
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pull(replica: Replica, name: str, output: Path, timestamp: str | None = None) -> None:
    """Restore `name` (as of `timestamp`, RFC 3339, if given) into `output`."""
    if output.exists():
        raise ValueError(f"{output} already exists")
    if name not in replica.names():
        raise ValueError(f"the replica has no database named {name}")
    output.parent.mkdir(parents=True, exist_ok=True)
    replica.restore(name, output, timestamp=timestamp)


def bar(phase: str, done: int, total: int) -> None:
    """A one-line progress bar on stderr."""
    width = 30
    filled = int(width * done / total) if total else width
    label = "uploaded" if phase == "done" else "snapshot"
    sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                     f"{done / 1e6:.1f}/{total / 1e6:.1f} MB  {time.strftime('%H:%M:%S')}")
    if phase == "done":
        sys.stderr.write("\n")
    sys.stderr.flush()

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
from typing import Any

from lambdasette.errors import ReplicaUnavailable
from lambdasette.storage.litestream import Daemon, Replica, commit_nothing

# (phase, done, total): "restore" (replacing: fetching the current copy), "snapshot" (the
# local file litestream will upload, bytes written), "upload" (bytes sent so far),
# "confirm" (waiting for the replica's answer where bytes sent cannot be seen), "done".
Progress = Callable[[str, int, int], None]


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


# Litestream writes a little besides the snapshot and its upload (its log, its state): below
# this, bytes written are not yet taken for the upload.
UPLOAD_NOISE = 64 * 1024


def _bytes_written(pid: int) -> int | None:
    """Bytes a process has passed to write(2), sockets included (Linux's /proc/PID/io
    `wchar`); None where that cannot be read. Litestream writes the snapshot to its local
    folder and then sends it: what it wrote beyond the snapshot is what it has uploaded."""
    try:
        with open(f"/proc/{pid}/io") as io:
            for line in io:
                if line.startswith("wchar:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def check_source(source: Path) -> None:
    """ValueError unless `source` is a readable, intact SQLite file."""
    if not source.exists():
        raise ValueError(f"no such file: {source}")
    if source.is_dir():
        raise ValueError(f"{source} is a folder: give the SQLite file to push")
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        if check.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise ValueError(f"{source} fails PRAGMA quick_check")
    except sqlite3.DatabaseError as exc:
        raise ValueError(f"{source} is not a SQLite database: {exc}") from None
    finally:
        check.close()


def push(replica: Replica, source: Path, name: str, progress: Progress | None = None,
         timeout: float = 3600.0, *, replace: bool = False) -> int:
    """Publish `source` as database `name`; returns the transaction id that holds it.

    A database the replica already has is refused unless `replace`: then its newest copy is
    restored, `source`'s content goes into it as one more transaction, and that is uploaded -
    the replica's history goes on (point-in-time restores still reach the old content), and
    readers following it and the writer (whose fencing sees the newer transaction) pick the
    new content up as they would any write."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid database name: {name!r}")
    check_source(source)
    exists = name in replica.names()
    if exists and not replace:
        raise ValueError(f"the replica already has a database named {name}: add --replace to replace "
                         f"its content with {source}")
    work = Path(tempfile.mkdtemp(prefix="lambdasette-push-"))
    try:
        path = work / f"{name}.db"
        if exists:
            if progress:
                progress("restore", 0, 0)
            replica.restore(name, path)
            _wal(path)
        else:
            _copy(source, path)  # SQLite's backup API: consistent even if the source is in use
        daemon = Daemon(replica, work)
        daemon.databases[name] = path
        daemon.start()
        try:
            if exists:
                _replace_content(source, path, work)
            else:
                commit_nothing(path)  # the first sync then snapshots the whole file
            return _sync(daemon, name, work, path.stat().st_size, progress, timeout)
        finally:
            daemon.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _wal(path: Path) -> None:
    conn = sqlite3.connect(str(path))
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # what litestream replicates
    finally:
        conn.close()


def _copy(source: Path, path: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(str(path))
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
    finally:
        src.close()
        dst.close()


def _replace_content(source: Path, path: Path, work: Path) -> None:
    """`source`'s content into the replicated copy at `path`, as one transaction. SQLite
    cannot back up into a WAL database of another page size: such a source is first copied
    at the copy's page size."""
    dst = sqlite3.connect(str(path), timeout=30)
    try:
        page_size = dst.execute("PRAGMA page_size").fetchone()[0]
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            if src.execute("PRAGMA page_size").fetchone()[0] != page_size:
                resized = work / "resized.db"
                staging = sqlite3.connect(str(resized), isolation_level=None)
                try:
                    src.backup(staging)
                    staging.execute("PRAGMA journal_mode = DELETE")
                    staging.execute(f"PRAGMA page_size = {int(page_size)}")
                    staging.execute("VACUUM")
                finally:
                    staging.close()
                src.close()
                src = sqlite3.connect(str(resized))
            src.backup(dst)
        finally:
            src.close()
    finally:
        dst.close()


def _sync(daemon: Daemon, name: str, work: Path, size: int, progress: Progress | None,
          timeout: float) -> int:
    """Wait for litestream to have the database in the replica, telling `progress` how the
    local snapshot and then its upload are coming along."""
    result: dict[str, object] = {}

    def sync() -> None:
        try:
            result["txid"] = daemon.sync(name, timeout)
        except Exception as exc:  # surfaced below, in the caller's thread
            result["error"] = exc

    thread = threading.Thread(target=sync, daemon=True)
    thread.start()
    meta = work / f".{name}.db-litestream"
    pid = daemon.proc.pid if daemon.proc is not None else None
    start = _bytes_written(pid) if pid else None
    while thread.is_alive():
        if progress:
            snapshot = _bytes_under(meta)
            written = _bytes_written(pid) if pid else None
            if written is None or start is None:
                progress("confirm" if snapshot >= size else "snapshot", min(snapshot, size), size)
            else:
                sent = written - start - snapshot  # what litestream wrote beyond its snapshot
                if sent >= snapshot > 0:
                    progress("confirm", snapshot, snapshot)  # all sent: S3's answer is due
                elif sent > UPLOAD_NOISE:
                    progress("upload", sent, snapshot)
                else:
                    progress("snapshot", min(snapshot, size), size)
        thread.join(0.1)
    if "error" in result:
        raise ReplicaUnavailable(str(result["error"]))
    if progress:
        written = _bytes_written(pid) if pid else None
        snapshot = _bytes_under(meta)
        if written is not None and start is not None and snapshot:
            # What was sent in all, and at what rate: a small file is sent between two looks.
            progress("upload", max(0, min(written - start - snapshot, snapshot)), snapshot)
        progress("done", size, size)
    return int(result["txid"])  # type: ignore[arg-type]


def pull(replica: Replica, name: str, output: Path, timestamp: str | None = None) -> None:
    """Restore `name` (as of `timestamp`, RFC 3339, if given) into `output`."""
    if output.exists():
        raise ValueError(f"{output} already exists")
    if name not in replica.names():
        raise ValueError(f"the replica has no database named {name}")
    output.parent.mkdir(parents=True, exist_ok=True)
    replica.restore(name, output, timestamp=timestamp)


class ProgressBar:
    """A one-line progress bar on stderr: what is happening, bytes, and the rate."""

    LABELS = {"restore": "restoring the current copy", "snapshot": "preparing",
              "upload": "uploading", "confirm": "waiting for the replica", "done": "uploaded"}

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.sending: float | None = None  # when the snapshot was ready and sending began

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase in ("restore", "snapshot"):
            self.sending = now
        width = 30
        filled = int(width * done / total) if total else 0
        line = f"\r{self.LABELS.get(phase, phase)} [{'#' * filled}{'.' * (width - filled)}]"
        if total:
            line += f" {size(done)} of {size(total)}"
        elapsed = now - (self.sending or self.started)
        if phase == "upload" and elapsed > 0.05:
            line += f"  {size(int(done / elapsed))}/s"
        line += f"  {now - self.started:.0f} s"
        self.stream.write(f"{line:<100}")
        if phase == "done":
            self.stream.write("\n")
        self.stream.flush()


def size(n: int) -> str:
    """Bytes for people: 812 B, 3.4 KB, 12.0 MB, 1.2 GB."""
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"

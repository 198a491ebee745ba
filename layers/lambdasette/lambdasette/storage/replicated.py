"""Databases that live in a Litestream replica (S3, or file:// in development).

Every process works on local copies under `data_dir`:

- role "write" (the write function): restores each database fresh, replicates them all with
  one `litestream replicate` daemon, checks before each write that nobody else has written
  since (fencing; a stale copy is re-restored), and acknowledges a write only once the
  daemon says it is in the replica.
- role "read" (the read function): each database is restored and then followed
  (`litestream restore -f`); every request gets a connection that sees the newest applied
  transaction, and may wait for one it names (read-your-writes).
- role "all" (one local process): the writer's copies also serve the reads.

The data directory belongs to one process: it is locked (`datadir.DataDirLock`) for as long
as the storage is open, and a second process on it is refused at once. A database whose copy
would be a protected file (the token store, when it lives in the data directory) is neither
listed nor restored.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from lambdasette.errors import DatabaseNotFound, ReplicaUnavailable
from lambdasette.storage.base import (
    DatabaseInfo,
    open_read_only,
    open_read_write,
    thread_connection,
)
from lambdasette.storage.datadir import DataDirLock, Protected
from lambdasette.storage.litestream import (
    Daemon,
    Follower,
    Replica,
    commit_nothing,
    remove_database,
)

NAMES_TTL = 2.0  # seconds a listing of the replica is reused


class ReplicatedStorage:
    def __init__(self, replica: Replica, data_dir: Path, role: str = "all", *,
                 sync_timeout: float = 30.0, follow_interval: str = "200ms",
                 restore_timeout: float = 300.0, fresh_reads: bool = True, fresh_wait: float = 5.0,
                 protected: Protected | None = None, lock: DataDirLock | None = None) -> None:
        """`lock`: the data directory's lock, when the caller took it already (before doing
        anything else); otherwise it is taken here. DataDirLocked if another process has it."""
        if role not in ("read", "write", "all"):
            raise ValueError(f"role must be read, write or all, not {role}")
        self.lock = lock if lock is not None and lock.held else DataDirLock(data_dir)
        self.protected = protected or Protected()
        self._protected_names: dict[str, bool] = {}
        self.replica = replica
        self.role = role
        self.sync_timeout = sync_timeout
        self.follow_interval = follow_interval
        self.restore_timeout = restore_timeout
        self.fresh_reads = fresh_reads
        self.fresh_wait = fresh_wait
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._names: tuple[float, list[str]] = (0.0, [])
        self._local = threading.local()
        self.daemon: Daemon | None = None
        self.followers: dict[str, Follower] = {}
        self.synced: dict[str, int] = {}  # the replica txid of each database's last confirmed sync
        if role in ("write", "all"):
            self.daemon = Daemon(replica, self.dir)

    @classmethod
    def configured(cls, replica_url: str, data_dir: Path, role: str, settings: Any, *,
                   protected: Protected | None = None, lock: DataDirLock | None = None
                   ) -> ReplicatedStorage:
        """From a replica URL and the instance's settings (the CLI and Lambda share this)."""
        return cls(Replica(replica_url), data_dir, role, sync_timeout=settings.replica_sync_timeout_s,
                   fresh_reads=settings.replica_fresh_reads, fresh_wait=settings.txid_wait_ms / 1000,
                   protected=protected, lock=lock)

    # -- which databases ------------------------------------------------------------------------

    def names(self) -> list[str]:
        when, names = self._names
        if time.monotonic() - when > NAMES_TTL:
            try:
                names = [n for n in self.replica.names() if not self._is_protected(n)]
            except ReplicaUnavailable:
                pass  # serve what we know rather than fail every listing
            self._names = (time.monotonic(), names)
        return list(names)

    def _known(self, name: str) -> bool:
        if name in self._names[1]:
            return True
        self._names = (0.0, [])  # a database pushed since the last listing
        return name in self.names()

    def local_path(self, name: str) -> Path:
        return self.dir / f"{name}.db"

    def _is_protected(self, name: str) -> bool:
        """Would the copy of `name` be a protected file? Asked once per name: the copy's path
        is ours and fixed (a restore replaces whatever was there, links included)."""
        known = self._protected_names.get(name)
        if known is None:
            known = self._protected_names[name] = self.protected.covers(self.local_path(name))
        return known

    # -- starting up ----------------------------------------------------------------------------

    def open_all(self) -> None:
        """Get every database of the replica ready (what a cold start does)."""
        for name in self.names():
            self._ready(name)

    def _ready(self, name: str) -> Path:
        """The local copy of `name`, restored (and replicated or followed) on first use."""
        path = self.local_path(name)
        if self._is_protected(name):
            raise DatabaseNotFound(name)  # never restore over the token store
        with self._lock:
            if self.daemon is not None:
                if name not in self.daemon.databases:
                    if not self._known(name):
                        raise DatabaseNotFound(name)
                    self._restore_for_writing(name)
                elif not self.daemon.running():
                    self._start_daemon()
            else:
                follower = self.followers.get(name)
                if follower is None or not follower.running():
                    if not self._known(name):
                        raise DatabaseNotFound(name)
                    follower = Follower(self.replica, name, path, self.follow_interval)
                    follower.start(self.restore_timeout)
                    self.followers[name] = follower
        return path

    def _restore_for_writing(self, name: str) -> None:
        """A fresh copy from the replica: a copy left from an earlier run may be stale, and
        replicating from a stale copy would overwrite other writers' transactions."""
        assert self.daemon is not None
        path = self._fresh_copy(name)
        if self.daemon.running():
            self.daemon.add(name, path)
            self._prewarm(name)
        else:
            self.daemon.databases[name] = path
            self._start_daemon()  # pre-warms every database, this one included

    def _fresh_copy(self, name: str) -> Path:
        path = self.local_path(name)
        remove_database(path)
        self.replica.restore(name, path)
        open_read_write(path).close()  # WAL, as litestream needs
        return path

    def _start_daemon(self) -> None:
        assert self.daemon is not None
        self.daemon.start()
        for name in self.daemon.databases:
            self._prewarm(name)

    def _prewarm(self, name: str) -> None:
        """Litestream 0.5.17 uploads a full snapshot on the first sync after it starts; pay for
        it now rather than inside the first write's timeout. The transaction leaves nothing."""
        assert self.daemon is not None
        commit_nothing(self.local_path(name))
        self.synced[name] = self.daemon.sync(name, max(self.sync_timeout, 120.0))

    def maintain(self, seconds: float) -> dict[str, Any]:
        """Keep the writer's daemon running for `seconds` (at most 600): Litestream compacts
        and takes snapshots only while it runs, and Lambda freezes it between invocations.
        Restarts a dead daemon and restores databases pushed since the last start."""
        if self.daemon is None:
            return {"ok": True, "message": "no replica daemon in this process: nothing to maintain"}
        started = time.monotonic()
        names = self.names()
        self.open_all()
        time.sleep(max(0.0, min(seconds, 600.0)))
        return {"ok": True, "databases": names, "awake_seconds": round(time.monotonic() - started, 1),
                "daemon_running": self.daemon.running()}

    def close(self) -> None:
        with self._lock:
            if self.daemon is not None:
                self.daemon.stop()
            for follower in self.followers.values():
                follower.stop()
            self.lock.release()

    # -- the Storage interface ------------------------------------------------------------------

    def info(self, name: str) -> DatabaseInfo:
        return DatabaseInfo(name=name, size=self._ready(name).stat().st_size)

    def connect(self, name: str) -> sqlite3.Connection:
        return open_read_only(self._ready(name))

    def freshen(self, name: str) -> None:
        """Fresh reads: ask the replica for its newest transaction (one LIST) and wait, bounded,
        until this copy has applied it - so a read sees every write acknowledged before it."""
        follower = self.followers.get(name)
        if follower is None:
            return
        try:
            latest = self.replica.latest_after(name, follower.txid())
        except ReplicaUnavailable:
            return  # serve the copy we have rather than fail the read
        if latest is not None:
            follower.wait_for(latest, self.fresh_wait)

    def read_connection(self, name: str) -> sqlite3.Connection:
        """This thread's connection, reopened whenever a newer transaction has been applied:
        a long-lived connection to a followed copy would keep serving stale pages."""
        path = self._ready(name)
        if self.fresh_reads:
            self.freshen(name)
        return thread_connection(self._local, name, self.data_version(name), path)

    def data_version(self, name: str) -> Hashable | None:
        follower = self.followers.get(name)
        if follower is not None:
            return ("txid", follower.txid())
        return None  # the writer's own WAL copy: SQLite's data_version sees its commits

    def wait_for(self, name: str, txid: int, timeout: float) -> bool:
        self._ready(name)
        follower = self.followers.get(name)
        if follower is None:
            return True  # reads come from the writer's copy, which has every acknowledged write
        return follower.wait_for(txid, timeout)

    def write_connection(self, name: str) -> sqlite3.Connection:
        if self.daemon is None:
            raise ReplicaUnavailable("this process only reads")
        return open_read_write(self._ready(name))

    def is_stale(self, name: str) -> bool:
        """Fencing, before each write: has anyone written a newer transaction to the replica?
        Compared with the txid of our last confirmed sync, so no call to litestream is needed;
        after a failed sync, litestream is asked where this copy stands."""
        self._ready(name)
        assert self.daemon is not None
        with self._lock:
            if not self.daemon.running():
                self._start_daemon()
            txid = self.synced.get(name)
            if txid is None:
                txid = self.daemon.txid(name)
            return self.replica.newer_than(name, txid)

    def refresh(self, name: str) -> None:
        """Replace a stale copy with the replica's (its connections must be closed first).
        The daemon holds the file open, so it stops while the copy is replaced."""
        assert self.daemon is not None
        with self._lock:
            self.daemon.stop()
            self._fresh_copy(name)
            self._start_daemon()

    def make_durable(self, name: str) -> int:
        assert self.daemon is not None
        self.synced.pop(name, None)
        txid = self.daemon.sync(name, self.sync_timeout)
        self.synced[name] = txid
        return txid

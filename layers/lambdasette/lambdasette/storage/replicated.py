"""Databases that live in a Litestream replica (S3, or file:// in development).

Every process works on local copies under `data_dir`, made when a request first needs them -
never all at once at start: a cold start costs what its first request needs, whatever the size
of the space.

- role "read" (the read function): the first request for a database restores it and follows
  it (`litestream restore -f`, `Follower`); every request gets a connection that sees the
  newest applied transaction, and may wait for one it names (read-your-writes). Followers are
  paused (SIGSTOP) while nothing needs them to poll S3, stopped after `idle_stop` seconds
  without a request (their copies stay and catch up on the next use), and both the number of
  live followers and the bytes of copies are capped (`limits.Limits`): the least recently
  used is evicted first, with a log line saying so.
- role "write" (the write function): restores only the databases it is asked to write,
  replicates them with one `litestream replicate` daemon, checks before each write that nobody
  else has written since (fencing; a stale copy is re-restored), and acknowledges a write only
  once the daemon says it is in the replica. Its copies, their `-wal` and litestream's state
  stay across warm invocations, so only a true cold start pays a database's first snapshot.
- role "all" (one local process): the writer's copies also serve the reads.

Listing the space needs no copy: names come from one LIST of the replica (cached for
NAMES_TTL), sizes from the header of each database's newest LTX file.

Restores run in the background (child processes) and a request waits for them only as long as
its time budget allows (`budget`): then it answers "still restoring, retry" (503) and the next
request finds the restore further on. Every restore is checked before it serves (litestream's
post-restore integrity check: the full PRAGMA integrity_check up to FULL_CHECK_BYTES, quick_check
beyond); one that fails is never served.

The scheduled maintenance (`maintain`) also runs the restore drill (`drill`).

The data directory belongs to one process: it is locked (`datadir.DataDirLock`) for as long
as the storage is open, and a second process on it is refused at once. A database whose copy
would be a protected file (the token store, when it lives in the data directory) is neither
listed nor restored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lambdasette.errors import (
    DatabaseNotFound,
    DatabaseRestoring,
    InsufficientStorage,
    ReplicaUnavailable,
    UnknownTransaction,
)
from lambdasette.storage import budget
from lambdasette.storage import drill as drills
from lambdasette.storage.base import (
    DatabaseInfo,
    open_read_only,
    open_read_write,
    thread_connection,
)
from lambdasette.storage.datadir import DataDirLock, Protected
from lambdasette.storage.limits import DISK_RESERVE_MIN, FULL_CHECK_BYTES, MB, Limits, bytes_of, free_bytes
from lambdasette.storage.litestream import (
    Daemon,
    Follower,
    Replica,
    Restore,
    commit_nothing,
    remove_database,
)

log = logging.getLogger("lambdasette")

NAMES_TTL = 2.0  # seconds a listing of the replica (names, sizes) is reused
RETRY_FAILED_S = 10.0  # a restore that failed is not tried again sooner (each try costs S3 traffic)
# With fresh reads, each read asks S3 (one LIST) whether there is something newer, and wakes
# the follower only to fetch it: a short interval costs nothing while it sleeps. Without them,
# a follower of a database in use polls on its own (up to 9 LISTs a poll): once a second.
FRESH_INTERVAL, POLLING_INTERVAL = "100ms", "1s"
ACTIVE_S = 10.0  # without fresh reads: a follower keeps polling this long after its last read


class Copy:
    """This process's copy of one database and what is being done to it."""

    def __init__(self, name: str, path: Path) -> None:
        self.name, self.path = name, path
        self.follower: Follower | None = None  # readers
        self.restore: Restore | None = None  # the writer: a restore in progress
        self.expected = 0  # bytes the replica says it has (room, progress)
        self.generation = 0  # a new copy (or a resumed one) each time: connections reopen
        self.last_used = 0.0
        self.users = 0  # requests using or waiting for it now: never evicted meanwhile
        self.wakers = 0  # requests waiting for its follower to catch up
        self.touched = False  # the writer: the transaction that makes the first sync snapshot
        self.prewarmed = False  # the writer: that first snapshot is in the replica
        self.failed: tuple[float, str] | None = None
        self.lock = threading.Lock()

    def local(self) -> bool:
        return self.path.exists()


class ReplicatedStorage:
    def __init__(self, replica: Replica, data_dir: Path, role: str = "all", *,
                 sync_timeout: float = 30.0, follow_interval: str | None = None,
                 restore_wait: float = 25.0, fresh_reads: bool = True, fresh_wait: float = 5.0,
                 idle_stop: float = 600.0, limits: Limits | None = None,
                 protected: Protected | None = None, lock: DataDirLock | None = None) -> None:
        """`lock`: the data directory's lock, when the caller took it already (before doing
        anything else); otherwise it is taken here. DataDirLocked if another process has it.
        `restore_wait`: how long a request may wait for a restore where no handler set a
        budget (`budget.time_budget`). `idle_stop`: seconds without a request after which a
        follower is stopped. `limits`: caps on followers and local bytes (derived from the
        environment and the data directory if not given)."""
        if role not in ("read", "write", "all"):
            raise ValueError(f"role must be read, write or all, not {role}")
        self.lock = lock if lock is not None and lock.held else DataDirLock(data_dir)
        self.protected = protected or Protected()
        self._protected_names: dict[str, bool] = {}
        self.replica = replica
        self.role = role
        self.sync_timeout = sync_timeout
        self.fresh_reads = fresh_reads
        self.follow_interval = follow_interval or (FRESH_INTERVAL if fresh_reads else POLLING_INTERVAL)
        self.restore_wait = restore_wait
        self.fresh_wait = fresh_wait
        self.idle_stop = idle_stop
        self.dir = data_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits or Limits.of(self.dir)
        self._lock = threading.RLock()  # the copies table and eviction; held briefly
        self._names: tuple[float, list[str]] = (0.0, [])
        self._sizes: tuple[float, dict[str, int]] = (0.0, {})
        self._local = threading.local()
        self.copies: dict[str, Copy] = {}
        self.daemon: Daemon | None = None
        self.synced: dict[str, int] = {}  # the replica txid of each database's last confirmed sync
        if role in ("write", "all"):
            self.daemon = Daemon(replica, self.dir)

    @classmethod
    def configured(cls, replica_url: str, data_dir: Path, role: str, settings: Any, *,
                   protected: Protected | None = None, lock: DataDirLock | None = None
                   ) -> ReplicatedStorage:
        """From a replica URL and the instance's settings (the CLI and Lambda share this).
        Nothing is restored here: that waits for the first request that needs it."""
        if lock is None or not lock.held:
            lock = DataDirLock(data_dir)  # first: before the limits look at the directory
        limits = Limits.of(data_dir, followers=settings.replica_max_followers,
                           local_mb=settings.replica_max_local_mb)
        return cls(Replica(replica_url), data_dir, role, sync_timeout=settings.replica_sync_timeout_s,
                   fresh_reads=settings.replica_fresh_reads, fresh_wait=settings.txid_wait_ms / 1000,
                   restore_wait=settings.replica_restore_wait_ms / 1000, idle_stop=settings.replica_idle_s,
                   limits=limits, protected=protected, lock=lock)

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

    def _copy(self, name: str) -> Copy:
        """The entry for `name` (made on first use); DatabaseNotFound for what the replica
        does not have, and for names whose copy would be a protected file."""
        if self._is_protected(name):
            raise DatabaseNotFound(name)  # never restore over the token store
        with self._lock:
            copy = self.copies.get(name)
            if copy is not None:
                return copy
        if not self._known(name):
            raise DatabaseNotFound(name)
        with self._lock:
            return self.copies.setdefault(name, Copy(name, self.local_path(name)))

    @contextmanager
    def _using(self, copy: Copy) -> Iterator[None]:
        with self._lock:
            copy.users += 1
            copy.last_used = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                copy.users -= 1
                copy.last_used = time.monotonic()

    # -- getting a copy ready -------------------------------------------------------------------

    def open_all(self) -> None:
        """Get every database of the replica ready now (nothing calls this at start any more:
        a cold start restores only what its request needs)."""
        for name in self.names():
            self._ready(name)

    def _ready(self, name: str) -> Path:
        """The local copy of `name`, ready for this process's role (restored on first use)."""
        if self.daemon is not None:
            return self._writer_copy(name).path
        return self._reader_copy(name).path

    def _acquire(self, copy: Copy, until: float) -> None:
        if not copy.lock.acquire(timeout=max(0.0, until - time.monotonic())):
            raise DatabaseRestoring(copy.name, "another request is getting it ready")

    def _restoring(self, copy: Copy, done: int, started: float) -> DatabaseRestoring:
        of = f" of {copy.expected / MB:.0f}" if copy.expected else ""
        detail = f"{done / MB:.0f}{of} MB after {time.monotonic() - started:.0f} s"
        return DatabaseRestoring(copy.name, detail)

    def _check_failed(self, copy: Copy) -> None:
        if copy.failed is not None and time.monotonic() - copy.failed[0] < RETRY_FAILED_S:
            raise ReplicaUnavailable(copy.failed[1])

    def _fail(self, copy: Copy, reason: str) -> ReplicaUnavailable:
        """A restore that failed, or a copy that failed its check: never served, logged."""
        copy.failed = (time.monotonic(), reason)
        log.error("Restoring %s failed; not serving it: %s", copy.name, reason)
        return ReplicaUnavailable(reason)

    # -- readers --------------------------------------------------------------------------------

    def _reader_copy(self, name: str) -> Copy:
        copy = self._copy(name)
        until = budget.deadline(self.restore_wait)
        with self._using(copy):
            self._tidy(copy)
            while True:
                self._acquire(copy, until)
                try:
                    follower = copy.follower
                    if follower is None:
                        self._check_failed(copy)
                        follower = self._follow(copy)
                    try:
                        if follower.ready():
                            if self.fresh_reads:
                                self._rest(copy)  # each read's LIST says when to wake it
                            else:
                                follower.wake()  # polls on its own while the database is in use
                            return copy
                    except ReplicaUnavailable as exc:
                        phase = follower.phase
                        follower.stop()
                        copy.follower = None
                        if phase == "ready":  # it died after serving: the copy is sound, resume it
                            log.warning("The follower of %s stopped (%s); resuming it", name, exc)
                            continue
                        remove_database(copy.path)
                        if phase == "catching-up":  # the kept copy could not catch up
                            log.warning("Catching up the kept copy of %s failed (%s); restoring it afresh",
                                        name, exc)
                            continue
                        raise self._fail(copy, str(exc)) from None
                    done = follower.progress()
                finally:
                    copy.lock.release()
                if time.monotonic() >= until:
                    raise self._restoring(copy, done, follower.started)
                time.sleep(0.01)

    def _follow(self, copy: Copy) -> Follower:
        """Start following `copy`: resume the copy kept from an earlier follower if there is
        one this process made, else restore afresh. Makes room first (caps)."""
        follower = Follower(self.replica, copy.name, copy.path, self.follow_interval)
        point = None
        if copy.generation > 0 and copy.local() and follower.sidecar.exists():
            point = self.replica.resume_point(copy.name, follower.txid())
        if point is not None:
            latest, start = point
            self._make_room(copy, 0)
            rewind = f" (rewound to the snapshot's {start})" if start < follower.txid() else ""
            log.info("Catching up the kept copy of %s from transaction %d to %d%s", copy.name,
                     follower.txid(), latest, rewind)
            follower.resume(start, latest)
        else:
            copy.expected = self.replica.size(copy.name) or 0
            self._make_room(copy, copy.expected)
            follower.start("full" if copy.expected <= FULL_CHECK_BYTES else "quick")
            log.info("Restoring %s (%.1f MB) and following it", copy.name, copy.expected / MB)
        copy.follower = follower
        copy.generation += 1
        copy.failed = None
        return follower

    def _live(self) -> list[Copy]:
        return [c for c in self.copies.values() if c.follower is not None and c.follower.running()]

    def _make_room(self, copy: Copy, need: int) -> None:
        """Evict what the caps require before `copy` gets a follower and `need` more bytes:
        followers of the least recently used databases are stopped (their copies stay), and
        copies are removed (those without a follower first). InsufficientStorage if `need`
        cannot fit even then."""
        with self._lock:
            live = [c for c in self._live() if c is not copy]
            while len(live) >= self.limits.followers:
                idle = [c for c in live if c.users == 0]
                if not idle:
                    break  # every follower is in use right now: over the cap for a moment
                victim = min(idle, key=lambda c: c.last_used)
                self._stop_following(victim, f"{self.limits.followers} live followers is the cap "
                                             f"for {self.limits.memory_mb} MB of memory")
                live.remove(victim)
            while True:
                used = sum(bytes_of(c.path) for c in self.copies.values() if c is not copy)
                free = free_bytes(self.dir)
                if used + need <= self.limits.local_bytes and need + DISK_RESERVE_MIN <= free:
                    return
                candidates = [c for c in self.copies.values()
                              if c is not copy and c.users == 0 and c.local() and c.restore is None
                              and (self.daemon is None or c.name not in self.daemon.databases)]
                if not candidates:
                    raise InsufficientStorage(
                        f"{copy.name} needs {need / MB:.0f} MB of local storage; {used / MB:.0f} MB are "
                        f"copies in use and {self.limits.local_bytes / MB:.0f} MB may be used "
                        f"({free / MB:.0f} MB free). Give the function more ephemeral storage "
                        "(EphemeralStorage) or set replica_max_local_mb.")
                # Copies nobody follows first, then followed ones; one still being restored
                # or caught up (its request gave up waiting) last.
                victim = min(candidates, key=lambda c: (
                    c.follower is not None, c.follower is not None and c.follower.phase != "ready",
                    c.last_used))
                size = bytes_of(victim.path)
                if victim.follower is not None:
                    victim.follower.stop()
                    victim.follower = None
                remove_database(victim.path)
                log.warning("Evicted the copy of %s (%.1f MB, last used %.0f s ago) to make room for %s "
                            "(%.1f MB): copies may use %.0f MB here", victim.name, size / MB,
                            time.monotonic() - victim.last_used, copy.name, need / MB,
                            self.limits.local_bytes / MB)

    def _stop_following(self, copy: Copy, why: str) -> None:
        assert copy.follower is not None
        copy.follower.stop()
        copy.follower = None
        log.warning("Stopped following %s (%s); its copy stays in %s and catches up on its next use",
                    copy.name, why, self.dir)

    def _tidy(self, current: Copy) -> None:
        """Between requests nothing runs (in Lambda the container is frozen): each request
        looks after the others' followers - stops those idle for `idle_stop`, and without
        fresh reads pauses those idle for ACTIVE_S."""
        now = time.monotonic()
        with self._lock:
            for copy in self._live():
                if copy is current or copy.users or copy.follower is None:
                    continue
                idle = now - copy.last_used
                if idle > self.idle_stop and copy.follower.phase == "ready":
                    self._stop_following(copy, f"idle for {idle:.0f} s")
                elif not self.fresh_reads and idle > ACTIVE_S and not copy.wakers:
                    copy.follower.pause()

    def _catch_up(self, copy: Copy, txid: int, timeout: float) -> bool:
        """Wake the follower until the copy has `txid` (bounded by `timeout`), then - with
        fresh reads, where every read asks S3 itself - put it back to sleep."""
        follower = copy.follower
        assert follower is not None
        with self._using(copy):
            with self._lock:
                copy.wakers += 1
            try:
                return follower.wait_for(txid, timeout)
            finally:
                with self._lock:
                    copy.wakers -= 1
                if self.fresh_reads:
                    self._rest(copy)

    def _rest(self, copy: Copy) -> None:
        """Pause the follower unless a request is waiting for it to catch up."""
        with self._lock:
            if copy.wakers == 0 and copy.follower is not None:
                copy.follower.pause()

    def freshen(self, name: str) -> None:
        """Fresh reads: ask the replica for its newest transaction (one LIST) and wait, bounded,
        until this copy has applied it - so a read sees every write acknowledged before it."""
        copy = self.copies.get(name)
        if copy is None or copy.follower is None:
            return
        try:
            latest = self.replica.latest_after(name, copy.follower.txid())
        except ReplicaUnavailable:
            latest = None  # serve the copy we have rather than fail the read
        if latest is not None:
            self._catch_up(copy, latest, self.fresh_wait)

    # -- the writer -----------------------------------------------------------------------------

    def _writer_copy(self, name: str) -> Copy:
        """The writer's copy of `name`: restored (in the background, bounded by the request's
        budget) and replicated, its first snapshot uploaded before anything is written."""
        assert self.daemon is not None
        copy = self._copy(name)
        until = budget.deadline(self.restore_wait)
        with self._using(copy):
            self._acquire(copy, until)
            try:
                if name not in self.daemon.databases:
                    self._restore_for_writing(copy, until)
                elif not self.daemon.running():
                    self._start_daemon()
                if not copy.prewarmed:
                    self._prewarm(copy, until)
            finally:
                copy.lock.release()
        return copy

    def _restore_for_writing(self, copy: Copy, until: float) -> None:
        """A fresh copy from the replica: a copy left from an earlier run may be stale, and
        replicating from a stale copy would overwrite other writers' transactions."""
        assert self.daemon is not None
        if copy.restore is None:
            self._check_failed(copy)
            copy.expected = self.replica.size(copy.name) or 0
            self._make_room(copy, copy.expected)
            remove_database(copy.path)
            integrity = "full" if copy.expected <= FULL_CHECK_BYTES else "quick"
            copy.restore = Restore(self.replica, copy.name, copy.path, integrity=integrity)
            log.info("Restoring %s (%.1f MB) to write it", copy.name, copy.expected / MB)
        job = copy.restore
        if not job.wait(until):
            raise self._restoring(copy, job.progress(), job.started)
        copy.restore = None
        try:
            job.result()
        except ReplicaUnavailable as exc:
            remove_database(copy.path)
            raise self._fail(copy, str(exc)) from None
        finally:
            job.log_path.unlink(missing_ok=True)
        open_read_write(copy.path).close()  # WAL, as litestream needs
        copy.generation += 1
        copy.touched = copy.prewarmed = False
        if self.daemon.running():
            self.daemon.add(copy.name, copy.path)
        else:
            self.daemon.databases[copy.name] = copy.path
            self._start_daemon()

    def _start_daemon(self) -> None:
        """(Re)start the daemon: it snapshots every database again on its first sync after a
        start, so each is pre-warmed again on its next use."""
        assert self.daemon is not None
        self.daemon.start()
        for copy in self.copies.values():
            if copy.name in self.daemon.databases:
                copy.touched = copy.prewarmed = False

    def _prewarm(self, copy: Copy, until: float) -> None:
        """Litestream 0.5.17 uploads a full snapshot on the first sync after it starts (or
        takes a database); pay for it before the first write rather than inside its timeout.
        The transaction leaves nothing. If the budget runs out first, the daemon carries on
        uploading in the background and a later request finds it done."""
        assert self.daemon is not None
        if not copy.touched:
            commit_nothing(copy.path)
            copy.touched = True
        txid, replicated = self.daemon.positions(copy.name)
        if txid and replicated >= txid:  # uploaded while an earlier request had given up waiting
            self.synced[copy.name] = replicated
            copy.prewarmed = True
            return
        started = time.monotonic()
        left = until - started
        if left < 1.5:  # litestream's sync waits whole seconds
            raise DatabaseRestoring(copy.name, "uploading its first snapshot")
        try:
            self.synced[copy.name] = self.daemon.sync(copy.name, left - 0.5)
        except ReplicaUnavailable as exc:
            if time.monotonic() - started >= left - 1.5:
                raise DatabaseRestoring(copy.name, "uploading its first snapshot") from None
            raise exc
        copy.prewarmed = True

    def maintain(self, seconds: float) -> dict[str, Any]:
        """The write function's scheduled maintenance, for up to `seconds` (at most 600):
        - keep the daemon running: Litestream compacts and takes snapshots only while it
          runs, and Lambda freezes it between invocations (restarted if it died);
        - meanwhile, the restore drill (`drill`) for as many databases as the time allows."""
        if self.daemon is None:
            return {"ok": True, "message": "no replica daemon in this process: nothing to maintain"}
        started = time.monotonic()
        awake_until = started + max(0.0, min(seconds, 600.0))
        held = sorted(self.daemon.databases)
        report: dict[str, Any] = {"databases": held}
        try:
            for name in held:
                self._writer_copy(name)
        except ReplicaUnavailable as exc:
            report["replication_error"] = str(exc)
        # Drills start while the run is meant to be awake; one under way may finish later,
        # within the invocation's own time.
        drill = self.drill(budget.deadline(600.0), start_until=awake_until)
        report["drill"] = drill["last_run"]
        report["ok"] = bool(drill["ok"]) and "replication_error" not in report
        time.sleep(max(0.0, awake_until - time.monotonic()))
        report.update(awake_seconds=round(time.monotonic() - started, 1),
                      daemon_running=self.daemon.running())
        return report

    def drill(self, until: float | None = None, start_until: float | None = None) -> dict[str, Any]:
        """The restore drill (storage/drill.py) over every database, until the monotonic time
        `until` (default: this invocation's budget, at most 10 minutes), starting none after
        `start_until`; the report it records."""
        if until is None:
            until = budget.deadline(600.0)
        return drills.run(self.replica, self.names(), self.dir / ".drill", dict(self.synced), until,
                          start_until)

    def drill_report(self) -> dict[str, Any] | None:
        return self.replica.read_record(drills.RECORD)

    def close(self) -> None:
        with self._lock:
            if self.daemon is not None:
                self.daemon.stop()
            for copy in self.copies.values():
                if copy.follower is not None:
                    copy.follower.stop()
                if copy.restore is not None:
                    copy.restore.cancel()
            self.lock.release()

    # -- the Storage interface ------------------------------------------------------------------

    def info(self, name: str) -> DatabaseInfo:
        """The size of the copy here if there is one, else what the replica says: listing the
        space restores nothing."""
        copy = self._copy(name)
        if copy.local() and (copy.follower is not None and copy.follower.phase == "ready"
                             or self.daemon is not None and name in self.daemon.databases):
            return DatabaseInfo(name=name, size=copy.path.stat().st_size)
        when, sizes = self._sizes
        if time.monotonic() - when > NAMES_TTL:
            try:  # every database at once: a listing asks for each in turn
                sizes = self.replica.sizes()
            except ReplicaUnavailable:
                pass  # what we knew, rather than fail the listing
            self._sizes = (time.monotonic(), sizes)
        return DatabaseInfo(name=name, size=sizes.get(name, 0))

    def connect(self, name: str) -> sqlite3.Connection:
        return open_read_only(self._ready(name))

    def read_connection(self, name: str) -> sqlite3.Connection:
        """This thread's connection, reopened whenever a newer transaction has been applied:
        a long-lived connection to a followed copy would keep serving stale pages."""
        path = self._ready(name)
        if self.fresh_reads:
            self.freshen(name)
        return thread_connection(self._local, name, self.data_version(name), path)

    def data_version(self, name: str) -> Hashable | None:
        copy = self.copies.get(name)
        if copy is not None and copy.follower is not None:
            return ("txid", copy.generation, copy.follower.txid())
        return None  # the writer's own WAL copy: SQLite's data_version sees its commits

    def wait_for(self, name: str, txid: int, timeout: float) -> bool:
        """Wait, at most `timeout`, for this copy to have transaction `txid`; UnknownTransaction
        at once (after one LIST) for one the replica does not hold: a write is answered only
        once its transaction is there, so a client holding `txid` is owed it, and anything
        beyond the newest is no client's - waiting for it would only hold this reader."""
        self._ready(name)
        copy = self.copies.get(name)
        if copy is None or copy.follower is None:
            return True  # reads come from the writer's copy, which has every acknowledged write
        have = copy.follower.txid()  # the copy's own sidecar: no call, even while it sleeps
        if have >= txid:
            return True
        try:
            newest = self.replica.latest_after(name, have)
        except ReplicaUnavailable:
            newest = txid  # cannot tell: wait, bounded, as before
        if (newest or have) < txid:
            raise UnknownTransaction(txid, newest or have)
        return self._catch_up(copy, txid, timeout)

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
        txid = self.synced.get(name)
        if txid is None:
            txid = self.daemon.txid(name)
        return self.replica.newer_than(name, txid)

    def refresh(self, name: str) -> None:
        """Replace a stale copy with the replica's (its connections must be closed first).
        Only this database leaves the daemon and comes back: the others keep their state."""
        assert self.daemon is not None
        copy = self._copy(name)
        with copy.lock:
            try:
                self.daemon.remove(name)
            except ReplicaUnavailable:
                self.daemon.stop()  # it restarts (and re-snapshots what it holds) on next use
            self.synced.pop(name, None)
            remove_database(copy.path)
        self._ready(name)

    def make_durable(self, name: str) -> int:
        assert self.daemon is not None
        self.synced.pop(name, None)
        txid = self.daemon.sync(name, self.sync_timeout)
        self.synced[name] = txid
        return txid

"""The restore drill: can each database still be restored from the replica, whole and current?

Run by the write function's scheduled maintenance (`ReplicatedStorage.maintain`). For each
database - those drilled longest ago first, as many as the time allows - it restores the
replica into scratch space, runs PRAGMA integrity_check on the result (quick_check on copies
too big for the full check), and checks that the restore holds the newest acknowledged
transaction: the newest the replica lists and the newest this writer acknowledged, whichever
is later. Litestream's maintainers advise exactly this while their restore bug #1164 is open.

The report is kept in the replica (`<prefix>/.lambdasette/restore-drill.json`, never a
database: the name starts with a dot), so any function can serve it: `/-/restore-drill.json`.
A failed drill is logged as an error.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdasette.errors import ReplicaUnavailable
from lambdasette.storage.limits import DISK_RESERVE_MIN, FULL_CHECK_BYTES, free_bytes
from lambdasette.storage.litestream import Replica, Restore, remove_database

log = logging.getLogger("lambdasette")

RECORD = "restore-drill.json"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def check(path: Path, full: bool) -> list[str]:
    """What PRAGMA integrity_check (or quick_check) says: ["ok"] for a sound file."""
    conn = sqlite3.connect("file:" + urllib.parse.quote(str(path)) + "?mode=ro", uri=True)
    try:
        pragma = "integrity_check" if full else "quick_check"
        return [str(row[0]) for row in conn.execute(f"PRAGMA {pragma}(20)")]
    except sqlite3.DatabaseError as exc:
        return [f"not a database: {exc}"]
    finally:
        conn.close()


def drill_one(replica: Replica, name: str, scratch: Path, acknowledged: int, until: float) -> dict[str, Any]:
    """Restore `name` into `scratch` and check it; the result as it goes into the report."""
    started = time.monotonic()
    result: dict[str, Any] = {"database": name, "checked_at": now_iso(), "ok": False}
    try:
        listed = replica.latest(name) or 0
        size = replica.size(name) or 0
    except ReplicaUnavailable as exc:
        result["error"] = str(exc)
        return result
    expected = max(listed, acknowledged)
    full = size <= FULL_CHECK_BYTES
    result.update({"expected_txid": expected, "bytes": size,
                   "check": "integrity_check" if full else "quick_check"})
    if size + DISK_RESERVE_MIN > free_bytes(scratch):
        result.update(ok=None, skipped=f"no room for {size} bytes in {scratch}")
        return result
    output = scratch / f"{name}.db"
    remove_database(output)
    # No `-integrity-check` for litestream here: our own check says what it found.
    job = Restore(replica, name, output)
    try:
        if not job.wait(until):
            job.cancel()
            result.update(ok=None, skipped="out of time; drilled first next time")
            return result
        try:
            result["restored_txid"] = job.result()
        except ReplicaUnavailable as exc:
            result["error"] = str(exc)
            return result
        problems = check(output, full)
        result["integrity"] = problems[:20]
        if problems != ["ok"]:
            result["error"] = f"{result['check']} found problems: {'; '.join(problems[:3])}"
        elif result["restored_txid"] < expected:
            result["error"] = (f"the restore holds transaction {result['restored_txid']}, older than "
                               f"the newest acknowledged one, {expected}")
        else:
            result["ok"] = True
        return result
    finally:
        result["seconds"] = round(time.monotonic() - started, 3)
        remove_database(output)
        Path(f"{output}.tmp").unlink(missing_ok=True)
        job.log_path.unlink(missing_ok=True)


def run(replica: Replica, names: list[str], scratch: Path, acknowledged: dict[str, int],
        until: float, start_until: float | None = None) -> dict[str, Any]:
    """Drill `names` (least recently drilled first): none is started after the monotonic time
    `start_until` (default `until`), and none may run past `until`. Merge the results into the
    report kept in the replica and return it."""
    start_until = until if start_until is None else min(start_until, until)
    started = now_iso()
    try:
        report = replica.read_record(RECORD) or {}
    except ReplicaUnavailable:
        report = {}
    previous: dict[str, Any] = {n: r for n, r in (report.get("databases") or {}).items() if n in names}
    order = sorted(names, key=lambda n: (previous.get(n) or {}).get("checked_at", ""))
    scratch.mkdir(parents=True, exist_ok=True)
    drilled, failed = [], []
    try:
        for i, name in enumerate(order):
            # The first database is drilled whatever the time: a run always checks something.
            if time.monotonic() >= (start_until if i else until):
                break
            result = drill_one(replica, name, scratch, acknowledged.get(name, 0), until)
            if result.get("ok") is None:  # skipped: keep what the last drill found
                result = {**(previous.get(name) or {}), "last_attempt": result}
            else:
                drilled.append(name)
            if result.get("ok") is False:
                failed.append(name)
                log.error("Restore drill FAILED for %s: %s", name, result.get("error"))
            previous[name] = result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report = {
        "ok": not any(r.get("ok") is False for r in previous.values()),
        "updated": now_iso(),
        "last_run": {"started": started, "finished": now_iso(), "drilled": drilled, "failed": failed,
                     "not_reached": [n for n in order if n not in drilled and n not in failed]},
        "databases": dict(sorted(previous.items())),
    }
    try:
        replica.write_record(RECORD, report)
    except ReplicaUnavailable as exc:
        log.error("Restore drill: could not record its report: %s", exc)
        report["record_error"] = str(exc)
    return report

"""Issue 17: copies made lazily, per database, within the function's limits - with the real
`litestream` against moto's S3 (or a file:// replica where only the logic is under test)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdasette.errors import DatabaseRestoring, InsufficientStorage, ReplicaUnavailable
from lambdasette.storage import publish
from lambdasette.storage.budget import time_budget
from lambdasette.storage.limits import Limits
from lambdasette.storage.litestream import Daemon, Replica, commit_nothing, litestream_binary
from lambdasette.storage.replicated import ReplicatedStorage

from .test_lambda_read import http_event
from .test_replicated import replica_url  # noqa: F401  (a fixture)

ROOMY = Limits(followers=50, local_bytes=10**12, memory_mb=0, disk_bytes=0)


class Context:
    """What Lambda passes as `context`: the time left matters here."""

    function_name = "test"
    aws_request_id = "req"

    def __init__(self, seconds: float = 29.0) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def make_db(path: Path, rows: int = 300, text_bytes: int = 40) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("create table items (id integer primary key, name text)")
    conn.executemany("insert into items (name) values (?)",
                     [(f"{path.stem} row {i} " + os.urandom(text_bytes // 2).hex(),) for i in range(rows)])
    conn.commit()
    conn.close()
    return path


def space(url: str, tmp: Path, count: int, **kwargs: Any) -> list[str]:
    names = []
    for i in range(count):
        name = f"db{i}"
        publish.push(Replica(url), make_db(tmp / f"src-{name}.db", **kwargs), name)
        names.append(name)
    return names


def litestream_children() -> dict[int, str]:
    """This process's litestream children: pid -> state (R, S, T for stopped, ...)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text[text.rindex(")") + 2:].split()
        if comm == "litestream" and int(fields[1]) == os.getpid() and fields[0] not in ("Z", "X"):
            found[int(entry)] = fields[0]
    return found


def rows(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("select name from items order by id")]


def write(storage: ReplicatedStorage, name: str, value: str) -> int:
    conn = storage.write_connection(name)
    try:
        conn.execute("insert into items (name) values (?)", (value,))
    finally:
        conn.close()
    return storage.make_durable(name)


@pytest.fixture
def file_url(tmp_path: Path) -> str:
    return f"file://{tmp_path / 'replica'}"


@pytest.fixture
def storages() -> Iterator[list[ReplicatedStorage]]:
    opened: list[ReplicatedStorage] = []
    yield opened
    for storage in opened:
        storage.close()


def reader(url: str, folder: Path, opened: list[ReplicatedStorage], **kwargs: Any) -> ReplicatedStorage:
    kwargs.setdefault("limits", ROOMY)
    storage = ReplicatedStorage(Replica(url), folder, "read", **kwargs)
    opened.append(storage)
    return storage


def writer(url: str, folder: Path, opened: list[ReplicatedStorage], **kwargs: Any) -> ReplicatedStorage:
    kwargs.setdefault("limits", ROOMY)
    storage = ReplicatedStorage(Replica(url), folder, "write", **kwargs)
    opened.append(storage)
    return storage


# -- lazy -------------------------------------------------------------------------------------------

def test_a_cold_read_restores_and_follows_only_the_database_it_reads(
    replica_url: str, tmp_path: Path  # noqa: F811
) -> None:
    from mangum import Mangum

    from lambdasette.handlers.lambda_app import build, within_budget

    space(replica_url, tmp_path, 3)
    data = tmp_path / "data"
    app = build("read", {"LAMBDASETTE_REPLICA_URL": replica_url, "LAMBDASETTE_DATA_DIR": str(data),
                         "LAMBDASETTE_PUBLIC": "on"})
    storage = app.app.state.lambdasette.storage
    try:
        assert litestream_children() == {}  # nothing at init
        assert not list(data.glob("*.db"))
        handler = within_budget(Mangum(app, lifespan="off"), gateway=True)
        response = handler(http_event("GET", "/db1/items.json", "_shape=array&_size=2"), Context())
        assert response["statusCode"] == 200, response
        assert json.loads(response["body"])[0]["name"].startswith("src-db1 row 0")
        assert sorted(p.name for p in data.glob("*.db")) == ["db1.db"]
        assert list(storage.copies) == ["db1"]
        children = litestream_children()
        assert len(children) == 1
        # With fresh reads the follower sleeps between reads (no polling of S3 meanwhile).
        assert list(children.values()) == ["T"]
        # Listing the space needs no copy: names from one LIST, sizes from the replica.
        response = handler(http_event("GET", "/-/databases.json"), Context())
        listed = {d["name"]: d["size"] for d in json.loads(response["body"])}
        assert set(listed) == {"db0", "db1", "db2"} and all(size > 8192 for size in listed.values())
        assert listed["db1"] == (data / "db1.db").stat().st_size
        assert sorted(p.name for p in data.glob("*.db")) == ["db1.db"] and len(litestream_children()) == 1
    finally:
        storage.close()
    assert litestream_children() == {}


def test_a_write_restores_only_its_database_and_warm_writes_pay_no_snapshot(
    replica_url: str, tmp_path: Path, storages: list[ReplicatedStorage]  # noqa: F811
) -> None:
    import boto3

    space(replica_url, tmp_path, 3, rows=2000, text_bytes=400)  # ~1 MB each, random: no compression
    storage = writer(replica_url, tmp_path / "w", storages)
    write(storage, "db2", "first")
    assert sorted(p.name for p in (tmp_path / "w").glob("*.db")) == ["db2.db"]
    assert storage.daemon is not None and list(storage.daemon.databases) == ["db2"]
    generation = storage.copies["db2"].generation
    bucket = replica_url.split("/")[2]
    s3 = boto3.client("s3", endpoint_url=replica_url.split("endpoint=")[1].split("&")[0], region_name="us-east-1")

    def newest_l0() -> tuple[str, int]:
        items = s3.list_objects_v2(Bucket=bucket, Prefix="databases/db2/0000/")["Contents"]
        newest = max(items, key=lambda i: i["Key"])
        return newest["Key"], newest["Size"]

    before = newest_l0()
    write(storage, "db2", "second")  # a warm invocation: same copy, same daemon state
    after = newest_l0()
    assert after[0] > before[0] and after[1] < 64 * 1024, "a warm write uploaded a snapshot"
    assert storage.copies["db2"].generation == generation  # not restored again
    assert sorted(p.name for p in (tmp_path / "w").glob("*.db")) == ["db2.db"]


# -- bounded ----------------------------------------------------------------------------------------

def test_followers_beyond_the_cap_are_stopped_and_their_copies_catch_up(
    file_url: str, tmp_path: Path, storages: list[ReplicatedStorage], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "lambdasette")
    space(file_url, tmp_path, 2)
    limits = Limits(followers=1, local_bytes=10**12, memory_mb=160, disk_bytes=0)
    storage = reader(file_url, tmp_path / "r", storages, limits=limits)
    w = writer(file_url, tmp_path / "w", storages)
    assert len(rows(storage.read_connection("db0"))) == 300
    assert len(rows(storage.read_connection("db1"))) == 300
    assert storage.copies["db0"].follower is None and (tmp_path / "r/db0.db").exists()
    assert "Stopped following db0 (1 live followers is the cap for 160 MB of memory)" in caplog.text
    assert len(litestream_children()) == 1
    write(w, "db0", "while not followed")
    assert rows(storage.read_connection("db0"))[-1] == "while not followed"  # caught up, not restored
    assert "Catching up the kept copy of db0" in caplog.text


def test_idle_followers_are_stopped(file_url: str, tmp_path: Path, storages: list[ReplicatedStorage],
                                    caplog: pytest.LogCaptureFixture) -> None:
    space(file_url, tmp_path, 2)
    storage = reader(file_url, tmp_path / "r", storages, idle_stop=0.2)
    storage.read_connection("db0")
    time.sleep(0.3)
    storage.read_connection("db1")  # each request looks after the others
    assert storage.copies["db0"].follower is None and "Stopped following db0 (idle for" in caplog.text
    assert len(litestream_children()) == 1


def test_copies_beyond_the_local_storage_cap_are_removed(
    file_url: str, tmp_path: Path, storages: list[ReplicatedStorage], caplog: pytest.LogCaptureFixture
) -> None:
    space(file_url, tmp_path, 3)
    one = os.stat(tmp_path / "src-db0.db").st_size
    limits = Limits(followers=10, local_bytes=int(one * 2.5), memory_mb=0, disk_bytes=0)
    storage = reader(file_url, tmp_path / "r", storages, limits=limits)
    for name in ("db0", "db1", "db2"):
        storage.read_connection(name)
    assert not (tmp_path / "r/db0.db").exists() and (tmp_path / "r/db2.db").exists()
    assert "Evicted the copy of db0" in caplog.text
    assert len(rows(storage.read_connection("db0"))) == 300  # back, restored afresh
    tiny = reader(file_url, tmp_path / "r2", storages,
                  limits=Limits(followers=10, local_bytes=1000, memory_mb=0, disk_bytes=0))
    with pytest.raises(InsufficientStorage, match="EphemeralStorage"):
        tiny.read_connection("db0")


def test_a_copy_kept_past_a_snapshot_is_rewound_and_catches_up(
    file_url: str, tmp_path: Path, storages: list[ReplicatedStorage]
) -> None:
    """Litestream resumes a follower only from a transaction no newer than the newest snapshot:
    the kept copy is rewound to it and applies everything after it again."""
    space(file_url, tmp_path, 1)
    # A writer whose litestream takes a snapshot every second (the default is once a day).
    w = writer(file_url, tmp_path / "w", storages)
    write(w, "db0", "before the snapshot")
    w.daemon.stop()  # type: ignore[union-attr]
    config = (tmp_path / "w/litestream.yml").read_text().replace("dbs:", "snapshot:\n  interval: 1s\ndbs:")
    (tmp_path / "w/litestream.yml").write_text(config)
    replica = Replica(file_url)
    snapshotting = subprocess.Popen([litestream_binary(), "replicate", "-config", str(tmp_path / "w/litestream.yml")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not [f for f in replica._ltx_files("db0") if f.level == 9]:
            assert time.monotonic() < deadline, "no snapshot"
            time.sleep(0.2)
    finally:
        snapshotting.terminate()
        snapshotting.wait()
    w.close()
    storages.remove(w)
    w = writer(file_url, tmp_path / "w2", storages)  # an ordinary writer from here on
    write(w, "db0", "after the snapshot")
    storage = reader(file_url, tmp_path / "r", storages,
                     limits=Limits(followers=1, local_bytes=10**12, memory_mb=0, disk_bytes=0))
    assert rows(storage.read_connection("db0"))[-1] == "after the snapshot"
    kept = storage.copies["db0"].follower.txid()  # type: ignore[union-attr]
    snapshot = max(f.max_txid for f in replica._ltx_files("db0") if f.level == 9)
    assert kept > snapshot
    publish.push(replica, make_db(tmp_path / "other.db"), "other")
    storage.read_connection("other")  # db0's follower is stopped: its copy stays
    assert storage.copies["db0"].follower is None
    for i in range(3):
        write(w, "db0", f"later {i}")
    assert rows(storage.read_connection("db0"))[-4:] == ["after the snapshot", "later 0", "later 1", "later 2"]
    follower = storage.copies["db0"].follower
    assert follower is not None and follower.rewound
    assert sqlite3.connect(tmp_path / "r/db0.db").execute("PRAGMA integrity_check").fetchone()[0] == "ok"


# -- big databases ----------------------------------------------------------------------------------

def test_a_restore_longer_than_the_time_left_answers_503_and_carries_on(
    file_url: str, tmp_path: Path
) -> None:
    from mangum import Mangum

    from lambdasette.handlers.lambda_app import build, within_budget

    publish.push(Replica(file_url), make_db(tmp_path / "big.db", rows=40_000, text_bytes=600), "big")
    app = build("read", {"LAMBDASETTE_REPLICA_URL": file_url, "LAMBDASETTE_DATA_DIR": str(tmp_path / "r"),
                         "LAMBDASETTE_PUBLIC": "on"})
    handler = within_budget(Mangum(app, lifespan="off"), gateway=True)
    try:
        # 3.2 s left: after the margin, 0.2 s to restore ~25 MB (and check it): not enough.
        first = handler(http_event("GET", "/big/items.json", "_size=1"), Context(3.2))
        assert first["statusCode"] == 503, first
        assert first["headers"]["retry-after"] == "1"
        body = json.loads(first["body"])
        assert body["title"] == "Restoring" and "being restored" in body["error"] and body["database"] == "big"
        statuses = [503]
        deadline = time.monotonic() + 60
        while statuses[-1] != 200:
            assert time.monotonic() < deadline
            time.sleep(0.2)  # the restore goes on between requests (here: nothing freezes us)
            statuses.append(handler(http_event("GET", "/big/items.json", "_size=1"), Context(3.2))["statusCode"])
        assert set(statuses) == {503, 200}
        listed = handler(http_event("GET", "/-/databases.json"), Context(3.2))
        assert json.loads(listed["body"])[0]["size"] == (tmp_path / "r/big.db").stat().st_size
    finally:
        app.app.state.lambdasette.storage.close()


def test_the_writer_answers_503_while_restoring_too(file_url: str, tmp_path: Path,
                                                    storages: list[ReplicatedStorage]) -> None:
    publish.push(Replica(file_url), make_db(tmp_path / "big.db", rows=40_000, text_bytes=600), "big")
    storage = writer(file_url, tmp_path / "w", storages)
    with time_budget(0.05), pytest.raises(DatabaseRestoring):
        storage.write_connection("big")
    deadline = time.monotonic() + 60
    while True:
        try:
            with time_budget(0.5):
                write(storage, "big", "at last")
            break
        except DatabaseRestoring:
            assert time.monotonic() < deadline
    assert storage.copies["big"].prewarmed


# -- verified before serving ------------------------------------------------------------------------

def replicate_as_is(url: str, path: Path, name: str, work: Path) -> None:
    """Put `path` into the replica as it is (`db push` refuses a file that fails quick_check)."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    work.mkdir()
    daemon = Daemon(Replica(url), work)
    daemon.databases[name] = path
    daemon.start()
    try:
        commit_nothing(path)
        daemon.sync(name, 30)
    finally:
        daemon.stop()


def corrupt_db(path: Path) -> Path:
    make_db(path, rows=2000, text_bytes=200)
    with open(path, "r+b") as f:  # page 5, a leaf of the table's b-tree: an invalid page type
        f.seek(4 * 4096)
        f.write(b"\x00")
    with pytest.raises(sqlite3.DatabaseError, match="malformed"):
        sqlite3.connect(path).execute("PRAGMA quick_check").fetchall()
    assert sqlite3.connect(path).execute("select count(*) from sqlite_master").fetchone()[0] == 1
    return path


def test_a_restore_that_fails_its_integrity_check_is_never_served(
    file_url: str, tmp_path: Path, storages: list[ReplicatedStorage], caplog: pytest.LogCaptureFixture
) -> None:
    from mangum import Mangum

    from lambdasette.handlers.lambda_app import build

    replicate_as_is(file_url, corrupt_db(tmp_path / "bad.db"), "bad", tmp_path / "push")
    storage = reader(file_url, tmp_path / "r", storages)
    with pytest.raises(ReplicaUnavailable, match="integrity"):
        storage.read_connection("bad")
    assert not (tmp_path / "r/bad.db").exists()
    assert "Restoring bad failed; not serving it" in caplog.text
    w = writer(file_url, tmp_path / "w", storages)
    with pytest.raises(ReplicaUnavailable, match="integrity"):
        w.write_connection("bad")
    app = build("read", {"LAMBDASETTE_REPLICA_URL": file_url, "LAMBDASETTE_DATA_DIR": str(tmp_path / "r2"),
                         "LAMBDASETTE_PUBLIC": "on"})
    try:
        response = Mangum(app, lifespan="off")(http_event("GET", "/bad/items.json"), Context())
        assert response["statusCode"] == 503 and "integrity" in json.loads(response["body"])["error"]
    finally:
        app.app.state.lambdasette.storage.close()


# -- the restore drill ------------------------------------------------------------------------------

def test_the_restore_drill_checks_every_database_and_reports_through_the_api(
    file_url: str, tmp_path: Path, storages: list[ReplicatedStorage], caplog: pytest.LogCaptureFixture
) -> None:
    from mangum import Mangum

    from lambdasette.handlers.lambda_app import build

    space(file_url, tmp_path, 2)
    w = writer(file_url, tmp_path / "w", storages)
    acknowledged = write(w, "db0", "acknowledged")
    report = w.maintain(0.1)  # what the maintenance schedule runs: at least one database
    assert report["ok"] is True and report["drill"]["drilled"] and report["daemon_running"]
    assert w.drill()["last_run"]["drilled"]  # the drill alone: the rest (least recently drilled first)
    drilled = w.drill_report()
    assert drilled is not None
    assert set(drilled["databases"]) == {"db0", "db1"}
    db0 = drilled["databases"]["db0"]
    assert db0["ok"] is True and db0["check"] == "integrity_check" and db0["integrity"] == ["ok"]
    assert db0["restored_txid"] >= db0["expected_txid"] >= acknowledged
    assert not (tmp_path / "w/.drill").exists()  # scratch space is cleaned up
    # Readable through the API (from the read function: the report lives in the replica).
    app = build("read", {"LAMBDASETTE_REPLICA_URL": file_url, "LAMBDASETTE_DATA_DIR": str(tmp_path / "r"),
                         "LAMBDASETTE_PUBLIC": "on"})
    try:
        response = Mangum(app, lifespan="off")(http_event("GET", "/-/restore-drill.json"), Context())
        body = json.loads(response["body"])
        assert response["statusCode"] == 200 and body["ok"] is True
        assert set(body["databases"]) == {"db0", "db1"} and not list((tmp_path / "r").glob("*.db"))
        assert Replica(file_url).names() == ["db0", "db1"]  # the record is never a database
    finally:
        app.app.state.lambdasette.storage.close()

    # A failure: the replica lacks a transaction this writer acknowledged.
    w.synced["db1"] = 10**6
    report = w.drill()
    assert report["ok"] is False and report["last_run"]["failed"] == ["db1"]
    assert "older than the newest acknowledged one, 1000000" in report["databases"]["db1"]["error"]
    assert report["databases"]["db0"]["ok"] is True
    assert "Restore drill FAILED for db1" in caplog.text
    assert any(r.levelno == logging.ERROR for r in caplog.records)


def test_the_restore_drill_detects_a_corrupt_replica(file_url: str, tmp_path: Path,
                                                      storages: list[ReplicatedStorage]) -> None:
    replicate_as_is(file_url, corrupt_db(tmp_path / "bad.db"), "bad", tmp_path / "push")
    w = writer(file_url, tmp_path / "w", storages)
    with time_budget(60):
        report = w.drill()
    result = report["databases"]["bad"]
    assert result["ok"] is False and "integrity_check found problems" in result["error"]
    assert result["integrity"] != ["ok"]


# -- the daemon's start ------------------------------------------------------------------------------

FAKE_LITESTREAM = """\
import socket, sys, time
config = open(sys.argv[sys.argv.index("-config") + 1]).read()
path = config.split("path: ")[1].splitlines()[0].strip().strip('"')
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(path)  # the socket file exists from here on...
time.sleep(0.5)
server.listen(8)  # ...but connections are refused until here
while True:
    conn, _ = server.accept()
    try:
        if conn.recv(65536):  # a probe that only connects sends nothing
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 2\\r\\n"
                         b"Connection: close\\r\\n\\r\\n{}")
    except OSError:
        pass
    conn.close()
"""


def test_the_daemon_is_started_only_once_it_listens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "litestream"
    fake.write_text(f"#!{sys.executable}\n" + textwrap.dedent(FAKE_LITESTREAM))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("LAMBDASETTE_LITESTREAM", str(fake))
    daemon = Daemon(Replica(f"file://{tmp_path}/replica"), tmp_path)
    started = time.monotonic()
    daemon.start()
    try:
        assert time.monotonic() - started >= 0.4
        assert daemon._call("GET", "/list")[0] == 200  # refused before the fix: it returned at bind()
    finally:
        daemon.stop()


def test_a_follower_outlives_the_thread_that_started_it(file_url: str, tmp_path: Path,
                                                        storages: list[ReplicatedStorage]) -> None:
    """A local server starts followers from request threads, which its pool retires when idle;
    Linux's parent-death signal follows the forking thread, so children are forked elsewhere."""
    import threading

    space(file_url, tmp_path, 1)
    storage = reader(file_url, tmp_path / "r", storages)
    thread = threading.Thread(target=storage.read_connection, args=("db0",))
    thread.start()
    thread.join()
    time.sleep(0.3)
    follower = storage.copies["db0"].follower
    assert follower is not None and follower.running() and len(litestream_children()) == 1

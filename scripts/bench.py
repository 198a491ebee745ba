"""Throughput of lambdasette vs Datasette 0.65.5 on the same database, same URLs, same run.

Machines here are shared and noisy, so every figure is a ratio measured side by side:
the two servers are measured in alternating rounds and the best round of each is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROWS = 100_000


def make_db(path: Path) -> None:
    if path.exists():
        return
    rng = random.Random(7)
    conn = sqlite3.connect(str(path))
    conn.execute("create table owners (id integer primary key, name text)")
    conn.executemany("insert into owners values (?, ?)", [(i, f"owner {i}") for i in range(1, 201)])
    conn.execute(
        "create table big (id integer primary key, name text, category text, score real,"
        " created text, owner_id integer references owners(id), body text)"
    )
    cats = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    words = "river garden market winter summer beacon archive copper falcon meadow".split()
    conn.executemany(
        "insert into big values (?, ?, ?, ?, ?, ?, ?)",
        [
            (
                i,
                f"name {i}",
                rng.choice(cats),
                round(rng.uniform(0, 1000), 2),
                f"20{rng.randrange(10, 24)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
                rng.randrange(1, 201),
                " ".join(rng.choice(words) for _ in range(8)),
            )
            for i in range(1, ROWS + 1)
        ],
    )
    conn.execute("create virtual table big_fts using fts5(name, body, content=big)")
    conn.execute("insert into big_fts (rowid, name, body) select id, name, body from big")
    conn.commit()
    conn.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/-/versions.json", timeout=1).read()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"server did not start: {cmd}")


def load(port: int, path: str, seconds: float, threads: int = 4) -> float:
    """Requests per second over keep-alive connections from `threads` client threads."""
    count = [0] * threads
    stop = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < stop:
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise SystemExit(f"{path} answered {response.status}")
            count[i] += 1
        conn.close()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    start_time = time.monotonic()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return sum(count) / (time.monotonic() - start_time)


def in_process(db: Path, path: str, repeat: int) -> tuple[float, float]:
    """Seconds per request through the ASGI app vs the raw sqlite3 + json floor."""
    from lambdasette.app import create_app
    from lambdasette.instance import Lambdasette, Options
    from lambdasette.storage.local import LocalStorage

    # Configured as in Lambda: one request at a time, no worker-thread hop.
    app = create_app(Lambdasette(storage=LocalStorage([db]), options=Options(threaded=False)))
    raw_path, _, query = path.partition("?")

    async def call() -> bytes:
        scope = {
            "type": "http",
            "method": "GET",
            "path": raw_path,
            "raw_path": raw_path.encode(),
            "query_string": query.encode(),
            "headers": [(b"host", b"bench")],
            "scheme": "http",
            "server": ("bench", 80),
            "root_path": "",
            "http_version": "1.1",
        }
        chunks: list[bytes] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return b"".join(chunks)

    async def run_app() -> float:
        await call()
        t0 = time.perf_counter()
        for _ in range(repeat):
            await call()
        return (time.perf_counter() - t0) / repeat

    app_time = asyncio.run(run_app())
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    sql = (
        "select id, name, category, score, created, owner_id, body from big"
        " where category = ? order by id limit 101"
    )
    t0 = time.perf_counter()
    for _ in range(repeat):
        cur = conn.execute(sql, ("beta",))
        cols = [d[0] for d in cur.description]
        json.dumps([dict(zip(cols, r)) for r in cur.fetchall()[:100]]).encode()
    floor = (time.perf_counter() - t0) / repeat
    return app_time, floor


INSERT_BATCHES = 100
BATCH = 100
INSERT_SCHEMA = "create table items (id integer primary key, name text, score real, tags text, created text)"


def insert_batches() -> list[list[dict]]:
    rng = random.Random(11)
    rows = [
        {
            "name": f"item {i}",
            "score": round(rng.uniform(0, 100), 3),
            "tags": rng.choice(["a", "b", "c"]),
            "created": f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        }
        for i in range(INSERT_BATCHES * BATCH)
    ]
    return [rows[i : i + BATCH] for i in range(0, len(rows), BATCH)]


def fresh_insert_db(folder: Path, name: str) -> Path:
    path = folder / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    conn = sqlite3.connect(str(path))
    conn.execute(INSERT_SCHEMA)
    conn.commit()
    conn.close()
    return path


def raw_inserts(path: Path, batches: list[list[dict]]) -> float:
    """The floor: executemany per batch, one commit each, with the writer's own pragmas."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    start = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "insert into items (name, score, tags, created) values (?, ?, ?, ?)",
            [(r["name"], r["score"], r["tags"], r["created"]) for r in batch],
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def lambda_inserts(folder: Path, path: Path, batches: list[list[dict]]) -> float:
    """Through the app exactly as Lambda runs it: Mangum, API Gateway v2 events, a token."""
    from mangum import Mangum

    from lambdasette.app import create_app
    from lambdasette.auth import tokens
    from lambdasette.auth.tokens import LocalTokenStore
    from lambdasette.instance import Lambdasette, Options
    from lambdasette.storage.local import LocalStorage

    store = LocalTokenStore(folder / "bench-tokens.db")
    token = tokens.create(store, "root")[0]
    ds = Lambdasette(
        storage=LocalStorage([path]), options=Options(public=False, threaded=False), tokens=store
    )
    handler = Mangum(create_app(ds), lifespan="off")

    class Ctx:
        function_name, aws_request_id = "write", "bench"

    def event(body: str) -> dict:
        return {
            "version": "2.0",
            "routeKey": "POST /{proxy+}",
            "rawPath": f"/{path.stem}/items/-/insert",
            "rawQueryString": "",
            "headers": {
                "host": "bench",
                "authorization": f"Bearer {token}",
                "content-type": "application/json",
            },
            "requestContext": {
                "http": {
                    "method": "POST",
                    "path": f"/{path.stem}/items/-/insert",
                    "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1",
                },
                "stage": "$default",
                "requestId": "r",
            },
            "body": body,
            "isBase64Encoded": False,
        }

    start = time.perf_counter()
    for batch in batches:
        response = handler(event(json.dumps({"rows": batch})), Ctx())
        assert response["statusCode"] == 201, response
    return time.perf_counter() - start


def http_inserts(folder: Path, path: Path, batches: list[list[dict]]) -> float:
    """Over HTTP to `lambdasette serve`, one keep-alive connection, as a client would."""
    tokens_db = folder / "bench-tokens.db"
    token = subprocess.run(
        [".venv/bin/lambdasette", "token", "create", "root", "--tokens-db", str(tokens_db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [".venv/bin/lambdasette", "serve", str(path), "--port", str(port), "--tokens-db", str(tokens_db)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        start = time.perf_counter()
        for batch in batches:
            conn.request(
                "POST", f"/{path.stem}/items/-/insert", body=json.dumps({"rows": batch}), headers=headers
            )
            response = conn.getresponse()
            response.read()
            assert response.status == 201, response.status
        return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait()


def inserts(rounds: int) -> None:
    folder = Path(os.environ.get("BENCH_DIR", ".bench"))
    folder.mkdir(exist_ok=True)
    batches = insert_batches()
    n = INSERT_BATCHES * BATCH
    best: dict[str, float] = {}
    for _ in range(rounds):  # alternating, best of each kept
        for name, run in (
            ("raw sqlite3 executemany", lambda p: raw_inserts(p, batches)),
            ("API in-process (Mangum, as Lambda)", lambda p: lambda_inserts(folder, p, batches)),
            ("API over HTTP (lambdasette serve)", lambda p: http_inserts(folder, p, batches)),
        ):
            elapsed = run(fresh_insert_db(folder, "inserts"))
            best[name] = min(best.get(name, float("inf")), elapsed)
    raw = n / best["raw sqlite3 executemany"]
    print(f"\nbulk inserts, {INSERT_BATCHES} batches of {BATCH} rows, one transaction each:")
    print(f"{'':38} {'rows/s':>10} {'share of raw':>13}")
    for name, elapsed in best.items():
        rate = n / elapsed
        print(f"{name:38} {rate:10.0f} {rate / raw:12.2f}x")


def sized_db(path: Path, megabytes: int) -> Path:
    """A notes database of about `megabytes` MB (random text, so it does not compress away)."""
    if path.exists() and path.stat().st_size >= megabytes * 1_000_000 * 0.9:
        return path
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(str(path))
    conn.execute("create table notes (id integer primary key, body text)")
    chunk = 2000
    rows = megabytes * 1_000_000 // 600
    for start in range(0, rows, chunk):
        conn.executemany(
            "insert into notes (body) values (?)",
            [(os.urandom(256).hex(),) for _ in range(min(chunk, rows - start))],
        )
    conn.commit()
    conn.close()
    return path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def replica_bench(writes: int) -> None:
    """Durable writes on an S3 replica (moto's server, the real litestream), side by side with
    the floor: a bare commit plus litestream's sync-wait on the same kind of database."""
    import logging
    import uuid

    import boto3
    from moto.server import ThreadedMotoServer

    from lambdasette.storage.litestream import Daemon, Replica

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    folder = Path(os.environ.get("BENCH_DIR", ".bench")).resolve()
    folder.mkdir(exist_ok=True)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    bin_ = str(Path(".venv/bin/lambdasette").resolve())
    tokens_db = folder / "replica-tokens.db"
    token = subprocess.run(
        [bin_, "token", "create", "root", "--tokens-db", str(tokens_db)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    print("\ndurable writes on an S3 replica (moto server, litestream 0.5.17), 1-row inserts:")
    print(f"{'db':>7} {'':34} {'p50 ms':>8} {'p95 ms':>8} {'bytes/write':>12}")
    per_write_bytes: dict[int, float] = {}
    try:
        for megabytes in (10, 200):
            source = sized_db(folder / f"notes-{megabytes}mb.db", megabytes)
            bucket = f"bench-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=bucket)
            url = f"s3://{bucket}/dbs?endpoint={endpoint}&region=us-east-1"
            replica = Replica(url)

            # The floor: litestream alone on a copy of the same database.
            floor_dir = folder / f"floor-{bucket}"
            floor_dir.mkdir()
            floor_db = floor_dir / "floor.db"
            shutil.copy(source, floor_db)
            conn = sqlite3.connect(str(floor_db), isolation_level=None)
            conn.execute("PRAGMA journal_mode = WAL")
            daemon = Daemon(replica, floor_dir)
            daemon.databases["floor"] = floor_db
            daemon.start()
            conn.execute("insert into notes (body) values ('warm')")
            daemon.sync("floor", 600)

            # Ours: a writer process and a reader process on the replica.
            start = time.perf_counter()
            wport, rport = free_port(), free_port()
            writer = subprocess.Popen(
                [
                    bin_,
                    "serve",
                    str(source),
                    "--role",
                    "write",
                    "--replica-url",
                    url,
                    "--data-dir",
                    str(folder / f"w-{bucket}"),
                    "--port",
                    str(wport),
                    "--tokens-db",
                    str(tokens_db),
                    "--setting",
                    "replica_sync_timeout_s",
                    "600",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_ready(wport)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            name = source.stem
            # The writer restores a database (and uploads its first snapshot) on the first write
            # to it: the cold start is until that write is acknowledged (503s while restoring).
            first_id = first_write(wport, f"/{name}/notes/-/insert", headers)
            cold = time.perf_counter() - start
            reader = subprocess.Popen(
                [
                    bin_,
                    "serve",
                    "--role",
                    "read",
                    "--replica-url",
                    url,
                    "--data-dir",
                    str(folder / f"r-{bucket}"),
                    "--port",
                    str(rport),
                    "--tokens-db",
                    str(tokens_db),
                    "--setting",
                    "replica_fresh_reads",
                    "off",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            wait_ready(rport)
            wconn = http.client.HTTPConnection("127.0.0.1", wport, timeout=600)
            rconn = http.client.HTTPConnection("127.0.0.1", rport, timeout=60)
            while True:  # the reader's first request restores its copy: not part of the lag
                rconn.request("GET", f"/{name}/notes/{first_id}.json", headers=headers)
                r = rconn.getresponse()
                r.read()
                if r.status == 200:
                    break
                time.sleep(0.05)
            ours, floor, staleness, uploaded = [], [], [], []

            def objects(bucket: str = bucket, prefix: str = f"dbs/{name}/") -> dict[str, int]:
                found: dict[str, int] = {}
                for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                    found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
                return found

            for i in range(writes):
                t = time.perf_counter()
                conn.execute("insert into notes (body) values (?)", (f"floor {i}",))
                daemon.sync("floor", 600)
                floor.append(time.perf_counter() - t)

                before = objects()
                t = time.perf_counter()
                wconn.request(
                    "POST",
                    f"/{name}/notes/-/insert",
                    body=json.dumps({"row": {"body": f"w {i}"}}),
                    headers=headers,
                )
                response = wconn.getresponse()
                body = json.loads(response.read())
                ours.append(time.perf_counter() - t)
                assert response.status == 201, body
                new_id = body["rows"][0]["id"]
                uploaded.append(sum(size for key, size in objects().items() if key not in before))
                # Staleness: how long until a reader (no read-your-writes header) shows the row.
                acked = time.perf_counter()
                while True:
                    rconn.request("GET", f"/{name}/notes/{new_id}.json", headers=headers)
                    r = rconn.getresponse()
                    r.read()
                    if r.status == 200:
                        break
                    time.sleep(0.005)
                staleness.append(time.perf_counter() - acked)
            per_write_bytes[megabytes] = statistics.median(uploaded)
            label = f"{megabytes} MB"
            print(
                f"{label:>7} {'floor: commit + litestream sync-wait':34} {percentile(floor, 0.5) * 1e3:8.1f} "
                f"{percentile(floor, 0.95) * 1e3:8.1f}"
            )
            print(
                f"{'':>7} {'lambdasette POST /-/insert':34} {percentile(ours, 0.5) * 1e3:8.1f} "
                f"{percentile(ours, 0.95) * 1e3:8.1f} {per_write_bytes[megabytes]:12.0f}"
            )
            print(
                f"{'':>7} {'reader staleness after the ack':34} {percentile(staleness, 0.5) * 1e3:8.1f} "
                f"{percentile(staleness, 0.95) * 1e3:8.1f}"
            )
            print(
                f"{'':>7} writer cold start (to the first write: restore + snapshot upload): {cold:.1f} s; "
                f"p50 ratio to the floor {percentile(ours, 0.5) / percentile(floor, 0.5):.2f}x"
            )
            for proc in (writer, reader):
                proc.terminate()
                proc.wait()
            daemon.stop()
            conn.close()
        ratio = per_write_bytes[200] / per_write_bytes[10] if per_write_bytes[10] else float("inf")
        print(f"bytes uploaded per 1-row write, 200 MB vs 10 MB database: {ratio:.2f}x")
    finally:
        server.stop()


def first_write(port: int, path: str, headers: dict[str, str]) -> int:
    """One insert, retried while the writer answers 503 (restoring); the new row's id."""
    deadline = time.time() + 600
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        conn.request("POST", path, body=json.dumps({"row": {"body": "first"}}), headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        if response.status == 201:
            return int(body["rows"][0]["id"])
        if response.status != 503 or time.time() > deadline:
            raise RuntimeError(f"first write: {response.status} {body}")
        time.sleep(0.2)


def wait_ready(port: int) -> None:
    deadline = time.time() + 600
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/-/versions.json")
            conn.getresponse().read()
            return
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["reads", "inserts", "replica"], help="run one part only")
    parser.add_argument("--writes", type=int, default=30, help="durable writes per database (replica part)")
    parser.add_argument("--datasette", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    if options.only == "inserts":
        inserts(options.rounds)
        return
    if options.only == "replica":
        replica_bench(options.writes)
        return
    work = Path(os.environ.get("BENCH_DIR", ".bench"))
    work.mkdir(exist_ok=True)
    db = work / "bench.db"
    make_db(db)

    lp, dp = free_port(), free_port()
    ours = start([str(Path(".venv/bin/lambdasette")), "serve", str(db), "--public", "--port", str(lp)], lp)
    theirs = start(
        [options.datasette, "serve", str(db), "--port", str(dp), "--setting", "num_sql_threads", "3"], dp
    )
    try:
        first = json.loads(
            urllib.request.urlopen(f"http://127.0.0.1:{lp}/bench/big.json?_sort=score&_size=100").read()
        )
        second = json.loads(urllib.request.urlopen(first["next_url"]).read())
        deep = second["next_url"].split(str(lp), 1)[1]
        urls = {
            "default table page": "/bench/big.json",
            "filtered _shape=array": "/bench/big.json?category=beta&_shape=array",
            "sorted, two pages deep": deep,
            "SQL query": "/bench.json?sql=select+category%2C+count(*)+from+big+group+by+category",
            "faceted page": "/bench/big.json?_facet=category&_facet=owner_id",
            "search page": "/bench/big.json?_search=river+copper",
        }
        print(f"{'URL':28} {'lambdasette r/s':>16} {'datasette r/s':>14} {'ratio':>7}")
        for name, path in urls.items():
            best = {"ours": 0.0, "theirs": 0.0}
            for _ in range(options.rounds):
                best["ours"] = max(best["ours"], load(lp, path, options.seconds))
                best["theirs"] = max(best["theirs"], load(dp, path, options.seconds))
            ratio = best["ours"] / best["theirs"] if best["theirs"] else float("inf")
            print(f"{name:28} {best['ours']:16.0f} {best['theirs']:14.0f} {ratio:6.1f}x", flush=True)
    finally:
        ours.terminate()
        theirs.terminate()

    app_time, floor = in_process(db, "/bench/big.json?category=beta&_shape=array", 300)
    print(
        f"\nin-process (as in Lambda) _shape=array page: {app_time * 1e6:.0f} us vs raw sqlite3+json floor "
        f"{floor * 1e6:.0f} us = {app_time / floor:.2f}x the floor"
    )
    if options.only != "reads":
        inserts(options.rounds)
        replica_bench(options.writes)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "lambdasette"))
    tempfile.tempdir = None
    main()

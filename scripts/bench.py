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
import socket
import sqlite3
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
    from lambdasette.core import Lambdasette, Options
    from lambdasette.storage import LocalStorage

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

    from lambdasette import tokens
    from lambdasette.app import create_app
    from lambdasette.core import Lambdasette, Options
    from lambdasette.storage import LocalStorage
    from lambdasette.tokens import LocalTokenStore

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
        deadline = time.time() + 20
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                conn.request("GET", "/-/versions.json")
                conn.getresponse().read()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["reads", "inserts"], help="run one part only")
    parser.add_argument("--datasette", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    if options.only == "inserts":
        inserts(options.rounds)
        return
    work = Path(os.environ.get("BENCH_DIR", ".bench"))
    work.mkdir(exist_ok=True)
    db = work / "bench.db"
    make_db(db)

    lp, dp = free_port(), free_port()
    ours = start([str(Path(".venv/bin/lambdasette")), "serve", str(db), "--port", str(lp)], lp)
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


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "lambdasette"))
    tempfile.tempdir = None
    main()

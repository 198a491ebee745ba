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
        [(i, f"name {i}", rng.choice(cats), round(rng.uniform(0, 1000), 2),
          f"20{rng.randrange(10, 24)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
          rng.randrange(1, 201), " ".join(rng.choice(words) for _ in range(8)))
         for i in range(1, ROWS + 1)],
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
        scope = {"type": "http", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(),
                 "query_string": query.encode(), "headers": [(b"host", b"bench")],
                 "scheme": "http", "server": ("bench", 80), "root_path": "", "http_version": "1.1"}
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
    sql = ("select id, name, category, score, created, owner_id, body from big"
           " where category = ? order by id limit 101")
    t0 = time.perf_counter()
    for _ in range(repeat):
        cur = conn.execute(sql, ("beta",))
        cols = [d[0] for d in cur.description]
        json.dumps([dict(zip(cols, r)) for r in cur.fetchall()[:100]]).encode()
    floor = (time.perf_counter() - t0) / repeat
    return app_time, floor


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasette", required=True)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    work = Path(os.environ.get("BENCH_DIR", ".bench"))
    work.mkdir(exist_ok=True)
    db = work / "bench.db"
    make_db(db)

    lp, dp = free_port(), free_port()
    ours = start([str(Path(".venv/bin/lambdasette")), "serve", str(db), "--port", str(lp)], lp)
    theirs = start([options.datasette, "serve", str(db), "--port", str(dp), "--setting",
                    "num_sql_threads", "3"], dp)
    try:
        first = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{lp}/bench/big.json?_sort=score&_size=100").read())
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
    print(f"\nin-process (as in Lambda) _shape=array page: {app_time * 1e6:.0f} us vs raw sqlite3+json floor "
          f"{floor * 1e6:.0f} us = {app_time / floor:.2f}x the floor")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "layers" / "lambdasette"))
    tempfile.tempdir = None
    main()

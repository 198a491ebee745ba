"""Render-first vs measure-first for text-heavy pages (review item 2), side by side in one process.

A 1000-row x 10-column table of 100-character cells (about 1.1 MB of JSON, a fifth of Lambda's
5 MiB budget) is answered in process, as in Lambda (`max_response_bytes` = 5 MiB, one request at
a time). Its worst case (6 bytes a character) passes the budget, so before the change every
such page was measured row by row and then rendered; now it is rendered once and measured only
when it comes out over the budget (`query.render.within_budget`).

"before" is the old rule, reproduced by setting `query.render.MEASURE_FIRST` to 0 (measure first
whenever the worst case passes the budget at all); "after" is the shipped value. Rounds
alternate and the best of each is kept (shared, noisy machines); the bodies are checked to be
identical. Usage: .venv/bin/python scripts/bench_render.py [--rounds 7] [--repeat 10]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path
from typing import Any

MiB = 1024 * 1024
PATHS = [
    "/data/t.json?_size=1000",  # a table page (0.65's body)
    "/data/t.json?_size=1000&_shape=array",
    "/data.json?sql=select+*+from+t",  # a query page
    "/data/-/query.json?sql=select+*+from+t",  # 1.0a41's query page
]


def make_db(path: Path) -> None:
    conn = sqlite3.connect(path)
    columns = ", ".join(f"c{i} text" for i in range(10))
    conn.execute(f"create table t(id integer primary key, {columns})")
    cells = ", ".join(f"printf('%.100c', char(97 + (x + {i}) % 26))" for i in range(10))
    conn.execute(f"insert into t select x, {cells} from "
                 "(with recursive c(x) as (select 1 union all select x+1 from c limit 1000) select x from c)")
    conn.commit()
    conn.close()


def caller(db: Path) -> Any:
    """An async function answering a GET path through the ASGI app: (status, body)."""
    from lambdasette.app import create_app
    from lambdasette.instance import Lambdasette, Options
    from lambdasette.settings import Settings
    from lambdasette.storage.local import LocalStorage

    settings = Settings()
    settings.max_response_bytes = 5 * MiB
    settings.max_returned_rows = 1000
    app = create_app(Lambdasette(storage=LocalStorage([db]), options=Options(threaded=False, public=True),
                                 settings=settings))

    async def call(path: str) -> tuple[int, bytes]:
        raw_path, _, query = path.partition("?")
        scope = {"type": "http", "method": "GET", "path": raw_path, "raw_path": raw_path.encode(),
                 "query_string": query.encode(), "headers": [(b"host", b"bench")], "scheme": "http",
                 "server": ("bench", 80), "root_path": "", "http_version": "1.1"}
        status, chunks = [0], []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await app(scope, receive, send)
        return status[0], b"".join(chunks)

    return call


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=10)
    options = parser.parse_args()
    from lambdasette.query import render

    shipped = render.MEASURE_FIRST
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "data.db"
        make_db(db)
        call = caller(db)

        async def timed(path: str) -> tuple[float, bytes]:
            status, body = await call(path)  # warm
            assert status == 200, (path, status, body[:200])
            started = time.perf_counter()
            for _ in range(options.repeat):
                await call(path)
            return (time.perf_counter() - started) / options.repeat, body

        print(f"{'path':42} {'bytes':>9} {'before ms':>10} {'after ms':>9} {'saved':>6}")
        for path in PATHS:
            best = {"before": float("inf"), "after": float("inf")}
            bodies: dict[str, bytes] = {}
            for _ in range(options.rounds):
                for mode, factor in (("before", 0), ("after", shipped)):
                    render.MEASURE_FIRST = factor
                    seconds, body = asyncio.run(timed(path))
                    best[mode] = min(best[mode], seconds)
                    bodies[mode] = body
            render.MEASURE_FIRST = shipped
            # query_ms differs from run to run: compare the bodies without it.
            same = [_without_timing(b) for b in bodies.values()]
            assert same[0] == same[1], f"{path}: the two rules answered differently"
            saved = 1 - best["after"] / best["before"]
            print(f"{path:42} {len(bodies['after']):>9} {best['before'] * 1e3:>10.1f} "
                  f"{best['after'] * 1e3:>9.1f} {saved:>6.0%}")


def _without_timing(body: bytes) -> Any:
    import json

    value = json.loads(body)
    if isinstance(value, dict):
        value.pop("query_ms", None)
    return value


if __name__ == "__main__":
    main()

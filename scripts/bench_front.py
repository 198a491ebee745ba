"""What the writer's front costs (B10): the latency of one insert handed to the write function
through the read function (the front: its checks, then Lambda Invoke), side by side with the
same event invoked on the write function directly - in one run, on one local cloud, the two
kinds alternating so that both see the same load. Also: a refusal answered by the front (a
bogus token), and a GET right after a write (a fresh read: the copy catches up first), for scale.

    scripts/bench --only front [--requests 60]

What it measures is this machine's: worker processes, moto and the Lambda API on localhost.
In AWS the added hop is the read function's run and one Invoke round trip within a region."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from localcloud import LocalCloud, http_event  # noqa: E402


def event(method: str, path: str, body: Any = None, token: str | None = None) -> dict[str, Any]:
    """An API Gateway (payload 2.0) event, as the gateway would deliver the request."""
    headers = [(b"content-type", b"application/json"), (b"host", b"localhost:3000")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {"type": "http", "method": method, "path": path, "raw_path": path.encode(), "query_string": b"",
             "headers": headers, "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 3000), "scheme": "http"}
    data = json.dumps(body).encode() if body is not None else b""
    return http_event(scope, data, "local", "localhost:3000")


def timed(cloud: LocalCloud, function: str, request: dict[str, Any], expect: int) -> float:
    """Milliseconds for one invocation, from handing over the event to having the answer."""
    started = time.perf_counter()
    outcome = cloud.invoke(function, request)
    elapsed = (time.perf_counter() - started) * 1000
    status = outcome.get("result", {}).get("statusCode") if outcome.get("ok") else None
    if status != expect:
        raise SystemExit(f"{function}: expected {expect}, got {outcome}")
    return elapsed


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return f"{name:<44} median {statistics.median(values):7.1f} ms   p90 {p90:7.1f} ms   (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=60, help="inserts of each kind (default: 60)")
    options = parser.parse_args()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
        os.environ.setdefault(name, "testing")
    with tempfile.TemporaryDirectory(prefix="bench-front-") as tmp:
        db = Path(tmp) / "data.db"
        conn = sqlite3.connect(db)
        conn.execute("create table t (id integer primary key, v text)")
        conn.commit()
        conn.close()
        cloud = LocalCloud(Path(tmp) / "state", [db], read_workers=1, stack="bench-front")
        cloud.start()
        try:
            token = cloud.mint_token("root")
            insert = event("POST", "/data/t/-/insert", {"row": {"v": "x"}}, token)
            for _ in range(5):  # warm both functions (first restore, first snapshot, imports)
                timed(cloud, "ReadFunction", insert, 201)
                timed(cloud, "WriteFunction", insert, 201)
            front, direct, refused, reads = [], [], [], []
            bogus = event("POST", "/data/t/-/insert", {"row": {"v": "x"}},
                          "lstok_0000000000000000_" + "b" * 43)
            get = event("GET", "/data/t.json", None, token)
            get["queryStringParameters"] = {"_size": "1"}
            get["rawQueryString"] = "_size=1"
            for _ in range(options.requests):
                front.append(timed(cloud, "ReadFunction", insert, 201))
                direct.append(timed(cloud, "WriteFunction", insert, 201))
                refused.append(timed(cloud, "ReadFunction", bogus, 401))
                reads.append(timed(cloud, "ReadFunction", get, 200))
        finally:
            cloud.stop()
    print(summary("insert through the front (read fn + Invoke)", front))
    print(summary("insert on the write function directly", direct))
    added = statistics.median(front) - statistics.median(direct)
    print(f"{'added by the front (difference of medians)':<44} {added:7.1f} ms")
    print(summary("bogus-token insert, refused by the front", refused))
    # Right after a write: a fresh read asks the replica (one LIST) and waits for its copy.
    print(summary("GET /data/t.json?_size=1 just after a write", reads))


if __name__ == "__main__":
    main()

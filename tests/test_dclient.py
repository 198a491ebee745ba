"""dclient 0.4, a real Datasette API client, unmodified against a real `lambdasette serve`."""

from __future__ import annotations

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from .test_cli_serve import BIN, free_port, wait_until_answering

DCLIENT = Path(sys.executable).parent / "dclient"


def test_dclient_insert_create_then_query(tmp_path: Path) -> None:
    assert DCLIENT.exists() or shutil.which("dclient"), "dclient is a dev dependency: run scripts/setup"
    db = tmp_path / "data.db"
    sqlite3.connect(db).close()
    tokens_db = str(tmp_path / "tokens.db")
    token = subprocess.run([*BIN, "token", "create", "alice", "-d", "data", "ct", "-d", "data", "ir",
                            "-d", "data", "vd", "-d", "data", "es", "-a", "vt", "--tokens-db", tokens_db],
                           capture_output=True, text=True, check=True).stdout.strip()
    source = tmp_path / "trees.csv"
    with source.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "species", "height", "planted"])
        for i in range(1, 351):
            writer.writerow([i, f"species {i % 7}", round(i * 0.37, 2), f"2020-01-{i % 28 + 1:02d}"])

    port = free_port()
    permissions = tmp_path / "permissions.json"
    permissions.write_text(json.dumps({"databases": {"data": {"permissions": {
        "create-table": {"id": "alice"}, "insert-row": {"id": "alice"}}}}}))
    proc = subprocess.Popen([*BIN, "serve", str(db), "--port", str(port), "--tokens-db", tokens_db,
                             "--permissions", str(permissions)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = wait_until_answering(port, proc)
        dclient = str(DCLIENT) if DCLIENT.exists() else "dclient"
        inserted = subprocess.run(
            [dclient, "insert", f"{base}/data", "trees", str(source), "--csv", "--create", "--pk", "id",
             "--batch-size", "100", "--token", token, "--silent"],
            capture_output=True, text=True, timeout=120)
        assert inserted.returncode == 0, inserted.stderr
        out = subprocess.run(
            [dclient, "query", f"{base}/data",
             "select count(*) as n, sum(height) as h, max(id) as top, typeof(height) as t from trees",
             "--token", token], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        (row,) = json.loads(out.stdout)
        assert row["n"] == 350 and row["top"] == 350
        assert abs(row["h"] - sum(round(i * 0.37, 2) for i in range(1, 351))) < 1e-6
        assert row["t"] == "real"  # dclient detected the column type; the table was created with it
        # Without the token the private instance refuses the same query.
        refused = subprocess.run([dclient, "query", f"{base}/data", "select 1"], capture_output=True, text=True)
        assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout
    finally:
        proc.terminate()
        proc.wait(timeout=10)

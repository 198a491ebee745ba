"""The write function's handler (functions/write/app.py) with real API Gateway v2 POST events."""

from __future__ import annotations

import base64
import importlib.util
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from lambdasette.auth import tokens
from lambdasette.auth.tokens import LocalTokenStore

from .test_lambda_read import ROOT, Context, http_event


@pytest.fixture
def write_handler(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, Path]:
    data = tmp_path / "data"
    data.mkdir()
    conn = sqlite3.connect(data / "notes.db")
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    store = LocalTokenStore(tmp_path / "tokens.db")
    token = tokens.create(store, "root")[0]
    monkeypatch.setenv("LAMBDASETTE_DATA_DIR", str(data))
    monkeypatch.setenv("LAMBDASETTE_TOKENS_DB", str(tmp_path / "tokens.db"))
    monkeypatch.setenv("LAMBDASETTE_PUBLIC", "off")
    spec = importlib.util.spec_from_file_location("write_app", ROOT / "functions/write/app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler, token, data / "notes.db"


def post(handler: Any, path: str, body: Any, token: str, *, as_base64: bool = False) -> dict:
    text = json.dumps(body)
    payload = base64.b64encode(text.encode()).decode() if as_base64 else text
    event = http_event("POST", path, headers={"authorization": f"Bearer {token}",
                                              "content-type": "application/json"},
                       body=payload, base64_body=as_base64)
    return handler(event, Context())


def test_insert_through_the_write_function(write_handler: tuple[Any, str, Path]) -> None:
    handler, token, path = write_handler
    r = post(handler, "/notes/notes/-/insert", {"rows": [{"body": "é 🐕"}, {"body": "two"}], "return": True}, token)
    assert r["statusCode"] == 201, r
    assert [row["body"] for row in json.loads(r["body"])["rows"]] == ["é 🐕", "two"]
    # API Gateway may hand the body over base64-encoded.
    r = post(handler, "/notes/notes/-/upsert", {"row": {"id": 1, "body": "one"}}, token, as_base64=True)
    assert r["statusCode"] == 200
    assert sqlite3.connect(path).execute("select body from notes order by id").fetchall() == [("one",), ("two",)]


def test_the_write_function_refuses_reads_and_anonymous_writes(write_handler: tuple[Any, str, Path]) -> None:
    handler, token, _ = write_handler
    r = handler(http_event("GET", "/notes/notes.json", headers={"authorization": f"Bearer {token}"}), Context())
    assert r["statusCode"] == 405 and "writes only" in json.loads(r["body"])["error"]
    r = handler(http_event("POST", "/notes/notes/-/insert", body='{"row": {"body": "x"}}'), Context())
    assert r["statusCode"] == 401


def test_write_and_read_functions_share_a_replica(tmp_path: Path) -> None:
    """Both handlers configured as the template configures them, on a file:// replica."""
    from mangum import Mangum

    from lambdasette.handlers.lambda_app import build
    from lambdasette.storage.litestream import Replica
    from lambdasette.storage.publish import push

    source = tmp_path / "notes.db"
    conn = sqlite3.connect(source)
    conn.execute("create table notes (id integer primary key, body text)")
    conn.commit()
    conn.close()
    url = f"file://{tmp_path}/replica"
    push(Replica(url), source, "notes")
    store = LocalTokenStore(tmp_path / "tokens.db")
    token = tokens.create(store, "root")[0]
    common = {"LAMBDASETTE_REPLICA_URL": url, "LAMBDASETTE_TOKENS_DB": str(tmp_path / "tokens.db")}
    write_app = build("write", {**common, "LAMBDASETTE_DATA_DIR": str(tmp_path / "w")})
    read_app = build("read", {**common, "LAMBDASETTE_DATA_DIR": str(tmp_path / "r")})
    try:
        writer, reader = Mangum(write_app, lifespan="off"), Mangum(read_app, lifespan="off")
        r = post(writer, "/notes/notes/-/insert", {"row": {"body": "replicated"}}, token)
        assert r["statusCode"] == 201
        txid = r["headers"]["x-lambdasette-txid"]
        event = http_event("GET", "/notes/notes.json", "_shape=array",
                           headers={"authorization": f"Bearer {token}", "x-lambdasette-txid": txid})
        response = reader(event, Context())
        assert response["statusCode"] == 200
        assert json.loads(response["body"]) == [{"id": 1, "body": "replicated"}]
    finally:
        for app in (write_app, read_app):
            app.app.state.lambdasette.storage.close()

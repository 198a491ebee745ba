"""The one way through a request (web/app.py): what every response carries, what any method
or path gets, when the token is checked, and how malformed credentials are answered."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.errors import InvalidToken
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage
from lambdasette.writes.transaction import Writer

from .test_write import make_write_db


class Env:
    def __init__(self, tmp_path: Path, fixture_path: Path, *, public: bool, cors: bool = True) -> None:
        self.store = LocalTokenStore(tmp_path / "tokens.db")
        self.db = make_write_db(tmp_path / "write.db")
        self.ds = Lambdasette(storage=LocalStorage([fixture_path, self.db]), tokens=self.store,
                              options=Options(public=public, cors=cors),
                              policy=Policy.parse({"permissions": {"create-token": {"id": "root"}}}))
        self.app = create_app(self.ds)
        self.client = TestClient(self.app, raise_server_exceptions=False)
        self.root = tokens.create(self.store, "root")[0]

    def rows(self) -> list[tuple[Any, ...]]:
        return sqlite3.connect(self.db).execute("select id, name from dogs order by id").fetchall()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, fixture_path: Path) -> Iterator[Env]:
    yield Env(tmp_path_factory.mktemp("public"), fixture_path, public=True)


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory, fixture_path: Path) -> dict[bool, Env]:
    """A public and a private instance, shared by the tests that only read."""
    return {public: Env(tmp_path_factory.mktemp(f"public-{public}"), fixture_path, public=public)
            for public in (True, False)}


@pytest.fixture
def private(tmp_path: Path, fixture_path: Path) -> Iterator[Env]:
    yield Env(tmp_path, fixture_path, public=False)


# Every kind of answer: JSON pages, listings, CSV (buffered and streamed), redirects, 404s,
# 405s for known and made-up methods, validation errors, writes, the token API, preflights.
REQUESTS = [
    ("GET", "/.json", None), ("GET", "/-/databases.json", None), ("GET", "/-/actor.json", None),
    ("GET", "/-/versions.json", None), ("GET", "/fixtures.json", None), ("GET", "/fixtures/dogs.json", None),
    ("GET", "/fixtures/dogs/1.json", None), ("GET", "/fixtures/dogs.csv", None),
    ("GET", "/fixtures/dogs.csv?_stream=on", None), ("GET", "/fixtures.csv?sql=select+1", None),
    ("HEAD", "/fixtures/dogs.json", None), ("GET", "/fixtures/dogs/", None), ("GET", "//evil.example/", None),
    ("GET", "/nope.json", None), ("GET", "/fixtures/nope.json", None), ("GET", "/fixtures/dogs.json?_size=x", None),
    ("POST", "/fixtures/dogs.json", b"{}"), ("GET", "/write/dogs/-/insert", None),
    ("TRACE", "/", None), ("TRACE", "/fixtures/dogs.json", None), ("FOO", "/fixtures.json", None),
    ("PUT", "/write/dogs/-/insert", b"{}"), ("DELETE", "/-/api/tokens", None), ("PATCH", "/", None),
    ("POST", "/write/dogs/-/insert", b'{"row": {"name": "Zed"}}'), ("POST", "/write/dogs/-/insert", b"{nope"),
    ("GET", "/-/api/tokens", None), ("POST", "/-/api/tokens", b"{}"), ("OPTIONS", "/-/api/tokens", None),
]


@pytest.mark.parametrize("method, path, body", REQUESTS)
@pytest.mark.parametrize("credentials", [False, True])
def test_every_response_carries_nosniff_and_private_no_store_with_credentials(
        env: Env, method: str, path: str, body: bytes | None, credentials: bool) -> None:
    headers = {"Authorization": f"Bearer {env.root}"} if credentials else {}
    url = "http://testserver" + path  # absolute: `//evil.example/` is a path here
    r = env.client.request(method, url, content=body, headers=headers, follow_redirects=False)
    assert r.status_code < 500, r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    if credentials or method == "POST":
        assert r.headers["cache-control"] == "private, no-store"
    if r.status_code >= 400 and method != "HEAD":
        assert r.headers["content-type"].startswith("application/json")
        assert r.json()["ok"] is False
    if credentials:
        # Bad credentials too: the 401 for a malformed or revoked token is private as well.
        bad = env.client.request(method, url, content=body, headers={"Authorization": "Bearer nope"},
                                 follow_redirects=False)
        assert bad.headers["cache-control"] == "private, no-store"
        assert bad.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method", ["TRACE", "FOO", "PROPFIND", "CONNECT", "PUT", "DELETE"])
def test_unusual_methods_get_a_json_405(env: Env, method: str) -> None:
    for path in ("/", "/fixtures.json", "/fixtures/dogs.json", "/-/api/tokens", "/write/dogs/-/insert"):
        r = env.client.request(method, path)
        assert r.status_code == 405, (method, path, r.text)
        assert r.json() == {"ok": False, "error": "Method not allowed", "errors": ["Method not allowed"],
                            "status": 405, "title": None, "request_id": r.headers["x-request-id"]}


@pytest.mark.parametrize("path, location", [
    ("//evil.example/", "/evil.example"),
    ("///evil.example/", "/evil.example"),
    ("/\\evil.example/", "/%5Cevil.example"),
    ("/\\/evil.example/", "/%5C/evil.example"),
    ("//evil.example/x/?a=1", "/evil.example/x?a=1"),
    ("/%2F%2Fevil.example/", "/%2F%2Fevil.example"),
    ("/fixtures/dogs/?_size=1", "/fixtures/dogs?_size=1"),
])
@pytest.mark.parametrize("public", [True, False])
def test_trailing_slash_redirects_stay_on_this_host(envs: dict[bool, Env], path: str,
                                                    location: str, public: bool) -> None:
    env = envs[public]
    # An absolute URL, so the client sends `//evil.example/` as the path, not as a host.
    r = env.client.get("http://testserver" + path, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == location
    assert not r.headers["location"].startswith(("//", "/\\"))


@pytest.mark.parametrize("public", [True, False])
@pytest.mark.parametrize("value", ["garbage", "UPPER", "dstok_abc", "lstok_", "lstok_abc", "lstok__x",
                                   "lstok_abc_", "", "lstok_ab cd"])
def test_malformed_tokens_are_401_invalid_token_never_anonymous(
        envs: dict[bool, Env], fixture_path: Path, public: bool, value: str) -> None:
    env = envs[public]
    if value == "UPPER":
        value = env.root.upper()
    for method, path in [("GET", "/fixtures/dogs.json"), ("GET", "/-/actor.json"), ("GET", "/.json"),
                         ("POST", "/-/api/tokens"), ("POST", "/write/dogs/-/insert")]:
        r = env.client.request(method, path, headers={"Authorization": f"Bearer {value}"}, content=b"{}")
        assert r.status_code == 401, (value, path, r.text)
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    # Without a token store no bearer token can be valid either.
    ds = Lambdasette(storage=LocalStorage([fixture_path]), options=Options(public=True))
    with TestClient(create_app(ds)) as client:
        r = client.get("/fixtures/dogs.json", headers={"Authorization": f"Bearer {env.root}"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_cors_lets_a_browser_use_the_token_api_and_read_your_writes(env: Env) -> None:
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    for path in ("/-/api/tokens", "/-/api/tokens/abc123/-/revoke", "/write/dogs/-/insert", "/write/-/create"):
        r = env.client.options(path, headers=preflight)
        assert r.status_code == 200
        allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type"} <= allowed, path
        assert "POST" in r.headers["access-control-allow-methods"]
    # A read that sends the txid header (as a write's answer gave it): its preflight allows it.
    r = env.client.options("/fixtures/dogs.json", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization, x-lambdasette-txid"})
    assert "x-lambdasette-txid" in r.headers["access-control-allow-headers"].lower()
    assert "access-control-request-headers" in r.headers["vary"].lower()
    # Otherwise the reference's sets, unchanged (Datasette 0.65 for reads).
    read = env.client.get("/fixtures/dogs.json")
    assert read.headers["access-control-allow-headers"] == "Authorization"
    assert read.headers["access-control-expose-headers"] == "Link"
    assert env.client.options("/fixtures/dogs.json").headers["access-control-allow-headers"] == "Authorization"


def test_an_answer_with_a_txid_exposes_it(tmp_path: Path, fixture_path: Path) -> None:
    from starlette.requests import Request
    from starlette.responses import Response

    from lambdasette.web.responses import CORS_HEADERS, TXID_HEADER, with_txid

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/", "query_string": b""})
    durable = with_txid(CORS_HEADERS, request, Response(headers={TXID_HEADER: "42"}))
    assert durable["Access-Control-Expose-Headers"] == f"Link, {TXID_HEADER}"
    assert with_txid(CORS_HEADERS, request, Response()) == CORS_HEADERS


# -- the token is checked when the request is acted on ------------------------------------------

def call_with_slow_body(app: Any, method: str, path: str, token: str, body: bytes,
                        while_the_body_travels: Callable[[], None]) -> tuple[int, bytes]:
    """An ASGI request whose headers arrive first; `while_the_body_travels` runs before the
    body is delivered (as a client that sends its headers, waits, then sends the body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "headers": [(b"host", b"testserver"), (b"authorization", f"Bearer {token}".encode()),
                         (b"content-length", str(len(body)).encode())]}
    delivered = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            while_the_body_travels()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_a_token_revoked_while_the_body_travels_writes_nothing(private: Env) -> None:
    victim, record = tokens.create(private.store, "root")
    before = private.rows()
    status, body = call_with_slow_body(private.app, "POST", "/write/dogs/-/insert", victim,
                                       b'{"row": {"id": 99, "name": "after revocation"}}',
                                       lambda: private.store.revoke(record.id))
    assert status == 401, body
    assert private.rows() == before


def test_a_token_that_expires_while_the_body_travels_is_401_on_token_create(private: Env) -> None:
    short, _ = tokens.create(private.store, "root", None, 1)
    status, body = call_with_slow_body(private.app, "POST", "/-/api/tokens", short, b"{}",
                                       lambda: time.sleep(1.2))
    assert status == 401, body
    assert len(private.store.list()) == 2


def test_token_create_never_500s_when_its_token_expires_mid_request(
        private: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token was valid when verified but has expired by the time its lifespan is computed."""
    from lambdasette.endpoints import tokens as token_api

    short, record = tokens.create(private.store, "root", None, 60)

    class Later:
        @staticmethod
        def time() -> float:
            return record.expires + 1

    monkeypatch.setattr(token_api, "time", Later)
    r = private.client.post("/-/api/tokens", json={}, headers={"Authorization": f"Bearer {short}"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert len(private.store.list()) == 2


def test_a_token_revoked_while_a_write_waits_for_the_writer_commits_nothing(private: Env) -> None:
    victim, record = tokens.create(private.store, "root")
    before = private.rows()
    lock = private.ds.writer._lock("write")
    answers: list[Any] = []
    with lock:  # another write holds the database
        thread = threading.Thread(target=lambda: answers.append(private.client.post(
            "/write/dogs/-/insert", json={"row": {"id": 98, "name": "queued"}},
            headers={"Authorization": f"Bearer {victim}"})))
        thread.start()
        time.sleep(0.5)  # verified, body read, now waiting for the lock
        private.store.revoke(record.id)
    thread.join(10)
    assert answers and answers[0].status_code == 401, answers and answers[0].text
    assert private.rows() == before


def test_before_commit_runs_inside_the_transaction_and_rolls_it_back(tmp_path: Path) -> None:
    db = make_write_db(tmp_path / "write.db")
    writer = Writer(LocalStorage([db]))
    calls: list[str] = []

    def insert(d: Any) -> None:
        d.conn.execute("insert into dogs (name) values ('x')")

    def refuse() -> None:
        calls.append("checked")
        raise InvalidToken("Token has been revoked")

    with pytest.raises(InvalidToken):
        writer.run("write", insert, before_commit=refuse)
    assert calls == ["checked"]
    assert sqlite3.connect(db).execute("select count(*) from dogs where name = 'x'").fetchone() == (0,)
    writer.run("write", insert, before_commit=lambda: calls.append("ok"))
    assert sqlite3.connect(db).execute("select count(*) from dogs where name = 'x'").fetchone() == (1,)

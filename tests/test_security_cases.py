"""The reproductions of issue 12 (`../shared/cases/security/NN-*.sh`, and `cases/data/05`) as
tests: each scenario as its script sets it up, and what must hold. The kinds of fault behind
them are covered more widely in test_bodies, test_dispatch, test_datadir, test_tokens and
test_token_api."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage

from .test_cli_serve import BIN, free_port, serving, wait_until_answering
from .test_dispatch import call_with_slow_body


class Space:
    """`lambdasette serve data.db --tokens-db tokens.db [--permissions ...]`, in process."""

    def __init__(self, tmp_path: Path, schema: str, *, public: bool = False, ctk: str | None = None) -> None:
        self.db = tmp_path / "data.db"
        conn = sqlite3.connect(self.db)
        conn.executescript(schema)
        conn.commit()
        conn.close()
        self.store = LocalTokenStore(tmp_path / "tokens.db")
        policy = Policy.parse({"permissions": {"create-token": {"id": ctk}}} if ctk else None)
        self.ds = Lambdasette(storage=LocalStorage([self.db]), options=Options(public=public),
                              tokens=self.store, policy=policy)
        self.app = create_app(self.ds)
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def token(self, actor: str, restrictions: dict[str, Any] | None = None, expires_after: int | None = None) -> str:
        return tokens.create(self.store, actor, restrictions, expires_after)[0]

    def request(self, method: str, path: str, token: str | None, body: Any = None) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        content = json.dumps(body).encode() if body is not None else None
        return self.client.request(method, "http://testserver" + path, headers=headers, content=content,
                                   follow_redirects=False)


def token_id(token: str) -> str:
    return token.split("_")[1]


def test_04_token_api_honours_restrictions(tmp_path: Path) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key); create table secret_payroll(id integer primary key);")
    root_narrow = s.token("root", {"r": {"data": {"t1": ["vt"]}}})
    alice_full = s.token("alice", {"r": {"data": {"secret_payroll": ["vt"], "t1": ["vt"]}}})
    alice_narrow = s.token("alice", {"r": {"data": {"t1": ["vt"]}}})
    bob = s.token("bob")
    assert s.request("GET", "/-/api/tokens", root_narrow).status_code == 403
    assert s.request("POST", f"/-/api/tokens/{token_id(bob)}/-/revoke", root_narrow).status_code in (403, 404)
    assert s.request("GET", "/data/t1.json", bob).status_code == 200
    listing = s.request("GET", "/-/api/tokens", alice_narrow)
    assert listing.status_code == 403 and "secret_payroll" not in listing.text
    assert s.request("POST", f"/-/api/tokens/{token_id(alice_full)}/-/revoke", alice_narrow).status_code in (403, 404)
    assert s.request("GET", "/data/t1.json", alice_full).status_code == 200


def test_05_child_token_does_not_outlive_its_revoked_parent(tmp_path: Path) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key)", ctk="alice")
    parent = s.token("alice", {"a": ["ctk"], "r": {"data": {"t1": ["vt"]}}}, 3600)
    child = s.request("POST", "/-/api/tokens", parent, {}).json()["token"]
    s.store.revoke(token_id(parent))
    assert s.request("GET", "/data/t1.json", parent).status_code == 401
    assert s.request("GET", "/data/t1.json", child).status_code == 401
    assert s.request("POST", "/-/api/tokens", child, {}).status_code == 401


def test_06_no_open_redirect(tmp_path: Path) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key)")
    for path in ("//evil.example/", "/\\evil.example/"):
        location = s.request("GET", path, None).headers.get("location", "")
        assert not location.startswith(("//", "/\\")), location


LONE_SURROGATE_WRITES = [
    ("/data/t1/-/insert", {"row": {"id": 2, "name": "\ud800"}}),
    ("/data/t1/-/upsert", {"row": {"id": 1, "name": "\ud800"}}),
    ("/data/t1/1/-/update", {"update": {"name": "\ud800"}}),
    ("/data/-/create", {"table": "x\ud800", "row": {"id": 1}}),
    ("/data/t1/-/alter", {"operations": [{"op": "add_column", "args": {"name": "\ud800", "type": "text"}}]}),
]


@pytest.mark.parametrize("path, body", LONE_SURROGATE_WRITES)
def test_08_lone_surrogates_in_bodies_are_400(tmp_path: Path, path: str, body: Any) -> None:
    s = Space(tmp_path, "create table t1 (id integer primary key, name text); insert into t1 values (1, 'a');")
    r = s.request("POST", path, s.token("root"), body)
    assert r.status_code == 400, r.text
    assert sqlite3.connect(s.db).execute("select * from t1").fetchall() == [(1, "a")]


def test_09_a_surrogate_in_restrictions_never_poisons_listings(tmp_path: Path) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key)", ctk="alice")
    root, alice = s.token("root"), s.token("alice")
    r = s.request("POST", "/-/api/tokens", alice, {"restrictions": {"r": {"\ud800": {"t": ["vt"]}}}})
    assert r.status_code == 400
    assert len(s.store.list()) == 2
    assert s.request("GET", "/-/api/tokens", root).status_code == 200
    assert s.request("GET", "/-/api/tokens", alice).status_code == 200


@pytest.mark.parametrize("path, body", [
    ("/data/t1/-/insert", {"row": {"id": 1, "n": 99999999999999999999999}}),
    ("/data/-/create", {"table": "t2", "row": {"id": 1, "n": 99999999999999999999999}}),
    ("/data/t1/-/upsert", {"row": {"id": 1, "n": 18446744073709551616}}),
    ("/-/api/tokens", {"expires_after": 99999999999999999999999}),
])
def test_10_integers_beyond_64_bits_are_400(tmp_path: Path, path: str, body: Any) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key, n integer)")
    r = s.request("POST", path, s.token("root"), body)
    assert r.status_code == 400, r.text
    assert sqlite3.connect(s.db).execute("select name from sqlite_master").fetchall() == [("t1",)]
    assert len(s.store.list()) == 1


def test_12_token_checked_when_the_request_is_acted_on(tmp_path: Path) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key, note text)")
    victim = s.token("root")
    status, _ = call_with_slow_body(s.app, "POST", "/data/t1/-/insert", victim,
                                    b'{"row": {"id": 1, "note": "after revocation"}}',
                                    lambda: s.store.revoke(token_id(victim)))
    assert status == 401
    assert sqlite3.connect(s.db).execute("select * from t1").fetchall() == []
    short = s.token("root", None, 1)
    status, _ = call_with_slow_body(s.app, "POST", "/-/api/tokens", short, b"{}", lambda: time.sleep(1.2))
    assert status == 401


@pytest.mark.parametrize("bad", ["garbage", "UPPER", "dstok_abc"])
def test_14_malformed_tokens_are_401_not_anonymous(tmp_path: Path, bad: str) -> None:
    s = Space(tmp_path, "create table t1(id integer primary key)", public=True)
    good = s.token("alice")
    r = s.request("GET", "/data/t1.json", good.upper() if bad == "UPPER" else bad)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_16_token_store_is_not_served_as_data(tmp_path: Path) -> None:
    space = tmp_path / "space"
    space.mkdir()
    conn = sqlite3.connect(space / "data.db")
    conn.execute("create table t1(id integer primary key)")
    conn.commit()
    conn.close()
    tokens.create(LocalTokenStore(space / "tokens.db"), "alice")
    with serving(str(space), "--public", "--tokens-db", str(space / "tokens.db")) as base:
        listed = urllib.request.urlopen(base + "/-/databases.json").read().decode()
        assert '"tokens"' not in listed
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + "/tokens.json")
        assert caught.value.code != 200


def test_17_one_data_dir_one_process(tmp_path: Path) -> None:
    """A writer and a reader of one replica, both with the default --data-dir."""
    replica = f"file://{tmp_path / 'replica'}"
    conn = sqlite3.connect(tmp_path / "data.db")
    conn.execute("create table t1(id integer primary key, v text)")
    conn.commit()
    conn.close()
    subprocess.run([*BIN, "db", "push", str(tmp_path / "data.db"), "--name", "data", "--replica-url", replica],
                   check=True, capture_output=True)
    port = free_port()
    writer = subprocess.Popen([*BIN, "serve", "--replica-url", replica, "--role", "write", "--port", str(port),
                               "--tokens-db", str(tmp_path / "tokens.db")], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_answering(port, writer, timeout=60)
        reader = subprocess.run([*BIN, "serve", "--replica-url", replica, "--role", "read", "--public",
                                 "--port", str(free_port()), "--tokens-db", str(tmp_path / "tokens.db")],
                                cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert reader.returncode != 0
        assert "data" in reader.stderr and str(tmp_path / ".lambdasette" / "copies") in reader.stderr
    finally:
        writer.terminate()
        writer.wait(20)


@pytest.mark.parametrize("path, body", [
    ("/data/runs/-/insert", {"row": {"id": 2, "seed": 99999999999999999999}}),
    ("/data/runs/-/upsert", {"row": {"id": 1, "seed": -99999999999999999999}}),
    ("/data/runs/1/-/update", {"update": {"seed": 18446744073709551615}}),
    ("/data/-/create", {"table": "more_runs", "pk": "id", "row": {"id": 1, "seed": 99999999999999999999}}),
])
def test_data_05_bigint_writes_are_4xx(tmp_path: Path, path: str, body: Any) -> None:
    s = Space(tmp_path, "create table runs (id integer primary key, seed integer); insert into runs values (1, 5);")
    r = s.request("POST", path, s.token("root"), body)
    assert 400 <= r.status_code < 500, r.text
    assert "seed" in r.json()["error"]
    assert sqlite3.connect(s.db).execute("select * from runs").fetchall() == [(1, 5)]

"""`/-/api/tokens`: create, list, show, revoke - and the rules on who may do which."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage


@pytest.fixture
def env(fixture_path: Path, tmp_path: Path) -> Iterator[tuple[TestClient, LocalTokenStore]]:
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({"permissions": {"create-token": {"id": "alice"}}})
    ds = Lambdasette(storage=LocalStorage([fixture_path]), options=Options(public=False),
                     tokens=store, policy=policy)
    with TestClient(create_app(ds)) as c:
        yield c, store


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_use_list_show_revoke(env) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    r = c.post("/-/api/tokens", headers=auth(root),
               json={"restrictions": {"r": {"fixtures": {"dogs": ["vt"]}}}, "expires_after": 600})
    assert r.status_code == 201, r.text
    body = r.json()
    new, token_id = body["token"], body["id"]
    assert body["actor"] == "root" and body["expires"] - body["created"] == 600
    assert body["restrictions"] == {"r": {"fixtures": {"dogs": ["view-table"]}}}
    assert c.get("/fixtures/dogs.json", headers=auth(new)).status_code == 200
    assert c.get("/fixtures/owners.json", headers=auth(new)).status_code == 403
    listed = c.get("/-/api/tokens", headers=auth(root)).json()["tokens"]
    assert token_id in {t["id"] for t in listed}
    assert all("secret" not in str(t) and new not in str(t) for t in listed)
    shown = c.get(f"/-/api/tokens/{token_id}", headers=auth(root)).json()["token"]
    assert shown["status"] == "active" and "secret_hash" not in shown
    r = c.post(f"/-/api/tokens/{token_id}/-/revoke", headers=auth(root))
    assert r.status_code == 200 and r.json()["token"]["status"] == "revoked"
    # Revocation holds from the very next request.
    r = c.get("/fixtures/dogs.json", headers=auth(new))
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'


def test_actors_see_and_revoke_only_their_own(env) -> None:
    c, store = env
    alice = tokens.create(store, "alice")[0]
    bob = tokens.create(store, "bob")[0]
    _, root_record = tokens.create(store, "root")
    mine = c.post("/-/api/tokens", headers=auth(alice), json={}).json()
    assert mine["actor"] == "alice"
    listed = c.get("/-/api/tokens", headers=auth(alice)).json()["tokens"]
    assert {t["actor"] for t in listed} == {"alice"}
    assert c.get("/-/api/tokens?actor=root", headers=auth(alice)).status_code == 403
    # Someone else's token is answered as a missing one: its id reveals nothing.
    assert c.get(f"/-/api/tokens/{root_record.id}", headers=auth(alice)).status_code == 404
    r = c.post(f"/-/api/tokens/{root_record.id}/-/revoke", headers=auth(alice))
    assert r.status_code == 404 and r.json()["error"] == "Token not found"
    assert not store.get(root_record.id).revoked
    assert c.post(f"/-/api/tokens/{mine['id']}/-/revoke", headers=auth(alice)).status_code == 200
    # bob has no create-token grant: no token API at all; anonymous callers have nothing.
    for method, path in [("post", "/-/api/tokens"), ("get", "/-/api/tokens"),
                         ("get", "/-/api/tokens/nope"), ("post", "/-/api/tokens/nope/-/revoke")]:
        r = getattr(c, method)(path, headers=auth(bob))
        assert r.status_code == 403 and r.json()["error"] == "Permission denied: need create-token"
    assert c.post("/-/api/tokens", json={}).status_code == 401
    assert c.get("/-/api/tokens/nope", headers=auth(alice)).status_code == 404


def test_a_token_mints_no_more_than_it_holds(env) -> None:
    c, store = env
    held = {"a": ["create-token"], "d": {"fixtures": ["vt", "vd"]}}
    parent, record = tokens.create(store, "root", held, expires_after=300)
    r = c.post("/-/api/tokens", headers=auth(parent), json={"restrictions": {"a": ["vt"]}})
    assert r.status_code == 403 and "view-table" in r.json()["error"]
    r = c.post("/-/api/tokens", headers=auth(parent),
               json={"restrictions": {"r": {"fixtures": {"dogs": ["vt"]}}}, "expires_after": 3600})
    assert r.status_code == 403 and "expires_after can be at most" in r.json()["error"]
    r = c.post("/-/api/tokens", headers=auth(parent), json={})
    assert r.status_code == 201
    child = r.json()
    assert child["restrictions"] == record.restrictions
    assert child["expires"] <= record.expires
    narrow = c.post("/-/api/tokens", headers=auth(parent),
                    json={"restrictions": {"r": {"fixtures": {"dogs": ["vt"]}}}}).json()
    assert narrow["restrictions"] == {"r": {"fixtures": {"dogs": ["view-table"]}}}
    # Without create-token in its restrictions a token cannot mint at all.
    plain = tokens.create(store, "root", {"a": ["vt"]})[0]
    assert c.post("/-/api/tokens", headers=auth(plain), json={}).status_code == 403


@pytest.mark.parametrize("body, message", [
    ({"restrictions": {"a": ["fly"]}}, "Unknown action: fly"),
    ({"restrictions": {"a": "vt"}}, '"a" must be a list of actions'),
    ({"restrictions": ["vt"]}, "restrictions must be an object"),
    ({"expires_after": -5}, "expires_after must be a positive whole number of seconds"),
    ({"expires_after": "soon"}, "expires_after must be a positive whole number of seconds"),
    ({"bogus": 1}, "Invalid keys: bogus"),
    ([1, 2], "JSON must be a dictionary"),
])
def test_bad_input_is_a_clear_400(env, body, message) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    r = c.post("/-/api/tokens", headers=auth(root), json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_malformed_json_and_wrong_methods(env) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    r = c.post("/-/api/tokens", headers=auth(root), content=b"{nope")
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid JSON")
    assert c.delete("/-/api/tokens", headers=auth(root)).status_code == 405
    assert c.get("/-/api/tokens/a/b", headers=auth(root)).status_code == 404

"""`/-/api/tokens`: create, list, show, revoke - and the rules on who may do which."""

from __future__ import annotations

import json
from collections.abc import Iterator
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
    # An id that cannot be one of ours is a missing token too, and is never looked up (a
    # 3,000-character key is an error of its own in DynamoDB).
    for bogus in ("a" * 3000, "NOTHEX", mine["id"].upper()):
        assert c.get(f"/-/api/tokens/{bogus}", headers=auth(alice)).status_code == 404
        assert c.post(f"/-/api/tokens/{bogus}/-/revoke", headers=auth(alice)).status_code == 404
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


# -- the token API honours the calling token's restrictions ------------------------------------

@pytest.fixture
def narrowed(fixture_path: Path, tmp_path: Path) -> Iterator[tuple[TestClient, LocalTokenStore]]:
    """alice may mint tokens but may not see `owners`; bob may not mint at all."""
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({"permissions": {"create-token": {"id": ["alice", "root"]}},
                           "databases": {"fixtures": {"tables": {
                               "owners": {"permissions": {"view-table": {"id": "root"}}}}}}})
    ds = Lambdasette(storage=LocalStorage([fixture_path]), options=Options(public=False),
                     tokens=store, policy=policy)
    with TestClient(create_app(ds)) as c:
        yield c, store


def ids(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {t["id"] for t in response.json()["tokens"]}


# A token narrowed to viewing one table, with and without create-token, for root and alice.
NARROW = {"r": {"fixtures": {"dogs": ["vt"]}}}
NARROW_CTK = {"a": ["ctk"], "r": {"fixtures": {"dogs": ["vt"]}}}


@pytest.mark.parametrize("actor", ["root", "alice"])
def test_without_create_token_on_the_token_no_operation_is_allowed(narrowed, actor: str) -> None:
    c, store = narrowed
    caller = tokens.create(store, actor, NARROW)[0]
    other = tokens.create(store, actor)[1]
    bob = tokens.create(store, "bob")[1]
    for target in (other, bob):
        for method, path, body in [("get", "/-/api/tokens", None), ("get", f"/-/api/tokens/{target.id}", None),
                                   ("post", "/-/api/tokens", {}), ("post", f"/-/api/tokens/{target.id}/-/revoke", None)]:
            kwargs = {"json": body} if body is not None else {}
            r = getattr(c, method)(path, headers=auth(caller), **kwargs)
            assert r.status_code == 403, (method, path, r.text)
            assert "secret" not in r.text and target.id not in r.text
        assert not store.get(target.id).revoked
    assert len(store.list()) == 3


@pytest.mark.parametrize("actor", ["root", "alice"])
def test_a_narrowed_token_manages_only_itself_and_what_it_minted(narrowed, actor: str) -> None:
    c, store = narrowed
    wide_secret, wide = tokens.create(store, actor, {"a": ["ctk"], "r": {"fixtures": {"owners": ["vt"], "dogs": ["vt"]}}})
    caller_secret, caller = tokens.create(store, actor, NARROW_CTK)
    twin = tokens.create(store, actor, NARROW_CTK)[1]  # as narrow, but not minted by the caller
    bob = tokens.create(store, "bob")[1]
    child = c.post("/-/api/tokens", headers=auth(caller_secret), json={}).json()
    grandchild = c.post("/-/api/tokens", headers=auth(child["token"]), json={}).json()
    assert child["parent"] == caller.id and grandchild["parent"] == child["id"]
    mine = {caller.id, child["id"], grandchild["id"]}
    # list
    assert ids(c.get("/-/api/tokens", headers=auth(caller_secret))) == mine
    assert ids(c.get("/-/api/tokens", headers=auth(child["token"]))) == {child["id"], grandchild["id"]}
    assert c.get("/-/api/tokens?actor=bob", headers=auth(caller_secret)).status_code == 403
    listing = c.get("/-/api/tokens", headers=auth(caller_secret)).text
    assert "owners" not in listing and wide.id not in listing
    # show and revoke: anything outside is missing
    for target in (wide, twin, bob):
        assert c.get(f"/-/api/tokens/{target.id}", headers=auth(caller_secret)).status_code == 404
        assert c.post(f"/-/api/tokens/{target.id}/-/revoke", headers=auth(caller_secret)).status_code == 404
        assert not store.get(target.id).revoked
    shown = c.get(f"/-/api/tokens/{grandchild['id']}", headers=auth(caller_secret)).json()["token"]
    assert shown["status"] == "active" and shown["parent"] == child["id"]
    # its own record: the parent it came from, if any, is not its to see
    own = c.get(f"/-/api/tokens/{child['id']}", headers=auth(child["token"])).json()["token"]
    assert own["parent"] is None
    # create: within what it holds
    r = c.post("/-/api/tokens", headers=auth(caller_secret), json={"restrictions": {"r": {"fixtures": {"owners": ["vt"]}}}})
    assert r.status_code == 403
    # revoke its child: the grandchild goes with it, and shows so
    assert c.post(f"/-/api/tokens/{child['id']}/-/revoke", headers=auth(caller_secret)).status_code == 200
    listed = {t["id"]: t["status"] for t in c.get("/-/api/tokens", headers=auth(caller_secret)).json()["tokens"]}
    assert listed[grandchild["id"]] == "revoked"
    assert c.get("/fixtures/dogs.json", headers=auth(grandchild["token"])).status_code == 401
    assert c.get("/fixtures/dogs.json", headers=auth(wide_secret)).status_code == 200


def test_a_narrowed_root_token_does_not_manage_every_actor(narrowed) -> None:
    c, store = narrowed
    caller = tokens.create(store, "root", NARROW_CTK)[0]
    alice = tokens.create(store, "alice")[1]
    assert c.get("/-/api/tokens?actor=alice", headers=auth(caller)).status_code == 403
    assert alice.id not in ids(c.get("/-/api/tokens", headers=auth(caller)))
    assert c.post(f"/-/api/tokens/{alice.id}/-/revoke", headers=auth(caller)).status_code == 404
    assert not store.get(alice.id).revoked
    # An unrestricted root token still manages everyone's.
    full = tokens.create(store, "root")[0]
    assert alice.id in ids(c.get("/-/api/tokens?actor=alice", headers=auth(full)))


def test_a_minted_unrestricted_token_manages_only_its_own_subtree(narrowed) -> None:
    c, store = narrowed
    master_secret, master = tokens.create(store, "alice")
    other = tokens.create(store, "alice")[1]
    child = c.post("/-/api/tokens", headers=auth(master_secret), json={}).json()
    assert child["restrictions"] == {} and child["parent"] == master.id
    assert ids(c.get("/-/api/tokens", headers=auth(child["token"]))) == {child["id"]}
    assert c.post(f"/-/api/tokens/{master.id}/-/revoke", headers=auth(child["token"])).status_code == 404
    assert c.post(f"/-/api/tokens/{other.id}/-/revoke", headers=auth(child["token"])).status_code == 404
    # The actor's own unrestricted root token sees all of alice's tokens.
    assert ids(c.get("/-/api/tokens", headers=auth(master_secret))) == {master.id, other.id, child["id"]}


def test_listings_leave_out_names_the_caller_may_not_see(narrowed) -> None:
    c, store = narrowed
    master = tokens.create(store, "alice")[0]
    # Made for alice by an administrator: it names a table alice may not view.
    made = tokens.create(store, "alice", {"r": {"fixtures": {"owners": ["vt"], "dogs": ["vt"]},
                                                "secretdb": {"t": ["vt"]}}, "d": {"hush": ["vt"]}})[1]
    shown = c.get(f"/-/api/tokens/{made.id}", headers=auth(master)).json()["token"]
    assert shown["restrictions"] == {"r": {"fixtures": {"dogs": ["view-table"]}, "secretdb": {"t": ["view-table"]}},
                                     "d": {"hush": ["view-table"]}}
    assert shown["restrictions_partial"] is True
    listing = c.get("/-/api/tokens", headers=auth(master)).text
    assert "owners" not in listing
    root = tokens.create(store, "root")[0]
    assert "owners" in c.get(f"/-/api/tokens/{made.id}", headers=auth(root)).text


def test_revoking_a_parent_over_http_reaches_children_and_grandchildren(env) -> None:
    c, store = env
    parent = tokens.create(store, "alice", {"a": ["ctk", "vt"]}, 3600)[0]
    child = c.post("/-/api/tokens", headers=auth(parent), json={}).json()
    grandchild = c.post("/-/api/tokens", headers=auth(child["token"]), json={}).json()
    assert grandchild["expires"] <= child["expires"]
    for token in (parent, child["token"], grandchild["token"]):
        assert c.get("/fixtures/dogs.json", headers=auth(token)).status_code == 200
    parent_id = tokens.parse_token(parent)[0]
    assert c.post(f"/-/api/tokens/{parent_id}/-/revoke", headers=auth(parent)).status_code == 200
    for token in (parent, child["token"], grandchild["token"]):
        r = c.get("/fixtures/dogs.json", headers=auth(token))
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        assert c.post("/-/api/tokens", headers=auth(token), json={}).status_code == 401


@pytest.mark.parametrize("body", [
    {"restrictions": {"r": {"\ud800": {"t": ["vt"]}}}},
    {"restrictions": {"d": {"db\udfff": ["vt"]}}},
    {"restrictions": {"a": ["\ud800"]}},
    {"expires_after": 99999999999999999999999},
    {"expires_after": 2**63},
    {"expires_after": 10**12},
])
def test_token_data_that_cannot_be_stored_is_400_and_listings_keep_working(env, body: Any) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    alice = tokens.create(store, "alice")[0]
    r = c.post("/-/api/tokens", headers=auth(alice), content=json.dumps(body).encode())
    assert r.status_code == 400, r.text
    assert len(store.list()) == 2
    assert c.get("/-/api/tokens", headers=auth(root)).status_code == 200
    assert c.get("/-/api/tokens", headers=auth(alice)).status_code == 200


def test_a_poisoned_record_from_before_never_breaks_a_listing(env) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    _, record = tokens.new_record("alice", None, None)
    record.restrictions = {"r": {"\ud800": {"t": ["view-table"]}}}  # as stored by an older version
    store.put(record)
    r = c.get("/-/api/tokens", headers=auth(root))
    assert r.status_code == 200 and "\\ud800" in r.text


def test_descriptions(env, tmp_path: Path) -> None:
    c, store = env
    root = tokens.create(store, "root")[0]
    r = c.post("/-/api/tokens", headers=auth(root), json={"description": "CI uploads", "expires_after": 60})
    assert r.status_code == 201 and r.json()["description"] == "CI uploads"
    token_id = r.json()["id"]
    assert c.get(f"/-/api/tokens/{token_id}", headers=auth(root)).json()["token"]["description"] == "CI uploads"
    listed = {t["id"]: t for t in c.get("/-/api/tokens", headers=auth(root)).json()["tokens"]}
    assert listed[token_id]["description"] == "CI uploads" and listed[token_id]["ended"] is None
    for bad in (7, ["x"], "x" * 501, "a\u0000b"):
        r = c.post("/-/api/tokens", headers=auth(root), json={"description": bad})
        assert r.status_code == 400 and "description" in r.json()["error"], bad
    # Revoked: when it ended is shown.
    revoked = c.post(f"/-/api/tokens/{token_id}/-/revoke", headers=auth(root)).json()["token"]
    assert revoked["status"] == "revoked" and revoked["ended"] == revoked["revoked_at"] is not None


def test_cli_description(tmp_path: Path) -> None:
    import subprocess
    import sys

    db = str(tmp_path / "t.db")
    run = [sys.executable, "-m", "lambdasette.cli", "token"]
    out = subprocess.run([*run, "create", "alice", "--description", "for the dashboard", "--tokens-db", db],
                         capture_output=True, text=True, check=True).stdout.strip()
    record = tokens.verify(LocalTokenStore(Path(db)), out)
    assert record is not None and record.description == "for the dashboard"
    listed = subprocess.run([*run, "list", "--tokens-db", db], capture_output=True, text=True).stdout
    assert json.loads(listed)["description"] == "for the dashboard"

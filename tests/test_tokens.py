"""The token store contract; every implementation must pass these."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lambdasette.auth import tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_allow
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.errors import InvalidToken


@pytest.fixture(params=["local", "dynamodb"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> tokens.TokenStore:
    if request.param == "local":
        return LocalTokenStore(tmp_path / "tokens.db")
    from lambdasette.auth.store_dynamodb import DynamoDBTokenStore

    from .aws import create_tokens_table

    client = request.getfixturevalue("dynamodb")
    return DynamoDBTokenStore(create_tokens_table(client), client=client)


def stored_bytes(store: tokens.TokenStore, tmp_path: Path) -> str:
    """Everything the store holds, as text: the file, or every item of the table."""
    if isinstance(store, LocalTokenStore):
        return (tmp_path / "tokens.db").read_bytes().decode("latin-1")
    return repr(store.client.scan(TableName=store.table)["Items"])


def test_created_token_verifies_and_only_a_hash_is_stored(store, tmp_path: Path) -> None:
    token, record = tokens.create(store, "alice", {"a": ["vt"]}, expires_after=3600)
    assert token.startswith("lstok_")
    found = tokens.verify(store, token)
    assert found is not None and found.actor == "alice"
    assert found.restrictions == {"a": ["view-table"]}
    secret = token.rsplit("_", 1)[1]
    held = stored_bytes(store, tmp_path)
    assert record.id in held and secret not in held


def test_bad_expired_revoked(store) -> None:
    token, record = tokens.create(store, "bob", expires_after=10)
    with pytest.raises(InvalidToken):
        tokens.verify(store, token[:-2] + "xx")
    with pytest.raises(InvalidToken):
        tokens.verify(store, "lstok_nope_secret")
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(store, token, now=record.created + 10)
    assert store.revoke(record.id)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(store, token)
    assert tokens.verify(store, "dstok_not-ours") is None


def test_last_used_written_at_most_once_a_minute(store) -> None:
    token, record = tokens.create(store, "carol")
    tokens.verify(store, token, now=record.created + 5)
    tokens.verify(store, token, now=record.created + 30)
    assert store.get(record.id).last_used == record.created + 5
    tokens.verify(store, token, now=record.created + 70)
    assert store.get(record.id).last_used == record.created + 70


def test_list_by_actor(store) -> None:
    tokens.create(store, "a")
    tokens.create(store, "b")
    tokens.create(store, "a", expires_after=60)
    assert [r.actor for r in store.list("a")] == ["a", "a"]
    assert len(store.list()) == 3
    assert not store.revoke("no-such-id")
    assert store.get("no-such-id") is None


def test_record_round_trips(store) -> None:
    _, record = tokens.create(store, "dora", {"r": {"data": {"dogs": ["vt", "ir"]}}}, 120)
    assert store.get(record.id) == record


def test_restrictions() -> None:
    r = normalize_restrictions({"a": ["vi"], "d": {"data": ["es"]}, "r": {"data": {"Dogs": ["ir"]}}})
    assert restrictions_allow(r, "view-instance", None, None)
    assert restrictions_allow(r, "execute-sql", "data", None)
    assert not restrictions_allow(r, "execute-sql", "other", None)
    assert restrictions_allow(r, "insert-row", "data", "dogs")
    assert not restrictions_allow(r, "delete-row", "data", "dogs")
    with pytest.raises(ValueError):
        normalize_restrictions({"a": ["fly"]})
    with pytest.raises(ValueError):
        normalize_restrictions({"x": []})


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    run = [sys.executable, "-m", "lambdasette.cli", "token"]
    out = subprocess.run([*run, "create", "alice", "-a", "vt", "-d", "data", "es",
                          "-r", "data", "dogs", "ir", "-e", "60", "--tokens-db", db],
                         capture_output=True, text=True, check=True).stdout.strip()
    record = tokens.verify(LocalTokenStore(Path(db)), out)
    assert record is not None
    assert record.restrictions == {"a": ["view-table"], "d": {"data": ["execute-sql"]},
                                   "r": {"data": {"dogs": ["insert-row"]}}}
    listed = subprocess.run([*run, "list", "--tokens-db", db], capture_output=True, text=True).stdout
    assert record.id in listed and out not in listed
    subprocess.run([*run, "revoke", record.id, "--tokens-db", db], check=True, capture_output=True)
    bad = subprocess.run([*run, "create", "x", "-a", "nope", "--tokens-db", db],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Unknown action" in bad.stderr


def test_bearer_token_resolves_actor_and_bad_ones_are_401(fixture_path: Path, tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from lambdasette.app import create_app
    from lambdasette.instance import Lambdasette
    from lambdasette.storage.local import LocalStorage

    store = LocalTokenStore(tmp_path / "tokens.db")
    token, record = tokens.create(store, "alice", {"a": ["vt"]})
    ds = Lambdasette(storage=LocalStorage([fixture_path]), tokens=store)
    with TestClient(create_app(ds)) as c:
        actor = c.get("/-/actor.json", headers={"Authorization": f"Bearer {token}"}).json()["actor"]
        assert actor["id"] == "alice" and actor["_r"] == {"a": ["view-table"]}
        r = c.get("/-/actor.json", headers={"Authorization": f"Bearer {token}x"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        store.revoke(record.id)
        assert c.get("/fixtures.json", headers={"Authorization": f"Bearer {token}"}).status_code == 401
        # A token that is not ours is never quietly anonymous: a 401 that says why.
        r = c.get("/-/actor.json", headers={"Authorization": "Bearer other"})
        assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        # Other schemes carry no lambdasette credential.
        assert c.get("/-/actor.json", headers={"Authorization": "Basic eDp5"}).json()["actor"] is None

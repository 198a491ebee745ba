"""The token store contract; every implementation must pass these."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from lambdasette.auth import tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_allow
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.errors import InvalidToken
from lambdasette.instance import Lambdasette


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


# -- token chains: a token minted from a token is valid only while its whole chain is ------------

def chain(store: tokens.TokenStore, length: int, expires_after: int | None = None) -> list[tuple[str, tokens.TokenRecord]]:
    """A root token and `length` tokens each minted from the one before."""
    made = [tokens.create(store, "alice", {"a": ["vt", "ctk"]}, expires_after)]
    for _ in range(length):
        made.append(tokens.create(store, "alice", {"a": ["vt", "ctk"]}, None, parent=made[-1][1]))
    return made


def test_a_chain_is_recorded_and_read_back(store) -> None:
    made = chain(store, 3)
    ids = [record.id for _, record in made]
    last = store.get(ids[-1])
    assert last is not None and last.ancestors == ids[:-1] and last.parent == ids[-2]
    assert store.get(ids[0]).ancestors == [] and store.get(ids[0]).parent is None
    assert set(store.get_many([*ids, "missing"])) == set(ids)
    assert store.get_many([]) == {}
    for token, _ in made:
        assert tokens.verify(store, token) is not None


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("ancestor", ["parent", "root"])
def test_revoking_any_ancestor_invalidates_the_token(store, depth: int, ancestor: str) -> None:
    made = chain(store, depth)
    sibling = tokens.create(store, "alice", None, None, parent=made[0][1])
    token, record = made[-1]
    gone = made[-2][1] if ancestor == "parent" else made[0][1]
    assert store.revoke(gone.id)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.verify(store, token)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.recheck(store, record)
    known = store.get_many([record.id, *record.ancestors])
    assert tokens.chain_status(record, known, int(time.time())) == "revoked"
    # Tokens not minted through the revoked one are untouched.
    if ancestor == "parent" and depth > 1:
        assert tokens.verify(store, sibling[0]) is not None


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("ancestor", ["parent", "root"])
def test_the_expiry_of_any_ancestor_ends_the_token(store, depth: int, ancestor: str) -> None:
    # Only the chosen ancestor expires; the token itself never does (the token API would cap
    # it at its parent's expiry: this is the chain check's own guarantee).
    expiring = 0 if ancestor == "root" else depth - 1
    made: list[tuple[str, tokens.TokenRecord]] = []
    for i in range(depth + 1):
        parent = made[-1][1] if made else None
        made.append(tokens.create(store, "alice", None, 100 if i == expiring else None, parent=parent))
    token, record = made[-1]
    later = int(time.time()) + 200
    assert tokens.verify(store, token) is not None
    with pytest.raises(InvalidToken, match="expired"):
        tokens.verify(store, token, now=later)
    with pytest.raises(InvalidToken, match="expired"):
        tokens.recheck(store, record, now=later)


def test_recheck_sees_a_revocation_of_the_token_itself(store) -> None:
    token, record = tokens.create(store, "alice")
    assert tokens.verify(store, token) is not None
    tokens.recheck(store, record)
    store.revoke(record.id)
    with pytest.raises(InvalidToken, match="revoked"):
        tokens.recheck(store, record)


def test_a_missing_ancestor_fails_closed(store) -> None:
    _, root = tokens.create(store, "alice")
    token, record = tokens.new_record("alice", None, None, parent=root)
    record.ancestors = ["deleted-long-ago", *record.ancestors]
    store.put(record)
    with pytest.raises(InvalidToken):
        tokens.verify(store, token)


def test_chains_are_bounded(store) -> None:
    made = chain(store, tokens.MAX_CHAIN - 1)
    with pytest.raises(ValueError, match="at most"):
        tokens.create(store, "alice", None, None, parent=made[-1][1])


@pytest.mark.parametrize("lifespan", [0, -5, tokens.MAX_LIFESPAN + 1, 2**63, True, 1.5])
def test_lifespans_that_cannot_be_stored_are_refused(store, lifespan: Any) -> None:
    with pytest.raises(ValueError):
        tokens.create(store, "alice", None, lifespan)
    assert store.list() == []


def test_records_stored_before_chains_are_roots(store, tmp_path: Path) -> None:
    """A store made by an earlier version: no ancestors anywhere. Its tokens still verify."""
    token, record = tokens.new_record("alice", {"a": ["vt"]}, 60)
    if isinstance(store, LocalTokenStore):
        old = tmp_path / "old.db"
        conn = sqlite3.connect(old)
        conn.execute("""create table tokens (id text primary key, actor text not null,
            secret_hash text not null, restrictions text not null, created integer not null,
            expires integer, last_used integer, revoked integer not null default 0)""")
        conn.execute("insert into tokens values (?, ?, ?, ?, ?, ?, ?, ?)",
                     (record.id, "alice", record.secret_hash, '{"a": ["view-table"]}',
                      record.created, record.expires, None, 0))
        conn.commit()
        conn.close()
        store = LocalTokenStore(old)
    else:
        item = store._item(record)
        assert "ancestors" not in item  # what every item written before chains looks like
        store.client.put_item(TableName=store.table, Item=item)
    found = tokens.verify(store, token)
    assert found is not None and found.ancestors == [] and found.parent is None
    child = tokens.create(store, "alice", None, None, parent=found)[1]
    assert store.get(child.id).ancestors == [record.id]


class CountingStore:
    """A store that fails the test if it is asked anything."""

    def __getattr__(self, name: str) -> object:
        raise AssertionError(f"the store was asked ({name}) about a token that cannot be ours")


@pytest.mark.parametrize("token", [
    "lstok_" + "a" * 3000 + "_secret",        # DynamoDB refuses keys over 2 KB with an error of its own
    "lstok_0123456789ABCDEF_secret",          # ids are lower-case hex
    "lstok_0123456789abcde_secret",           # 15 digits
    "lstok_0123456789abcdef0_secret",         # 17
    "lstok_0123456789abcdeg_secret",
    "lstok_0123456789abcdef_" + "s" * 200,    # secrets are token_urlsafe(32)
    "lstok_0123456789abcdef_sec ret",
    "lstok_0123456789abcdef_",
])
def test_token_shape_is_checked_before_any_store(token: str) -> None:
    assert tokens.parse_token(token) is None
    with pytest.raises(InvalidToken):
        tokens.verify(CountingStore(), token)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken):
        Lambdasette.credential(f"Bearer {token}")


def test_minted_tokens_have_the_shape_checked(store) -> None:
    for _ in range(20):
        token, record = tokens.create(store, "bob")
        assert tokens.parse_token(token) == (record.id, token.split("_", 2)[2])
        assert tokens.valid_id(record.id)

"""Sessions in the token store (both stores): a session acts as its token, ends no later than
it, and can never be mistaken for a token - nor a token for a session."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdasette.auth import sessions, tokens
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


def test_description_and_revocation_time_round_trip(store) -> None:
    _, record = tokens.create(store, "dora", {"a": ["vt"]}, 120, description="  nightly export ")
    assert record.description == "nightly export"
    assert store.get(record.id) == record
    assert store.get(record.id).public()["description"] == "nightly export"
    assert store.revoke(record.id, when=record.created + 5)
    assert store.revoke(record.id, when=record.created + 9)  # the first time stays
    assert store.get(record.id).revoked_at == record.created + 5
    _, plain = tokens.create(store, "dora", description="   ")
    assert store.get(plain.id).description is None


@pytest.mark.parametrize("bad", [7, "x" * 501, "a\x00b", "\ud800"])
def test_descriptions_that_cannot_be_stored(store, bad: object) -> None:
    with pytest.raises(ValueError, match="description"):
        tokens.create(store, "dora", description=bad)  # type: ignore[arg-type]


def test_a_session_acts_as_its_token_until_it_is_revoked(store) -> None:
    _, record = tokens.create(store, "alice", {"r": {"data": {"dogs": ["vt"]}}})
    session_id, session = sessions.start(store, record, now=record.created)
    assert session.expires == record.created + sessions.MAX_AGE
    found = sessions.resolve(store, session_id, now=record.created + 1)
    assert found is not None
    resolved_session, resolved_token = found
    assert resolved_token.id == record.id and resolved_token.restrictions == record.restrictions
    assert resolved_session.csrf == session.csrf and len(session.csrf) >= 32
    # It ends at its own end, however valid the token still is.
    assert sessions.resolve(store, session_id, now=session.expires) is None
    store.revoke(record.id)
    assert sessions.resolve(store, session_id, now=record.created + 2) is None


def test_a_session_ends_with_its_token_and_its_chain(store) -> None:
    _, root = tokens.create(store, "alice")
    _, child = tokens.create(store, "alice", expires_after=600, parent=root)
    session_id, session = sessions.start(store, child, now=child.created)
    assert session.expires == child.expires  # never after its token
    assert session.ancestors == [root.id]
    assert sessions.resolve(store, session_id, now=child.created + 10) is not None
    assert sessions.resolve(store, session_id, now=child.expires) is None
    store.revoke(root.id)  # the parent: every token minted from it ends, and its sessions
    assert sessions.resolve(store, session_id, now=child.created + 10) is None


def test_signing_out_ends_it_and_only_it(store) -> None:
    _, record = tokens.create(store, "alice")
    first, _ = sessions.start(store, record)
    second, _ = sessions.start(store, record)
    assert first != second
    sessions.end(store, first)
    assert sessions.resolve(store, first) is None
    assert sessions.resolve(store, second) is not None
    sessions.end(store, first)  # again: no error


def test_using_a_session_is_using_its_token(store) -> None:
    _, record = tokens.create(store, "alice")
    session_id, _ = sessions.start(store, record, now=record.created)
    sessions.resolve(store, session_id, now=record.created + 100)
    assert store.get(record.id).last_used == record.created + 100


def test_junk_and_unknown_session_ids(store) -> None:
    for junk in ["", "x", "../../etc", "a" * 200, "lstok_abc_def", "a" * 42 + "!"]:
        assert sessions.resolve(store, junk) is None
    assert sessions.resolve(store, "a" * 43) is None


def test_sessions_are_never_tokens_nor_tokens_sessions(store, tmp_path: Path) -> None:
    token, record = tokens.create(store, "root")
    session_id, session = sessions.start(store, record)
    # Listing, reading, revoking and touching tokens never meet a session...
    assert [r.id for r in store.list()] == [record.id]
    assert [r.id for r in store.list("root")] == [record.id]
    for name in (session.key, "session#" + session.key):
        assert store.get(name) is None
        assert store.get_many([name]) == {}
        assert not store.revoke(name)
        store.touch(name, 5)
        with pytest.raises(InvalidToken):
            tokens.verify(store, f"lstok_{name}_{session_id}")
    assert sessions.resolve(store, session_id) is not None  # untouched by all that
    # ...and a token (its id, its secret, the whole token) is no session.
    for value in (token, record.id, token.rsplit("_", 1)[1]):
        assert sessions.resolve(store, value) is None
    # What is stored: the session id's hash, never the id.
    if isinstance(store, LocalTokenStore):
        held = (tmp_path / "tokens.db").read_bytes().decode("latin-1")
    else:
        held = repr(store.client.scan(TableName=store.table)["Items"])
    assert session_id not in held and session.key in held


def test_dynamodb_session_items_expire_with_ttl(dynamodb) -> None:
    from lambdasette.auth.store_dynamodb import DynamoDBTokenStore

    from .aws import create_tokens_table

    table = create_tokens_table(dynamodb)
    store = DynamoDBTokenStore(table, client=dynamodb)
    _, record = tokens.create(store, "root", expires_after=3600)
    _, session = sessions.start(store, record, now=record.created)
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": "session#" + session.key}})["Item"]
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]["AttributeName"]
    assert item[ttl] == {"N": str(session.expires)} and session.expires == record.expires
    assert item["kind"] == {"S": "session"}
    assert "actor" not in item and "secret_hash" not in item  # not in by_actor, not a token

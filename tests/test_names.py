"""Table names are compared as SQLite compares them (`names.fold`: ASCII case only), by every
part of the policy: restrictions (and what a minted token may hold), the permissions file,
the SQL guard and hidden sets. Same table to SQLite <=> same table to the policy (B07)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import authorizer, tokens
from lambdasette.auth.actions import normalize_restrictions, restrictions_allow, restrictions_within
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.names import fold, same
from lambdasette.storage.local import LocalStorage

NAME = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=6)
CASINGS = [str.upper, str.lower, str.swapcase, str.casefold, str.title, lambda s: s,
           lambda s: s.replace("k", "\u212a").replace("K", "\u212a"), lambda s: s.replace("s", "\u017f")]


def sqlite_same(a: str, b: str) -> bool:
    """Does SQLite resolve the name `b` to the table created as `a`?"""
    conn = sqlite3.connect(":memory:")
    conn.execute('create table "{}" (x)'.format(a.replace('"', '""')))
    try:
        conn.execute('select x from "{}"'.format(b.replace('"', '""'))).fetchall()
        return True
    except sqlite3.OperationalError:
        return False


def usable(name: str) -> bool:
    return not fold(name).startswith("sqlite_")


@settings(max_examples=300, deadline=None)
@given(a=NAME, casing=st.sampled_from(CASINGS), other=NAME, derived=st.booleans())
@example(a="ünïcode", casing=str.upper, other="x", derived=True)
@example(a="kpis", casing=CASINGS[6], other="x", derived=True)
@example(a="straße", casing=str.upper, other="x", derived=True)
@example(a="i", casing=lambda s: "İ", other="x", derived=True)
@example(a="Secret", casing=str.lower, other="x", derived=True)
def test_same_table_to_sqlite_is_same_table_to_the_policy(a: str, casing, other: str, derived: bool) -> None:
    b = casing(a) if derived else other
    if not (usable(a) and usable(b)) or not b:
        return
    expected = sqlite_same(a, b)
    assert same(a, b) is expected
    # Restrictions: a token restricted to `a` reaches `b` exactly when it is the same table.
    restricted = normalize_restrictions({"r": {"data": {a: ["vt"]}}})
    assert restrictions_allow(restricted, "view-table", "data", b) is expected
    child = normalize_restrictions({"r": {"data": {b: ["vt"]}}})
    assert (restrictions_within(child, restricted) == []) is expected
    # The permissions file: a rule for `a` is the rule for `b` exactly when it is the same table.
    policy = Policy.parse({"databases": {"data": {"tables": {a: {"permissions": {"view-table": {"id": "root"}}}}}}})
    assert (policy.decide({"id": "alice"}, "view-table", "data", b) is False) is expected
    # The guard: hiding `a` refuses a read of `b` exactly when it is the same table.
    guard = authorizer.Guard(hidden=frozenset({fold(a)}), known=frozenset({fold(a), fold(b)}))
    assert (guard._read(b, "x") == sqlite3.SQLITE_DENY) is expected


def test_fold_is_ascii_only() -> None:
    assert fold("KPIS") == "kpis"
    assert fold("\u212apis") == "\u212apis"  # KELVIN SIGN is not K to SQLite
    assert fold("Ünïcode") == "Ünïcode"
    assert not same("ünïcode", "Ünïcode") and same("Secret", "SECRET")


def test_permissions_file_naming_one_table_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="named before"):
        Policy.parse({"databases": {"data": {"tables": {"Secret": {}, "secret": {}}}}})


@pytest.fixture
def twins(tmp_path: Path) -> tuple[TestClient, LocalTokenStore]:
    db = tmp_path / "data.db"
    conn = sqlite3.connect(db)
    for name, v in (("ünïcode", "allowed"), ("Ünïcode", "OTHER TABLE"), ("kpis", "allowed"),
                    ("\u212apis", "OTHER TABLE"), ("Secret", "SECRET ROW")):
        conn.execute(f'create table "{name}" (id integer primary key, v text)')
        conn.execute(f'insert into "{name}" values (1, ?)', (v,))
    conn.commit()
    conn.close()
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({
        "permissions": {"create-token": {"id": "alice"}},
        # A rule for `secret` is the rule for the table SQLite calls `Secret`.
        "databases": {"data": {"tables": {"secret": {"permissions": {"view-table": {"id": "root"}}}}}},
    })
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=False), tokens=store, policy=policy)
    return TestClient(create_app(ds), raise_server_exceptions=False), store


def test_restricted_token_reaches_only_its_own_tables(twins: tuple[TestClient, LocalTokenStore]) -> None:
    """B07: a token restricted to `ünïcode` and `kpis` reads neither `Ünïcode` nor `Kpis`
    (KELVIN SIGN), by URL or SQL, and cannot mint a child for them."""
    client, store = twins
    token = tokens.create(store, "alice", {"a": ["ctk"], "r": {"data": {"ünïcode": ["vt"], "kpis": ["vt"]}}}, 3600)[0]
    auth = {"Authorization": f"Bearer {token}"}
    for name in ("ünïcode", "kpis"):
        response = client.get(f"/data/{name}.json?_shape=array", headers=auth)
        assert response.status_code == 200 and response.json()[0]["v"] == "allowed"
    for name in ("Ünïcode", "\u212apis", "KPIS_nope"):
        response = client.get(f"/data/{name}.json?_shape=array", headers=auth)
        assert response.status_code == 403 and "OTHER TABLE" not in response.text
    response = client.get("/data.json", params={"sql": 'select * from "Ünïcode"'}, headers=auth)
    assert "OTHER TABLE" not in response.text
    assert client.get("/data/KPIS.json", headers=auth).status_code in (403, 404)  # same table, other spelling
    minted = client.post("/-/api/tokens", headers=auth,
                         content=json.dumps({"restrictions": {"r": {"data": {"Ünïcode": ["vt"]}}}}))
    assert minted.status_code in (400, 403), minted.text


def test_permissions_rule_reaches_the_table_whatever_its_ascii_case(twins: tuple[TestClient, LocalTokenStore]) -> None:
    client, store = twins
    alice = {"Authorization": f"Bearer {tokens.create(store, 'alice')[0]}"}
    root = {"Authorization": f"Bearer {tokens.create(store, 'root')[0]}"}
    assert client.get("/data/Secret.json", headers=alice).status_code == 403
    assert "SECRET ROW" not in client.get("/data.json", params={"sql": "select * from SECRET"}, headers=alice).text
    assert "SECRET ROW" in client.get("/data/Secret.json", headers=root).text
    # The twins of a hidden table are not hidden with it (nothing hides Ünïcode or Kpis).
    assert "OTHER TABLE" in client.get("/data/Ünïcode.json", headers=alice).text

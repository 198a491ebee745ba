"""Who may see what: every read endpoint against every kind of caller, and nothing leaks."""

from __future__ import annotations

import sqlite3
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

SECRET = "TOPSECRET"

# Endpoints that read only `open_t` (or nothing table-specific) and those that touch `vault`.
OPEN_ENDPOINTS = [
    "/data/open_t.json",
    "/data/open_t.json?_labels=on",
    "/data/open_t.json?_facet=vault_id",
    "/data/open_t.json?_search=alpha",
    "/data/open_t.json?_shape=array&_nocount=1",
    "/data/open_t.csv?_labels=on",
    "/data/open_t.csv?_stream=1",
    "/data/open_t/1.json",
    "/data/open_t/1.json?_extras=foreign_key_tables",
]
VAULT_ENDPOINTS = [
    "/data/vault.json",
    "/data/vault.csv",
    "/data/vault/1.json",
    "/data/vault_view.json",
    "/data/vault_fts.json?_search=" + SECRET,
    "/data/open_t.json?_through=" + f'{{"table":"vault_links","column":"code","value":"{SECRET}-1"}}',
]
SQL_ENDPOINTS = [
    "/data.json?sql=select+*+from+vault",
    "/data/-/query.json?sql=select+*+from+vault_view",
    "/data/-/query.json?sql=select+sql+from+sqlite_master",
    "/data/-/query.json?sql=select+*+from+pragma_table_info('vault')",
    "/data/open_t.json?_where=vault_id+in+(select+id+from+vault+where+code+like+'TOP%25')",
]
INSTANCE_ENDPOINTS = ["/.json", "/-/databases.json", "/-/versions.json", "/-/settings.json",
                      "/data.json"]
ALL = OPEN_ENDPOINTS + VAULT_ENDPOINTS + SQL_ENDPOINTS + INSTANCE_ENDPOINTS + ["/-/actor.json"]


def make_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript(f"""
            CREATE TABLE vault (id INTEGER PRIMARY KEY, code TEXT);
            INSERT INTO vault VALUES (1, '{SECRET}-1'), (2, '{SECRET}-2');
            CREATE TABLE open_t (id INTEGER PRIMARY KEY, name TEXT, vault_id INTEGER REFERENCES vault(id));
            INSERT INTO open_t VALUES (1, 'alpha', 1), (2, 'beta', 2);
            CREATE TABLE vault_links (open_id INTEGER REFERENCES open_t(id), code TEXT);
            INSERT INTO vault_links VALUES (1, '{SECRET}-1');
            CREATE VIEW vault_view AS SELECT * FROM vault;
            CREATE VIRTUAL TABLE vault_fts USING fts5(code, content="vault");
            INSERT INTO vault_fts(vault_fts) VALUES ('rebuild');
            CREATE VIRTUAL TABLE open_t_fts USING fts5(name, content="open_t");
            INSERT INTO open_t_fts(open_t_fts) VALUES ('rebuild');
        """)
    conn.close()
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("perm")
    db = make_db(tmp / "data.db")
    store = LocalTokenStore(tmp / "tokens.db")

    def mint(actor: str, restrictions: dict | None = None, expires: int | None = None) -> str:
        return tokens.create(store, actor, restrictions, expires)[0]

    sees_open = {"a": ["vi", "vd", "es"], "r": {"data": {"open_t": ["vt"]}}}
    sees_vault = {"a": ["vi", "vd", "es"], "r": {"data": {"vault": ["vt"], "vault_links": ["vt"]}}}
    expired, expired_record = tokens.new_record("root", None, 60, now=1_000_000)
    store.put(expired_record)
    revoked, revoked_record = tokens.create(store, "root")
    store.revoke(revoked_record.id)
    good = mint("root")
    callers = {
        "root": good,
        "restricted": mint("root", sees_open),
        "other-table": mint("root", sees_vault),
        "alice": mint("alice"),
        "expired": expired,
        "revoked": revoked,
        "tampered": good[:-3] + ("aaa" if not good.endswith("aaa") else "bbb"),
    }

    def client(public: bool) -> TestClient:
        ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=public), tokens=store)
        return TestClient(create_app(ds))

    with client(False) as private, client(True) as public:
        yield {"private": private, "public": public, "tokens": callers}


def get(c: TestClient, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return c.get(path, headers=headers)


@pytest.mark.parametrize("path", ALL)
def test_anonymous_on_a_private_instance_gets_401(setup: dict, path: str) -> None:
    r = get(setup["private"], path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert r.json()["ok"] is False and SECRET not in r.text


@pytest.mark.parametrize("who", ["expired", "revoked", "tampered"])
@pytest.mark.parametrize("path", ALL)
def test_bad_tokens_get_401_even_when_public(setup: dict, who: str, path: str) -> None:
    r = get(setup["public"], path, setup["tokens"][who])
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert SECRET not in r.text


@pytest.mark.parametrize("path", ALL)
def test_anonymous_on_a_public_instance_reads_everything(setup: dict, path: str) -> None:
    r = get(setup["public"], path)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("path", ALL)
def test_root_and_other_actors_read_everything_on_a_private_instance(setup: dict, path: str) -> None:
    for who in ("root", "alice"):
        r = get(setup["private"], path, setup["tokens"][who])
        assert r.status_code == 200, (who, r.text)
        assert "cache-control" not in r.headers or r.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize("path", OPEN_ENDPOINTS + ["/.json", "/data.json", "/-/actor.json"])
def test_restricted_token_reads_its_table_and_sees_nothing_of_others(setup: dict, path: str) -> None:
    r = get(setup["private"], path, setup["tokens"]["restricted"])
    assert r.status_code == 200, r.text
    assert SECRET not in r.text
    if not path.startswith("/data/open_t/1") and "_search" not in path:
        assert "vault" not in r.text.replace("vault_id", ""), r.text


@pytest.mark.parametrize("path", VAULT_ENDPOINTS + SQL_ENDPOINTS)
def test_restricted_token_cannot_reach_other_tables(setup: dict, path: str) -> None:
    r = get(setup["private"], path, setup["tokens"]["restricted"])
    if "pragma_table_info" in path:  # answers as for a table that does not exist: no rows
        assert r.status_code == 200 and r.json()["rows"] == [], r.text
        return
    assert r.status_code in (400, 403), r.text
    assert SECRET not in r.text and r.json()["ok"] is False


@pytest.mark.parametrize("path", OPEN_ENDPOINTS)
def test_other_table_token_cannot_read_this_table(setup: dict, path: str) -> None:
    r = get(setup["private"], path, setup["tokens"]["other-table"])
    assert r.status_code == 403
    assert r.json()["error"] == "You do not have permission to view this table"


def test_other_table_token_reads_its_own_table(setup: dict) -> None:
    c, token = setup["private"], setup["tokens"]["other-table"]
    assert get(c, "/data/vault.json", token).json()["rows"][0][1] == f"{SECRET}-1"
    assert get(c, "/data/vault.json?_search=" + SECRET, token).status_code == 200
    rows = get(c, "/data/-/query.json?sql=select+code+from+vault&_shape=array", token).json()
    assert rows == [{"code": f"{SECRET}-1"}, {"code": f"{SECRET}-2"}]


def test_a_token_without_view_instance_cannot_list(setup: dict) -> None:
    store = setup["private"].app.state.lambdasette.tokens
    token = tokens.create(store, "root", {"r": {"data": {"open_t": ["vt"]}}})[0]
    c = setup["private"]
    assert get(c, "/.json", token).status_code == 403
    assert get(c, "/data.json", token).status_code == 403
    assert get(c, "/data/-/query.json?sql=select+1", token).status_code == 403
    assert get(c, "/data/open_t.json", token).status_code == 200
    assert get(c, "/-/actor.json", token).json()["actor"]["_r"] == {"r": {"data": {"open_t": ["view-table"]}}}


def test_permissions_file_grants_and_hides(tmp_path: Path) -> None:
    db = make_db(tmp_path / "data.db")
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({
        "databases": {"data": {"tables": {"vault": {"permissions": {"view-table": {"id": "bob"}}}}}},
    })
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True), tokens=store, policy=policy)
    bob = tokens.create(store, "bob")[0]
    with TestClient(create_app(ds)) as c:
        assert get(c, "/data/vault.json").status_code == 403
        assert get(c, "/data/vault.json", bob).status_code == 200
        sql = "/data/-/query.json?sql=select+*+from+vault"
        # As for a table that does not exist (tests/test_security_leaks.py has the rest).
        assert get(c, sql).status_code == 400 and SECRET not in get(c, sql).text
        assert get(c, sql).json()["error"] == "no such table: vault"
        assert get(c, sql, bob).status_code == 200
        assert "vault" not in {t["name"] for t in get(c, "/data.json").json()["tables"]}
        # Writes are root's alone by default.
        assert not ds.can({"id": "bob"}, "insert-row", "data", "open_t")
        assert ds.can({"id": "root"}, "drop-table", "data", "open_t")


def test_seeing_cascades_from_table_to_database_to_instance(tmp_path: Path) -> None:
    """As Datasette 0.65 checks [view-table, view-database, view-instance]: a database hidden
    with view-database hides its tables everywhere (their pages, listings, the OpenAPI document,
    the token form), unless a table has its own view-table block."""
    db = make_db(tmp_path / "data.db")
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({"permissions": {"create-token": {"id": "*"}},
                           "databases": {"data": {"permissions": {"view-database": {"id": "bob"}},
                                                  "tables": {"vault": {"permissions": {
                                                      "view-table": {"id": "*"}}}}}}})
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True), tokens=store, policy=policy)
    alice, bob = tokens.create(store, "alice")[0], tokens.create(store, "bob")[0]
    assert not ds.can({"id": "alice"}, "view-table", "data", "open_t")
    assert ds.can({"id": "alice"}, "view-table", "data", "vault")  # its own block speaks first
    assert ds.can({"id": "bob"}, "view-table", "data", "open_t")
    with TestClient(create_app(ds)) as c:
        assert get(c, "/data/open_t.json", alice).status_code == 403
        assert get(c, "/data/open_t.json").status_code == 403
        assert get(c, "/data/open_t.json", bob).status_code == 200
        for who in (alice, None):
            assert "open_t" not in get(c, "/-/openapi.json", who).text
        assert "open_t" in get(c, "/-/openapi.json", bob).text
    instance_denied = Policy.parse({"permissions": {"view-instance": {"id": "bob"}}})
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True), tokens=store,
                     policy=instance_denied)
    assert not ds.can({"id": "alice"}, "view-database", "data")
    assert not ds.can(None, "view-table", "data", "open_t")
    assert ds.can({"id": "bob"}, "view-table", "data", "open_t")


def test_bad_permissions_files_are_rejected() -> None:
    for bad in ({"permissions": {"fly": True}}, {"databases": {"d": {"oops": 1}}},
                {"permissions": {"view-table": "bob"}}, ["x"]):
        with pytest.raises(ValueError):
            Policy.parse(bad)

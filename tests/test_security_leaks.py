"""The schema of a table a caller may not view never shows: a hidden table and a missing one
answer alike, on every path, byte for byte.

Two databases differ only in the hidden table `secret` (with its index, FTS index, a view over
it and a foreign key to it), which exists in one and not in the other; the caller may view
neither `secret` nor `other_secret` (in both). Every request gets the same answer from both.
"""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
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

SECRET = "TOPSECRET"

COMMON = f"""
    CREATE TABLE other_secret (id INTEGER PRIMARY KEY, code TEXT);
    INSERT INTO other_secret VALUES (1, '{SECRET}-other');
    CREATE TABLE counter (id INTEGER PRIMARY KEY AUTOINCREMENT, label TEXT);
    INSERT INTO counter (label) VALUES ('one'), ('two');
    CREATE TABLE shapes (id INTEGER PRIMARY KEY, kind TEXT, tags TEXT);
    INSERT INTO shapes VALUES (1, 'round', '["a","b"]'), (2, 'square', '["b"]');
    CREATE VIRTUAL TABLE shapes_fts USING fts5(kind, content="shapes");
    INSERT INTO shapes_fts(shapes_fts) VALUES ('rebuild');
    CREATE INDEX shapes_kind ON shapes(kind);
"""
WITH_SECRET = f"""
    CREATE TABLE secret (id INTEGER PRIMARY KEY, code TEXT, pin INTEGER);
    INSERT INTO secret VALUES (1, '{SECRET}-1', 1234), (2, '{SECRET}-2', 5678);
    CREATE INDEX secret_code ON secret(code);
    CREATE VIEW secret_view AS SELECT code FROM secret;
    CREATE VIRTUAL TABLE secret_fts USING fts5(code, content="secret");
    INSERT INTO secret_fts(secret_fts) VALUES ('rebuild');
    CREATE TABLE open_t (id INTEGER PRIMARY KEY, name TEXT, secret_id INTEGER REFERENCES secret(id));
"""
WITHOUT_SECRET = """
    CREATE TABLE open_t (id INTEGER PRIMARY KEY, name TEXT, secret_id INTEGER);
"""
AFTER = """
    INSERT INTO open_t VALUES (1, 'alpha', 1), (2, 'beta', 2);
    ANALYZE;
"""

POLICY = {"databases": {"data": {"tables": {
    name: {"permissions": {"view-table": {"id": "bob"}}} for name in ("secret", "other_secret")
}}}}


def make_db(path: Path, *, with_secret: bool) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(COMMON + (WITH_SECRET if with_secret else WITHOUT_SECRET) + AFTER)
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    clients = {}
    opened = []
    for name, with_secret in (("hidden", True), ("missing", False)):
        folder = tmp_path_factory.mktemp(name)
        db = make_db(folder / "data.db", with_secret=with_secret)
        store = LocalTokenStore(folder / "tokens.db")
        ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True), tokens=store,
                         policy=Policy.parse(POLICY))
        client = TestClient(create_app(ds), base_url="http://localhost")
        client.__enter__()
        opened.append(client)
        clients[name] = (client, store)
    yield clients
    for client in opened:
        client.__exit__(None, None, None)


def normalized(body: bytes) -> Any:
    """The answer without what differs between any two runs (timings, file sizes, request ids)."""
    try:
        data = json.loads(body)
    except ValueError:
        return body

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in ("query_ms", "size", "request_id")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(data)


def sql(query: str, **extra: str) -> str:
    return "/data.json?" + urllib.parse.urlencode({"sql": query, **extra})


def table(path: str, **args: str) -> str:
    return f"/data/{path}?" + urllib.parse.urlencode(args)


THROUGH = json.dumps({"table": "secret", "column": "code", "value": f"{SECRET}-1"})
PATHS = [
    # table, row, CSV and view pages of the hidden objects themselves
    "/data/secret.json", "/data/secret.csv", "/data/secret/1.json", "/data/secret/1.csv",
    "/data/secret_view.json", "/data/secret_fts.json", "/data/secret_fts_data.json",
    "/data/secret.json?_search=x", "/data/sqlite_sequence.json", "/data/sqlite_stat1.json",
    # the database and instance pages list neither
    "/data.json", "/.json",
    # arbitrary SQL: reads, missing columns, counts, joins, schema tables, pragmas
    sql("select * from secret"), sql("select nosuch from secret"), sql("select code from secret"),
    sql("select count(*) from secret"), sql("select 1 from secret limit 0"),
    sql("select * from main.secret"), sql("select * from \"SECRET\""),
    sql("select * from open_t join secret on secret.id = open_t.secret_id"),
    sql("select (select count(*) from secret)"), sql("select exists(select 1 from secret)"),
    sql("select * from secret_view"), sql("select * from secret_fts where secret_fts match 'x'"),
    sql("select * from secret_fts_data"), sql("select * from open_t where secret_id in (select id from secret)"),
    sql("select * from secret indexed by secret_code"),
    sql("with recursive secret(x) as (select 1 union all select x + 1 from secret where x < 3)"
        " select count(*) from secret"),
    sql("with secret as (select 1 as one) select * from secret"),
    sql("select sql from sqlite_master"), sql("select name from sqlite_master where name like 'sec%'"),
    sql("select count(*) from sqlite_master"),
    sql("select * from sqlite_sequence"), sql("select * from sqlite_stat1"),
    sql("select * from pragma_table_info('secret')"), sql("select * from pragma_table_xinfo('secret')"),
    sql("select * from pragma_index_list('secret')"), sql("select * from pragma_index_info('secret_code')"),
    sql("select * from pragma_index_xinfo('secret_code')"),
    sql("select * from pragma_foreign_key_list('open_t')"), sql("select * from pragma_table_info('sqlite_stat1')"),
    sql("select * from pragma_database_list"),
    sql("select name from dbstat"), sql("select name from dbstat where name = 'secret'"),
    sql("select secret_id from open_t where :x = 1", x="1"),
    sql("select * from secret where id = :id", id="1"), sql("select * from secret where id = ?"),
    sql("explain select * from secret"), sql("explain query plan select * from secret"),
    # _where (arbitrary SQL inside a table page)
    table("open_t.json", _where="secret_id in (select id from secret)"),
    table("open_t.json", _where="exists(select 1 from secret where code like 'TOP%')"),
    table("open_t.json", _where="1) union select sql, 1, 1 from sqlite_master --"),
    table("open_t.json", _where="nosuch = 1"),
    table("open_t.json", _where="(select count(*) from pragma_table_info('secret')) > 0"),
    # _through, _labels, facets, search, foreign-key counts
    table("open_t.json", _through=THROUGH),
    table("open_t.json", _through=json.dumps({"table": "secret", "column": "nosuch", "value": 1})),
    table("open_t.json", _labels="on"), table("open_t.json", _label="secret_id"),
    table("open_t.csv", _labels="on"), table("open_t.json", _facet="secret_id"),
    table("open_t.json", _facet="secret_id", _labels="on"),
    table("open_t.json", _facet_array="name"), table("open_t.json", _search="alpha"),
    table("open_t.json", _sort="secret_id"), table("open_t.json", secret_id__gt="0"),
    table("open_t/1.json", _extras="foreign_key_tables"),
    table("shapes.json", _facet_array="tags", _search="round"),
    table("shapes.json", _where="kind in (select code from secret)"),
    table("counter.json"), table("shapes.json"),
]


@pytest.mark.parametrize("path", PATHS)
def test_hidden_and_missing_answer_alike(pair: dict[str, Any], path: str) -> None:
    hidden = pair["hidden"][0].get(path)
    missing = pair["missing"][0].get(path)
    assert SECRET not in hidden.text
    assert hidden.status_code < 500, hidden.text
    assert (hidden.status_code, normalized(hidden.content)) == (missing.status_code, normalized(missing.content))
    assert hidden.headers.get("content-type") == missing.headers.get("content-type")


def test_the_paths_do_reach_the_secret_for_someone_who_may_view_it(pair: dict[str, Any]) -> None:
    client, store = pair["hidden"]
    bob = {"Authorization": f"Bearer {tokens.create(store, 'bob')[0]}"}
    assert SECRET in client.get(sql("select * from secret"), headers=bob).text
    assert client.get("/data/secret.json", headers=bob).json()["rows"][0][1] == f"{SECRET}-1"
    fk = client.get(sql("select \"table\" from pragma_foreign_key_list('open_t')") + "&_shape=array",
                    headers=bob).json()
    assert fk == [{"table": "secret"}]


def test_a_missing_table_is_a_403_for_a_caller_with_hidden_tables(pair: dict[str, Any]) -> None:
    """Table pages check permission before the lookup: for a caller who may not view some
    table, a name that does not exist gets the same 403 as one they may not view."""
    client, store = pair["hidden"]
    for path in ("/data/secret.json", "/data/nosuch.json", "/data/nosuch/1.json"):
        r = client.get(path)
        assert r.status_code == 403 and r.json()["error"] == "You do not have permission to view this table"
    root = {"Authorization": f"Bearer {tokens.create(store, 'root')[0]}"}
    assert client.get("/data/nosuch.json", headers=root).status_code == 404
    assert client.get("/data/secret.json", headers=root).status_code == 200


@pytest.mark.parametrize("name", ["sqlite_sequence", "sqlite_stat1"])
def test_sqlite_internal_tables_are_hidden_from_everyone(pair: dict[str, Any], name: str) -> None:
    client, store = pair["hidden"]
    root = {"Authorization": f"Bearer {tokens.create(store, 'root')[0]}"}
    for headers in ({}, root):
        listing = client.get("/data.json", headers=headers).json()
        assert name not in [t["name"] for t in listing["tables"]]
        assert client.get(f"/data/{name}.json", headers=headers).status_code == 403
        r = client.get(sql(f"select * from {name}"), headers=headers)
        assert r.status_code == 400 and r.json()["error"] == f"no such table: {name}"
        r = client.get(sql(f"select count(*) from {name}"), headers=headers)
        assert r.status_code == 400
        r = client.get(sql(f"select * from pragma_table_info('{name}')") + "&_shape=array",
                       headers=headers)
        assert r.json() == []
    # Root's view of the rest is untouched, sqlite_master included.
    r = client.get(sql("select name from sqlite_master where name = 'counter'") + "&_shape=array",
                   headers=root)
    assert r.json() == [{"name": "counter"}]


def test_a_view_over_a_hidden_table_is_hidden_too(pair: dict[str, Any]) -> None:
    client, store = pair["hidden"]
    assert "secret_view" not in [v["name"] for v in client.get("/data.json").json()["views"]]
    bob = {"Authorization": f"Bearer {tokens.create(store, 'bob')[0]}"}
    assert "secret_view" in [v["name"] for v in client.get("/data.json", headers=bob).json()["views"]]


def test_server_paths_never_show(pair: dict[str, Any]) -> None:
    client, store = pair["hidden"]
    root = {"Authorization": f"Bearer {tokens.create(store, 'root')[0]}"}
    for headers in ({}, root):
        rows = client.get(sql("select * from pragma_database_list") + "&_shape=array",
                          headers=headers).json()
        assert rows == [{"seq": 0, "name": "main", "file": None}]


def test_drop_without_confirm_counts_rows_only_for_viewers(tmp_path: Path) -> None:
    db = make_db(tmp_path / "data.db", with_secret=True)
    store = LocalTokenStore(tmp_path / "tokens.db")
    policy = Policy.parse({"databases": {"data": {
        "permissions": {"drop-table": {"id": ["carol", "bob"]}},
        "tables": {"secret": {"permissions": {"view-table": {"id": "bob"}}}},
    }}})
    ds = Lambdasette(storage=LocalStorage([db]), options=Options(public=True), tokens=store,
                     policy=policy)
    with TestClient(create_app(ds)) as client:
        carol = {"Authorization": f"Bearer {tokens.create(store, 'carol')[0]}"}
        bob = {"Authorization": f"Bearer {tokens.create(store, 'bob')[0]}"}
        r = client.post("/data/secret/-/drop", headers=carol, json={})
        assert r.status_code == 200 and "row_count" not in r.json(), r.text
        r = client.post("/data/secret/-/drop", headers=bob, json={})
        assert r.json()["row_count"] == 2
        # A restricted token of a viewing actor is no viewer either.
        narrowed = tokens.create(store, "bob", {"r": {"data": {"secret": ["dt"]}}})[0]
        r = client.post("/data/secret/-/drop", headers={"Authorization": f"Bearer {narrowed}"}, json={})
        assert r.status_code == 200 and "row_count" not in r.json()
        assert client.get(sql("select count(*) from secret"), headers=bob).json()["rows"] == [[2]]

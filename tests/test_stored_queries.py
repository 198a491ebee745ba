"""Stored queries (1.0a41's named queries) and metadata `queries:` served the same way: store,
run with named parameters, private or shared, list, show, update, delete; their actions in
permissions and tokens; kept in the database across processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.metadata import Metadata
from lambdasette.storage.local import LocalStorage

from .fixture_db import make_fixture_db

METADATA = {"databases": {"fixtures": {"queries": {
    "by_breed": {"sql": "select id, name from dogs where breed = :breed order by id", "title": "By breed"},
}}}}
POLICY = {"databases": {"fixtures": {"permissions": {"store-query": {"id": ["alice", "bob"]},
                                                     "execute-write-sql": {"id": "alice"}},
                                     "tables": {"log": {"permissions": {"insert-row": {"id": "alice"},
                                                                        "update-row": {"id": "alice"},
                                                                        "delete-row": {"id": "alice"}}}}}}}


class Api:
    def __init__(self, tmp_path: Path) -> None:
        self.path = make_fixture_db(tmp_path / "fixtures.db")
        self.store = LocalTokenStore(tmp_path / "tokens.db")
        self.tokens = {who: tokens.create(self.store, who)[0] for who in ("root", "alice", "bob", "carol")}

    def client(self) -> TestClient:
        ds = Lambdasette(storage=LocalStorage([self.path]), tokens=self.store, options=Options(public=True),
                         metadata=Metadata(METADATA), policy=Policy.parse(POLICY))
        return TestClient(create_app(ds))

    def h(self, who: str | None) -> dict[str, str]:
        if who is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens.get(who, who)}"}


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path)


def store(c: TestClient, api: Api, who: str, **query: Any) -> Any:
    return c.post("/fixtures/-/queries/store", headers=api.h(who), json={"query": query})


def test_store_and_run_a_shared_query(api: Api) -> None:
    with api.client() as c:
        r = store(c, api, "alice", name="aged", sql="select id from dogs where age > :age order by id",
                  title="Old dogs", is_private=False)
        assert r.status_code == 201, r.text
        query = r.json()["query"]
        assert query["owner_id"] == "alice" and query["parameters"] == ["age"] and query["source"] == "user"
        assert query["is_trusted"] is False and query["is_write"] is False
        # anyone who may run SQL runs it, in either format
        assert c.get("/fixtures/aged.json?age=10&_shape=arrayfirst").json() == [11, 23]
        body = c.get("/fixtures/aged.json?age=10&_extra=query").json()
        assert body["query"] == {"sql": "select id from dogs where age > :age order by id", "params": {"age": "10"}}
        assert c.get("/fixtures/aged.csv?age=10").text.splitlines()[0] == "id"
    # kept in the database: another process (a new Lambda container) serves it
    with api.client() as c:
        assert c.get("/fixtures/aged.json?age=10&_shape=arrayfirst").json() == [11, 23]
        assert c.get("/fixtures/aged/-/definition").json()["query"]["title"] == "Old dogs"


def test_private_queries_are_their_owners_alone(api: Api) -> None:
    with api.client() as c:
        assert store(c, api, "alice", name="mine", sql="select 1 as one").json()["query"]["is_private"] is True
        mine = c.get("/fixtures/mine.json", headers=api.h("alice")).json()
        assert mine["rows"] == [[1]] and mine["private"] is True  # in 0.65's body as in 1.0a41's
        for who in (None, "bob", "root"):
            assert c.get("/fixtures/mine.json", headers=api.h(who)).status_code == 404, who
            assert c.get("/fixtures/mine/-/definition", headers=api.h(who)).status_code == 404
            listed = c.get("/fixtures/-/queries.json", headers=api.h(who)).json()["queries"]
            assert "mine" not in [q["name"] for q in listed]
        listed = c.get("/fixtures/-/queries.json", headers=api.h("alice")).json()["queries"]
        assert [q["name"] for q in listed] == ["by_breed", "mine"]
        assert [q["private"] for q in listed] == [False, True]


def test_storing_needs_execute_sql_and_store_query(api: Api) -> None:
    with api.client() as c:
        r = store(c, api, "carol", name="x", sql="select 1")
        assert r.status_code == 403 and r.json()["error"] == "Permission denied: need store-query"
        no_sql = tokens.create(api.store, "alice", {"a": ["sq", "vd"]})[0]
        r = store(c, api, no_sql, name="x", sql="select 1")
        assert r.status_code == 403 and r.json()["error"] == "Permission denied: need execute-sql"
        narrowed = tokens.create(api.store, "alice", {"d": {"fixtures": ["sq", "es", "vd"]}})[0]
        assert store(c, api, narrowed, name="x", sql="select 1").status_code == 201


@pytest.mark.parametrize("query, message", [
    ({"sql": "select 1"}, "Query name is required"),
    ({"name": "a/b", "sql": "select 1"}, "Invalid query name"),
    ({"name": "a.b", "sql": "select 1"}, "Invalid query name"),
    ({"name": "dogs", "sql": "select 1"}, "Query name conflicts with a table or view"),
    ({"name": "old_dogs", "sql": "select 1"}, "Query name conflicts with a table or view"),
    ({"name": "by_breed", "sql": "select 1"}, "Query already exists"),
    ({"name": "x"}, "SQL is required"),
    ({"name": "x", "sql": "select 1; select 2"}, "one statement at a time"),
    ({"name": "x", "sql": "select :_actor_id"}, "Magic parameters are not allowed"),
    ({"name": "x", "sql": "select :a", "parameters": ["b"]}, "parameters must match SQL named parameters"),
    ({"name": "x", "sql": "select 1", "on_success_message": "hi"}, "Writable query fields require writable SQL"),
    ({"name": "x", "sql": "select 1", "bogus": 1}, "Invalid keys: bogus"),
    ({"name": "x", "sql": "select nope from dogs"}, "no such column: nope"),
])
def test_store_validation(api: Api, query: dict[str, Any], message: str) -> None:
    with api.client() as c:
        r = store(c, api, "alice", **query)
        assert r.status_code == 400 and message in r.json()["error"], r.text


def test_writable_queries_need_what_their_sql_does(api: Api) -> None:
    with api.client() as c:
        r = store(c, api, "bob", name="w", sql="insert into log (msg) values (:msg)")
        assert r.status_code == 403 and "need insert-row on fixtures/log" in r.json()["error"]
        r = store(c, api, "alice", name="w", sql="insert into log (msg) values (:msg)", is_private=False)
        assert r.status_code == 201 and r.json()["query"]["is_write"] is True
        # a GET only describes a writable query
        assert c.get("/fixtures/w.json?msg=x&_extra=columns").json() == {"ok": True, "rows": [], "truncated": False}
        r = store(c, api, "alice", name="v", sql="vacuum")
        assert r.status_code == 403


def test_update_and_delete_by_the_owner(api: Api) -> None:
    with api.client() as c:
        store(c, api, "alice", name="q", sql="select 1 as a", is_private=False)
        r = c.post("/fixtures/q/-/update", headers=api.h("bob"), json={"update": {"title": "x"}})
        assert r.status_code == 403 and r.json()["error"] == "Permission denied: need update-query"
        r = c.post("/fixtures/q/-/update", headers=api.h("alice"),
                   json={"update": {"title": "Two", "sql": "select :n as a"}, "return": True})
        assert r.status_code == 200 and r.json()["query"]["parameters"] == ["n"]
        assert c.get("/fixtures/q.json?n=2&_shape=arrayfirst").json() == ["2"]
        r = c.post("/fixtures/q/-/update", headers=api.h("alice"), json={"update": {"bogus": 1}})
        assert r.status_code == 400 and r.json()["error"] == "Invalid keys: bogus"
        assert c.post("/fixtures/q/-/delete", headers=api.h("bob")).status_code == 403
        assert c.post("/fixtures/q/-/delete", headers=api.h("root")).json() == {"ok": True}
        assert c.get("/fixtures/q.json").status_code == 404
        assert c.post("/fixtures/q/-/delete", headers=api.h("root")).status_code == 404


def test_update_and_delete_query_actions_in_tokens(api: Api) -> None:
    with api.client() as c:
        store(c, api, "alice", name="q", sql="select 1", is_private=False)
        # alice's own token narrowed to everything but update-query: no update
        narrowed = tokens.create(api.store, "alice", {"r": {"fixtures": {"q": ["vq", "dq"]}}})[0]
        assert c.post("/fixtures/q/-/update", headers=api.h(narrowed), json={"update": {"title": "t"}}).status_code == 403
        assert c.post("/fixtures/q/-/delete", headers=api.h(narrowed)).status_code == 200


def test_metadata_queries_are_served_alike_and_read_only(api: Api) -> None:
    with api.client() as c:
        assert c.get("/fixtures/by_breed.json?breed=Mutt&_shape=arrayfirst").json()[:2] == [1, 5]
        definition = c.get("/fixtures/by_breed/-/definition").json()["query"]
        assert definition["is_trusted"] is True and definition["source"] == "config"
        r = c.post("/fixtures/by_breed/-/update", headers=api.h("root"), json={"update": {"title": "x"}})
        assert r.status_code == 403 and "Trusted queries" in r.json()["error"]
        assert c.post("/fixtures/by_breed/-/delete", headers=api.h("root")).status_code == 403
        # 0.65's database page lists both kinds, as 0.65 lists its canned queries
        store(c, api, "alice", name="shared", sql="select 2", is_private=False)
        names = [q["name"] for q in c.get("/fixtures.json").json()["queries"]]
        assert names == ["by_breed", "shared"]


def test_listing_pages_filters_and_facets(api: Api) -> None:
    with api.client() as c:
        for name in ("a", "b", "c"):
            store(c, api, "alice", name=name, sql=f"select '{name}'", is_private=False)
        first = c.get("/fixtures/-/queries.json?_size=2").json()
        assert [q["name"] for q in first["queries"]] == ["a", "b"] and first["next"]
        second = c.get(first["next_url"]).json()
        assert [q["name"] for q in second["queries"]] == ["by_breed", "c"] and second["next"] is None
        assert [q["name"] for q in c.get("/fixtures/-/queries.json?source=config").json()["queries"]] == ["by_breed"]
        assert [q["name"] for q in c.get("/fixtures/-/queries.json?q=breed").json()["queries"]] == ["by_breed"]
        mode = c.get("/fixtures/-/queries.json").json()["facets"][0]
        assert mode["title"] == "Mode" and mode["items"][0] == {
            "label": "Read-only", "count": 4, "href": "/fixtures/-/queries?is_write=0", "active": False}
        everywhere = c.get("/-/queries.json").json()
        assert everywhere["show_database"] is True and len(everywhere["queries"]) == 4
        assert c.get("/fixtures/-/queries.json?is_write=maybe").status_code == 400


def test_1_0_database_page_lists_queries(api: Api) -> None:
    with api.client() as c:
        body = c.get("/fixtures.json?_extra=").json()
        assert body["queries_count"] == 1 and body["queries"][0]["name"] == "by_breed"
        assert c.get("/fixtures.json?_extra=count").status_code == 400


def test_a_table_created_later_wins_over_a_stored_query(api: Api) -> None:
    with api.client() as c:
        store(c, api, "alice", name="later", sql="select 'query'", is_private=False)
        assert c.get("/fixtures/later.json?_shape=arrayfirst").json() == ["query"]
        c.post("/fixtures/-/create", headers=api.h("root"), json={"table": "later", "row": {"v": "table"}})
        assert c.get("/fixtures/later.json?_shape=arrayfirst").json() == [1]

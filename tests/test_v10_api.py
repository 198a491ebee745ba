"""Datasette 1.0a41's JSON API beside 0.65's: the format chosen by the request or by
`default_json_api`, `?_extra=` on table, row and query pages, `/-/count`, column types,
`/-/schema`, `/-/actions.json`, every 1.0a41 action in restrictions, and JSON errors under
`/-/`."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import actions, tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.endpoints import extras
from lambdasette.instance import Lambdasette, Options
from lambdasette.metadata import Metadata
from lambdasette.settings import Settings
from lambdasette.storage.local import LocalStorage

from .conftest import make_client

METADATA = {
    "title": "Kennel",
    "databases": {"fixtures": {
        "tables": {"dogs": {"description": "Good dogs", "columns": {"name": "The dog's name"}}},
        "queries": {"by_breed": {"sql": "select id, name from dogs where breed = :breed order by id",
                                 "title": "Dogs by breed"}},
    }},
}


@pytest.fixture(scope="module")
def v10(fixture_path: Path) -> Iterator[TestClient]:
    ds = Lambdasette(storage=LocalStorage([fixture_path]), metadata=Metadata(METADATA))
    with TestClient(create_app(ds), base_url="http://localhost") as client:
        yield client


# -- which format --------------------------------------------------------------------------------


def test_the_request_chooses_the_format(v10: TestClient) -> None:
    legacy = v10.get("/fixtures/dogs.json?_size=1").json()
    assert "filtered_table_rows_count" in legacy and isinstance(legacy["rows"][0], list)
    new = v10.get("/fixtures/dogs.json?_size=1&_extra=columns").json()
    assert list(new) == ["ok", "next", "next_url", "columns", "rows", "truncated"]
    assert new["rows"][0]["name"] == "Dog 1"
    # the 1.0-only query URL answers in 1.0a41's format, 0.65's URL in 0.65's
    q = {"sql": "select id from dogs where id < :n order by id", "n": "3"}
    assert v10.get("/fixtures/-/query.json", params=q).json() == {
        "ok": True, "rows": [{"id": 1}, {"id": 2}], "truncated": False}
    assert v10.get("/fixtures.json", params=q).json()["rows"] == [[1], [2]]
    assert v10.get("/fixtures.json", params={**q, "_extra": "columns"}).json() == {
        "ok": True, "rows": [{"id": 1}, {"id": 2}], "columns": ["id"], "truncated": False}


def test_default_json_api_makes_every_answer_1_0(fixture_path: Path) -> None:
    with make_client(fixture_path, default_json_api="1.0") as c:
        table = c.get("/fixtures/dogs.json?_size=2").json()
        assert list(table) == ["ok", "next", "next_url", "rows", "truncated"]
        row = c.get("/fixtures/dogs/1.json").json()
        assert list(row) == ["ok", "database", "table", "rows", "primary_keys", "primary_key_values",
                             "query_ms", "truncated"]
        assert c.get("/fixtures/dogs/999.json").json()["error"] == "Row not found"
        assert c.get("/fixtures.json?sql=select+1+as+one").json() == {
            "ok": True, "rows": [{"one": 1}], "truncated": False}
        index = c.get("/.json").json()
        assert index["ok"] is True and index["databases"][0]["name"] == "fixtures"
        database = c.get("/fixtures.json").json()
        assert database["ok"] is True and "table_columns" in database and "queries_count" in database
        assert all("count_truncated" in t for t in database["tables"])
        assert c.get("/-/databases.json").json()["databases"][0]["name"] == "fixtures"
        assert c.get("/-/actor.json").json() == {"ok": True, "actor": None}
        assert c.get("/-/settings.json").json()["default_json_api"] == "1.0"
        assert c.get("/-/versions.json").json()["ok"] is True
    with make_client(fixture_path) as c:
        assert c.get("/fixtures/dogs/999.json").json()["error"] == "Record not found"


def test_the_setting_takes_only_its_values() -> None:
    with pytest.raises(ValueError, match="must be one of 0.65, 1.0"):
        Settings().set("default_json_api", "2")
    assert Settings.from_env({"LAMBDASETTE_SETTING_DEFAULT_JSON_API": "1.0"}).default_json_api == "1.0"


def test_the_template_passes_the_setting_to_every_function() -> None:
    template = (Path(__file__).resolve().parents[1] / "template.yaml").read_text()
    assert "LAMBDASETTE_SETTING_DEFAULT_JSON_API: !Ref DefaultJsonApi" in template
    assert 'AllowedValues: ["0.65", "1.0"]' in template


# -- table extras --------------------------------------------------------------------------------


def test_every_table_extra(v10: TestClient) -> None:
    names = [e.name for e in extras.offered(extras.TABLE)]
    assert len(names) == 32
    body = v10.get("/fixtures/dogs.json", params={"_extra": ",".join(names), "_size": "2",
                                                  "_facet": "breed", "age__gt": "3"}).json()
    for name in names:
        assert name in body, name
    assert body["count"] == 19 and body["count_truncated"] is False
    assert body["count_sql"] == 'select count(*) from "dogs" where "age" > :p0'
    assert set(body["facet_results"]) == {"results", "timed_out"} and "breed" in body["facet_results"]["results"]
    assert body["human_description_en"] == "where age > 3"
    assert body["columns"] == body["all_columns"][: len(body["columns"])]
    assert body["primary_keys"] == ["id"]
    assert body["column_details"]["id"] == {"type": "INTEGER", "sqlite_type": "INTEGER", "notnull": False,
                                            "default": None, "is_pk": True, "pk_position": 1, "hidden": 0}
    assert body["display_columns"][1]["description"] == "The dog's name"
    assert body["metadata"] == {"description": "Good dogs", "columns": {"name": "The dog's name"}}
    assert body["database"] == "fixtures" and body["table"] == "dogs" and body["is_view"] is False
    assert body["table_definition"].startswith("CREATE TABLE dogs") and body["view_definition"] is None
    assert body["expandable_columns"] == [[{"other_table": "owners", "column": "owner_id",
                                            "other_column": "id"}, "name"]]
    assert body["query"]["params"] == {"p0": 3}
    assert body["private"] is False and body["set_column_type_ui"] is None
    assert body["sorted_facet_results"][0]["name"] == "breed"
    assert body["render_cell"] == [{}, {}]
    assert body["request"]["path"] == "/fixtures/dogs.json"
    assert body["renderers"]["json"].startswith("/fixtures/dogs.json?")
    assert {e["name"] for e in body["extras"] if e["selected"]} == set(names)


def test_extras_combine_with_filters_sort_shape_and_pagination(v10: TestClient) -> None:
    r = v10.get("/fixtures/dogs.json?_extra=count&_extra=columns&_shape=arrays&_sort_desc=age&_size=5"
                "&_col=name&breed=Mutt")
    body = r.json()
    assert body["count"] == 8 and body["columns"] == ["id", "name"]
    assert all(isinstance(row, list) and len(row) == 2 for row in body["rows"])
    follow = v10.get(body["next_url"]).json()
    assert follow["count"] == 8 and len(follow["rows"]) == 3
    assert r.headers["link"] == f'<{body["next_url"]}>; rel="next"'
    assert v10.get("/fixtures/dogs.json?_extra=count&_nocount=1").json()["count"] is None


@pytest.mark.parametrize("url, unknown", [
    ("/fixtures/dogs.json?_extra=nope", "nope"),
    ("/fixtures/dogs.json?_extra=columns,filters", "filters"),
    ("/fixtures/dogs.json?_extra=next_url", "next_url"),
    ("/fixtures/dogs/1.json?_extra=count", "count"),
    ("/fixtures/dogs/1.json?_extra=facet_results", "facet_results"),
    ("/fixtures/-/query.json?sql=select+1&_extra=table", "table"),
    ("/fixtures/-/query.json?sql=select+1&_extra=primary_keys,count", "count, primary_keys"),
    ("/fixtures/by_breed.json?_extra=count", "count"),
])
def test_unknown_or_inapplicable_extras_are_400(v10: TestClient, url: str, unknown: str) -> None:
    r = v10.get(url)
    assert r.status_code == 400 and r.json()["error"] == f"Unknown _extra: {unknown}"


def test_a_facet_argument_brings_facet_results(v10: TestClient) -> None:
    body = v10.get("/fixtures/dogs.json?_extra=columns&_facet=breed&_size=0").json()
    assert body["facet_results"]["results"]["breed"]["results"][0]["count"] == 8


def test_1_0_blobs_are_always_base64(v10: TestClient) -> None:
    rows = v10.get("/fixtures/odd.json?_extra=columns").json()["rows"]
    assert rows[1]["data"] == {"$base64": True, "encoded": "aGVsbG8="}
    assert v10.get("/fixtures/odd.json?_shape=objects").json()["rows"][1]["data"] == "hello"  # 0.65


def test_counts_stop_at_ten_thousand(tmp_path: Path) -> None:
    path = tmp_path / "big.db"
    conn = sqlite3.connect(path)
    conn.execute("create table big (id integer primary key)")
    conn.executemany("insert into big values (?)", [(i,) for i in range(10_050)])
    conn.commit()
    conn.close()
    with make_client(path) as c:
        body = c.get("/big/big.json?_extra=count&_size=0").json()
        assert body["count"] == 10_001 and body["count_truncated"] is True
        assert c.get("/big/big.json?_size=0").json()["filtered_table_rows_count"] == 10_050
        assert c.post("/big/big/-/count").json() == {"ok": True, "count": 10_050}
        assert c.post("/big/big/-/count?id__lt=10").json()["count"] == 10


def test_a_page_computes_only_what_it_shows(fixture_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One renderer per format over the same page data: the count and facets run only for the
    blocks asked for, and once."""
    counted: list[str] = []
    original = Lambdasette.count

    def count(self: Lambdasette, *args: Any, **kwargs: Any) -> Any:
        counted.append(args[2])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Lambdasette, "count", count)
    with make_client(fixture_path) as c:
        c.get("/fixtures/dogs.json?_extra=columns&_nocount=0&age__gt=1")
        assert counted == []
        c.get("/fixtures/dogs.json?_extra=count,count_truncated&age__gt=2")
        assert len(counted) == 1 and "limit 10001" in counted[0]
        c.get("/fixtures/dogs.json?age__gt=3")
        assert len(counted) == 2 and "limit" not in counted[1]


# -- row and query extras ------------------------------------------------------------------------


def test_row_extras(v10: TestClient) -> None:
    names = [e.name for e in extras.offered(extras.ROW)]
    assert len(names) == 15
    body = v10.get("/fixtures/owners/1.json", params={"_extra": ",".join(names)}).json()
    for name in names:
        assert name in body, name
    assert body["foreign_key_tables"] == [{"other_table": "dogs", "column": "id", "other_column": "owner_id",
                                           "count": 10, "link": "/fixtures/dogs?owner_id=1"}]
    assert body["query"]["params"] == {"p0": 1}
    assert body["primary_key_values"] == ["1"]


def test_query_extras(v10: TestClient) -> None:
    names = [e.name for e in extras.offered(extras.QUERY)]
    assert len(names) == 10
    body = v10.get("/fixtures/-/query.json", params={"sql": "select id from dogs where age > :a limit 2",
                                                     "a": "10", "_ttl": "3", "_extra": ",".join(names)}).json()
    for name in names:
        assert name in body, name
    assert body["query"] == {"sql": "select id from dogs where age > :a limit 2", "params": {"a": "10"}}
    assert body["columns"] == ["id"] and body["metadata"] == {}
    stored = v10.get("/fixtures/by_breed.json?breed=Mutt&_extra=metadata,query").json()
    assert stored["metadata"]["title"] == "Dogs by breed" and stored["metadata"]["is_trusted"] is True
    assert stored["query"]["params"] == {"breed": "Mutt"}


def test_query_errors_in_1_0(v10: TestClient) -> None:
    r = v10.get("/fixtures/-/query.json?sql=select+nope+from+dogs")
    assert r.status_code == 400
    body = r.json()
    assert body["rows"] == [] and body["truncated"] is False and body["error"] == "no such column: nope"
    r = v10.get("/fixtures/-/query.json?sql=")
    assert r.status_code == 400 and "rows" not in r.json()


# -- /-/count ------------------------------------------------------------------------------------


def test_count_is_post_only_exact_and_never_cached(v10: TestClient) -> None:
    r = v10.post("/fixtures/dogs/-/count?breed=Mutt")
    assert r.json() == {"ok": True, "count": 8} and r.headers["cache-control"] == "private, no-store"
    assert v10.post("/fixtures/docs/-/count?_search=river").json()["count"] == 2
    r = v10.get("/fixtures/dogs/-/count")
    assert r.status_code == 405 and r.json()["ok"] is False
    assert v10.post("/fixtures/nope/-/count").status_code == 404
    assert v10.post("/fixtures/dogs/-/count?nope=1").status_code == 400


def test_count_time_limit_is_a_400(fixture_path: Path) -> None:
    with make_client(fixture_path, sql_time_limit_ms=20) as c:
        slow = "(select count(*) from dogs a, dogs b, dogs c, dogs d, dogs e) > 0"
        r = c.post("/fixtures/dogs/-/count", params={"_where": slow})
        assert r.status_code == 400 and "too long" in r.json()["error"]


# -- column types ---------------------------------------------------------------------------------


class Api:
    def __init__(self, tmp_path: Path) -> None:
        from .fixture_db import make_fixture_db

        self.path = make_fixture_db(tmp_path / "fixtures.db")
        self.store = LocalTokenStore(tmp_path / "tokens.db")
        self.root = tokens.create(self.store, "root")[0]
        self.alice = tokens.create(self.store, "alice")[0]

    def client(self, **options: Any) -> TestClient:
        ds = Lambdasette(storage=LocalStorage([self.path]), tokens=self.store,
                         options=Options(public=True), **options)
        return TestClient(create_app(ds))

    def headers(self, who: str = "root") -> dict[str, str]:
        return {"Authorization": f"Bearer {getattr(self, who, who)}"}


@pytest.fixture
def api(tmp_path: Path) -> Api:
    return Api(tmp_path)


def test_set_column_type_and_read_it_back(api: Api) -> None:
    with api.client() as c:
        r = c.post("/fixtures/owners/-/set-column-type", headers=api.headers(),
                   json={"column": "name", "column_type": {"type": "url", "config": {"target": "_blank"}}})
        assert r.json() == {"ok": True, "database": "fixtures", "table": "owners", "column": "name",
                            "column_type": {"type": "url", "config": {"target": "_blank"}}}
        expected = {"name": {"type": "url", "config": {"target": "_blank"}}}
        assert c.get("/fixtures/owners.json?_extra=column_types").json()["column_types"] == expected
        assert c.get("/fixtures/owners/1.json?_extra=column_types").json()["column_types"] == expected
        cells = c.get("/fixtures/owners.json?_extra=render_cell&_size=1").json()["render_cell"]
        assert cells == [{"name": '<a href="Ada">Ada</a>'}]
        ui = c.get("/fixtures/owners.json?_extra=set_column_type_ui", headers=api.headers()).json()
        assert ui["set_column_type_ui"]["columns"]["name"]["current"]["type"] == "url"
    # kept in the database: a new process (a cold Lambda) sees it
    with api.client() as c:
        assert c.get("/fixtures/owners.json?_extra=column_types").json()["column_types"] == expected
        # and nobody sees where it is kept
        assert "_lambdasette" not in c.get("/fixtures.json").text
        assert "_lambdasette" not in c.get("/fixtures/-/schema.json").text
        assert c.get("/fixtures/_lambdasette_column_types.json").status_code in (403, 404)
        r = c.get("/fixtures.json", params={"sql": "select * from _lambdasette_column_types"})
        assert r.status_code in (400, 403)
        r = c.post("/fixtures/owners/-/set-column-type", headers=api.headers(),
                   json={"column": "name", "column_type": None})
        assert r.json()["column_type"] is None
        assert c.get("/fixtures/owners.json?_extra=column_types").json()["column_types"] == {}


@pytest.mark.parametrize("body, status, message", [
    ({"column": "age", "column_type": {"type": "url"}}, 400,
     "Column type 'url' is only applicable to SQLite types TEXT but fixtures.dogs.age has SQLite type INTEGER"),
    ({"column": "nope", "column_type": {"type": "url"}}, 400, "Column not found: nope"),
    ({"column": "name", "column_type": {"type": "nope"}}, 400, "Unknown column type: nope"),
    ({"column": "name"}, 400, '"column_type" is required'),
    ({"column_type": None}, 400, '"column" is required'),
    ({"column": "name", "column_type": "url"}, 400, '"column_type" must be an object or null'),
    ({"column": "name", "column_type": {"type": "url", "x": 1}}, 400, 'Invalid column_type parameter: "x"'),
    ({"column": "name", "column_type": {"type": "url"}, "x": 1}, 400, 'Invalid parameter: "x"'),
])
def test_set_column_type_errors(api: Api, body: dict[str, Any], status: int, message: str) -> None:
    with api.client() as c:
        r = c.post("/fixtures/dogs/-/set-column-type", headers=api.headers(), json=body)
        assert r.status_code == status and r.json()["error"] == message


def test_set_column_type_needs_its_action_first(api: Api) -> None:
    with api.client() as c:
        r = c.post("/fixtures/nope/-/set-column-type", headers=api.headers("alice"),
                   json={"column": "name", "column_type": {"type": "url"}})
        assert r.status_code == 403  # before the table is looked up
        allowed = tokens.create(api.store, "root", {"r": {"fixtures": {"owners": ["sct"]}}})[0]
        r = c.post("/fixtures/owners/-/set-column-type", headers=api.headers(allowed),
                   json={"column": "name", "column_type": {"type": "email"}})
        assert r.status_code == 200


def test_writes_check_column_types(api: Api) -> None:
    with api.client() as c:
        c.post("/fixtures/owners/-/set-column-type", headers=api.headers(),
               json={"column": "name", "column_type": {"type": "email"}})
        r = c.post("/fixtures/owners/-/insert", headers=api.headers(),
                   json={"rows": [{"name": "ok@example.com"}, {"name": "not an email"}]})
        assert r.status_code == 400 and r.json()["errors"] == ["name: Invalid email address"]
        r = c.post("/fixtures/owners/1/-/update", headers=api.headers(), json={"update": {"name": "x"}})
        assert r.status_code == 400
        r = c.post("/fixtures/owners/-/insert", headers=api.headers(), json={"row": {"name": "a@b.co"}})
        assert r.status_code == 201


# -- /-/schema and /-/actions.json -----------------------------------------------------------------


def test_schema_pages(api: Api) -> None:
    with api.client(policy=Policy.parse({"databases": {"fixtures": {"tables": {
            "owners": {"permissions": {"view-table": {"id": "root"}}}}}}})) as c:
        full = c.get("/fixtures/-/schema.json", headers=api.headers()).json()
        assert "CREATE TABLE owners" in full["schema"]
        seen = c.get("/fixtures/-/schema.json", headers=api.headers("alice")).json()
        # dogs has a foreign key to owners, which alice may not view: its statement names it
        assert "CREATE TABLE compound" in seen["schema"] and "owners" not in seen["schema"]
        md = c.get("/fixtures/-/schema.md", headers=api.headers())
        assert md.headers["content-type"].startswith("text/markdown") and md.text.startswith("# Schema for fixtures")
        table = c.get("/fixtures/dogs/-/schema.json", headers=api.headers()).json()
        assert table["table"] == "dogs" and table["schema"].startswith("CREATE TABLE dogs")
        assert c.get("/fixtures/dogs/-/schema.md", headers=api.headers()).text.startswith(
            "# Schema for fixtures.dogs")
        assert c.get("/fixtures/dogs/-/schema.json").status_code == 403  # names owners
        assert c.get("/fixtures/owners/-/schema.json", headers=api.headers("alice")).status_code == 403
        assert c.get("/fixtures/nope/-/schema.json", headers=api.headers()).status_code == 404
        instance = c.get("/-/schema.json").json()
        assert [s["database"] for s in instance["schemas"]] == ["fixtures"]
        restricted = tokens.create(api.store, "root", {"r": {"fixtures": {"dogs": ["vt"]}}})[0]
        assert c.get("/-/schema.json", headers=api.headers(restricted)).json() == {"ok": True, "schemas": []}
        assert c.get("/fixtures/-/schema.json", headers=api.headers(restricted)).status_code == 403


def test_actions_json(api: Api) -> None:
    with api.client() as c:
        body = c.get("/-/actions.json", headers=api.headers()).json()
        names = [a["name"] for a in body["actions"]]
        assert names == sorted(names) and len(names) == 21 and "execute-write-sql" in names
        assert body["lambdasette_actions"][0]["name"] == "create-token"
        vt = next(a for a in body["actions"] if a["name"] == "view-table")
        assert vt == {"name": "view-table", "abbr": "vt", "description": "View table", "takes_parent": True,
                      "takes_child": True, "resource_class": "TableResource", "also_requires": None}
        assert c.get("/-/actions.json", headers=api.headers("alice")).status_code == 403
        assert c.get("/-/actions.json").status_code == 403


def test_unknown_paths_under_dash_are_json(v10: TestClient) -> None:
    for path in ("/-/nope", "/-/nope.json", "/fixtures/-/nope", "/fixtures/dogs/-/nope", "/-/actions/x"):
        r = v10.get(path)
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/json"), path
        assert r.json()["ok"] is False


# -- every 1.0a41 action -------------------------------------------------------------------------

NEW = {"ews": "execute-write-sql", "cv": "create-view", "dv": "drop-view", "sct": "set-column-type",
       "sq": "store-query", "uq": "update-query", "dq": "delete-query", "pd": "permissions-debug",
       "dm": "debug-menu", "vdd": "view-database-download"}


def test_every_action_and_abbreviation_is_accepted_everywhere(tmp_path: Path) -> None:
    for abbr, name in NEW.items():
        assert actions.full_action(abbr) == name == actions.full_action(name)
    restrictions = actions.normalize_restrictions({"a": list(NEW), "d": {"db": ["sq"]}, "r": {"db": {"t": ["sct"]}}})
    assert restrictions["a"] == sorted(NEW.values())
    policy = Policy.parse({"permissions": {"pd": {"id": "alice"}, "store-query": True},
                           "databases": {"db": {"tables": {"t": {"permissions": {"sct": {"id": "bob"}}}}}}})
    assert policy.decide({"id": "alice"}, "permissions-debug", None, None) is True
    assert policy.decide({"id": "bob"}, "set-column-type", "db", "t") is True
    cli = [sys.executable, "-m", "lambdasette.cli", "token", "create", "alice",
           "-a", "ews", "-d", "data", "store-query", "-r", "data", "t", "sct",
           "--tokens-db", str(tmp_path / "t.db")]
    out = subprocess.run(cli, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    record = tokens.verify(LocalTokenStore(tmp_path / "t.db"), out.stdout.strip())
    assert record is not None and record.restrictions == {
        "a": ["execute-write-sql"], "d": {"data": ["store-query"]}, "r": {"data": {"t": ["set-column-type"]}}}


def test_schemas_never_name_a_hidden_table(tmp_path: Path) -> None:
    """A trigger that writes a hidden table, a foreign key to one, a view over one: their
    statements would name it, so a caller who may not view it does not get them."""
    path = tmp_path / "s.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE payroll (id INTEGER PRIMARY KEY, salary INTEGER);
        CREATE TABLE staff (id INTEGER PRIMARY KEY, name TEXT, pay_id INTEGER REFERENCES payroll(id));
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
        CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO payroll (salary) VALUES (0); END;
        CREATE VIEW pay_view AS SELECT * FROM payroll;
    """)
    conn.close()
    store = LocalTokenStore(tmp_path / "t.db")
    alice = tokens.create(store, "alice")[0]
    policy = Policy.parse({"databases": {"s": {"tables": {"payroll": {"permissions": {"view-table": {"id": "root"}}}}}}})
    ds = Lambdasette(storage=LocalStorage([path]), tokens=store, policy=policy, options=Options(public=True))
    with TestClient(create_app(ds)) as c:
        h = {"Authorization": f"Bearer {alice}"}
        text = c.get("/s/-/schema.json", headers=h).json()["schema"]
        assert "payroll" not in text.lower() and "CREATE TABLE notes" in text
        assert "payroll" not in c.get("/-/schema.json", headers=h).text.lower()
        assert c.get("/s/notes/-/schema.json", headers=h).json()["schema"].startswith("CREATE TABLE notes")
        assert c.get("/s/staff/-/schema.json", headers=h).status_code == 403
        assert c.get("/s/staff.json?_extra=table_definition", headers=h).json()["table_definition"] is None
        root = tokens.create(store, "root")[0]
        full = c.get("/s/-/schema.json", headers={"Authorization": f"Bearer {root}"}).json()["schema"]
        assert "CREATE TRIGGER notes_audit" in full and "CREATE VIEW pay_view" in full


def test_the_token_api_takes_every_action(api: Api) -> None:
    with api.client() as c:
        r = c.post("/-/api/tokens", headers=api.headers(),
                   json={"restrictions": {"a": ["ews", "pd"], "d": {"fixtures": ["sq", "cv"]},
                                          "r": {"fixtures": {"dogs": ["sct", "dv"], "q": ["uq", "dq"]}}}})
        assert r.status_code == 201, r.text
        assert r.json()["restrictions"] == {
            "a": ["execute-write-sql", "permissions-debug"], "d": {"fixtures": ["create-view", "store-query"]},
            "r": {"fixtures": {"dogs": ["drop-view", "set-column-type"], "q": ["delete-query", "update-query"]}}}
        minted = r.json()["token"]
        assert c.get("/-/actions.json", headers=api.headers(minted)).status_code == 200
        r = c.post("/-/api/tokens", headers=api.headers(), json={"restrictions": {"a": ["nope"]}})
        assert r.status_code == 400

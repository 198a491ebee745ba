"""The write API: every endpoint, its errors, permissions, and all-or-nothing transactions."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.settings import Settings
from lambdasette.storage.local import LocalStorage


def make_write_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    with conn:
        conn.executescript("""
            CREATE TABLE dogs (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER, weight REAL);
            INSERT INTO dogs VALUES (1, 'Cleo', 5, 12.5), (2, 'Pancakes', 3, 7.25), (3, 'Rex', 9, 30.0);
            CREATE TABLE journal (entry TEXT, mood TEXT);
            INSERT INTO journal VALUES ('first', 'happy'), ('second', 'sad');
            CREATE TABLE compound (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b));
            INSERT INTO compound VALUES ('x,y', 1, 'one'), ('a', 2, 'two');
            CREATE TABLE files (id INTEGER PRIMARY KEY, data BLOB);
            CREATE TABLE docs (id INTEGER PRIMARY KEY, title TEXT, body TEXT);
            INSERT INTO docs VALUES (1, 'Hello', 'world');
            CREATE VIEW dog_names AS SELECT name FROM dogs;
            CREATE TABLE codes (code TEXT PRIMARY KEY, label TEXT) WITHOUT ROWID;
        """)
    conn.close()
    import sqlite_utils

    db = sqlite_utils.Database(path)
    db["docs"].enable_fts(["title", "body"], create_triggers=True)
    db.close()
    return path


class Api:
    def __init__(self, client: TestClient, store: LocalTokenStore, path: Path) -> None:
        self.client, self.store, self.path = client, store, path
        self.root = tokens.create(store, "root")[0]

    def token(self, restrictions: dict | None = None, actor: str = "root") -> str:
        return tokens.create(self.store, actor, restrictions)[0]

    def post(self, url: str, body: Any = None, token: str | None = "root", **kwargs: Any) -> Any:
        token = self.root if token == "root" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        if body is not None:
            kwargs["json"] = body
        return self.client.post(url, headers=headers, **kwargs)

    def rows(self, table: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.path)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f'select rowid as _rowid, * from "{table}" order by rowid')]
        finally:
            conn.close()


def make_api(tmp_path: Path, **settings: Any) -> Iterator[Api]:
    path = make_write_db(tmp_path / "write.db")
    store = LocalTokenStore(tmp_path / "tokens.db")
    config = Settings()
    for name, value in settings.items():
        config.set(name, str(value))
    ds = Lambdasette(storage=LocalStorage([path]), settings=config,
                     options=Options(public=True, cors=True), tokens=store)
    with TestClient(create_app(ds)) as client:
        yield Api(client, store, path)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)


# -- insert ---------------------------------------------------------------------------------------

def test_insert_row_returns_the_stored_row(api: Api) -> None:
    r = api.post("/write/dogs/-/insert", {"row": {"name": "Zoë 🐕", "age": True}})
    assert r.status_code == 201
    assert r.json() == {"ok": True, "rows": [{"id": 4, "name": "Zoë 🐕", "age": 1, "weight": None}]}
    assert r.headers["cache-control"] == "private, no-store"


def test_insert_rows_with_and_without_return(api: Api) -> None:
    assert api.post("/write/dogs/-/insert", {"rows": [{"name": "A"}, {"name": "B", "age": 2}]}).json() == {"ok": True}
    r = api.post("/write/dogs/-/insert", {"rows": [{"name": "C"}, {"age": 4, "name": "D"}], "return": True})
    assert [row["name"] for row in r.json()["rows"]] == ["C", "D"]
    assert [d["name"] for d in api.rows("dogs")][-4:] == ["A", "B", "C", "D"]


def test_a_failing_row_writes_nothing(api: Api) -> None:
    before = api.rows("dogs")
    r = api.post("/write/dogs/-/insert", {"rows": [{"name": "New"}, {"id": 1, "name": "Dup"}]})
    assert r.status_code == 400 and r.json()["error"] == "UNIQUE constraint failed: dogs.id"
    r = api.post("/write/dogs/-/insert", {"rows": [{"name": "New"}, {"name": None}]})
    assert r.status_code == 400 and r.json()["error"] == "NOT NULL constraint failed: dogs.name"
    assert api.rows("dogs") == before


def test_ignore_returns_the_existing_row_and_replace_overwrites(api: Api) -> None:
    r = api.post("/write/dogs/-/insert",
                 {"rows": [{"id": 1, "name": "Dup"}, {"id": 9, "name": "New"}], "ignore": True, "return": True})
    assert [row["name"] for row in r.json()["rows"]] == ["Cleo", "New"]
    r = api.post("/write/dogs/-/insert", {"rows": [{"id": 1, "name": "Replaced"}], "replace": True})
    assert r.status_code == 201
    assert api.rows("dogs")[0] == {"_rowid": 1, "id": 1, "name": "Replaced", "age": None, "weight": None}


def test_unknown_columns_are_all_reported_and_alter_adds_them(api: Api) -> None:
    r = api.post("/write/dogs/-/insert", {"rows": [{"name": "a", "nope": 1}, {"name": "b", "x": 1, "y": 2}]})
    assert r.status_code == 400
    assert r.json()["errors"] == ["Row 0 has invalid columns: nope", "Row 1 has invalid columns: x, y"]
    r = api.post("/write/dogs/-/insert", {"row": {"name": "a", "color": "red", "legs": 4}, "alter": True})
    assert r.status_code == 201 and r.json()["rows"][0]["color"] == "red"
    assert "\"legs\" INTEGER" in api.client.get("/write.json?sql=select+sql+from+sqlite_master+where+name='dogs'"
                                                "&_shape=arrayfirst").json()[0]


@pytest.mark.parametrize("body, status, message", [
    ({}, 400, 'JSON must have one or other of "row" or "rows"'),
    ({"row": {"name": "a"}, "rows": []}, 400, 'Cannot use "row" and "rows" at the same time'),
    ({"row": "x"}, 400, '"row" must be a dictionary'),
    ({"rows": {"name": "x"}}, 400, '"rows" must be a list'),
    ({"rows": [{"name": "a"}, "b"]}, 400, '"rows" must be a list of dictionaries'),
    ({"rows": [{"name": "a"}], "foo": 1}, 400, 'Invalid parameter: "foo"'),
    ({"rows": [{"name": "a"}], "ignore": True, "replace": True}, 400,
     'Cannot use "ignore" and "replace" at the same time'),
    ({"rows": [{"name": str(i)} for i in range(101)]}, 400, "Too many rows, maximum allowed is 100"),
    ({"row": {"name": "a"}, "return": "yes"}, 400, '"return" must be true or false'),
    ([{"name": "x"}], 400, "JSON must be a dictionary"),
])
def test_bad_insert_bodies(api: Api, body: Any, status: int, message: str) -> None:
    before = api.rows("dogs")
    r = api.post("/write/dogs/-/insert", body)
    assert (r.status_code, r.json()["error"]) == (status, message)
    assert api.rows("dogs") == before


def test_invalid_json_any_content_type_and_missing_tables(api: Api) -> None:
    r = api.post("/write/dogs/-/insert", content=b"{nope", headers={"Authorization": f"Bearer {api.root}"},
                 token=None)
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid JSON: Expecting property name")
    r = api.post("/write/dogs/-/insert", token=None, content=b'{"row": {"name": "Plain"}}',
                 headers={"Authorization": f"Bearer {api.root}", "Content-Type": "text/plain"})
    assert r.status_code == 201
    assert api.post("/write/nope/-/insert", {"row": {"a": 1}}).json()["error"] == "Table not found"
    r = api.post("/write/dog_names/-/insert", {"row": {"name": "x"}})
    assert (r.status_code, r.json()["error"]) == (404, "Table not found: dog_names")
    assert api.post("/write/docs_fts/-/insert", {"row": {"title": "x"}}).status_code == 404
    assert api.post("/nope/dogs/-/insert", {"row": {"name": "x"}}).status_code == 404


def test_body_over_the_limit_is_413(tmp_path: Path) -> None:
    for api in make_api(tmp_path, max_post_body_bytes=100):
        r = api.post("/write/dogs/-/insert", {"rows": [{"name": "x" * 200}]})
        assert r.status_code == 413
        assert r.json()["error"] == "Request body exceeded maximum size of 100 bytes"


def test_blobs_in_and_out(api: Api) -> None:
    r = api.post("/write/files/-/insert", {"row": {"data": {"$base64": True, "encoded": "AAECAw=="}}})
    assert r.json()["rows"] == [{"id": 1, "data": {"$base64": True, "encoded": "AAECAw=="}}]
    assert api.rows("files")[0]["data"] == b"\x00\x01\x02\x03"
    r = api.post("/write/files/-/insert", {"row": {"data": {"$base64": True, "encoded": "!!!"}}})
    assert (r.status_code, r.json()["error"]) == (400, "Invalid $base64 encoded value")


def test_nested_json_values_are_stored_as_json_text(api: Api) -> None:
    r = api.post("/write/docs/-/insert", {"row": {"title": {"a": [1, {"b": None}]}, "body": ["é"]}})
    assert r.json()["rows"][0] == {"id": 2, "title": '{"a": [1, {"b": null}]}', "body": '["é"]'}
    # The FTS triggers ran in the same transaction: the new row is searchable at once.
    assert api.client.get("/write/docs.json?_search=world&_shape=array").json()[0]["id"] == 1


def test_rowid_tables(api: Api) -> None:
    r = api.post("/write/journal/-/insert", {"row": {"entry": "third"}})
    # The rowid comes back, so the caller can address the row it created (cases/data/12).
    assert r.json()["rows"] == [{"rowid": 3, "entry": "third", "mood": None}]
    r = api.post("/write/journal/-/upsert", {"rows": [{"rowid": 1, "mood": "calm"}], "return": True})
    assert r.status_code == 200
    assert r.json()["rows"] == [{"rowid": 1, "entry": "first", "mood": "calm"}]
    r = api.post("/write/journal/2/-/update", {"update": {"mood": "ok"}, "return": True})
    assert r.json()["rows"] == [{"rowid": 2, "entry": "second", "mood": "ok"}]
    assert api.post("/write/journal/1/-/delete").json() == {"ok": True}
    assert [r["_rowid"] for r in api.rows("journal")] == [2, 3]


# -- upsert ---------------------------------------------------------------------------------------

def test_upsert_never_nulls_the_columns_a_row_leaves_out(api: Api) -> None:
    r = api.post("/write/dogs/-/upsert",
                 {"rows": [{"id": 1, "age": 6}, {"id": 2, "name": "Pan"}, {"id": 7, "name": "Seven"}],
                  "return": True})
    assert r.status_code == 200
    assert r.json()["rows"] == [
        {"id": 1, "name": "Cleo", "age": 6, "weight": 12.5},
        {"id": 2, "name": "Pan", "age": 3, "weight": 7.25},
        {"id": 7, "name": "Seven", "age": None, "weight": None},
    ]
    assert api.post("/write/dogs/-/upsert", {"rows": [{"id": 3}]}).status_code == 200


def test_upsert_errors(api: Api) -> None:
    r = api.post("/write/dogs/-/upsert", {"rows": [{"name": "NoPk"}, {"id": None, "name": "x"}]})
    assert r.json()["errors"] == ['Row 0 is missing primary key column(s): "id"',
                                  'Row 1 has null primary key column(s): "id"']
    r = api.post("/write/compound/-/upsert", {"rows": [{"a": "a", "v": "x"}]})
    assert r.json()["error"] == 'Row 0 is missing primary key column(s): "b"'
    r = api.post("/write/dogs/-/upsert", {"rows": [{"id": 1}], "ignore": True})
    assert r.json()["error"] == "Upsert does not support ignore or replace"
    # A new row that breaks a constraint rolls back the rows before it too.
    r = api.post("/write/dogs/-/upsert", {"rows": [{"id": 1, "age": 99}, {"id": 50, "age": 1}]})
    assert r.status_code == 400 and api.rows("dogs")[0]["age"] == 5


# -- update and delete ----------------------------------------------------------------------------

def test_update(api: Api) -> None:
    r = api.post("/write/dogs/2/-/update", {"update": {"name": "Pancakes Jr", "weight": 8}, "return": True})
    assert r.json() == {"ok": True, "rows": [{"id": 2, "name": "Pancakes Jr", "age": 3, "weight": 8.0}]}
    assert api.post("/write/dogs/2/-/update", {"update": {}}).json() == {"ok": True}
    r = api.post("/write/dogs/999/-/update", {"update": {"age": 1}})
    assert (r.status_code, r.json()["error"]) == (404, "Record not found: ['999']")
    assert api.post("/write/dogs/1/-/update", {"update": {"nope": 1}}).json()["error"] == "no such column: nope"
    r = api.post("/write/dogs/1/-/update", {"update": {"color": "grey"}, "alter": True})
    assert r.status_code == 200 and api.rows("dogs")[0]["color"] == "grey"
    assert api.post("/write/dogs/1/-/update", {"update": {"age": 3}, "foo": 1}).json()["error"] == "Invalid keys: foo"
    for bad in ({"title": "x"}, {"update": ["x"]}):
        assert api.post("/write/dogs/1/-/update", bad).json()["error"] == "JSON must contain an update dictionary"


def test_update_of_the_primary_key_returns_the_row_by_its_new_key(api: Api) -> None:
    r = api.post("/write/dogs/3/-/update", {"update": {"id": 30}, "return": True})
    assert r.status_code == 200 and r.json()["rows"][0]["id"] == 30


def test_compound_and_tilde_encoded_keys(api: Api) -> None:
    r = api.post("/write/compound/x~2Cy,1/-/update", {"update": {"v": "changed"}, "return": True})
    assert r.json()["rows"] == [{"a": "x,y", "b": 1, "v": "changed"}]
    assert api.post("/write/compound/a,2/-/delete").status_code == 200
    r = api.post("/write/compound/a,2/-/delete")
    assert (r.status_code, r.json()["error"]) == (404, "Record not found: ['a', '2']")
    assert api.post("/write/compound/a/-/delete").status_code == 400


# -- drop -------------------------------------------------------------------------------------------

def test_drop_asks_for_confirmation_then_drops_with_its_fts_index(api: Api) -> None:
    r = api.post("/write/docs/-/drop")
    assert r.json() == {"ok": True, "database": "write", "table": "docs", "row_count": 1,
                        "message": 'Pass "confirm": true to confirm'}
    assert api.post("/write/docs/-/drop", {"confirm": True}).json() == {"ok": True}
    names = api.client.get("/write.json?sql=select+name+from+sqlite_master&_shape=arrayfirst").json()
    assert not [n for n in names if n.startswith("docs")]
    assert api.post("/write/docs/-/drop", {"confirm": True}).status_code == 404
    assert api.post("/write/dog_names/-/drop", {"confirm": True}).json()["error"] == "Table not found: dog_names"


# -- create -----------------------------------------------------------------------------------------

def test_create_from_columns(api: Api) -> None:
    r = api.post("/write/-/create", {"table": "posts", "pk": "id", "columns": [
        {"name": "id", "type": "integer"},
        {"name": "title", "type": "text", "not_null": True, "default": "Untitled"},
        {"name": "score", "type": "float"}, {"name": "data", "type": "blob"},
        {"name": "created", "type": "text", "default_expr": "current_timestamp"},
        {"name": "owner", "type": "integer", "fk_table": "dogs"}]})
    assert r.status_code == 201
    body = r.json()
    assert body["table_url"] == "http://testserver/write/posts"
    assert body["schema"] == (
        'CREATE TABLE "posts" (\n   "id" INTEGER PRIMARY KEY,\n'
        '   "title" TEXT NOT NULL DEFAULT \'Untitled\',\n   "score" REAL,\n   "data" BLOB,\n'
        '   "created" TEXT DEFAULT CURRENT_TIMESTAMP,\n   "owner" INTEGER REFERENCES "dogs"("id")\n)')
    assert "row_count" not in body
    r = api.post("/write/-/create", {"table": "posts", "columns": [{"name": "id"}]})
    assert r.json()["error"] == 'table "posts" already exists'
    r = api.post("/write/-/create", {"table": "cpk", "columns": [{"name": "a"}, {"name": "b", "type": "integer"}],
                                     "pks": ["a", "b"]})
    assert r.json()["schema"].endswith('   PRIMARY KEY ("a", "b")\n)')
    r = api.post("/write/-/create", {"table": "autoid", "columns": [{"name": "title"}], "pk": "id"})
    assert r.json()["schema"] == 'CREATE TABLE "autoid" (\n   "id" INTEGER PRIMARY KEY,\n   "title" TEXT\n)'


def test_create_from_rows_infers_types_and_appends(api: Api) -> None:
    r = api.post("/write/-/create", {"table": "new table",
                                     "rows": [{"name": "a", "n": 1}, {"name": "b", "n": 2.5}, {"name": "c"}]})
    assert r.status_code == 201
    assert r.json()["schema"] == 'CREATE TABLE "new table" (\n   "name" TEXT,\n   "n" REAL\n)'
    assert r.json()["table_url"] == "http://testserver/write/new+table"
    assert r.json()["row_count"] == 3
    r = api.post("/write/-/create", {"table": "dogs", "rows": [{"id": 1, "name": "X"}, {"id": 50, "name": "Y"}],
                                     "pk": "id", "ignore": True})
    assert r.status_code == 201 and r.json()["row_count"] == 2
    assert api.rows("dogs")[0]["name"] == "Cleo" and api.rows("dogs")[-1]["name"] == "Y"
    r = api.post("/write/-/create", {"table": "dogs", "rows": [{"id": 60, "name": "Z"}], "pk": "name"})
    assert r.json()["error"] == "pk cannot be changed for existing table"
    r = api.post("/write/-/create", {"table": "dogs", "rows": [{"id": 61, "name": "Z", "wings": 2}]})
    assert r.json()["error"] == "table dogs has no column named wings"
    r = api.post("/write/-/create", {"table": "dogs", "rows": [{"id": 61, "name": "Z", "wings": 2}], "alter": True})
    assert r.status_code == 201 and api.rows("dogs")[-1]["wings"] == 2


@pytest.mark.parametrize("body, message", [
    ({"columns": [{"name": "id"}]}, "Table is required"),
    ({"table": "sqlite_x", "columns": [{"name": "id"}]}, "Invalid table name"),
    ({"table": "t"}, "columns, rows or row is required"),
    ({"table": "t", "columns": [{"name": "id"}], "rows": [{"id": 1}]}, "Cannot specify columns with rows or row"),
    ({"table": "t", "row": {"id": 1}, "rows": [{"id": 1}]}, "Cannot specify both rows and row"),
    ({"table": "t", "columns": [{"name": "a"}], "pk": "a", "pks": ["a"]}, "Cannot specify both pk and pks"),
    ({"table": "t", "columns": [{"name": "a", "type": "varchar"}]}, "Unsupported column type: varchar"),
    ({"table": "t", "columns": [{"name": "a", "bogus": 1}]}, "columns.0.bogus: Extra inputs are not permitted"),
    ({"table": "t", "columns": [{"name": "a"}, {"name": "a"}]}, "Duplicate column name: a"),
    ({"table": "t", "columns": [{"name": "a"}], "bogus": 1}, "Invalid keys: bogus"),
    ({"table": "t", "rows": [{"a": 1}], "ignore": True}, '"ignore" and "replace" need "row" or "rows" and a "pk"'),
])
def test_bad_create_bodies(api: Api, body: dict, message: str) -> None:
    r = api.post("/write/-/create", body)
    assert r.status_code == 400 and r.json()["error"].startswith(message)
    assert "t" not in api.client.get("/write.json").json()["tables"]


# -- alter ------------------------------------------------------------------------------------------

def test_alter_operations(api: Api) -> None:
    r = api.post("/write/dogs/-/alter", {"operations": [
        {"op": "add_column", "args": {"name": "slug", "type": "text", "not_null": True, "default": ""}},
        {"op": "rename_column", "args": {"name": "weight", "to": "kg"}},
        {"op": "add_column", "args": {"name": "created", "type": "text", "default_expr": "current_timestamp"}},
    ]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["operations_applied"] == 3 and body["altered"] is True
    assert body["schema"] == (
        'CREATE TABLE "dogs" (\n   "id" INTEGER PRIMARY KEY,\n   "name" TEXT NOT NULL,\n   "age" INTEGER,\n'
        '   "kg" REAL,\n   "slug" TEXT NOT NULL DEFAULT \'\',\n   "created" TEXT DEFAULT CURRENT_TIMESTAMP\n)')
    assert api.rows("dogs")[0]["kg"] == 12.5
    r = api.post("/write/dogs/-/alter", {"operations": [{"op": "rename_table", "args": {"to": "hounds"}}]})
    assert r.json()["table"] == "hounds" and r.json()["table_url"].endswith("/write/hounds")
    r = api.post("/write/hounds/-/alter", {"operations": [{"op": "explode", "args": {}}]})
    assert r.status_code == 400 and r.json()["error"].startswith("operations.0: Input tag 'explode'")
    assert api.post("/write/hounds/-/alter", {}).json()["error"] == "operations: Field required"
    r = api.post("/write/hounds/-/alter", {"operations": [{"op": "drop_column", "args": {"name": "nope"}}]})
    assert r.json()["error"] == "No such column: nope"
    r = api.post("/write/hounds/-/alter", {"operations": [{"op": "drop_column", "args": {"name": "slug"}}]},
                 token=None)
    assert (r.status_code, r.json()["error"]) == (403, "Permission denied: need alter-table")


# -- permissions ------------------------------------------------------------------------------------

def test_permissions_are_checked_before_existence(api: Api) -> None:
    insert_only = api.token({"r": {"write": {"dogs": ["ir"]}}})
    r = api.post("/write/dogs/-/insert", {"row": {"name": "Tok"}}, token=insert_only)
    assert r.json() == {"ok": True}  # no view-table: no rows returned
    assert api.post("/write/nope/-/insert", {"row": {"a": 1}}, token=insert_only).status_code == 403
    assert api.post("/write/nope/-/drop", {"confirm": True}, token=insert_only).status_code == 403
    r = api.post("/write/dogs/-/insert", {"row": {"name": "x"}, "replace": True}, token=insert_only)
    assert r.json()["error"] == 'Permission denied: need update-row to use "replace"'
    r = api.post("/write/dogs/-/upsert", {"row": {"id": 1, "name": "x"}}, token=insert_only)
    assert r.json()["error"] == "Permission denied: need both insert-row and update-row"
    r = api.post("/write/dogs/-/insert", {"row": {"name": "x", "c": 1}, "alter": True}, token=insert_only)
    assert r.json()["error"] == "Permission denied for alter-table"
    assert api.post("/write/dogs/1/-/delete", token=insert_only).status_code == 403
    assert api.post("/write/-/create", {"table": "t", "columns": [{"name": "a"}]}, token=insert_only).status_code == 403
    alice = api.token(actor="alice")
    assert api.post("/write/dogs/-/insert", {"row": {"name": "x"}}, token=alice).status_code == 403
    r = api.post("/write/dogs/-/insert", {"row": {"name": "x"}}, token=None)
    assert (r.status_code, r.json()["error"]) == (403, "Permission denied")


def test_write_paths_answer_get_with_405_and_preflight_with_cors(api: Api) -> None:
    assert api.client.get("/write/dogs/-/insert").status_code == 405
    assert api.client.get("/write/-/create").status_code == 405
    r = api.client.options("/write/dogs/-/insert")
    assert r.status_code == 200
    assert r.headers["access-control-allow-methods"] == "GET, POST, HEAD, OPTIONS"
    assert r.headers["access-control-allow-headers"] == "Authorization, Content-Type"


def test_concurrent_writes_serialize_and_all_land(api: Api) -> None:
    errors: list[Any] = []

    def worker(n: int) -> None:
        for i in range(10):
            r = api.post("/write/journal/-/insert", {"rows": [{"entry": f"{n}-{i}-{j}"} for j in range(20)]})
            if r.status_code != 201:
                errors.append(r.text)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(api.rows("journal")) == 2 + 4 * 10 * 20


def test_brackets_inside_strings_do_not_hide_nested_values(api: Api) -> None:
    rows = [{"title": "{not json}", "body": "[x]"}, {"title": {"$base64": True, "encoded": "AAE="}, "body": [1]}]
    r = api.post("/write/docs/-/insert", {"rows": rows, "return": True})
    assert r.json()["rows"][0]["title"] == "{not json}"
    assert r.json()["rows"][1]["title"] == {"$base64": True, "encoded": "AAE="}
    assert r.json()["rows"][1]["body"] == "[1]"


def test_without_rowid_tables(api: Api) -> None:
    r = api.post("/write/codes/-/insert", {"rows": [{"code": "b", "label": "B"}, {"code": "a", "label": "A"}],
                                          "return": True})
    assert r.status_code == 201 and r.json()["rows"] == [{"code": "b", "label": "B"}, {"code": "a", "label": "A"}]
    r = api.post("/write/codes/a/-/update", {"update": {"label": "AA"}, "return": True})
    assert r.json()["rows"] == [{"code": "a", "label": "AA"}]
    assert api.post("/write/codes/-/upsert", {"row": {"code": "c", "label": "C"}}).json()["rows"] == [
        {"code": "c", "label": "C"}]
    assert api.post("/write/codes/b/-/delete").status_code == 200

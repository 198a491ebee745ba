"""Datasette 0.65 behaviour from its own tests (issue 13, D): canned queries, units, FTS
arguments, compound foreign keys, `_col` order, the instance pages 0.65 has."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.instance import Lambdasette
from lambdasette.metadata import Metadata
from lambdasette.storage.local import LocalStorage

METADATA = {
    "title": "Research instance",
    "license": "Apache License 2.0",
    "license_url": "https://example.com/license",
    "source": "tests",
    "source_url": "https://example.com/source",
    "custom_units": ["league = 3 mile"],
    "databases": {
        "data": {
            "queries": {
                "dogs_by_breed": {"sql": "select id, name, breed from dogs where breed = :breed",
                                  "title": "Dogs by breed"},
                "short": "select count(*) as n from dogs",
                "add_dog": {"sql": "insert into dogs (name) values (:name)", "write": True},
            },
            "tables": {"places": {"units": {"distance": "m", "height": "m"}}},
        }
    },
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("d065")
    conn = sqlite3.connect(folder / "data.db")
    conn.executescript("""
        create table dogs (id integer primary key, name text, breed text);
        insert into dogs values (1, 'Cleo', 'Mutt'), (2, 'Pancakes', 'Corgi'), (3, 'Fido', 'Mutt');
        create table places (id integer primary key, name text, distance real, height real);
        insert into places values (1, 'near', 500, 10), (2, 'far', 80000, 3000), (3, 'mid', 10000, 1);
        create table owners (a text, b text, name text, primary key (a, b));
        create table pets (id integer primary key, a text, b text, kind_id integer references dogs(id),
                           foreign key (a, b) references owners(a, b));
        insert into owners values ('x', 'y', 'Ada');
        insert into pets values (1, 'x', 'y', 1);
        create table docs (id integer primary key, title text, body text);
        insert into docs values (1, 'Dogs', 'about cats'), (2, 'Cats', 'about dogs');
        create virtual table docs_fts using fts4(title, body, content="docs");
        insert into docs_fts (rowid, title, body) select id, title, body from docs;
        create table other_fts_keys (key integer primary key, title text);
        insert into other_fts_keys values (2, 'two');
    """)
    conn.commit()
    conn.close()
    meta = folder / "metadata.json"
    meta.write_text(json.dumps(METADATA))
    ds = Lambdasette(storage=LocalStorage([folder]), metadata=Metadata.load(meta))
    with TestClient(create_app(ds), base_url="http://localhost") as c:
        yield c


def test_canned_queries(client: TestClient) -> None:
    body = client.get("/data/dogs_by_breed.json?breed=Mutt&breed=Corgi").json()
    assert body["query_name"] == "dogs_by_breed" and body["rows"] == [[1, "Cleo", "Mutt"], [3, "Fido", "Mutt"]]
    assert body["query"]["params"] == {"breed": "Mutt"}  # the first of repeated parameters
    missing = client.get("/data/dogs_by_breed.json").json()
    assert missing["rows"] == [] and missing["query"]["params"] == {"breed": ""}
    assert client.get("/data/short.json?_shape=array").json() == [{"n": 3}]
    csv = client.get("/data/dogs_by_breed.csv?breed=Corgi&_dl=1")
    assert csv.text == "id,name,breed\r\n2,Pancakes,Corgi\r\n"
    assert csv.headers["content-disposition"] == 'attachment; filename="dogs_by_breed.csv"'
    write = client.get("/data/add_dog.json").json()
    assert write["rows"] == [] and write["query"]["params"] == {"name": ""}
    assert client.get("/data/nope_query.json").status_code == 404
    names = [q["name"] for q in client.get("/data.json").json()["queries"]]
    assert names == ["dogs_by_breed", "short", "add_dog"]


def test_sql_named_parameters_first_wins(client: TestClient) -> None:
    body = client.get("/data.json?sql=select+:a+as+a&a=1&a=2").json()
    assert body["rows"] == [["1"]] and body["query"]["params"]["a"] == "1"


def test_units(client: TestClient) -> None:
    def ids(qs: str) -> list[int]:
        r = client.get(f"/data/places.json?_shape=arrayfirst&{qs}")
        assert r.status_code == 200, r.text
        return r.json()

    assert ids("distance__lt=75km") == [1, 3]
    assert ids("distance__lt=75000") == [1, 3]
    assert ids("distance__gt=1league") == [2, 3]  # metadata custom_units
    assert ids("height__gte=1km") == [2]
    assert client.get("/data/places.json?distance__lt=5kg").status_code == 400
    assert client.get("/data/places.json?_size=0").json()["units"] == {"distance": "m", "height": "m"}


def test_units_import_pint_only_when_needed() -> None:
    import subprocess
    import sys

    code = ("import sys; from lambdasette.query import units; units.convert('75', 'm'); "
            "print('pint' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compound_foreign_keys_are_no_labels(client: TestClient) -> None:
    body = client.get("/data/pets.json?_labels=on").json()
    assert body["expanded_columns"] == ["kind_id"]
    tables = {t["name"]: t for t in client.get("/data.json").json()["tables"]}
    assert tables["pets"]["foreign_keys"]["outgoing"] == [
        {"other_table": "dogs", "column": "kind_id", "other_column": "id"}]


def test_col_order_is_the_order_given(client: TestClient) -> None:
    assert client.get("/data/dogs.json?_col=breed&_col=name&_col=breed").json()["columns"] == [
        "id", "breed", "name"]


def test_fts_arguments_and_columns(client: TestClient) -> None:
    ids = lambda qs: [r[0] for r in client.get(f"/data/docs.json?{qs}").json()["rows"]]  # noqa: E731
    assert ids("_search=dogs") == [1, 2]
    assert ids("_search_title=dogs") == [1]
    assert ids("_search=cats&_search_title=dogs") == [1, 2]  # _search wins, as in 0.65
    assert ids("_search=dogs&_fts_table=docs_fts&_fts_pk=id") == [1, 2]
    keyed = client.get("/data/other_fts_keys.json?_search=dogs&_fts_table=docs_fts&_fts_pk=key").json()
    assert [r[0] for r in keyed["rows"]] == [2]
    assert client.get("/data/docs.json?_search=x&_fts_table=nope").status_code == 400
    assert client.get("/data/docs.json?_search=x&_fts_pk=nope").status_code == 400
    assert client.get("/data/docs_fts.json").json()["columns"] == [
        "rowid", "title", "body", "docs_fts", "docid", "__langid"]
    assert client.get("/data/docs_fts/1.json").json()["columns"] == ["rowid", "title", "body"]


def test_instance_pages(client: TestClient) -> None:
    r = client.get("/-/config.json", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/-/settings.json"
    r = client.get("/-/config", follow_redirects=False)
    assert r.status_code == 301 and r.headers["location"] == "/-/settings"
    assert client.get("/-/plugins.json").json() == []
    meta = client.get("/-/metadata.json").json()
    assert meta["title"] == "Research instance"
    assert meta["databases"]["data"]["queries"]["short"] == {"sql": "select count(*) as n from dogs",
                                                             "name": "short"}
    r = client.request("OPTIONS", "/data")
    assert r.status_code == 200 and r.text == "ok"
    body = client.get("/data/dogs.json").json()
    assert body["license"] == "Apache License 2.0" and body["source_url"] == "https://example.com/source"
    assert "title" not in body


def test_index_sorted_by_relationships(client: TestClient) -> None:
    top = client.get("/.json?_sort=relationships").json()["data"]["tables_and_views_truncated"]
    assert [t["name"] for t in top][:2] == ["dogs", "pets"]
    assert top[0]["num_relationships_for_sorting"] == 1


def test_table_schema(client: TestClient) -> None:
    body = client.get("/data/dogs/-/schema.json").json()
    assert body == {"ok": True, "database": "data", "table": "dogs",
                    "schema": "CREATE TABLE dogs (id integer primary key, name text, breed text)"}
    assert client.get("/data/nope/-/schema.json").status_code == 404

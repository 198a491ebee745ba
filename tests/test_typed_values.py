"""Values that survive the trip into a URL and back (issue 13, A and B), one test per kind
of fault: the reproductions in shared/cases/data (01, 03, 04, 08) and their siblings."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from lambdasette.errors import ApiError
from lambdasette.query import values

from .conftest import make_client


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("typed") / "data.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        create table things (id text primary key, name text);
        insert into things values (NULL, 'first without id'), (NULL, 'second without id'),
                                  ('a', 'A'), ('b', 'B'), ('None', 'text None');
        create table pairs (a text, b integer, v text, primary key (a, b));
        insert into pairs values (NULL, 1, 'n1'), (NULL, 1, 'n1 again'), (NULL, 2, 'n2'), ('x', 1, 'x1');
        create table loose_pk (id primary key, name text);
        insert into loose_pk values (1,'a'),(2,'b'),(3,'c'),(10,'d'),(11,'e');
        create table loose_col (id integer primary key, n);
        insert into loose_col values (1,10),(2,9),(3,100),(4,2),(5,50),(6,7),(7,'7'),(8,0),(9,NULL);
        create table blobkeys (id blob primary key, v text) without rowid;
        insert into blobkeys values (x'00ff10','one'), (x'01','two'), (x'6869','three'), (x'7a7a','four');
        create table blobcol (id integer primary key, b blob);
        insert into blobcol values (1, x'00ff'), (2, x'01ff'), (3, x'02ff'), (4, x'03ff'), (5, x'03ff');
        create table reals (id integer primary key, r real, _city_id integer);
        insert into reals values (1, 1e999, 1), (2, -1e999, 1), (3, 1.5, 2), (4, 1e999, 2), (5, 0.1, NULL);
        create table posts (id integer primary key, tags text);
        insert into posts values (1, '["a", "b"]'), (2, ''), (3, '["a"]'), (4, '["b", "a"]'), (5, NULL),
                                 (6, '["c"]'), (7, '[]'), (8, '["a", "a"]'), (9, '  ');
        create table mixed (tags text);
        insert into mixed values ('[1, "1", 2]'), ('[2, 2.5, true]'), (''), ('["x"]');
        create view loose_view as select id, n * 1 as doubled, n from loose_col;
    """)
    conn.commit()
    conn.close()
    return path


@pytest.fixture(scope="module")
def client(db: Path) -> Iterator[TestClient]:
    with make_client(db, max_returned_rows=2) as c:
        yield c


def follow(client: TestClient, url: str, key: str, limit: int = 12) -> list[Any]:
    got: list[Any] = []
    pages = 0
    while url:
        body = client.get(url).json()
        got += [row[key] for row in body["rows"]]
        url = body["next_url"]
        pages += 1
        assert pages <= limit, f"still a next page after {limit} pages"
    return got


def test_null_primary_keys_are_each_visited_once(client: TestClient) -> None:
    # cases/data/01: a TEXT primary key may hold NULLs; "None" the text is another row.
    names = follow(client, "/data/things.json?_size=1&_shape=objects", "name")
    assert sorted(names) == sorted(["first without id", "second without id", "A", "B", "text None"])
    body = client.get("/data/things.json?_size=1").json()
    assert body["next"].startswith("$null,")  # NULL, then the rowid that tells NULLs apart
    # Siblings: a compound key with NULLs, and a sort with NULL keys.
    assert sorted(follow(client, "/data/pairs.json?_size=1&_shape=objects", "v")) == [
        "n1", "n1 again", "n2", "x1"]
    for order in ("_sort=name", "_sort_desc=name"):
        assert len(follow(client, f"/data/things.json?_size=1&_shape=objects&{order}", "name")) == 5


def test_untyped_columns_paginate_and_filter_by_number(client: TestClient) -> None:
    # cases/data/03: no declared type, so no affinity: a next token bound as text found nothing.
    assert follow(client, "/data/loose_pk.json?_size=2&_shape=objects", "id") == [1, 2, 3, 10, 11]
    assert client.get("/data/loose_pk.json?_size=2").json()["next"] == "2"  # Datasette's token
    asc = follow(client, "/data/loose_col.json?_size=2&_sort=n&_shape=objects", "id")
    assert asc == [9, 8, 4, 6, 2, 1, 5, 3, 7]  # NULL, numbers, then the text '7'
    desc = follow(client, "/data/loose_col.json?_size=2&_sort_desc=n&_shape=objects", "id")
    assert desc == list(reversed(asc[1:])) + [9]
    csv = client.get("/data/loose_pk.csv?_stream=on").text
    assert len(csv.splitlines()) == 6
    # Filters compare as the column would store the value: ?n=0 finds the integer 0.
    ids = lambda qs: client.get(f"/data/loose_col.json?_shape=arrayfirst&{qs}").json()  # noqa: E731
    assert ids("n__exact=0") == [8]
    assert ids("n=7") == [6]
    assert ids('n__in=["7"]') == [7]  # a JSON list keeps the text apart from the number
    assert ids("n__in=7,9&_sort=id") == [2, 6]
    assert ids("n__gt=50&_sort=id") == [3, 7]  # text sorts after every number, as in SQLite
    assert client.get("/data/loose_view.json?_shape=arrayfirst&doubled=100").json() == [3]


def test_blob_keys_and_blob_sort_values_paginate(client: TestClient) -> None:
    # cases/data/04: a BLOB key's token was its Python repr: every next page was page 1.
    got = follow(client, "/data/blobkeys.json?_size=1&_shape=objects", "v")
    assert got == ["one", "two", "three", "four"]
    assert client.get("/data/blobkeys.json?_size=1").json()["next"] == "$x00ff10"
    assert follow(client, "/data/blobcol.json?_size=1&_sort=b&_shape=objects", "id") == [1, 2, 3, 4, 5]
    assert follow(client, "/data/blobcol.json?_size=1&_sort_desc=b&_shape=objects", "id") == [
        4, 5, 3, 2, 1]
    assert len(client.get("/data/blobkeys.csv?_stream=on").text.splitlines()) == 5


def test_infinite_sort_values_paginate(client: TestClient) -> None:
    assert follow(client, "/data/reals.json?_size=1&_sort=r&_shape=objects", "id") == [2, 5, 3, 1, 4]
    assert client.get("/data/reals.json?_size=1&_sort_desc=r").json()["next"] == "$finf,1"


def test_invalid_next_tokens(client: TestClient) -> None:
    # A wrong number of values is a 400, never quietly page 1.
    r = client.get("/data/pairs.json?_next=x")
    assert r.status_code == 400 and "Invalid _next" in r.json()["error"]
    assert client.get("/data/reals.json?_sort=r&_next=1").status_code == 400
    assert client.get("/data/blobkeys.json?_next=$xZZ").status_code == 400
    assert client.get("/data/blobkeys.json?_next=$q1").status_code == 400
    # A well-formed value that no row follows is an empty page, as in Datasette.
    assert client.get("/data/reals.json?_next=zzz&_shape=array").json() == []


def test_facet_links_select_the_rows_they_counted(client: TestClient) -> None:
    def check(url: str, name: str) -> list[dict[str, Any]]:
        results = client.get(url).json()["facet_results"][name]["results"]
        for result in results:
            page = client.get(result["toggle_url"]).json()
            assert page["filtered_table_rows_count"] == result["count"], result
        return results

    infinite = check("/data/reals.json?_facet=r", "r")
    assert any("r__in=%5BInfinity%5D" in r["toggle_url"] for r in infinite)
    untyped = check("/data/loose_col.json?_facet=n&_size=0&id__gte=6&id__lte=7", "n")
    seven = [r for r in untyped if r["value"] in (7, "7")]
    assert {r["count"] for r in seven} == {1} and len(seven) == 2
    check("/data/blobcol.json?_facet=b&_size=0", "b")
    check("/data/things.json?_facet=id&_size=0", "id")
    # A column starting with "_" is filtered with __exact (?_city_id=1 is a special argument).
    city = check("/data/reals.json?_facet=_city_id", "_city_id")
    assert "_city_id__exact=1" in city[0]["toggle_url"]


def test_facet_toggle_url_is_a_path_and_rowid_facets_work(client: TestClient) -> None:
    body = client.get("/data/reals.json?_facet=_city_id&_size=0").json()
    assert body["facet_results"]["_city_id"]["toggle_url"] == "/data/reals.json?_size=0"
    rowid = client.get("/data/mixed.json?_facet=rowid&_size=0").json()["facet_results"]["rowid"]
    assert [r["value"] for r in rowid["results"]] == [1, 2]  # max_returned_rows caps it at 2
    assert client.get(rowid["results"][1]["toggle_url"]).json()["rows"] == []  # _size=0
    assert client.get(rowid["results"][1]["toggle_url"].replace("_size=0&", "")).json()["rows"] == [
        [2, '[2, 2.5, true]']]


def test_array_facets_blank_cells_and_duplicates(client: TestClient) -> None:
    # cases/data/08: blank cells mean "no tags"; an element twice in one row counts once.
    body = client.get("/data/posts.json?_size=0").json()
    suggested = [s for s in body["suggested_facets"] if s["name"] == "tags"]
    assert suggested and suggested[0]["type"] == "array"
    facet = client.get(suggested[0]["toggle_url"]).json()["facet_results"]["tags"]
    counts = {r["value"]: r["count"] for r in facet["results"]}
    assert counts == {"a": 4, "b": 2}  # max_returned_rows caps the facet size at 2 here
    for url in ("/data/posts.json?_facet_array=tags&_size=0&id__gte=4",
                "/data/mixed.json?_facet_array=tags&_size=0"):
        for result in client.get(url).json()["facet_results"]["tags"]["results"]:
            page = client.get(result["toggle_url"]).json()
            assert page["filtered_table_rows_count"] == result["count"], result
    mixed = client.get("/data/mixed.json?_facet_array=tags&_size=0").json()["facet_results"]["tags"]
    assert [(r["value"], r["count"]) for r in mixed["results"]] == [("1", 2), ("2", 2)]
    ids = client.get("/data/posts.json?tags__arraycontains=a&_shape=arrayfirst&_size=2").json()
    assert ids == [1, 3]
    not_a = client.get("/data/posts.json?tags__arraynotcontains=a&_shape=arrayfirst").json()
    assert 2 in not_a


def test_allow_facet_off_also_suppresses_suggestions(db: Path) -> None:
    with make_client(db, allow_facet="off") as c:
        assert c.get("/data/posts.json").json()["suggested_facets"] == []
        assert c.get("/data/posts.json?_facet=tags").status_code == 400


def test_values_module_round_trips() -> None:
    for value, affinity in [(3, "BLOB"), (3, "INTEGER"), (1.5, "REAL"), ("3", "TEXT"), ("a", "BLOB")]:
        plain = values.to_url(value, affinity)
        assert plain is not None and values.same(values.from_url(plain, affinity), value)
    for value, affinity in [("3", "BLOB"), ("3", "INTEGER"), (float("inf"), "REAL"), (b"\x00", "BLOB"),
                            (None, "TEXT"), (3, "TEXT")]:
        assert values.to_url(value, affinity) is None
        token = values.encode_component(value, affinity)
        assert values.same(values.decode_component(token, affinity), value)
    assert values.encode_component("", "TEXT") == "$s"
    assert values.from_url("99999999999999999999", "INTEGER") == "99999999999999999999"
    with pytest.raises(ApiError):
        values.decode_component("$i1.5", "BLOB")

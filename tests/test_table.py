"""Table pages: shapes, filters, sort, pagination, columns, search, labels, facets."""

from __future__ import annotations

from starlette.testclient import TestClient


def test_default_object_matches_datasette_065(client: TestClient) -> None:
    r = client.get("/fixtures/dogs.json?_size=2")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json; charset=utf-8"
    assert r.headers["cache-control"] == "max-age=5"
    body = r.json()
    assert body["ok"] is True
    assert body["columns"] == ["id", "name", "breed", "age", "weight", "born", "tags", "owner_id"]
    assert body["rows"][0][:2] == [1, "Dog 1"]
    assert body["filtered_table_rows_count"] == 30
    assert body["next"] == "2"
    assert body["next_url"] == "http://localhost/fixtures/dogs.json?_size=2&_next=2"
    assert r.headers["link"] == '<http://localhost/fixtures/dogs.json?_size=2&_next=2>; rel="next"'
    assert body["facet_results"] == {}


def test_shapes(client: TestClient) -> None:
    assert client.get("/fixtures/dogs.json?_size=1&_shape=objects").json()["rows"][0]["name"] == "Dog 1"
    assert client.get("/fixtures/dogs.json?_size=2&_shape=array").json()[1]["id"] == 2
    assert client.get("/fixtures/dogs.json?_size=2&_shape=arrayfirst").json() == [1, 2]
    assert list(client.get("/fixtures/compound.json?_shape=object").json()) == [
        "a,1", "a,2", "b~2Cc,1", "d~2Fe~2Ef,3"]
    r = client.get("/fixtures/dogs.json?_size=2&_shape=array&_nl=on")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.count("\n") == 1 and not r.text.endswith("\n")
    r = client.get("/fixtures/log.json?_shape=object")
    assert r.status_code == 400 and "no primary keys" in r.json()["error"]
    r = client.get("/fixtures/dogs.json?_shape=nope")
    assert r.status_code == 400 and r.json()["error"] == "Invalid _shape: nope"


def test_rowid_table_and_view(client: TestClient) -> None:
    body = client.get("/fixtures/log.json?_size=2").json()
    assert body["columns"][0] == "rowid" and body["primary_keys"] == []
    assert body["next"] == "2"
    view = client.get("/fixtures/old_dogs.json?_size=3").json()
    assert view["is_view"] is True and view["next"] == "3"
    page2 = client.get("/fixtures/old_dogs.json?_size=3&_next=3").json()
    assert page2["rows"][0] != view["rows"][0]


def test_filters(client: TestClient) -> None:
    def ids(qs: str) -> list[int]:
        r = client.get(f"/fixtures/dogs.json?_shape=arrayfirst&_size=max&{qs}")
        assert r.status_code == 200, r.text
        return r.json()

    assert ids("age__gt=10") == [11, 23]
    assert ids("id__in=1,2,3") == [1, 2, 3]
    assert ids("id__in=[4,5]") == [4, 5]
    assert ids("id__notin=[1]")[:1] == [2]
    assert ids("breed__isnull=1") == [3, 7, 11, 15, 19, 23, 27]
    assert ids("tags__arraycontains=fluffy")[:2] == [3, 6]
    assert ids("born__date=2020-01-03") == [2, 30]
    assert ids("name__startswith=Dog 2&name__endswith=9") == [29]
    assert ids("breed=Corgi&breed=Mutt") == []
    r = client.get("/fixtures/dogs.json?id__in=[1,")
    assert r.status_code == 400 and r.json()["ok"] is False
    r = client.get("/fixtures/dogs.json?nope=1")
    assert r.status_code == 400


def test_sort_and_keyset_pagination_walks_every_row_once(client: TestClient) -> None:
    for sort in ("_sort=breed", "_sort_desc=breed", "_sort=weight", "_sort_desc=id"):
        seen: list[int] = []
        url = f"/fixtures/dogs.json?_size=7&{sort}&_shape=objects"
        while url:
            body = client.get(url).json()
            seen += [row["id"] for row in body["rows"]]
            url = body["next_url"]
        assert sorted(seen) == list(range(1, 31)), sort
    body = client.get("/fixtures/dogs.json?_sort=breed&_size=3").json()
    assert body["next"].startswith("$null,")
    r = client.get("/fixtures/dogs.json?_sort=name&_sort_desc=age")
    assert r.status_code == 400
    r = client.get("/fixtures/dogs.json?_sort=nope")
    assert r.status_code == 400 and r.json()["error"] == "Cannot sort table by nope"


def test_compound_keys_paginate(client: TestClient) -> None:
    first = client.get("/fixtures/compound.json?_size=2").json()
    assert first["next"] == "a,2"
    second = client.get("/fixtures/compound.json?_size=2&_next=a,2").json()
    assert [r[:2] for r in second["rows"]] == [["b,c", 1], ["d/e.f", 3]]
    assert second["next"] is None


def test_size(client: TestClient) -> None:
    assert client.get("/fixtures/dogs.json?_size=0").json()["rows"] == []
    assert client.get("/fixtures/dogs.json?_size=1001").status_code == 400
    assert client.get("/fixtures/dogs.json?_size=-1").json()["error"] == "_size must be a positive integer"
    assert len(client.get("/fixtures/dogs.json?_size=max").json()["rows"]) == 30


def test_columns(client: TestClient) -> None:
    body = client.get("/fixtures/dogs.json?_col=name&_size=1").json()
    assert body["columns"] == ["id", "name"]
    body = client.get("/fixtures/dogs.json?_nocol=tags&_nocol=born&_size=1").json()
    assert "tags" not in body["columns"] and "id" in body["columns"]
    assert client.get("/fixtures/dogs.json?_col=nope").status_code == 400
    assert client.get("/fixtures/dogs.json?_nocol=id").status_code == 400


def test_values_blob_infinity_json(client: TestClient) -> None:
    rows = client.get("/fixtures/odd.json?_shape=objects").json()["rows"]
    assert rows[0]["data"] == {"$base64": True, "encoded": "AP8gYmluYXJ5"}
    assert rows[1]["data"] == "hello"
    assert rows[0]["num"] is None
    r = client.get("/fixtures/odd.json?_json_infinity=on&_shape=array")
    assert "Infinity" in r.text
    assert client.get("/fixtures/odd.json?_json_infinity=maybe").status_code == 400
    parsed = client.get("/fixtures/odd.json?_json=doc&_shape=array").json()
    assert parsed[0]["doc"] == {"a": [1, 2]} and parsed[1]["doc"] == "not json"


def test_ttl(client: TestClient) -> None:
    assert client.get("/fixtures/dogs.json?_ttl=0").headers["cache-control"] == "no-cache"
    assert client.get("/fixtures/dogs.json?_ttl=60").headers["cache-control"] == "max-age=60"
    assert client.get("/fixtures/dogs.json?_ttl=x").headers["cache-control"] == "max-age=5"


def test_encoded_names(client: TestClient) -> None:
    assert client.get("/fixtures/table+with+spaces.json").json()["table"] == "table with spaces"
    assert client.get("/fixtures/table%20with%20spaces.json").json()["table"] == "table with spaces"
    assert client.get("/fixtures/slash~2Fdot~2Ename.json").json()["rows"] == [[1, "v"]]


def test_search(client: TestClient) -> None:
    body = client.get("/fixtures/docs.json?_search=river").json()
    assert [r[0] for r in body["rows"]] == [1, 3]
    # Escaped mode searches operators as words.
    assert [r[0] for r in client.get("/fixtures/docs.json?_search=AND").json()["rows"]] == [1]
    raw = client.get("/fixtures/docs.json?_search=riv*&_searchmode=raw").json()
    assert len(raw["rows"]) == 2
    assert client.get('/fixtures/docs.json?_search="unterminated&_searchmode=raw').status_code == 400
    assert client.get("/fixtures/docs.json?_search_nope=x").status_code == 400


def test_labels(client: TestClient) -> None:
    body = client.get("/fixtures/dogs.json?_labels=on&_size=1").json()
    assert body["rows"][0]["owner_id"] == {"value": 2, "label": "Grace"}
    assert body["expanded_columns"] == ["owner_id"]
    body = client.get("/fixtures/dogs.json?_label=owner_id&_size=1&_shape=array").json()
    assert body[0]["owner_id"]["label"] == "Grace"


def test_facets(client: TestClient) -> None:
    body = client.get("/fixtures/dogs.json?_facet=breed&_facet=owner_id&_size=1").json()
    breed = body["facet_results"]["breed"]
    assert [(r["value"], r["count"]) for r in breed["results"]] == [
        ("Mutt", 8), ("Poodle", 8), ("Corgi", 7)]
    owners = body["facet_results"]["owner_id"]["results"]
    assert {r["label"] for r in owners} == {"Ada", "Grace", "Alan"}
    selected = client.get("/fixtures/dogs.json?_facet=breed&breed=Mutt").json()
    assert selected["facet_results"]["breed"]["results"][0]["selected"] is True
    arr = client.get("/fixtures/dogs.json?_facet_array=tags").json()["facet_results"]["tags"]
    assert arr["results"][0] == {**arr["results"][0], "value": "good", "count": 30}
    assert client.get("/fixtures/dogs.json?_facet=nope").status_code == 400
    suggested = client.get("/fixtures/dogs.json").json()["suggested_facets"]
    assert {"breed", "owner_id"} <= {s["name"] for s in suggested}


def test_where_and_through(client: TestClient) -> None:
    assert client.get("/fixtures/dogs.json?_where=id<3&_shape=arrayfirst").json() == [1, 2]
    assert client.get("/fixtures/dogs.json?_where=(((").status_code == 400
    assert client.get("/fixtures/dogs.json?_through=not-json").status_code == 400
    assert client.get('/fixtures/dogs.json?_through={"table":"dogs"}').status_code == 400


def test_count_cache_sees_writes(fixture_path, tmp_path) -> None:
    import shutil
    import sqlite3

    from .conftest import make_client

    path = tmp_path / "copy.db"
    shutil.copy(fixture_path, path)
    with make_client(path) as c:
        assert c.get("/copy/log.json").json()["filtered_table_rows_count"] == 5
        conn = sqlite3.connect(path)
        with conn:
            conn.execute("insert into log values ('new', 'warn')")
        conn.close()
        assert c.get("/copy/log.json").json()["filtered_table_rows_count"] == 6


def test_time_limit(client: TestClient) -> None:
    r = client.get("/fixtures/dogs.json?_timelimit=0")
    assert r.status_code == 400 and "too long" in r.json()["error"]


def test_missing_things_are_json_404s(client: TestClient) -> None:
    r = client.get("/nope/dogs.json")
    assert r.status_code == 404 and r.json()["error"] == "Database not found"
    r = client.get("/fixtures/nope.json")
    assert r.status_code == 404 and r.json()["error"] == "Table not found"


def test_redirects(client: TestClient) -> None:
    r = client.get("/fixtures/dogs.json/", follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"] == "/fixtures/dogs.json"
    r = client.get("/fixtures/dogs.jsono?_size=1", follow_redirects=False)
    assert r.headers["location"] == "/fixtures/dogs.json?_size=1&_shape=objects"


def test_search_on_a_table_without_fts_is_ignored(client: TestClient) -> None:
    body = client.get("/fixtures/dogs.json?_search=anything&_size=1").json()
    assert body["filtered_table_rows_count"] == 30


def test_date_facet_and_facet_size(client: TestClient) -> None:
    body = client.get("/fixtures/dogs.json?_facet_date=born&_facet_size=2").json()
    facet = body["facet_results"]["born"]
    assert facet["type"] == "date" and len(facet["results"]) == 2 and facet["truncated"] is True
    assert client.get("/fixtures/dogs.json?_facet=breed&_facet_size=max").status_code == 200


def test_facet_that_runs_out_of_time_is_reported(fixture_path) -> None:
    from .conftest import make_client

    with make_client(fixture_path, facet_time_limit_ms=0) as c:
        body = c.get("/fixtures/dogs.json?_facet=breed").json()
        assert body["facets_timed_out"] == ["breed"] and body["rows"]


def test_metadata_file(fixture_path, tmp_path) -> None:
    from lambdasette.app import create_app
    from lambdasette.instance import Lambdasette
    from lambdasette.metadata import Metadata
    from lambdasette.storage.local import LocalStorage

    meta = tmp_path / "metadata.yml"
    meta.write_text(
        "databases:\n  fixtures:\n    tables:\n      dogs:\n        sort_desc: age\n        size: 4\n"
        "        facets: [breed]\n        sortable_columns: [age, id]\n"
        "      owners:\n        label_column: id\n"
    )
    ds = Lambdasette(storage=LocalStorage([fixture_path]), metadata=Metadata.load(meta))
    with TestClient(create_app(ds)) as c:
        body = c.get("/fixtures/dogs.json").json()
        assert len(body["rows"]) == 4 and body["rows"][0][3] == 11
        assert body["facet_results"]["breed"]["hideable"] is False
        assert c.get("/fixtures/dogs.json?_sort=name").status_code == 400
        labelled = c.get("/fixtures/dogs.json?_labels=on&_size=1").json()["rows"][0]
        assert labelled["owner_id"]["label"] == labelled["owner_id"]["value"]

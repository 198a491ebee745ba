from starlette.testclient import TestClient


def test_both_query_urls_answer_200(client: TestClient) -> None:
    """0.65's URL keeps 0.65's body; 1.0a41's URL answers in 1.0a41's format (CONTRACT §2)."""
    params = {"sql": "select id, name from dogs where id = :id", "id": "2"}
    r = client.get("/fixtures.json", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == [[2, "Dog 2"]]
    assert body["columns"] == ["id", "name"]
    assert body["query"]["params"] == {"id": "2"}
    r = client.get("/fixtures/-/query.json", params=params)
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "rows": [{"id": 2, "name": "Dog 2"}], "truncated": False}


def test_missing_named_parameter_binds_blank(client: TestClient) -> None:
    body = client.get("/fixtures.json", params={"sql": "select :p as p"}).json()
    assert body["rows"] == [[""]]


def test_only_one_select(client: TestClient) -> None:
    for sql in ("delete from dogs", "pragma writable_schema = 1", "select 1; select 2"):
        r = client.get("/fixtures.json", params={"sql": sql})
        assert r.status_code == 400, sql
        assert r.json()["ok"] is False
    assert client.get("/fixtures.json", params={"sql": "/* c */ select 1"}).status_code == 200
    ok = client.get("/fixtures.json", params={"sql": "select * from pragma_table_info('dogs')"})
    assert ok.status_code == 200


def test_truncated_and_time_limit(fixture_path) -> None:
    from .conftest import make_client

    with make_client(fixture_path, max_returned_rows=5, sql_time_limit_ms=50) as c:
        body = c.get("/fixtures.json", params={"sql": "select * from dogs"}).json()
        assert len(body["rows"]) == 5 and body["truncated"] is True
        slow = ("with recursive c(x) as (select 1 union all select x + 1 from c where x < 100000000)"
                " select count(*) from c")
        r = c.get("/fixtures.json", params={"sql": slow})
        assert r.status_code == 400 and "too long" in r.json()["error"]


def test_query_shapes_and_csv(client: TestClient) -> None:
    sql = {"sql": "select id, name from dogs order by id limit 2"}
    assert client.get("/fixtures.json", params={**sql, "_shape": "array"}).json() == [
        {"id": 1, "name": "Dog 1"}, {"id": 2, "name": "Dog 2"}]
    r = client.get("/fixtures.csv", params=sql)
    assert r.text == "id,name\r\n1,Dog 1\r\n2,Dog 2\r\n"
    assert client.get("/fixtures/-/query.json").status_code == 400
    assert client.get("/fixtures.json", params={**sql, "_shape": "object"}).status_code == 400


def test_read_connections_cannot_write(client: TestClient) -> None:
    r = client.get("/fixtures.json", params={"sql": "with x as (select 1) delete from dogs"})
    assert r.status_code == 400
    assert client.get("/fixtures/dogs.json?_size=0").json()["filtered_table_rows_count"] == 30

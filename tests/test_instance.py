from starlette.testclient import TestClient


def test_database_page(client: TestClient) -> None:
    body = client.get("/fixtures.json").json()
    names = [t["name"] for t in body["tables"]]
    assert "dogs" in names and names.index("docs_fts") > names.index("table with spaces")
    dogs = next(t for t in body["tables"] if t["name"] == "dogs")
    assert dogs["count"] == 30 and dogs["foreign_keys"]["outgoing"][0]["other_table"] == "owners"
    assert body["views"] == [{"name": "old_dogs", "private": False}]


def test_introspection(client: TestClient) -> None:
    assert "fixtures" in client.get("/.json").json()
    assert client.get("/-/versions.json").json()["sqlite"]["version"]
    assert client.get("/-/settings.json").json()["default_page_size"] == 100
    assert client.get("/-/databases.json").json()[0]["name"] == "fixtures"
    assert client.get("/-/actor.json").json() == {"actor": None}
    assert client.get("/-/nope.json").status_code == 404


def test_cors_and_methods(fixture_path) -> None:
    from .conftest import make_client

    with make_client(fixture_path, cors=True) as c:
        r = c.get("/fixtures/dogs.json?_size=1")
        assert r.headers["access-control-allow-origin"] == "*"
        assert c.options("/fixtures/dogs.json").text == "ok"
        r = c.post("/fixtures/dogs.json")
        assert r.status_code == 405 and r.json()["ok"] is False

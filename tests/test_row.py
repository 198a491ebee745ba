from starlette.testclient import TestClient


def test_row_pages(client: TestClient) -> None:
    body = client.get("/fixtures/dogs/3.json").json()
    assert body["rows"] == [[3, "Dog 3", None, 3, 4.5, "2020-01-04", '["good", "fluffy"]', 1]]
    assert body["primary_key_values"] == ["3"]
    assert client.get("/fixtures/compound/b~2Cc,1.json").json()["rows"][0][2] == "z"
    assert client.get("/fixtures/compound/d~2Fe~2Ef,3.json?_shape=array").json()[0]["v"] == "w"
    log = client.get("/fixtures/log/2.json").json()
    assert log["primary_keys"] == ["rowid"] and log["rows"][0][0] == 2


def test_row_errors(client: TestClient) -> None:
    assert client.get("/fixtures/dogs/999.json").status_code == 404
    r = client.get("/fixtures/compound/a.json")
    assert r.status_code == 400 and "does not match" in r.json()["error"]
    assert client.get("/fixtures/old_dogs/1.json").status_code == 404


def test_foreign_key_tables(client: TestClient) -> None:
    body = client.get("/fixtures/owners/1.json?_extras=foreign_key_tables").json()
    assert body["foreign_key_tables"][0]["count"] == 10

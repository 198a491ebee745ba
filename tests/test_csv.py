import csv
import io

from starlette.testclient import TestClient


def test_table_csv(client: TestClient) -> None:
    r = client.get("/fixtures/dogs.csv?_size=2")
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0][:3] == ["id", "name", "breed"] and len(rows) == 3
    assert 'rel="next"' in r.headers["link"]


def test_dl_header_labels_stream(client: TestClient) -> None:
    r = client.get("/fixtures/dogs.csv?_dl=1&_size=1&_header=off")
    assert r.headers["content-disposition"] == 'attachment; filename="dogs.csv"'
    assert r.text.startswith("1,Dog 1")
    r = client.get("/fixtures/dogs.csv?_labels=on&_size=1")
    assert r.text.splitlines()[0].endswith("owner_id,owner_id_label")
    streamed = client.get("/fixtures/dogs.csv?_stream=on&_col=name")
    assert len(streamed.text.splitlines()) == 31
    assert client.get("/fixtures/dogs.csv?_stream=on&_next=3").status_code == 400


def test_stream_stops_truthfully_at_the_byte_cap(fixture_path) -> None:
    from .conftest import make_client

    with make_client(fixture_path, max_response_bytes=200, max_returned_rows=5) as c:
        text = c.get("/fixtures/dogs.csv?_stream=on").text
        assert text.endswith("CSV contains more than 200 bytes")


def test_csv_errors_are_json(client: TestClient) -> None:
    r = client.get("/fixtures/nope.csv")
    assert r.status_code == 404


def test_stream_cap_ends_on_a_whole_row(fixture_path) -> None:
    from .conftest import make_client

    with make_client(fixture_path, max_response_bytes=300, max_returned_rows=5) as c:
        text = c.get("/fixtures/dogs.csv?_stream=on").text
        body, _, tail = text.rpartition("\r\n")
        assert tail == "CSV contains more than 300 bytes"
        rows = list(csv.reader(io.StringIO(body)))
        assert all(len(r) == 8 for r in rows) and len(body) <= 300

"""No query-string input gives a 500: JSON in a parameter that SQLite cannot hold is a 400
that names the parameter (../shared/cases/security/08 and 10, query-string side)."""

from __future__ import annotations

import json
import sqlite3
import urllib.parse
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage

BIG = "9" * 30  # beyond 64 bits
HUGE = "9" * 5000  # beyond what Python's int() accepts from a string
DEEP = "[" * 5000 + "]" * 5000


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    path = tmp_path_factory.mktemp("params") / "data.db"
    conn = sqlite3.connect(path)
    conn.executescript("""
        create table t1 (id integer primary key, name text, n integer, tags text);
        insert into t1 values (1, 'a', 5, '["x","y"]');
        create table tags (id integer primary key, tag text);
        insert into tags values (1, 'red');
        create table t1_tags (t1_id integer references t1(id), tag_id integer references tags(id));
        insert into t1_tags values (1, 1);
        create view v1 as select * from t1;
    """)
    conn.close()
    ds = Lambdasette(storage=LocalStorage([path]), options=Options(public=True))
    with TestClient(create_app(ds), base_url="http://localhost",
                    raise_server_exceptions=False) as c:
        yield c


def url(path: str, **args: str) -> str:
    return path + "?" + urllib.parse.urlencode(args)


def through(**fields: object) -> str:
    value = {"table": "t1_tags", "column": "t1_id", "value": 1, **fields}
    return json.dumps(value)


SURROGATE = '"\\ud800"'  # JSON for a lone surrogate: valid JSON, not Unicode text
NAMED_400 = [
    ("name__in", url("/data/t1.json", name__in=f"[{SURROGATE}]")),
    ("name__notin", url("/data/t1.json", name__notin=f'["a", {SURROGATE}]')),
    ("n__in", url("/data/t1.json", n__in=f"[{BIG}]")),
    ("n__in", url("/data/t1.json", n__in=f"[-{BIG}]")),
    ("n__notin", url("/data/t1.json", n__notin=f"[1, {BIG}]")),
    ("_through", url("/data/tags.json", _through=through(value="\ud800"))),
    ("_through", url("/data/tags.json", _through=through(value=int(BIG)))),
    ("_through", url("/data/tags.json", _through=through(table="\ud800"))),
    ("_through", url("/data/tags.json", _through=through(column="\ud800"))),
    ("_through", url("/data/tags.json", _through=json.dumps({"table": "t1_tags", "column": "t1_id",
                                                             "value": 1, "\ud800": 1}))),
    ("_facet", url("/data/t1.json", _facet='{"array": ' + SURROGATE + "}")),
    ("_facet", url("/data/t1.json", _facet="{" + SURROGATE + ': "tags"}')),
]


@pytest.mark.parametrize(("name", "path"), NAMED_400)
def test_json_and_numbers_sqlite_cannot_hold_are_a_400_naming_the_parameter(
        client: TestClient, name: str, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(f"{name}: "), r.text
    r.content.decode("utf-8")  # the answer itself is valid UTF-8


@pytest.mark.parametrize("path", [
    url("/data/t1.json", n__in=DEEP), url("/data/tags.json", _through=DEEP),
    url("/data/t1.json", _facet="{" * 3000 + "}" * 3000),
    url("/data/t1.json", n__in=f"[{HUGE}]"), url("/data/t1.json", _size=HUGE),
    url("/data/t1.json", _size="\u00b2"),
    url("/data/v1.json", _next="\u00b2"),
])
def test_malformed_values_are_a_400(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 400 and r.json()["ok"] is False, r.text


@pytest.mark.parametrize("path", [
    url("/data/t1.json", _facet_size=HUGE), url("/data/t1.json", _facet_size="\u00b2"),
    url("/data/t1.json", _ttl=HUGE), url("/data/t1.json", _ttl="\u00b2"),
    url("/data/t1.json", _timelimit=HUGE), url("/data/v1.json", _next=HUGE),
    url("/data/v1.json", _next=BIG), url("/data/t1.json", _next=BIG),
    url("/data/t1.json", _sort="n", _next=f"{BIG},1"), url("/data/t1.json", n__gt="\u00b2"),
    url("/data/t1.json", n__lt="\u0661\u0662"), url("/data/t1.json", id=BIG),
    # beyond 64 bits a number in a URL is text to SQLite, and is compared as such
    url("/data/t1.json", n__gt=BIG), url("/data/t1.json", n__lte=HUGE),
    url("/data/t1.json", n__in=f"1,{HUGE}"),
    url("/data/t1.json", n__arraycontains=BIG), url("/data/t1.json", n__date=BIG),
    url("/data/t1.json", _where=f"n > {BIG}"), url("/data.json", sql="select :a", a=BIG),
    url("/data.json", sql=f"select {BIG}"), url("/data.json", sql=f"select {HUGE}"),
    url("/data.json", sql="select char(55296)"),
    url("/data/t1.json", name__in='["\\u00e9", "a"]'),
])
def test_unusual_values_are_answered_not_crashed_on(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code < 500, r.text


def test_a_lone_surrogate_in_data_is_escaped_in_the_answer(client: TestClient) -> None:
    """`_json` parses text the caller chose: a lone surrogate can only be written escaped."""
    r = client.get(url("/data.json", sql="select '[\"\\ud800\", \"ok\"]' as x", _json="x"))
    assert r.status_code == 200
    r.content.decode("ascii")
    assert json.loads(r.content)["rows"] == [[["\ud800", "ok"]]]


def test_the_filters_still_bind_typed_values(client: TestClient) -> None:
    rows = client.get(url("/data/t1.json", n__in="[5, 9223372036854775807]", _shape="array")).json()
    assert [r["id"] for r in rows] == [1]
    rows = client.get(url("/data/t1.json", n__lt="9223372036854775807", _shape="array")).json()
    assert [r["id"] for r in rows] == [1]
    rows = client.get(url("/data/tags.json", _through=through(value=1), _shape="array")).json()
    assert rows == [{"id": 1, "tag": "red"}]

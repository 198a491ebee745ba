"""JSON request bodies are checked at the edge: no body, whatever it holds in whatever
position, gives a 500 on any write or token endpoint; values SQLite or the token store cannot
hold are a 400 naming the field, and nothing is stored."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from lambdasette.app import create_app
from lambdasette.auth import tokens
from lambdasette.auth.permissions import Policy
from lambdasette.auth.tokens import LocalTokenStore
from lambdasette.instance import Lambdasette, Options
from lambdasette.storage.local import LocalStorage
from lambdasette.web import body as body_module
from lambdasette.web.body import MAX_DEPTH, check_value, parse_object

from .test_write import make_write_db

# Text of every kind, lone surrogates (which JSON can carry as "\ud800" but no UTF-8 can)
# and NUL included.
ANY_CHAR = st.characters(codec=None, categories=None, exclude_categories=[])
TEXT = st.one_of(st.text(ANY_CHAR, max_size=12), st.sampled_from(
    ["\ud800", "a\udfffb", "\udbff\udfff", "\x00", "", "id", "name", "dogs", "sqlite_master", "x" * 300]))
NUMBERS = st.one_of(
    st.integers(),  # unbounded: beyond 64 bits too
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**23, -(10**30), 2**63 - 1, 0, -1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
JSON = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)), max_leaves=12)
# Names that exist (in any case), SQLite's own, and odd ones: where collisions find bugs.
NAMES = ["id", "name", "age", "weight", "code", "label", "title", "body", "rowid", "ID", "Name",
         "dogs", "docs", "codes", "journal", "sqlite_master", "a b", "x\x00", "\ud800", "", "_"]
COLUMNS = st.one_of(st.sampled_from(NAMES), TEXT)
ROW = st.dictionaries(COLUMNS, JSON, max_size=4)
ACTIONS = st.lists(st.one_of(st.sampled_from(["vt", "ir", "ctk", "view-table", "fly"]), JSON), max_size=3)


def body_for(endpoint: str) -> st.SearchStrategy[Any]:
    """Bodies shaped like what `endpoint` expects (so values reach its deepest checks), and
    any JSON at all."""
    shaped = {
        "insert": st.fixed_dictionaries({"rows": st.lists(ROW, max_size=3)}, optional={
            "return": JSON, "alter": st.booleans(), "ignore": JSON, "replace": JSON}),
        "insert1": st.fixed_dictionaries({"row": ROW}, optional={"alter": st.booleans()}),
        "upsert": st.fixed_dictionaries({"rows": st.lists(ROW, max_size=3)}, optional={"alter": st.booleans()}),
        "update": st.fixed_dictionaries({"update": ROW}, optional={"alter": st.booleans(), "return": JSON}),
        "delete": st.dictionaries(TEXT, JSON, max_size=2),
        "create": st.fixed_dictionaries({"table": st.one_of(COLUMNS, JSON)}, optional={
            "rows": st.lists(ROW, max_size=2), "row": ROW, "pk": st.one_of(COLUMNS, JSON),
            "pks": st.lists(COLUMNS, max_size=2), "columns": st.lists(st.fixed_dictionaries(
                {"name": st.one_of(COLUMNS, JSON)}, optional={"type": st.one_of(TEXT, JSON),
                                                               "default": JSON}), max_size=2),
            "alter": st.booleans(), "replace": st.booleans(), "ignore": st.booleans()}),
        "alter": st.fixed_dictionaries({"operations": st.lists(st.fixed_dictionaries(
            {"op": st.sampled_from(["add_column", "rename_column", "alter_column", "drop_column",
                                    "set_primary_key", "reorder_columns", "rename_table", "nope"]),
             "args": st.dictionaries(st.sampled_from(["name", "to", "type", "columns", "default",
                                                     "not_null", "column", "fk_table"]),
                                     st.one_of(COLUMNS, st.lists(COLUMNS, max_size=3), JSON))}),
            max_size=2)}),
        "drop": st.fixed_dictionaries({}, optional={"confirm": JSON}),
        "token": st.fixed_dictionaries({}, optional={
            "restrictions": st.one_of(JSON, st.fixed_dictionaries({}, optional={
                "a": ACTIONS, "d": st.dictionaries(TEXT, ACTIONS, max_size=2),
                "r": st.dictionaries(TEXT, st.dictionaries(TEXT, ACTIONS, max_size=2), max_size=2)})),
            "expires_after": st.one_of(NUMBERS, JSON)}),
    }[endpoint]
    return st.one_of(shaped, JSON)


ENDPOINTS = {
    "insert": "/write/dogs/-/insert",
    "insert1": "/write/codes/-/insert",
    "upsert": "/write/dogs/-/upsert",
    "update": "/write/dogs/1/-/update",
    "delete": "/write/dogs/2/-/delete",
    "create": "/write/-/create",
    "alter": "/write/docs/-/alter",
    "drop": "/write/journal/-/drop",
    "token": "/-/api/tokens",
}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, str, LocalTokenStore]]:
    tmp = tmp_path_factory.mktemp("bodies")
    store = LocalTokenStore(tmp / "tokens.db")
    ds = Lambdasette(storage=LocalStorage([make_write_db(tmp / "write.db")]), tokens=store,
                     options=Options(public=False),
                     policy=Policy.parse({"permissions": {"create-token": {"id": "root"}}}))
    root = tokens.create(store, "root", expires_after=3600)[0]
    with TestClient(create_app(ds), raise_server_exceptions=False) as client:
        yield client, root, store


def encoded(body: Any) -> bytes:
    # ensure_ascii: lone surrogates travel as "\ud800" escapes, as a client would send them;
    # NaN and Infinity as the literals Python writes (not JSON: they must be refused too).
    return json.dumps(body).encode("ascii")


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_no_body_gives_a_500(env, endpoint: str) -> None:
    client, root, _ = env

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(body=body_for(endpoint))
    def check(body: Any) -> None:
        r = client.post(ENDPOINTS[endpoint], content=encoded(body),
                        headers={"Authorization": f"Bearer {root}"})
        assert r.status_code < 500, (body, r.text)
        assert r.headers["content-type"].startswith("application/json")

    check()


@pytest.mark.parametrize("raw", [
    b'{"row": {"id": 9', b"[1, 2", b'{"row": NaN}', b'{"row": {"n": Infinity}}', b'{"row": {"n": -Infinity}}',
    b"\xff\xfe{}", b'{"row": {"name": "\xed\xa0\x80"}}',  # raw UTF-8 of a lone surrogate
    b'{"row": {"n": 1e999}}', b"[" * 5000 + b"]" * 5000, b'{"row": {"n": ' + b"9" * 5000 + b"}}",
])
@pytest.mark.parametrize("endpoint", ["insert", "token"])
def test_malformed_bodies_are_400(env, endpoint: str, raw: bytes) -> None:
    client, root, _ = env
    r = client.post(ENDPOINTS[endpoint], content=raw, headers={"Authorization": f"Bearer {root}"})
    assert r.status_code == 400, r.text


# Each bad value in each position: a 400 that names the field, and nothing stored.
BAD = [
    ("\ud800", "string is not valid Unicode text"),
    (2**63, "integer out of range"),
    (-(2**63) - 1, "integer out of range"),
    (99999999999999999999999, "integer out of range"),
]


@pytest.mark.parametrize("value, message", BAD)
@pytest.mark.parametrize("path, body, field", [
    ("/write/dogs/-/insert", lambda v: {"rows": [{"name": "a"}, {"name": "b", "age": v}]}, "rows.1.age"),
    ("/write/dogs/-/insert", lambda v: {"row": {"name": v}}, "row.name"),
    ("/write/dogs/-/upsert", lambda v: {"row": {"id": 1, "age": v}}, "row.age"),
    ("/write/dogs/1/-/update", lambda v: {"update": {"age": v}}, "update.age"),
    ("/write/-/create", lambda v: {"table": "t2", "row": {"id": 1, "n": v}}, "row.n"),
    ("/write/-/create", lambda v: {"table": v, "row": {"id": 1}}, "table"),
    ("/write/docs/-/alter", lambda v: {"operations": [{"op": "add_column", "args": {"name": v}}]},
     "operations.0.args.name"),
    ("/-/api/tokens", lambda v: {"expires_after": v}, "expires_after"),
    ("/-/api/tokens", lambda v: {"restrictions": {"r": {"write": {"dogs": ["vt", v]}}}},
     "restrictions.r.write.dogs.1"),
])
def test_bad_values_name_their_field_and_store_nothing(tmp_path: Path, path: str, body: Any, field: str,
                                                        value: Any, message: str) -> None:
    store = LocalTokenStore(tmp_path / "tokens.db")
    db = make_write_db(tmp_path / "write.db")
    ds = Lambdasette(storage=LocalStorage([db]), tokens=store, options=Options(public=False),
                     policy=Policy.parse({"permissions": {"create-token": {"id": "root"}}}))
    root = tokens.create(store, "root")[0]
    before = sqlite3.connect(db).execute("select sql from sqlite_master").fetchall()
    rows_before = sqlite3.connect(db).execute("select * from dogs").fetchall()
    with TestClient(create_app(ds)) as client:
        r = client.post(path, content=encoded(body(value)), headers={"Authorization": f"Bearer {root}"})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith(f"{field}: {message}")
    assert sqlite3.connect(db).execute("select sql from sqlite_master").fetchall() == before
    assert sqlite3.connect(db).execute("select * from dogs").fetchall() == rows_before
    assert len(store.list()) == 1


def test_a_bad_key_is_named_without_breaking_the_answer() -> None:
    problem = check_value({"row": {"\ud800x": 1}})
    assert problem is not None and problem.startswith("row.\\ud800x: key is not valid Unicode text")


def test_ordinary_values_pass_and_depth_is_bounded() -> None:
    fine = {"rows": [{"id": 2**63 - 1, "n": -(2**63), "f": 1e308, "s": "é 🐕 \u0000", "j": {"a": [1, {}]}}]}
    assert check_value(fine) is None
    assert parse_object(json.dumps(fine).encode()) == fine
    deep: Any = 1
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    assert "nested more than" in (check_value({"row": {"j": deep}}) or "")
    # Paired surrogates are one character, not a lone one.
    assert parse_object(b'{"s": "\\ud83d\\udc15"}') == {"s": "🐕"}
    # UTF-16 bodies are JSON too, and are checked the same way.
    assert parse_object('{"s": 1}'.encode("utf-16")) == {"s": 1}
    with pytest.raises(Exception, match="integer out of range"):
        parse_object(json.dumps({"n": 2**64}).encode("utf-16"))


@pytest.mark.parametrize("endpoint, body", [
    # What the property test above found, kept as plain cases.
    ("alter", {"operations": [{"op": "add_column", "args": {"name": "x", "type": []}}]}),
    ("alter", {"operations": [{"op": "add_column", "args": {"name": "x", "default_expr": {}}}]}),
    ("alter", {"operations": [{"op": ["add_column"], "args": {}}]}),
    ("create", {"table": "t", "columns": [{"name": "a", "type": {"x": 1}}]}),
    ("create", {"table": "t", "columns": [{"name": "a", "default_expr": []}]}),
    ("create", {"table": "t", "rows": [{}]}),
    ("create", {"table": "t", "rows": [{}, {"dogs": ["x"]}]}),
    ("create", {"table": "t", "row": {"a\u0000b": 1}}),
    ("insert", {"row": {"name\u0000": 1}, "alter": True}),
])
def test_bodies_the_property_test_found(env, endpoint: str, body: Any) -> None:
    client, root, _ = env
    r = client.post(ENDPOINTS[endpoint], content=encoded(body), headers={"Authorization": f"Bearer {root}"})
    assert r.status_code < 500, r.text


@settings(max_examples=300, deadline=None)
@given(depth=st.integers(min_value=MAX_DEPTH - 3, max_value=MAX_DEPTH + 3),
       text=st.text(st.sampled_from(['"', "\\", "]", "[", "{", "}", "a", "é", "\n"]), max_size=8))
def test_the_depth_scan_agrees_with_the_walk(depth: int, text: str) -> None:
    """Brackets, quotes and backslashes inside strings never fool the byte-level depth scan."""
    value: Any = 1
    for _ in range(depth):
        value = [value, text, {"k]": text}]
    raw = json.dumps({"x": value}).encode()
    walked = check_value({"x": value}) or ""
    assert body_module._too_deep(raw) == ("nested more than" in walked)


def test_an_ordinary_bulk_body_is_never_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walk costs several times json.loads: a 100-row insert must not need it."""
    def no_walk(*args: Any) -> None:
        raise AssertionError("walked")

    monkeypatch.setattr(body_module, "check_value", no_walk)
    rows = [{"id": i, "name": f"name {i}", "height": 12.5 + i, "planted": "2020-01-01", "tags": ["a", "b"],
             "seed": 10**17 + i} for i in range(100)]
    assert parse_object(json.dumps({"rows": rows}).encode())["rows"] == rows

"""Property tests: values survive the trip into a URL and back (issue 13, A).

For any table of typed, untyped, NULL and BLOB keys and sort values, following `next_url`
visits every row exactly once (ascending, descending, by key), a CSV `_stream=on` export holds
every row once, and every facet link selects exactly the rows its facet counted.

Deterministic for CI: `derandomize=True` draws the same examples on every run.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from .conftest import make_client

TYPES = ["", "INTEGER", "REAL", "TEXT", "BLOB", "NUMERIC"]

# Values chosen to break a str()-and-back round trip: numeric-looking text, the token syntax
# itself, Python reprs, separators, and every storage class SQLite has.
TRICKY_TEXT = ["0", "1", "-1", "1.5", "1e+20", "007", "$null", "$x00", "~", "a,b", "+", " ", "",
               "None", "b'\\x00'", "inf", "-inf", "NaN", "%", "&", "="]
SCALARS = st.one_of(
    st.none(),
    st.integers(min_value=-3, max_value=3),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=3),
    st.binary(max_size=3),
)
ELEMENTS = st.one_of(st.sampled_from(["a", "b", "1", "x y", "", "~"]), st.integers(-2, 2),
                     st.sampled_from([1.5, True, False, None]))
TAGS = st.one_of(st.none(), st.sampled_from(["", "  ", "[]"]),
                 st.lists(ELEMENTS, max_size=3).map(json.dumps))

LAYOUTS = {
    "rowid": "create table t (n integer not null, s {s}, tags text)",
    "integer_pk": "create table t (id integer primary key, n integer not null, s {s}, tags text)",
    "typed_pk": "create table t (id {k} primary key, n integer not null, s {s}, tags text)",
    "compound_pk": ("create table t (a {k}, b {s}, n integer not null, s {s}, tags text,"
                    " primary key (a, b))"),
    "without_rowid": ("create table t (id {k} primary key, n integer not null, s {s}, tags text)"
                      " without rowid"),
}


@st.composite
def tables(draw: st.DrawFn) -> tuple[str, str, list[tuple[Any, ...]]]:
    layout = draw(st.sampled_from(sorted(LAYOUTS)))
    ddl = LAYOUTS[layout].format(k=draw(st.sampled_from(TYPES)), s=draw(st.sampled_from(TYPES)))
    keys = st.integers(-3, 40) if layout == "integer_pk" else SCALARS
    rows = draw(st.lists(st.tuples(keys, keys, SCALARS, TAGS), min_size=0, max_size=9))
    return layout, ddl, rows


def build(path: Path, layout: str, ddl: str, rows: list[tuple[Any, ...]]) -> int:
    """The table at `path`; returns how many rows it holds (rows SQLite refuses are skipped)."""
    conn = sqlite3.connect(path)
    conn.execute("pragma synchronous = off")  # a throwaway file: no need to wait for the disk
    conn.execute(ddl)
    stored = 0
    for n, (k1, k2, s, tags) in enumerate(rows):
        if layout == "rowid":
            sql, values = "insert into t (n, s, tags) values (?, ?, ?)", (n, s, tags)
        elif layout == "compound_pk":
            sql, values = "insert into t (a, b, n, s, tags) values (?, ?, ?, ?, ?)", (k1, k2, n, s, tags)
        else:
            sql, values = "insert into t (id, n, s, tags) values (?, ?, ?, ?)", (k1, n, s, tags)
        try:
            conn.execute(sql, values)
        except sqlite3.Error:
            continue  # a duplicate key, a NULL in a WITHOUT ROWID key, a type an INTEGER key refuses
        stored += 1
    conn.commit()
    conn.close()
    return stored


def walk(client: TestClient, url: str, limit: int) -> list[int]:
    seen: list[int] = []
    pages = 0
    while url:
        response = client.get(url)
        assert response.status_code == 200, (url, response.text)
        body = response.json()
        seen += [row["n"] for row in body["rows"]]
        url = body["next_url"]
        pages += 1
        assert pages <= limit, f"still a next page after {limit} pages: {url}"
    return seen


def facet_links_select_what_they_counted(client: TestClient, query: str, name: str) -> None:
    body = client.get(f"/db/t.json?_size=0&_facet_size=max&{query}").json()
    assert "facet_results" in body, body
    for result in body["facet_results"][name]["results"]:
        toggled = client.get(result["toggle_url"])
        assert toggled.status_code == 200, (result, toggled.text)
        page = toggled.json()
        assert page["filtered_table_rows_count"] == result["count"], (result, page["query"])
        again = [r for r in page["facet_results"][name]["results"] if r["selected"]]
        assert len(again) == 1 and again[0]["count"] == result["count"], (result, again)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(table=tables(), size=st.integers(1, 2))
def test_following_next_url_visits_every_row_once_and_facet_links_select_their_rows(
    table: tuple[str, str, list[tuple[Any, ...]]], size: int
) -> None:
    layout, ddl, rows = table
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "db.db"
        stored = build(path, layout, ddl, rows)
        conn = sqlite3.connect(path)
        expected = Counter(n for (n,) in conn.execute("select n from t"))
        conn.close()
        assert sum(expected.values()) == stored
        limit = stored + 2
        with make_client(path, max_returned_rows=2) as client:
            for order in ("", "&_sort=s", "&_sort_desc=s", "&_sort=n", "&_sort_desc=n"):
                seen = walk(client, f"/db/t.json?_shape=objects&_size={size}{order}", limit)
                assert Counter(seen) == expected, (order, seen)
            # An export pages through the same keyset, max_returned_rows (2) at a time.
            text = client.get("/db/t.csv?_stream=on&_col=n").text
            exported = [int(r[-1]) for r in list(csv.reader(io.StringIO(text)))[1:]]
            assert Counter(exported) == expected, text
        with make_client(path) as client:
            facet_links_select_what_they_counted(client, "_facet=s", "s")
            facet_links_select_what_they_counted(client, "_facet_array=tags", "tags")
            key = {"rowid": "rowid", "compound_pk": "a"}.get(layout, "id")
            facet_links_select_what_they_counted(client, f"_facet={key}", key)
